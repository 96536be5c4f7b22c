"""Hardening, round 2 (issue 14): calls into generated modules. Memory budget and
overflow-checked sizes, validation under threads, aliasing in sgd_step, the tape of
backward(), IEEE edge cases without fast-math reciprocals, an unwritable Numba cache, and
argument kinds the validator used to let through. Crash and hang cases run in a subprocess
with a timeout."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphgen

ROOT = Path(__file__).resolve().parent.parent

SEGFAULT_SPEC = """input x[n]
param w
J = logsumexp(einsum("i,j,k,l->ijkl", x, x, x, x) * w)
minimize J
"""

TIED_SPEC = """input x[n, d]
param A[d, d]
param B[d, d]
J = sum(tanh(x @ A) @ B)
minimize J
"""

LABELS_SPEC = """input x[n, d]
input y[n]: int
param W[q, d]
hyper lam = 0.01
J = mean(cross_entropy(x @ W.T, y)) + lam * sum(W ** 2)
minimize J
"""


def run_python(code: str, timeout: float = 280) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


# ------------------------------------------------------------------ 1: sizes and budget
def test_size_that_wraps_int64_is_a_memory_error_not_a_segfault(tmp_path):
    """n**4 elements for n = 65536 wrapped to 0 in int64: the kernel wrote past its buffer
    (SIGSEGV). Now every entry point raises MemoryError naming what it would allocate."""
    spec = tmp_path / "wrap.gg"
    spec.write_text(SEGFAULT_SPEC)
    proc = run_python(f"""
        import numpy as np, graphgen
        m = graphgen.load({str(spec)!r}, out_dir={str(tmp_path / 'gen')!r})
        x, w = np.ones(65536), np.array(0.5)
        for call in (lambda: m.value_and_grad(x=x, w=w), lambda: m.forward(x=x, w=w),
                     lambda: m.predict(x=x, w=w), lambda: m.sgd_step(x=x, w=w, lr=0.1)):
            try:
                call()
                print("no error")
            except MemoryError as e:
                print("MemoryError:", e)
        print("small", m.value_and_grad(x=np.ones(3), w=w)[0])
    """)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 5
    for line in lines[:4]:
        assert line.startswith("MemoryError: graphgen: temporary") and "147573952" in line
    assert float(lines[4].split()[1]) == pytest.approx(0.5 + np.log(81), rel=1e-12)


def test_memory_budget_is_configurable_and_checked_before_allocating(build):
    m = build(SEGFAULT_SPEC, "budget")
    x, w = np.linspace(0, 1, 20), np.array(0.3)
    J, g = m.value_and_grad(x=x, w=w)  # 20**4 * 8 bytes = 1.28 MB: within any default
    old = m.MEMORY_BUDGET
    try:
        m.MEMORY_BUDGET = 1.0e6
        tracemalloc.start()  # sees Numba's allocations (NRT uses Python's allocator hooks)
        try:
            with pytest.raises(MemoryError, match=r"temporary '.*' of this call would need "
                                                  r"1 MB, over the memory budget of 1 MB"):
                m.value_and_grad(x=x, w=w)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < 200_000  # refused before the 1.28 MB temporaries were allocated
        m.MEMORY_BUDGET = 4.0e6
        assert m.value_and_grad(x=x, w=w)[0] == J
    finally:
        m.MEMORY_BUDGET = old
    ref = x[:, None, None, None] * x[None, :, None, None] * x[None, None, :, None] * x
    v = (ref * 0.3).ravel()
    assert J == pytest.approx(v.max() + np.log(np.exp(v - v.max()).sum()), rel=1e-12)


# ------------------------------------------------------------------ 2: threads
def test_threads_never_compile_an_unvalidated_signature(tmp_path):
    """While one thread's validated call compiled (float32, then float64), other threads'
    raw calls with float labels used to compile too, and J came out 2.819 instead of 2.540.
    Here: 4 threads, fresh compiles, valid and invalid calls interleaved."""
    spec = tmp_path / "labels.gg"
    spec.write_text(LABELS_SPEC)
    m = graphgen.load(spec, out_dir=tmp_path / "gen")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(8, 5))
    y = rng.integers(0, 3, size=8)
    W = rng.normal(size=(3, 5))
    results, refused, wrong = [], [], []
    stop = threading.Event()

    def bad_caller():
        while not stop.is_set():
            try:
                m.value_and_grad(x=x, y=y.astype(np.float64), W=W)
                wrong.append("float labels accepted")
            except TypeError:
                refused.append(1)
            time.sleep(0.0005)  # leave the compiling thread some of the GIL

    def good_caller(dtype):
        results.append((dtype, m.value_and_grad(x=x.astype(dtype), y=y,
                                                W=W.astype(dtype))[0]))

    bad = [threading.Thread(target=bad_caller) for _ in range(2)]
    for t in bad:
        t.start()
    for dtype in (np.float32, np.float64, np.float32):
        good = [threading.Thread(target=good_caller, args=(dtype,)) for _ in range(2)]
        for t in good:
            t.start()
        for t in good:
            t.join()
    stop.set()
    for t in bad:
        t.join()
    assert not wrong
    assert len(refused) > 10
    sig = [s for s in m._value_and_grad_kernel.signatures]
    assert all(str(s[1]).startswith("array(int64") for s in sig), sig
    logits = x @ W.T
    ref = np.mean(np.log(np.exp(logits).sum(1)) - logits[np.arange(8), y]) + 0.01 * (W ** 2).sum()
    for dtype, J in results:
        assert J == pytest.approx(ref, rel=1e-12 if dtype == np.float64 else 1e-5)


@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(calls=st.lists(st.sampled_from(["good64", "good32", "float_labels", "int32_labels",
                                       "list", "wrong_shape", "bool_lam"]),
                      min_size=4, max_size=12))
def test_threads_with_mixed_valid_and_invalid_calls(build, calls):
    m = build(LABELS_SPEC, "mixed")
    rng = np.random.default_rng(1)
    x, y, W = rng.normal(size=(6, 4)), rng.integers(0, 3, size=6), rng.normal(size=(3, 4))
    ref = m.value_and_grad(x=x, y=y, W=W)[0]
    args = {
        "good64": dict(x=x, y=y, W=W), "good32": dict(x=x.astype(np.float32), y=y,
                                                      W=W.astype(np.float32)),
        "float_labels": dict(x=x, y=y.astype(float), W=W),
        "int32_labels": dict(x=x, y=y.astype(np.int32), W=W),
        "list": dict(x=x.tolist(), y=y, W=W), "wrong_shape": dict(x=x, y=y[:5], W=W),
        "bool_lam": dict(x=x, y=y, W=W, lam=True),
    }
    outcome = {}

    def call(k, kind):
        try:
            outcome[k] = ("ok", m.value_and_grad(**args[kind])[0])
        except (TypeError, ValueError) as e:
            outcome[k] = (type(e).__name__, str(e))

    threads = [threading.Thread(target=call, args=(k, kind)) for k, kind in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, kind in enumerate(calls):
        status, value = outcome[k]
        if kind == "good64":
            assert status == "ok" and value == ref
        elif kind in ("good32", "int32_labels"):  # int32 labels are validated and widened
            assert status == "ok" and value == pytest.approx(ref, rel=1e-5)
        elif kind in ("float_labels", "list", "bool_lam"):
            assert status == "TypeError", (kind, value)
        else:
            assert status == "ValueError" and "'y'" in value


# ------------------------------------------------------------------ 3: aliasing
def _tied_args(d=4, n=3):
    rng = np.random.default_rng(2)
    return rng.normal(size=(n, d)), rng.normal(size=(d, d)), rng.normal(size=(d, d))


@pytest.mark.parametrize("case", ["tied", "overlapping views", "input is a param",
                                  "input views a param"])
def test_sgd_step_refuses_aliased_arguments(build, case):
    m = build(TIED_SPEC, "tied")
    x, A, B = _tied_args()
    m.sgd_step(x=x, A=A.copy(), B=B.copy(), lr=0.1)  # the fast path is open
    buf = np.arange(40.0) / 40
    if case == "tied":
        args, pair = dict(x=x, A=A, B=A), ("A", "B")
    elif case == "overlapping views":
        args, pair = dict(x=x, A=buf[:16].reshape(4, 4), B=buf[8:24].reshape(4, 4)), ("A", "B")
    elif case == "input is a param":  # n = d = 4, so x can be A itself
        args, pair = dict(x=A, A=A, B=B), ("A", "x")
    else:
        args, pair = dict(x=A[1:4], A=A, B=B), ("A", "x")
    before = {k: v.copy() for k, v in args.items()}
    for _ in range(2):  # the general path, then again (the fast path must refuse too)
        with pytest.raises(ValueError) as info:
            m.sgd_step(**args, lr=0.1)
        assert all(f"'{p}'" in str(info.value) for p in pair)
        assert "share memory" in str(info.value)
    for k, v in args.items():
        assert np.array_equal(v, before[k]), f"{k} was written"


@st.composite
def aliased_calls(draw):
    """An sgd_step call where some pair of arguments shares memory (or, as a control, none
    does): the same array, overlapping slices of one buffer, or an input that views a
    param."""
    d = 3
    buf = np.linspace(-1, 1, 64)
    how = draw(st.sampled_from(["same", "overlap", "input_view", "none"]))
    slots = ["x", "A", "B"]
    offset = draw(st.integers(0, 64 - 2 * d * d))
    arrays = {"x": np.linspace(0, 1, 2 * d).reshape(2, d), "A": np.eye(d) * 0.5,
              "B": np.ones((d, d)) * 0.25}
    pair = None
    if how == "same":
        pair = draw(st.sampled_from([("A", "B"), ("B", "A")]))
        arrays[pair[0]] = arrays[pair[1]] = buf[offset:offset + d * d].reshape(d, d).copy()
    elif how == "overlap":
        shift = draw(st.integers(1, d * d - 1))
        pair = ("A", "B")
        arrays["A"] = buf[offset:offset + d * d].reshape(d, d)
        arrays["B"] = buf[offset + shift:offset + shift + d * d].reshape(d, d)
    elif how == "input_view":
        p = draw(st.sampled_from(["A", "B"]))
        pair = (p, "x")
        arrays[p] = buf[offset:offset + d * d].reshape(d, d)
        start = draw(st.integers(0, d * d - 2 * d))
        arrays["x"] = buf[offset + start:offset + start + 2 * d].reshape(2, d)
    assert set(arrays) == set(slots)
    return arrays, pair


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=aliased_calls(), repeat=st.booleans())
def test_aliasing_fuzz(build, case, repeat):
    m = build(TIED_SPEC.replace("tanh", "sin"), "tiedfuzz")
    arrays, pair = case
    if pair is None:
        A, B = arrays["A"].copy(), arrays["B"].copy()
        J, g = m.value_and_grad(**arrays)
        assert m.sgd_step(**arrays, lr=0.1) == J
        assert np.allclose(arrays["A"], A - 0.1 * g["A"], rtol=1e-13, atol=1e-15)
        assert np.allclose(arrays["B"], B - 0.1 * g["B"], rtol=1e-13, atol=1e-15)
        return
    before = {k: v.copy() for k, v in arrays.items()}
    for _ in range(2 if repeat else 1):
        with pytest.raises(ValueError, match="share memory") as info:
            m.sgd_step(**arrays, lr=0.1)
        assert {f"'{pair[0]}'", f"'{pair[1]}'"} <= set(
            w for w in ("'x'", "'A'", "'B'") if w in str(info.value))
    for k in arrays:
        assert np.array_equal(arrays[k], before[k])


# ------------------------------------------------------------------ 6: IEEE edge cases
EDGE_SPEC = """input x[n]
param s
param w[n]
o = x / s
J = sum(sqrt(w)) + sum(o) + sum(x / sqrt(w))
minimize J
output o
"""


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 64])
def test_ieee_edge_cases_in_both_dtypes(build, dtype, n):
    """`arcp` let LLVM turn a / b into a * (1/b) and, in float32, 1/sqrt into an rsqrt
    estimate: sqrt'(0) was NaN, x / sqrt(inf) NaN, and x / subnormal gave inf for n = 64."""
    m = build(EDGE_SPEC, "edges")
    tiny = np.finfo(dtype).smallest_subnormal * 4
    x = np.full(n, tiny, dtype)
    o = m.predict(x=x, s=np.array(tiny, dtype))
    assert np.all(o == 1.0), o[:4]
    for w0, expect_grad in ((0.0, np.inf), (np.inf, 0.0)):
        w = np.full(n, w0, dtype)
        _, g = m.value_and_grad(x=np.ones(n, dtype), s=np.array(1.0, dtype), w=w)
        # d/dw [sqrt(w) + x / sqrt(w)] = 0.5/sqrt(w) - 0.5 x / w**1.5
        if w0 == 0.0:
            assert np.all(np.isnan(g["w"]) | (g["w"] == np.inf))
        else:
            assert np.all(g["w"] == 0.0), g["w"][:4]
    _, g = m.value_and_grad(x=np.zeros(n, dtype), s=np.array(1.0, dtype), w=np.zeros(n, dtype))
    assert np.all(np.isnan(g["w"]) | (g["w"] == np.inf))
    sqrt_only = build("param w[n]\nJ = sum(sqrt(w))\nminimize J\n", "sqrtonly")
    for w0 in (0.0, 1e-40, 1e-300):
        w = np.full(n, w0, dtype)
        _, g = sqrt_only.value_and_grad(w=w)
        with np.errstate(divide="ignore"):
            ref = (0.5 / np.sqrt(w.astype(np.float64))).astype(dtype)
        assert np.array_equal(g["w"], ref), (w0, g["w"][:3], ref[:3])


# ------------------------------------------------------------------ 7: backward(tape)
def test_backward_detects_inputs_changed_after_forward(mlp):
    rng = np.random.default_rng(3)
    args = dict(x=rng.normal(size=(6, 5)), y=rng.integers(0, 3, 6),
                W1=rng.normal(size=(4, 5)), W2=rng.normal(size=(3, 4)))
    J, g = mlp.value_and_grad(**args)
    tape = mlp.forward(**args)
    grads = mlp.backward(tape)
    assert all(np.array_equal(grads[k], g[k]) for k in g)
    args["x"][2, 3] += 1.0  # in place, between forward and backward
    with pytest.raises(ValueError, match=r"'x' was modified after forward\(\)"):
        mlp.backward(tape)
    args["x"][2, 3] -= 1.0
    assert all(np.array_equal(mlp.backward(tape)[k], g[k]) for k in g)
    bad = dict(tape)
    bad["W1"] = bad["W1"][:, :4]
    with pytest.raises(ValueError, match="'W1' was modified"):
        mlp.backward(bad)
    bad = dict(tape)
    bad["_dims"] = dict(bad["_dims"], n=1)
    with pytest.raises(ValueError, match="_dims"):
        mlp.backward(bad)
    with pytest.raises(TypeError, match="forward"):
        mlp.backward({k: v for k, v in tape.items() if k != "_seal"})


def test_backward_refuses_a_tape_from_another_module(mlp, build):
    other = build(LABELS_SPEC, "other")
    rng = np.random.default_rng(4)
    tape = other.forward(x=rng.normal(size=(4, 5)), y=np.array([0, 1, 2, 0]),
                         W=rng.normal(size=(3, 5)))
    with pytest.raises(TypeError, match="forward"):
        mlp.backward(tape)


# ------------------------------------------------------------------ 11: unwritable cache
def test_unwritable_numba_cache_compiles_in_memory_with_one_warning(tmp_path):
    """A 200-character spec name made every cache file name too long: each call raised a
    raw OSError (ENAMETOOLONG). Now: one RuntimeWarning, then in-memory compiles."""
    spec = tmp_path / ("m" * 200 + ".gg")
    spec.write_text("input x[n]\nparam w[n]\nJ = sum(x * tanh(w))\nminimize J\n")
    m = graphgen.load(spec, out_dir=tmp_path / "gen")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        J, g = m.value_and_grad(x=np.ones(3), w=np.zeros(3))
        J2, _ = m.value_and_grad(x=np.ones(3, np.float32), w=np.zeros(3, np.float32))
        tape = m.forward(x=np.ones(3), w=np.zeros(3))
        m.backward(tape)
    ours = [w for w in caught if "compiling in memory" in str(w.message)]
    assert len(ours) == 1 and issubclass(ours[0].category, RuntimeWarning)
    assert J == 0.0 and J2 == 0.0 and np.array_equal(g["w"], np.ones(3))


# ------------------------------------------------------------------ 16: argument kinds
@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_masked_and_matrix_arrays_are_refused(mlp, tmp_path):
    rng = np.random.default_rng(5)
    args = dict(x=rng.normal(size=(6, 5)), y=np.array([0, 1, 2, 0, 1, 2]),
                W1=rng.normal(size=(4, 5)), W2=rng.normal(size=(3, 4)))
    mlp.value_and_grad(**args)
    masked = np.ma.masked_array(args["x"], mask=args["x"] > 1)
    for f in (mlp.value_and_grad, mlp.forward):
        with pytest.raises(TypeError, match=r"'x' is a numpy.ma.*MaskedArray"):
            f(**dict(args, x=masked))
    with pytest.raises(TypeError, match=r"'x' is a numpy.ma.*MaskedArray"):
        mlp.predict(x=masked, W1=args["W1"], W2=args["W2"])
    with pytest.raises(TypeError, match=r"'W1' is a numpy.*matrix"):
        mlp.sgd_step(**dict(args, W1=np.asmatrix(args["W1"].copy())), lr=0.1)
    mm = np.memmap(tmp_path / "x.bin", dtype=np.float64, mode="w+", shape=(6, 5))
    mm[:] = args["x"]
    assert mlp.value_and_grad(**dict(args, x=mm))[0] == mlp.value_and_grad(**args)[0]


def test_hyper_kinds_are_consistent_on_every_path(mlp):
    rng = np.random.default_rng(6)
    args = dict(x=rng.normal(size=(6, 5)), y=np.array([0, 1, 2, 0, 1, 2]),
                W1=rng.normal(size=(4, 5)), W2=rng.normal(size=(3, 4)))
    for _ in range(2):  # first call, then with the fast path open
        mlp.value_and_grad(**args)
        for f in (mlp.value_and_grad, mlp.forward):
            with pytest.raises(TypeError, match="'lam' must be a real number, got bool"):
                f(**args, lam=True)
        with pytest.raises(TypeError, match="'lr' must be a real number, got bool"):
            mlp.sgd_step(**{k: v.copy() for k, v in args.items()}, lr=True)
        with pytest.raises(ValueError, match="'lam' is too large for a float64"):
            mlp.value_and_grad(**args, lam=10 ** 400)
        with pytest.raises(ValueError, match="'lr' is too large for a float64"):
            mlp.sgd_step(**{k: v.copy() for k, v in args.items()}, lr=10 ** 400)
        assert mlp.value_and_grad(**args, lam=1)[0] == mlp.value_and_grad(**args, lam=1.0)[0]


def test_uint64_labels_are_reported_by_their_value(mlp):
    rng = np.random.default_rng(7)
    args = dict(x=rng.normal(size=(3, 5)), W1=rng.normal(size=(4, 5)),
                W2=rng.normal(size=(3, 4)))
    y = np.array([0, 2 ** 64 - 1, 1], dtype=np.uint64)
    with pytest.raises(ValueError, match="found 18446744073709551615"):
        mlp.value_and_grad(**args, y=y)
    y = np.array([0, 2 ** 63, 1], dtype=np.uint64)
    with pytest.raises(ValueError, match="found 9223372036854775808"):
        mlp.value_and_grad(**args, y=y)
    assert np.isfinite(mlp.value_and_grad(**args, y=np.array([0, 2, 1], np.uint64))[0])


# ------------------------------------------------------------------ 5: cross_entropy
CE_SPEC = """param o[n, q]
input y[n]: int
J = sum(cross_entropy(o, y))
minimize J
"""


def _ce_reference(o, y):
    """Per-row logsumexp - picked logit, in exact arithmetic (mpmath, 50 digits)."""
    import mpmath

    mpmath.mp.dps = 50
    total = mpmath.mpf(0)
    for row, label in zip(o, y):
        finite = [mpmath.mpf(float(v)) for v in row if np.isfinite(v)]
        m = max(finite)
        lse = m + mpmath.log(sum(mpmath.exp(v - m) for v in finite))
        total += lse - mpmath.mpf(float(row[label]))
    return float(total)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_picks_the_label_by_index(build, dtype):
    """A -inf logit of another class (masking) gave NaN through -inf * 0; large logits lost
    everything (2.0 instead of log 3 at 1e16) to lse - logit at full magnitude."""
    m = build(CE_SPEC, "ce")
    o = np.array([[0.0, -np.inf, 1.0], [2.0, 3.0, -np.inf]], dtype)
    y = np.array([0, 1])
    J, g = m.value_and_grad(o=o, y=y)
    assert J == pytest.approx(_ce_reference(o, y), rel=1e-6 if dtype == np.float32 else 1e-14)
    assert np.all(np.isfinite(g["o"])) and g["o"][0, 1] == 0.0 and g["o"][1, 2] == 0.0
    for big in (1e13, 1e16, 1e30):
        o = np.full((2, 3), big, dtype)
        J, g = m.value_and_grad(o=o, y=np.array([0, 2]))
        assert J == pytest.approx(2 * np.log(3), rel=1e-6 if dtype == np.float32 else 1e-15)
        assert np.allclose(g["o"], np.array([[-2, 1, 1], [1, 1, -2]]) / 3, rtol=1e-6)


def test_logsumexp_of_a_row_with_plus_inf_is_documented_nan(build):
    """Documented in docs/robustness.md: the max shift makes inf - inf; PyTorch gives inf."""
    m = build("param o[n, q]\nJ = sum(logsumexp(o, axis=1))\nminimize J\n", "lseinf")
    J, _ = m.value_and_grad(o=np.array([[0.0, np.inf, 1.0]]))
    assert np.isnan(J)
    assert "logsumexp of a row holding +inf is NaN" in (ROOT / "docs" / "robustness.md").read_text()
