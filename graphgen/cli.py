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
    from .explain import ast_text, derivation_text, update_text

    compiled = compile_file(args.spec)
    graph = compiled.graph
    if args.stage == "derivation":
        print(derivation_text(graph, compiled.kernels["value_and_grad"].program))
        print(f"Stored for backward (the tape): {', '.join(compiled.api['tape']) or 'nothing'}")
        print(update_text(graph, compiled.kernels["sgd_step"]))
    elif args.stage == "ast":
        print(ast_text(compiled.spec))
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
    from .gradcheck import check_forward_mode, check_gradients, check_hvp, random_arguments

    module = load(args.spec, out_dir=args.out)
    dims = {d: 3 + k % 3 for k, d in enumerate(module.DIMS)}
    dims.update(_parse_dims(args.dim))
    arguments = random_arguments(module, dims, seed=args.seed, dtype=np.float64)
    results = check_gradients(module, arguments, rtol=args.rtol, seed=args.seed)
    print(f"gradient check of {escape_text(args.spec)} (float64, central differences, dims "
          f"{', '.join(f'{k}={v}' for k, v in dims.items())}):")
    ok = True
    for r in results:
        status = "ok  " if r.ok else "FAIL"
        print(f"  {status} d{module.OBJECTIVE}/d{r.name}: max rel error {r.max_rel_error:.2e} "
              f"(abs {r.max_abs_error:.2e}) at {r.worst_index}: analytic {r.analytic:.10g}, "
              f"numeric {r.numeric:.10g}")
        ok &= r.ok
    fwd = check_forward_mode(module, arguments, seed=args.seed)
    print(f"  {'ok  ' if fwd.ok else 'FAIL'} jvp (forward mode) against reverse mode along "
          f"random tangents: rel error {fwd.rel_error:.2e} (forward {fwd.forward:.10g}, "
          f"reverse {fwd.reverse:.10g})")
    ok &= fwd.ok
    hess = check_hvp(module, arguments, rtol=args.rtol, seed=args.seed)
    if hess.refusal:
        print(f"  n/a  hvp: {hess.refusal}")
    else:
        print(f"  {'ok  ' if hess.ok else 'FAIL'} hvp (forward over reverse) against "
              f"differences of the gradient: max rel error {hess.max_rel_error:.2e}")
    ok &= hess.ok
    print("all gradients match" if ok else "gradient mismatch above tolerance")
    return 0 if ok else 1


def _data_for(args):
    from .datasets import load_bundled, load_file, load_idx_dir

    if args.columns and not args.data:
        raise SystemExit("graphgen: error: --columns selects columns of a --data table")
    if args.data:
        return load_file(args.data, columns=args.columns)
    if args.idx:
        return load_idx_dir(args.idx)
    return load_bundled(args.dataset or "digits", seed=args.seed)


def _run_dir(root: str, spec: str) -> Path:
    """runs/<spec>-<timestamp>/, made unique if two runs start in the same second."""
    import time

    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{Path(spec).stem}-{stamp}"
    path, k = base, 1
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


def cmd_train(args) -> int:
    import json

    from .training import (
        TrainConfig,
        TrainError,
        check_config,
        check_plot_path,
        epoch_line,
        load_module,
        plot_history,
        save_weights,
        train,
    )

    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         seed=args.seed, dims=_parse_dims(args.dim), dtype=args.dtype,
                         hypers=_parse_hypers(args.hyper), val=args.val,
                         patience=args.patience, metric=args.metric, output=args.output)
    check_config(config)  # options first: nothing is compiled or read for a bad --lr
    run_dir = _run_dir(args.runs, args.spec)
    plot = Path(args.plot) if args.plot else run_dir / "loss.png"
    check_plot_path(plot)
    if args.save and Path(args.save).suffix != ".npz":
        raise TrainError(f"--save writes a .npz file; got {args.save!r}")
    data = _data_for(args)
    import time

    start = time.perf_counter()
    module = load_module(args.spec, args.out)
    built = time.perf_counter()
    where = Path(module.__file__).parent
    print(f"training {escape_text(args.spec)} on {escape_text(data.name)}: {data.rows} rows"
          + (f" ({len(next(iter(data.test.values())))} more held out for testing)"
             if data.test else "") + "".join(f"; {escape_text(n)}" for n in data.notes),
          file=sys.stderr)
    quiet = args.quiet
    tty = sys.stderr.isatty()
    result = train(module, data, config, resume=args.resume, progress=not quiet and tty,
                   log=None if quiet else (lambda line: print(line, file=sys.stderr)))
    compile_seconds = built - start + result.compile_seconds
    epochs = sum(1 for h in result.history if h["epoch"] > result.first_epoch)
    print(f"compiled in {compile_seconds:.1f}s (module in {escape_text(where)}); trained {epochs} "
          f"epoch{'s' if epochs != 1 else ''} in {result.seconds:.1f}s", file=sys.stderr)
    run_dir.mkdir(parents=True, exist_ok=True)
    plot_history(result.history, plot, escape_text(f"{Path(args.spec).name} on {data.name}"),
                 result.metric)
    weights = save_weights(run_dir / "weights.npz", module, result.params, result.settings)
    (run_dir / "history.json").write_text(json.dumps(result.history, indent=1) + "\n")
    if args.save:
        weights = save_weights(args.save, module, result.params, result.settings)
    m = result.metrics
    if result.stopped_early:
        print(f"stopped early: no better validation score for {args.patience} epochs",
              file=sys.stderr)
    if "val_objective" in m:
        print(f"best epoch {result.best_epoch} (by validation "
              f"{result.metric or 'objective'}): its weights are kept", file=sys.stderr)
    print("final " + epoch_line({"epoch": 0, **m}, 0).split(": ", 1)[1])
    if "test_objective" in m:
        rows = len(next(iter(data.test.values())))
        score = f"test {result.metric} " + (f"{m['test_' + result.metric]:.2%}"
                                           if result.metric == "accuracy" else
                                           f"{m['test_' + result.metric]:.4g}") \
            if result.metric else f"test objective {m['test_objective']:.4g}"
        print(f"{score} ({rows} held-out examples)")
    print(f"run directory {escape_text(run_dir)} (loss curve {escape_text(plot)}, "
          f"weights {escape_text(weights)})")
    return 0


def cmd_predict(args) -> int:
    import numpy as np

    from .datasets import load_file
    from .training import TrainError, load_module, predict

    out = Path(args.out)
    if out.suffix not in (".npy", ".npz"):
        raise TrainError(f"--out writes .npy (one output) or .npz (all outputs); got {out.name!r}")
    data = load_file(args.data, columns=args.columns, split_target=False)
    module = load_module(args.spec, args.build)
    result = predict(module, args.weights, data, output="*" if out.suffix == ".npz"
                     else args.output)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".npz":
            np.savez(out, **result)
        else:
            np.save(out, result)
    except OSError as e:
        raise TrainError(f"cannot write {out}: {e.strerror or e}") from None
    first = (module.OUTPUTS or [module.OBJECTIVE])[0]
    shapes = result if isinstance(result, dict) else {args.output or first: result}
    print(f"wrote {escape_text(out)}: " + ", ".join(f"{k} {v.shape}" for k, v in shapes.items()))
    return 0


def cmd_examples(args) -> int:
    from .examples import list_examples

    for name, path, about in list_examples():
        print(f"{name:12} {about}")
    return 0


class _Defaults(argparse.ArgumentDefaultsHelpFormatter):
    """Shows `(default: X)` where there is a default the help does not already state."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default is None or action.default is False or \
                action.default == argparse.SUPPRESS or "default" in text:
            return text
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphgen", description="Compile computational-graph specs (.gg) into "
        "Numba-JIT'd forward/backward modules with sympy-derived gradients.")
    parser.add_argument("--version", action="version", version=f"graphgen {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fmt = _Defaults

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

    p = sub.add_parser("train", formatter_class=fmt,
                       help="train a spec by minibatch SGD on a dataset or your own data",
                       description="Train any spec with its generated sgd_step. Inputs bind "
                       "to the data's arrays by name (or features/target by role for a "
                       "bundled dataset or a table without --columns). SPEC may be a path "
                       "or the name of an installed example (graphgen examples).")
    p.add_argument("spec")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--data", metavar="FILE",
                        help=".npz (arrays named after the spec's inputs), .csv, .tsv or .npy")
    source.add_argument("--dataset", metavar="NAME",
                        help="scikit-learn bundled data: digits, iris, diabetes, california "
                        "(default: digits when no --data or --idx)")
    source.add_argument("--idx", metavar="DIR", help="MNIST-format IDX directory")
    p.add_argument("--columns", metavar="SPEC",
                   help="table columns per input, e.g. x=0:4,y=4 (header names allowed); "
                   "default: x = all but the last column, y = the last")
    p.add_argument("--epochs", type=int, default=20, help="passes over the training rows")
    p.add_argument("--batch-size", type=int, default=32, help="rows per SGD step")
    p.add_argument("--lr", type=float, default=0.1, help="learning rate (> 0)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the initialisation, shuffling and splits")
    p.add_argument("--val", type=float, default=0.0, metavar="FRACTION",
                   help="fraction of training rows held out for validation (e.g. 0.2)")
    p.add_argument("--patience", type=int, default=None, metavar="EPOCHS",
                   help="stop after this many epochs without a better validation score")
    p.add_argument("--metric", choices=["accuracy", "mse", "mae"], default=None,
                   help="accuracy for [n, q] scores vs integer labels, else mse")
    p.add_argument("--output", metavar="NAME", default=None,
                   help="the output the metric reads (default: the [n, q] scores for "
                   "labels, else the output shaped like the target)")
    p.add_argument("--dim", action="append", metavar="NAME=SIZE",
                   help="size of a dim the data does not fix (default 64)")
    p.add_argument("--hyper", action="append", metavar="NAME=VALUE",
                   help="override a hyperparameter's default")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float64",
                   help="float type of the data and parameters")
    p.add_argument("--save", metavar="WEIGHTS.npz", help="also save the weights here")
    p.add_argument("--resume", metavar="WEIGHTS.npz",
                   help="start from saved weights (same spec)")
    p.add_argument("--plot", metavar="IMAGE",
                   help="curve plot (.png, .pdf, .svg, ...; default RUN_DIR/loss.png)")
    p.add_argument("--runs", metavar="DIR", default="runs",
                   help="runs are written to DIR/<spec>-<timestamp>/")
    p.add_argument("--out", help="directory of the generated module (default: a per-user "
                   "cache, ~/.cache/graphgen/ or $GRAPHGEN_CACHE_DIR)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or epoch lines")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", formatter_class=fmt,
                       help="outputs of a trained spec for new data")
    p.add_argument("spec")
    p.add_argument("--weights", required=True, metavar="WEIGHTS.npz",
                   help="saved by train --save")
    p.add_argument("--data", required=True, metavar="FILE",
                   help=".npz (arrays named after the inputs), .csv, .tsv or .npy")
    p.add_argument("--columns", metavar="SPEC", help="table columns per input, e.g. x=0:4")
    p.add_argument("--out", required=True, metavar="PRED.npy",
                   help=".npy (one output) or .npz (every output by name)")
    p.add_argument("--output", metavar="NAME", help="which output (default: the first)")
    p.add_argument("--build", metavar="DIR", help="directory of the generated module")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("examples", help="list the example specs that ship with graphgen")
    p.set_defaults(func=cmd_examples)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .datasets import DatasetError
    from .training import Diverged, TrainError

    args = build_parser().parse_args(argv)
    if getattr(args, "spec", None):
        from .examples import resolve_spec

        args.spec = resolve_spec(args.spec)
    try:
        return args.func(args)
    except SpecError as e:
        print(str(e), file=sys.stderr)
        return 2
    except Diverged as e:
        print(f"graphgen: error: {e}", file=sys.stderr)
        return 1
    except (TrainError, DatasetError) as e:
        print(f"graphgen: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `graphgen show ... | head`: the reader left; not an error
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
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
