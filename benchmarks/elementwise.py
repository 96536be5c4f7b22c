"""Workload 3: an elementwise-heavy gradient,
J = sum(softplus(x)·sin(x)² + tanh(x)·exp(−x²)), dJ/dx for 1e6 and 1e7 float64 elements."""
from __future__ import annotations

from pathlib import Path

import numba
import numpy as np

import graphgen

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "benchmarks" / "specs" / "elementwise.gg"


def reference_grad(x):
    """dJ/dx by hand (NumPy): the oracle for the agreement check and the NumPy peer."""
    sp = np.logaddexp(0.0, x)
    sig = 0.5 * (1.0 + np.tanh(0.5 * x))
    s, c, t = np.sin(x), np.cos(x), np.tanh(x)
    e = np.exp(-x * x)
    return sig * s * s + sp * 2 * s * c + (1 - t * t) * e - 2 * x * t * e, \
        float(np.sum(sp * s * s + t * e))


@numba.njit(cache=True, fastmath={"reassoc"})
def numba_grad(x, g):
    J = 0.0
    for i in range(x.size):
        v = x[i]
        a = np.exp(-abs(v))
        sp = max(v, 0.0) + np.log1p(a)
        sig = 1.0 / (1.0 + a) if v >= 0 else a / (1.0 + a)
        s, c, t = np.sin(v), np.cos(v), np.tanh(v)
        e = np.exp(-v * v)
        J += sp * s * s + t * e
        g[i] = sig * s * s + 2.0 * sp * s * c + (1.0 - t * t) * e - 2.0 * v * t * e
    return J


def impls(n: int, compile_torch: bool) -> tuple[dict, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=n) * 2.0
    m = graphgen.load(SPEC, out_dir=ROOT / "benchmarks" / "generated")
    g = np.empty_like(x)
    out = {"graphgen": lambda: m.value_and_grad(x=x)[1]["x"],
           "NumPy by hand": lambda: reference_grad(x)[0],
           "Numba by hand": lambda: (numba_grad(x, g), g)[1]}
    try:
        import torch

        tx = torch.from_numpy(x)

        def f(t):
            return (torch.nn.functional.softplus(t) * torch.sin(t) ** 2
                    + torch.tanh(t) * torch.exp(-t * t)).sum()

        def eager():
            t = tx.clone().requires_grad_(True)
            f(t).backward()
            return t.grad.numpy()

        out["PyTorch eager"] = eager
        if compile_torch:
            cg = torch.compile(lambda t: torch.func.grad(f)(t))
            out["torch.compile"] = lambda: cg(tx).numpy()
    except ImportError:
        pass
    try:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        jx = jnp.asarray(x)
        jg = jax.jit(jax.grad(lambda t: jnp.sum(jax.nn.softplus(t) * jnp.sin(t) ** 2
                                                + jnp.tanh(t) * jnp.exp(-t * t))))
        out["JAX jit"] = lambda: np.asarray(jg(jx).block_until_ready())
    except ImportError:
        pass
    return out, x
