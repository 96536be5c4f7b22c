"""Spec text reaches generated code only as validated identifiers, numbers re-printed by the
compiler, and escaped text in comments/docstrings. A corpus of hostile specs: none executes
anything, none breaks the generated file's syntax."""
import ast

import numpy as np
import pytest

from graphgen.build import load_python
from graphgen.errors import SpecError
from graphgen.pipeline import compile_source

BODY = "input x[n]\nparam w[n]\nJ = sum(x * w)\nminimize J\n"
PWN = "__import__('pathlib').Path('PWNED').touch()"

ACCEPTED = {  # hostile text in places where it is allowed (comments): must compile safely
    "triple quotes in a comment": f'# """ ; {PWN} ; """\n' + BODY,
    "single triple quotes": f"# ''' ; {PWN} ; '''\n" + BODY,
    "backslashes": "# \\ \\\\ \\n \\x00 \\N{BULLET} \\\n" + BODY,
    "trailing backslash": "# ends with a backslash \\\n" + BODY,
    "quote soup": "# \" ' \"\"\" ''' \"\"\"\"\"\" \\\" \n" + BODY,
    "bidi controls in a comment": "# \u202eevil\u202c \u2066x\u2069\n" + BODY,
    "line and paragraph separators": "# a\u2028b\u2029c\x0cd\x0be\x85f\n" + BODY,
    "braces and jinja syntax": "# {{ 7*7 }} {% for x in y %} {# c #}\n" + BODY,
    "statement comment": BODY.replace("J = sum(x * w)", f'J = sum(x * w)  # """{PWN}'),
    "long comment": "# " + "\"'\\" * 2000 + "\n" + BODY,
}

REFUSED = {  # hostile text where code would be: must be a spec error
    "dunder name": BODY.replace("w", "__class__"),
    "import as a name": "input x[n]\nparam import[n]\nJ = sum(x)\nminimize J\n",
    "cyrillic look-alike": BODY.replace("param w[n]", "param \u0430[n]"),
    "fullwidth letter": BODY.replace("param w[n]", "param \uff57[n]"),
    "bidi in a name": BODY.replace("param w[n]", "param w\u202e[n]"),
    "zero-width joiner": BODY.replace("param w[n]", "param w\u200d[n]"),
    "shadow numpy": BODY.replace("w", "np"),
    "shadow numba": BODY.replace("w", "numba"),
    "shadow eval": BODY.replace("w", "eval"),
    "shadow exec": BODY.replace("w", "exec"),
    "shadow open": BODY.replace("w", "open"),
    "shadow a helper": BODY.replace("w", "_sigmoid"),
    "shadow the api": BODY.replace("w", "forward"),
    "shadow a loop index": BODY.replace("w", "i0"),
    "shadow the accumulator": BODY.replace("w", "acc"),
    "shadow the tape": BODY.replace("w", "tape"),
    "code in an einsum string": BODY.replace("sum(x * w)", f'sum(einsum("i->i\\"); {PWN}", w))'),
    "code in a number": BODY.replace("x * w", "x * 1e3.__class__"),
    "semicolon": BODY.replace("J = sum(x * w)", f"J = sum(x * w); {PWN}"),
    "hex literal": BODY.replace("x * w", "x * 0x10"),
    "attribute access": BODY.replace("x * w", "x.__class__ * w"),
    "lambda keyword": BODY.replace("x * w", "lambda: x"),
    "string as a value": BODY.replace("x * w", "'os'"),
    "hyper with code": "hyper h = __import__\n" + BODY,
    "inf literal": "hyper h = 1e999\n" + BODY,
    "newline in a string": BODY.replace("sum(x * w)", 'einsum("i\\n->", x)'),
}

DANGEROUS = {"eval", "exec", "open", "__import__", "compile", "getattr", "setattr", "globals",
             "locals", "vars", "breakpoint", "input", "os", "sys", "subprocess", "pathlib"}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_hostile_comments_compile_to_safe_code(name, tmp_path, monkeypatch):
    text = ACCEPTED[name]
    source = compile_source(text, 'evil"""\\name.gg').source
    tree = ast.parse(source)  # still valid Python
    imported = {(n.module if isinstance(n, ast.ImportFrom) else a.name).split(".")[0]
                for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in n.names}
    # what test_generated allows: numpy, numba and its BLAS (scipy, llvmlite), the thread
    # control (ctypes, glob, os, time), the memory budget (os), warnings, difflib
    assert {"numpy", "numba"} <= imported <= {"sys", "os", "warnings", "numpy", "numba",
                                              "difflib", "ctypes", "glob", "time", "scipy",
                                              "llvmlite"}
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert not names & (DANGEROUS - {"sys"})
    monkeypatch.chdir(tmp_path)
    module = load_python(source)  # executing the module runs nothing from the spec
    assert not (tmp_path / "PWNED").exists()
    assert module.SPEC == text  # the spec is carried verbatim, as data
    J, g = module.value_and_grad(x=np.array([1.0, 2.0]), w=np.array([3.0, 4.0]))
    assert J == 11.0 and g["w"].tolist() == [1.0, 2.0]


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_hostile_code_positions_are_spec_errors(name):
    with pytest.raises(SpecError):
        compile_source(REFUSED[name], "evil.gg")


def test_hostile_file_names_are_escaped():
    for file in ['a"""b.gg', "a'''b.gg", "a\\b.gg", "a\u202eb.gg", "a\nb.gg"]:
        source = compile_source(BODY, file).source
        ast.parse(source)
