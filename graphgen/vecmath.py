"""Elementary functions that vectorise: exp, expm1, log, log1p, tanh, sin, cos in float64.

Why: Numba from PyPI has no SVML, so `np.exp`, `np.sin`, `np.tanh`... in a loop are scalar
libm calls (3-14 ns each) and keep LLVM from vectorising the loop at all. The functions here
are arithmetic only — range reduction, a polynomial, exponent bits — with `if` arms that
LLVM turns into selects, so a loop calling them runs 8 lanes at a time (AVX-512): 0.7-1.3 ns
per call instead of 3-14.

Accuracy (tests/test_vecmath.py, against mpmath at 300 bits, over the whole float64 range,
subnormals, +-0, +-inf and NaN): within 2 ulp of the correctly rounded result, the same
special values as libm. Taylor polynomials are used as they are (no minimax fit): their
truncation error is below 1e-17 on the reduced ranges, easy to check by reading.

sin and cos reduce their argument with pi/2 split in four pieces (Cody-Waite), exact for
|x| <= _TRIG_LIMIT = 1e6. A generated loop that calls them also counts, with `_trig_wide`,
the arguments beyond that (or inf, NaN); if there were any, it runs again as a twin that
calls libm (a flag inside one loop does not work: LLVM then computes both versions).

The generated module carries a copy of the functions it uses — it imports nothing from
graphgen — and `source()` below cuts that copy out of this very file, so the code tested
here is, byte for byte, the code emitted. Everything is compiled without fastmath: the
reductions below rely on the exact order of IEEE operations, and `forceinline` keeps each
function's own (strict) flags when LLVM inlines it into a reassociating kernel.
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir as _llvm_ir
from numba.core import types as _nb_types
from numba.extending import intrinsic as _intrinsic

from . import excerpt

# In the generated module `_VEC` also has cache=True; here (tests, a read-only install) not.
_VEC = dict(error_model="numpy", nogil=True, forceinline=True)

# --- emitted from here on (see `excerpt`) -------------------------------------------------
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 = _LN2_HI + _LN2_LO; k * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_SQRT2 = 1.4142135623730951
_TWO_OVER_PI = 6.36619772367581382433e-01
_PIO2_1 = 1.57079632673412561417e+00  # pi/2 in four pieces of 33 bits (fdlibm's split):
_PIO2_2 = 6.07710050630396597660e-11  # k * _PIO2_i is exact for |k| < 2**20
_PIO2_3 = 2.02226624871116645580e-21
_PIO2_4 = 8.47842766036889956997e-32
_TRIG_LIMIT = 1e6  # |x| up to which the reduction above is exact (k < 2**20)
_ROUND = 6755399441055744.0  # 1.5 * 2**52: (v + _ROUND) rounds v to an integer, in the low bits
_LOW_BITS = 0xFFFFFFFFFFFFF  # 52 bits, less the 2**51 of _ROUND: the integer, signed


if numba.config.DISABLE_JIT:  # plain Python (debugging, tests): the same bits via NumPy
    def _f64_from_bits(bits):
        return np.int64(bits).view(np.float64)

    def _bits_of_f64(x):
        return np.float64(x).view(np.int64)
else:
    @_intrinsic
    def _f64_from_bits(typingctx, bits):
        """The float64 whose bit pattern is the int64 `bits` (a register move)."""
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], _llvm_ir.DoubleType())
        return _nb_types.float64(_nb_types.int64), codegen

    @_intrinsic
    def _bits_of_f64(typingctx, x):
        """The bit pattern of the float64 `x` as an int64."""
        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], _llvm_ir.IntType(64))
        return _nb_types.int64(_nb_types.float64), codegen


@numba.njit(**_VEC)
def _pow2(k):
    # 2**k for an integer -1022 <= k <= 1023, written straight into the exponent bits
    return _f64_from_bits((k + 1023) << 52)


@numba.njit(**_VEC)
def _expm1_reduced(r):
    # expm1(r) = r * sum(r**j / (j+1)!, j <= 12) for |r| <= ln(2)/2 (truncation < 1e-17
    # relative), in Estrin's order: pairs combined with r**2, r**4, r**8. A short chain of
    # dependent operations, so that a lone call (a loop of 3) is as quick as libm's
    r2 = r * r
    r4 = r2 * r2
    low = (1.0 + r * (1.0 / 2)) + r2 * (1.0 / 6 + r * (1.0 / 24)) + r4 * (
        (1.0 / 120 + r * (1.0 / 720)) + r2 * (1.0 / 5040 + r * (1.0 / 40320)))
    high = (1.0 / 362880 + r * (1.0 / 3628800)) + r2 * (1.0 / 39916800 + r * (1.0 / 479001600)) \
        + r4 * (1.0 / 6227020800)
    return r * (low + (r4 * r4) * high)


@numba.njit(**_VEC)
def _exp(x):
    # exp(x) = 2**k * exp(r), x = k ln2 + r; 2**k applied in two halves so that results
    # down to the subnormals and up to the largest double come out right
    xs = min(max(x, -746.0), 710.0) if x == x else 0.0
    t = xs * _LOG2E + _ROUND
    kf = t - _ROUND  # k = round(x / ln2), as a float and (below) as an integer
    k = (_bits_of_f64(t) & _LOW_BITS) - 0x8000000000000
    r = (xs - kf * _LN2_HI) - kf * _LN2_LO
    half = k >> 1
    y = (1.0 + _expm1_reduced(r)) * _pow2(half) * _pow2(k - half)
    return y if x == x else x


@numba.njit(**_VEC)
def _expm1(x):
    # exp(x) - 1 without cancellation: exactly the polynomial when k = 0 (|x| < ln2/2)
    xs = min(max(x, -746.0), 710.0) if x == x else 0.0
    t = xs * _LOG2E + _ROUND
    kf = t - _ROUND
    k = (_bits_of_f64(t) & _LOW_BITS) - 0x8000000000000
    r = (xs - kf * _LN2_HI) - kf * _LN2_LO
    p = _expm1_reduced(r)
    half = k >> 1
    s1 = _pow2(half)
    s2 = _pow2(k - half)
    # 2**k (1 + p) - 1, arranged so nothing cancels while 2**k is small, and without
    # inf - inf once 2**k overflows
    y = s1 * (s2 * p) + (s1 * s2 - 1.0) if k < 56 else (1.0 + p) * s1 * s2 - 1.0
    return y if x == x and x != 0.0 else x  # NaN, and -0.0 keeps its sign


@numba.njit(**_VEC)
def _log(x):
    # x = m * 2**e with sqrt(1/2) <= m < sqrt(2); log(m) = 2 atanh(s), s = (m-1)/(m+1),
    # |s| <= 0.1716, by its odd series to s**23 (truncation < 1e-18 relative)
    tiny = x < 2.2250738585072014e-308
    xs = x * 18014398509481984.0 if tiny else x  # 2**54 lifts subnormals
    bits = _bits_of_f64(xs)
    e = (bits >> 52) - (1077 if tiny else 1023)
    m = _f64_from_bits((bits & 0x000FFFFFFFFFFFFF) | 0x3FF0000000000000)
    big = m > _SQRT2
    m = m * 0.5 if big else m
    e = e + 1 if big else e
    s = (m - 1.0) / (m + 1.0)
    z = s * s
    z2 = z * z
    z4 = z2 * z2
    tail = (1.0 / 3 + z * (1.0 / 5)) + z2 * (1.0 / 7 + z * (1.0 / 9)) + z4 * (
        (1.0 / 11 + z * (1.0 / 13)) + z2 * (1.0 / 15 + z * (1.0 / 17))) + (z4 * z4) * (
        (1.0 / 19 + z * (1.0 / 21)) + z2 * (1.0 / 23))  # Estrin's order, as in _expm1_reduced
    log_m = 2.0 * s + (2.0 * s * z) * tail
    y = e * _LN2_HI + (log_m + e * _LN2_LO)
    if x > 0.0 and x < np.inf:
        return y
    return -np.inf if x == 0.0 else (x if x > 0.0 else np.nan)


@numba.njit(**_VEC)
def _log1p(x):
    # log(1 + x) = log(u) + c, u = 1 + x rounded, c = the rounding error of u over u
    u = 1.0 + x
    c = (x - (u - 1.0)) / u if u > 0.0 and u < np.inf else 0.0
    return _log(u) + c if x != 0.0 else x  # -0.0 keeps its sign


@numba.njit(**_VEC)
def _tanh(x):
    # small |x|: tanh|x| = -expm1(-2|x|) / (2 + expm1(-2|x|)), no cancellation near 0;
    # from tanh = 1/2 on: 1 - 2 / (exp(2|x|) + 1), whose small correction keeps it in 1 ulp
    a = abs(x)
    e = _expm1(-2.0 * a)
    t = -e / (2.0 + e) if a < 0.5493 else 1.0 - 2.0 / (_exp(2.0 * a) + 1.0)
    return (t if x > 0.0 else -t) if x != 0.0 else x  # -0.0 keeps its sign


@numba.njit(**_VEC)
def _sin_reduced(r):
    # sin(r) for |r| <= pi/4 by Taylor's series to r**17 (truncation < 1e-19 relative),
    # in Estrin's order in z = r**2
    z = r * r
    z2 = z * z
    tail = (-1.0 / 6 + z * (1.0 / 120)) + z2 * (-1.0 / 5040 + z * (1.0 / 362880)) + (z2 * z2) * (
        (-1.0 / 39916800 + z * (1.0 / 6227020800))
        + z2 * (-1.0 / 1307674368000 + z * (1.0 / 355687428096000)))
    return r + (r * z) * tail


@numba.njit(**_VEC)
def _cos_reduced(r):
    # cos(r) for |r| <= pi/4 by Taylor's series to r**16 (truncation < 1e-17), in Estrin's
    # order in z = r**2
    z = r * r
    z2 = z * z
    tail = (-1.0 / 2 + z * (1.0 / 24)) + z2 * (-1.0 / 720 + z * (1.0 / 40320)) + (z2 * z2) * (
        (-1.0 / 3628800 + z * (1.0 / 479001600))
        + z2 * (-1.0 / 87178291200 + z * (1.0 / 20922789888000)))
    return 1.0 + z * tail


@numba.njit(**_VEC)
def _sin_cos_quadrant(x, shift):
    # sin(x + shift * pi/2) for |x| <= _TRIG_LIMIT: x = k pi/2 + r, |r| <= pi/4
    xs = x if abs(x) <= _TRIG_LIMIT else 0.0  # out of range: the caller uses libm
    t = xs * _TWO_OVER_PI + _ROUND
    kf = t - _ROUND
    k = (_bits_of_f64(t) & _LOW_BITS) - 0x8000000000000
    r = (((xs - kf * _PIO2_1) - kf * _PIO2_2) - kf * _PIO2_3) - kf * _PIO2_4
    q = (k + shift) & 3
    v = _sin_reduced(r) if (q & 1) == 0 else _cos_reduced(r)
    return -v if q >= 2 else v


@numba.njit(**_VEC)
def _sin(x):
    # for |x| <= 1e6; callers count the others with _trig_wide and redo them with np.sin
    return _sin_cos_quadrant(x, 0)


@numba.njit(**_VEC)
def _cos(x):
    # for |x| <= 1e6; callers count the others with _trig_wide and redo them with np.cos
    return _sin_cos_quadrant(x, 1)


@numba.njit(**_VEC)
def _trig_wide(x):
    # 1 if sin/cos of x needs libm (beyond the exact reduction, inf or NaN), else 0
    return 0 if abs(x) <= _TRIG_LIMIT else 1


# --- emitted up to here -------------------------------------------------------------------

FUNCTIONS = ("_exp", "_expm1", "_log", "_log1p", "_tanh", "_sin", "_cos", "_trig_wide")
IMPORTS = (
    "from llvmlite import ir as _llvm_ir",
    "from numba.core import types as _nb_types",
    "from numba.extending import intrinsic as _intrinsic",
)


def source(used: set[str]) -> tuple[str, str] | None:
    """(constants, functions) as text for the functions in `used` that are ours and everything
    they call, in this file's order; None if none is used."""
    return excerpt.source(__file__, set(used) & set(FUNCTIONS))
