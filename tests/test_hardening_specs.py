"""Hardening, round 2 (issue 14): specs. Names that collide with dims or generated names,
nesting beyond what Python compiles, compile-time blow-ups, literal edge cases, non-ASCII
digits and terminal escapes in file names. Each is a spec error at its line and column (or
an IEEE value), in bounded time; hang cases run in a subprocess with a timeout."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphgen.check import MAX_FN_APPLICATIONS, MAX_LOOP_DEPTH
from graphgen.errors import SpecError
from graphgen.pipeline import compile_source

ROOT = Path(__file__).resolve().parent.parent
BODY = "input x[n]\nparam w[n]\n{line}\nminimize J\n"


def error_of(text: str, file: str = "t.gg") -> SpecError:
    with pytest.raises(SpecError) as info:
        compile_source(text, file)
    return info.value


# ------------------------------------------------------------------ 4: names
def test_hyper_declared_after_a_dim_of_the_same_name():
    """Was accepted, and the hyper silently replaced by the array size."""
    err = error_of("input x[n]\nparam w[n]\nhyper n = 3\nJ = sum(x * w) * n\nminimize J\n")
    assert (err.span.line, err.span.col) == (3, 7)
    assert "'n' is already a dimension name" in err.message
    err = error_of("input x[n]\nparam w[n]\nfn n(a) = a\nJ = sum(x * w)\nminimize J\n")
    assert (err.span.line, err.span.col) == (3, 4)


def test_dim_named_like_a_generated_gradient():
    """`dJ_dw` as a dim compiled, then failed inside Numba."""
    err = error_of("input x[dJ_dw]\nparam w[dJ_dw]\nJ = sum(x * w)\nminimize J\n")
    assert (err.span.line, err.span.col) == (1, 9)
    assert "collide with the generated gradient of 'w'" in err.message
    err = error_of("input x[dJ_dv]\nparam w[dJ_dv]\nv = x * w\nJ = sum(v)\nminimize J\n")
    assert "gradient of 'v'" in err.message


# ------------------------------------------------------------------ 12: nested loops
def test_nested_loops_beyond_the_limit_are_refused_at_the_line():
    """21-D arrays or a 21-index einsum produced a module Python could not compile
    (`too many statically nested blocks`) though `compile` exited 0."""
    dims = ",".join(f"a{k}" for k in range(21))
    err = error_of(f"input x[{dims}]\nparam w\nJ = sum(x) * w\nminimize J\n")
    assert err.span.line == 1 and f"the limit is {MAX_LOOP_DEPTH}" in err.message
    letters = "abcdefghijklmnopqrstu"
    ein = f'einsum("{",".join(letters)}->{letters}", {", ".join(["x"] * 21)})'
    err = error_of(f"input x[n]\nparam w\nJ = sum({ein}) * w\nminimize J\n")
    assert err.span.line == 3 and "21 nested loops" in err.message
    # at the limit: a module Python compiles (every loop nest, forward and backward)
    dims = ",".join(f"a{k}" for k in range(MAX_LOOP_DEPTH))
    source = compile_source(f"input x[{dims}]\nparam w[{dims}]\nJ = sum(x * tanh(w))\n"
                            "minimize J\n", "deep.gg").source
    compile(source, "deep.py", "exec")


# ------------------------------------------------------------------ 13: compile-time DoS
NESTED = "input x[n]\nparam w[n]\nfn f0(a) = tanh(a) * a\n{fns}J = sum(f{k}(x * w))\nminimize J\n"


def nested(k: int) -> str:
    return NESTED.format(fns="".join(f"fn f{j}(a) = f{j - 1}(f{j - 1}(a))\n"
                                     for j in range(1, k + 1)), k=k)


def test_nested_fns_are_refused_quickly():
    """A 158-byte spec of 15 levels of nested fns ran > 300 s in autodiff: it applies f0
    2**15 times. A subprocess, so a hang fails in time."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r})\n"
            "from graphgen.pipeline import compile_source\nfrom graphgen.errors import "
            f"SpecError\ntry:\n    compile_source({nested(15)!r}, 'n.gg')\n"
            "    print('compiled')\nexcept SpecError as e:\n    print(e)\n")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"the limit is {MAX_FN_APPLICATIONS:,}" in proc.stdout
    assert "n.gg:19:1" in proc.stdout and "hint: nested fn calls multiply" in proc.stdout
    assert time.perf_counter() - start < 60


@pytest.mark.parametrize("levels", [2, 4])
def test_legitimate_nesting_compiles_linearly_and_differentiates_right(levels, build):
    """3 and 4 levels were refused (their bodies, substituted into each other, had 2**2**k
    terms); each application is now a node of its own: 2**k small nodes, the gradient
    exact. Checked against the chain rule by hand, through Numba."""
    compiled = compile_source(nested(levels), "n.gg")
    assert "dJ_dw" in compiled.source and len(compiled.source) < 200_000
    m = build(nested(levels), f"nested{levels}")
    rng = np.random.default_rng(levels)
    x, w = rng.uniform(-1, 1, 5), rng.uniform(-1, 1, 5)
    v, dv = x * w, x.copy()  # value and d value / d w, through 2**levels applications of f0
    for _ in range(2 ** levels):
        v, dv = np.tanh(v) * v, (np.tanh(v) + v * (1 - np.tanh(v) ** 2)) * dv
    J, g = m.value_and_grad(x=x, w=w)
    assert J == pytest.approx(v.sum(), rel=1e-12)
    np.testing.assert_allclose(g["w"], dv, rtol=1e-10)


def test_huge_power_of_literals_is_refused_in_bounded_time():
    """`10 ** 10 ** 10` never finished folding (sympy computed the exact integer)."""
    start = time.perf_counter()
    err = error_of(BODY.format(line="J = sum(x * w) * 10 ** 10 ** 10"))
    assert time.perf_counter() - start < 10
    assert "too large for a float64" in err.message and err.span.col == 18


# ------------------------------------------------------------------ 14: literals
@pytest.mark.parametrize("expr, col, message", [
    ("x / 0", 13, "division by zero"),
    ("x * log(0)", 13, "'log(0)' is undefined or infinite"),
    ("x + 0 / 0", 17, "division by zero"),
    ("x * 0 ** -1", 13, "0 raised to a negative power"),
    ("x * sqrt(-1)", 13, "'sqrt(-1)' is not a real number"),
    ("x * 2 ** 1024", 13, "'2 ** 1024' is too large for a float64"),
    ("x * exp(1000)", 13, "'exp(1000)' is too large for a float64"),
    ("x * (-8) ** 0.5", 14, "this expression is not a real number"),
])
def test_literal_edge_cases_are_spec_errors_at_their_column(expr, col, message):
    """Each crashed the compiler ("internal error", exit 3)."""
    err = error_of(BODY.format(line=f"J = sum({expr}) + sum(w)"))
    assert err.span.line == 3 and err.span.col == col, str(err)
    assert message in err.message


def test_literal_edge_cases_through_the_cli(tmp_path):
    spec = tmp_path / "lit.gg"
    spec.write_text(BODY.format(line="J = sum(x * w) * log(0)"))
    proc = subprocess.run([sys.executable, "-m", "graphgen", "compile", str(spec), "--out",
                           str(tmp_path)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2 and "internal error" not in proc.stderr
    assert f"{spec}:3:18: error: 'log(0)' is undefined or infinite" in proc.stderr


def test_literals_that_ieee_defines_compile_to_their_value():
    source = compile_source(BODY.format(line="J = sum(x * w) * 2 ** -1074 + 1e-300 / 1e300"),
                            "t.gg").source
    compile(source, "t.py", "exec")
    assert "5e-324" in source or "4.9406564584124654e-324" in source


def test_a_5000_digit_dim_is_a_spec_error():
    """int() of 5,000 digits raised ValueError (Python's digit limit): an internal error."""
    err = error_of(f"input x[{'9' * 5000}]\nparam w\nJ = sum(x) * w\nminimize J\n")
    assert (err.span.line, err.span.col) == (1, 9) and "5000 digits" in err.message
    err = error_of(f"input x[{2 ** 62 + 1}]\nparam w\nJ = sum(x) * w\nminimize J\n")
    assert "between 1 and 2**62" in err.message


LITERALS = ["0", "1", "2", "-1", "0.5", "1e308", "1e-320", "10", "1024", "-8", "3"]
FUNCS = ["log", "sqrt", "exp", "tanh", "sigmoid", "abs", "relu"]


@st.composite
def literal_expressions(draw, depth=3):
    if depth == 0 or draw(st.booleans()):
        return draw(st.sampled_from(LITERALS))
    kind = draw(st.sampled_from(["bin", "call", "neg"]))
    if kind == "neg":
        return f"-({draw(literal_expressions(depth - 1))})"
    if kind == "call":
        return f"{draw(st.sampled_from(FUNCS))}({draw(literal_expressions(depth - 1))})"
    op = draw(st.sampled_from(["+", "-", "*", "/", "**"]))
    return f"({draw(literal_expressions(depth - 1))}) {op} ({draw(literal_expressions(depth - 1))})"


@settings(max_examples=200, deadline=None, derandomize=True)
@given(expr=literal_expressions())
def test_literal_fuzz_is_a_value_or_a_spec_error(expr):
    """Literal arithmetic folds to a finite float64 printed into the module, or is a spec
    error on line 3 — never another exception, never a hang."""
    text = BODY.format(line=f"J = sum(x * w) * ({expr})")
    start = time.perf_counter()
    try:
        source = compile_source(text, "lit.gg").source
    except SpecError as e:
        assert e.span is not None and e.span.line == 3, str(e)
        assert e.message and ("float64" in e.message or "zero" in e.message
                              or "real number" in e.message or "infinite" in e.message
                              or "power" in e.message), str(e)
    else:
        compile(source, "lit.py", "exec")
        assert "zoo" not in source and "I*" not in source  # no sympy infinity, no imaginary
    assert time.perf_counter() - start < 30


# ------------------------------------------------------------------ 15: text
@pytest.mark.parametrize("text, col", [
    ("input x[n]\nparam w[n]\nhyper lam = 1e-\u09ea\nJ = sum(x * w) * lam\nminimize J\n", 16),
    ("input x[\u0663]\nparam w[n]\nJ = sum(x * w)\nminimize J\n", 9),
    ("input x[n]\nparam w[n]\nJ = sum(x * w) * \uff12\nminimize J\n", 18),
])
def test_only_ascii_digits_are_numbers(text, col):
    """`1e-৪` was read as 1e-4 and `x[٣]` as a dim of 3."""
    err = error_of(text)
    assert err.span.col == col and "unexpected character" in err.message


def test_file_names_with_terminal_escapes_are_escaped(tmp_path):
    name = "evil\x1b[2J\x1b]0;pwned\x07\u202e.gg"
    spec = tmp_path / name
    spec.write_text("input x[n]\nparam w[n]\nJ = sum(x * w\nminimize J\n")
    proc = subprocess.run([sys.executable, "-m", "graphgen", "compile", str(spec), "--out",
                           str(tmp_path)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 2
    assert "\x1b" not in proc.stderr and "\x07" not in proc.stderr
    assert "\u202e" not in proc.stderr
    assert "evil\\x1b[2J\\x1b]0;pwned\\x07\\u202e.gg:3:" in proc.stderr
