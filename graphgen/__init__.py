"""graphgen: a symbolic-to-code gradient compiler.

A spec (`.gg`) describes a computational graph; graphgen derives its backward pass with
sympy and emits a self-contained Numba module under `generated/`.

    >>> import graphgen
    >>> m = graphgen.load("examples/mlp.gg")
    >>> J, grads = m.value_and_grad(x=X, y=Y, W1=W1, W2=W2)
"""
__version__ = "0.1.0"

from .errors import SpecError  # noqa: E402

__all__ = ["SpecError", "__version__", "compile_spec", "load", "predict", "train"]


def compile_spec(path, out_dir=None, force=False):
    """Compile the spec at `path` into `out_dir` (default `generated/`); returns the path."""
    from .build import compile_spec as _compile

    return _compile(path, out_dir=out_dir, force=force)


def load(path, out_dir=None, force=False):
    """Compile `path` if its module is missing or stale, import it, and return the module."""
    from .build import load as _load

    return _load(path, out_dir=out_dir, force=force)


def train(spec_or_module, data, **options):
    """Train a spec by minibatch SGD; returns a `TrainResult` (params, history, metrics).

    `spec_or_module`: a spec path, an example name ("mlp") or a module from `load`.
    `data`: a dict of arrays named after the spec's inputs, an (x, y) pair, a file (.npz,
    .csv, .tsv, .npy) or a bundled dataset ("digits", "iris", "diabetes", "california").
    Options: epochs=20, batch_size=32, lr=0.1, seed=0, dims={}, dtype="float64",
    hypers={}, val=0.0, patience=None, metric=None, output=None, resume=None (a weights
    file), progress=False, log=None. Raises `graphgen.training.TrainError` for a user
    mistake and `Diverged` when the objective blows up. See docs/training.md.

        >>> r = graphgen.train("mlp", "digits", epochs=5, val=0.2)
        >>> r.metrics["val_accuracy"], r.params["W1"].shape
    """
    from .training import train as _train

    return _train(spec_or_module, data, **options)


def predict(spec_or_module, weights, data, output=None):
    """Outputs of a trained spec for `data`; `weights` a saved .npz or a params dict."""
    from .training import predict as _predict

    return _predict(spec_or_module, weights, data, output=output)
