"""The README's Python snippet runs as written (from a directory holding examples/)."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow  # compiles the seed network twice (JIT), trains 5 epochs


def test_readme_python_snippet_runs(tmp_path):
    readme = (ROOT / "README.md").read_text()
    (snippet,) = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    proc = subprocess.run([sys.executable, "-c", snippet + "\nprint('shape', pred.shape)\n"],
                          cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                               "HOME": str(tmp_path), "GRAPHGEN_CACHE_DIR": str(tmp_path / "c")})
    assert proc.returncode == 0, proc.stderr
    assert "shape (32, 10)" in proc.stdout
    assert (tmp_path / "weights.npz").is_file()
