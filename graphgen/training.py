"""Training any spec on any data with its generated `sgd_step`; saved weights; prediction.

`train(spec_or_module, data, **options)` is the public entry (`graphgen.train`); the CLI is a
thin layer over it. The run is planned before the first step (`binding.plan_run`), so every
user mistake (a data array that fits no input, `lr <= 0`, an output that is not a score
matrix) is a `TrainError` with a message, never a traceback:

* inputs bind to data arrays by name (or, for a bundled dataset or a table without
  `--columns`, features and target by role: the input `predict` reads, and the one it does not);
* dims come from the data, then `dims=` (`--dim`), then `default_dim`;
* the task follows from the spec: classification when the chosen output is `[n, q]` scores
  against integer labels (metric: accuracy), regression otherwise (metric: mse);
* divergence (a non-finite objective, or one a thousand times its starting value) stops the
  run with `Diverged`, naming the learning rate.

Parameters: 2-D and larger get variance-scaling initialisation (gain 2 for relu-like specs,
1 otherwise, on the average fan), smaller ones zeros.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .binding import (
    Diverged,
    TrainError,
    accepted,
    bind_names,
    coerce,
    plan_run,
    shape_text,
)
from .datasets import Data, DatasetError, load_bundled, load_file

DIVERGENCE_FACTOR = 1e3  # an objective this many times its starting value has diverged
WEIGHTS_FORMAT = "graphgen-weights-1"


@dataclass
class TrainConfig:
    epochs: int = 20
    batch_size: int = 32
    lr: float = 0.1
    seed: int = 0
    dims: dict = field(default_factory=dict)
    dtype: str = "float64"
    hypers: dict = field(default_factory=dict)
    default_dim: int = 64
    val: float = 0.0  # fraction of the training rows held out for validation
    patience: int | None = None  # early stopping: epochs without a better validation score
    metric: str | None = None  # accuracy | mse | mae; None: from the task
    output: str | None = None  # which output the metric reads; None: from the task


METRICS = ("accuracy", "mse", "mae")
_OPTIONS = set(TrainConfig.__dataclass_fields__)


@dataclass
class TrainResult:
    """What a run produced: the trained `params`, the per-epoch `history` (dicts of
    `train_objective`, `train_<metric>`, `val_…`), and final `metrics` (train/val/test)."""

    params: dict
    history: list
    metrics: dict
    task: str
    metric: str | None
    output: str | None
    best_epoch: int
    first_epoch: int  # epochs done before this run (resumed from saved weights)
    stopped_early: bool
    seconds: float
    compile_seconds: float
    dims: dict
    hypers: dict
    settings: dict
    module: object = field(repr=False, default=None)

    @property
    def losses(self) -> list:
        return [h["train_objective"] for h in self.history]

    @property
    def test_accuracy(self) -> float | None:
        return self.metrics.get("test_accuracy")

    @property
    def train_accuracy(self) -> float | None:
        return self.metrics.get("train_accuracy")

    def predict(self, data, output: str | None = None):
        """The trained model's outputs for `data` (arrays by name, a file, or an array)."""
        return predict(self.module, self.params, data, dims=self.dims, hypers=self.hypers,
                       output=output)

    def save(self, path) -> Path:
        return save_weights(path, self.module, self.params, self.settings)


# ---------------------------------------------------------------------------- options
def check_config(config: TrainConfig) -> None:
    """Refuse impossible options before anything is compiled or trained."""
    def number(name, value, kind):
        if isinstance(value, bool) or not isinstance(value, kind):
            raise TrainError(f"{name} must be a number, got {value!r}")

    number("lr", config.lr, (int, float, np.integer, np.floating))
    if not math.isfinite(config.lr) or config.lr <= 0:
        raise TrainError(f"the learning rate must be positive and finite, got lr = "
                         f"{config.lr:g} (a negative rate climbs the objective)")
    for name in ("epochs", "batch_size"):
        value = getattr(config, name)
        number(name, value, (int, np.integer))
        if value < 1:
            raise TrainError(f"{name} must be at least 1, got {value}")
    if not 0 <= config.val < 1:
        raise TrainError(f"val is the fraction of rows held out for validation, in [0, 1); "
                         f"got {config.val}")
    if config.patience is not None:
        if config.patience < 1:
            raise TrainError(f"patience must be at least 1 epoch, got {config.patience}")
        if not config.val:
            raise TrainError("early stopping (patience) watches the validation score: also "
                             "hold out a validation split (--val 0.2; val=0.2 in Python)")
    if config.metric is not None and config.metric not in METRICS:
        raise TrainError(f"unknown metric {config.metric!r}; choose one of "
                         f"{', '.join(METRICS)}")
    if config.dtype not in ("float32", "float64"):
        raise TrainError(f"dtype must be float32 or float64, got {config.dtype!r}")
    if config.default_dim < 1:
        raise TrainError(f"default_dim must be at least 1, got {config.default_dim}")


# ---------------------------------------------------------------------------- specs
def load_module(spec_or_module, out_dir=None):
    """A generated module from a module, or a spec path / installed example name."""
    if hasattr(spec_or_module, "sgd_step") and hasattr(spec_or_module, "PARAMS"):
        return spec_or_module
    from .build import load
    from .examples import resolve_spec

    path = resolve_spec(str(spec_or_module))
    return load(path, out_dir=out_dir)  # by default, a directory of its own in the user cache


def spec_fingerprint(module) -> str:
    """A hash of the spec without comments and blank lines: what saved weights belong to."""
    lines = [line.split("#", 1)[0].strip() for line in module.SPEC.splitlines()]
    text = "\n".join(" ".join(line.split()) for line in lines if line)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------- running
def init_params(module, dims: dict, seed: int, dtype) -> dict:
    rng = np.random.default_rng(seed)
    gain = 2.0 if "relu(" in module.SPEC else 1.0
    params = {}
    for name, (shape, _, _) in module.PARAMS.items():
        sh = tuple(s if isinstance(s, int) else dims[s] for s in shape)
        if len(sh) >= 2:
            fan = (sh[0] + sh[1]) / 2.0
            params[name] = (rng.normal(size=sh) * np.sqrt(gain / fan)).astype(dtype)
        else:
            params[name] = np.zeros(sh, dtype=dtype)
    return params


def _outputs(module, params, hypers, arrays, chunk=4096) -> dict:
    """{output: array} from predict, in chunks of rows (memory stays bounded)."""
    takes = accepted(module.predict)
    rows = len(next(iter(arrays.values())))
    parts: dict = {}
    for start in range(0, rows, chunk):
        args = {k: v[start:start + chunk] for k, v in arrays.items() if k in takes}
        args.update({k: v for k, v in params.items() if k in takes})
        args.update({k: v for k, v in hypers.items() if k in takes})
        out = module.predict(**args)
        outs = out if isinstance(out, tuple) else (out,)
        names = module.OUTPUTS or [module.OBJECTIVE]
        for name, value in zip(names, outs):
            parts.setdefault(name, []).append(np.asarray(value))
    return {k: (np.concatenate(v) if v[0].ndim else np.asarray(v[0])) for k, v in parts.items()}


def score(metric: str, out: np.ndarray, target: np.ndarray) -> float:
    if metric == "accuracy":
        truth = target if target.ndim == 1 else np.argmax(target, axis=1)
        return float(np.mean(np.argmax(out, axis=1) == truth))
    diff = out.reshape(len(out), -1) - target.reshape(len(target), -1)
    return float(np.mean(diff ** 2) if metric == "mse" else np.mean(np.abs(diff)))


def _objective(module, params, hypers, arrays, batch_size) -> float:
    """The mean objective over minibatches of the training size (comparable with training)."""
    rows = len(next(iter(arrays.values())))
    total = 0.0
    for start in range(0, rows, batch_size):
        batch = {k: v[start:start + batch_size] for k, v in arrays.items()}
        value = module.forward(**batch, **params, **hypers)[module.OBJECTIVE]
        total += float(value) * len(next(iter(batch.values())))
    return total / rows


def _evaluate(module, plan, params, hypers, arrays, batch_size, prefix) -> dict:
    out = {f"{prefix}_objective": _objective(module, params, hypers, arrays, batch_size)}
    if plan.metric:
        pred = _outputs(module, params, hypers, arrays)[plan.output]
        out[f"{prefix}_{plan.metric}"] = score(plan.metric, pred, arrays[plan.target])
    return out


def _warm_up(module, params, hypers, arrays, lr) -> None:
    """Compile (or load from Numba's cache) every kernel training calls, on two rows and a
    copy of the parameters, so the compile time is reported apart from the training time."""
    few = {k: v[:2] for k, v in arrays.items()}
    scratch = {k: v.copy() for k, v in params.items()}
    module.sgd_step(**few, **scratch, **hypers, lr=lr)
    module.forward(**few, **params, **hypers)
    _outputs(module, params, hypers, few)


def _split_val(arrays: dict, fraction: float, seed: int) -> tuple[dict, dict | None]:
    if not fraction:
        return arrays, None
    rows = len(next(iter(arrays.values())))
    n_val = int(round(rows * fraction))
    if n_val < 1 or n_val >= rows:
        raise TrainError(f"val = {fraction} of {rows} rows leaves {n_val} for validation and "
                         f"{rows - n_val} for training; both need at least one")
    order = np.random.default_rng(seed + 2).permutation(rows)
    val, train = np.sort(order[:n_val]), np.sort(order[n_val:])
    return ({k: v[train] for k, v in arrays.items()}, {k: v[val] for k, v in arrays.items()})


def _better(metric: str | None, new: float, old: float | None) -> bool:
    if old is None:
        return True
    return new > old if metric == "accuracy" else new < old


def _config_from(config, options) -> TrainConfig:
    unknown = set(options) - _OPTIONS
    if unknown:
        import difflib

        name = sorted(unknown)[0]
        close = difflib.get_close_matches(name, sorted(_OPTIONS - set(options)), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else \
            f"; the options are {', '.join(sorted(_OPTIONS))}"
        raise TypeError(f"train() got an unexpected option {name!r}{hint}")
    if config is None:
        return TrainConfig(**options)
    return TrainConfig(**{**asdict(config), **options})


def as_data(data, seed: int = 0) -> Data:
    """Accept a `Data`, a dict of arrays, an (x, y) pair, a file path or a dataset name."""
    if isinstance(data, Data):
        return data
    if isinstance(data, dict):
        return Data("arrays", {k: np.asarray(v) for k, v in data.items()})
    if isinstance(data, tuple) and len(data) == 2:
        return Data("arrays", {"x": np.asarray(data[0]), "y": np.asarray(data[1])},
                    by_role=True)
    if isinstance(data, np.ndarray):
        return Data("array", {"x": data}, by_role=True)
    if isinstance(data, (str, os.PathLike)):
        text = str(data)
        if not Path(text).exists() and "." not in Path(text).name:
            return load_bundled(text, seed=seed)
        return load_file(text)
    raise TrainError(f"data must be a dict of arrays, an (x, y) pair, a file path or a "
                     f"dataset name, got {type(data).__name__}")


def train(spec_or_module, data, config: TrainConfig | None = None, *, progress=False,
          resume=None, out_dir=None, log=None, **options) -> TrainResult:
    """Train a spec's parameters by minibatch SGD with its generated `sgd_step`.

    `spec_or_module`: a spec path, an installed example name ("mlp") or a loaded module.
    `data`: a dict of arrays named after the spec's inputs, an (x, y) pair, a file (.npz,
    .csv, .tsv, .npy) or a bundled dataset name ("digits", "iris", "diabetes").
    Options (keywords or a `TrainConfig`): epochs, batch_size, lr, seed, dims, dtype, hypers,
    default_dim, val, patience, metric, output. `resume`: a weights file from `save_weights`.
    `progress`: a tqdm bar per epoch; `log(line)` receives one line per epoch.
    Returns a `TrainResult` (params, history, metrics, ...). Raises `TrainError` for a user
    mistake, `Diverged` when the objective blows up.
    """
    config = _config_from(config, options)
    check_config(config)
    started = time.perf_counter()
    try:
        module = load_module(spec_or_module, out_dir)
        data = as_data(data, config.seed)
    except DatasetError as e:
        raise TrainError(str(e)) from None
    saved = load_weights(resume, module) if resume is not None else None
    plan, arrays, test = plan_run(module, data, config,
                                  saved_dims=saved["dims"] if saved else None)
    dtype = np.dtype(config.dtype)
    hypers = {**module.HYPERS, **(saved["settings"].get("hypers", {}) if saved else {})}
    for k, v in config.hypers.items():
        if k not in module.HYPERS:
            raise TrainError(f"hyper {k!r}: the spec has no hyperparameter {k!r} (it has "
                             f"{', '.join(module.HYPERS) or 'none'})")
        hypers[k] = float(v)
    hypers = {k: float(v) for k, v in hypers.items()}
    if saved:
        params = {k: np.array(v, dtype=dtype, order="C") for k, v in saved["params"].items()}
    else:
        params = init_params(module, plan.dims, config.seed, dtype)
    train_arrays, val_arrays = _split_val(arrays, config.val, config.seed)
    lr = float(config.lr)
    _warm_up(module, params, hypers, train_arrays, lr)
    compile_seconds = time.perf_counter() - started

    rows = len(next(iter(train_arrays.values())))
    batches = max(1, math.ceil(rows / config.batch_size))
    rng = np.random.default_rng(config.seed + 1)
    first_epoch = saved["settings"].get("epochs_done", 0) if saved else 0
    history: list = list(saved["settings"].get("history", [])) if saved else []
    monitor = f"val_{plan.metric}" if plan.metric else "val_objective"
    best, best_epoch, best_params, stale, stopped = None, first_epoch, None, 0, False
    reference = None
    t0 = time.perf_counter()
    for epoch in range(first_epoch + 1, first_epoch + config.epochs + 1):
        order = rng.permutation(rows)
        total = 0.0
        bar = _bar(batches, epoch, first_epoch + config.epochs) if progress else None
        for b in range(batches):
            idx = order[b * config.batch_size:(b + 1) * config.batch_size]
            batch = {k: v[idx] for k, v in train_arrays.items()}
            loss = module.sgd_step(**batch, **params, **hypers, lr=lr)
            reference = abs(loss) if reference is None else reference
            if not math.isfinite(loss) or abs(loss) > DIVERGENCE_FACTOR * max(reference, 1e-12):
                if bar:
                    bar.close()
                raise Diverged(
                    f"training diverged in epoch {epoch}, batch {b + 1}: the objective "
                    f"{module.OBJECTIVE} reached {loss:.4g} (from {reference:.4g} at the first "
                    f"step). The learning rate lr = {lr:g} is probably too large; try "
                    f"{lr / 10:g}")
            total += loss * len(idx)
            if bar:
                bar.update(1)
                if b % 16 == 0:
                    bar.set_postfix_str(f"{module.OBJECTIVE} {loss:.4f}", refresh=False)
        row = {"epoch": epoch, "train_objective": total / rows}
        if plan.metric:
            pred = _outputs(module, params, hypers, train_arrays)[plan.output]
            row[f"train_{plan.metric}"] = score(plan.metric, pred, train_arrays[plan.target])
        if val_arrays is not None:
            row.update(_evaluate(module, plan, params, hypers, val_arrays, config.batch_size,
                                 "val"))
        row["seconds"] = time.perf_counter() - t0
        history.append(row)
        line = epoch_line(row, first_epoch + config.epochs)
        if bar:
            bar.set_postfix_str(line.split(": ", 1)[1], refresh=True)
            bar.close()
        elif log:
            log(line)
        if val_arrays is not None:
            if _better(plan.metric if plan.metric else None, row[monitor], best):
                best, best_epoch, stale = row[monitor], epoch, 0
                best_params = {k: v.copy() for k, v in params.items()}
            else:
                stale += 1
                if config.patience and stale >= config.patience:
                    stopped = True
                    break
        else:
            best_epoch = epoch
    seconds = time.perf_counter() - t0
    if best_params is not None:
        for k in params:
            params[k][...] = best_params[k]
    metrics = _evaluate(module, plan, params, hypers, train_arrays, config.batch_size, "train")
    if val_arrays is not None:
        metrics.update(_evaluate(module, plan, params, hypers, val_arrays, config.batch_size,
                                 "val"))
    if test is not None:
        metrics.update(_evaluate(module, plan, params, hypers, test, config.batch_size, "test"))
    settings = {**asdict(config), "dims": plan.dims, "hypers": hypers,
                "epochs_done": history[-1]["epoch"] if history else first_epoch,
                "best_epoch": best_epoch, "history": history, "data": data.name,
                "metric": plan.metric, "output": plan.output}
    return TrainResult(params, history, metrics, plan.task, plan.metric, plan.output,
                       best_epoch, first_epoch, stopped, seconds, compile_seconds,
                       plan.dims, hypers, settings, module)


def epoch_line(row: dict, total: int) -> str:
    parts = []
    for k, v in row.items():
        if k in ("epoch", "seconds"):
            continue
        text = f"{v:.2%}" if k.endswith("accuracy") else f"{v:.4g}"
        parts.append(f"{k.replace('_objective', ' objective').replace('_', ' ')} {text}")
    return f"epoch {row['epoch']}/{total}: " + ", ".join(parts)


def _bar(batches: int, epoch: int, total: int):
    from tqdm.auto import tqdm

    return tqdm(total=batches, desc=f"epoch {epoch}/{total}", unit="batch", leave=True,
                file=sys.stderr, dynamic_ncols=True, mininterval=0.2)


# ---------------------------------------------------------------------------- weights
def save_weights(path, module, params: dict, settings: dict | None = None) -> Path:
    """Parameters plus the spec's fingerprint and the run's settings, in one .npz."""
    path = Path(path)
    if path.suffix != ".npz":
        raise TrainError(f"weights are saved as .npz; got {path.name!r}")
    meta = {"format": WEIGHTS_FORMAT, "spec_hash": spec_fingerprint(module),
            "spec_name": Path(getattr(module, "__file__", None) or "spec").stem,
            "spec": module.SPEC, "settings": _jsonable(settings or {}),
            "dims": _jsonable((settings or {}).get("dims", {}))}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            np.savez(f, __graphgen__=np.array(json.dumps(meta)),
                     **{f"param.{k}": v for k, v in params.items()})
    except OSError as e:
        raise TrainError(f"cannot write weights to {path}: {e.strerror or e}") from None
    return path


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return value


def load_weights(path, module) -> dict:
    """{"params", "dims", "settings"} from a weights file, checked against `module`'s spec."""
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            files = dict(z.items())
    except FileNotFoundError:
        raise TrainError(f"no such weights file: {p}") from None
    except (OSError, ValueError) as e:
        raise TrainError(f"cannot read {p} as graphgen weights (.npz): {e}") from None
    if "__graphgen__" not in files:
        raise TrainError(f"{p} is not a graphgen weights file (save one with --save / "
                         "save_weights)")
    meta = json.loads(str(files["__graphgen__"]))
    if meta.get("spec_hash") != spec_fingerprint(module):
        saved = ", ".join(f"{k[6:]} {list(v.shape)}" for k, v in files.items()
                          if k.startswith("param."))
        here = ", ".join(f"{k}{shape_text(s)}" for k, (s, _, _) in module.PARAMS.items())
        raise TrainError(f"{p} holds weights of another spec: it was saved from "
                         f"{meta.get('spec_name', '?')!r} (params {saved}), this spec "
                         f"declares {here}; use the spec the weights were trained with")
    params = {k[6:]: v for k, v in files.items() if k.startswith("param.")}
    missing = set(module.PARAMS) - set(params)
    if missing:
        raise TrainError(f"{p} lacks params {', '.join(sorted(missing))}")
    return {"params": params, "dims": meta.get("dims", {}), "settings": meta.get("settings", {})}


def predict(spec_or_module, weights, data, dims: dict | None = None,
            hypers: dict | None = None, output: str | None = None, out_dir=None):
    """Outputs of a trained spec for new data: `weights` a file or a params dict.

    Returns the chosen output's array (`output=`, default the first), or all of them as a
    dict with `output="*"`.
    """
    module = load_module(spec_or_module, out_dir)
    if isinstance(weights, (str, os.PathLike)):
        saved = load_weights(weights, module)
        params, dims = saved["params"], {**saved["dims"], **(dims or {})}
        hypers = {**saved["settings"].get("hypers", {}), **(hypers or {})}
    else:
        params = dict(weights)
    if isinstance(data, (str, os.PathLike)) and Path(data).suffix.lower() != ".npz":
        try:
            data = load_file(data, split_target=False)
        except DatasetError as e:
            raise TrainError(str(e)) from None
    try:
        data = as_data(data)
    except DatasetError as e:
        raise TrainError(str(e)) from None
    takes = accepted(module.predict)
    needed = [n for n in module.INPUTS if n in takes]
    dtype = next(iter(params.values())).dtype if params else np.float64
    config = TrainConfig(dtype=str(np.dtype(dtype)) if np.dtype(dtype).kind == "f"
                         else "float64")
    mapping = bind_names(module, data, needed)
    arrays = {n: coerce(n, data.arrays[src], module.INPUTS[n], np.dtype(config.dtype),
                         f"{data.name}'s array {src!r}") for n, src in mapping.items()}
    params = {k: np.array(v, dtype=config.dtype, order="C") for k, v in params.items()}
    hyper_values = {k: float(v) for k, v in {**module.HYPERS, **(hypers or {})}.items()}
    outs = _outputs(module, params, hyper_values, arrays)
    if output == "*":
        return outs
    if output is not None and output not in outs:
        raise TrainError(f"output {output!r}: the spec's outputs are {', '.join(outs)}")
    return outs[output or next(iter(outs))]


# ---------------------------------------------------------------------------- plots
def check_plot_path(path) -> Path:
    """Refuse a plot path matplotlib cannot write, before training starts."""
    p = Path(path)
    from matplotlib.figure import Figure

    formats = Figure().canvas.get_supported_filetypes()
    suffix = p.suffix.lower().lstrip(".")
    if suffix not in formats:
        raise TrainError(f"cannot plot to {p.name!r}: unknown image format "
                         f"{p.suffix or '(none)'!r}; use one of "
                         f"{', '.join('.' + f for f in sorted(formats))}")
    existing = p.absolute().parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent  # nothing is created before training: check the ancestor
    try:
        if not existing.is_dir():
            raise NotADirectoryError(f"{existing} is not a directory")
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".graphgen-probe-"):
            pass
    except OSError as e:
        raise TrainError(f"cannot write the plot {p}: {e.strerror or e} in {existing}") \
            from None
    return p


def plot_history(history: list, path, title: str, metric: str | None = None) -> Path:
    """Training and validation curves (objective, and the metric if any) by epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels = [("objective", "mean objective")] + ([(metric, metric)] if metric else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), dpi=100,
                             squeeze=False)
    epochs = [h["epoch"] for h in history]
    for ax, (key, label) in zip(axes[0], panels):
        for split, style in (("train", "o-"), ("val", "s--")):
            values = [h.get(f"{split}_{key}") for h in history]
            if any(v is not None for v in values):
                ax.plot(epochs, values, style, label=split if split == "train" else
                        "validation", markersize=3)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path)
    except OSError as e:
        raise TrainError(f"cannot write the plot {path}: {e.strerror or e}") from None
    finally:
        plt.close(fig)
    return path


def plot_losses(losses: list, path, title: str) -> Path:
    """The training objective by epoch (the earlier single-curve plot)."""
    return plot_history([{"epoch": k + 1, "train_objective": v}
                         for k, v in enumerate(losses)], path, title)
