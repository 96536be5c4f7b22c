"""The seed network (D2L §4.7) against an independent, hand-written NumPy implementation of
the seven backward steps of the seed derivation."""
import numpy as np
import pytest


def hand_written(x, y, W1, W2, lam):
    """Forward and the seven backward steps, written from the seed document by hand."""
    n = x.shape[0]
    z = x @ W1.T
    h = np.maximum(z, 0.0)
    o = h @ W2.T
    m = o.max(axis=1, keepdims=True)
    lse = np.log(np.exp(o - m).sum(axis=1)) + m[:, 0]
    L = np.mean(lse - o[np.arange(n), y])
    s = lam / 2 * (np.sum(W1 ** 2) + np.sum(W2 ** 2))
    J = L + s
    # Step 1: dJ/dL = dJ/ds = 1.  Step 2: dJ/do = dL/do (softmax minus one-hot, averaged).
    P = np.exp(o - lse[:, None])
    P[np.arange(n), y] -= 1.0
    dJ_do = P / n
    # Step 3: ds/dW = lam W.  Step 4: dJ/dW2 = dJ/do h^T + lam W2 (rows are examples here).
    dJ_dW2 = dJ_do.T @ h + lam * W2
    # Step 5: dJ/dh = W2^T dJ/do.
    dJ_dh = dJ_do @ W2
    # Step 6: dJ/dz = dJ/dh ⊙ φ'(z), relu'(0) = 0.
    dJ_dz = dJ_dh * (z > 0)
    # Step 7: dJ/dW1 = dJ/dz x^T + lam W1.
    dJ_dW1 = dJ_dz.T @ x + lam * W1
    return J, o, {"W1": dJ_dW1, "W2": dJ_dW2}


def data(n=13, d=9, h=7, q=4, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, d)).astype(dtype), rng.integers(0, q, n),
            (rng.normal(size=(h, d)) * 0.5).astype(dtype),
            (rng.normal(size=(q, h)) * 0.5).astype(dtype))


@pytest.mark.parametrize("shape", [(13, 9, 7, 4), (1, 3, 2, 2), (40, 20, 16, 10)])
def test_value_and_grad_matches_hand_derivation(mlp, shape):
    x, y, W1, W2 = data(*shape)
    J_ref, _, g_ref = hand_written(x, y, W1, W2, 1e-2)
    J, g = mlp.value_and_grad(x=x, y=y, W1=W1, W2=W2, lam=1e-2)
    assert J == pytest.approx(J_ref, rel=1e-12)
    for p in ("W1", "W2"):
        np.testing.assert_allclose(g[p], g_ref[p], rtol=1e-10, atol=1e-13)


def test_forward_backward_tape_and_predict(mlp):
    x, y, W1, W2 = data()
    J_ref, o_ref, g_ref = hand_written(x, y, W1, W2, 1e-4)
    tape = mlp.forward(x=x, y=y, W1=W1, W2=W2)  # lam takes its declared default 1e-4
    assert tape["J"] == pytest.approx(J_ref, rel=1e-12)
    np.testing.assert_allclose(tape["o"], o_ref, rtol=1e-12)
    # the tape keeps what the backward pass reuses: hid (for dJ/dW2 and relu', read off the
    # output), not the pre-activation z, which relu overwrote in place
    assert "hid" in tape and "z" not in tape
    grads = mlp.backward(tape)
    for p in ("W1", "W2"):
        np.testing.assert_allclose(grads[p], g_ref[p], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(mlp.predict(x=x, W1=W1, W2=W2), o_ref, rtol=1e-12)


def test_positional_arguments_in_declaration_order(mlp):
    x, y, W1, W2 = data()
    J1, _ = mlp.value_and_grad(x, y, W1, W2, 1e-3)
    J2, _ = mlp.value_and_grad(x=x, y=y, W1=W1, W2=W2, lam=1e-3)
    assert J1 == J2


def test_sgd_step_updates_in_place(mlp):
    x, y, W1, W2 = data()
    J_ref, _, g_ref = hand_written(x, y, W1, W2, 1e-3)
    W1u, W2u = W1.copy(), W2.copy()
    J = mlp.sgd_step(x=x, y=y, W1=W1u, W2=W2u, lam=1e-3, lr=0.5)
    assert J == pytest.approx(J_ref, rel=1e-12)
    np.testing.assert_allclose(W1u, W1 - 0.5 * g_ref["W1"], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(W2u, W2 - 0.5 * g_ref["W2"], rtol=1e-10, atol=1e-13)


def test_float32_works(mlp):
    x, y, W1, W2 = data(dtype=np.float32)
    J_ref, _, g_ref = hand_written(*(a.astype(np.float64) if a.dtype.kind == "f" else a
                                     for a in (x, y, W1, W2)), 1e-2)
    J, g = mlp.value_and_grad(x=x, y=y, W1=W1, W2=W2, lam=1e-2)
    assert g["W1"].dtype == np.float32 and g["W2"].dtype == np.float32
    assert J == pytest.approx(J_ref, rel=1e-5)
    for p in ("W1", "W2"):
        np.testing.assert_allclose(g[p], g_ref[p], rtol=1e-4, atol=1e-6)
    assert mlp.predict(x=x, W1=W1, W2=W2).dtype == np.float32


def test_relu_kink_follows_pytorch(mlp):
    # z exactly 0 in every hidden unit: relu'(0) = 0, so no gradient reaches W1 from the loss
    x, y, W1, W2 = data()
    x[:] = 0.0
    _, g = mlp.value_and_grad(x=x, y=y, W1=W1, W2=W2, lam=0.0)
    assert np.all(g["W1"] == 0.0)


def test_cross_entropy_is_stable_for_huge_logits(mlp):
    x, y, W1, W2 = data()
    W2 = W2 * 1e4
    J, g = mlp.value_and_grad(x=x, y=y, W1=W1, W2=W2, lam=0.0)
    J_ref, _, g_ref = hand_written(x, y, W1, W2, 0.0)
    assert np.isfinite(J) and all(np.all(np.isfinite(v)) for v in g.values())
    assert J == pytest.approx(J_ref, rel=1e-10)
