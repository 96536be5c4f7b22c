"""`graphgen show --stage plan` states the backend's decisions for every kernel."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_plan_of_the_seed_network_names_its_decisions():
    out = subprocess.run([sys.executable, "-m", "graphgen", "show", "examples/mlp.gg",
                          "--stage", "plan"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for kernel in ("forward", "backward", "value_and_grad", "predict", "sgd_step"):
        assert f"[{kernel}]" in text
    sgd = text[text.index("[sgd_step]"):]
    assert "BLAS product x @ W1.T -> z [n, h]" in sgd
    assert "update W1 in place by one GEMM: W1 = -lr * (dJ_dz.T @ x) + (-lam*lr + 1) * W1" \
        in sgd
    assert "applies W1's decay" in sgd
    assert "written over dJ_dhid's buffer" in sgd
    assert "one loop over rows" in sgd
    assert "BLAS threads set to the idle cores" in sgd
    assert "tape (kept by forward for backward): hid, _expshift11, _sumexp12" in text
