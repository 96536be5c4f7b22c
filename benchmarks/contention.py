"""The seed network's SGD step on a machine in use: `python -m benchmarks.contention`.

Two busy processes (pure-Python loops, one per core on this 2-core machine, each ending by
itself after a bounded time and killed at the end) share the cores with the timed step.
Peers in the same process, interleaved (benchmarks.harness.compare): graphgen as shipped
(threads chosen per call by `graphgen/threads.py`), graphgen with OpenBLAS's threads fixed at
the cores' count (what it did before; the load probe switched off), NumPy by hand, and JAX
`jit` when installed. Results: benchmarks/results/contention.{json,md}.

Like the main suite, it re-runs itself without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE (this
workplace's AVX2 pin), for this command only; `--pinned` keeps the pin.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PIN_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
BUSY = "import time\nend = time.time() + {seconds}\nwhile time.time() < end:\n    pass\n"


def busy_processes(count: int, seconds: float) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", BUSY.format(seconds=seconds)])
            for _ in range(count)]


def impls(dtype, module_threads):
    from benchmarks import seed_step

    n, d, h, q = seed_step.SIZES["seed"]
    x, y, W1, W2 = seed_step.make_data(n, d, h, q, dtype)
    m = seed_step.graphgen_module()
    out = {}
    g1, g2 = W1.copy(), W2.copy()
    out["graphgen"] = lambda: m.sgd_step(x, y, g1, g2, lam=seed_step.LAM, lr=seed_step.LR)
    f1, f2 = W1.copy(), W2.copy()

    def fixed_threads():  # the load probe off, OpenBLAS on all its threads (the old way)
        m._threads.next_look = float("inf")
        m._threads.set_blas(module_threads)
        r = m.sgd_step(x, y, f1, f2, lam=seed_step.LAM, lr=seed_step.LR)
        m._threads.next_look = 0.0
        return r

    out[f"graphgen, {module_threads} BLAS threads fixed"] = fixed_threads
    n1, n2 = W1.copy(), W2.copy()
    out["NumPy by hand"] = lambda: seed_step.numpy_step(x, y, n1, n2, seed_step.LAM,
                                                        seed_step.LR)
    if seed_step.available("jax"):
        fn, _, _ = seed_step.jax_impl(x, y, W1, W2)
        out["JAX jit"] = lambda: float(fn())
    return out


def run(rounds: int, dtype) -> dict:
    from benchmarks.harness import compare

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    table = impls(dtype, cores)
    for fn in table.values():  # compile and warm every peer before the load starts
        fn()
    results = {}
    for label, count in (("quiet", 0), ("two busy processes", 2)):
        procs = busy_processes(count, seconds=120)
        try:
            time.sleep(0.3 if count else 0)
            timings = compare(table, rounds=rounds, block=0.2, warm=0.2)
        finally:
            for p in procs:
                p.kill()
                p.wait()
        base = timings["graphgen"]
        results[label] = {
            name: {"median_ms": 1e3 * t.median,
                   "iqr_ms": [1e3 * v for v in t.iqr],
                   "ratio_to_graphgen": t.median / base.median,
                   "spread": (t.iqr[1] - t.iqr[0]) / 2 / t.median}
            for name, t in timings.items()}
    return results


def report(results: dict, dtype_name: str) -> str:
    lines = [f"# Seed network SGD step ({dtype_name}, 128x784x256x10) on a machine in use", "",
             "Medians over interleaved rounds; ratio = peer / graphgen (above 1: graphgen is "
             "faster); ± is half the IQR, relative.", ""]
    for label, rows in results.items():
        lines += [f"## {label}", "", "| implementation | median (ms) | ratio | spread |",
                  "|---|---|---|---|"]
        for name, r in sorted(rows.items(), key=lambda kv: kv[1]["median_ms"]):
            lines.append(f"| {name} | {r['median_ms']:.3f} | {r['ratio_to_graphgen']:.2f} | "
                         f"±{100 * r['spread']:.0f}% |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--pinned", action="store_true", help="keep the AVX2 pin of OpenBLAS")
    args = parser.parse_args(argv)
    if not args.pinned and any(v in os.environ for v in PIN_VARS):
        env = {k: v for k, v in os.environ.items() if k not in PIN_VARS}
        cmd = [sys.executable, "-m", "benchmarks.contention", "--pinned",
               "--rounds", str(args.rounds), "--dtype", args.dtype]
        raise SystemExit(subprocess.call(cmd, env=env, cwd=ROOT))
    results = run(args.rounds, np.dtype(args.dtype).type)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "contention.json").write_text(json.dumps(results, indent=2) + "\n")
    text = report(results, args.dtype)
    (out / "contention.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
