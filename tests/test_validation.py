"""Arguments handed to generated code are validated before any kernel runs: clear
TypeError/ValueError naming the argument, never a crash or silent garbage."""
import numpy as np
import pytest


@pytest.fixture()
def args():
    rng = np.random.default_rng(0)
    return dict(x=rng.normal(size=(6, 5)), y=np.array([0, 1, 2, 0, 1, 2]),
                W1=rng.normal(size=(4, 5)), W2=rng.normal(size=(3, 4)))


@pytest.mark.parametrize("change, error, message", [
    (dict(x=np.zeros((6, 5, 1))), ValueError, "argument 'x' must have shape [n, d]"),
    (dict(W1=np.zeros((4, 7))), ValueError, "dimension 'd' is 7 in argument 'W1'"),
    (dict(y=np.zeros(5, dtype=np.int64)), ValueError, "dimension 'n' is 5 in argument 'y'"),
    (dict(x=np.zeros((6, 5), dtype=np.int32)), TypeError, "'x' must be float32 or float64"),
    (dict(x=np.zeros((6, 5), dtype=np.complex128)), TypeError, "'x' must be float32 or float64"),
    (dict(W2=np.zeros((3, 4), dtype=np.float32)), TypeError, "'W2' is float32 but 'x' is float64"),
    (dict(y=np.array([0, 1, 2, 0, 1, 3])), ValueError, "class labels in [0, 3), found 3"),
    (dict(y=np.array([0, -1, 2, 0, 1, 2])), ValueError, "class labels in [0, 3), found -1"),
    (dict(y=np.zeros(6)), TypeError, "'y' must be an integer array"),
    (dict(x=[[0.0] * 5] * 6), TypeError, "'x' must be a numpy array of shape [n, d], got list"),
    (dict(x=np.zeros((0, 5)), y=np.zeros(0, dtype=int)), ValueError, "empty axis 0"),
])
def test_bad_arrays_are_named(mlp, args, change, error, message):
    args.update(change)
    for call in (mlp.value_and_grad, mlp.forward):
        with pytest.raises(error) as info:
            call(**args)
        assert message in str(info.value)


def test_bad_hyper_and_missing_or_extra_arguments(mlp, args):
    with pytest.raises(TypeError, match="'lam' must be a real number"):
        mlp.value_and_grad(**args, lam="0.1")
    with pytest.raises(TypeError, match="value_and_grad\\(\\) is missing argument 'W2'"):
        mlp.value_and_grad(x=args["x"], y=args["y"], W1=args["W1"])
    misspelt = dict(args)
    misspelt["W3"] = misspelt.pop("W2")
    with pytest.raises(TypeError, match="unexpected argument 'W3'; did you mean 'W2'\\?"):
        mlp.value_and_grad(**misspelt)
    with pytest.raises(TypeError, match="unexpected argument 'lamda'; did you mean 'lam'\\?"):
        mlp.forward(**args, lamda=0.1)
    with pytest.raises(TypeError, match="sgd_step\\(\\) is missing argument 'lr'"):
        mlp.sgd_step(**args)


def test_non_contiguous_inputs_are_copied_not_misread(mlp, args):
    J, g = mlp.value_and_grad(**args)
    x_f = np.asfortranarray(args["x"])
    W1_view = np.concatenate([args["W1"], args["W1"]], axis=1)[:, ::2]  # strided view
    W1_view[:] = args["W1"]
    J2, g2 = mlp.value_and_grad(**dict(args, x=x_f, W1=W1_view))
    assert J2 == J
    np.testing.assert_array_equal(g2["W1"], g["W1"])
    J3, _ = mlp.value_and_grad(**dict(args, x=args["x"][::-1][::-1]))  # negative strides
    assert J3 == J


def test_sgd_step_refuses_views_it_cannot_update_and_writes_nothing_on_error(mlp, args):
    W1_before = args["W1"].copy()
    with pytest.raises(ValueError, match="'W2' is updated in place"):
        mlp.sgd_step(**dict(args, W2=np.asfortranarray(args["W2"])), lr=0.1)
    with pytest.raises(ValueError, match="class labels"):
        mlp.sgd_step(**dict(args, y=args["y"] + 5), lr=0.1)
    readonly = args["W2"].copy()
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="'W2' is updated in place"):
        mlp.sgd_step(**dict(args, W2=readonly), lr=0.1)
    np.testing.assert_array_equal(args["W1"], W1_before)


def test_predict_needs_only_what_it_uses(mlp, args):
    o = mlp.predict(x=args["x"], W1=args["W1"], W2=args["W2"])
    assert o.shape == (6, 3)
    with pytest.raises(TypeError):
        mlp.predict(x=args["x"], y=args["y"], W1=args["W1"], W2=args["W2"])


def test_nan_and_inf_propagate_without_crashing(mlp, args):
    args["x"][0, 0] = np.nan
    J, g = mlp.value_and_grad(**args)
    assert np.isnan(J) and np.isnan(g["W1"]).any()
    args["x"][0, 0] = np.inf
    J, g = mlp.value_and_grad(**args)
    assert not np.isfinite(J)


def test_backward_rejects_what_is_not_a_tape(mlp):
    with pytest.raises(TypeError, match="dict returned by forward"):
        mlp.backward({"J": 1.0})
