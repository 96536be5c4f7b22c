"""Numerics at the extremes: the stable built-ins give finite values and gradients wherever
the mathematics is finite, at ±1e3 and at exact zeros, in float32 and float64, matching an
mpmath reference computed with 50 significant digits. Undefined derivatives (log and sqrt
at 0) follow IEEE: they are infinite, as documented in docs/robustness.md."""
import mpmath
import numpy as np
import pytest

mpmath.mp.dps = 50

SPEC = """
input y[n]: int
input w[n, q]
param a[n, q]
param b[n, q]
param c[n, q]
param s[m]
param g[m]
param l[k]
param r[k]
ce  = mean(cross_entropy(a, y))
lse = sum(logsumexp(b, axis=1))
sm  = sum(w * softmax(c, axis=1))
sp  = sum(softplus(s))
sg  = sum(sigmoid(g))
lg  = sum(log(l))
sq  = sum(sqrt(r))
J = ce + lse + sm + sp + sg + lg + sq
minimize J
output ce, lse, sm, sp, sg, lg, sq
"""

ROWS = [[1e3, -1e3, 0.0], [1e3, 1e3, 1e3], [-1e3, -1e3, -999.0], [0.0, 0.0, 0.0],
        [-1e3, 1e3, 999.0]]
SCALARS = [1e3, -1e3, 0.0, 30.0, -30.0, 1e-30, -1e-30, 88.0, -88.0]
POSITIVE = [1e3, 1e-30, 1.0, 3e38]
# float32 inputs of magnitude 1e3 carry an absolute rounding of 6e-5 (ulp(1000) = 6.1e-5),
# and stored float32 intermediates (the row logsumexp) another: relative 1e-4 is the honest
# bound there. float64: 1e-12 relative.
TOL = {np.float64: (1e-12, 1e-300), np.float32: (1e-4, 1e-30)}


def _softmax(row):
    m = max(row)
    e = [mpmath.exp(v - m) for v in row]
    return [v / mpmath.fsum(e) for v in e]


def _reference(args):
    n = len(args["y"])
    mp = lambda v: [mpmath.mpf(float(t)) for t in v]  # noqa: E731
    out, grads = {}, {}
    A, B, C, W = (list(map(mp, args[k])) for k in "abcw")
    out["ce"] = mpmath.fsum(mpmath.log(mpmath.fsum(mpmath.exp(v) for v in row)) - row[y]
                            for row, y in zip(A, args["y"])) / n
    grads["a"] = [[(p - (j == y)) / n for j, p in enumerate(_softmax(row))]
                  for row, y in zip(A, args["y"])]
    out["lse"] = mpmath.fsum(mpmath.log(mpmath.fsum(mpmath.exp(v) for v in row)) for row in B)
    grads["b"] = [_softmax(row) for row in B]
    P = [_softmax(row) for row in C]
    out["sm"] = mpmath.fsum(mpmath.fsum(p * w for p, w in zip(pr, wr)) for pr, wr in zip(P, W))
    grads["c"] = [[p * (w - mpmath.fsum(pp * ww for pp, ww in zip(pr, wr)))
                   for p, w in zip(pr, wr)] for pr, wr in zip(P, W)]
    S, G, L, R = (mp(args[k]) for k in "sglr")
    out["sp"] = mpmath.fsum(mpmath.log1p(mpmath.exp(v)) for v in S)
    grads["s"] = [1 / (1 + mpmath.exp(-v)) for v in S]
    out["sg"] = mpmath.fsum(1 / (1 + mpmath.exp(-v)) for v in G)
    grads["g"] = [mpmath.exp(-v) / (1 + mpmath.exp(-v)) ** 2 for v in G]
    out["lg"] = mpmath.fsum(mpmath.log(v) for v in L)
    grads["l"] = [1 / v for v in L]
    out["sq"] = mpmath.fsum(mpmath.sqrt(v) for v in R)
    grads["r"] = [1 / (2 * mpmath.sqrt(v)) for v in R]
    return out, grads


def _close(got, want, dtype):
    rtol, atol = TOL[dtype]
    want = float(want)
    return abs(float(got) - want) <= rtol * abs(want) + atol


@pytest.fixture(scope="module")
def module(build):
    return build(SPEC, "extremes")


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_stable_ops_match_mpmath_at_extremes(module, dtype):
    rng = np.random.default_rng(0)
    rows = np.array(ROWS, dtype=dtype)
    args = dict(y=np.array([0, 1, 2, 0, 2]), w=rng.normal(size=rows.shape).astype(dtype),
                a=rows, b=rows.copy(), c=rows.copy(), s=np.array(SCALARS, dtype=dtype),
                g=np.array(SCALARS, dtype=dtype), l=np.array(POSITIVE[:3], dtype=dtype),
                r=np.array(POSITIVE[:3], dtype=dtype))
    want_out, want_grad = _reference(args)
    tape = module.forward(**args)
    _, grads = module.value_and_grad(**args)
    for name, value in want_out.items():
        assert np.isfinite(tape[name]), name
        assert _close(tape[name], value, dtype), (name, tape[name], float(value))
    for name, ref in want_grad.items():
        got = np.asarray(grads[name], dtype=np.float64)
        assert np.all(np.isfinite(got)), name
        flat_ref = np.array(ref, dtype=object).ravel()
        for g, w in zip(got.ravel(), flat_ref):
            assert _close(g, w, dtype), (name, g, float(w))


def test_undefined_derivatives_are_infinite_not_wrong(module):
    args = dict(y=np.array([0]), w=np.ones((1, 3)), a=np.zeros((1, 3)), b=np.zeros((1, 3)),
                c=np.zeros((1, 3)), s=np.zeros(1), g=np.zeros(1), l=np.array([0.0, 1.0]),
                r=np.array([0.0, 1.0]))
    tape = module.forward(**args)
    _, grads = module.value_and_grad(**args)
    assert tape["lg"] == -np.inf and tape["sq"] == 1.0
    assert grads["l"][0] == np.inf and grads["r"][0] == np.inf  # d log(0), d sqrt(0): +inf
    assert grads["l"][1] == 1.0 and grads["r"][1] == 0.5
    assert grads["s"][0] == 0.5 and grads["g"][0] == 0.25  # softplus'(0), sigmoid'(0)
