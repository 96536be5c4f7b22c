"""The vectorised elementary functions (graphgen/vecmath.py) against mpmath and libm, and
the loops that call them: they must vectorise, and sin/cos beyond their range must fall
back to libm in generated code."""
from __future__ import annotations

import re

import mpmath
import numba
import numpy as np
import pytest

import graphgen
from graphgen import build, vecmath

mpmath.mp.prec = 200
RNG = np.random.default_rng(7)
TINY = 5e-324


def _spread(lo, hi, n):
    """Magnitudes from lo to hi, both signs, geometrically spaced."""
    m = np.geomspace(lo, hi, n)
    return np.concatenate([m, -m])


CASES = {
    # name: (vectorised function, libm, mpmath, arguments)
    "_exp": (vecmath._exp, np.exp, mpmath.exp, np.concatenate([
        np.linspace(-745.2, 709.78, 1500), _spread(1e-300, 1.0, 300),
        [-745.13, 709.782712893384]])),
    "_expm1": (vecmath._expm1, np.expm1, mpmath.expm1, np.concatenate([
        np.linspace(-50, 709.78, 1000), _spread(1e-300, 2.0, 500), [0.3465, 0.3466, -0.3466]])),
    "_log": (vecmath._log, np.log, mpmath.log, np.concatenate([
        np.geomspace(TINY, 1.7e308, 1500), 1 + _spread(1e-15, 0.5, 200), [1.4142135623730951]])),
    "_log1p": (vecmath._log1p, np.log1p, mpmath.log1p, np.concatenate([
        _spread(1e-300, 0.9, 600), np.geomspace(1, 1e300, 300),
        -1 + np.geomspace(1e-16, 0.5, 100)])),
    "_tanh": (vecmath._tanh, np.tanh, mpmath.tanh, np.concatenate([
        _spread(1e-300, 25.0, 800), np.linspace(-3, 3, 401)])),
    "_sin": (vecmath._sin, np.sin, mpmath.sin, np.concatenate([
        np.linspace(-1e6, 1e6, 1001), _spread(1e-300, 10.0, 300),
        np.pi / 2 * RNG.integers(-600_000, 600_000, 300)])),
    "_cos": (vecmath._cos, np.cos, mpmath.cos, np.concatenate([
        np.linspace(-1e6, 1e6, 1001), _spread(1e-300, 10.0, 300),
        np.pi / 2 * RNG.integers(-600_000, 600_000, 300)])),
}


def _ulps(got: float, exact) -> float:
    nearest = float(exact)
    if nearest == 0.0:
        return abs(got) / TINY
    return float(abs(mpmath.mpf(got) - exact) / np.spacing(abs(nearest)))


@pytest.mark.parametrize("name", list(CASES))
def test_within_two_ulp_of_the_exact_value(name):
    fn, _, exact, xs = CASES[name]
    worst = max((_ulps(fn(float(v)), exact(mpmath.mpf(float(v)))), float(v)) for v in xs)
    assert worst[0] <= 2.0, f"{name}({worst[1]!r}) is {worst[0]:.2f} ulp off"


@pytest.mark.parametrize("name", list(CASES))
def test_agrees_with_libm_on_random_arguments(name):
    fn, libm, _, _ = CASES[name]
    x = RNG.normal(size=20_000) * RNG.choice([1e-8, 1.0, 10.0, 300.0], size=20_000)
    if name == "_log":
        x = np.abs(x)
    if name == "_log1p":
        x = np.maximum(x, -0.999)
    out = np.empty_like(x)
    _loop(fn)(x, out)
    with np.errstate(all="ignore"):
        ref = libm(x)
    ok = np.isclose(out, ref, rtol=4 * 2.0 ** -52, atol=0) | (out == ref)
    assert ok.all(), (x[~ok][:3], out[~ok][:3], ref[~ok][:3])


SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, TINY, -TINY, 2.2250738585072014e-308, 1e300,
           -1e300, 710.0, -746.0, -1.0, -2.0]


@pytest.mark.parametrize("name", ["_exp", "_expm1", "_log", "_log1p", "_tanh"])
def test_special_values_are_libms(name):
    fn, libm, _, _ = CASES[name]
    for v in SPECIAL:
        with np.errstate(all="ignore"):
            want = float(libm(v))
        got = fn(v)
        if np.isfinite(want) and want != 0.0 and np.isfinite(got):  # not special here
            assert got == pytest.approx(want, rel=4 * 2.0 ** -52), (name, v, got, want)
            continue
        assert (np.isnan(got) and np.isnan(want)) or got == want, (name, v, got, want)
        assert np.signbit(got) == np.signbit(want) or np.isnan(want), (name, v, got, want)


_LOOPS: dict = {}


def _loop(fn):
    """A reassociating loop over an array, like the generated kernels."""
    if fn not in _LOOPS:
        @numba.njit(error_model="numpy", fastmath={"reassoc"})
        def loop(x, out):
            acc = 0.0
            for i in range(x.size):
                v = fn(x[i])
                out[i] = v
                acc += v
            return acc
        _LOOPS[fn] = loop
    return _LOOPS[fn]


@pytest.mark.parametrize("name", ["_exp", "_log1p", "_tanh", "_sin"])
def test_a_loop_calling_them_vectorises(name):
    fn = CASES[name][0]
    loop = _loop(fn)
    loop(np.ones(4), np.empty(4))
    ir = next(iter(loop.inspect_llvm().values()))
    assert re.search(r"<\d+ x double>", ir), "the loop did not vectorise"
    assert not re.search(r"call [^\n]*@(exp|log1p|tanh|sin)\(", ir), "a libm call is left"


def test_emitted_text_is_this_module_and_runs_without_the_jit():
    """`source` cuts the emitted text out of vecmath.py; executed with the JIT off (the
    bit casts then go through NumPy), it gives the same bits as the compiled functions."""
    constants, functions = vecmath.source(set(vecmath.FUNCTIONS))
    module = build.load_python(
        "import numpy as np\nimport numba\n" + "\n".join(vecmath.IMPORTS) + "\n"
        "_VEC = {}\n" + constants + "\n\n\n" + functions + "\n")
    for name in ("_exp", "_expm1", "_log", "_log1p", "_tanh", "_sin", "_cos"):
        fn, _, _, xs = CASES[name]
        for v in xs[::37]:
            assert module.__dict__[name](float(v)) == fn(float(v)), (name, v)
    assert "_trig_wide" in functions and "def _exp(" in functions
    assert vecmath.source({"not_a_function"}) is None


WIDE_SPEC = """\
param x[n]
J = sum(softplus(x) * sin(x) ** 2 + tanh(x) * exp(-x ** 2))
minimize J
"""


@pytest.fixture(scope="module")
def wide(tmp_path_factory):
    where = tmp_path_factory.mktemp("vecmath")
    (where / "trig.gg").write_text(WIDE_SPEC)
    return graphgen.load(where / "trig.gg", out_dir=where)


def _reference(x):
    with np.errstate(all="ignore"):
        sp_ = np.logaddexp(0.0, x)
        sig = 0.5 * (1.0 + np.tanh(0.5 * x))
        s, c, t, e = np.sin(x), np.cos(x), np.tanh(x), np.exp(-x * x)
        g = sig * s * s + sp_ * 2 * s * c + (1 - t * t) * e - 2 * x * t * e
        return float(np.sum(sp_ * s * s + t * e)), g


@pytest.mark.parametrize("n", [1000, 70_000], ids=["serial", "threaded"])
@pytest.mark.parametrize("outlier", [3.0e7, -1e200, np.inf], ids=["3e7", "-1e200", "inf"])
def test_sin_cos_beyond_their_range_fall_back_to_libm(wide, n, outlier):
    x = RNG.normal(size=n) * 2
    x[n // 3] = outlier
    J, g = wide.value_and_grad(x=x)
    J_ref, g_ref = _reference(x)
    finite = np.isfinite(g_ref)
    np.testing.assert_allclose(g["x"][finite], g_ref[finite], rtol=1e-9, atol=1e-12)
    assert np.isnan(g["x"][~finite]).all() == np.isnan(g_ref[~finite]).all()
    assert (np.isnan(J) and np.isnan(J_ref)) or J == pytest.approx(J_ref, rel=1e-12)
    x[n // 3] = 0.5  # back in range: the vectorised path, same agreement
    J, g = wide.value_and_grad(x=x)
    np.testing.assert_allclose(g["x"], _reference(x)[1], rtol=1e-9, atol=1e-12)
