"""The strict code printer: exact strings for the common shapes, numeric agreement with
sympy's own evaluation for many expressions, and refusal of what it cannot print."""
import math

import numpy as np
import pytest
import sympy as sp

from graphgen import ops, vecmath
from graphgen.printer import HELPERS, CodePrinter, UnprintableError

a, b, c = sp.symbols("a b c", real=True)
NAMES = {a: "x[i0]", b: "y", c: "z"}


@pytest.mark.parametrize("expr, text", [
    (a + b, "x[i0] + y"),
    (a - b, "x[i0] - y"),
    (a * b, "x[i0] * y"),
    (a / b, "x[i0] / y"),
    (c / b ** 2, "z / (y * y)"),
    (a / (b * c), "x[i0] / (y * z)"),
    (-a, "-x[i0]"),
    (-(a - b), "y - x[i0]"),
    (a ** 3, "x[i0] * x[i0] * x[i0]"),
    (a ** b, "x[i0] ** y"),
    (sp.sqrt(a), "np.sqrt(x[i0])"),
    (1 / sp.sqrt(a), "1.0 / np.sqrt(x[i0])"),
    (sp.exp(a - b), "_exp(x[i0] - y)"),
    (sp.Rational(1, 2) * a, "x[i0] / 2.0"),
    (sp.Rational(3, 4) * a, "0.75 * x[i0]"),
    (sp.Heaviside(a, 0), "(1.0 if x[i0] > 0.0 else 0.0)"),
    (ops.sigmoid(a), "_sigmoid(x[i0])"),
    (ops.label_is(b, c), "(1.0 if y == z else 0.0)"),
])
def test_exact_spelling(expr, text):
    assert CodePrinter(NAMES)(expr) == text


def _helpers_namespace():
    ns = {"np": np}
    ns.update({name: getattr(vecmath, name) for name in vecmath.FUNCTIONS})
    for src in HELPERS.values():
        exec(src, ns)  # the helpers are plain Python, also valid without numba
    return ns


EXPRESSIONS = [
    a - b * c, (a - b) * c, a / (b - c), -a ** 2 + b, (a + b) ** 2 / (c + 3), a ** -2,
    sp.exp(-a) / (1 + sp.exp(-a)) ** 2, 2 * a * b / c ** 3 - c / (a * b), -(a / b) - c,
    ops.sigmoid(a) * (1 - ops.sigmoid(a)), ops.softplus(b) - sp.log(1 + sp.exp(b)),
    sp.tanh(a) ** 2 - 1, sp.Abs(a - c) * sp.sign(b), ops.maximum(a, b) - ops.minimum(b, c),
    1 / (a * b * c), a ** sp.Rational(3, 2), sp.cos(a) * sp.sin(b) ** 3,
]


@pytest.mark.parametrize("expr", EXPRESSIONS, ids=str)
def test_printed_code_evaluates_like_sympy(expr):
    rng = np.random.default_rng(0)
    ns = _helpers_namespace()
    code = CodePrinter({a: "A", b: "B", c: "C"})(expr)
    reference = expr.replace(
        lambda e: isinstance(e, (ops.sigmoid, ops.softplus, ops.maximum, ops.minimum)),
        lambda e: {"sigmoid": lambda x: 1 / (1 + sp.exp(-x)),
                   "softplus": lambda x: sp.log(1 + sp.exp(x)),
                   "maximum": sp.Max, "minimum": sp.Min}[type(e).__name__](*e.args))
    for _ in range(5):
        values = {a: rng.uniform(0.3, 2), b: rng.uniform(0.3, 2), c: rng.uniform(0.3, 2)}
        got = eval(code, dict(ns, A=values[a], B=values[b], C=values[c]))
        want = float(reference.subs(values).evalf(30))
        assert math.isclose(got, want, rel_tol=1e-12, abs_tol=1e-12), (code, got, want)


def test_unknown_function_is_refused():
    with pytest.raises(UnprintableError):
        CodePrinter(NAMES)(sp.gamma(a))


def test_unknown_symbol_is_refused():
    with pytest.raises(UnprintableError):
        CodePrinter({})(a + 1)
