"""`show` for people: every name it prints is defined, folded updates are shown, the AST is
one node a line with line:col, and notebooks get the derivation in LaTeX. No JIT needed."""
import re
from pathlib import Path

import pytest

from graphgen.build import compile_file, load_python
from graphgen.explain import ast_text, derivation_latex, derivation_text, update_text

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "examples").glob("*.gg"))


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_every_invented_name_show_prints_is_defined(spec):
    compiled = compile_file(spec)
    text = derivation_text(compiled.graph, compiled.kernels["value_and_grad"].program)
    defined = set(compiled.graph.variables) | {n.name for n in compiled.graph.leaves}
    for line in text.splitlines():
        m = re.match(r"\s+(\S+?)(\[.*?\])? = ", line)
        if m:
            defined.add(m.group(1))
        for name in re.findall(r"(?<![\w/])(_[A-Za-z]\w*)", line.split(" = ", 1)[-1]):
            assert name in defined, f"{spec.name}: {name} used before it is defined:\n{text}"


def test_regression_shows_the_residual_it_reads():
    compiled = compile_file(ROOT / "examples" / "regression.gg")
    text = derivation_text(compiled.graph, compiled.kernels["value_and_grad"].program)
    where = text.index("where (intermediate values")
    assert re.search(r"\n    (_t\d+) = pred - y ", text[where:])
    residual = re.search(r"\n    (_t\d+) = pred - y ", text).group(1)
    assert text.index(f"{residual} = pred - y") < text.index(f"2*{residual}/n")


def test_show_prints_the_folded_updates_of_sgd_step():
    compiled = compile_file(ROOT / "examples" / "mlp.gg")
    text = update_text(compiled.graph, compiled.kernels["sgd_step"])
    assert "W2: as one GEMM into W2, no gradient array: W2 = -lr * (dJ/do.T @ hid)" in text
    assert "W1: as one GEMM into W1" in text


def test_ast_stage_is_one_node_a_line_with_line_and_column():
    compiled = compile_file(ROOT / "examples" / "mlp.gg")
    lines = ast_text(compiled.spec).splitlines()
    assert "Declare kind='input' dtype='float' @3:1" in lines
    assert "  name: Name 'x' @3:7" in lines
    assert "    right: Transpose @9:11" in lines
    assert all(len(line) < 100 and "Span(" not in line for line in lines)


def test_notebook_reprs_render_the_derivation():
    compiled = compile_file(ROOT / "examples" / "mlp.gg")
    latex = derivation_latex(compiled.graph, compiled.kernels["value_and_grad"].program)
    assert r"\frac{\partial J}{\partial W1} &= (\frac{\partial J}{\partial z}^{\top} \, x)" \
        in latex
    assert latex.count(r"\begin{aligned}") == 3  # forward, intermediates, backward
    m = load_python(compiled.source, "mlp_show")
    assert m._repr_latex_() == latex
    assert m._repr_markdown_().startswith("Spec:\n```\n# One hidden layer")
