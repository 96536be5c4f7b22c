"""Benchmark results → JSON (everything), Markdown (tables), PNG (ratio plots)."""
from __future__ import annotations

import json
from pathlib import Path


def _t(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    return f"{s * 1e6:.1f} µs" if s < 1e-3 else f"{s * 1e3:.2f} ms"


def _table(rows: list, unit_per_element: bool = False) -> list[str]:
    names = []
    for row in rows:
        names += [n for n in row["impls"] if n not in names]
    out = ["| workload | size | dtype | " + " | ".join(names) + " |",
           "|---|---|---|" + "---|" * len(names)]
    for row in rows:
        cells = []
        for n in names:
            v = row["impls"].get(n)
            if v is None:
                cells.append("—")
                continue
            if unit_per_element:
                text = f"{row['ns_per_element'][n]:.1f} ns/elem"
            else:
                text = _t(v["median_s"])
            low, high = v.get("iqr_s") or (v["median_s"], v["median_s"])
            spread = (high - low) / (2 * v["median_s"])  # half the IQR, relative
            cells.append(f"{text} ({v['ratio_vs_graphgen']:.2f}×, ±{spread:.0%})")
        out.append(f"| {row['workload']} | {row['size']} | {row['dtype']} | "
                   + " | ".join(cells) + " |")
    return out


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [f"# Benchmark results{' (quick)' if results['quick'] else ''}", "",
             f"Machine: {m['cpu']}, {m['cpus']} cores; Python {m['python']}, NumPy {m['numpy']}, "
             f"Numba {m['numba']}, PyTorch {m['torch']}, JAX {m['jax']}.",
             f"OpenBLAS pin in this run: {m['pinned_openblas']}; BLAS kernels used: "
             + (", ".join(f"{b['architecture']} ({Path(b['filepath']).name})" for b in m["blas"])
                if isinstance(m["blas"], list) else str(m["blas"])) + ".", "",
             "Medians over interleaved rounds (each preceded by 0.3 s of untimed calls); in "
             "parentheses the ratio to graphgen (> 1: graphgen is faster) and the spread "
             "(half the interquartile range, relative to the median; the JSON has the "
             "quartiles). Every peer was checked to agree with graphgen before timing "
             "(float64 rel 1e-10, float32 1e-4).",
             ""]
    lines += ["## SGD step of the seed network", ""] + _table(results["sgd_step"]) + [""]
    lines += ["## Inference (predict)", ""] + _table(results["predict"]) + [""]
    mem = results.get("memory", {})
    if mem and "error" not in mem:
        lines += ["## Memory: training vs inference", "",
                  "| what | bytes |", "|---|---|"]
        lines += [f"| {k} | {v:,} |" if isinstance(v, int) else f"| {k} | {v} |"
                  for k, v in mem.items()] + [""]
    lines += ["## Elementwise-heavy gradient", ""] + _table(results["elementwise"], True) + [""]
    lines += ["## Compile latency (fresh process, seed network, float32 SGD step)", "",
              "| run | parse | derive | render | write+import | first call | spec → first "
              "result |", "|---|---|---|---|---|---|---|"]
    for name, v in results["latency"].items():
        if "error" in v:
            lines.append(f"| {name} | error: {v['error']} |||||")
            continue
        cells = [_t(v[k]) if k in v else "—" for k in
                 ("parse", "derive", "render", "write+import", "first call",
                  "spec to first result")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    if results["notes"]:
        lines += ["", "Notes:"] + [f"- {n}" for n in results["notes"]]
    lines += ["", f"Total benchmark time: {results['seconds']:.0f} s.", ""]
    return "\n".join(lines)


def plot(results: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["sgd_step"] + results["elementwise"]
    fig, ax = plt.subplots(figsize=(10, 0.5 + 0.45 * len(rows) * 2), dpi=100)
    labels, values, colors = [], [], []
    palette = {}
    for row in rows:
        for name, v in row["impls"].items():
            if name == "graphgen":
                continue
            palette.setdefault(name, f"C{len(palette)}")
            labels.append(f"{row['workload']} {row['size']} {row['dtype']}: {name}")
            values.append(v["ratio_vs_graphgen"])
            colors.append(palette[name])
    ax.barh(range(len(values)), values, color=colors)
    ax.set_yticks(range(len(values)), labels, fontsize=7)
    ax.axvline(1.0, color="black", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("time relative to graphgen (> 1: graphgen is faster)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write(results: dict, out: Path, stem: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.json", out / f"{stem}.md"]
    paths[0].write_text(json.dumps(results, indent=1, default=str) + "\n")
    paths[1].write_text(markdown(results))
    paths.append(plot(results, out / f"{stem}.png"))
    return paths
