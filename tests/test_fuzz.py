"""Property-based tests (hypothesis, derandomized): arbitrary text never escapes as anything
but a SpecError, and random valid graphs drawn from the op table compile and pass the
finite-difference check (with the JIT off for speed, and a few through Numba)."""
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphgen import ops
from graphgen.build import load_python
from graphgen.errors import SpecError
from graphgen.gradcheck import check_gradients
from graphgen.pipeline import compile_source

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = [p.read_text() for p in sorted((ROOT / "examples").glob("*.gg"))]
FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=list(HealthCheck))


def compile_or_spec_error(text: str) -> None:
    try:
        compile_source(text, "fuzz.gg")
    except SpecError as e:
        assert e.message and str(e).startswith(("fuzz.gg:", "error:"))


TOKENS = ["input", "param", "hyper", "fn", "minimize", "output", "x", "y", "W", "b", "J",
          "n", "d", "[", "]", "(", ")", ",", ":", "int", "float", "=", "+", "-", "*", "/",
          "**", "@", ".T", ".", "1", "0", "2.5", "1e-3", "1e999", "sum", "mean", "relu", "exp",
          "log", "einsum", "\"ij->i\"", "'", "axis=", "keepdims=True", "cross_entropy",
          "softmax", "logsumexp", "#", "\n", " ", "\t", "\r\n", "\ufeff", "é", "\x00", "_x",
          "lambda", "np", "maximum", "minimize J", "\n",
          # language v2
          "<", "<=", ">", ">=", "==", "!=", "where", "clip", "max", "min", "prod", "var", "std",
          "ddof=1", "axis=(0, 1)", "(0, -1)", "log_softmax", "one_hot", "stop_gradient", "%",
          "x[:, 0:3]", "[", "]", ":", "-1", "::2", "inv", "!"]


@FUZZ
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_token_soup_gives_only_spec_errors(tokens):
    compile_or_spec_error(" ".join(tokens))


@FUZZ
@given(st.sampled_from(EXAMPLES), st.lists(st.tuples(st.floats(0, 1), st.integers(0, 3),
                                                     st.text(max_size=4)), max_size=4))
def test_random_edits_of_valid_specs_give_only_spec_errors(text, edits):
    for where, kind, piece in edits:
        i = int(where * len(text))
        if kind == 0:
            text = text[:i] + text[i + 1:]
        elif kind == 1:
            text = text[:i] + piece + text[i:]
        elif kind == 2:
            text = text[:i] + piece + text[i + len(piece):]
        else:
            text = text[:i] + text[i:].replace(" ", "", 1)
    compile_or_spec_error(text)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(max_size=200))
def test_arbitrary_unicode_gives_only_spec_errors(text):
    compile_or_spec_error(text)


# ----------------------------------------------------------------------------- valid graphs
UNARY = sorted(n for n, op in ops.ELEMENTWISE.items() if op.arity == 1 and op.gradient == "exact")
SAFE_ARG = {"log": "1 + {0} * {0}", "sqrt": "1 + {0} * {0}", "exp": "tanh({0})",
            "log1p": "{0} * {0}", "tan": "tanh({0})", "expm1": "tanh({0})",
            "sinh": "tanh({0})", "cosh": "tanh({0})"}


@st.composite
def graphs(draw):
    """A random well-typed spec over dims m, k: values of shape [m, k], [k], [m] or scalar."""
    lines = ["input c[m, k]", "input y[m]: int"]
    values = {"c": "mk"}
    for i in range(draw(st.integers(1, 3))):
        shape = draw(st.sampled_from(["mk", "mk", "k", "m", ""]))
        dims = {"mk": "[m, k]", "k": "[k]", "m": "[m]", "": ""}[shape]
        lines.append(f"param p{i}{dims}")
        values[f"p{i}"] = shape

    def compatible(sa, sb):
        return sa == sb or "" in (sa, sb) or {sa, sb} == {"mk", "k"}

    for j in range(draw(st.integers(1, 6))):
        names = sorted(values)
        a = draw(st.sampled_from(names))
        sa = values[a]
        partners = [b for b in names if compatible(sa, values[b])]
        options = ["unary", "binary", "divide", "maxmin", "clip", "dim"]
        if sa:
            options.append("reduce")
        if sa in ("mk", "k"):
            options += ["where", "slice"]
        if sa == "mk":
            options += ["softmax", "ce", "transpose", "log_softmax", "soft_ce", "tuple"]
            if any(values[b] in ("k", "m") for b in names):
                options.append("matmul")
            if any(values[b] == "mk" for b in names):
                options.append("einsum")
        op = draw(st.sampled_from(options))
        if op == "unary":
            f = draw(st.sampled_from(UNARY))
            expr, shape = f"{f}({SAFE_ARG.get(f, '{0}').format(a)})", sa
        elif op in ("binary", "divide", "maxmin"):
            b = draw(st.sampled_from(partners))
            shape = max(sa, values[b], key=len)
            if op == "binary":
                expr = f"{a} {draw(st.sampled_from(['+', '-', '*']))} {b}"
            elif op == "divide":
                expr = f"{a} / (1 + {b} * {b})"
            else:
                expr = f"{draw(st.sampled_from(['maximum', 'minimum']))}({a}, {b})"
        elif op == "clip":
            expr, shape = f"clip({a}, -0.5, 0.5)", sa
        elif op == "dim":
            expr, shape = f"{a} / k + m", sa
        elif op == "where":  # the mask reads data only: no kink where the params move
            expr, shape = f"where(c > 0, {a}, 2 * {a}) * (c <= 1)", "mk"
        elif op == "slice":  # m = 3, k = 2 at run time
            expr, shape = draw(st.sampled_from(
                [(f"sum({a}[0:2], axis=0)", "k"), (f"{a}[:, -1]", "m"), (f"{a}[-1]", "k"),
                 (f"sum({a}[1:3, 0:2:2] * 2)", "")] if sa == "mk" else
                [(f"sum({a}[0:1])", ""), (f"sum({a}[-2:] * 3)", ""), (f"{a}[1]", "")]))
        elif op == "log_softmax":
            expr, shape = f"log_softmax({a}, axis={draw(st.sampled_from([0, -1]))})", "mk"
        elif op == "soft_ce":
            expr, shape = f"cross_entropy({a}, softmax(c))", "m"
        elif op == "tuple":
            f = draw(st.sampled_from(["sum", "mean", "logsumexp", "max", "min", "prod", "var"]))
            keep = draw(st.booleans())
            expr = f"{f}({a}, axis=(0, -1), keepdims={keep})"
            shape = ""
            if keep:
                expr = f"sum({expr})"
        elif op == "reduce":
            f = draw(st.sampled_from(["sum", "mean", "logsumexp", "max", "min", "prod", "var"]))
            if sa == "mk" and draw(st.booleans()):
                axis = draw(st.sampled_from([0, 1, -1]))
                if draw(st.booleans()):
                    expr = f"{f}({f}({a}, axis={axis}, keepdims=True), axis={axis})"
                else:
                    expr = f"{f}({a}, axis={axis})"
                shape = "k" if axis == 0 else "m"
            else:
                expr, shape = f"{f}({a})", ""
        elif op == "matmul":
            b = draw(st.sampled_from([b for b in names if values[b] in ("k", "m")]))
            expr, shape = (f"{a} @ {b}", "m") if values[b] == "k" else (f"{a}.T @ {b}", "k")
        elif op == "softmax":
            expr, shape = f"softmax({a}, axis={draw(st.sampled_from([0, -1]))})", "mk"
        elif op == "ce":
            expr, shape = f"cross_entropy({a}, y)", "m"
        elif op == "einsum":
            b = draw(st.sampled_from([b for b in names if values[b] == "mk"]))
            spec = draw(st.sampled_from(["ij,ij->j", "ij,ij->i", "ij,kj->ik", "ij,ik->jk"]))
            shape = {"ij,ij->j": "k", "ij,ij->i": "m", "ij,kj->ik": "mm", "ij,ik->jk": "kk"}[spec]
            expr = f"einsum(\"{spec}\", {a}, {b})"
            if shape in ("mm", "kk"):
                expr, shape = f"sum({expr}, axis=0)", shape[0]
        else:  # transpose
            expr, shape = f"sum(({a}.T @ {a}) * 0.5, axis=0)", "k"
        lines.append(f"v{j} = {expr}")
        values[f"v{j}"] = shape
    weight = {"mk": "c * ", "k": "", "m": "", "": ""}
    terms = [f"sum({weight[s]}{v})" if s else v for v, s in values.items()
             if v.startswith(("v", "p"))]
    lines.append("J = " + " + ".join(terms))
    lines.append("minimize J")
    return "\n".join(lines) + "\n"


def _check(module, seed):
    rng = np.random.default_rng(seed)
    dims = {"m": 3, "k": 2}
    args = {"c": rng.normal(size=(3, 2)), "y": rng.integers(0, 2, 3)}
    for name, (shape, _, _) in module.PARAMS.items():
        args[name] = rng.uniform(-1.5, 1.5, size=tuple(dims[s] for s in shape))
    results = check_gradients(module, args, rtol=1e-6, seed=seed)
    assert all(r.ok for r in results), [(r.name, r.max_rel_error) for r in results]
    # forward/backward (the finite differences above use value_and_grad's value) agree
    J, grads = module.value_and_grad(**args)
    tape = module.forward(**args)
    assert tape[module.OBJECTIVE] == pytest.approx(J, rel=1e-12)
    for name, g in module.backward(tape).items():
        np.testing.assert_allclose(g, grads[name], rtol=1e-10, atol=1e-13)
    # sgd_step (updates folded into GEMMs, decays moved into earlier passes) is p - lr * g
    params = {name: args[name].copy() for name in grads}
    assert module.sgd_step(**{**args, **params}, lr=0.125) == pytest.approx(J, rel=1e-12)
    for name, g in grads.items():
        np.testing.assert_allclose(params[name], args[name] - 0.125 * g, rtol=1e-12,
                                   atol=1e-14)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(graphs())
def test_random_valid_graphs_pass_finite_differences(text):
    module = load_python(compile_source(text, "random.gg").source)
    _check(module, seed=len(text))


@settings(max_examples=3, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(graphs())
def test_random_valid_graphs_through_numba(build, text):
    _check(build(text, "random"), seed=1)
