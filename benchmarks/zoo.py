"""The graph zoo (issue 9): graphgen's `value_and_grad` against JAX, PyTorch eager and
torch.compile on textbook graphs other than the seed network.

    python -m benchmarks.zoo [--quick] [--rounds N] [--only NAME[,NAME]] [--dtype float32|float64]
                             [--no-torch-compile] [--pinned] [--note TEXT]

Each graph is a spec in benchmarks/specs/zoo/NAME.gg; the peers are written from the same
math in benchmarks/zoo_jax.py and benchmarks/zoo_torch.py (one function per graph, named
like the spec). For every graph and dtype all implementations start from the same arrays,
must agree with graphgen on J and on every gradient (relative error, float64 ≤ 1e-9,
float32 ≤ 1e-3) before anything is timed, and are then timed with harness.compare:
interleaved rounds, each block after untimed warm-up calls.

Reported per graph: each implementation's median, the best peer (lowest median), and the
ratio best peer / graphgen (> 1: graphgen is faster) with its spread; the ratio is the median
over rounds of the per-round ratio (both were timed in the same round, so slow phases of a
shared machine cancel), the spread half its interquartile range, relative. Over the zoo: the
geometric mean of graphgen / best peer (< 1: graphgen is faster), and the graphs where
graphgen is slower than 1.5x the best peer.

As `python -m benchmarks`, it re-runs itself without OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE
unless --pinned. `--quick` (fewer rounds, no torch.compile) writes results/zoo-quick.*, a
full run results/zoo.*; with --only or --dtype the name ends in -partial. Time: ~8 s of
timing per graph and dtype (5 rounds); torch.compile adds 10-30 s of compilation per graph and
dtype on a first run (Inductor's on-disk cache shortens later runs), Numba 3-10 s (cached too).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SPECS = ROOT / "benchmarks" / "specs" / "zoo"
GENERATED = ROOT / "benchmarks" / "generated" / "zoo"
TOLERANCE = {"float64": 1e-9, "float32": 1e-3}
SLOW = 1.5  # a graph where graphgen takes more than SLOW x the best peer's time is counted


@dataclass(frozen=True)
class Graph:
    """A zoo entry. `dims` binds the spec's dims (the benchmark size), `tiny` the smoke-test
    size. `data` says how an input is drawn when not standard normal ("mask", "binary",
    "counts", "simplex", "unit"); `init` gives a parameter's scale (default 1/sqrt(its last
    dim), 0.1 for vectors and scalars) or "ones" (1 + 0.1 noise, for norm gains)."""
    name: str
    covers: str
    dims: dict
    tiny: dict
    data: dict = field(default_factory=dict)
    init: dict = field(default_factory=dict)

    @property
    def spec(self) -> Path:
        return SPECS / f"{self.name}.gg"

    def size(self, dims=None) -> str:
        return " ".join(f"{k}={v}" for k, v in (dims or self.dims).items())


ZOO = [
    Graph("bilinear_lse", "3-operand einsum: bilinear form between two data matrices + "
          "logsumexp (soft-label contrastive loss)",
          dict(n=512, m=512, d=128, e=128), dict(n=3, m=4, d=2, e=3), data={"P": "simplex"},
          init={"W": 0.05}),
    Graph("cp_decomp", "3-operand einsum with a 3-D output: rank-r CP decomposition, "
          "squared error", dict(i=96, j=96, k=96, r=16), dict(i=3, j=4, k=2, r=2),
          init={"U": 0.6, "V": 0.6, "Z": 0.6}),
    Graph("layer_norm", "layer norm (axis=1 statistics) between dense layers, tanh, "
          "squared error", dict(n=1024, d=256, h=256, q=16), dict(n=4, d=3, h=5, q=2),
          init={"g": "ones"}),
    Graph("rms_norm", "RMS norm (axis=1), relu, cross-entropy",
          dict(n=1024, d=256, h=256, q=10), dict(n=4, d=3, h=5, q=3), init={"g": "ones"}),
    Graph("batch_norm", "batch-statistics norm (axis=0), relu, cross-entropy",
          dict(n=1024, d=256, h=256, q=10), dict(n=5, d=3, h=4, q=3), init={"g": "ones"}),
    Graph("attention", "single softmax attention head (matrix products), squared error",
          dict(n=512, d=128, k=64), dict(n=4, d=3, k=2),
          init={"Wq": 128 ** -0.5, "Wk": 128 ** -0.5, "Wv": 128 ** -0.5}),
    Graph("attention_mh", "multi-head attention via einsum (4 heads), output projection, "
          "squared error", dict(n=256, d=128, h=4, k=32), dict(n=4, d=3, h=2, k=2),
          init={"Wq": 128 ** -0.5, "Wk": 128 ** -0.5, "Wv": 128 ** -0.5,
                "Wo": 128 ** -0.5}),
    Graph("elementwise_chain", "maximum, minimum, cos, sqrt, sigmoid around a matrix "
          "product; reductions over axis 1 and axis 0", dict(n=2048, d=128, h=256),
          dict(n=4, d=3, h=5)),
    Graph("tanh_mlp", "two-layer tanh MLP with biases, squared error",
          dict(n=1024, d=256, h=512, q=8), dict(n=4, d=3, h=5, q=2)),
    Graph("gelu_mlp", "two GELU layers (tanh approximation written out as a fn), sigmoid "
          "output, squared error", dict(n=1024, d=128, h=256, q=8), dict(n=4, d=3, h=3, q=2),
          data={"t": "unit"}),
    Graph("masked_mf", "matrix factorisation U V^T with a float 0/1 mask, weight decay",
          dict(n=1024, m=1024, r=32), dict(n=4, m=3, r=2), data={"M": "mask"}),
    Graph("logistic", "L2-regularised logistic regression (softplus form), scalar bias",
          dict(n=8192, d=256), dict(n=6, d=3), data={"y": "binary"}),
    Graph("poisson", "Poisson regression (log link), 8 count targets per row",
          dict(n=8192, d=256, q=8), dict(n=5, d=3, q=2), data={"y": "counts"},
          init={"W": 0.5 / 16}),
    Graph("huber", "multi-output linear regression, Huber loss via minimum/abs",
          dict(n=8192, d=256, q=16), dict(n=5, d=3, q=2), data={"t": "wide"}),
    Graph("rnn4", "Elman RNN unrolled over 4 steps (x1..x4), shared weights, "
          "cross-entropy on the last state", dict(n=512, d=128, h=256, q=10),
          dict(n=4, d=2, h=3, q=2)),
]
BY_NAME = {g.name: g for g in ZOO}


# ----------------------------------------------------------------------------- data
def load_module(graph: Graph):
    import graphgen

    return graphgen.load(graph.spec, out_dir=GENERATED)


def make_arrays(graph: Graph, module, dims: dict, dtype, seed: int = 0) -> tuple[dict, dict]:
    """(inputs, params) for `module` (a graphgen module of the graph's spec, JIT or not) at
    `dims`, drawn once in float64 and cast, so float32 and float64 runs see the same values."""
    rng = np.random.default_rng(seed)

    def shape_of(shape):
        return tuple(s if isinstance(s, int) else dims[s] for s in shape)

    inputs = {}
    for name, (shape, kind, label_range) in module.INPUTS.items():
        sh = shape_of(shape)
        if kind == "int":
            high = label_range if isinstance(label_range, int) else dims[label_range]
            inputs[name] = rng.integers(0, high, size=sh).astype(np.int64)
            continue
        how = graph.data.get(name, "normal")
        if how == "mask":
            a = (rng.random(sh) < 0.3).astype(np.float64)
        elif how == "binary":
            a = (rng.random(sh) < 0.5).astype(np.float64)
        elif how == "counts":
            a = rng.poisson(1.0, sh).astype(np.float64)
        elif how == "simplex":
            e = np.exp(rng.normal(size=sh))
            a = e / e.sum(axis=-1, keepdims=True)
        elif how == "unit":
            a = rng.random(sh)
        elif how == "wide":  # targets spread so that residuals fall on both sides of delta
            a = rng.normal(size=sh) * 2.0
        else:
            a = rng.normal(size=sh)
        inputs[name] = a.astype(dtype)
    params = {}
    for name, (shape, _, _) in module.PARAMS.items():
        sh = shape_of(shape)
        scale = graph.init.get(name, sh[-1] ** -0.5 if len(sh) >= 2 else 0.1)
        if scale == "ones":
            a = 1.0 + 0.1 * rng.normal(size=sh)
        else:
            a = scale * rng.normal(size=sh)
        params[name] = np.asarray(a, dtype=dtype)
    return inputs, params


# ----------------------------------------------------------------------------- implementations
@dataclass
class Impl:
    """`run()` is what is timed (results left on the device/in the library's types);
    `result()` returns (J, {param: gradient}) as float64 NumPy for the agreement check."""
    run: object
    result: object


def graphgen_impl(module, inputs, params) -> Impl:
    args = {**inputs, **params}

    def result():
        J, g = module.value_and_grad(**args)
        return float(J), {k: np.asarray(v, np.float64) for k, v in g.items()}

    return Impl(lambda: module.value_and_grad(**args), result)


def jax_impl(graph: Graph, inputs, params) -> Impl:
    import jax

    from benchmarks import zoo_jax

    f = jax.jit(jax.value_and_grad(getattr(zoo_jax, graph.name)))
    p = {k: jax.numpy.asarray(v) for k, v in params.items()}
    d = {k: jax.numpy.asarray(v) for k, v in inputs.items()}
    for k, v in {**p, **d}.items():  # x64 is process-wide: every array keeps its own dtype
        src = params.get(k, inputs.get(k))
        assert v.dtype == src.dtype, (graph.name, k, v.dtype, src.dtype)

    def run():
        return jax.block_until_ready(f(p, d))

    def result():
        J, g = run()
        return float(J), {k: np.asarray(v, np.float64) for k, v in g.items()}

    return Impl(run, result)


def torch_impl(graph: Graph, inputs, params, compiled: bool) -> Impl:
    import torch

    from benchmarks import zoo_torch

    loss = getattr(zoo_torch, graph.name)
    if compiled:
        loss = torch.compile(loss, dynamic=False)
    p = {k: torch.from_numpy(v.copy()).requires_grad_(True) for k, v in params.items()}
    d = {k: torch.from_numpy(v) for k, v in inputs.items()}
    names = list(p)

    def run():
        J = loss(p, d)
        return J.detach(), torch.autograd.grad(J, [p[k] for k in names])

    def result():
        J, g = run()
        return float(J), {k: gk.numpy().astype(np.float64) for k, gk in zip(names, g)}

    return Impl(run, result)


def available(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def implementations(graph: Graph, dtype, compile_torch: bool, dims=None,
                    module=None) -> dict[str, Impl]:
    """Every available implementation of `graph` at `dims` (default: the benchmark size);
    graphgen's is `module` (default: the spec's module, compiled with the JIT)."""
    module = module or load_module(graph)
    inputs, params = make_arrays(graph, module, dims or graph.dims, dtype)
    impls = {"graphgen": graphgen_impl(module, inputs, params)}
    if available("jax"):
        impls["JAX jit"] = jax_impl(graph, inputs, params)
    if available("torch"):
        impls["PyTorch eager"] = torch_impl(graph, inputs, params, compiled=False)
        if compile_torch:
            impls["torch.compile"] = torch_impl(graph, inputs, params, compiled=True)
    return impls


def check_agreement(graph: Graph, dtype, impls: dict[str, Impl]) -> dict[str, float]:
    """Each peer's largest relative error against graphgen over J and every gradient; a
    disagreement beyond the dtype's tolerance is an error naming the graph and the peer."""
    from benchmarks.__main__ import rel_error

    tol = TOLERANCE[np.dtype(dtype).name]
    J0, g0 = impls["graphgen"].result()
    errors = {"graphgen": 0.0}
    for name, impl in impls.items():
        if name == "graphgen":
            continue
        J, g = impl.result()
        if set(g) != set(g0):
            raise SystemExit(f"{graph.name}: {name} returns gradients of {sorted(g)}, "
                             f"graphgen of {sorted(g0)}")
        parts = {"J": abs(J - J0) / max(abs(J0), 1e-300)}
        parts.update({f"d{k}": rel_error(g[k], g0[k]) for k in g0})
        worst = max(parts, key=parts.get)
        errors[name] = parts[worst]
        if not parts[worst] <= tol:
            raise SystemExit(f"{graph.name} ({np.dtype(dtype).name}): {name} disagrees with "
                             f"graphgen on {worst}: relative error {parts[worst]:.2e} > {tol:g}")
    return errors


# ----------------------------------------------------------------------------- one graph
def ratio_stats(peer, graphgen) -> tuple[float, float]:
    """Median over rounds of peer/graphgen (same round: same machine state) and its spread
    (half the interquartile range, relative to the median)."""
    r = np.asarray(peer.samples) / np.asarray(graphgen.samples)
    q1, med, q3 = np.percentile(r, [25, 50, 75])
    return float(med), float((q3 - q1) / (2 * med))


def run_graph(graph: Graph, dtype, rounds: int, compile_torch: bool, notes: list) -> dict:
    from benchmarks.harness import compare

    dt = np.dtype(dtype).name
    t0 = time.perf_counter()
    impls = implementations(graph, dtype, compile_torch)
    for name, impl in list(impls.items()):  # compilation stays out of the timings
        try:
            impl.run()
        except Exception as e:  # a peer that cannot run this graph is reported, not timed
            if name == "graphgen":
                raise
            notes.append(f"{graph.name} ({dt}): {name} failed, not timed: "
                         f"{type(e).__name__}: {str(e)[:300]}")
            print(notes[-1], flush=True)
            del impls[name]
    setup = time.perf_counter() - t0
    errors = check_agreement(graph, dtype, impls)
    timings = compare({name: impl.run for name, impl in impls.items()}, rounds=rounds)
    gg = timings["graphgen"]
    row = {"graph": graph.name, "covers": graph.covers, "size": graph.size(), "dtype": dt,
           "setup_s": setup, "impls": {}}
    for name, t in timings.items():
        row["impls"][name] = {"median_s": t.median, "iqr_s": t.iqr, "rounds": len(t.samples),
                              "rel_error_vs_graphgen": errors[name]}
    peers = [n for n in timings if n != "graphgen"]
    if peers:
        best = min(peers, key=lambda n: timings[n].median)
        ratio, spread = ratio_stats(timings[best], gg)
        row.update(best_peer=best, best_peer_over_graphgen=ratio, spread=spread,
                   graphgen_over_best_peer=1 / ratio)
    return row


def summarize(rows: list) -> dict:
    """Per dtype and over all rows: geometric mean of graphgen / best peer, graphs slower than
    SLOW x the best peer."""
    out = {}
    for key in sorted({r["dtype"] for r in rows}) + ["all"]:
        sel = [r for r in rows if "best_peer" in r and key in ("all", r["dtype"])]
        if not sel:
            continue
        slow = [f"{r['graph']} ({r['dtype']})" for r in sel if r["graphgen_over_best_peer"] > SLOW]
        out[key] = {"geomean_graphgen_over_best_peer":
                    math.exp(np.mean([math.log(r["graphgen_over_best_peer"]) for r in sel])),
                    "graphs": len(sel), f"slower_than_{SLOW}x_best_peer": len(slow),
                    "slow_graphs": slow}
    return out


# ----------------------------------------------------------------------------- report
def _t(s: float) -> str:
    return f"{s * 1e6:.0f} µs" if s < 1e-3 else f"{s * 1e3:.2f} ms"


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [f"# Graph zoo{' (quick)' if results['quick'] else ''}", ""]
    if results.get("note"):
        lines += [f"**{results['note']}**", ""]
    lines += [f"Machine: {m['cpu']}, {m['cpus']} cores; NumPy {m['numpy']}, Numba {m['numba']}, "
              f"PyTorch {m['torch']}, JAX {m['jax']}; OpenBLAS pin: {m['pinned_openblas']}. "
              f"{results['rounds']} interleaved rounds; run took {results['seconds']:.0f} s.",
              "",
              "`value_and_grad` per step, median over rounds. *best/gg*: best peer's time over "
              "graphgen's (> 1: graphgen faster), median of per-round ratios ± half their IQR "
              "(relative). Every peer agreed with graphgen on J and every gradient first "
              "(float64 ≤ 1e-9, float32 ≤ 1e-3 relative).", ""]
    names = []
    for r in results["rows"]:
        names += [n for n in r["impls"] if n not in names]
    lines += ["| graph | size | dtype | " + " | ".join(names) + " | best peer | best/gg |",
              "|---|---|---|" + "---|" * len(names) + "---|---|"]
    for r in results["rows"]:
        cells = [_t(r["impls"][n]["median_s"]) if n in r["impls"] else "—" for n in names]
        ratio = (f"{r['best_peer_over_graphgen']:.2f} ± {r['spread']:.0%}"
                 if "best_peer" in r else "—")
        lines.append(f"| {r['graph']} | {r['size']} | {r['dtype']} | " + " | ".join(cells)
                     + f" | {r.get('best_peer', '—')} | {ratio} |")
    lines += ["", "## Over the zoo", "",
              f"| dtype | graphs | geomean graphgen / best peer | slower than {SLOW}× best |",
              "|---|---|---|---|"]
    for key, s in results["summary"].items():
        slow = ", ".join(s["slow_graphs"]) or "none"
        lines.append(f"| {key} | {s['graphs']} | {s['geomean_graphgen_over_best_peer']:.2f} | "
                     f"{s[f'slower_than_{SLOW}x_best_peer']}: {slow} |")
    lines += ["", "## Graphs", ""] + [f"- **{g.name}** ({g.size()}): {g.covers}"
                                       for g in ZOO if any(r["graph"] == g.name
                                                           for r in results["rows"])]
    if results["notes"]:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in results["notes"]]
    return "\n".join(lines) + "\n"


def _format_row(r: dict) -> str:
    parts = " | ".join(f"{n} {_t(v['median_s'])}" for n, v in r["impls"].items())
    tail = (f" -> best {r['best_peer']}, best/gg {r['best_peer_over_graphgen']:.2f} "
            f"± {r['spread']:.0%}" if "best_peer" in r else "")
    return f"{r['graph']:18} {r['dtype']:8} {parts}{tail}"


# ----------------------------------------------------------------------------- main
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.zoo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="3 rounds, no torch.compile; writes results/zoo-quick.*")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 5, quick 3)")
    parser.add_argument("--no-torch-compile", action="store_true",
                        help="skip torch.compile (its compilation is most of a full run's time)")
    parser.add_argument("--only", help="comma-separated graph names (default: the whole zoo)")
    parser.add_argument("--dtype", choices=["float32", "float64"],
                        help="one dtype (default: both)")
    parser.add_argument("--pinned", action="store_true",
                        help="keep OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE as the environment has them")
    parser.add_argument("--note", help="a line written at the top of the report (e.g. 'smoke "
                        "run on a busy machine')")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from benchmarks.__main__ import machine_info, rerun_unpinned

    if not args.pinned:
        code = rerun_unpinned("benchmarks.zoo", argv)
        if code is not None:
            return code
    graphs = ZOO
    if args.only:
        unknown = [n for n in args.only.split(",") if n not in BY_NAME]
        if unknown:
            parser.error(f"unknown graph(s) {', '.join(unknown)}; the zoo: "
                         + ", ".join(BY_NAME))
        graphs = [BY_NAME[n] for n in args.only.split(",")]
    dtypes = [args.dtype] if args.dtype else ["float32", "float64"]
    rounds = args.rounds or (3 if args.quick else 5)
    compile_torch = not (args.quick or args.no_torch_compile)
    notes = []
    if not available("jax"):
        notes.append("JAX not installed: its column is skipped")
    else:  # process-wide, set once: every array is cast explicitly, so float32 stays float32
        import jax

        jax.config.update("jax_enable_x64", True)
    if not available("torch"):
        notes.append("PyTorch not installed: its columns are skipped (pip install torch==2.13.0)")
    else:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
    if available("torch") and not compile_torch:
        notes.append("torch.compile skipped (--quick or --no-torch-compile)")
    start = time.perf_counter()
    rows = []
    for graph in graphs:
        for dt in dtypes:
            rows.append(run_graph(graph, np.dtype(dt), rounds, compile_torch, notes))
            print(_format_row(rows[-1]), flush=True)
    results = {"machine": machine_info(), "quick": args.quick, "note": args.note,
               "rounds": rounds, "notes": notes, "rows": rows, "summary": summarize(rows),
               "seconds": time.perf_counter() - start}
    for key, s in results["summary"].items():
        print(f"{key}: geomean graphgen/best peer {s['geomean_graphgen_over_best_peer']:.2f}; "
              f"slower than {SLOW}x best: {s[f'slower_than_{SLOW}x_best_peer']} "
              f"{s['slow_graphs']}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = ("zoo-quick" if args.quick else "zoo") + ("-partial" if args.only or args.dtype
                                                      else "")
    (out / f"{stem}.json").write_text(json.dumps(results, indent=1))
    (out / f"{stem}.md").write_text(markdown(results))
    print(f"done in {results['seconds']:.0f}s; wrote {out / stem}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
