"""Arrays handed to generated code. Every public function validates before any kernel runs
and raises TypeError/ValueError naming the argument, the expected and the actual. Each case
runs in its own subprocess, so a segfault (Numba does no bounds checking) fails that case
instead of killing the run."""
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MLP = str(ROOT / "generated" / "mlp.py")
PRELUDE = f"""
import json, sys, importlib.util
import numpy as np
spec = importlib.util.spec_from_file_location("mlp_isolated", {MLP!r})
m = importlib.util.module_from_spec(spec); sys.modules["mlp_isolated"] = m
spec.loader.exec_module(m)
rng = np.random.default_rng(0)
args = dict(x=rng.normal(size=(6, 5)), y=np.array([0, 1, 2, 0, 1, 2]),
            W1=rng.normal(size=(4, 5)), W2=rng.normal(size=(3, 4)))
"""


def run_case(body: str) -> dict:
    code = PRELUDE + "\ntry:\n" + textwrap.indent(textwrap.dedent(body), "    ") + """
    result = {"ok": True}
except (TypeError, ValueError) as e:
    result = {"ok": False, "type": type(e).__name__, "message": str(e)}
print(json.dumps(result))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"crashed (exit {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


BAD = [
    ("wrong rank", "args['x'] = np.zeros((6, 5, 1))", "ValueError",
     "argument 'x' must have shape [n, d] (2 dimensions), got shape (6, 5, 1)"),
    ("inconsistent dim", "args['W1'] = np.zeros((4, 7))", "ValueError",
     "dimension 'd' is 7 in argument 'W1' (axis 1) but 5 in 'x'"),
    ("inconsistent batch", "args['y'] = np.zeros(5, dtype=np.int64)", "ValueError",
     "dimension 'n' is 5 in argument 'y'"),
    ("int array for float", "args['x'] = np.zeros((6, 5), dtype=np.int32)", "TypeError",
     "argument 'x' must be float32 or float64, got int32"),
    ("bool array", "args['x'] = np.zeros((6, 5), dtype=bool)", "TypeError",
     "argument 'x' must be float32 or float64, got bool"),
    ("complex array", "args['W1'] = np.zeros((4, 5), dtype=complex)", "TypeError",
     "argument 'W1' must be float32 or float64, got complex128"),
    ("float16 array", "args['W1'] = np.zeros((4, 5), dtype=np.float16)", "TypeError",
     "argument 'W1' must be float32 or float64, got float16"),
    ("object array", "args['W2'] = np.zeros((3, 4), dtype=object)", "TypeError",
     "argument 'W2' must be float32 or float64, got object"),
    ("mixed float32 and float64", "args['W2'] = args['W2'].astype(np.float32)", "TypeError",
     "argument 'W2' is float32 but 'x' is float64; pass all float arrays in one dtype"),
    ("label too large", "args['y'] = np.array([0, 1, 2, 0, 1, 3])", "ValueError",
     "argument 'y' holds class labels in [0, 3), found 3"),
    ("negative label", "args['y'] = np.array([0, -1, 2, 0, 1, 2])", "ValueError",
     "argument 'y' holds class labels in [0, 3), found -1"),
    ("float labels", "args['y'] = np.zeros(6)", "TypeError",
     "argument 'y' must be an integer array, got float64"),
    ("bool labels", "args['y'] = np.zeros(6, dtype=bool)", "TypeError",
     "argument 'y' must be an integer array, got bool"),
    ("list for an array", "args['x'] = [[0.0] * 5] * 6", "TypeError",
     "argument 'x' must be a numpy array of shape [n, d], got list"),
    ("scalar for an array", "args['W1'] = 1.0", "TypeError",
     "argument 'W1' must be a numpy array of shape [h, d], got float"),
    ("zero-size dim", "args['x'] = np.zeros((0, 5)); args['y'] = np.zeros(0, dtype=int)",
     "ValueError", "argument 'x' has an empty axis 0 (shape (0, 5))"),
    ("missing argument", "del args['W2']", "TypeError", "is missing argument 'W2'"),
    ("misspelt argument", "args['W3'] = args.pop('W2')", "TypeError",
     "unexpected argument 'W3'; did you mean 'W2'?"),
    ("extra argument", "args['bias'] = 1.0", "TypeError", "unexpected argument 'bias'"),
    ("hyper not a number", "args['lam'] = '0.1'", "TypeError",
     "argument 'lam' must be a real number, got str"),
    ("hyper as an array", "args['lam'] = np.ones(3)", "TypeError",
     "argument 'lam' must be a real number, got ndarray"),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
@pytest.mark.parametrize("function", ["value_and_grad", "forward", "sgd_step"])
def test_bad_arguments_are_named(case, function):
    _, setup, error, message = case
    extra = ", lr=0.1" if function == "sgd_step" else ""
    result = run_case(f"{setup}\nm.{function}(**args{extra})")
    assert not result["ok"], "accepted a bad argument"
    assert result["type"] == error and message in result["message"], result


def test_views_are_copied_for_reading_and_give_the_same_result():
    result = run_case("""
        J, g = m.value_and_grad(**args)
        views = dict(args, x=np.asfortranarray(args['x']), W2=args['W2'][::-1][::-1],
                     W1=np.repeat(args['W1'], 2, axis=1)[:, ::2])
        ro = args['y'].copy(); ro.flags.writeable = False; views['y'] = ro.astype(np.int32)
        J2, g2 = m.value_and_grad(**views)
        assert J2 == J and all(np.array_equal(g[k], g2[k]) for k in g), 'views changed results'
        assert np.array_equal(m.predict(x=views['x'], W1=views['W1'], W2=views['W2']),
                              m.predict(x=args['x'], W1=args['W1'], W2=args['W2']))
    """)
    assert result["ok"], result


@pytest.mark.parametrize("setup, message", [
    ("args['W2'] = np.asfortranarray(args['W2'])", "'W2' is updated in place"),
    ("args['W1'] = np.repeat(args['W1'], 2, axis=1)[:, ::2]", "'W1' is updated in place"),
    ("args['W2'] = args['W2'].copy(); args['W2'].flags.writeable = False",
     "'W2' is updated in place and must be a C-contiguous, writeable array"),
    ("args['y'] = args['y'] + 5", "class labels"),
    ("args['W2'] = args['W2'].astype(np.float32)", "pass all float arrays in one dtype"),
])
def test_sgd_step_refuses_before_writing_anything(setup, message):
    result = run_case(f"""
        {setup}
        before = {{k: np.array(v, copy=True) for k, v in args.items()}}
        try:
            m.sgd_step(**args, lr=0.1)
        finally:
            for k, v in before.items():
                assert np.array_equal(args[k], v), k + ' was written before the error'
    """)
    assert not result["ok"] and message in result["message"], result


def test_nan_and_inf_propagate_by_ieee_rules():
    result = run_case("""
        args['x'][0, 0] = np.nan
        J, g = m.value_and_grad(**args)
        assert np.isnan(J) and np.isnan(g['W1']).any()
        args['x'][0, 0] = np.inf
        J, g = m.value_and_grad(**args)
        assert not np.isfinite(J)
        print(json.dumps({"ok": True}))
    """)
    assert result["ok"], result


def test_float32_and_python_scalar_hypers():
    result = run_case("""
        a32 = {k: (v.astype(np.float32) if v.dtype.kind == 'f' else v) for k, v in args.items()}
        J, g = m.value_and_grad(**a32, lam=np.float32(0.01))
        assert g['W1'].dtype == np.float32 and isinstance(J, float)
        J2, _ = m.value_and_grad(**a32, lam=1)  # an int hyper is a real number
    """)
    assert result["ok"], result


def test_backward_rejects_what_is_not_a_tape():
    result = run_case("m.backward({'J': 1.0})")
    assert not result["ok"] and "dict returned by forward" in result["message"]
