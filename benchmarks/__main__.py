"""Run graphgen's benchmark suite: `python -m benchmarks [--quick] [--pinned]`.

By default the suite re-runs itself with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from
the environment, for this command only: this workplace pins OpenBLAS to AVX2 kernels, users'
machines do not. `--pinned` keeps the pin. Which kernel ran is recorded (threadpoolctl).
Results: benchmarks/results/latest.json, latest.md and PNG plots.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PIN_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def rerun_unpinned(module: str, argv=None) -> int | None:
    """Run `python -m module argv` again without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE and return
    its exit code; None if there is nothing to remove (or this already is that child)."""
    if not any(v in os.environ for v in PIN_VARS) or os.environ.get("GRAPHGEN_BENCH_CHILD"):
        return None
    env = {k: v for k, v in os.environ.items() if k not in PIN_VARS}
    env["GRAPHGEN_BENCH_CHILD"] = "1"
    print("re-running without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE (this command only)",
          file=sys.stderr)
    return subprocess.call([sys.executable, "-m", module, *(argv or sys.argv[1:])],
                           env=env, cwd=ROOT)


def machine_info() -> dict:
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cpus": os.cpu_count(), "pinned_openblas": {v: os.environ.get(v) for v in PIN_VARS}}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f
                               if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor()
    import numba

    info["numpy"], info["numba"] = np.__version__, numba.__version__
    try:
        import threadpoolctl

        info["blas"] = [{k: p.get(k) for k in ("filepath", "architecture", "num_threads",
                                                "version")}
                        for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    except ImportError:
        info["blas"] = "threadpoolctl not installed"
    for mod in ("torch", "jax"):
        try:
            info[mod] = __import__(mod).__version__
        except ImportError:
            info[mod] = None
    return info


def rel_error(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def check_steps(size, dtype, compile_torch, notes) -> dict:
    """One step with lr = 1 from the same start: every peer's (W_before - W_after) is its
    gradient; all must agree with graphgen's before anything is timed."""
    from benchmarks import seed_step

    impls, (x, y, W1, W2) = seed_step.step_impls(size, dtype, 1.0, compile_torch, notes)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    results = {}
    reference = None
    for name, (fn, params) in impls.items():
        J = float(fn())
        P1, P2 = params()
        grads = (W1.astype(np.float64) - P1, W2.astype(np.float64) - P2)
        if reference is None:
            reference = (J, grads)
        err = max(abs(J - reference[0]) / abs(reference[0]),
                  *(rel_error(g, r) for g, r in zip(grads, reference[1])))
        results[name] = err
        if err > tol:
            raise SystemExit(f"{name} disagrees with graphgen at {size}/{np.dtype(dtype).name}: "
                             f"relative error {err:.2e} > {tol:g}")
    return results


def run_steps(sizes, dtypes, rounds, compile_torch, notes) -> list:
    from benchmarks import seed_step
    from benchmarks.harness import compare

    rows = []
    for size in sizes:
        for dtype in dtypes:
            errors = check_steps(size, dtype, compile_torch, notes)
            impls, (x, _, W1, W2) = seed_step.step_impls(size, dtype, seed_step.LR,
                                                          compile_torch, notes)
            fns = {name: fn for name, (fn, _) in impls.items()}
            fns["GEMM floor"] = seed_step.gemm_floor(x, W1, W2, dtype)
            for fn in fns.values():  # compile / first-call cost stays out of the timings
                fn()
            timings = compare(fns, rounds=rounds)
            rows.append(_row("SGD step", size, dtype, timings, errors))
            print(_format_row(rows[-1]), flush=True)
    return rows


def run_predict(sizes, dtypes, rounds) -> list:
    from benchmarks import seed_step
    from benchmarks.harness import compare

    rows = []
    for size in sizes:
        for dtype in dtypes:
            fns = seed_step.predict_impls(size, dtype)
            ref = np.asarray(fns["graphgen"](), np.float64)
            tol = 1e-10 if dtype == np.float64 else 1e-4
            errors = {}
            for name, fn in fns.items():
                errors[name] = rel_error(np.asarray(fn()), ref)
                if errors[name] > tol:
                    raise SystemExit(f"{name} predict disagrees: {errors[name]:.2e}")
            rows.append(_row("predict", size, dtype, compare(fns, rounds=rounds), errors))
            print(_format_row(rows[-1]), flush=True)
    return rows


MEMORY_CHILD = r"""
import json, os, sys, threading, numpy as np
sys.path.insert(0, sys.argv[1])
from benchmarks import seed_step
mode, size = sys.argv[2], sys.argv[3]
m = seed_step.graphgen_module()
tiny = seed_step.make_data(*seed_step.SIZES["tiny"], np.float32)
m.predict(tiny[0], tiny[2], tiny[3]); m.sgd_step(*tiny, lr=0.0)  # compile with tiny arrays
x, y, W1, W2 = seed_step.make_data(*seed_step.SIZES[size], np.float32)
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
peak, done = [0], threading.Event()
def sample():  # the kernels release the GIL (nogil=True), so this thread sees them run
    while not done.is_set():
        peak[0] = max(peak[0], rss())
base = rss()
t = threading.Thread(target=sample); t.start()
for _ in range(20):
    if mode == "inference":
        kept = m.predict(x, W1, W2)
    else:
        m.sgd_step(x, y, W1, W2, lr=0.0)
done.set(); t.join()
out = {"peak_growth": max(peak[0] - base, 0)}
if mode == "training":
    tape = m.forward(x, y, W1, W2)
    out["tape"] = sum(v.nbytes for k, v in tape.items()
                      if isinstance(v, np.ndarray) and k not in m.INPUTS and k not in m.PARAMS)
    out["params"], out["inputs"] = W1.nbytes + W2.nbytes, x.nbytes + y.nbytes
else:
    out["output"] = kept.nbytes
print(json.dumps(out))
"""


def run_memory(size: str) -> dict:
    """Resident-memory growth while predict vs sgd_step run (sampled from another thread, each
    in a fresh process loading cached code), and the bytes a training forward keeps for
    backward (the tape) against what inference keeps (its output)."""
    result = {"size": size}
    # a first process compiles and fills Numba's cache, so that the measured processes load
    # compiled code instead of running LLVM, whose own peak would hide the arrays'
    subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(ROOT), "inference", "tiny"],
                   capture_output=True, text=True, timeout=600)
    for mode in ("inference", "training"):
        proc = subprocess.run([sys.executable, "-c", MEMORY_CHILD, str(ROOT), mode, size],
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            return {"error": proc.stderr[-500:]}
        data = json.loads(proc.stdout.strip().splitlines()[-1])
        result[f"{mode}: peak resident-memory growth during calls"] = data.pop("peak_growth")
        result.update(data)
    return result


def run_elementwise(sizes, rounds, compile_torch) -> list:
    from benchmarks import elementwise
    from benchmarks.harness import compare

    rows = []
    for n in sizes:
        fns, x = elementwise.impls(n, compile_torch)
        ref, _ = elementwise.reference_grad(x)
        errors = {}
        for name, fn in fns.items():
            errors[name] = rel_error(fn(), ref)
            if errors[name] > 1e-10:
                raise SystemExit(f"{name} elementwise gradient disagrees: {errors[name]:.2e}")
        row = _row("elementwise grad", f"{n:.0e}", np.float64, compare(fns, rounds=rounds),
                   errors)
        row["ns_per_element"] = {k: v["median_s"] / n * 1e9 for k, v in row["impls"].items()}
        rows.append(row)
        print(_format_row(row), flush=True)
    return rows


def _row(workload, size, dtype, timings, errors) -> dict:
    base = timings["graphgen"].median
    return {"workload": workload, "size": size, "dtype": np.dtype(dtype).name,
            "impls": {name: {"median_s": t.median, "iqr_s": t.iqr, "ratio_vs_graphgen":
                             t.median / base, "rel_error_vs_graphgen": errors.get(name),
                             "rounds": len(t.samples)}
                      for name, t in timings.items()}}


def _fmt_time(s: float) -> str:
    return f"{s * 1e6:.1f} µs" if s < 1e-3 else f"{s * 1e3:.2f} ms"


def _format_row(row) -> str:
    parts = [f"{name} {_fmt_time(v['median_s'])} ({v['ratio_vs_graphgen']:.2f}x)"
             for name, v in row["impls"].items()]
    return f"{row['workload']:16} {row['size']:6} {row['dtype']:8} " + " | ".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny and seed sizes, fewer "
                        "rounds, no torch.compile: under 2 minutes")
    parser.add_argument("--pinned", action="store_true",
                        help="keep OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE as the environment has them")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    parser.add_argument("--sizes", help="comma-separated step sizes (tiny,seed,large)")
    args = parser.parse_args(argv)
    if not args.pinned:
        code = rerun_unpinned("benchmarks", argv)
        if code is not None:
            return code
    sys.path.insert(0, str(ROOT))
    start = time.perf_counter()
    quick = args.quick
    sizes = args.sizes.split(",") if args.sizes else (
        ["tiny", "seed"] if quick else ["tiny", "seed", "large"])
    dtypes = [np.float32] if quick else [np.float32, np.float64]
    rounds = 5 if quick else 9
    compile_torch = not quick
    notes: list = []
    info = machine_info()
    blas = info["blas"]
    kernels = [b.get("architecture") for b in blas] if isinstance(blas, list) else blas
    print(f"machine: {info['cpu']}, {info['cpus']} cores; BLAS kernels: {kernels}", flush=True)
    from benchmarks.latency import measure

    results = {"machine": info, "quick": quick, "notes": notes}
    results["sgd_step"] = run_steps(sizes, dtypes, rounds, compile_torch, notes)
    results["predict"] = run_predict(sizes, dtypes, rounds)
    results["memory"] = run_memory("seed" if quick else "large")
    print("memory:", results["memory"], flush=True)
    results["elementwise"] = run_elementwise([10 ** 6] if quick else [10 ** 6, 10 ** 7],
                                             rounds, compile_torch)
    results["latency"] = measure(compile_torch, info["jax"] is not None,
                                 info["torch"] is not None)
    print("latency:", json.dumps(results["latency"]), flush=True)
    results["seconds"] = time.perf_counter() - start
    from benchmarks.report import write

    paths = write(results, Path(args.out), "quick" if quick else "latest")
    print(f"done in {results['seconds']:.0f}s; wrote {', '.join(str(p) for p in paths)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
