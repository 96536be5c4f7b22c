"""Every spec of the graph zoo (benchmarks/specs/zoo) compiles, and graphgen's gradient of it
matches finite differences at the zoo's tiny sizes, in plain Python (JIT off): fast."""
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import zoo  # noqa: E402
from graphgen.build import load_python  # noqa: E402
from graphgen.gradcheck import check_gradients  # noqa: E402
from graphgen.pipeline import compile_source  # noqa: E402


def test_every_spec_is_in_the_zoo_and_the_zoo_is_large_enough():
    assert {p.stem for p in zoo.SPECS.glob("*.gg")} == set(zoo.BY_NAME)
    assert len(zoo.ZOO) >= 12


@pytest.mark.parametrize("graph", zoo.ZOO, ids=lambda g: g.name)
def test_zoo_spec_gradient_matches_finite_differences(graph, monkeypatch):
    # every float workspace starts as NaN: a kernel that reads memory it has not written fails
    # here every time, not once in a while (np.empty's garbage)
    empty = np.empty

    def nan_empty(shape, dtype=float, **kwargs):
        if np.dtype(dtype).kind != "f":
            return empty(shape, dtype, **kwargs)
        return np.full(shape, np.nan, dtype)

    monkeypatch.setattr(np, "empty", nan_empty)
    text = graph.spec.read_text()
    module = load_python(compile_source(text, str(graph.spec)).source, f"zoo_{graph.name}")
    assert set(graph.tiny) == set(module.DIMS), "tiny sizes must bind every dim of the spec"
    assert set(graph.dims) == set(module.DIMS), "benchmark sizes must bind every dim"
    inputs, params = zoo.make_arrays(graph, module, graph.tiny, np.float64)
    checks = check_gradients(module, {**inputs, **params}, rtol=1e-6, seed=0)
    bad = [c for c in checks if not c.ok]
    assert not bad, bad
