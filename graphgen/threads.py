"""How many threads a call may use: as many as there are idle cores, decided as it runs.

Why: OpenBLAS's threads spin-wait for each other. When other processes keep the cores busy
(a data loader, a second experiment), a spinning thread is descheduled and the others wait
for it: the seed network's float32 step took 45-97 ms with two BLAS threads on a busy
2-core machine, 4.6-6.9 ms with one (and 0.3 ms on a quiet one). A second thread pays on a
quiet machine only. So before each native call that runs BLAS or threaded loops, the
module looks (at most every 10 ms) at how many other tasks are runnable right now
(`/proc/loadavg`'s running count, less the threads of this call), smooths that over a few
looks, and gives BLAS and Numba the cores that are left, at least one. OpenBLAS's own rule
still keeps small products on one thread. The ceiling is what the process started with,
so OPENBLAS_NUM_THREADS and NUMBA_NUM_THREADS set by the user still cap it.

The BLAS that Numba's `np.dot` calls is SciPy's OpenBLAS; its `set_num_threads` is found
with ctypes in the library SciPy loaded (no threadpoolctl needed in a generated module).
Where it cannot be found (another BLAS, another OS), only Numba's threads are managed.
Like `vecmath` and `blas`, a generated module carries a copy of the code below (`excerpt`).
"""
from __future__ import annotations

import ctypes as _ctypes
import glob as _glob
import os as _os
import time as _time

import numba

from . import excerpt

# --- emitted from here on (see `excerpt`) -------------------------------------------------
_LOOK_EVERY = 0.01  # seconds between two looks at the machine's load
_SMOOTHING = 0.5  # weight of the newest look in the running estimate of other tasks


def _blas_thread_control():
    """(get, set) of the number of threads of SciPy's OpenBLAS, or (None, None)."""
    try:
        import scipy
    except ImportError:
        return None, None
    base = _os.path.dirname(scipy.__file__)
    paths = sorted(_glob.glob(_os.path.join(base, "..", "scipy.libs", "*openblas*"))
                   + _glob.glob(_os.path.join(base, ".dylibs", "*openblas*")))
    for path in paths:
        try:
            lib = _ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in ("scipy_openblas", "openblas", "scipy_openblas64_", "openblas64_"):
            try:
                get = lib[prefix + "_get_num_threads"]
                put = lib[prefix + "_set_num_threads"]
            except AttributeError:  # not this library's spelling
                continue
            get.restype, put.argtypes = _ctypes.c_int, [_ctypes.c_int]
            return get, put
    return None, None


def _runnable_tasks():
    """Tasks running or ready to run on the machine right now (this one included), or None
    where /proc/loadavg does not exist."""
    try:
        fd = _os.open("/proc/loadavg", _os.O_RDONLY)
        try:
            text = _os.read(fd, 256)
        finally:
            _os.close(fd)
        return int(text.split()[3].split(b"/")[0])
    except (OSError, ValueError, IndexError):
        return None


class _Threads:
    """The thread counts of this process's BLAS and Numba, and the load estimate they follow."""

    def __init__(self):
        self.get_blas, self.set_blas = _blas_thread_control()
        try:
            cores = len(_os.sched_getaffinity(0))
        except AttributeError:
            cores = _os.cpu_count() or 1
        # OpenBLAS's own start-up rule (another module may have lowered its count since)
        for name in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"):
            if _os.environ.get(name, "").strip().isdigit() and int(_os.environ[name]) > 0:
                cores = min(cores, int(_os.environ[name]))
                break
        self.ceiling = max(1, cores)
        self.numba_ceiling = numba.config.NUMBA_NUM_THREADS
        self.numba_current = None
        self.others = 0.0
        self.next_look = 0.0

    def choose(self, numba_too):
        """Give BLAS (and Numba's parallel loops, with `numba_too`) the idle cores."""
        now = _time.perf_counter()
        if now < self.next_look:
            return
        self.next_look = now + _LOOK_EVERY
        running = _runnable_tasks()
        if running is None:
            return
        # this thread is running; the other threads of a call may still be spinning
        current = self.get_blas() if self.get_blas is not None else 1
        others = max(0, running - max(1, current))
        self.others += _SMOOTHING * (others - self.others)
        # a core counts as taken once the estimate passes 3/4: two looks in a row, not one
        want = max(1, self.ceiling - int(self.others + 0.25))
        if want != current and self.set_blas is not None:
            self.set_blas(want)
        if numba_too and want != self.numba_current:
            numba.set_num_threads(max(1, min(want, self.numba_ceiling)))
            self.numba_current = want


_threads = _Threads()
# --- emitted up to here -------------------------------------------------------------------

FUNCTIONS = ("_threads",)
IMPORTS = (
    "import ctypes as _ctypes",
    "import glob as _glob",
    "import os as _os",
    "import time as _time",
)


def source() -> tuple[str, str]:
    """(constants, definitions) as text: everything between the markers."""
    return excerpt.source(__file__, {"_threads"})
