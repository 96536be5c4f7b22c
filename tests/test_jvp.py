"""Forward mode (`m.jvp(tangents, /, **args)`, issue 11): the directional derivative against
reverse mode (Σ_p <dJ/dp, t_p>, a different derivation: ≤ 1e-12), central differences, and
PyTorch's `torch.func.jvp` on the seed network; on every example and on random graphs."""
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from test_fuzz import graphs  # the random-graph generator

import graphgen
from graphgen.build import load_python
from graphgen.pipeline import compile_source

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.gg"))

try:
    import torch
except ImportError:  # an optional reference
    torch = None


def _arguments(module, seed, dims=None):
    rng = np.random.default_rng(seed)
    dims = dims or {d: 3 + k % 3 for k, d in enumerate(module.DIMS)}
    args = {}
    for name, (shape, kind, labels) in module.INPUTS.items():
        sh = tuple(dims.get(s, s) if isinstance(s, str) else s for s in shape)
        high = dims.get(labels, labels) if isinstance(labels, str) else (labels or 2)
        args[name] = rng.integers(0, high, size=sh) if kind == "int" else rng.normal(size=sh)
    for name, (shape, _, _) in module.PARAMS.items():
        args[name] = rng.normal(size=tuple(dims.get(s, s) if isinstance(s, str) else s
                                           for s in shape))
    tangents = {p: rng.normal(size=np.shape(args[p])) for p in module.PARAMS}
    return args, tangents


def _agrees_with_reverse_mode_and_differences(module, args, tangents):
    J, dJ = module.jvp(tangents, **args)
    J_rev, grads = module.value_and_grad(**args)
    along = sum(float(np.sum(grads[p] * t)) for p, t in tangents.items())
    assert J == pytest.approx(J_rev, rel=1e-13, abs=1e-13)
    assert dJ == pytest.approx(along, rel=1e-12, abs=1e-12)
    eps = 1e-5

    def at(k):
        moved = {p: args[p] + k * eps * t for p, t in tangents.items()}
        return module.value_and_grad(**{**args, **moved})[0]

    numeric = (8 * (at(1) - at(-1)) - (at(2) - at(-2))) / (12 * eps)
    assert dJ == pytest.approx(numeric, rel=1e-6, abs=1e-7)
    return dJ


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.stem)
def test_examples_forward_equals_reverse_and_differences(spec, gen_dir):
    module = graphgen.load(spec, out_dir=gen_dir)  # the modules test_examples.py checks
    args, tangents = _arguments(module, seed=len(spec.stem))
    _agrees_with_reverse_mode_and_differences(module, args, tangents)
    # a param left out has tangent zero
    first = next(iter(module.PARAMS))
    _, full = module.jvp(tangents, **args)
    _, part = module.jvp({first: tangents[first]}, **args)
    _, rest = module.jvp({p: t for p, t in tangents.items() if p != first}, **args)
    assert part + rest == pytest.approx(full, rel=1e-12, abs=1e-12)
    assert module.jvp({}, **args)[1] == 0.0


def test_float32_follows_the_params_dtype(mlp):
    module = mlp
    args, tangents = _arguments(module, seed=3)
    args32 = {k: v.astype(np.float32) if v.dtype == np.float64 else v for k, v in args.items()}
    t32 = {k: v.astype(np.float32) for k, v in tangents.items()}
    _, dJ = module.jvp(t32, **args32)
    _, exact = module.jvp(tangents, **args)
    assert dJ == pytest.approx(exact, rel=1e-4)
    with pytest.raises(TypeError, match=r"jvp\(\): the tangents \(float64\) and the params "
                                        r"\(float32\) differ"):
        module.jvp(tangents, **args32)


@pytest.mark.skipif(torch is None, reason="PyTorch is an optional reference")
def test_seed_network_matches_torch_func_jvp(mlp):
    module = mlp
    args, tangents = _arguments(module, seed=7, dims={"n": 6, "d": 5, "h": 4, "q": 3})
    x, y = torch.tensor(args["x"]), torch.tensor(args["y"])

    def objective(W1, W2):
        o = torch.relu(x @ W1.T) @ W2.T
        return torch.nn.functional.cross_entropy(o, y) + 1e-4 / 2 * (
            (W1 ** 2).sum() + (W2 ** 2).sum())

    J, dJ = torch.func.jvp(objective, (torch.tensor(args["W1"]), torch.tensor(args["W2"])),
                           (torch.tensor(tangents["W1"]), torch.tensor(tangents["W2"])))
    ours = module.jvp(tangents, **args)
    assert ours[0] == pytest.approx(J.item(), rel=1e-12)
    assert ours[1] == pytest.approx(dJ.item(), rel=1e-10)


def test_tangent_errors_name_the_tangent(mlp):
    module = mlp
    args, tangents = _arguments(module, seed=1)
    with pytest.raises(TypeError, match=r"takes the tangents first, as a dict"):
        module.jvp([tangents["W1"]], **args)
    with pytest.raises(ValueError, match=r"tangents\['w1'\]: not a param; did you mean 'W1'"):
        module.jvp({"w1": tangents["W1"]}, **args)
    with pytest.raises(ValueError, match=r"argument \"tangents\['W2'\]\" must have shape"):
        module.jvp({"W2": tangents["W2"][0]}, **args)
    with pytest.raises(ValueError, match=r"dimension 'h' is 2 in argument \"tangents\['W1'\]\""):
        module.jvp({"W1": tangents["W1"][:2]}, **args)
    with pytest.raises(TypeError, match="missing 1 required positional argument"):
        module.jvp(**args)


def test_a_spec_may_name_a_value_tangents():
    source = compile_source("input x[n]\nparam tangents[n]\nJ = sum(x * tangents ** 2)\n"
                            "minimize J\n", "t.gg").source
    module = load_python(source)
    x, w, t = np.arange(1.0, 4.0), np.array([0.5, -1.0, 2.0]), np.array([1.0, 2.0, -1.0])
    assert module.jvp({"tangents": t}, x=x, tangents=w)[1] == pytest.approx(
        float(np.sum(2 * x * w * t)), rel=1e-14)


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(graphs())
def test_random_graphs_forward_equals_reverse(text):
    module = load_python(compile_source(text, "random.gg").source)
    args, tangents = _arguments(module, seed=len(text), dims={"m": 3, "k": 2})
    _agrees_with_reverse_mode_and_differences(module, args, tangents)


@settings(max_examples=2, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(graphs())
def test_random_graphs_forward_equals_reverse_through_numba(build, text):
    module = build(text, "random")
    args, tangents = _arguments(module, seed=1, dims={"m": 3, "k": 2})
    _agrees_with_reverse_mode_and_differences(module, args, tangents)


# ----------------------------------------------------------------------------- hvp
def _hvp_agrees_with_differences_and_is_symmetric(module, args, rng):
    """H·v against 4th-order central differences of the gradient along v (an independent
    route: reverse mode only), and <u, H·v> = <v, H·u>."""
    v = {p: rng.normal(size=np.shape(args[p])) for p in module.PARAMS}
    u = {p: rng.normal(size=np.shape(args[p])) for p in module.PARAMS}
    hv = module.hvp(v, **args)
    assert set(hv) == set(module.PARAMS)
    eps = 1e-4

    def grad_at(k):
        moved = {p: args[p] + k * eps * t for p, t in v.items()}
        return module.value_and_grad(**{**args, **moved})[1]

    g = {k: grad_at(k) for k in (-2, -1, 1, 2)}
    for p in module.PARAMS:
        numeric = (8 * (g[1][p] - g[-1][p]) - (g[2][p] - g[-2][p])) / (12 * eps)
        np.testing.assert_allclose(hv[p], numeric, rtol=1e-6, atol=1e-7, err_msg=p)
    hu = module.hvp(u, **args)
    uHv = sum(float(np.sum(u[p] * hv[p])) for p in module.PARAMS)
    vHu = sum(float(np.sum(v[p] * hu[p])) for p in module.PARAMS)
    assert uHv == pytest.approx(vHu, rel=1e-10, abs=1e-12)


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.stem)
def test_examples_hvp_matches_differences_of_the_gradient(spec, gen_dir):
    module = graphgen.load(spec, out_dir=gen_dir)
    args, _ = _arguments(module, seed=2 + len(spec.stem))
    _hvp_agrees_with_differences_and_is_symmetric(module, args, np.random.default_rng(5))
    assert all(np.all(h == 0) for h in module.hvp({}, **args).values())


LOGISTIC = """
input X[n, d]
input y[n]
param w[d]
hyper lam = 0.1
z = X @ w
J = mean(softplus(z) - y * z) + lam / 2 * sum(w ** 2)
minimize J
"""


def test_logistic_regression_hvp_is_the_closed_form(build):
    """Xᵀ(σ(z)σ(−z) ⊙ Xv)/n + λv, derived by hand."""
    module = build(LOGISTIC, "logistic")
    rng = np.random.default_rng(0)
    X, y, w, v = rng.normal(size=(40, 6)), rng.uniform(size=40), rng.normal(size=6), \
        rng.normal(size=6)
    s = 1 / (1 + np.exp(-(X @ w)))
    expected = X.T @ (s * (1 - s) * (X @ v)) / 40 + 0.1 * v
    np.testing.assert_allclose(module.hvp({"w": v}, X=X, y=y, w=w)["w"], expected,
                               rtol=1e-12)


@pytest.mark.skipif(torch is None, reason="PyTorch is an optional reference")
def test_seed_network_hvp_matches_torch_jvp_of_grad(mlp):
    args, v = _arguments(mlp, seed=11, dims={"n": 6, "d": 5, "h": 4, "q": 3})
    x, y = torch.tensor(args["x"]), torch.tensor(args["y"])

    def objective(W1, W2):
        o = torch.relu(x @ W1.T) @ W2.T
        return torch.nn.functional.cross_entropy(o, y) + 1e-4 / 2 * (
            (W1 ** 2).sum() + (W2 ** 2).sum())

    primals = (torch.tensor(args["W1"]), torch.tensor(args["W2"]))
    _, hv = torch.func.jvp(torch.func.grad(objective, argnums=(0, 1)), primals,
                           (torch.tensor(v["W1"]), torch.tensor(v["W2"])))
    ours = mlp.hvp(v, **args)
    np.testing.assert_allclose(ours["W1"], hv[0].numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(ours["W2"], hv[1].numpy(), rtol=1e-10, atol=1e-14)


def test_hvp_errors_name_the_vector(mlp):
    args, v = _arguments(mlp, seed=1)
    with pytest.raises(TypeError, match=r"hvp\(\) takes the vector first, as a dict"):
        mlp.hvp(v["W1"], **args)
    with pytest.raises(ValueError, match=r"vector\['w2'\]: not a param; did you mean 'W2'"):
        mlp.hvp({"w2": v["W2"]}, **args)
    with pytest.raises(ValueError, match=r"argument \"vector\['W1'\]\" must have shape"):
        mlp.hvp({"W1": v["W1"][0]}, **args)


@settings(max_examples=20, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(graphs())
def test_random_graphs_hvp_matches_differences_of_the_gradient(text):
    module = load_python(compile_source(text, "random.gg").source)
    args, v = _arguments(module, seed=len(text), dims={"m": 3, "k": 2})
    try:
        module.hvp(v, **args)
    except NotImplementedError as e:  # only prod's surrogate lacks a second derivative
        assert "prod() of a value that depends on a param" in str(e) and "prod(" in text
        return
    _hvp_agrees_with_differences_and_is_symmetric(module, args,
                                                  np.random.default_rng(len(text)))


def test_prod_on_a_param_path_refuses_hvp_but_not_jvp():
    module = load_python(compile_source("input x[n]\nparam w[n]\nJ = prod(x * w)\n"
                                        "minimize J\n", "p.gg").source)
    x, w, t = np.array([1.0, 2.0, 3.0]), np.array([1.0, -2.0, 0.5]), np.ones(3)
    with pytest.raises(NotImplementedError, match=r"prod\(\) of a value that depends on a "
                                                  r"param \(line 3\)"):
        module.hvp({"w": t}, x=x, w=w)
    assert module.jvp({"w": t}, x=x, w=w)[1] == pytest.approx(
        float(np.sum(np.prod(x * w) / w)), rel=1e-14)
