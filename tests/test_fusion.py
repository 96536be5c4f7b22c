"""Fusion decisions: an elementwise chain around a matrix product, forward and backward, is
one pass over memory that stores only what later steps read."""
import numpy as np
import pytest

from graphgen.build import load_python
from graphgen.gradcheck import check_gradients
from graphgen.pipeline import compile_source

CHAIN = """input x[n, d]
input t[n, q]
param W[q, d]
z = x @ W.T
a = sigmoid(maximum(z, 0.1 * z)) * cos(minimum(z, 1.0)) + sqrt(1 + z * z)
J = mean((a - t) ** 2)
minimize J
"""


def _kernel(source: str, name: str) -> str:
    text = source[source.index(f"def {name}("):]
    return text[:text.index("\n\n\n")]


def test_chain_forward_and_backward_share_one_loop():
    """dJ/dz reads every intermediate at its own index: it joins their loop instead of
    overwriting one of their arrays in a second pass (which forced all six to be stored)."""
    kernel = _kernel(compile_source(CHAIN, "chain.gg").source, "_value_and_grad_kernel")
    loops = [line for line in kernel.splitlines() if line.strip().startswith("for i0 in")]
    assert len(loops) == 1, kernel
    stored = [line.split("=")[0].strip() for line in kernel.splitlines()
              if "= _ws[" in line and ".reshape(" in line]
    assert stored == ["z", "dJ_dz"]


def test_fused_chain_gradient_matches_finite_differences():
    module = load_python(compile_source(CHAIN, "chain.gg").source)
    rng = np.random.default_rng(3)
    args = {"x": rng.normal(size=(5, 3)), "t": rng.normal(size=(5, 4)),
            "W": rng.normal(size=(4, 3))}
    results = check_gradients(module, args, rtol=1e-6, seed=0)
    assert all(r.ok for r in results), [(r.name, r.max_rel_error) for r in results]
    z = args["x"] @ args["W"].T
    sig = 1 / (1 + np.exp(-np.maximum(z, 0.1 * z)))
    a = sig * np.cos(np.minimum(z, 1.0)) + np.sqrt(1 + z * z)
    J, _ = module.value_and_grad(**args)
    assert J == pytest.approx(np.mean((a - args["t"]) ** 2), rel=1e-13)


BATCH_NORM = """input x[n, d]
input t[n, q]
param W1[h, d]
param g[h]
param W2[q, h]
z = x @ W1.T
mu = mean(z, axis=0, keepdims=True)
zc = z - mu
v = mean(zc * zc, axis=0, keepdims=True)
a = tanh(zc / sqrt(v + 1e-5) * g)
o = a @ W2.T
J = mean((o - t) ** 2)
minimize J
"""


def test_column_sums_join_the_elementwise_loop_they_read():
    """The backward of a batch statistic: dJ/dg and the variance's cotangent (sums over the
    batch) are summed in the same pass that makes the values they sum."""
    source = compile_source(BATCH_NORM, "bn.gg").source
    kernel = _kernel(source, "_value_and_grad_kernel")
    backward = kernel[kernel.index("dJ/da = "):]
    loops = [line for line in backward.splitlines() if line.strip().startswith("for i0 in")]
    assert len(loops) == 3, backward  # was 7
    fused = backward[backward.index("dJ_dg[:] = 0.0"):]
    fused = fused[:fused.index("# ")]
    assert "dJ_dg[i1] +=" in fused and "_g29[i0, i1] = " in fused
    module = load_python(source)
    rng = np.random.default_rng(5)
    args = {"x": rng.normal(size=(6, 3)), "t": rng.normal(size=(6, 2)),
            "W1": rng.normal(size=(4, 3)), "g": rng.uniform(0.5, 1.5, 4),
            "W2": rng.normal(size=(2, 4))}
    results = check_gradients(module, args, rtol=1e-6, seed=0)
    assert all(r.ok for r in results), [(r.name, r.max_rel_error) for r in results]


def test_column_sum_in_a_loop_rerun_with_libm_is_not_summed_twice(build):
    """A loop that calls sin/cos runs again with libm when an argument is beyond 1e6; the
    column sums it holds start from zero again (they would otherwise count twice)."""
    m = build("input x[n, d]\nparam b[d]\nJ = sum(cos(x + b))\nminimize J\n", "colsum")
    x = np.array([[3e7, 0.5], [1.0, -2e8], [0.25, 2.0]])
    b = np.array([0.1, -0.3])
    J, grads = m.value_and_grad(x=x, b=b)
    assert J == pytest.approx(float(np.sum(np.cos(x + b))), rel=1e-12)
    np.testing.assert_allclose(grads["b"], -np.sin(x + b).sum(axis=0), rtol=1e-12)


LAYER_NORM = """input x[n, d]
input t[n, q]
param W1[h, d]
param g[h]
param W2[q, h]
z = x @ W1.T
mu = mean(z, axis=1, keepdims=True)
zc = z - mu
v = mean(zc * zc, axis=1, keepdims=True)
a = zc / sqrt(v + 1e-5) * g
o = a @ W2.T
J = mean(o * o) + mean((o - t) ** 2)
minimize J
"""


def test_row_statistics_and_their_maps_share_one_loop_over_rows():
    """Layer norm's mean, centring, variance and scaling run row by row in one outer loop
    (each row read from memory once), where they were four passes."""
    kernel = _kernel(compile_source(LAYER_NORM, "ln.gg").source, "_forward_kernel")
    between = kernel[kernel.index("_dot_t(x, W1"):kernel.index("o = a @ W2.T")]
    outer = [line for line in between.splitlines() if line.startswith("    for i0 in")]
    assert len(outer) == 1, between
    assert between.count("for i1 in range(h)") == 4


def test_layer_norm_through_numba_matches_numpy_and_finite_differences(build):
    rng = np.random.default_rng(11)
    args = {"x": rng.normal(size=(6, 5)), "t": rng.normal(size=(6, 2)),
            "W1": rng.normal(size=(4, 5)), "g": rng.uniform(0.5, 1.5, 4),
            "W2": rng.normal(size=(2, 4))}
    results = check_gradients(load_python(compile_source(LAYER_NORM, "ln.gg").source), args,
                              rtol=1e-6, seed=0)
    assert all(r.ok for r in results), [(r.name, r.max_rel_error) for r in results]
    m = build(LAYER_NORM, "layer_norm")
    z = args["x"] @ args["W1"].T
    zc = z - z.mean(axis=1, keepdims=True)
    a = zc / np.sqrt((zc * zc).mean(axis=1, keepdims=True) + 1e-5) * args["g"]
    o = a @ args["W2"].T
    J, grads = m.value_and_grad(**args)
    assert J == pytest.approx(np.mean(o * o) + np.mean((o - args["t"]) ** 2), rel=1e-13)
    J2, grads2 = load_python(compile_source(LAYER_NORM, "ln.gg").source).value_and_grad(**args)
    for name in grads:  # the JIT and plain Python run the same source
        np.testing.assert_allclose(grads[name], grads2[name], rtol=1e-12)
