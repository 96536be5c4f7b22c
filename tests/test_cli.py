"""The command line as a user runs it: compile, show, graph, check, train; exit codes."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MLP = str(ROOT / "examples" / "mlp.gg")


def run(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "graphgen", *args], cwd=cwd,
                          capture_output=True, text=True)


def test_compile_prints_the_path_and_reuses_fresh_output(tmp_path):
    first = run("compile", MLP, "--out", str(tmp_path))
    assert first.returncode == 0, first.stderr
    path = Path(first.stdout.strip())
    assert path == tmp_path / "mlp.py" and path.exists()
    stamp = path.stat().st_mtime_ns
    second = run("compile", MLP, "--out", str(tmp_path))
    assert second.returncode == 0 and path.stat().st_mtime_ns == stamp  # fresh: not rewritten


def test_show_prints_the_seed_derivation():
    proc = run("show", MLP)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for line in ["z   = x @ W1.T", "dJ/dhid = dJ/do @ W2", "dJ/dz = dJ/dhid*(hid > 0)",
                 "dJ/dW1 = (dJ/dz.T @ x) + W1*lam", "dJ/dW2 = (dJ/do.T @ hid) + W2*lam",
                 "[h, d]", "[q, h]"]:
        assert line in out, line
    # objective first: dJ/do precedes dJ/dW2, which precedes dJ/dW1 (the seed's order)
    assert out.index("dJ/do") < out.index("dJ/dW2") < out.index("dJ/dW1")


def test_show_stages():
    for stage in ("ast", "ir", "schedule", "source"):
        proc = run("show", MLP, "--stage", stage)
        assert proc.returncode == 0 and proc.stdout.strip(), stage
    assert "_dot_t(x, W1, z, _scratch)" in run("show", MLP, "--stage", "source").stdout


def test_graph_is_dot_with_boxes_and_circles():
    proc = run("graph", MLP)
    assert proc.returncode == 0
    dot = proc.stdout
    assert dot.startswith("digraph") and dot.rstrip().endswith("}")
    assert 'label="W1\\nparam [h, d]"' in dot and "shape=circle" in dot
    assert dot.count("shape=box") >= 10  # 5 declarations + 6 variables (objective restyled)


def test_check_passes_and_reports_each_param(tmp_path):
    proc = run("check", MLP, "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "ok   dJ/dW1" in proc.stdout and "ok   dJ/dW2" in proc.stdout
    assert "ok   jvp (forward mode) against reverse mode" in proc.stdout
    assert "ok   hvp (forward over reverse) against differences of the gradient" in proc.stdout


def test_usage_errors_exit_2():
    assert run().returncode == 2
    assert run("frobnicate", MLP).returncode == 2
