"""sgd_step is exactly `p - lr * dJ/dp` for every parameter, on graphs whose parameters read
each other (bilinear forms, scalar pairs, shared factors), compiled through Numba.

The kernel updates parameters in place, one after another, so any gradient that is still
to be computed from an updated parameter would be silently wrong. The reference is
`value_and_grad` of the same module (itself checked against finite differences and NumPy
elsewhere) and, for the two regression cases, the gradient written out by hand.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

LR = 0.125


def _step_matches_gradient(module, args):
    J, grads = module.value_and_grad(**args)
    params = {name: np.array(args[name], copy=True) for name in grads}
    before = {name: p.copy() for name, p in params.items()}
    J_step = module.sgd_step(**{**args, **params}, lr=LR)
    assert J_step == pytest.approx(J, rel=1e-12)
    for name, g in grads.items():
        np.testing.assert_allclose(params[name], before[name] - LR * g, rtol=1e-12,
                                   atol=1e-14, err_msg=f"parameter {name}")


def test_bilinear_pair_updates_from_the_old_values(build):
    """J = sum(a * c): dJ/da = c and dJ/dc = a, both of the values before the step."""
    m = build("param a[n]\nparam c[n]\nJ = sum(a * c)\nminimize J\n", "bilinear")
    rng = np.random.default_rng(0)
    a, c = rng.normal(size=5), rng.normal(size=5)
    a0, c0 = a.copy(), c.copy()
    m.sgd_step(a=a, c=c, lr=LR)
    np.testing.assert_allclose(a, a0 - LR * c0, rtol=1e-15)
    np.testing.assert_allclose(c, c0 - LR * a0, rtol=1e-15)


def test_rosenbrock_on_two_scalar_params(build):
    """The 2-D Rosenbrock function (its dJ/dc used to be read from an undefined tape)."""
    m = build("param a\nparam c\nJ = (1 - a) ** 2 + 100 * (c - a ** 2) ** 2\nminimize J\n",
              "rosenbrock")
    a, c = np.array(0.5), np.array(1.5)
    J = m.sgd_step(a=a, c=c, lr=1e-3)
    assert J == pytest.approx(0.25 + 100 * 1.25 ** 2, rel=1e-15)
    da = -2 * (1 - 0.5) - 400 * 0.5 * (1.5 - 0.25)
    dc = 200 * (1.5 - 0.25)
    assert float(a) == pytest.approx(0.5 - 1e-3 * da, rel=1e-15)
    assert float(c) == pytest.approx(1.5 - 1e-3 * dc, rel=1e-15)


# Terms of an objective over params a[n], c[n], W[n, n], s, t and an input x[n]; each reads
# two or more parameters, so every gradient depends on another parameter's value.
TERMS = [
    "sum({a} * {c})",
    "{s} * {t}",
    "(1 - {s}) ** 2 + 100 * ({t} - {s} ** 2) ** 2",
    "sum(({W} @ {a}) * {c})",
    "sum(({W} @ x) * {a}) * {s}",
    "sum(tanh({a} * {s}) * {c})",
    "sum(({a} - {c}) ** 2) * {t} * {t}",
    "sum(exp({a} * {c}) * x)",
    "{s} * sum({W} * {W}) * {t}",
    "sum(({W}.T @ {a}) * ({W} @ {c}))",
    "logsumexp({a} * {c} + x * {s})",
    "sum(sigmoid({W} @ ({a} * {s})))",
]
VECTORS, SCALARS = ("a", "c"), ("s", "t")


@st.composite
def coupled_graphs(draw):
    terms = []
    for template in draw(st.lists(st.sampled_from(TERMS), min_size=1, max_size=4)):
        a, c = draw(st.permutations(VECTORS))
        s, t = draw(st.permutations(SCALARS))
        weight = draw(st.sampled_from(["", "0.5 * ", "s * ", "sum(a) * "]))
        terms.append(weight + "(" + template.format(a=a, c=c, s=s, t=t, W="W") + ")")
    lines = ["input x[n]", "param a[n]", "param c[n]", "param W[n, n]", "param s",
             "param t", "J = " + " + ".join(terms), "minimize J"]
    return "\n".join(lines) + "\n"


@pytest.mark.slow
@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(coupled_graphs(), st.sampled_from([np.float64, np.float32]))
def test_sgd_step_is_p_minus_lr_grad_on_coupled_graphs(build, text, dtype):
    module = build(text, "coupled")
    rng = np.random.default_rng(len(text))
    args = {"x": rng.uniform(-1, 1, 4), "a": rng.uniform(-1, 1, 4),
            "c": rng.uniform(-1, 1, 4), "W": rng.uniform(-0.5, 0.5, (4, 4)),
            "s": np.array(rng.uniform(-1, 1)), "t": np.array(rng.uniform(-1, 1))}
    if dtype is np.float32:
        args = {k: v.astype(np.float32) for k, v in args.items()}
        J, grads = module.value_and_grad(**args)
        params = {name: np.array(args[name], copy=True) for name in grads}
        module.sgd_step(**{**args, **params}, lr=LR)
        for name, g in grads.items():  # float32: the step may round differently by an ulp
            np.testing.assert_allclose(params[name], args[name] - np.float32(LR) * g,
                                       rtol=1e-5, atol=1e-6, err_msg=f"parameter {name}")
        return
    _step_matches_gradient(module, args)
