"""`graphgen.train` from Python: any input names, data as dicts/pairs/files, the task from
the spec, options checked before training, divergence as an exception."""
from pathlib import Path

import numpy as np
import pytest

import graphgen
from graphgen.datasets import DatasetError, load_bundled, load_file
from graphgen.training import Diverged, TrainError, predict, save_weights

ROOT = Path(__file__).resolve().parent.parent
RENAMED = """
input images[n, d]
input labels[n]: int
param W1[h, d]
param W2[q, h]
param b[q]
hid = tanh(images @ W1.T)
o = hid @ W2.T + b
J = mean(cross_entropy(o, labels))
minimize J
output hid, o
"""


@pytest.fixture(scope="module")
def blobs():
    """Three well-separated Gaussian blobs in 2-D: a linear classifier reaches ~100%."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    centers = np.array([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    return centers[labels] + 0.5 * rng.normal(size=(300, 2)), labels


def test_inputs_bind_by_name_and_accuracy_reads_the_score_output(build, blobs):
    m = build(RENAMED, "renamed")
    x, y = blobs
    r = graphgen.train(m, {"images": x, "labels": y}, epochs=5, lr=0.5, val=0.2,
                       dims={"h": 8})
    assert r.task == "classification" and r.metric == "accuracy"
    assert r.output == "o"  # the [n, q] scores of the labels' range, not hid [n, h]
    assert r.metrics["val_accuracy"] >= 0.95
    assert r.dims == {"d": 2, "q": 3, "h": 8}
    assert [h["epoch"] for h in r.history] == [1, 2, 3, 4, 5]


def test_inputs_bind_by_role_for_an_x_y_pair(build, blobs):
    m = build(RENAMED, "renamed")
    r = graphgen.train(m, blobs, epochs=3, lr=0.5, dims={"h": 8})
    assert r.output == "o" and r.metrics["train_accuracy"] >= 0.9
    with pytest.raises(TrainError, match="accuracy needs output 'hid' to be"):
        graphgen.train(m, blobs, epochs=1, output="hid", dims={"h": 4})


def test_regression_target_named_y_with_mae(gen_dir):
    m = graphgen.load(ROOT / "examples" / "regression.gg", out_dir=gen_dir)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = np.tanh(x @ np.array([1.0, -2.0, 0.5]))
    r = graphgen.train(m, {"x": x, "y": y}, epochs=40, lr=0.1, metric="mae", dims={"h": 4})
    assert r.task == "regression" and r.metric == "mae" and r.output == "pred"
    assert r.metrics["train_mae"] < 0.2 * np.mean(np.abs(y - y.mean()))  # learned
    assert r.history[-1]["train_objective"] < r.history[0]["train_objective"]


def test_unknown_option_suggests_a_close_name():
    with pytest.raises(TypeError, match="did you mean 'epochs'"):
        graphgen.train("mlp", "digits", epoch=3)


@pytest.mark.parametrize("options, message", [
    ({"lr": -1.0}, "learning rate must be positive"),
    ({"epochs": 0}, "epochs must be at least 1"),
    ({"batch_size": 0}, "batch_size must be at least 1"),
    ({"metric": "f1"}, "unknown metric 'f1'"),
])
def test_bad_options_fail_before_compiling(options, message):
    with pytest.raises(TrainError, match=message):
        graphgen.train("no-such-spec.gg", "digits", **options)  # never reaches the spec


def test_divergence_raises(mlp):
    with pytest.raises(Diverged, match=r"lr = 50 is probably too large"):
        graphgen.train(mlp, "digits", epochs=3, lr=50.0)


def test_label_mismatch_and_wrong_rank_are_train_errors(build, blobs):
    m = build(RENAMED, "renamed")
    x, y = blobs
    with pytest.raises(TrainError, match="no array named 'labels'"):
        graphgen.train(m, {"images": x, "target": y}, epochs=1)
    with pytest.raises(TrainError, match=r"declared \[n, d\] \(2 axes\)"):
        graphgen.train(m, {"images": x.reshape(300, 1, 2), "labels": y}, epochs=1)
    with pytest.raises(TrainError, match="non-integer values"):
        graphgen.train(m, {"images": x, "labels": y + 0.5}, epochs=1)
    with pytest.raises(TrainError, match="no dimension 'k'"):
        graphgen.train(m, blobs, epochs=1, dims={"k": 2})


def test_save_and_predict_from_python(build, blobs, tmp_path):
    m = build(RENAMED, "renamed")
    r = graphgen.train(m, blobs, epochs=2, lr=0.5, dims={"h": 8})
    path = r.save(tmp_path / "w.npz")
    out = graphgen.predict(m, path, {"images": blobs[0][:4]}, output="o")
    p = r.params
    expected = np.tanh(blobs[0][:4] @ p["W1"].T) @ p["W2"].T + p["b"]
    np.testing.assert_allclose(out, expected, rtol=1e-12)
    np.testing.assert_allclose(r.predict(blobs[0][:4], output="o"), expected, rtol=1e-12)
    with pytest.raises(TrainError, match="as .npz"):
        save_weights(tmp_path / "w.txt", m, r.params)
    assert set(predict(m, r.params, {"images": blobs[0][:2]}, output="*")) == {"o", "hid"}


def test_bundled_datasets_and_tables(tmp_path):
    iris = load_bundled("iris")
    assert iris.x_train.shape[1] == 4 and iris.by_role and len(iris.y_test) == 30
    diabetes = load_bundled("diabetes")
    assert diabetes.y_train.dtype == np.float64 and "standardized" in diabetes.notes[0]
    (tmp_path / "t.tsv").write_text("1\t2\t3\n4\t5\t6\n")
    table = load_file(tmp_path / "t.tsv", columns="x=0:2,y=-1")
    np.testing.assert_array_equal(table.arrays["x"], [[1, 2], [4, 5]])
    np.testing.assert_array_equal(table.arrays["y"], [3, 6])
    np.save(tmp_path / "m.npy", np.arange(6.0).reshape(3, 2))
    assert load_file(tmp_path / "m.npy").arrays["y"].tolist() == [1.0, 3.0, 5.0]
    with pytest.raises(DatasetError, match="out of range"):
        load_file(tmp_path / "t.tsv", columns="x=7")
    with pytest.raises(DatasetError, match="NAME=COLUMNS"):
        load_file(tmp_path / "t.tsv", columns="x")


@pytest.mark.slow  # compiles one more example
def test_one_hot_targets_from_integer_labels(gen_dir):
    m = graphgen.load(ROOT / "examples" / "softmax_mse.gg", out_dir=gen_dir)
    r = graphgen.train(m, "iris", epochs=20, lr=0.05, metric="accuracy")
    assert r.dims["q"] == 3 and r.metrics["test_accuracy"] >= 0.8


def test_progress_bar_shows_rate_and_eta(build, blobs, capsys):
    m = build(RENAMED, "renamed")
    graphgen.train(m, blobs, epochs=2, lr=0.5, progress=True, dims={"h": 4})
    err = capsys.readouterr().err
    assert "epoch 2/2" in err and "batch/s" in err and "<" in err  # elapsed<remaining
    assert "train accuracy" in err  # the epoch's final line carries its metrics
