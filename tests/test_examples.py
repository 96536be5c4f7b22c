"""Every example spec passes the finite-difference check; the bias and softmax examples also
match independent NumPy implementations, and (when installed) PyTorch autograd."""
from pathlib import Path

import numpy as np
import pytest

import graphgen
from graphgen.gradcheck import check_gradients, random_arguments

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "examples").glob("*.gg"))


@pytest.fixture(scope="module")
def modules(gen_dir):
    return {p.stem: graphgen.load(p, out_dir=gen_dir) for p in SPECS}


@pytest.mark.parametrize("name", [p.stem for p in SPECS])
def test_example_gradients_match_finite_differences(modules, name):
    m = modules[name]
    dims = {d: 3 + k for k, d in enumerate(m.DIMS)}
    args = random_arguments(m, dims, seed=3)
    results = check_gradients(m, args, rtol=1e-6)
    assert all(r.ok for r in results), results


def _bias_reference(x, y, W1, b1, W2, b2, lam):
    n = len(y)
    z = x @ W1.T + b1
    h = np.maximum(z, 0)
    o = h @ W2.T + b2
    P = np.exp(o - o.max(1, keepdims=True))
    P /= P.sum(1, keepdims=True)
    J = -np.mean(np.log(P[np.arange(n), y])) + lam / 2 * ((W1 ** 2).sum() + (W2 ** 2).sum())
    P[np.arange(n), y] -= 1
    do = P / n
    dz = (do @ W2) * (z > 0)
    return J, {"W1": dz.T @ x + lam * W1, "b1": dz.sum(0), "W2": do.T @ h + lam * W2,
               "b2": do.sum(0)}


def test_biases_match_numpy(modules):
    rng = np.random.default_rng(1)
    n, d, h, q = 11, 6, 5, 4
    args = dict(x=rng.normal(size=(n, d)), y=rng.integers(0, q, n),
                W1=rng.normal(size=(h, d)), b1=rng.normal(size=h),
                W2=rng.normal(size=(q, h)), b2=rng.normal(size=q))
    J, g = modules["mlp_bias"].value_and_grad(**args, lam=0.01)
    J_ref, g_ref = _bias_reference(**args, lam=0.01)
    assert J == pytest.approx(J_ref, rel=1e-12)
    for k in g_ref:
        np.testing.assert_allclose(g[k], g_ref[k], rtol=1e-10, atol=1e-13)


def test_softmax_squared_error_matches_numpy(modules):
    rng = np.random.default_rng(2)
    n, d, q = 9, 5, 4
    x, W, b = rng.normal(size=(n, d)), rng.normal(size=(q, d)), rng.normal(size=q)
    t = np.eye(q)[rng.integers(0, q, n)]
    J, g = modules["softmax_mse"].value_and_grad(x=x, t=t, W=W, b=b)
    a = x @ W.T + b
    p = np.exp(a - a.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    r = p - t
    da = p * (r - (r * p).sum(1, keepdims=True))  # softmax Jacobian-vector product
    assert J == pytest.approx(0.5 * (r ** 2).sum(), rel=1e-12)
    np.testing.assert_allclose(g["W"], da.T @ x, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(g["b"], da.sum(0), rtol=1e-10, atol=1e-13)


def test_swish_and_einsum_examples_agree_with_pytorch(modules):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    n, d, h, q = 8, 5, 6, 3
    x, y = rng.normal(size=(n, d)), rng.integers(0, q, n)
    W1, b1, W2, b2 = (rng.normal(size=s) for s in [(h, d), (h,), (q, h), (q,)])
    T = {k: torch.tensor(v, requires_grad=True) for k, v in
         dict(W1=W1, b1=b1, W2=W2, b2=b2).items()}
    tx, ty = torch.tensor(x), torch.tensor(y)
    pre = tx @ T["W1"].T + T["b1"]
    o = (pre * torch.sigmoid(pre)) @ T["W2"].T + T["b2"]
    torch.nn.functional.cross_entropy(o, ty).backward()
    J, g = modules["swish"].value_and_grad(x=x, y=y, W1=W1, b1=b1, W2=W2, b2=b2)
    for k in T:
        np.testing.assert_allclose(g[k], T[k].grad.numpy(), rtol=1e-10, atol=1e-13)
