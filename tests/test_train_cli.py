"""`graphgen train` / `predict` / `examples` as a user runs them: every refused option and
bad file exits non-zero with a message (never "internal error"), regression on a CSV,
save → resume → predict round trips. Runs in-process (`cli.main`) to stay quick."""
import json
from pathlib import Path

import numpy as np
import pytest

from graphgen import cli

ROOT = Path(__file__).resolve().parent.parent
MLP = str(ROOT / "examples" / "mlp.gg")
REGRESSION = str(ROOT / "examples" / "regression.gg")


@pytest.fixture
def run(gen_dir, tmp_path, capsys, monkeypatch):
    """run(*argv) -> (exit status, stdout, stderr), in an empty working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GRAPHGEN_CACHE_DIR", str(gen_dir / "cache"))

    def _run(*argv):
        try:
            status = cli.main(list(argv))
        except SystemExit as e:  # argparse and option parsers exit with a message
            status = e.code if isinstance(e.code, int) else 2
            if not isinstance(e.code, int):
                print(e.code, file=__import__("sys").stderr)
        out, err = capsys.readouterr()
        assert "internal error" not in err, err
        return status, out, err

    return _run


@pytest.fixture(scope="module")
def regression_csv(tmp_path_factory) -> Path:
    """A learnable regression table with a header: y = sin(a) + b/2 plus a little noise."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 4))
    y = np.sin(x[:, 0]) + 0.5 * x[:, 1] + 0.05 * rng.normal(size=240)
    path = tmp_path_factory.mktemp("data") / "reg.csv"
    np.savetxt(path, np.c_[x, y], delimiter=",", header="a,b,c,d,target", comments="")
    return path


@pytest.mark.parametrize("argv, message", [
    (["--lr", "-1"], "learning rate must be positive"),
    (["--lr", "0"], "learning rate must be positive"),
    (["--lr", "nan"], "learning rate must be positive"),
    (["--epochs", "0"], "epochs must be at least 1"),
    (["--batch-size", "0"], "batch_size must be at least 1"),
    (["--plot", "curve.txt"], "unknown image format '.txt'"),
    (["--plot", "/proc/no/such/dir/curve.png"], "cannot write the plot"),
    (["--val", "1.5"], "val is the fraction"),
    (["--patience", "2"], "hold out a validation split"),
    (["--metric", "mse"], "shapes differ"),
    (["--output", "hid"], "no output of that name"),
    (["--dataset", "nope"], "unknown dataset 'nope'"),
    (["--data", "missing.npz"], "no such data file"),
    (["--columns", "x=0:4"], "--columns selects columns of a --data table"),
    (["--dim", "k=3"], "no dimension 'k'"),
    (["--hyper", "mu=1"], "no hyperparameter 'mu'"),
    (["--save", "weights.txt"], "--save writes a .npz"),
    (["--resume", "missing.npz"], "no such weights file"),
])
def test_bad_options_are_refused_with_a_message(run, gen_dir, argv, message):
    status, _, err = run("train", MLP, "--out", str(gen_dir), "--epochs", "1", *argv)
    assert status == 2, err
    assert message in err
    assert not Path("runs").exists() or not any(Path("runs").iterdir())  # refused, no run


def test_unknown_data_format_and_bad_table(run, gen_dir, tmp_path):
    Path("notes.txt").write_text("1,2\n")
    status, _, err = run("train", MLP, "--out", str(gen_dir), "--data", "notes.txt")
    assert status == 2 and "unknown data format '.txt'" in err
    Path("bad.csv").write_text("a,b\n1,2\n3,oops\n")
    status, _, err = run("train", REGRESSION, "--out", str(gen_dir), "--data", "bad.csv")
    assert status == 2 and "bad.csv:3: column 1 holds 'oops'" in err
    Path("ok.csv").write_text("a,b\n1,2\n3,4\n")
    status, _, err = run("train", REGRESSION, "--out", str(gen_dir), "--data", "ok.csv",
                         "--columns", "x=0:1,y=zz")
    assert status == 2 and "no column 'zz'; the header names are a, b" in err


def test_divergence_stops_with_the_learning_rate_named(run, gen_dir):
    status, _, err = run("train", MLP, "--out", str(gen_dir), "--lr", "50", "--epochs", "3",
                         "--quiet")
    assert status == 1
    assert "training diverged" in err and "lr = 50" in err and "try 5" in err


def test_names_that_do_not_match_list_inputs_and_arrays(run, gen_dir):
    np.savez("wrong.npz", features=np.zeros((5, 4)), target=np.zeros(5))
    status, _, err = run("train", REGRESSION, "--out", str(gen_dir), "--data", "wrong.npz")
    assert status == 2
    assert "the spec takes x[n, d], y[n]" in err
    assert "features (5, 4) float64, target (5,) float64" in err


def test_regression_on_a_csv_with_header_columns(run, gen_dir, regression_csv):
    status, out, err = run("train", REGRESSION, "--out", str(gen_dir), "--data",
                           str(regression_csv), "--columns", "x=a:d,y=target", "--val", "0.25",
                           "--epochs", "30", "--lr", "0.05", "--dim", "h=16", "--quiet")
    assert status == 0, err
    assert "compiled in" in err and "trained 30 epochs in" in err
    (run_dir,) = Path("runs").iterdir()
    assert run_dir.name.startswith("regression-")
    history = json.loads((run_dir / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, 31))
    y = np.loadtxt(regression_csv, delimiter=",", skiprows=1)[:, -1]
    # learned: validation error well below the target's variance (predicting the mean)
    assert min(h["val_mse"] for h in history) < 0.2 * y.var()
    assert (run_dir / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert "final train objective" in out and "val mse" in out


def test_save_resume_predict_round_trip(run, gen_dir, regression_csv):
    common = ("--out", str(gen_dir), "--data", str(regression_csv), "--dim", "h=8", "--quiet")
    status, _, err = run("train", REGRESSION, *common, "--epochs", "3", "--save", "w.npz")
    assert status == 0, err
    status, _, err = run("train", REGRESSION, *common, "--epochs", "2", "--resume", "w.npz",
                         "--save", "w2.npz")
    assert status == 0, err
    saved = np.load("w2.npz")
    meta = json.loads(str(saved["__graphgen__"]))
    assert meta["settings"]["epochs_done"] == 5 and meta["settings"]["dims"]["h"] == 8
    assert [h["epoch"] for h in meta["settings"]["history"]] == [1, 2, 3, 4, 5]
    first = np.load("w.npz")
    assert not np.allclose(first["param.W1"], saved["param.W1"])  # resumed and moved on
    x = np.loadtxt(regression_csv, delimiter=",", skiprows=1)[:7, :4]
    np.savez("new.npz", x=x)
    status, out, err = run("predict", REGRESSION, "--weights", "w2.npz", "--data", "new.npz",
                           "--out", "pred.npy", "--build", str(gen_dir))
    assert status == 0, err
    assert "wrote pred.npy: pred (7,)" in out
    w = {k[6:]: saved[k] for k in saved.files if k.startswith("param.")}
    expected = np.tanh(x @ w["W1"].T + w["b1"]) @ w["w2"] + w["b2"]  # the spec, by hand
    np.testing.assert_allclose(np.load("pred.npy"), expected, rtol=1e-12)
    status, _, err = run("predict", MLP, "--weights", "w2.npz", "--data", "new.npz",
                         "--out", "p.npy", "--build", str(gen_dir))
    assert status == 2 and "weights of another spec" in err and "'regression'" in err
    status, _, err = run("train", MLP, "--out", str(gen_dir), "--resume", "w2.npz")
    assert status == 2 and "weights of another spec" in err


def test_predict_refuses_bad_out_and_inputs(run, gen_dir, regression_csv):
    run("train", REGRESSION, "--out", str(gen_dir), "--data", str(regression_csv), "--quiet",
        "--epochs", "1", "--save", "w.npz", "--dim", "h=8")
    np.savez("x.npz", x=np.zeros((3, 4)))
    status, _, err = run("predict", REGRESSION, "--weights", "w.npz", "--data", "x.npz",
                         "--out", "pred.txt")
    assert status == 2 and ".npy (one output) or .npz" in err
    np.savez("other.npz", inputs=np.zeros((3, 4)))
    status, _, err = run("predict", REGRESSION, "--weights", "w.npz", "--data", "other.npz",
                         "--out", "pred.npy", "--build", str(gen_dir))
    assert status == 2 and "the spec takes x[n, d]" in err


@pytest.mark.slow  # compiles mlp once more, in the user cache
def test_installed_example_by_name_and_compiled_outside_the_working_directory(run):
    status, out, _ = run("examples")
    assert status == 0
    names = [line.split()[0] for line in out.splitlines()]
    assert {"mlp", "regression", "softmax_mse"} <= set(names)
    status, out, err = run("train", "mlp", "--epochs", "1", "--dim", "h=8", "--quiet")
    assert status == 0, err
    assert sorted(p.name for p in Path(".").iterdir()) == ["runs"]  # no generated/ here
    assert "test accuracy" in out


def test_early_stopping_keeps_the_best_weights(run, gen_dir):
    rng = np.random.default_rng(1)  # pure noise: validation error cannot keep improving
    np.savez("noise.npz", x=rng.normal(size=(80, 3)), y=rng.normal(size=80))
    status, _, err = run("train", REGRESSION, "--out", str(gen_dir), "--data", "noise.npz",
                         "--val", "0.5", "--patience", "2", "--epochs", "200", "--lr", "0.2",
                         "--quiet", "--save", "w.npz")
    assert status == 0, err
    assert "stopped early: no better validation score for 2 epochs" in err
    meta = json.loads(str(np.load("w.npz")["__graphgen__"]))
    history = meta["settings"]["history"]
    best = min(history, key=lambda h: h["val_mse"])
    assert len(history) < 200 and history[-1]["epoch"] == best["epoch"] + 2
    assert meta["settings"]["best_epoch"] == best["epoch"]


def test_help_shows_defaults(run):
    status, out, _ = run("train", "--help")
    assert status == 0
    assert "(default: 0.1)" in out and "(default: 32)" in out and "(default: 20)" in out


def test_california_is_refused_when_not_cached(run, gen_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "empty-sklearn-home"))
    status, _, err = run("train", REGRESSION, "--out", str(gen_dir), "--dataset", "california")
    assert status == 2
    assert "not in scikit-learn's cache" in err and "never downloads" in err


def test_spec_and_data_names_with_terminal_escapes_are_printed_escaped(run, gen_dir,
                                                                       regression_csv):
    """`train` printed the spec's, the data's and the run's names raw: a file named with ESC
    sequences could rewrite the terminal (issue 14, item 15)."""
    evil = "evil\x1b[2J\x1b]0;pwned\x07\u202e"
    spec = Path(f"{evil}.gg")
    spec.write_text(Path(REGRESSION).read_text())
    data = Path(f"{evil}.csv")
    data.write_bytes(regression_csv.read_bytes())
    status, out, err = run("train", str(spec), "--out", str(gen_dir), "--data", str(data),
                           "--columns", "x=a:d,y=target", "--epochs", "2", "--dim", "h=4",
                           "--save", f"{evil}.npz")
    assert status == 0, err
    for text in (out, err):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert "evil\\x1b[2J\\x1b]0;pwned\\x07\\u202e.gg on evil\\x1b[2J" in err
    assert "weights evil\\x1b[2J" in out
