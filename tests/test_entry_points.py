"""Entry points beyond training: outputs with gradients, gradients w.r.t. float inputs
(checked by finite differences), strict=False, the "did you mean" hint, 0-d hypers.
Run with the JIT off (`load_python`): the same source, no compile time."""
import numpy as np
import pytest

from graphgen.build import load_python
from graphgen.pipeline import compile_source

SPEC = """
input x[n, d]
input y[n]: int
param W1[h, d]
param W2[q, h]
hyper lam = 1e-4
hid = tanh(x @ W1.T)
o = hid @ W2.T
J = mean(cross_entropy(o, y)) + lam * sum(W1 ** 2)
minimize J
output hid, o
"""


@pytest.fixture(scope="module")
def m():
    return load_python(compile_source(SPEC, "ep.gg").source, "ep")


@pytest.fixture
def args():
    rng = np.random.default_rng(0)
    return {"x": rng.normal(size=(6, 4)), "y": np.array([0, 1, 2, 0, 1, 2]),
            "W1": rng.normal(size=(5, 4)), "W2": rng.normal(size=(3, 5))}


def test_outputs_come_with_the_gradients(m, args):
    J, grads = m.value_and_grad(**args)
    J2, grads2, outs = m.value_and_grad(**args, outputs=True)
    assert J2 == J and set(grads2) == {"W1", "W2"}
    np.testing.assert_array_equal(grads2["W1"], grads["W1"])
    hid, o = m.predict(x=args["x"], W1=args["W1"], W2=args["W2"])
    np.testing.assert_allclose(outs["hid"], hid, rtol=1e-14)
    np.testing.assert_allclose(outs["o"], o, rtol=1e-14)


def test_gradient_with_respect_to_an_input_matches_finite_differences(m, args):
    J, grads = m.value_and_grad(**args, wrt=("x",))
    assert set(grads) == {"W1", "W2", "x"}
    np.testing.assert_allclose(grads["W1"], m.value_and_grad(**args)[1]["W1"], rtol=1e-14)
    direction = np.random.default_rng(1).normal(size=args["x"].shape)
    eps = 1e-6
    plus = m.value_and_grad(**{**args, "x": args["x"] + eps * direction})[0]
    minus = m.value_and_grad(**{**args, "x": args["x"] - eps * direction})[0]
    np.testing.assert_allclose((plus - minus) / (2 * eps), np.sum(grads["x"] * direction),
                               rtol=1e-6)
    J3, grads3, outs = m.value_and_grad(**args, wrt="x", outputs=True)
    assert J3 == J and outs["o"].shape == (6, 3)


def test_wrt_refuses_integer_inputs_and_unknown_names(m, args):
    with pytest.raises(ValueError, match="wrt='y': an integer input"):
        m.value_and_grad(**args, wrt=("y",))
    with pytest.raises(ValueError, match="wrt='z': not an input or param"):
        m.value_and_grad(**args, wrt=("z",))
    J, grads = m.value_and_grad(**args, wrt=("W1",))  # params are always there
    assert set(grads) == {"W1", "W2"}


def test_strict_false_ignores_the_specs_other_arguments_only(m, args):
    hid, o = m.predict(**args, lam=0.5, lr=0.1, strict=False)
    assert o.shape == (6, 3)
    with pytest.raises(TypeError, match=r"unexpected argument 'y'; it takes x, W1, W2 "
                                        r"\(strict=False"):
        m.predict(**args)
    with pytest.raises(TypeError, match="unexpected argument 'bogus'"):
        m.predict(**args, bogus=1, strict=False)
    J, _ = m.value_and_grad(**args, lr=0.1, strict=False)
    assert np.isfinite(J)


def test_did_you_mean_never_suggests_a_given_argument(m, args):
    with pytest.raises(TypeError, match="unexpected argument 'W3'; did you mean 'W2'"):
        m.value_and_grad(x=args["x"], y=args["y"], W1=args["W1"], W3=args["W2"])
    with pytest.raises(TypeError) as info:  # x is given: it is not a suggestion for xx
        m.value_and_grad(**args, xx=args["x"])
    assert "did you mean 'x'" not in str(info.value)


@pytest.mark.parametrize("lam", [np.array(1e-3), np.float32(1e-3), np.int64(0), 1e-3])
def test_hypers_accept_0d_arrays_and_numpy_scalars(m, args, lam):
    J, _ = m.value_and_grad(**args, lam=lam)
    J_ref, _ = m.value_and_grad(**args, lam=float(lam))
    assert J == J_ref
    W1, W2 = args["W1"].copy(), args["W2"].copy()
    assert m.sgd_step(**{**args, "W1": W1, "W2": W2}, lam=lam, lr=np.array(0.1)) == J_ref
