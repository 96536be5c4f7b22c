"""Workloads 1 and 2: the seed network's SGD step and its inference, by every peer.

Every implementation starts from the same arrays and is checked against graphgen (one step:
same objective, same updated parameters) before anything is timed.
"""
from __future__ import annotations

from pathlib import Path

import numba
import numpy as np

import graphgen

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"tiny": (32, 8, 16, 3), "seed": (128, 784, 256, 10), "large": (1024, 784, 1024, 10)}
LAM = 1e-4
LR = 1e-3


def make_data(n, d, h, q, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(dtype)
    y = rng.integers(0, q, n).astype(np.int64)
    W1 = (rng.normal(size=(h, d)) * np.sqrt(2.0 / d)).astype(dtype)
    W2 = (rng.normal(size=(q, h)) * np.sqrt(2.0 / h)).astype(dtype)
    return x, y, W1, W2


# ----------------------------------------------------------------------------- graphgen
def graphgen_module():
    return graphgen.load(ROOT / "examples" / "mlp.gg",
                         out_dir=ROOT / "benchmarks" / "generated")


# ----------------------------------------------------------------------------- NumPy by hand
def numpy_step(x, y, W1, W2, lam, lr):
    n = x.shape[0]
    z = x @ W1.T
    hid = np.maximum(z, 0)
    o = hid @ W2.T
    m = o.max(axis=1, keepdims=True)
    e = np.exp(o - m)
    s = e.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    L = float(np.mean(np.log(s[:, 0]) + m[:, 0] - o[rows, y]))
    J = L + lam / 2 * (float(np.vdot(W1, W1)) + float(np.vdot(W2, W2)))
    do = e / s
    do[rows, y] -= 1
    do /= n
    dW2 = do.T @ hid
    dz = do @ W2
    dz *= z > 0
    dW1 = dz.T @ x
    dW1 += lam * W1
    dW2 += lam * W2
    W1 -= lr * dW1
    W2 -= lr * dW2
    return J


def numpy_predict(x, W1, W2):
    return np.maximum(x @ W1.T, 0) @ W2.T


# ----------------------------------------------------------------------------- Numba by hand
@numba.njit(cache=True, fastmath={"reassoc"})
def numba_step(x, y, W1, W2, lam, lr):
    """The best step a person would write: BLAS products, fused loops, one call."""
    n, d = x.shape
    h, q = W1.shape[0], W2.shape[0]
    z = np.dot(x, W1.T)
    hid = np.maximum(z, 0)
    o = np.dot(hid, W2.T)
    L = 0.0
    for i in range(n):
        m = o[i, 0]
        for j in range(1, q):
            m = max(m, o[i, j])
        picked = o[i, y[i]]
        s = 0.0
        for j in range(q):
            o[i, j] = np.exp(o[i, j] - m)
            s += o[i, j]
        L += np.log(s) + m - picked
        for j in range(q):
            o[i, j] = o[i, j] / s / n
        o[i, y[i]] -= 1.0 / n
    sq = 0.0
    for i in range(h):
        for j in range(d):
            sq += W1[i, j] * W1[i, j]
    for i in range(q):
        for j in range(h):
            sq += W2[i, j] * W2[i, j]
    J = L / n + lam / 2 * sq
    dW2 = np.dot(o.T, hid)
    dz = np.dot(o, W2)
    for i in range(n):
        for j in range(h):
            if z[i, j] <= 0:
                dz[i, j] = 0.0
    dW1 = np.dot(dz.T, x)
    for i in range(h):
        for j in range(d):
            W1[i, j] -= lr * (dW1[i, j] + lam * W1[i, j])
    for i in range(q):
        for j in range(h):
            W2[i, j] -= lr * (dW2[i, j] + lam * W2[i, j])
    return J


@numba.njit(cache=True)
def numba_predict(x, W1, W2):
    return np.dot(np.maximum(np.dot(x, W1.T), 0), W2.T)


# ----------------------------------------------------------------------------- GEMM floor
@numba.njit(cache=True)
def _five_products(x, W1, W2, z, o, dh, g2, g1):
    np.dot(x, W1.T, z)
    np.dot(z, W2.T, o)
    np.dot(o, W2, dh)
    np.dot(o.T, z, g2)
    np.dot(dh.T, x, g1)


def gemm_floor(x, W1, W2, dtype):
    """Only the five matrix products of a step, on preallocated arrays, in one native call
    through the same BLAS (SciPy's OpenBLAS, via Numba's np.dot) that graphgen calls."""
    n, d = x.shape
    h, q = W1.shape[0], W2.shape[0]
    bufs = [np.empty(s, dtype) for s in [(n, h), (n, q), (n, h), (q, h), (h, d)]]
    return lambda: _five_products(x, W1, W2, *bufs)


# ----------------------------------------------------------------------------- PyTorch
def torch_impls(x, y, W1, W2, compile_too: bool, lr: float = LR):
    import torch

    torch.set_num_threads(2)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    P = {k: torch.from_numpy(v.copy()).requires_grad_(True) for k, v in (("W1", W1), ("W2", W2))}

    def loss_fn(W1t, W2t):
        o = torch.relu(tx @ W1t.T) @ W2t.T
        return torch.nn.functional.cross_entropy(o, ty) + LAM / 2 * (
            (W1t * W1t).sum() + (W2t * W2t).sum())

    def eager():
        J = loss_fn(P["W1"], P["W2"])
        g1, g2 = torch.autograd.grad(J, (P["W1"], P["W2"]))
        with torch.no_grad():
            P["W1"].sub_(lr * g1)
            P["W2"].sub_(lr * g2)
        return float(J.detach())

    impls = {"PyTorch eager": (eager, P)}
    if compile_too:
        Pc = {k: torch.from_numpy(v.copy()).requires_grad_(True) for k, v in
              (("W1", W1), ("W2", W2))}

        def step(W1t, W2t):
            J = loss_fn(W1t, W2t)
            g1, g2 = torch.autograd.grad(J, (W1t, W2t))
            return J, g1, g2

        compiled = torch.compile(step)

        def comp():
            J, g1, g2 = compiled(Pc["W1"], Pc["W2"])
            with torch.no_grad():
                Pc["W1"].sub_(lr * g1)
                Pc["W2"].sub_(lr * g2)
            return float(J.detach())

        impls["torch.compile"] = (comp, Pc)
    return impls


def torch_predict(x, W1, W2):
    import torch

    tx, t1, t2 = torch.from_numpy(x), torch.from_numpy(W1), torch.from_numpy(W2)

    def run():
        with torch.no_grad():
            return torch.relu(tx @ t1.T) @ t2.T

    return run


# ----------------------------------------------------------------------------- JAX
def jax_impl(x, y, W1, W2, lr: float = LR):
    import jax
    import jax.numpy as jnp

    if x.dtype == np.float64:
        jax.config.update("jax_enable_x64", True)
    jx, jy = jnp.asarray(x), jnp.asarray(y)

    def loss(params):
        W1j, W2j = params
        o = jax.nn.relu(jx @ W1j.T) @ W2j.T
        lse = jax.nn.logsumexp(o, axis=1)
        L = jnp.mean(lse - jnp.take_along_axis(o, jy[:, None], axis=1)[:, 0])
        return L + LAM / 2 * (jnp.sum(W1j * W1j) + jnp.sum(W2j * W2j))

    @jax.jit
    def step(params):
        J, g = jax.value_and_grad(loss)(params)
        return J, tuple(p - lr * gp for p, gp in zip(params, g))

    state = {"params": (jnp.asarray(W1), jnp.asarray(W2))}

    def run():
        J, state["params"] = step(state["params"])
        return J

    def predict_fn():
        f = jax.jit(lambda a, b, c: jax.nn.relu(a @ b.T) @ c.T)
        p1, p2 = jnp.asarray(W1), jnp.asarray(W2)
        return lambda: f(jx, p1, p2).block_until_ready()

    def timed():
        J = run()
        J.block_until_ready()
        return J

    return timed, state, predict_fn


# ----------------------------------------------------------------------------- assembly
def available(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def step_impls(size: str, dtype, lr: float, compile_torch: bool, notes: list) -> dict:
    """name -> (step callable returning J, params getter returning (W1, W2) as NumPy)."""
    n, d, h, q = SIZES[size]
    x, y, W1, W2 = make_data(n, d, h, q, dtype)
    m = graphgen_module()
    impls = {}
    g1, g2 = W1.copy(), W2.copy()
    impls["graphgen"] = (lambda: m.sgd_step(x, y, g1, g2, lam=LAM, lr=lr), lambda: (g1, g2))
    n1, n2 = W1.copy(), W2.copy()
    impls["NumPy by hand"] = (lambda: numpy_step(x, y, n1, n2, LAM, lr), lambda: (n1, n2))
    b1, b2 = W1.copy(), W2.copy()
    impls["Numba by hand"] = (lambda: numba_step(x, y, b1, b2, LAM, lr), lambda: (b1, b2))
    if available("torch"):
        for name, (fn, P) in torch_impls(x, y, W1, W2, compile_torch, lr).items():
            impls[name] = (fn, lambda P=P: tuple(P[k].detach().numpy() for k in ("W1", "W2")))
    elif "PyTorch not installed" not in notes:
        notes.append("PyTorch not installed: its rows are skipped (pip install torch==2.13.0)")
    if available("jax"):
        fn, state, _ = jax_impl(x, y, W1, W2, lr)
        impls["JAX jit"] = (fn, lambda: tuple(np.asarray(p) for p in state["params"]))
    elif "JAX not installed" not in notes:
        notes.append("JAX not installed: its rows are skipped (pip install jax jaxlib)")
    return impls, (x, y, W1, W2)


def predict_impls(size: str, dtype) -> dict:
    n, d, h, q = SIZES[size]
    x, _, W1, W2 = make_data(n, d, h, q, dtype)
    m = graphgen_module()
    impls = {"graphgen": lambda: m.predict(x, W1, W2),
             "NumPy by hand": lambda: numpy_predict(x, W1, W2),
             "Numba by hand": lambda: numba_predict(x, W1, W2)}
    if available("torch"):
        impls["PyTorch no_grad"] = torch_predict(x, W1, W2)
    if available("jax"):
        impls["JAX jit"] = jax_impl(x, np.zeros(n, np.int64), W1, W2)[2]()
    return impls
