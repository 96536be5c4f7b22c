"""Thread control (graphgen/threads.py): BLAS and Numba get the cores nobody else is using.

The policy is tested with the machine's load replaced by a given count of runnable tasks;
the real OpenBLAS thread count is read back through the library SciPy loaded. How fast a
step runs on a busy machine is a benchmark (`python -m benchmarks contention`), not a test.
"""
import numpy as np
import pytest

from graphgen import threads


@pytest.fixture
def control(monkeypatch):
    """A fresh _Threads whose view of the machine is `load[0]` runnable tasks."""
    t = threads._Threads()
    if t.get_blas is None:
        pytest.skip("SciPy's OpenBLAS thread control not found on this platform")
    before = t.get_blas()
    load = [1]
    monkeypatch.setattr(threads, "_runnable_tasks", lambda: load[0])
    monkeypatch.setattr(threads.numba, "set_num_threads", lambda n: numba_counts.append(n))
    numba_counts: list[int] = []
    t.ceiling = 2  # as on a 2-core machine, whatever this one has
    yield t, load, numba_counts
    t.set_blas(before)


def _look(t, times=6):
    for _ in range(times):
        t.next_look = 0.0  # no waiting between looks in a test
        t.choose(False)


def test_blas_thread_count_is_read_back_from_the_library(control):
    t, _, _ = control
    t.set_blas(1)
    assert t.get_blas() == 1
    t.set_blas(2)
    assert t.get_blas() == 2


def test_busy_machine_gets_one_thread_and_a_quiet_one_all(control):
    t, load, _ = control
    t.set_blas(2)
    load[0] = 4  # this call, its BLAS thread and two other busy processes
    _look(t)
    assert t.get_blas() == 1
    load[0] = 1  # only this call
    _look(t)
    assert t.get_blas() == 2


def test_one_busy_look_does_not_flip_the_count(control):
    """The estimate is smoothed: one look at a passing burst keeps both threads."""
    t, load, _ = control
    t.set_blas(2)
    _look(t)
    load[0] = 3
    _look(t, times=1)
    assert t.get_blas() == 2


def test_looks_are_rate_limited(control):
    t, load, _ = control
    t.set_blas(2)
    t.next_look = 0.0
    t.choose(False)  # a look: quiet
    load[0] = 10
    for _ in range(50):
        t.choose(False)  # within 10 ms of the last look: not looked at again
    assert t.get_blas() == 2


def test_numba_threads_follow_when_asked(control):
    t, load, numba_counts = control
    load[0] = 4
    for _ in range(6):
        t.next_look = 0.0
        t.choose(True)
    assert numba_counts and numba_counts[-1] == 1


def test_user_thread_limit_is_the_ceiling(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert threads._Threads().ceiling == 1


def test_generated_module_sets_threads_before_blas_calls(build):
    m = build("input x[n, d]\nparam W[h, d]\nJ = sum((x @ W.T) ** 2)\nminimize J\n", "threads")
    assert "_threads.choose(False)" in open(m.__file__).read()
    rng = np.random.default_rng(0)
    x, W = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))
    J, g = m.value_and_grad(x=x, W=W)
    np.testing.assert_allclose(g["W"], 2 * (x @ W.T).T @ x, rtol=1e-12)
    assert J == pytest.approx(float(np.sum((x @ W.T) ** 2)), rel=1e-12)
