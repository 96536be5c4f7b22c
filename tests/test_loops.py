"""Loop shapes chosen for speed must not change what is computed: exp/log/tanh of an argument
that is constant along the inner loop (exp(o - max) over a few classes) is applied in a
flat second pass; an argument that varies along the inner loop keeps one pass."""
from __future__ import annotations

import numpy as np

from graphgen.gradcheck import check_gradients
from graphgen.pipeline import compile_source

# each map feeds a matrix product, so it is a loop of its own (not fused into a sum)
ROW_SCALED = """\
input x[n, k]
param s[n, 1]
param b[k]
param W[k, m]
J = sum((tanh(x * s) @ W) ** 2) + sum(exp(x - b) @ W)
minimize J
"""


def _kernel(source: str, name: str) -> str:
    start = source.index(f"def {name}(")
    return source[start:source.index("\n\n\n", start)]


def test_row_constant_argument_gets_a_flat_pass_and_the_bias_does_not():
    kernel = _kernel(compile_source(ROW_SCALED, "t.gg").source, "_forward_kernel")
    assert kernel.count("_flat = ") == 1
    flat = kernel.index("_flat = ")
    assert "_tanh(_flat[i0])" in kernel[flat:]
    assert "_exp(x[i0, i1] - b[i1])" in kernel  # varies along the inner loop: one pass


def test_flat_pass_values_and_gradients(build):
    module = build(ROW_SCALED)
    rng = np.random.default_rng(5)
    for n, k in ((7, 3), (3, 40)):
        x, s, b = rng.normal(size=(n, k)), rng.normal(size=(n, 1)), rng.normal(size=k)
        W = rng.normal(size=(k, 2))
        J, _ = module.value_and_grad(x=x, s=s, b=b, W=W)
        expected = ((np.tanh(x * s) @ W) ** 2).sum() + (np.exp(x - b) @ W).sum()
        assert abs(J - expected) <= 1e-12 * abs(expected)
        results = check_gradients(module, {"x": x, "s": s, "b": b, "W": W}, rtol=1e-7)
        assert all(r.ok for r in results), results


HEAVY = "sum(softplus({v}) * sin({v}) ** 2 + tanh({v}) * exp(-{v} ** 2))"


def test_threaded_twins_only_in_kernels_without_blas():
    """Right after a GEMM, OpenBLAS's threads still spin on the cores; a threaded loop in the
    same kernel waited for them (8x slower at 65k elements), so such kernels stay serial."""
    alone = compile_source(f"param x[n]\nJ = {HEAVY.format(v='x')}\nminimize J\n", "e.gg")
    assert "numba.prange" in alone.source
    with_gemm = compile_source("input x[n, d]\nparam W[h, d]\nz = x @ W.T\n"
                               f"J = {HEAVY.format(v='z')}\nminimize J\n", "g.gg")
    assert "numba.prange" not in with_gemm.source and "_dot_t(" in with_gemm.source
