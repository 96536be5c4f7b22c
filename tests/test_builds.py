"""Builds and caches under stress: concurrent builders, killed builds, edited or truncated
modules, stale JIT caches, unwritable output directories."""
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import graphgen
from graphgen.build import compile_spec, purge_stale_jit_cache, recorded_hash
from graphgen.errors import SpecError

ROOT = Path(__file__).resolve().parent.parent
SPEC = "input x[n]\nparam w[n]\nJ = sum(x * sigmoid(w))\nminimize J\n"


def test_concurrent_builders_all_succeed_with_identical_code(tmp_path):
    spec = tmp_path / "race.gg"
    spec.write_text(SPEC)
    out = tmp_path / "gen"
    script = textwrap.dedent(f"""
        import hashlib, numpy as np, graphgen
        m = graphgen.load({str(spec)!r}, out_dir={str(out)!r}, force=True)
        J, g = m.value_and_grad(x=np.ones(3), w=np.zeros(3))
        src = open(m.__file__, 'rb').read()
        print(hashlib.sha256(src).hexdigest(), J)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (out_text, err) in zip(procs, results):
        assert p.returncode == 0, err
    outputs = {r[0].strip() for r in results}
    assert len(outputs) == 1 and outputs.pop().endswith(" 1.5")
    assert sorted(f.name for f in out.iterdir() if f.is_file()) == ["race.py"]


def test_leftovers_of_a_killed_build_are_not_trusted(tmp_path):
    spec = tmp_path / "k.gg"
    spec.write_text(SPEC)
    out = tmp_path / "gen"
    out.mkdir()
    (out / ".k.abc123.tmp").write_text("partial")  # a build killed before os.replace
    module = graphgen.load(spec, out_dir=out)
    assert module.value_and_grad(x=np.ones(2), w=np.zeros(2))[0] == 1.0
    # Writes are atomic, so a k.py without graphgen's header is not a crash's leftover but
    # someone else's file: it is replaced only when asked to (issue 14, item 9).
    (out / "k.py").write_text("# truncated by a crash\nimport numpy as np\n")
    with pytest.raises(SpecError, match="graphgen did not write it"):
        graphgen.load(spec, out_dir=out)
    module = graphgen.load(spec, out_dir=out, force=True)
    assert module.value_and_grad(x=np.ones(2), w=np.zeros(2))[0] == 1.0


@pytest.mark.parametrize("damage", ["edit", "truncate"])
def test_edited_or_truncated_module_is_detected_and_rebuilt(tmp_path, damage):
    spec = tmp_path / "e.gg"
    spec.write_text(SPEC)
    out = tmp_path / "gen"
    path = compile_spec(spec, out_dir=out)
    good = path.read_text()
    if damage == "edit":
        path.write_text(good.replace("acc += ", "acc -= ", 1))
    else:
        path.write_text(good[: len(good) // 2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compile_spec(spec, out_dir=out)
    assert path.read_text() == good
    assert any("edited or truncated" in str(w.message) for w in caught)


def test_jit_cache_from_other_versions_is_purged(tmp_path):
    path = compile_spec(ROOT / "examples" / "mlp.gg", out_dir=tmp_path)
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    stale = cache / f"{path.stem}._forward_kernel-100.py311.nbi"
    stale.write_bytes(b"compiled by another numpy")
    (cache / f"{path.stem}.graphgen-env").write_text("python 3.0, numpy 0.1, numba 0.1")
    purge_stale_jit_cache(path)
    assert not stale.exists()
    assert "numpy" in (cache / f"{path.stem}.graphgen-env").read_text()
    kept = cache / f"{path.stem}._forward_kernel-100.py311.nbc"
    kept.write_bytes(b"current")
    purge_stale_jit_cache(path)  # same environment: the cache is kept
    assert kept.exists()


def test_upgrading_graphgen_regenerates(tmp_path, monkeypatch):
    spec = tmp_path / "u.gg"
    spec.write_text(SPEC)
    path = compile_spec(spec, out_dir=tmp_path)
    before = recorded_hash(path)
    monkeypatch.setattr(graphgen, "__version__", "999.0")
    import graphgen.fingerprint as fingerprint  # where the staleness hash is computed
    import graphgen.render as render
    monkeypatch.setattr(fingerprint, "__version__", "999.0")
    monkeypatch.setattr(render, "__version__", "999.0")
    compile_spec(spec, out_dir=tmp_path)
    assert recorded_hash(path) != before


def test_unwritable_output_directory_is_a_clear_error(tmp_path, monkeypatch):
    spec = tmp_path / "w.gg"
    spec.write_text(SPEC)

    def denied(*args, **kwargs):  # what a read-only directory does (root ignores chmod)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("graphgen.build.tempfile.mkstemp", denied)
    with pytest.raises(SpecError, match="cannot write .*Permission denied") as info:
        compile_spec(spec, out_dir=tmp_path / "gen")
    assert "out_dir" in info.value.hint


def test_output_path_that_is_a_file_is_a_clear_error(tmp_path):
    blocker = tmp_path / "gen"
    blocker.write_text("not a directory")
    spec = tmp_path / "w.gg"
    spec.write_text(SPEC)
    with pytest.raises(SpecError, match="cannot write"):
        compile_spec(spec, out_dir=blocker)


def test_concurrent_calls_from_threads_share_the_threaded_loops(tmp_path):
    """Kernels release the GIL and large elementwise loops run on Numba's thread pool; calls
    from several Python threads at once must neither crash nor mix up results."""
    script = textwrap.dedent(f"""
        import threading, numpy as np, graphgen
        m = graphgen.load({str(ROOT / 'benchmarks' / 'specs' / 'elementwise.gg')!r},
                          out_dir={str(tmp_path)!r})
        xs = [np.random.default_rng(s).normal(size=100_000) for s in range(3)]
        refs = [m.value_and_grad(x=x)[1]["x"] for x in xs]
        bad = []
        def work(k):
            for _ in range(10):
                if not np.array_equal(m.value_and_grad(x=xs[k])[1]["x"], refs[k]):
                    bad.append(k)
        threads = [threading.Thread(target=work, args=(k,)) for k in range(3)]
        [t.start() for t in threads]; [t.join() for t in threads]
        print("mismatches", len(bad))
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("mismatches 0")
