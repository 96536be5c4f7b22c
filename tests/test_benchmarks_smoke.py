"""The benchmark suite runs and every implementation agrees with graphgen on tiny sizes.
No timing assertions: benchmarks are benchmarks, not timed tests."""
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import elementwise, seed_step  # noqa: E402
from benchmarks.__main__ import check_steps, rel_error  # noqa: E402
from benchmarks.harness import compare  # noqa: E402


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_step_implementation_agrees_with_graphgen(dtype):
    notes = []
    errors = check_steps("tiny", dtype, compile_torch=False, notes=notes)
    assert {"graphgen", "NumPy by hand", "Numba by hand"} <= set(errors)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    assert all(err <= tol for err in errors.values()), errors


def test_predict_and_elementwise_implementations_agree():
    fns = seed_step.predict_impls("tiny", np.float64)
    ref = np.asarray(fns["graphgen"]())
    for name, fn in fns.items():
        assert rel_error(np.asarray(fn()), ref) <= 1e-10, name
    fns, x = elementwise.impls(1000, compile_torch=False)
    ref, _ = elementwise.reference_grad(x)
    for name, fn in fns.items():
        assert rel_error(fn(), ref) <= 1e-10, name


def test_harness_reports_every_implementation():
    timings = compare({"a": lambda: None, "b": lambda: sum(range(10))}, rounds=2, block=0.01,
                      warm=0.01)
    assert set(timings) == {"a", "b"}
    assert all(len(t.samples) == 2 and t.median > 0 for t in timings.values())
