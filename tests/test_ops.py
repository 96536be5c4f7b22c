"""The op table itself: each elementwise built-in's derivative (sympy, via the conventions in
`graphgen.ops`) agrees with mpmath's numerical derivative of the mathematical definition,
and derivatives that can reuse the stored forward value do so in the generated code."""
import mpmath
import numpy as np
import pytest
import sympy as sp

from graphgen import ops
from graphgen.pipeline import compile_source

x, y, z = sp.symbols("x y z", real=True)


@pytest.mark.parametrize("name", sorted(ops.ELEMENTWISE))
def test_derivative_matches_mpmath_on_the_definition(name):
    op = ops.ELEMENTWISE[name]
    args = [x, y, z][: op.arity]
    built = op.build(*args)
    if op.gradient == "zero":  # stop_gradient: deliberately no derivative
        assert all(sp.diff(built, a) == 0 for a in args)
        return
    reference = op.definition(*args)
    rng = np.random.default_rng(0)
    lo, hi = op.domain
    for _ in range(5):
        point = [mpmath.mpf(float(v)) for v in rng.uniform(lo, hi, size=op.arity)]
        for k, a in enumerate(args):
            d = sp.diff(built, a)
            got = sp.N(d.subs(dict(zip(args, point))).rewrite(sp.exp), 30)
            f = sp.lambdify(args, reference, modules="mpmath")
            want = mpmath.diff(lambda t: f(*[t if j == k else point[j]
                                             for j in range(op.arity)]), point[k])
            assert abs(float(got) - float(want)) <= 1e-12 * max(1.0, abs(float(want))), \
                (name, k, point, got, want)


def test_kink_conventions_follow_pytorch():
    assert sp.diff(ops.relu(x), x).subs(x, 0) == 0
    assert sp.diff(sp.Abs(x), x).subs(x, 0) == 0
    assert sp.diff(ops.maximum(x, y), x).subs({x: 1, y: 1}) == sp.S.Half
    assert sp.diff(ops.minimum(x, y), y).subs({x: 1, y: 1}) == sp.S.Half


@pytest.mark.parametrize("fn, forbidden", [("sigmoid", "_sigmoid(a"), ("tanh", "_tanh("),
                                           ("exp", "_exp("), ("sqrt", "np.sqrt(")])
def test_backward_reuses_the_stored_value(fn, forbidden):
    spec = f"input c[n]\nparam a[n]\nt = {fn}(a)\nJ = sum(c * t)\nminimize J\n"
    source = compile_source(spec, "reuse.gg").source
    backward = source.split("def _backward_kernel", 1)[1].split("\n\n\n", 1)[0]
    assert forbidden not in backward  # the derivative is written with the stored t
    assert "t[i0]" in backward


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "tanh", "exp", "log", "sqrt",
                                  "sin", "cos"])
def test_derivative_is_sympys_derivative_of_the_definition(name):
    """Where the rule is written in terms of the op's own value (σ' = σ(1-σ)), substituting
    the definition back gives exactly sympy's derivative of the definition."""
    op = ops.ELEMENTWISE[name]
    rule = sp.diff(op.build(x), x)
    expanded = rule.replace(lambda e: isinstance(e, (ops.sigmoid, ops.softplus)),
                            lambda e: ops.ELEMENTWISE[type(e).__name__].definition(*e.args))
    assert sp.simplify(expanded - sp.diff(op.definition(x), x)) == 0
