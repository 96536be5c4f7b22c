"""The op table: everything graphgen knows about its built-in functions, in one place.

Each elementwise built-in is a sympy function. Its *definition* is the mathematical meaning
(what tests compare against); its derivative is sympy's (`fdiff`), written where that is
cheaper in terms of the function's own value, which the forward pass has already computed
(σ' = σ(1 − σ)). Its *spelling* is how the printer writes it in generated Numba code,
including numerically stable forms. Kinks follow PyTorch: relu'(0) = 0, |x|'(0) = 0,
maximum/minimum split the gradient evenly at ties.

Structural built-ins (`sum`, `mean`, `einsum`, `logsumexp`, `softmax`, `cross_entropy`) are
lowered by `check` to indexed map-reduce nodes; they are listed here for arity, keywords,
documentation and test domains.
"""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp
from sympy.codegen.cfunctions import expm1 as _sympy_expm1
from sympy.codegen.cfunctions import log1p as _sympy_log1p


# ----------------------------------------------------------------------------- sympy functions
class _Indicator(sp.Function):
    """1.0 where a comparison of two values holds, else 0.0 (NaN compares false). The
    derivative is 0 everywhere: a step's Dirac mass at the kink is dropped, as PyTorch does,
    so differentiating twice never produces sympy's DiracDelta (which no code can print)."""

    nargs = 2
    test = None  # the comparison, on sympy numbers

    @classmethod
    def eval(cls, a, b):
        if a.is_Number and b.is_Number:
            return sp.Integer(1 if cls.test(a, b) else 0)

    def fdiff(self, argindex=1):
        return sp.S.Zero


class less(_Indicator):
    test = staticmethod(lambda a, b: a < b)


class less_equal(_Indicator):
    test = staticmethod(lambda a, b: a <= b)


class greater(_Indicator):
    test = staticmethod(lambda a, b: a > b)


class greater_equal(_Indicator):
    test = staticmethod(lambda a, b: a >= b)


class equal(_Indicator):
    test = staticmethod(lambda a, b: a == b)


class not_equal(_Indicator):
    test = staticmethod(lambda a, b: a != b)


def _tie_split(a, b):
    """d max(a, b)/da: 1 where a > b, 1/2 at a tie (as PyTorch), 0 below."""
    return greater(a, b) + equal(a, b) / 2


class relu(sp.Function):
    """max(x, 0); derivative Heaviside with the value 0 at the kink, written on the output
    (relu(x) > 0 exactly when x > 0): the backward pass then needs only the stored output,
    so the pre-activation need not be kept and relu can overwrite it in place."""

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sp.Max(x, 0)

    def fdiff(self, argindex=1):
        return greater(self, 0)


class sigmoid(sp.Function):
    """1 / (1 + exp(-x)); derivative σ(x)·σ(−x). The textbook σ(1 − σ) loses all accuracy in
    the tails (1 − σ cancels: σ'(30) would be off by 1e-3 relative); σ(x) is still reused
    from the forward pass and σ(−x) costs one exp."""

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return 1 / (1 + sp.exp(-x))

    def fdiff(self, argindex=1):
        return self * sigmoid(-self.args[0])


class softplus(sp.Function):
    """log(1 + exp(x)), printed in the stable form max(x, 0) + log1p(exp(-|x|))."""

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sp.log(1 + sp.exp(x))

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])


class maximum(sp.Function):
    """Elementwise max(a, b); at a tie each argument gets half of the gradient."""

    nargs = 2

    @classmethod
    def eval(cls, a, b):
        if a.is_Number and b.is_Number:
            return sp.Max(a, b)

    def fdiff(self, argindex=1):
        a, b = self.args
        return _tie_split(a, b) if argindex == 1 else _tie_split(b, a)


class minimum(sp.Function):
    """Elementwise min(a, b); at a tie each argument gets half of the gradient."""

    nargs = 2

    @classmethod
    def eval(cls, a, b):
        if a.is_Number and b.is_Number:
            return sp.Min(a, b)

    def fdiff(self, argindex=1):
        a, b = self.args
        return _tie_split(b, a) if argindex == 1 else _tie_split(a, b)


class sign(sp.Function):
    """-1, 0 or 1; derivative 0 (sympy's sign' is 2·DiracDelta, which no code can print)."""

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sp.sign(x)

    def fdiff(self, argindex=1):
        return sp.S.Zero


class absolute(sp.Function):
    """|x|; derivative sign(x), 0 at 0 (as PyTorch), through graphgen's sign whose own
    derivative is 0 (sympy's Abs'' is 2·DiracDelta)."""

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return abs(x)

    def fdiff(self, argindex=1):
        return sign(self.args[0])


class clip(sp.Function):
    """min(max(x, lo), hi), as torch.clamp with tensor bounds: x's gradient passes where
    lo <= x <= hi (at the bounds too); lo gets it where x < lo < hi, hi where x > hi or
    hi < lo (then the result is hi whatever x is)."""

    nargs = 3

    @classmethod
    def eval(cls, x, lo, hi):
        if x.is_Number and lo.is_Number and hi.is_Number:
            return sp.Min(sp.Max(x, lo), hi)

    def fdiff(self, argindex=1):
        x, lo, hi = self.args
        if argindex == 1:
            return greater_equal(x, lo) * less_equal(x, hi)
        if argindex == 2:
            return less(x, lo) * less(lo, hi)
        return greater(x, hi) + less(hi, lo) * less_equal(x, hi)


class where(sp.Function):
    """a where the mask m is nonzero, else b (numpy.where); no gradient flows to m."""

    nargs = 3

    @classmethod
    def eval(cls, m, a, b):
        if m.is_Number:
            return a if m != 0 else b

    def fdiff(self, argindex=1):
        m = self.args[0]
        return {1: sp.S.Zero, 2: where(m, 1, 0), 3: where(m, 0, 1)}[argindex]


class stop_gradient(sp.Function):
    """The value of x; derivative 0 (a constant to the chain rule)."""

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return x

    def fdiff(self, argindex=1):
        return sp.S.Zero


class expm1(_sympy_expm1):
    """exp(x) - 1 without cancellation near 0; derivative exp(x) = y + 1 from the stored
    value y (no second exponential in the backward pass)."""

    def fdiff(self, argindex=1):
        return self + 1


class label_is(sp.Function):
    """1 where an integer label equals a loop index, else 0 (the one-hot of cross_entropy).
    Labels are data, so the function is never differentiated."""

    nargs = 2

    def fdiff(self, argindex=1):
        return sp.S.Zero


class label_pick(sp.Function):
    """`value` where an integer label equals a loop index, else 0: cross_entropy's pick of
    the label's logit, as a select rather than value * one-hot, so that a -inf logit of
    another class gives 0, not -inf * 0 = NaN."""

    nargs = 3

    def fdiff(self, argindex=1):
        return label_is(self.args[1], self.args[2]) if argindex == 1 else sp.S.Zero


# ----------------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Elementwise:
    """A built-in applied elementwise (with broadcasting for several arguments)."""

    name: str
    arity: int
    build: object  # callable: sympy args -> sympy expr
    definition: object  # callable: sympy args -> reference expression (for tests)
    domain: tuple = (-3.0, 3.0)  # where tests sample inputs (avoiding kinks and poles)
    doc: str = ""
    # How generated code spells it, a format string over the printed arguments; "" when the
    # printer's own table has it (exp, log, tanh, ... and their vectorised forms)
    spelling: str = ""
    helper: str = ""  # source of a function the spelling calls, copied into the module
    imports: tuple = ()  # lines the helper needs at the top of the module
    # "exact": the derivative is the definition's; "zero": deliberately none (stop_gradient)
    gradient: str = "exact"


_x = sp.Symbol("x", real=True)

ELEMENTWISE: dict[str, Elementwise] = {
    e.name: e
    for e in [
        Elementwise("exp", 1, sp.exp, sp.exp, (-3, 3), "e**x"),
        Elementwise("log", 1, sp.log, sp.log, (0.2, 4), "natural logarithm"),
        Elementwise("sqrt", 1, sp.sqrt, sp.sqrt, (0.2, 4), "square root"),
        Elementwise("abs", 1, absolute, sp.Abs, (-3, 3), "absolute value; abs'(0) = 0",
                    "abs({0})"),
        Elementwise("sin", 1, sp.sin, sp.sin, (-3, 3), "sine"),
        Elementwise("cos", 1, sp.cos, sp.cos, (-3, 3), "cosine"),
        Elementwise("tanh", 1, sp.tanh, sp.tanh, (-3, 3), "hyperbolic tangent"),
        Elementwise("sigmoid", 1, sigmoid, lambda x: 1 / (1 + sp.exp(-x)), (-4, 4),
                    "logistic function 1/(1+exp(-x))"),
        Elementwise("relu", 1, relu, lambda x: sp.Max(x, 0), (-3, 3),
                    "max(x, 0); relu'(0) = 0"),
        Elementwise("softplus", 1, softplus, lambda x: sp.log(1 + sp.exp(x)), (-4, 4),
                    "log(1 + exp(x)), computed stably"),
        Elementwise("maximum", 2, maximum, sp.Max, (-3, 3),
                    "elementwise maximum; ties split the gradient"),
        Elementwise("minimum", 2, minimum, sp.Min, (-3, 3),
                    "elementwise minimum; ties split the gradient"),
        Elementwise("erf", 1, sp.erf, sp.erf, (-2, 2), "error function; erf' = 2/sqrt(pi) "
                    "exp(-x**2)", "_erf({0})",
                    "def _erf(x):\n    return _math.erf(x)  # libm's erf\n",
                    ("import math as _math",)),
        Elementwise("log1p", 1, _sympy_log1p, lambda x: sp.log(1 + x), (-0.5, 3),
                    "log(1 + x), accurate near 0", "_log1p({0})"),
        Elementwise("expm1", 1, expm1, lambda x: sp.exp(x) - 1, (-3, 3),
                    "exp(x) - 1, accurate near 0; derivative y + 1 from the stored value",
                    "_expm1({0})"),
        Elementwise("sinh", 1, sp.sinh, sp.sinh, (-3, 3), "hyperbolic sine"),
        Elementwise("cosh", 1, sp.cosh, sp.cosh, (-3, 3), "hyperbolic cosine"),
        Elementwise("tan", 1, sp.tan, sp.tan, (-1.2, 1.2),
                    "tangent; derivative 1 + y**2 from the stored value"),
        Elementwise("arctan", 1, sp.atan, sp.atan, (-3, 3), "inverse tangent",
                    "np.arctan({0})"),
        Elementwise("square", 1, lambda x: x ** 2, lambda x: x ** 2, (-3, 3), "x * x"),
        Elementwise("sign", 1, sign, sp.sign, (-3, 3), "-1, 0 or 1; derivative 0",
                    "np.sign({0})"),
        Elementwise("clip", 3, clip, lambda x, lo, hi: sp.Min(sp.Max(x, lo), hi), (-3, 3),
                    "clip(x, lo, hi) = min(max(x, lo), hi); gradient as torch.clamp",
                    "np.minimum(np.maximum({0}, {1}), {2})"),
        Elementwise("where", 3, where,
                    lambda m, a, b: sp.Piecewise((a, sp.Ne(m, 0)), (b, True)), (-3, 3),
                    "where(mask, a, b): a where mask is nonzero, else b; no gradient to mask",
                    "({1} if {0} != 0.0 else {2})"),
        Elementwise("stop_gradient", 1, stop_gradient, lambda x: x, (-3, 3),
                    "the value of x, treated as a constant by the chain rule", "({0})",
                    gradient="zero"),
    ]
}

# Comparison operators: a mask of 0.0/1.0, no gradient (NaN compares false, as NumPy).
COMPARISONS: dict[str, type] = {
    "<": less, "<=": less_equal, ">": greater, ">=": greater_equal, "==": equal,
    "!=": not_equal,
}

# The printer's table for the functions above: sympy class name -> format string.
SPELLING: dict[str, str] = {
    **{type(op.build(*sp.symbols(f"_s0:{op.arity}", real=True))).__name__: op.spelling
       for op in ELEMENTWISE.values() if op.spelling},
    **{cls.__name__: f"(1.0 if {{0}} {o} {{1}} else 0.0)"
       for o, cls in COMPARISONS.items()},
}
# Helper functions the spellings call: name -> (source, import lines)
HELPERS: dict[str, tuple[str, tuple]] = {
    op.spelling.split("(", 1)[0]: (op.helper, op.imports)
    for op in ELEMENTWISE.values() if op.helper
}

# Structural built-ins: name -> (positional arity, allowed keywords, description).
STRUCTURAL: dict[str, tuple[int | None, tuple[str, ...], str]] = {
    "sum": (1, ("axis", "keepdims"), "sum over all elements, or over `axis`"),
    "mean": (1, ("axis", "keepdims"), "mean over all elements, or over `axis`"),
    "logsumexp": (1, ("axis", "keepdims"), "log(sum(exp(e))) computed stably"),
    "softmax": (1, ("axis",), "exp(e) / sum(exp(e), axis), computed stably; axis=-1 default"),
    "log_softmax": (1, ("axis",), "e - logsumexp(e, axis, keepdims=True); axis=-1 default"),
    "max": (1, ("axis", "keepdims"), "maximum over `axis`; the gradient goes to the arg-max, "
                                     "split evenly between ties (as torch.amax)"),
    "min": (1, ("axis", "keepdims"), "minimum over `axis`; ties split the gradient evenly"),
    "prod": (1, ("axis", "keepdims"), "product over `axis`; gradients correct with zeros"),
    "var": (1, ("axis", "keepdims", "ddof"), "variance (population: ddof=0 by default)"),
    "std": (1, ("axis", "keepdims", "ddof"), "standard deviation, sqrt(var)"),
    "one_hot": (2, (), "one_hot(y, q): [..., q] float rows with a 1 at each int label"),
    "cross_entropy": (2, (), "per-row softmax cross-entropy of logits [n, q] and int labels [n] "
                             "or float target probabilities [n, q]"),
    "einsum": (None, (), "einsum(\"ij,jk->ik\", a, b): products summed over repeated indices"),
}

BUILTIN_NAMES = frozenset(ELEMENTWISE) | frozenset(STRUCTURAL)

# Constructs of spec language v2 (issue 10) not built yet: an honest error, not a guess.
NOT_YET: dict[str, str] = {
    **{name: "linear algebra" for name in ("inv", "solve", "logdet", "det", "cholesky", "trace",
                                           "diag")},
    **{name: "convolution and pooling" for name in ("conv1d", "conv2d", "maxpool2d",
                                                    "avgpool2d")},
    **{name: "array reshaping" for name in ("stack", "concat", "reshape", "transpose")},
    **{name: "gathering" for name in ("take", "gather", "embedding")},
}
