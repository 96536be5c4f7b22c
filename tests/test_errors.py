"""Spec errors: each names file, line and column, shows the line with a caret, says what is
wrong and (where it helps) how to fix it. The CLI exits 2 with no traceback, writing nothing."""
import subprocess
import sys

import pytest

from graphgen.errors import SpecError
from graphgen.pipeline import compile_source

BASE = "input x[n, d]\ninput y[n]: int\nparam W1[h, d]\nparam W2[q, h]\n"  # lines 1-4

CASES = [
    # (id, spec text, message fragment, line, col, hint fragment or None)
    ("syntax", BASE + "z = x @ W1.T +\nminimize z\n", "expected an expression, found end of line",
     5, 15, None),
    ("unknown name", BASE + "z = x @ W3.T\nJ = sum(z)\nminimize J\n", "unknown name 'W3'",
     5, 9, "declare it"),
    ("close name", BASE + "z = x @ W11.T\nJ = sum(z)\nminimize J\n", "unknown name 'W11'",
     5, 9, "did you mean 'W1'?"),
    ("unknown function", BASE + "z = rellu(x @ W1.T)\nJ = sum(z)\nminimize J\n",
     "unknown function 'rellu'", 5, 5, "did you mean relu()?"),
    ("arity", BASE + "z = relu(x, x)\nJ = sum(z)\nminimize J\n",
     "relu() takes 1 argument, got 2", 5, 5, None),
    ("redefinition", BASE + "z = x @ W1.T\nz = relu(z)\nJ = sum(z)\nminimize J\n",
     "'z' is already defined (first defined on line 5)", 6, 1, None),
    ("matmul shapes", BASE + "z = x @ W1\nJ = sum(z)\nminimize J\n",
     "matmul shapes do not match: [n, d] @ [h, d]", 5, 5, "transpose the right operand"),
    ("broadcast", BASE + "z = x + W1\nJ = sum(z)\nminimize J\n",
     "shapes [n, d] and [h, d] cannot be broadcast together", 5, 5, None),
    ("non-scalar objective", BASE + "z = x @ W1.T\nminimize z\n",
     "the objective 'z' must be a scalar, but its shape is [n, h]", 6, 10, "sum(z)"),
    ("missing minimize", BASE + "z = x @ W1.T\nJ = sum(z)\n",
     "the spec has no 'minimize' statement", 6, 1, "minimize NAME"),
    ("two objectives", BASE + "J = sum(x @ W1.T)\nminimize J\nminimize J\n",
     "exactly one 'minimize'", 7, 1, None),
    ("int data in arithmetic", BASE + "z = x @ W1.T\nJ = sum(z) + sum(y)\nminimize J\n",
     "integer input 'y' cannot be used in arithmetic", 6, 18, "labels"),
    ("float labels of the wrong shape", BASE + "o = x @ W1.T\nJ = mean(cross_entropy(o, x))\n"
     "minimize J\n", "target probabilities of shape [n, d] do not match logits", 6, 27,
     "integer labels"),
    ("python keyword", BASE + "lambda = sum(x @ W1.T)\nminimize lambda\n",
     "'lambda' is a Python keyword", 5, 1, "lambda_"),
    ("collides with numpy", BASE + "np = sum(x @ W1.T)\nminimize np\n",
     "would collide with a name in the generated code", 5, 1, None),
    ("collides with a gradient", BASE + "dJ_dW1 = 1\nJ = sum(x @ W1.T)\nminimize J\n",
     "'dJ_dW1' would collide with the generated gradient of 'W1'", 5, 1, None),
    ("reserved underscore", BASE + "_z = sum(x @ W1.T)\nminimize _z\n",
     "may not start with '_'", 5, 1, None),
    ("loop index name", BASE + "i0 = sum(x @ W1.T)\nminimize i0\n",
     "would collide with a name in the generated code", 5, 1, None),
    ("bad character", BASE + "J = sum(x @ W1.T) $ 2\nminimize J\n",
     "unexpected character '$'", 5, 19, None),
    ("axis out of range", BASE + "J = sum(sum(x, axis=2))\nminimize J\n",
     "axis 2 is out of range for an array of shape [n, d]", 5, 21, None),
    ("unknown keyword", BASE + "J = sum(x, axes=1)\nminimize J\n",
     "unexpected keyword 'axes'", 5, 12, "axis"),
    ("dimension as labels", BASE + "J = mean(cross_entropy(x @ W1.T, n))\nminimize J\n",
     "'n' is a dimension, not a value", 5, 34, "a number in arithmetic"),
    ("no param", "input x[n]\nJ = sum(x)\nminimize J\n",
     "declares no 'param'", 3, 1, None),
    ("too deep", BASE + "J = " + "(" * 150 + "x" + ")" * 150 + "\nminimize J\n",
     "nested more than 100 levels", 5, None, None),
    ("einsum rank", BASE + "J = sum(einsum(\"ijk->i\", x))\nminimize J\n",
     "einsum term 'ijk' has 3 indices", 5, 26, None),
    ("fn body uses outer name", BASE + "fn f(a) = a * x\nJ = sum(f(x))\nminimize J\n",
     "a fn body can only use its own parameters", 5, 15, None),
    ("statement", BASE + "+ x\n", "expected a declaration", 5, 1, None),
    ("NUL byte", BASE + "J = sum(x)\x00\nminimize J\n", "NUL byte", 5, 1, None),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_spec_error_message_and_position(case):
    _, text, message, line, col, hint = case
    with pytest.raises(SpecError) as info:
        compile_source(text, "bad.gg")
    err = info.value
    assert message in err.message
    assert err.span is not None and err.span.file == "bad.gg" and err.span.line == line
    if col is not None:
        assert err.span.col == col
    if hint is not None:
        assert hint in (err.hint or "")
    report = str(err).splitlines()
    assert report[0].startswith(f"bad.gg:{line}:{err.span.col}: error: ")
    if err.span.text:
        caret_line = report[2]
        assert caret_line.index("^") == 4 + err.span.col - 1


def test_cli_reports_spec_error_without_traceback_and_writes_nothing(tmp_path):
    spec = tmp_path / "bad.gg"
    spec.write_text(BASE + "z = x @ W1\nJ = sum(z)\nminimize J\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "graphgen", "compile", str(spec),
                           "--out", str(out)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert f"{spec}:5:5: error: matmul shapes do not match" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


def test_cli_missing_file_and_invalid_utf8(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "graphgen", "show", str(tmp_path / "no.gg")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "no such spec file" in proc.stderr
    bad = tmp_path / "latin1.gg"
    bad.write_bytes(b"# caf\xe9\ninput x[n]\n")
    proc = subprocess.run([sys.executable, "-m", "graphgen", "show", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "not valid UTF-8" in proc.stderr
    assert "Traceback" not in proc.stderr
