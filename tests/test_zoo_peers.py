"""The zoo's JAX and PyTorch peers compute the same objective and gradients as graphgen, at
the tiny sizes, float64, graphgen in plain Python (JIT off): a peer written wrong fails here
rather than at the start of a benchmark run."""
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import zoo  # noqa: E402
from graphgen.build import load_python  # noqa: E402
from graphgen.pipeline import compile_source  # noqa: E402

pytest.importorskip("jax")
pytest.importorskip("torch")


@pytest.fixture(scope="module", autouse=True)
def x64():
    import jax

    jax.config.update("jax_enable_x64", True)  # as the benchmark sets it; arrays keep dtypes


@pytest.mark.parametrize("graph", zoo.ZOO, ids=lambda g: g.name)
def test_peers_agree_with_graphgen(graph):
    module = load_python(compile_source(graph.spec.read_text(), str(graph.spec)).source,
                         f"zoo_{graph.name}")
    impls = zoo.implementations(graph, np.float64, compile_torch=False, dims=graph.tiny,
                                module=module)
    assert set(impls) == {"graphgen", "JAX jit", "PyTorch eager"}
    errors = zoo.check_agreement(graph, np.float64, impls)
    assert all(e <= 1e-9 for e in errors.values()), errors
