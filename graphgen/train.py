"""`graphgen train`: minibatch SGD of a classification spec with its generated `sgd_step`.

The spec must declare `input x[n, d]`, `input y[n]: int`, and an output of shape [n, q]
(the logits or probabilities) used for accuracy. Dims the data does not fix (hidden sizes)
come from `--dim NAME=SIZE` (default 64). Parameters: 2-D and larger get variance-scaling
initialisation (gain 2 for relu-like specs, 1 otherwise, on the average fan), 1-D get zeros.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .datasets import Dataset


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


@dataclass
class TrainResult:
    losses: list
    test_accuracy: float
    train_accuracy: float
    seconds: float
    params: dict


class TrainError(Exception):
    """The spec or the options do not fit a classification run."""


def _bind_dims(module, data: Dataset, config: TrainConfig) -> dict:
    x_shape = module.INPUTS["x"][0]
    y_shape = module.INPUTS["y"][0]
    dims = {}
    if len(x_shape) != 2 or len(y_shape) != 1 or x_shape[0] != y_shape[0]:
        raise TrainError("train expects 'input x[n, d]' and 'input y[n]: int'")
    n_dim, d_dim = x_shape
    if isinstance(d_dim, int) and d_dim != data.x_train.shape[1]:
        raise TrainError(f"the spec fixes x to {d_dim} features; the data has "
                         f"{data.x_train.shape[1]}")
    if isinstance(d_dim, str):
        dims[d_dim] = data.x_train.shape[1]
    label_range = module.INPUTS["y"][2]
    if isinstance(label_range, str):
        dims[label_range] = data.classes
    elif isinstance(label_range, int) and label_range < data.classes:
        raise TrainError(f"the spec fixes {label_range} classes; the data has {data.classes}")
    for name, size in config.dims.items():
        if name not in module.DIMS:
            raise TrainError(f"--dim {name}: the spec has no dimension {name!r} "
                             f"(it has {', '.join(module.DIMS)})")
        if name in dims and dims[name] != size:
            raise TrainError(f"--dim {name}={size}: the data fixes {name} = {dims[name]}")
        dims[name] = size
    for name in module.DIMS:
        if name not in dims and name != n_dim:
            dims[name] = config.default_dim
    return dims


def init_params(module, dims: dict, seed: int, dtype) -> dict:
    rng = np.random.default_rng(seed)
    relu_like = "relu(" in module.SPEC
    gain = 2.0 if relu_like else 1.0
    params = {}
    for name, (shape, _, _) in module.PARAMS.items():
        sh = tuple(s if isinstance(s, int) else dims[s] for s in shape)
        if len(sh) >= 2:
            fan = (sh[0] + sh[1]) / 2.0
            params[name] = (rng.normal(size=sh) * np.sqrt(gain / fan)).astype(dtype)
        else:
            params[name] = np.zeros(sh, dtype=dtype)
    return params


def _accuracy(module, params, hypers, x, y) -> float:
    out = module.predict(**_predict_args(module, params, hypers, x))
    scores = out[0] if isinstance(out, tuple) else out
    if not isinstance(scores, np.ndarray) or scores.ndim != 2:
        raise TrainError("train needs the spec's first output to be the [n, q] class scores")
    return float(np.mean(np.argmax(scores, axis=1) == y))


def _predict_args(module, params, hypers, x) -> dict:
    import inspect

    wanted = inspect.signature(module.predict).parameters
    args = {k: v for k, v in params.items() if k in wanted}
    args.update({k: v for k, v in hypers.items() if k in wanted})
    if "x" in wanted:
        args["x"] = x
    return args


class Progress:
    """A one-line progress bar on a terminal, a line per epoch otherwise."""

    def __init__(self, total: int, stream=sys.stderr):
        self.total = total
        self.stream = stream
        self.tty = hasattr(stream, "isatty") and stream.isatty()
        self.start = time.perf_counter()

    def update(self, done: int, text: str, end_of_epoch: bool = False) -> None:
        if self.tty:
            width = 30
            filled = int(width * done / max(self.total, 1))
            bar = "#" * filled + "." * (width - filled)
            elapsed = time.perf_counter() - self.start
            self.stream.write(f"\r[{bar}] {done}/{self.total} {text} {elapsed:5.1f}s")
            if done == self.total:
                self.stream.write("\n")
            self.stream.flush()
        elif end_of_epoch:
            self.stream.write(text + "\n")
            self.stream.flush()


def train(module, data: Dataset, config: TrainConfig, progress: bool = True) -> TrainResult:
    dims = _bind_dims(module, data, config)
    dtype = np.dtype(config.dtype)
    params = init_params(module, dims, config.seed, dtype)
    hypers = dict(module.HYPERS)
    for k, v in config.hypers.items():
        if k not in hypers:
            raise TrainError(f"--hyper {k}: the spec has no hyperparameter {k!r}")
        hypers[k] = v
    x = np.ascontiguousarray(data.x_train, dtype=dtype)
    y = data.y_train
    rng = np.random.default_rng(config.seed + 1)
    batches = max(1, int(np.ceil(len(y) / config.batch_size)))
    bar = Progress(config.epochs * batches) if progress else None
    losses = []
    start = time.perf_counter()
    for epoch in range(config.epochs):
        order = rng.permutation(len(y))
        epoch_loss = 0.0
        for b in range(batches):
            idx = order[b * config.batch_size:(b + 1) * config.batch_size]
            loss = module.sgd_step(x=x[idx], y=y[idx], **params, **hypers, lr=config.lr)
            if not np.isfinite(loss):
                raise TrainError(f"the loss became {loss} in epoch {epoch + 1}; "
                                 "try a smaller --lr")
            epoch_loss += loss * len(idx)
            if bar:
                bar.update(epoch * batches + b + 1,
                           f"epoch {epoch + 1}/{config.epochs} loss {loss:.4f}",
                           end_of_epoch=False)
        losses.append(epoch_loss / len(y))
        if bar:
            bar.update((epoch + 1) * batches,
                       f"epoch {epoch + 1}/{config.epochs} loss {losses[-1]:.4f}",
                       end_of_epoch=True)
    seconds = time.perf_counter() - start
    x_test = np.ascontiguousarray(data.x_test, dtype=dtype)
    test_acc = _accuracy(module, params, hypers, x_test, data.y_test)
    train_acc = _accuracy(module, params, hypers, x, y)
    return TrainResult(losses, test_acc, train_acc, seconds, params)


def plot_losses(losses: list, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(range(1, len(losses) + 1), losses, marker="o")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean training objective")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
