"""A strict printer: sympy scalar expressions → Numba-compilable Python expressions.

A table of the functions it knows; anything else is a compile-time error, never a silent
fallback. Numerically delicate built-ins are spelled through helper functions defined in the
generated module (`_sigmoid`, `_softplus`), which use stable forms; exp, log, tanh, sin and
cos through the vectorisable functions of `vecmath`.
"""
from __future__ import annotations

import sympy as sp
from sympy.printing.precedence import PRECEDENCE, precedence

from . import ops

PREC_ATOM = 1000
PREC_MUL = PRECEDENCE["Mul"]
PREC_NEG = PRECEDENCE["Add"]  # a leading minus binds like a sum term


class UnprintableError(Exception):
    """An expression the code printer has no spelling for (a graphgen bug, not a user error)."""


def _float(x: float) -> str:
    text = repr(float(x))
    if text in ("inf", "-inf", "nan"):
        return {"inf": "np.inf", "-inf": "-np.inf", "nan": "np.nan"}[text]
    return text


class CodePrinter:
    """Print with a mapping from sympy symbols to code strings (array reads, locals)."""

    def __init__(self, names: dict[sp.Symbol, str], trig: str = "libm"):
        self.names = names
        # sin/cos: "poly" prints the vectorised `_sin(arg)`, exact for |arg| <= 1e6 only, and
        # collects the arguments so the loop can check them (see vecmath); "libm": `np.sin`
        self.trig = trig
        self.trig_args: list[str] = []

    def __call__(self, expr: sp.Expr) -> str:
        return self.p(sp.sympify(expr))[0]

    # Each method returns (text, precedence).
    def p(self, e) -> tuple[str, int]:
        if isinstance(e, sp.Symbol):
            if e not in self.names:
                raise UnprintableError(f"no code name for symbol {e}")
            return self.names[e], PREC_ATOM
        if isinstance(e, sp.Integer):
            v = int(e)
            return (_float(v), PREC_ATOM) if v >= 0 else (_float(v), PREC_NEG)
        if isinstance(e, (sp.Rational, sp.Float)):
            v = float(e)
            return _float(v), (PREC_ATOM if v >= 0 else PREC_NEG)
        if e is sp.pi:
            return "np.pi", PREC_ATOM
        if e is sp.E:
            return "np.e", PREC_ATOM
        if isinstance(e, sp.Add):
            return self.add(e)
        if isinstance(e, sp.Mul):
            return self.mul(e)
        if isinstance(e, sp.Pow):
            return self.pow(e)
        if isinstance(e, sp.Function) or isinstance(e, (sp.Heaviside,)):
            return self.function(e)
        raise UnprintableError(f"cannot print {type(e).__name__}: {e}")

    def wrap(self, item: tuple[str, int], prec: int, strict: bool = False) -> str:
        text, p = item
        return f"({text})" if (p < prec or (strict and p == prec)) else text

    def add(self, e: sp.Add) -> tuple[str, int]:
        prec = precedence(e)
        terms = sorted(e.args, key=sp.default_sort_key)
        # positive terms first reads better: a - b rather than -b + a
        terms.sort(key=lambda t: t.could_extract_minus_sign())
        out = ""
        for k, t in enumerate(terms):
            if k and t.could_extract_minus_sign():
                out += " - " + self.wrap(self.p(-t), prec, strict=True)
            elif k:
                out += " + " + self.wrap(self.p(t), prec)
            else:
                out = self.wrap(self.p(t), prec)
        return out, prec

    def mul(self, e: sp.Mul) -> tuple[str, int]:
        prec = precedence(e)
        coeff, rest = e.as_coeff_Mul()
        if coeff < 0:
            inner = self.wrap(self.p(-e), prec)
            return "-" + inner, PREC_NEG
        numer, denom = [], []
        for f in sp.Mul.make_args(e):
            if isinstance(f, sp.Pow) and f.exp.is_Rational and f.exp < 0 and not f.base.is_Number:
                denom.append(f.base ** -f.exp)
            elif isinstance(f, sp.Rational) and not isinstance(f, sp.Integer) and f.p == 1:
                denom.append(sp.Integer(f.q))
            elif f != 1:
                numer.append(f)
        num = " * ".join(self.wrap(self.p(f), prec) for f in numer) if numer else "1.0"
        if not denom:
            return num, prec
        den = " * ".join(self.wrap(self.p(f), prec) for f in denom)
        if len(denom) > 1:
            den = f"({den})"
        else:
            den = self.wrap(self.p(denom[0]), prec, strict=True)
        return f"{num} / {den}", prec

    def pow(self, e: sp.Pow) -> tuple[str, int]:
        base, exp = e.args
        prec = precedence(e)
        if exp == sp.S.Half:
            return f"np.sqrt({self(base)})", PREC_ATOM
        if exp == -sp.S.Half:
            return f"1.0 / np.sqrt({self(base)})", PREC_MUL
        if exp.is_Integer and exp < 0:
            return f"1.0 / {self.wrap(self.p(base ** -exp), PREC_MUL, True)}", \
                PREC_MUL
        if exp.is_Integer and 2 <= int(exp) <= 4:
            b = self.wrap(self.p(base), PREC_ATOM)
            return " * ".join([b] * int(exp)), PREC_MUL
        b = self.wrap(self.p(base), prec, strict=True)
        if exp.is_Integer:
            return f"{b} ** {int(exp)}", prec
        return f"{b} ** {self.wrap(self.p(exp), prec)}", prec

    def function(self, e) -> tuple[str, int]:
        args = [self(a) for a in e.args]
        name = type(e).__name__
        if name in ("sin", "cos") and self.trig == "poly":
            if args[0] not in self.trig_args:
                self.trig_args.append(args[0])
            return f"_{name}({args[0]})", PREC_ATOM
        simple = {
            "exp": "_exp", "log": "_log", "tanh": "_tanh", "sin": "np.sin", "cos": "np.cos",
            "Abs": "abs", "sign": "np.sign",
            "sigmoid": "_sigmoid", "softplus": "_softplus", "relu": "_relu",
            "maximum": "np.maximum", "minimum": "np.minimum",
            "tan": "np.tan", "cosh": "np.cosh", "sinh": "np.sinh",
        }
        if name in simple:
            return f"{simple[name]}({', '.join(args)})", PREC_ATOM
        if name in ops.SPELLING:  # the op table's own spelling (graphgen.ops)
            return ops.SPELLING[name].format(*args), PREC_ATOM
        if isinstance(e, sp.Heaviside):
            x = args[0]
            h0 = e.args[1] if len(e.args) > 1 else sp.S.Half
            if h0 == 0:
                return f"(1.0 if {x} > 0.0 else 0.0)", PREC_ATOM
            return f"_heaviside({x}, {_float(float(h0))})", PREC_ATOM
        if isinstance(e, ops.label_pick):
            return f"({args[0]} if {args[1]} == {args[2]} else 0.0)", PREC_ATOM
        if isinstance(e, ops.label_is):
            return f"(1.0 if {args[0]} == {args[1]} else 0.0)", PREC_ATOM
        if isinstance(e, sp.Max) and len(args) == 2:
            return f"np.maximum({args[0]}, {args[1]})", PREC_ATOM
        if isinstance(e, sp.Min) and len(args) == 2:
            return f"np.minimum({args[0]}, {args[1]})", PREC_ATOM
        raise UnprintableError(f"no spelling for function {name}")


# Helper functions the generated module defines (stable forms), printed into its prelude.
HELPERS = {
    "_sigmoid": (
        "def _sigmoid(x):\n"
        "    # 1/(1+exp(-x)) without overflow; exp(-|x|) is shared with _softplus when both\n"
        "    # are inlined into one loop\n"
        "    e = _exp(-abs(x))\n"
        "    return 1.0 / (1.0 + e) if x >= 0.0 else e / (1.0 + e)\n"
    ),
    "_softplus": (
        "def _softplus(x):\n"
        "    # log(1+exp(x)) = max(x, 0) + log1p(exp(-|x|)): finite for all finite x\n"
        "    return max(x, 0.0) + _log1p(_exp(-abs(x)))\n"
    ),
    "_relu": (
        "def _relu(x):\n"
        "    return 0.0 if x < 0.0 else x  # NaN propagates\n"
    ),
    "_heaviside": (
        "def _heaviside(x, at_zero):\n"
        "    # step function; at_zero is the documented value at the kink\n"
        "    if x > 0.0:\n"
        "        return 1.0\n"
        "    if x < 0.0:\n"
        "        return 0.0\n"
        "    return at_zero if x == 0.0 else x\n"
    ),
}
HELPERS.update({name: source for name, (source, _) in ops.HELPERS.items()})
# Import lines a helper needs at the top of the module (libm's erf: `math`)
HELPER_IMPORTS = {name: imports for name, (_, imports) in ops.HELPERS.items()}
