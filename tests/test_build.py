"""Building and loading: content-hash freshness, atomic writes, and graph-level behaviours
(disconnected parameters, an objective that is also an output)."""
import numpy as np
import pytest

import graphgen
from graphgen.build import HASH_PREFIX, recorded_hash
from graphgen.errors import SpecError
from graphgen.pipeline import compile_source

TINY = "input x[n]\nparam w[n]\nJ = sum(x * w ** 2)\nminimize J\noutput J\n"


def test_load_recompiles_only_when_stale(tmp_path):
    spec = tmp_path / "tiny.gg"
    spec.write_text(TINY)
    out = tmp_path / "gen"
    m = graphgen.load(spec, out_dir=out)
    path = out / "tiny.py"
    stamp = path.stat().st_mtime_ns
    assert graphgen.compile_spec(spec, out_dir=out) == path
    assert path.stat().st_mtime_ns == stamp  # fresh: untouched
    J, g = m.value_and_grad(x=np.array([1.0, 2.0]), w=np.array([3.0, 4.0]))
    assert J == 41.0 and g["w"].tolist() == [6.0, 16.0]
    # a changed spec is recompiled
    spec.write_text(TINY.replace("w ** 2", "w ** 3"))
    m2 = graphgen.load(spec, out_dir=out)
    assert m2.value_and_grad(x=np.array([1.0]), w=np.array([2.0]))[0] == 8.0
    # a header from another graphgen/template version is stale too
    text = path.read_text().replace(HASH_PREFIX + m2.SPEC_HASH, HASH_PREFIX + "0" * 64)
    path.write_text(text)
    graphgen.compile_spec(spec, out_dir=out)
    assert recorded_hash(path) == m2.SPEC_HASH
    assert not list(out.glob("*.tmp"))  # atomic writes leave no temporaries


def test_disconnected_param_gets_a_zero_gradient(build):
    m = build("input x[n]\nparam w[n]\nparam unused[n]\nJ = sum(x * w)\nminimize J\n")
    _, g = m.value_and_grad(x=np.ones(3), w=np.ones(3), unused=np.ones(3))
    assert g["unused"].tolist() == [0.0, 0.0, 0.0] and g["w"].tolist() == [1.0, 1.0, 1.0]


def test_objective_as_output_and_scalar_param(build):
    m = build(TINY)
    assert m.predict(x=np.array([1.0, 2.0]), w=np.array([3.0, 4.0])) == 41.0
    tape = m.forward(x=np.array([1.0]), w=np.array([2.0]))
    assert tape["J"] == 4.0


def test_scalar_param_is_updated_in_place(build):
    m = build("input x[n]\nparam s\nJ = sum((x - s) ** 2)\nminimize J\n")
    s = np.array(0.0)
    x = np.array([1.0, 3.0])
    J = m.sgd_step(x=x, s=s, lr=0.25)
    assert J == 10.0 and float(s) == 2.0  # dJ/ds = -2 * ((1 - 0) + (3 - 0)) = -8


def test_huge_literal_is_a_spec_error():
    with pytest.raises(SpecError, match="too large"):
        compile_source("input x[n]\nparam w[n]\nhyper big = 1e999\nJ = sum(x*w)\nminimize J\n")
