"""Datasets for `graphgen train`: scikit-learn's bundled digits (no download) and IDX files
(the MNIST / Fashion-MNIST format), returned as float features in [0, 1] and int labels."""
from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    @property
    def classes(self) -> int:
        return int(max(self.y_train.max(), self.y_test.max())) + 1


class DatasetError(Exception):
    """A dataset that cannot be read, with a message for people."""


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1,797 images, bundled with the package)."""
    from sklearn.datasets import load_digits as _load

    data = _load()
    x = (data.data / 16.0).astype(np.float64)
    y = data.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    n_test = int(round(len(y) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return Dataset("digits", x[train], y[train], x[test], y[test])


def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed)."""
    p = Path(path)
    opener = gzip.open if p.suffix == ".gz" else open
    try:
        with opener(p, "rb") as f:
            data = f.read()
    except OSError as e:
        raise DatasetError(f"cannot read {p}: {e}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise DatasetError(f"{p} is not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{p} is truncated (incomplete header)")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(_IDX_TYPES[data[2]])
    count = int(np.prod(shape)) if shape else 1
    if len(data) - header < count * dtype.itemsize:
        raise DatasetError(f"{p} is truncated: expected {count} values of shape {shape}")
    return np.frombuffer(data, dtype=dtype, count=count, offset=header).reshape(shape)


def _find(directory: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                 stem.replace("-idx", ".idx") + ".gz"):
        if (directory / name).is_file():
            return directory / name
    raise DatasetError(f"{directory} has no {stem}[.gz] (expected the MNIST file names)")


def load_idx_dir(directory: str | Path) -> Dataset:
    """MNIST-layout directory: train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-…"""
    d = Path(directory)
    if not d.is_dir():
        raise DatasetError(f"{d} is not a directory")
    xs = [read_idx(_find(d, f"{s}-images-idx3-ubyte")) for s in ("train", "t10k")]
    ys = [read_idx(_find(d, f"{s}-labels-idx1-ubyte")) for s in ("train", "t10k")]
    for x, y in zip(xs, ys):
        if len(x) != len(y):
            raise DatasetError(f"{d}: {len(x)} images but {len(y)} labels")
    scale = 255.0 if xs[0].dtype == np.uint8 else 1.0
    flat = [x.reshape(len(x), -1).astype(np.float64) / scale for x in xs]
    return Dataset(d.name, flat[0], ys[0].astype(np.int64), flat[1], ys[1].astype(np.int64))
