"""Limits and encodings: each input either compiles correctly or gets a clear spec error,
within bounded time. The limits are documented in docs/robustness.md."""
import time

import pytest

from graphgen.build import read_spec
from graphgen.errors import SpecError
from graphgen.pipeline import compile_source
from graphgen.syntax import MAX_LINE_LENGTH, MAX_LINES, MAX_NESTING

TINY = "input x[n]\nparam w[n]\nJ = sum(x * w)\nminimize J\n"


def test_thousand_statement_chain_compiles_in_bounded_time():
    lines = ["input x[n]", "param w[n]", "v0 = x * w"]
    lines += [f"v{i} = tanh(v{i - 1}) * w + x" for i in range(1, 1000)]
    lines += ["J = sum(v999)", "minimize J"]
    start, cpu = time.perf_counter(), time.process_time()
    compiled = compile_source("\n".join(lines), "chain.gg")
    # ~31 s alone on a 2-core machine without AVX-512, 266 s before renames stopped
    # re-evaluating sympy functions and fusion grouping became linear. This process's CPU
    # time, not the clock: next to another test worker the clock read 111 s
    seconds, wall = time.process_time() - cpu, time.perf_counter() - start
    assert seconds < 90 and wall < 300, (seconds, wall)
    # its 7,001 nodes are over MAX_HVP_NODES: the module's hvp() says so instead
    assert "hvp() is generated for specs of up to 2000 graph nodes" in compiled.source
    assert "dJ_dw" in compiled.source


def test_nesting_at_the_limit_compiles_and_beyond_is_refused():
    ok = "(" * (MAX_NESTING - 1) + "x * w" + ")" * (MAX_NESTING - 1)
    compile_source(TINY.replace("x * w", ok))
    deep = "(" * 4000 + "x * w" + ")" * 4000
    with pytest.raises(SpecError, match="nested more than"):
        compile_source(TINY.replace("x * w", deep))
    with pytest.raises(SpecError, match="nested more than"):
        compile_source(TINY.replace("x * w", "-" * 8000 + "x * w"))


def test_long_lines_and_huge_files_are_refused_quickly():
    start = time.perf_counter()
    with pytest.raises(SpecError, match="characters long"):
        compile_source(TINY + "# " + "a" * MAX_LINE_LENGTH + "\n")
    with pytest.raises(SpecError, match="lines; the limit is"):
        compile_source("\n" * (MAX_LINES + 5))
    assert time.perf_counter() - start < 5


@pytest.mark.parametrize("variant, transform", [
    ("BOM", lambda t: "\ufeff" + t),
    ("CRLF", lambda t: t.replace("\n", "\r\n")),
    ("CR", lambda t: t.replace("\n", "\r")),
    ("tabs", lambda t: t.replace(" ", "\t")),
    ("trailing spaces", lambda t: t.replace("\n", "   \n")),
    ("no final newline", lambda t: t.rstrip("\n")),
])
def test_encoding_variants_compile_to_the_same_code(variant, transform):
    reference = compile_source(TINY, "t.gg")
    variant_source = compile_source(transform(TINY), "t.gg")
    kernels = lambda s: s.source.split("_JIT = ", 1)[1]  # noqa: E731 (the spec text differs)
    assert kernels(variant_source) == kernels(reference)


def test_nul_bytes_and_invalid_utf8_are_spec_errors(tmp_path):
    with pytest.raises(SpecError, match="NUL byte"):
        compile_source(TINY.replace("sum", "s\x00um"), "nul.gg")
    path = tmp_path / "bad.gg"
    path.write_bytes(TINY.encode() + b"# \xff\xfe\n")
    with pytest.raises(SpecError, match="not valid UTF-8") as info:
        read_spec(path)
    assert info.value.span.line == 5


def test_error_positions_count_tabs_as_one_column():
    with pytest.raises(SpecError) as info:
        compile_source("input x[n]\nparam w[n]\nJ =\tsum(x * q)\nminimize J\n", "t.gg")
    assert (info.value.span.line, info.value.span.col) == (3, 13)
    report = str(info.value).splitlines()
    assert report[2].index("^") == 4 + 12
