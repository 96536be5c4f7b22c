"""`_gemm` (graphgen/blas.py) against NumPy, and parameter updates folded into it: an SGD
step must still be `p - lr * dJ/dp` with dJ/dp from value_and_grad, for every way the
update can be split (GEMM alone, a loop then the GEMM, no fold at all)."""
from __future__ import annotations

import numba
import numpy as np
import pytest

from graphgen import blas
from graphgen.build import load_python
from graphgen.pipeline import compile_source

RNG = np.random.default_rng(11)


@numba.njit(cache=False)
def _call_gemm(alpha, a, b, beta, c):
    blas._gemm(alpha, a, b, beta, c)


def _operand(m, transposed):
    """m itself, or the same values as the transpose of a C array (an F-ordered view)."""
    return np.ascontiguousarray(m.T).T if transposed else m


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("a_t", [False, True])
@pytest.mark.parametrize("b_t", [False, True])
def test_gemm_matches_numpy(dtype, a_t, b_t):
    a = RNG.standard_normal((5, 7)).astype(dtype)
    b = RNG.standard_normal((7, 3)).astype(dtype)
    c = RNG.standard_normal((5, 3)).astype(dtype)
    expected = -0.25 * (a.astype(np.float64) @ b) + 0.75 * c
    _call_gemm(-0.25, _operand(a, a_t), _operand(b, b_t), 0.75, c)
    rtol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(c, expected, rtol=rtol, atol=rtol)
    assert c.dtype == dtype


def test_gemm_with_beta_zero_overwrites_and_checks_shapes():
    a, b = RNG.standard_normal((4, 2)), RNG.standard_normal((2, 6))
    c = np.full((4, 6), np.nan)  # beta = 0: BLAS does not read c, so NaN does not leak
    _call_gemm(1.0, a, b, 0.0, c)
    np.testing.assert_allclose(c, a @ b, rtol=1e-14)
    with pytest.raises(ValueError, match="shapes of a matrix product"):
        _call_gemm(1.0, a, np.ascontiguousarray(b[:, :5]), 0.0, c)
    with pytest.raises(ValueError, match="shapes of a matrix product"):
        _call_gemm(1.0, a, RNG.standard_normal((3, 6)), 0.0, c)


def test_plain_python_gemm_with_beta_zero_ignores_garbage_in_c(monkeypatch):
    """JIT off, _gemm(beta=0) into a workspace from np.empty must not read it: it did
    (c *= 0 keeps NaN), so value_and_grad of `J = sum(x @ W.T)` was NaN now and then."""
    source = compile_source("input x[n, d]\nparam W[q, d]\nJ = sum(x @ W.T)\nminimize J\n",
                            "dot_t.gg").source
    m = load_python(source, "dot_t_plain")
    x, W = RNG.standard_normal((4, 3)), RNG.standard_normal((2, 3))
    monkeypatch.setattr(np, "empty", lambda shape, dtype=float: np.full(shape, np.nan, dtype))
    J, grads = m.value_and_grad(x=x, W=W)
    assert J == pytest.approx(float(np.sum(x @ W.T)), rel=1e-12)
    np.testing.assert_allclose(grads["W"], np.tile(x.sum(axis=0), (2, 1)), rtol=1e-12)


def test_gemm_refuses_strided_or_mixed_arrays_at_compile_time():
    a, b, c = RNG.standard_normal((4, 4)), RNG.standard_normal((4, 4)), np.zeros((4, 4))
    with pytest.raises(numba.TypingError):
        _call_gemm(1.0, a[:, ::2], b[:2], 0.0, c[:, :4])
    with pytest.raises(numba.TypingError):
        _call_gemm(1.0, a.astype(np.float32), b, 0.0, c)


@numba.njit(cache=False)
def _call_dot_t(a, b, out, scratch):
    blas._dot_t(a, b, out, scratch)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m, n, k, room", [
    (32, 16, 8, 4096),     # small: b copied, transposed, into the scratch
    (128, 10, 256, 4096),  # still small in multiply-adds
    (64, 100, 50, 4096),   # b larger than the scratch: BLAS's transposed path
    (700, 10, 80, 4096),   # too many multiply-adds for the copy to pay
    (5, 4, 3, 11),         # scratch shorter than b: the transposed path
])
def test_dot_t_is_a_times_b_transposed(dtype, m, n, k, room):
    a = RNG.standard_normal((m, k)).astype(dtype)
    b = RNG.standard_normal((n, k)).astype(dtype)
    out = np.full((m, n), np.nan, dtype)
    scratch = np.full(room, 7.0, dtype)
    _call_dot_t(a, b, out, scratch)
    rtol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(out, a.astype(np.float64) @ b.T, rtol=rtol, atol=rtol * k)
    copied = b.size <= room and m * b.size <= blas._DOT_T_SMALL
    assert np.array_equal(scratch[:b.size], b.T.ravel()) == copied


def test_emitted_text_is_this_module_and_runs_without_the_jit():
    constants, functions = blas.source({"_gemm"})
    assert constants == "" and "def _gemm(" in functions and "numba_xxgemm" in functions
    assert "_dot_t" not in functions
    constants, functions = blas.source({"_dot_t"})
    assert "_DOT_T_SMALL = " in constants and "def _gemm(" in functions
    module = load_python(
        "import numpy as np\nimport numba\n" + "\n".join(blas.IMPORTS) + "\n_VEC = {}\n"
        + constants + "\n\n\n" + functions + "\n")
    a, b, c = RNG.standard_normal((3, 4)), RNG.standard_normal((4, 2)), RNG.standard_normal((3, 2))
    expected = c.copy()
    _call_gemm(2.0, a, b, -1.0, expected)
    module._gemm(2.0, a, b, -1.0, c)
    np.testing.assert_allclose(c, expected, rtol=1e-14)
    out = np.empty((3, 3))
    module._dot_t(a, a, out, np.empty(blas._SCRATCH))
    np.testing.assert_allclose(out, a @ a.T, rtol=1e-14)
    assert blas.source({"_exp"}) is None


# ----------------------------------------------------------------------------- folded updates
L2 = """\
input x[n, d]
input y[n]: int
param W1[h, d]
param W2[q, h]
hyper lam = 1e-3
hid = tanh(x @ W1.T)
o = hid @ W2.T
J = mean(cross_entropy(o, y)) + lam / 2 * (sum(W1 ** 2) + sum(W2 ** 2))
minimize J
"""
# the L1 penalty's sign(W1) cannot go into beta: a loop adds it, then the GEMM (beta 1)
L1 = L2.replace("lam / 2 * (sum(W1 ** 2) + sum(W2 ** 2))", "lam * sum(abs(W1))")
# W appears twice: the gradient's products read W itself, which the step is updating,
# so they must not be deferred into the update
TIED = """\
input x[n, d]
param W[d, d]
J = sum(tanh((x @ W) @ W.T))
minimize J
"""


def _update_steps(text):
    step = compile_source(text, "t.gg").kernels["sgd_step"].program
    return {s.writes.name: s for s in step.steps if s.writes is not None}


def test_updates_fold_into_gemm_where_they_can():
    l2 = _update_steps(L2)
    assert {p: s.gemm["rest"] is None for p, s in l2.items() if s.gemm} == {"W1": True,
                                                                             "W2": True}
    # W1's decay (1 - lr*lam) is applied in the penalty's pass over W1, its last reader;
    # W2 is read again by dJ/dhid = dJ/do @ W2, so its GEMM keeps beta
    assert l2["W1"].gemm.get("decayed") and not l2["W2"].gemm.get("decayed")
    source = compile_source(L2, "t.gg").source
    assert "W1[i0, i1] *= 1.0 - lr * lam" in source and ".T, x, 1.0, W1)" in source
    l1 = _update_steps(L1)
    assert l1["W1"].gemm and l1["W1"].gemm["rest"] is not None  # sign(W1): a loop first
    assert l1["W2"].gemm and l1["W2"].gemm["rest"] is None
    tied = _update_steps(TIED)
    for s in tied.values():
        assert not s.gemm or all(
            op.kind != "param" for op in (s.gemm["product"].dot["left"],
                                          s.gemm["product"].dot["right"]))


def _data(text, dtype, rng):
    n, d, h, q = 6, 5, 4, 3
    shapes = {"x": (n, d), "W1": (h, d), "W2": (q, h), "W": (d, d)}
    args = {k: rng.standard_normal(v).astype(dtype) for k, v in shapes.items()
            if f" {k}[" in text}
    if "input y" in text:
        args["y"] = rng.integers(0, q, n)
    return args


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("text", [L2, L1, TIED], ids=["l2", "l1", "tied"])
def test_sgd_step_is_p_minus_lr_grad(build, text, dtype):
    module = build(text)
    args = _data(text, dtype, np.random.default_rng(3))
    J, grads = module.value_and_grad(**args)
    params = {p: args[p].copy() for p in grads}
    J_step = module.sgd_step(**{**args, **params}, lr=0.3)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    assert J_step == pytest.approx(J, rel=tol["rtol"])
    for p, g in grads.items():
        np.testing.assert_allclose(params[p], args[p] - 0.3 * g.astype(np.float64), **tol)
