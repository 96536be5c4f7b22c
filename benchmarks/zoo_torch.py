"""The graph zoo in PyTorch: one loss per graph, written from the math (not from graphgen's
output), with PyTorch's own fused layers where it has one (layer_norm, rms_norm, batch_norm,
scaled_dot_product_attention, gelu, huber_loss, cross_entropy): the peer at its best.

Each function takes `p` (the parameters, a dict of leaf tensors) and `d` (the inputs, a dict)
and returns the scalar objective; the same functions run eagerly and under torch.compile.
Constants are the specs' own (benchmarks/specs/zoo/NAME.gg).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _sq(a):
    return (a * a).sum()


def bilinear_lse(p, d, lam=1e-3):
    S = torch.einsum("nd,de,me->nm", d["A"], p["W"], d["B"])
    return (torch.logsumexp(S, 1) - (d["P"] * S).sum(1)).mean() + lam / 2 * _sq(p["W"])


def cp_decomp(p, d, lam=1e-3):
    R = torch.einsum("ir,jr,kr->ijk", p["U"], p["V"], p["Z"]) - d["X"]
    return _sq(R) / 2 + lam / 2 * (_sq(p["U"]) + _sq(p["V"]) + _sq(p["Z"]))


def layer_norm(p, d):
    z = d["x"] @ p["W1"].T
    zn = F.layer_norm(z, z.shape[1:], p["g"], p["b"], eps=1e-5)
    return ((torch.tanh(zn) @ p["W2"].T - d["t"]) ** 2).mean()


def rms_norm(p, d):
    z = d["x"] @ p["W1"].T
    zn = F.rms_norm(z, z.shape[1:], p["g"], eps=1e-6)
    return F.cross_entropy(torch.relu(zn) @ p["W2"].T, d["y"])


def batch_norm(p, d):
    z = d["x"] @ p["W1"].T
    hid = torch.relu(F.batch_norm(z, None, None, p["g"], p["b"], training=True, eps=1e-5))
    return F.cross_entropy(hid @ p["W2"].T, d["y"])


def attention(p, d):
    X = d["X"]
    O = F.scaled_dot_product_attention(X @ p["Wq"], X @ p["Wk"], X @ p["Wv"],
                                       scale=1 / 8)  # 1/sqrt(k), k = 64 in the benchmark
    return ((O - d["T"]) ** 2).mean()


def attention_mh(p, d):
    X = d["X"]
    Q = torch.einsum("nd,hdk->hnk", X, p["Wq"])
    K = torch.einsum("nd,hdk->hnk", X, p["Wk"])
    V = torch.einsum("nd,hdk->hnk", X, p["Wv"])
    H = F.scaled_dot_product_attention(Q, K, V, scale=32 ** -0.5)  # k = 32 in the benchmark
    O = torch.einsum("hnk,hkd->nd", H, p["Wo"])
    return ((O - d["T"]) ** 2).mean()


def elementwise_chain(p, d):
    z = d["x"] @ p["W"].T
    u = torch.sigmoid(torch.maximum(z, 0.1 * z)) * torch.cos(z) \
        + torch.sqrt(1 + torch.clamp(z, max=0) ** 2)
    return (u.mean(1) ** 2).mean() + ((u.mean(0) - 1) ** 2).mean()


def tanh_mlp(p, d):
    o = torch.tanh(d["x"] @ p["W1"].T + p["b1"]) @ p["W2"].T + p["b2"]
    return ((o - d["t"]) ** 2).mean()


def gelu_mlp(p, d):
    h1 = F.gelu(d["x"] @ p["W1"].T + p["b1"], approximate="tanh")
    h2 = F.gelu(h1 @ p["W2"].T + p["b2"], approximate="tanh")
    return ((torch.sigmoid(h2 @ p["W3"].T) - d["t"]) ** 2).mean()


def masked_mf(p, d, lam=1e-2):
    E = d["M"] * (p["U"] @ p["V"].T - d["R"])
    return _sq(E) / 2 + lam / 2 * (_sq(p["U"]) + _sq(p["V"]))


def logistic(p, d, lam=1e-3):
    z = d["X"] @ p["w"] + p["b"]
    return (F.softplus(z) - d["y"] * z).mean() + lam / 2 * _sq(p["w"])


def poisson(p, d):
    z = d["X"] @ p["W"].T + p["b"]
    return (torch.exp(z) - d["y"] * z).mean()


def huber(p, d):
    return F.huber_loss(d["X"] @ p["W"].T + p["b"], d["t"], delta=1.0)


def rnn4(p, d):
    def cell(x, h=None):
        pre = x @ p["Wx"].T + p["b"]
        return torch.tanh(pre if h is None else pre + h @ p["Wh"].T)

    h = cell(d["x4"], cell(d["x3"], cell(d["x2"], cell(d["x1"]))))
    return F.cross_entropy(h @ p["Wo"].T, d["y"])
