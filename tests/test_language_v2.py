"""Spec language v2 (issue 10): each new construct against central finite differences and,
when PyTorch is installed, against torch.autograd in float64 (relative error <= 1e-10 on
the value and on every gradient). Shapes are random; edge cases (ties in max, broadcast
operands, zeros in prod) are built into the arguments on purpose."""
from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from graphgen import ops
from graphgen.gradcheck import check_gradients

try:
    import torch
except ImportError:  # the finite-difference half of every test still runs
    torch = None

TORCH_RTOL = 1e-10


def _dims(seed: int) -> dict[str, int]:
    rng = np.random.default_rng(1000 + seed)
    return {d: int(v) for d, v in zip("mkpq", rng.integers(2, 6, size=4))}


def _arguments(module, dims, seed, domains=None, ints=None):
    rng = np.random.default_rng(seed)
    args = {}
    for name, (shape, kind, label_range) in module.INPUTS.items():
        sh = tuple(s if isinstance(s, int) else dims[s] for s in shape)
        if kind == "int":
            high = 3 if label_range is None else \
                label_range if isinstance(label_range, int) else dims[label_range]
            args[name] = rng.integers(0, high, size=sh)
        else:
            args[name] = rng.normal(size=sh)
    for name, (shape, _, _) in module.PARAMS.items():
        sh = tuple(s if isinstance(s, int) else dims[s] for s in shape)
        lo, hi = (domains or {}).get(name, (-2.0, 2.0))
        args[name] = rng.uniform(lo, hi, size=sh)
    for name, fn in (ints or {}).items():
        args[name] = fn(rng, args)
    return args


def verify(module, reference, dims, seed=0, domains=None, edit=None, fd=True):
    """Finite differences, then PyTorch (if present): `reference(t)` takes a dict of float64
    tensors (params with requires_grad) and returns the objective."""
    args = _arguments(module, dims, seed, domains)
    if edit is not None:
        edit(args, np.random.default_rng(seed + 7))
    if fd:
        results = check_gradients(module, args, rtol=1e-6, seed=seed)
        bad = [r for r in results if not r.ok]
        assert not bad, [(r.name, r.max_rel_error, r.worst_index, r.analytic, r.numeric)
                         for r in bad]
    J, grads = module.value_and_grad(**args)
    assert set(grads) == set(module.PARAMS)
    if torch is None:
        return J, grads
    t = {k: torch.tensor(v, dtype=torch.float64 if v.dtype.kind == "f" else torch.int64,
                         requires_grad=k in module.PARAMS) for k, v in args.items()}
    Jt = reference(t)
    Jt.backward()
    assert abs(J - Jt.item()) <= TORCH_RTOL * max(1.0, abs(Jt.item())), (J, Jt.item())
    for name, g in grads.items():
        want = t[name].grad
        want = np.zeros_like(g) if want is None else want.numpy()
        scale = max(1.0, float(np.max(np.abs(want))))
        err = float(np.max(np.abs(g - want)))
        assert err <= TORCH_RTOL * scale, (name, err, g, want)
    return J, grads


# ----------------------------------------------------------------------------- elementwise
ELEMENTWISE_V2 = """
input c[m, k]
param a[m, k]
param b[m, k]
param e[m, k]
param lo[m, k]
param hi[k]
param s[m, k]
param w[m, k]
J1 = sum(c * erf(a)) + sum(c * log1p(e)) + sum(c * expm1(b)) + sum(c * sinh(a) * cosh(b))
J2 = sum(c * tan(a)) + sum(c * arctan(b)) + sum(c * square(a)) + sum(c * sign(s) * b)
J3 = sum(c * clip(w, lo, hi))
J = J1 + J2 + J3
minimize J
"""


def _elementwise_reference(t):
    c, a, b, e = t["c"], t["a"], t["b"], t["e"]
    return ((c * torch.erf(a)).sum() + (c * torch.log1p(e)).sum() + (c * torch.expm1(b)).sum()
            + (c * torch.sinh(a) * torch.cosh(b)).sum() + (c * torch.tan(a)).sum()
            + (c * torch.arctan(b)).sum() + (c * torch.square(a)).sum()
            + (c * torch.sign(t["s"]) * b).sum()
            + (c * torch.clamp(t["w"], t["lo"], t["hi"])).sum())


ELEMENTWISE_DOMAINS = {"a": (-1.2, 1.2), "e": (-0.5, 3.0), "w": (-3, 3), "lo": (-2, 0.5),
                      "hi": (-0.5, 2)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_new_elementwise_functions(build, seed):
    module = build(ELEMENTWISE_V2, "elementwise_v2")
    verify(module, _elementwise_reference, _dims(seed), seed, ELEMENTWISE_DOMAINS)


def test_clip_passes_the_gradient_at_the_bounds_and_reverses_bounds_as_torch(build):
    """x exactly at lo or hi: the gradient goes to x (torch.clamp); lo > hi: all to hi."""
    module = build(ELEMENTWISE_V2, "elementwise_v2")

    def edit(args, rng):
        args["w"][0, 0] = args["lo"][0, 0]
        args["w"][1, 0] = args["hi"][0]
        args["lo"][1, 1], args["hi"][1] = 1.5, -1.0  # reversed bounds in column 1
    _, grads = verify(module, _elementwise_reference, {"m": 3, "k": 3}, 5,
                      dict(ELEMENTWISE_DOMAINS, hi=(0.6, 2)), edit, fd=False)
    c = _arguments(module, {"m": 3, "k": 3}, 5)["c"]
    assert grads["w"][0, 0] == c[0, 0] and grads["w"][1, 0] == c[1, 0]
    assert grads["lo"][0, 0] == 0.0 and grads["lo"][1, 1] == 0.0


def test_stop_gradient_keeps_the_value_and_blocks_the_gradient(build):
    """Finite differences cannot see a stop_gradient; the reference is a.detach()."""
    module = build("param a[k]\nparam b[k]\nJ = sum(stop_gradient(a * b) * a)\nminimize J\n",
                   "stopgrad")
    a, b = np.array([1.0, -2.0, 3.0]), np.array([0.5, 2.0, -1.0])
    J, grads = module.value_and_grad(a=a, b=b)
    assert J == pytest.approx(float(np.sum(a * b * a)))
    np.testing.assert_array_equal(grads["a"], a * b)
    np.testing.assert_array_equal(grads["b"], 0.0)


def test_second_derivatives_never_contain_dirac_delta():
    """Kinks are indicator functions whose derivative is 0, so even a derivative of a
    derivative (sympy's d/dx Heaviside = DiracDelta) stays printable."""
    syms = sp.symbols("x y z", real=True)
    for name, op in ops.ELEMENTWISE.items():
        args = syms[: op.arity]
        for a in args:
            for b in args:
                second = sp.diff(op.build(*args), a, b)
                assert not second.has(sp.DiracDelta), (name, second)


# ----------------------------------------------------------------------------- comparisons
COMPARE = """
input x[m, k]
input ids[k]: int
param a[m, k]
param b[k]
param s
mask = (a < b) * (x >= 0) * (ids != 1)
J1 = sum(x * where(mask, a * a, b)) + sum(where(x > 0.1, s * a, 0.0)) + sum((a <= 0.5) * a * x)
J2 = sum((b > s) * b) + sum(where(ids == 2, b * s, -b)) + sum(mask)
J = J1 + J2
minimize J
"""


def _compare_reference(t):
    x, a, b, s, ids = t["x"], t["a"], t["b"], t["s"], t["ids"]
    mask = (a < b) & (x >= 0) & (ids != 1)
    zero = torch.zeros((), dtype=torch.float64)
    return ((x * torch.where(mask, a * a, b)).sum() + torch.where(x > 0.1, s * a, zero).sum()
            + ((a <= 0.5) * a * x).sum() + ((b > s) * b).sum()
            + torch.where(ids == 2, b * s, -b).sum() + mask.sum())


@pytest.mark.parametrize("seed", [0, 1])
def test_comparisons_make_masks_and_where_broadcasts(build, seed):
    verify(build(COMPARE, "compare"), _compare_reference, _dims(seed), seed)


def test_comparison_folds_numbers_and_has_no_gradient():
    assert ops.COMPARISONS["<"](sp.Integer(1), sp.Integer(2)) == 1
    assert ops.COMPARISONS["=="](sp.Integer(1), sp.Integer(2)) == 0
    a, b = sp.symbols("a b", real=True)
    assert all(sp.diff(cls(a, b), a) == 0 for cls in ops.COMPARISONS.values())


# ----------------------------------------------------------------------------- reductions
REDUCTIONS_V2 = """
input c[m, k]
input cm[m]
input y[m]: int
input P[m, k]
param a[m, k]
param b[m, k, p]
param d[m, k]
param e[m, k]
param f[m, k]
J1 = sum(c * max(a, axis=1, keepdims=True)) + sum(min(b, axis=(0, 2))) + max(a)
J2 = sum(prod(d, axis=0)) + sum(var(b, axis=(0, 2), ddof=1)) + std(e)
J3 = sum(std(e, axis=-1, keepdims=True)) + sum(cm * mean(b, axis=(1, 2)))
J4 = sum(log_softmax(a) * c) + mean(cross_entropy(d, P)) + sum(one_hot(y, k) * a) / m
J5 = sum(sum(b, axis=(0, -1), keepdims=True)) * min(e) + prod(f) + sum(logsumexp(b, axis=(0, 2)))
J6 = sum(cm * prod(f, axis=1)) + sum(var(f, axis=0, keepdims=True)) + sum(min(f, axis=0)) / k
J = J1 + J2 + J3 + J4 + J5 + J6
minimize J
"""


def _reductions_reference(t):
    F = torch.nn.functional
    c, a, b, d, e, f, cm = t["c"], t["a"], t["b"], t["d"], t["e"], t["f"], t["cm"]
    m, k = a.shape
    J1 = (c * torch.amax(a, dim=1, keepdim=True)).sum() + torch.amin(b, dim=(0, 2)).sum() \
        + torch.amax(a)
    J2 = torch.prod(d, dim=0).sum() + torch.var(b, dim=(0, 2), correction=1).sum() \
        + torch.std(e, correction=0)
    J3 = torch.std(e, dim=-1, keepdim=True, correction=0).sum() + (cm * b.mean(dim=(1, 2))).sum()
    J4 = (F.log_softmax(a, dim=-1) * c).sum() + F.cross_entropy(d, t["P"]) \
        + (F.one_hot(t["y"], k) * a).sum() / m
    J5 = b.sum(dim=(0, 2), keepdim=True).sum() * torch.amin(e) + torch.prod(f) \
        + torch.logsumexp(b, dim=(0, 2)).sum()
    J6 = (cm * torch.prod(f, dim=1)).sum() + torch.var(f, dim=0, keepdim=True, correction=0).sum() \
        + torch.amin(f, dim=0).sum() / k
    return J1 + J2 + J3 + J4 + J5 + J6


@pytest.mark.parametrize("seed", [0, 1])
def test_reductions_max_min_prod_var_std_axis_tuples(build, seed):
    verify(build(REDUCTIONS_V2, "reductions_v2"), _reductions_reference, _dims(seed), seed,
           {"f": (0.5, 1.5)})


def test_zeros_in_prod_and_ties_in_max_split_as_torch(build):
    """One zero in a column, two zeros in another; max/min ties of two and three. Finite
    differences are one-sided at a tie, so the reference here is torch alone (the smooth
    prod still gets finite differences)."""
    module = build(REDUCTIONS_V2, "reductions_v2")
    dims = {"m": 4, "k": 3, "p": 2, "q": 2}

    def zeros(args, rng):
        args["d"][1, 0] = 0.0
        args["d"][0, 1] = args["d"][2, 1] = 0.0
        args["f"][2, 2] = 0.0
    verify(module, _reductions_reference, dims, 3, {"f": (0.5, 1.5)}, zeros)

    def ties(args, rng):
        zeros(args, rng)
        args["a"][0, :] = 1.25  # three-way tie for the row max and the global max
        args["a"][1, 0] = args["a"][1, 2] = 3.0
        args["b"][:, 0, 1] = args["b"][0, 0, 0] = -4.0  # min over (0, 2) of column 0: 5 ties
        args["e"][3, 1] = args["e"][2, 2] = -5.0
        args["f"][0, 1] = args["f"][3, 1] = 0.25
    if torch is None:
        pytest.skip("ties are checked against torch.amax/amin")
    verify(module, _reductions_reference, dims, 4, {"f": (0.5, 1.5)}, ties, fd=False)


def test_max_min_prod_by_hand(build):
    """Hand derivations, no torch needed: ties share the gradient; prod with zeros."""
    module = build("param a[k]\nparam b[k]\nparam d[k]\nJ = max(a) + 2 * min(b) + prod(d)\n"
                   "minimize J\n", "by_hand")
    a = np.array([1.0, 3.0, 3.0, 3.0])
    b = np.array([-2.0, 5.0, -2.0, 0.0])
    for d, want in [([2.0, 3.0, 4.0, 5.0], [60.0, 40.0, 30.0, 24.0]),
                    ([2.0, 0.0, 4.0, 5.0], [0.0, 40.0, 0.0, 0.0]),
                    ([2.0, 0.0, 0.0, 5.0], [0.0, 0.0, 0.0, 0.0])]:
        J, grads = module.value_and_grad(a=a, b=b, d=np.array(d))
        assert J == 3.0 - 4.0 + float(np.prod(d))
        np.testing.assert_array_equal(grads["a"], [0.0, 1 / 3, 1 / 3, 1 / 3])
        np.testing.assert_array_equal(grads["b"], [1.0, 0.0, 1.0, 0.0])
        np.testing.assert_array_equal(grads["d"], want)


# ----------------------------------------------------------------------------- errors
ERR_BASE = "input x[n, d]\ninput ids[n]: int\nparam E[v, d]\nparam A[d, d]\n"  # lines 1-4

ERRORS = [
    # (id, line 5, message fragment, column, hint fragment)
    ("gather", "J = sum(E[ids])", "indexing by an integer array (ids: a gather) is not "
     "supported yet", 11, "one_hot(ids, V) @ E"),
    ("slice of a named dim", "J = sum(x[1:, :])", "has a size that depends on 'n'", 11,
     "start and stop of the same sign"),
    ("slice step", "J = sum(x[:, 0:3:0])", "a slice step must be positive", 14, None),
    ("reversal", "J = sum(x[:, ::-1])", "negative slice step (reversal) is not supported yet",
     14, None),
    ("index literal", "J = sum(x[:, 1.5])", "an index must be an integer literal", 14,
     "x[:, 0:3]"),
    ("too many indices", "J = sum(x[0, 1, 2])", "too many indices (3)", 9, None),
    ("index on a literal dim", "J = sum(one_hot(ids, 3)[:, 3])",
     "index 3 is out of range for an axis of size 3", 28, "-3..2"),
    ("empty slice", "J = sum(one_hot(ids, 3)[:, 2:1])", "the slice selects nothing", 28, None),
    ("inverse", "J = sum(inv(A))", "inv() (linear algebra) is not supported yet", 9, "issue 10"),
    ("conv", "J = sum(conv2d(x, A))", "conv2d() (convolution and pooling) is not supported yet",
     9, "issue 10"),
    ("list", "J = sum(stack([x, x], axis=0))", "a list [a, b, ...] is not supported yet", 15,
     "stack, concat"),
    ("batched matmul", "J = sum(einsum(\"ij,kl->ijl\", x, A) @ A)",
     "'@' on a 3-D operand (batched matmul) is not supported yet", 9, "einsum"),
    ("ellipsis", "J = einsum(\"...i->\", x)", "'...' (ellipsis)", 12, "letter"),
    ("chained comparison", "J = sum((x < 1 < 2) * x)", "comparisons cannot be chained", 16,
     "(a < b) * (b < c)"),
    ("operator we lack", "J = sum(x % 2)", "unexpected character '%'", 11, "comparisons"),
    ("axis twice", "J = sum(x, axis=(1, -1))", "axis -1 is given twice", 21, None),
    ("axis out of range", "J = sum(max(x, axis=(0, 2)))", "axis 2 is out of range", 25,
     "valid axes are -2..1"),
    ("tuple as value", "J = sum(x * (1, 2))", "a tuple is only allowed as axis=", 13, None),
    ("max of two arrays", "J = sum(max(x, A))", "takes 1 positional argument, got 2", 9,
     "maximum(a, b)"),
    ("ddof", "J = var(sum(x, axis=0), ddof=-1)", "ddof= must be a non-negative integer", 30,
     "sample variance"),
    ("one_hot classes", "J = sum(one_hot(ids, 2.5))", "number of classes of one_hot()", 22,
     "one_hot(y, 10)"),
    ("one_hot of floats", "J = sum(one_hot(x, 3))", "labels of one_hot() must be an integer", 17,
     "input x[...]: int"),
    ("soft labels shape", "J = sum(cross_entropy(x @ A, A))", "target probabilities of shape",
     30, "soft labels"),
]


@pytest.mark.parametrize("case", ERRORS, ids=[c[0] for c in ERRORS])
def test_errors_name_file_line_column_and_a_right_hint(case):
    from graphgen.errors import SpecError
    from graphgen.pipeline import compile_source
    _, line, message, col, hint = case
    with pytest.raises(SpecError) as info:
        compile_source(ERR_BASE + line + "\nminimize J\n", "v2.gg")
    err = info.value
    assert message in err.message, err.message
    assert (err.span.file, err.span.line, err.span.col) == ("v2.gg", 5, col), str(err)
    if hint is not None:
        assert hint in (err.hint or ""), err.hint
    assert str(err).startswith(f"v2.gg:5:{col}: error: ")


@pytest.mark.parametrize("line", [
    "J = sum((x < 1) * x)",
    "J = sum(max(x, axis=1))",
    "J = sum(x, axis=(0, 1))",
    "J = sum(sum(x, axis=(0, -1), keepdims=True)) / n + sum(where(ids == 2, 1.0, 0.0))",
])
def test_constructs_that_had_misleading_hints_now_compile(line):
    from graphgen.pipeline import compile_source
    assert "def value_and_grad" in compile_source(ERR_BASE + line + "\nminimize J\n",
                                                  "v2.gg").source


# ----------------------------------------------------------------------------- slicing
SLICING = """
input x[n, 5]
input c[n, 3]
param W[d, 4]
param b[n, d]
param T[4, k, 3]
z = x[:, 1:5] @ W.T
J1 = sum(z[:, 0:2] * b[:, -2:]) + sum(b[1] * x[-1, 0]) + sum(b[:, -1] * b[:, 0] * x[:, 4])
J2 = sum(T[1:, :, ::2] * T[:3, :, 0:2]) + sum(T[-1] ** 2) + sum(c * T[2, 0:1, :])
J3 = sum(b[0:2, 1:4:2] ** 2) + sum(T[:, -1, -3:-1])
J = J1 + J2 + J3
minimize J
"""


def _slicing_reference(t):
    x, c, W, b, T = t["x"], t["c"], t["W"], t["b"], t["T"]
    z = x[:, 1:5] @ W.T
    J1 = (z[:, 0:2] * b[:, -2:]).sum() + (b[1] * x[-1, 0]).sum() \
        + (b[:, -1] * b[:, 0] * x[:, 4]).sum()
    J2 = (T[1:, :, ::2] * T[:3, :, 0:2]).sum() + (T[-1] ** 2).sum() + (c * T[2, 0:1, :]).sum()
    J3 = (b[0:2, 1:4:2] ** 2).sum() + T[:, -1, -3:-1].sum()
    return J1 + J2 + J3


@pytest.mark.parametrize("seed", [0, 1])
def test_basic_slicing_and_indexing(build, seed):
    dims = _dims(seed)
    dims["n"], dims["d"] = dims["m"], dims["k"] + 2
    verify(build(SLICING, "slicing"), _slicing_reference, dims, seed)


def test_a_named_dim_too_small_for_a_slice_is_refused_at_call_time(build):
    module = build(SLICING, "slicing")
    args = _arguments(module, {"n": 3, "d": 1, "k": 2}, 0)
    with pytest.raises(ValueError, match="dimension d must be at least 4"):
        module.value_and_grad(**args)
