"""The committed modules in generated/ are exactly what the compiler emits now; emission is
deterministic; a generated module runs where graphgen is not importable."""
import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from graphgen.build import output_path
from graphgen.pipeline import compile_source

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "examples").glob("*.gg"))


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_committed_module_is_current(spec):
    rel = spec.relative_to(ROOT).as_posix()
    emitted = compile_source(spec.read_text(), rel).source
    committed = output_path(rel, ROOT / "generated")
    assert committed.exists(), f"run: graphgen compile {rel}"
    assert committed.read_text() == emitted, f"generated/ is stale: run graphgen compile {rel}"


def test_emission_is_deterministic_across_processes():
    code = ("from graphgen.pipeline import compile_source; import sys, hashlib;"
            "t = open('examples/mlp.gg').read();"
            "sys.stdout.write(hashlib.sha256(compile_source(t, 'examples/mlp.gg')"
            ".source.encode()).hexdigest())")
    digests = {subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                              text=True, env={"PYTHONHASHSEED": str(seed), "PATH": ""}).stdout
               for seed in (1, 2, 3)}
    assert len(digests) == 1 and len(next(iter(digests))) == 64


@pytest.mark.parametrize("name", ["mlp.py", "swish.py"])
def test_generated_module_imports_only_numpy_and_numba(name):
    tree = ast.parse((ROOT / "generated" / name).read_text())
    imported = {(node.module if isinstance(node, ast.ImportFrom) else alias.name).split(".")[0]
                for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                for alias in node.names}
    # sys: to register its canonical name; llvmlite (numba's own code generator): the bit
    # casts of the vectorised exp/log and the _gemm call; scipy: the BLAS that numba's
    # np.dot and _gemm call (imported when _gemm compiles); ctypes, glob, os, time: the
    # thread control, which sets that BLAS's threads to the idle cores (graphgen/threads.py);
    # os also: the memory budget (an environment variable, the physical memory); warnings:
    # the one warning when Numba's disk cache is unwritable; difflib (standard library): the
    # "did you mean" of a misspelt argument
    assert imported <= {"sys", "os", "warnings", "numpy", "numba", "llvmlite", "scipy",
                        "ctypes", "glob", "time", "difflib"}
    assert {"numpy", "numba"} <= imported


def test_generated_module_runs_without_graphgen(tmp_path):
    shutil.copy(ROOT / "generated" / "mlp.py", tmp_path / "mlp.py")
    script = (
        "import sys; sys.modules['graphgen'] = None\n"  # any import of graphgen now fails
        "import numpy as np, mlp\n"
        "rng = np.random.default_rng(0)\n"
        "x = rng.normal(size=(5, 4)); y = np.array([0, 1, 2, 1, 0])\n"
        "W1 = rng.normal(size=(3, 4)); W2 = rng.normal(size=(3, 3))\n"
        "J, g = mlp.value_and_grad(x=x, y=y, W1=W1, W2=W2)\n"
        "print(round(J, 12), g['W1'].shape, g['W2'].shape)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    J, *shapes = proc.stdout.split(" ", 1)
    assert float(J) > 0 and "(3, 4) (3, 3)" in proc.stdout


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.name)
def test_returned_arrays_are_not_views_of_the_workspace(spec):
    """Temporaries live in one workspace per call; anything a kernel returns (the tape,
    outputs, gradients) must own its memory, or it would keep the whole workspace alive."""
    source = compile_source(spec.read_text(), "x.gg").source
    for kernel in source.split("\ndef _")[1:]:
        body = kernel.split("\n\n\n")[0]
        in_workspace = set()
        for line in body.splitlines():
            code = line.strip()
            if " = _ws[" in code:
                in_workspace.add(code.split(" = ")[0])
            elif code.endswith(("# reuse the buffer", "# same values: no copy")):
                target, source_name = code.split("  #")[0].split(" = ")
                if source_name in in_workspace:
                    in_workspace.add(target)
        returned = body.rstrip().splitlines()[-1].strip()
        if returned.startswith("return "):
            names = {n.strip() for n in returned[len("return "):].split(",")}
            assert not names & in_workspace, (kernel.split("(")[0], names & in_workspace)
