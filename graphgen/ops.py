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


# ----------------------------------------------------------------------------- sympy functions
class relu(sp.Function):
    """max(x, 0); derivative Heaviside with the value 0 at the kink, written on the output
    (relu(x) > 0 exactly when x > 0): the backward pass then needs only the stored output,
    so the pre-activation need not be kept and relu can overwrite it in place."""

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sp.Max(x, 0)

    def fdiff(self, argindex=1):
        return sp.Heaviside(self, 0)


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
        return sp.Heaviside(a - b, sp.S.Half) if argindex == 1 else sp.Heaviside(b - a, sp.S.Half)


class minimum(sp.Function):
    """Elementwise min(a, b); at a tie each argument gets half of the gradient."""

    nargs = 2

    @classmethod
    def eval(cls, a, b):
        if a.is_Number and b.is_Number:
            return sp.Min(a, b)

    def fdiff(self, argindex=1):
        a, b = self.args
        return sp.Heaviside(b - a, sp.S.Half) if argindex == 1 else sp.Heaviside(a - b, sp.S.Half)


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


_x = sp.Symbol("x", real=True)

ELEMENTWISE: dict[str, Elementwise] = {
    e.name: e
    for e in [
        Elementwise("exp", 1, sp.exp, sp.exp, (-3, 3), "e**x"),
        Elementwise("log", 1, sp.log, sp.log, (0.2, 4), "natural logarithm"),
        Elementwise("sqrt", 1, sp.sqrt, sp.sqrt, (0.2, 4), "square root"),
        Elementwise("abs", 1, sp.Abs, sp.Abs, (-3, 3), "absolute value; abs'(0) = 0"),
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
    ]
}

# Structural built-ins: name -> (positional arity, allowed keywords, description).
STRUCTURAL: dict[str, tuple[int | None, tuple[str, ...], str]] = {
    "sum": (1, ("axis", "keepdims"), "sum over all elements, or over `axis`"),
    "mean": (1, ("axis", "keepdims"), "mean over all elements, or over `axis`"),
    "logsumexp": (1, ("axis", "keepdims"), "log(sum(exp(e))) computed stably"),
    "softmax": (1, ("axis",), "exp(e) / sum(exp(e), axis), computed stably; axis=-1 default"),
    "cross_entropy": (2, (), "per-row softmax cross-entropy of logits [n, q] and int labels [n]"),
    "einsum": (None, (), "einsum(\"ij,jk->ik\", a, b): products summed over repeated indices"),
}

BUILTIN_NAMES = frozenset(ELEMENTWISE) | frozenset(STRUCTURAL)
