"""graphgen: a symbolic-to-code gradient compiler.

A spec (`.gg`) describes a computational graph; graphgen derives its backward pass with
sympy and emits a self-contained Numba module under `generated/`.

    >>> import graphgen
    >>> m = graphgen.load("examples/mlp.gg")
    >>> J, grads = m.value_and_grad(x=X, y=Y, W1=W1, W2=W2)
"""
__version__ = "0.1.0"

from .errors import SpecError  # noqa: E402

__all__ = ["SpecError", "__version__", "compile_spec", "load"]


def compile_spec(path, out_dir=None, force=False):
    """Compile the spec at `path` into `out_dir` (default `generated/`); returns the path."""
    from .build import compile_spec as _compile

    return _compile(path, out_dir=out_dir, force=force)


def load(path, out_dir=None, force=False):
    """Compile `path` if its module is missing or stale, import it, and return the module."""
    from .build import load as _load

    return _load(path, out_dir=out_dir, force=force)
