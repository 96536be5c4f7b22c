"""The graph zoo in JAX: one loss per graph, written from the math (not from graphgen's output).

Each function takes `p` (the parameters, a dict: what jax.value_and_grad differentiates) and
`d` (the inputs, a dict) and returns the scalar objective. Constants are the specs' own
(benchmarks/specs/zoo/NAME.gg); a function has the name of its spec.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def _lse(s, axis):
    return jax.nn.logsumexp(s, axis=axis)


def _cross_entropy(logits, labels):
    """Mean softmax cross-entropy of [n, q] logits against [n] int labels."""
    picked = jnp.take_along_axis(logits, labels[:, None], axis=1)[:, 0]
    return jnp.mean(_lse(logits, 1) - picked)


def _sq(a):
    return jnp.sum(a * a)


def bilinear_lse(p, d, lam=1e-3):
    S = jnp.einsum("nd,de,me->nm", d["A"], p["W"], d["B"])
    return jnp.mean(_lse(S, 1) - jnp.sum(d["P"] * S, axis=1)) + lam / 2 * _sq(p["W"])


def cp_decomp(p, d, lam=1e-3):
    R = jnp.einsum("ir,jr,kr->ijk", p["U"], p["V"], p["Z"]) - d["X"]
    return _sq(R) / 2 + lam / 2 * (_sq(p["U"]) + _sq(p["V"]) + _sq(p["Z"]))


def layer_norm(p, d):
    z = d["x"] @ p["W1"].T
    mu = jnp.mean(z, axis=1, keepdims=True)
    var = jnp.mean((z - mu) ** 2, axis=1, keepdims=True)
    zn = (z - mu) / jnp.sqrt(var + 1e-5) * p["g"] + p["b"]
    o = jnp.tanh(zn) @ p["W2"].T
    return jnp.mean((o - d["t"]) ** 2)


def rms_norm(p, d):
    z = d["x"] @ p["W1"].T
    zn = z / jnp.sqrt(jnp.mean(z * z, axis=1, keepdims=True) + 1e-6) * p["g"]
    return _cross_entropy(jax.nn.relu(zn) @ p["W2"].T, d["y"])


def batch_norm(p, d):
    z = d["x"] @ p["W1"].T
    mu = jnp.mean(z, axis=0, keepdims=True)
    var = jnp.mean((z - mu) ** 2, axis=0, keepdims=True)
    hid = jax.nn.relu((z - mu) / jnp.sqrt(var + 1e-5) * p["g"] + p["b"])
    return _cross_entropy(hid @ p["W2"].T, d["y"])


def attention(p, d):
    X = d["X"]
    Q, K, V = X @ p["Wq"], X @ p["Wk"], X @ p["Wv"]
    A = jax.nn.softmax(Q @ K.T / 8, axis=-1)  # 1/sqrt(k), k = 64 in the benchmark
    return jnp.mean((A @ V - d["T"]) ** 2)


def attention_mh(p, d):
    X = d["X"]
    Q = jnp.einsum("nd,hdk->hnk", X, p["Wq"])
    K = jnp.einsum("nd,hdk->hnk", X, p["Wk"])
    V = jnp.einsum("nd,hdk->hnk", X, p["Wv"])
    S = jnp.einsum("hnk,hmk->hnm", Q, K) / 32 ** 0.5  # 1/sqrt(k), k = 32 in the benchmark
    A = jax.nn.softmax(S, axis=-1)
    O = jnp.einsum("hnk,hkd->nd", jnp.einsum("hnm,hmk->hnk", A, V), p["Wo"])
    return jnp.mean((O - d["T"]) ** 2)


def elementwise_chain(p, d):
    z = d["x"] @ p["W"].T
    u = jax.nn.sigmoid(jnp.maximum(z, 0.1 * z)) * jnp.cos(z) + jnp.sqrt(1 + jnp.minimum(z, 0) ** 2)
    return jnp.mean(jnp.mean(u, axis=1) ** 2) + jnp.mean((jnp.mean(u, axis=0) - 1) ** 2)


def tanh_mlp(p, d):
    o = jnp.tanh(d["x"] @ p["W1"].T + p["b1"]) @ p["W2"].T + p["b2"]
    return jnp.mean((o - d["t"]) ** 2)


def gelu_mlp(p, d):
    def gelu(s):  # the tanh approximation
        return jax.nn.gelu(s, approximate=True)

    h1 = gelu(d["x"] @ p["W1"].T + p["b1"])
    h2 = gelu(h1 @ p["W2"].T + p["b2"])
    return jnp.mean((jax.nn.sigmoid(h2 @ p["W3"].T) - d["t"]) ** 2)


def masked_mf(p, d, lam=1e-2):
    E = d["M"] * (p["U"] @ p["V"].T - d["R"])
    return _sq(E) / 2 + lam / 2 * (_sq(p["U"]) + _sq(p["V"]))


def logistic(p, d, lam=1e-3):
    z = d["X"] @ p["w"] + p["b"]
    return jnp.mean(jax.nn.softplus(z) - d["y"] * z) + lam / 2 * _sq(p["w"])


def poisson(p, d):
    z = d["X"] @ p["W"].T + p["b"]
    return jnp.mean(jnp.exp(z) - d["y"] * z)


def huber(p, d):
    a = jnp.abs(d["X"] @ p["W"].T + p["b"] - d["t"])
    return jnp.mean(jnp.where(a <= 1, 0.5 * a * a, a - 0.5))


def rnn4(p, d):
    def cell(x, h=None):
        pre = x @ p["Wx"].T + p["b"]
        return jnp.tanh(pre if h is None else pre + h @ p["Wh"].T)

    h = cell(d["x4"], cell(d["x3"], cell(d["x2"], cell(d["x1"]))))
    return _cross_entropy(h @ p["Wo"].T, d["y"])
