"""The `graphgen` command line. Errors are formatted here, at the edge: a spec error prints
`FILE:LINE:COL: error: ...` with the line and a caret and exits 2, never a traceback."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import __version__
from .errors import SpecError, escape_text


def _parse_dims(items: list[str]) -> dict[str, int]:
    dims = {}
    for item in items or []:
        name, _, value = item.partition("=")
        if not name or not value.isdigit() or int(value) < 1:
            raise SystemExit(f"graphgen: error: --dim expects NAME=SIZE with SIZE >= 1, "
                             f"got {item!r}")
        dims[name] = int(value)
    return dims


def _parse_hypers(items: list[str]) -> dict[str, float]:
    out = {}
    for item in items or []:
        name, _, value = item.partition("=")
        try:
            out[name] = float(value)
        except ValueError:
            raise SystemExit(f"graphgen: error: --hyper expects NAME=NUMBER, got {item!r}") \
                from None
    return out


def cmd_compile(args) -> int:
    from .build import DEFAULT_OUT_DIR, compile_spec

    # the CLI writes where the user looks (generated/ by default); the Python API's load()
    # defaults to a per-spec cache directory instead
    path = compile_spec(args.spec, out_dir=args.out or DEFAULT_OUT_DIR, force=args.force)
    print(escape_text(str(path)))
    return 0


def cmd_show(args) -> int:
    from .build import compile_file
    from .explain import derivation_text

    compiled = compile_file(args.spec)
    graph = compiled.graph
    if args.stage == "derivation":
        print(derivation_text(graph, compiled.kernels["value_and_grad"].program))
        print(f"Stored for backward (the tape): {', '.join(compiled.api['tape']) or 'nothing'}")
    elif args.stage == "ast":
        for st in compiled.spec.statements:
            print(st)
    elif args.stage == "ir":
        for n in graph.nodes:
            args_text = ", ".join(f"{a.node.name}[{','.join(str(i) for i in a.idx)}]"
                                  for a in n.args)
            body = "" if n.body is None else f" = {'Σ' if n.reducer == 'sum' else 'max'}" \
                f"_{{{','.join(n.reduce)}}} {n.body}" if n.reduce else f" = {n.body}"
            print(f"{n.role:8} {n.name:10} {n.kind:6} {str(list(n.shape)):14} "
                  f"out={list(n.out)} args=({args_text}){body}")
    elif args.stage == "schedule":
        from .explain import program_equations

        for kernel in compiled.kernels.values():
            params = kernel.passed_dims + [r.name for r in kernel.program.reads]
            print(f"{kernel.name}({', '.join(params)}):")
            for step, eq in program_equations(kernel.program, include_inlined=True):
                print(f"    [{step.kind:6}] {eq}")
    elif args.stage == "plan":
        from .plan import plan_text

        print(plan_text(compiled))
    elif args.stage == "source":
        sys.stdout.write(compiled.source)
    return 0


def cmd_graph(args) -> int:
    from .build import compile_file
    from .explain import to_dot

    sys.stdout.write(to_dot(compile_file(args.spec).graph))
    return 0


def cmd_check(args) -> int:
    import numpy as np

    from .build import load
    from .gradcheck import check_gradients, random_arguments

    module = load(args.spec, out_dir=args.out)
    dims = {d: 3 + k % 3 for k, d in enumerate(module.DIMS)}
    dims.update(_parse_dims(args.dim))
    arguments = random_arguments(module, dims, seed=args.seed, dtype=np.float64)
    results = check_gradients(module, arguments, rtol=args.rtol, seed=args.seed)
    print(f"gradient check of {args.spec} (float64, central differences, dims "
          f"{', '.join(f'{k}={v}' for k, v in dims.items())}):")
    ok = True
    for r in results:
        status = "ok  " if r.ok else "FAIL"
        print(f"  {status} d{module.OBJECTIVE}/d{r.name}: max rel error {r.max_rel_error:.2e} "
              f"(abs {r.max_abs_error:.2e}) at {r.worst_index}: analytic {r.analytic:.10g}, "
              f"numeric {r.numeric:.10g}")
        ok &= r.ok
    print("all gradients match" if ok else f"gradient mismatch above tolerance {args.rtol:g}")
    return 0 if ok else 1


def cmd_train(args) -> int:
    from .build import load
    from .datasets import DatasetError, load_digits, load_idx_dir
    from .train import TrainConfig, TrainError, plot_losses, train

    try:
        data = load_idx_dir(args.idx) if args.idx else load_digits(seed=args.seed)
    except DatasetError as e:
        print(f"graphgen: error: {e}", file=sys.stderr)
        return 2
    module = load(args.spec, out_dir=args.out)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         seed=args.seed, dims=_parse_dims(args.dim), dtype=args.dtype,
                         hypers=_parse_hypers(args.hyper))
    print(f"training {args.spec} on {data.name}: {len(data.y_train)} train / "
          f"{len(data.y_test)} test examples, {data.x_train.shape[1]} features, "
          f"{data.classes} classes", file=sys.stderr)
    try:
        result = train(module, data, config, progress=not args.quiet)
    except TrainError as e:
        print(f"graphgen: error: {e}", file=sys.stderr)
        return 2
    plot = Path(args.plot) if args.plot else \
        Path("runs") / f"{Path(args.spec).stem}-{data.name}-loss.png"
    plot_losses(result.losses, plot, f"{Path(args.spec).name} on {data.name}")
    print(f"final training objective {result.losses[-1]:.4f}; train accuracy "
          f"{result.train_accuracy:.2%}")
    print(f"test accuracy {result.test_accuracy:.2%} ({len(data.y_test)} held-out examples) "
          f"in {result.seconds:.1f}s; loss curve: {plot}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphgen", description="Compile computational-graph specs (.gg) into "
        "Numba-JIT'd forward/backward modules with sympy-derived gradients.")
    parser.add_argument("--version", action="version", version=f"graphgen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("compile", help="write the generated module (default generated/NAME.py)")
    p.add_argument("spec")
    p.add_argument("--out", help="output directory (default: generated/)")
    p.add_argument("--force", action="store_true", help="regenerate even if up to date")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("show", help="print the forward and the derived backward equations")
    p.add_argument("spec")
    p.add_argument("--stage", default="derivation",
                   choices=["derivation", "ast", "ir", "schedule", "plan", "source"],
                   help="which intermediate to print (default: derivation)")
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("check", help="check gradients against finite differences")
    p.add_argument("spec")
    p.add_argument("--dim", action="append", metavar="NAME=SIZE")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rtol", type=float, default=1e-6)
    p.add_argument("--out", help="output directory for the generated module")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("graph", help="print the computational graph as Graphviz DOT")
    p.add_argument("spec")
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser("train", help="train a classification spec with minibatch SGD")
    p.add_argument("spec")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dim", action="append", metavar="NAME=SIZE",
                   help="size of a dimension the data does not fix (default 64)")
    p.add_argument("--hyper", action="append", metavar="NAME=VALUE")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    p.add_argument("--idx", metavar="DIR", help="MNIST-format IDX directory instead of digits")
    p.add_argument("--plot", metavar="PNG", help="loss-curve path (default runs/...png)")
    p.add_argument("--out", help="output directory for the generated module")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SpecError as e:
        print(str(e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("graphgen: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a graphgen bug: say so plainly; details on request
        if os.environ.get("GRAPHGEN_DEBUG"):
            raise
        print(f"graphgen: internal error: {type(e).__name__}: {escape_text(str(e))}\n"
              "this is a bug in graphgen; rerun with GRAPHGEN_DEBUG=1 for the traceback and "
              "please report it with the spec", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
