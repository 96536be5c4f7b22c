"""`_gemm(alpha, a, b, beta, c)`: c = alpha * (a @ b) + beta * c in one BLAS call; and
`_dot_t(a, b, out, scratch)`: out = a @ b.T, around OpenBLAS's slow small transposed case.

Why: Numba's `np.dot(a, b, out)` always computes `out = a @ b` (alpha 1, beta 0). An SGD
step then needs the gradient as an array of its own and one more pass over it and the
parameter: `W1 -= lr * (dJ/dz.T @ x + lam * W1)`. BLAS can fold both into the product:
`W1 = -lr * (dJ/dz.T @ x) + (1 - lr * lam) * W1`, one GEMM writing straight into W1
(with the decay moved into the penalty's pass, the float32 seed step went from 333 to
304 us; the five products alone take ~288).

`_gemm` calls the same BLAS entry point as Numba's `np.dot` (`numba_xxgemm` in Numba's
helper library, which calls SciPy's BLAS), with the alpha and beta that `np.dot` fixes at
1 and 0. It takes C-contiguous arrays and transposes of them (`x.T`), as `np.dot` does,
and checks the shapes before it calls BLAS. Like `vecmath`, the generated module carries a
copy of this code, cut out of this file (see `excerpt`).
"""
from __future__ import annotations

import numba
from llvmlite import ir as _llvm_ir
from numba.core import cgutils as _cgutils
from numba.core import types as _nb_types
from numba.extending import intrinsic as _intrinsic

from . import excerpt

# In the generated module `_VEC` also has cache=True; here (tests, a read-only install) not.
_VEC = dict(error_model="numpy", nogil=True, forceinline=True)

# --- emitted from here on (see `excerpt`) -------------------------------------------------
if numba.config.DISABLE_JIT:  # plain Python (debugging, tests)
    def _xxgemm(alpha, a, b, beta, c):
        if beta == 0:  # as BLAS: c is not read (it may be np.empty garbage; 0 * NaN is NaN)
            c[...] = alpha * (a @ b)
        else:
            c *= beta
            c += alpha * (a @ b)
else:
    @_intrinsic
    def _xxgemm(typingctx, alpha, a, b, beta, c):
        """c = alpha * (a @ b) + beta * c through numba_xxgemm, the BLAS wrapper that Numba's
        np.dot calls; a and b C- or F-ordered (a transpose), c C-ordered, one float dtype."""
        import scipy.linalg.cython_blas  # noqa: F401  (the BLAS numba_xxgemm calls)
        arrays = (a, b, c)
        if not all(isinstance(t, _nb_types.Array) and t.ndim == 2 for t in arrays) \
                or a.layout not in "CF" or b.layout not in "CF" or c.layout != "C" \
                or c.dtype not in (_nb_types.float32, _nb_types.float64) \
                or not a.dtype == b.dtype == c.dtype:
            return None

        def codegen(context, builder, signature, args):
            char, ptr = _llvm_ir.IntType(8), _llvm_ir.IntType(8).as_pointer()
            intp = context.get_value_type(_nb_types.intp)
            fnty = _llvm_ir.FunctionType(_llvm_ir.IntType(32), [
                char, char, char, intp, intp, intp,  # kind, transa, transb, m, n, k
                ptr, ptr, intp, ptr, intp, ptr, ptr, intp])  # alpha, a, lda, b, ldb, beta, c, ldc
            fn = _cgutils.get_or_insert_function(builder.module, fnty, "numba_xxgemm")
            structs = [context.make_array(t)(context, builder, v)
                       for t, v in zip(arrays, (args[1], args[2], args[4]))]
            shapes = [_cgutils.unpack_tuple(builder, s.shape, 2) for s in structs]

            def operand(t, shape, data):
                # BLAS is column-major: a C-ordered matrix is its transpose, so C = A @ B is
                # computed as C.T = B.T @ A.T, and an F-ordered operand (a .T view) is 't'
                return (_llvm_ir.Constant(char, ord("n" if t.layout == "C" else "t")),
                        shape[1] if t.layout == "C" else shape[0], builder.bitcast(data, ptr))

            trans_b, ld_b, data_b = operand(b, shapes[1], structs[1].data)
            trans_a, ld_a, data_a = operand(a, shapes[0], structs[0].data)
            scalars = [_cgutils.alloca_once_value(builder, context.cast(builder, v, t, c.dtype))
                       for v, t in ((args[0], alpha), (args[3], beta))]
            kind = _llvm_ir.Constant(char, ord("s" if c.dtype == _nb_types.float32 else "d"))
            status = builder.call(fn, (
                kind, trans_b, trans_a, shapes[1][1], shapes[0][0], shapes[0][1],
                builder.bitcast(scalars[0], ptr), data_b, ld_b, data_a, ld_a,
                builder.bitcast(scalars[1], ptr), builder.bitcast(structs[2].data, ptr),
                shapes[2][1]))
            with builder.if_then(_cgutils.is_not_null(builder, status), likely=False):
                context.call_conv.return_user_exc(builder, RuntimeError,
                                                  ("graphgen: BLAS gemm failed",))
            return context.get_dummy_value()
        return _nb_types.none(alpha, a, b, beta, c), codegen


@numba.njit(**_VEC)
def _gemm(alpha, a, b, beta, c):
    # c = alpha * (a @ b) + beta * c, one BLAS call: a parameter update folded into the
    # product that makes its gradient
    if a.shape[1] != b.shape[0] or c.shape[0] != a.shape[0] or c.shape[1] != b.shape[1]:
        raise ValueError("graphgen: shapes of a matrix product")
    _xxgemm(alpha, a, b, beta, c)


_SCRATCH = 4096  # elements: the largest operand _dot_t copies (32 KB in float64)
_DOT_T_SMALL = 524288  # multiply-adds up to which OpenBLAS's a @ b.T is the slow path


@numba.njit(**_VEC)
def _dot_t(a, b, out, scratch):
    # out = a @ b.T. OpenBLAS's small-matrix kernels do not cover this transpose: below
    # ~5e5 multiply-adds it takes up to 2x a plain product (0.3 us instead of 0.1 for
    # 32x8 @ 8x16), so a small b is first copied, transposed, into scratch
    if b.size <= scratch.size and a.shape[0] * b.size <= _DOT_T_SMALL:
        bt = scratch[:b.size].reshape((b.shape[1], b.shape[0]))
        for i in range(b.shape[0]):
            for j in range(b.shape[1]):
                bt[j, i] = b[i, j]
        _gemm(1.0, a, bt, 0.0, out)
    else:
        _gemm(1.0, a, b.T, 0.0, out)
# --- emitted up to here -------------------------------------------------------------------

FUNCTIONS = ("_gemm", "_dot_t")
IMPORTS = (
    "from llvmlite import ir as _llvm_ir",
    "from numba.core import cgutils as _cgutils",
    "from numba.core import types as _nb_types",
    "from numba.extending import intrinsic as _intrinsic",
)


def source(used: set[str]) -> tuple[str, str] | None:
    """(constants, functions) as text for the functions of this module in `used` and what
    they need; None if there are none."""
    return excerpt.source(__file__, set(used) & set(FUNCTIONS))

