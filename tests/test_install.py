"""A non-editable install works: the wheel carries the top-level templates/ (as the package
graphgen_templates) and compiles a spec away from the source tree."""
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # pip installs: minutes on a loaded machine

ROOT = Path(__file__).resolve().parent.parent


def test_non_editable_install_ships_templates(tmp_path):
    target = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--no-cache-dir", "--target", str(target), str(ROOT)],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (target / "graphgen_templates" / "module.py.j2").is_file()
    work = tmp_path / "work"
    work.mkdir()
    (work / "tiny.gg").write_text("input x[n]\nparam w[n]\nJ = sum(x * w ** 2)\nminimize J\n")
    script = (
        "import graphgen, numpy as np\n"
        "assert 'site' in graphgen.__file__, graphgen.__file__\n"
        "m = graphgen.load('tiny.gg')\n"
        "J, g = m.value_and_grad(x=np.array([1.0, 2.0]), w=np.array([3.0, 4.0]))\n"
        "print(J, g['w'].tolist())\n"
    )
    env_path = f"{target}"
    proc = subprocess.run([sys.executable, "-c", script], cwd=work, capture_output=True,
                          text=True, env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin",
                                             "GRAPHGEN_CACHE_DIR": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["41.0", "[6.0,", "16.0]"]
    # load() without out_dir writes to a directory of its own per spec (issue 14, item 8)
    assert len(list((tmp_path / "cache").glob("tiny-*/tiny.py"))) == 1


def test_installed_graphgen_trains_an_example_from_an_empty_directory(tmp_path):
    """`pip install .` (not editable), then `graphgen train mlp` in an empty directory: the
    example ships with the package, the module compiles into the user cache, and only
    runs/ appears in the working directory."""
    target = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
         "--no-cache-dir", "--target", str(target), str(ROOT)],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (target / "graphgen_examples" / "mlp.gg").is_file()
    work = tmp_path / "empty"
    work.mkdir()
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path),
           "GRAPHGEN_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "graphgen", "examples"], cwd=work,
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0 and "mlp" in proc.stdout.split(), proc.stderr
    proc = subprocess.run([sys.executable, "-m", "graphgen", "train", "mlp", "--epochs", "2",
                           "--dim", "h=16", "--quiet"], cwd=work, capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy" in proc.stdout
    assert [p.name for p in work.iterdir()] == ["runs"]
    assert list((tmp_path / "cache").glob("mlp-*/mlp.py"))
