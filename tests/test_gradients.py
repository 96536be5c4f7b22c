"""Every built-in and operator: gradients against central finite differences (float64,
relative error <= 1e-6), at randomized shapes, including broadcasting and axis/keepdims.

Specs are generated from the op table (`graphgen.ops`), so a new built-in is tested here
without a new test. Each case gets its own parameter; the objective sums all cases, so one
compiled module per group checks many ops while failures still name the op's parameter.
"""
import numpy as np
import pytest

from graphgen import ops
from graphgen.gradcheck import check_gradients

RTOL = 1e-6
SHAPE_SEEDS = [0, 1]


def _dims(seed):
    rng = np.random.default_rng(100 + seed)
    return {d: int(v) for d, v in zip("mkpr", rng.integers(2, 6, size=4))}


def _run(module, domains, seed, ints=None):
    """Random arguments (params in their test domains), then a per-param gradient check."""
    dims = _dims(seed)
    rng = np.random.default_rng(seed)

    def shape(s):
        return tuple(x if isinstance(x, int) else dims[x] for x in s)

    args = {}
    for name, (s, kind, label_range) in module.INPUTS.items():
        if kind == "int":
            high = label_range if isinstance(label_range, int) else dims[label_range]
            args[name] = rng.integers(0, high, size=shape(s))
        else:
            args[name] = rng.normal(size=shape(s))
    for name, (s, _, _) in module.PARAMS.items():
        lo, hi = domains.get(name, (-2.0, 2.0))
        v = rng.uniform(lo, hi, size=shape(s))
        # not within the stencil's reach of 0, the kink of abs, relu and sign
        args[name] = np.where(np.abs(v) < 0.01, v + 0.02, v)
    results = check_gradients(module, args, rtol=RTOL, seed=seed)
    bad = [r for r in results if not r.ok]
    assert not bad, "\n".join(
        f"d/d{r.name}: rel {r.max_rel_error:.2e} at {r.worst_index}: analytic {r.analytic!r} "
        f"numeric {r.numeric!r}" for r in bad)
    assert {r.name for r in results} == set(module.PARAMS)


ELEMENTWISE_PARTS = 3  # specs the op table is split into: one giant kernel took LLVM 85 s


def elementwise_spec(part: int = 0, parts: int = 1):
    lines = ["input c[m, k]"]
    terms, domains = [], {}
    exact = [(name, op) for name, op in ops.ELEMENTWISE.items() if op.gradient == "exact"]
    for name, op in exact[part::parts]:  # (stop_gradient is tested in test_language_v2)
        params = [f"p_{name}_{j}" for j in range(op.arity)]
        for p in params:
            lines.append(f"param {p}[m, k]")
            domains[p] = op.domain
        terms.append(f"sum(c * {name}({', '.join(params)}))")
    lines.append("J = " + " + ".join(terms))
    lines.append("minimize J")
    return "\n".join(lines) + "\n", domains


@pytest.mark.parametrize("part", range(ELEMENTWISE_PARTS))
@pytest.mark.parametrize("seed", SHAPE_SEEDS)
def test_every_elementwise_builtin(build, seed, part):
    text, domains = elementwise_spec(part, ELEMENTWISE_PARTS)
    _run(build(text, f"elementwise{part}"), domains, seed)


OPERATORS = """
input c[m, k]
input cm[m]
param a_add[m, k]
param b_add[k]
param a_sub[m, k]
param b_sub[m, 1]
param a_mul[m, k]
param b_mul
param a_div[m, k]
param b_div[k]
param a_pow[m, k]
param b_pow[m, k]
param a_sq[m, k]
param a_neg[m, k]
param a_t[k, m]
param v_lit[k]
J1 = sum(c * (a_add + b_add)) + sum(c * (a_sub - b_sub)) + sum(c * (a_mul * b_mul))
J2 = sum(c * (a_div / b_div)) + sum(c * a_pow ** b_pow) + sum(c * (3 * a_sq ** 2 - 1 / a_sq))
J3 = sum(c * -a_neg) + sum(c * a_t.T) + sum(cm) * sum(2 ** v_lit)
J = J1 + J2 + J3
minimize J
"""
OPERATOR_DOMAINS = {"b_div": (0.5, 2.0), "a_pow": (0.5, 2.0), "a_sq": (0.5, 2.0)}


@pytest.mark.parametrize("seed", SHAPE_SEEDS)
def test_arithmetic_operators_with_broadcasting(build, seed):
    _run(build(OPERATORS, "operators"), OPERATOR_DOMAINS, seed)


MATMUL = """
input cmm[m, p]
input cmv[m]
input cvm[p]
param A[m, k]
param B[k, p]
param M[m, k]
param v[k]
param u[m]
param N[m, p]
param s1[k]
param s2[k]
param T1[k, m]
param T2[p, k]
J1 = sum(cmm * (A @ B)) + sum(cmv * (M @ v)) + sum(cvm * (u @ N))
J = J1 + s1 @ s2 + sum(cmm * (T1.T @ T2.T))
minimize J
"""


@pytest.mark.parametrize("seed", SHAPE_SEEDS)
def test_matmul_variants_and_transposes(build, seed):
    _run(build(MATMUL, "matmul"), {}, seed)


REDUCTIONS = """
input c0[k]
input c1[m]
input c2[m, 1]
input c3[1, k]
param a[m, k]
param b[m, k]
param c[m, k]
param d[m, k]
param e[m, k]
param f[m, k]
J1 = sum(c0 * sum(a, axis=0)) + sum(c1 * mean(b, axis=1)) + sum(c2 * sum(c, axis=-1, keepdims=True))
J2 = sum(c3 * mean(d, axis=0, keepdims=True)) + mean(e) * sum(e ** 2) + sum(f * f, axis=1) @ c1
J = J1 + J2
minimize J
"""


@pytest.mark.parametrize("seed", SHAPE_SEEDS)
def test_sum_and_mean_with_axis_and_keepdims(build, seed):
    _run(build(REDUCTIONS, "reductions"), {}, seed)


STABLE = """
input c1[m]
input c0[k]
input cc[m, k]
input y[m]: int
param a[m, k]
param b[m, k]
param c[m, k]
param d[m, k]
param e[m, k]
param f[m, k]
J1 = sum(c1 * logsumexp(a, axis=1)) + sum(c0 * logsumexp(b, axis=0)) + logsumexp(c)
J2 = sum(cc * softmax(d)) + sum(cc * softmax(e, axis=0)) + mean(cross_entropy(f, y))
J = J1 + J2
minimize J
"""


@pytest.mark.parametrize("seed", SHAPE_SEEDS)
def test_logsumexp_softmax_cross_entropy(build, seed):
    _run(build(STABLE, "stable"), {}, seed)


EINSUM = """
input c2[m, p]
input c1[k]
input c3[m, k]
input x3[m, k, p]
param A[m, k]
param B[k, p]
param C[m, k]
param D[m, k]
param u[m]
param v[k]
param E[m, p]
param F[m, k]
J1 = sum(c2 * einsum("ij,jk->ik", A, B)) + sum(c1 * einsum("ij->j", C)) + einsum("ij,ij->", D, c3)
J2 = sum(c3 * einsum("i,j->ij", u, v)) + sum(c1 * einsum("ijk,ik->j", x3, E))
J3 = sum(einsum("ji", F) * einsum("ji", F))
J = J1 + J2 + J3
minimize J
"""


@pytest.mark.parametrize("seed", SHAPE_SEEDS)
def test_einsum(build, seed):
    _run(build(EINSUM, "einsum"), {}, seed)


FN = """
fn swish(t) = t * sigmoid(t)
fn bump(a, b) = exp(-(a - b) ** 2) + log(1 + a ** 2)
input c[m, k]
param w[m, k]
param a[m, k]
param b[k]
J = sum(c * swish(w)) + sum(c * bump(a, b))
minimize J
"""


@pytest.mark.parametrize("seed", SHAPE_SEEDS)
def test_user_defined_fn_gets_its_derivative_from_sympy(build, seed):
    _run(build(FN, "fn"), {}, seed)
