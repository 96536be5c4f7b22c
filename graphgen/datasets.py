"""Data for `graphgen train` and `predict`: named arrays from files or bundled datasets.

Everything becomes a `Data`: training arrays by name (and, for bundled datasets and IDX
directories, a held-out test split). Arrays from `.npz` keep their names and bind to the
spec's inputs by name; a table (`.csv`, `.tsv`, `.npy`) is cut into named arrays by
`--columns x=0:4,y=4`, or, without it, into features `x` (every column but the last) and a
target `y` (the last column), which may bind by role. Nothing is downloaded, ever.
"""
from __future__ import annotations

import csv
import gzip
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_IDX_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
BUNDLED = ("digits", "iris", "diabetes", "california")
TABLE_SUFFIXES = (".csv", ".tsv", ".npy")


@dataclass
class Data:
    """Named training arrays, an optional test split, and how the names may be bound.

    `by_role`: the names are the generic `x` (features) and `y` (target), so a spec whose
    inputs are named otherwise (`images`, `labels`) may still take them by role.
    """

    name: str
    arrays: dict[str, np.ndarray]
    test: dict[str, np.ndarray] | None = None
    by_role: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(next(iter(self.arrays.values())))

    # The names of the earlier, classification-only interface (tests and notebooks use them).
    @property
    def x_train(self) -> np.ndarray:
        return self.arrays["x"]

    @property
    def y_train(self) -> np.ndarray:
        return self.arrays["y"]

    @property
    def x_test(self) -> np.ndarray:
        return self.test["x"]

    @property
    def y_test(self) -> np.ndarray:
        return self.test["y"]


class DatasetError(Exception):
    """Data that cannot be read or used, with a message for people."""


def describe(arrays: dict[str, np.ndarray]) -> str:
    """`x (1437, 64) float64, y (1437,) int64`: what a file holds, for error messages."""
    return ", ".join(f"{k} {tuple(v.shape)} {v.dtype}" for k, v in arrays.items()) or "nothing"


def _split(name: str, x, y, test_fraction: float, seed: int, notes=()) -> Data:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    n_test = int(round(len(y) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    return Data(name, {"x": x[train], "y": y[train]}, {"x": x[test], "y": y[test]},
                by_role=True, notes=list(notes))


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> Data:
    """scikit-learn's 8x8 handwritten digits (1,797 images, bundled with the package)."""
    from sklearn.datasets import load_digits as _load

    data = _load()
    return _split("digits", (data.data / 16.0).astype(np.float64),
                  data.target.astype(np.int64), test_fraction, seed)


def _standardize(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean, std = a.mean(axis=0), a.std(axis=0)
    return (a - mean) / np.where(std > 0, std, 1.0), mean, std


def load_bundled(name: str, test_fraction: float = 0.2, seed: int = 0) -> Data:
    """A scikit-learn dataset by name: digits, iris (classification), diabetes, california
    (regression; features and target standardized, so that the default learning rate fits).
    """
    if name == "digits":
        return load_digits(test_fraction, seed)
    import sklearn.datasets as sk

    if name == "iris":
        data = sk.load_iris()
        x, _, _ = _standardize(data.data.astype(np.float64))
        return _split("iris", x, data.target.astype(np.int64), test_fraction, seed,
                      ["features standardized"])
    if name == "diabetes":
        data = sk.load_diabetes()
        x = data.data.astype(np.float64)
    elif name == "california":
        try:
            data = sk.fetch_california_housing(download_if_missing=False)
        except OSError:
            raise DatasetError(
                "the california housing data is not in scikit-learn's cache "
                f"({sk.get_data_home()}), and graphgen never downloads; fetch it once with "
                "`python -c \"import sklearn.datasets as d; d.fetch_california_housing()\"` "
                "or pass your own file with --data") from None
        x, _, _ = _standardize(data.data.astype(np.float64))
    else:
        raise DatasetError(f"unknown dataset {name!r}; the bundled ones are "
                           f"{', '.join(BUNDLED)} (or pass --data FILE / --idx DIR)")
    y, mean, std = _standardize(data.target.astype(np.float64))
    return _split(name, x, y, test_fraction, seed,
                  [f"target standardized (mean {mean:.4g}, std {std:.4g})"])


# ------------------------------------------------------------------------------ files
def parse_columns(text: str) -> list[tuple[str, str]]:
    """`x=0:4,y=4` → [("x", "0:4"), ("y", "4")]; the column parts are resolved later."""
    out = []
    for item in text.split(","):
        name, eq, cols = item.strip().partition("=")
        if not eq or not name.isidentifier() or not cols.strip():
            raise DatasetError(f"--columns expects NAME=COLUMNS items separated by commas "
                               f"(e.g. x=0:4,y=4), got {item.strip()!r}")
        out.append((name, cols.strip()))
    return out


def _column_index(token: str, header: list[str] | None, width: int, what: str) -> int:
    token = token.strip()
    if token.lstrip("-").isdigit():
        k = int(token)
        if not -width <= k < width:
            raise DatasetError(f"--columns {what}: column {k} is out of range (the table has "
                               f"{width} columns, 0 to {width - 1})")
        return k % width
    if header and token in header:
        return header.index(token)
    known = f"; the header names are {', '.join(header)}" if header else \
        " (the table has no header row; use column numbers)"
    raise DatasetError(f"--columns {what}: no column {token!r}{known}")


def select_columns(matrix: np.ndarray, columns: str, header: list[str] | None) -> dict:
    """Cut a table into named arrays: `k` one column (1-D), `a:b` columns a..b-1 (2-D);
    header names may stand for numbers, and `first:last` by name includes `last`."""
    width = matrix.shape[1]
    arrays = {}
    for name, cols in parse_columns(columns):
        what = f"{name}={cols}"
        if ":" in cols:
            start, _, stop = (t.strip() for t in cols.partition(":"))
            lo = _column_index(start, header, width, what) if start else 0
            if not stop:
                hi = width
            elif stop.lstrip("-").isdigit():  # a number: exclusive, as in Python
                hi = min(int(stop) % width if int(stop) < 0 else int(stop), width)
            else:  # a header name: inclusive
                hi = _column_index(stop, header, width, what) + 1
            if hi <= lo:
                raise DatasetError(f"--columns {what}: selects no columns")
            arrays[name] = np.ascontiguousarray(matrix[:, lo:hi])
        else:
            arrays[name] = np.ascontiguousarray(matrix[:, _column_index(cols, header, width,
                                                                       what)])
    return arrays


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_table(path: Path) -> tuple[np.ndarray, list[str] | None]:
    """A .csv/.tsv (optional header row) or 2-D .npy as a float matrix, and the header."""
    if path.suffix == ".npy":
        try:
            m = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise DatasetError(f"cannot read {path} as a NumPy .npy file: {e}") from None
        if m.ndim == 1:
            m = m[:, None]
        if m.ndim != 2:
            raise DatasetError(f"{path} holds an array of shape {m.shape}; a table needs rows "
                               "and columns (save several arrays in an .npz instead)")
        return m, None
    delimiter = "\t" if path.suffix == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.reader(f, delimiter=delimiter) if any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read {path}: {e}") from None
    if not rows:
        raise DatasetError(f"{path} is empty")
    header = None
    if not all(_is_number(c) for c in rows[0]):
        header, rows = [c.strip() for c in rows[0]], rows[1:]
    if not rows:
        raise DatasetError(f"{path} has a header row but no data")
    width = len(rows[0])
    values = np.empty((len(rows), width))
    for r, row in enumerate(rows):
        line = r + (2 if header else 1)
        if len(row) != width:
            raise DatasetError(f"{path}:{line}: {len(row)} fields, but the first row has "
                               f"{width}")
        for c, cell in enumerate(row):
            try:
                values[r, c] = float(cell)
            except ValueError:
                raise DatasetError(f"{path}:{line}: column {c} holds {cell.strip()!r}, not a "
                                   "number (encode categories as integers)") from None
    return values, header


def load_file(path, columns: str | None = None, split_target: bool = True) -> Data:
    """Named arrays from `.npz`, or a table from `.csv`/`.tsv`/`.npy` (see module docs).

    `split_target=False` (prediction) takes a whole table as the features `x`.
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"no such data file: {p}")
    suffix = p.suffix.lower()
    if suffix == ".npz":
        if columns:
            raise DatasetError("--columns applies to tables (.csv, .tsv, .npy); the arrays "
                               f"of {p} are already named")
        try:
            with np.load(p, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise DatasetError(f"cannot read {p} as a NumPy .npz archive: {e}") from None
        if not arrays:
            raise DatasetError(f"{p} holds no arrays")
        return Data(p.name, arrays)
    if suffix not in TABLE_SUFFIXES:
        raise DatasetError(f"unknown data format {p.suffix or p.name!r}: use .npz (named "
                           "arrays), .csv, .tsv or .npy")
    matrix, header = read_table(p)
    if columns:
        return Data(p.name, select_columns(matrix, columns, header))
    if not split_target:
        return Data(p.name, {"x": matrix}, by_role=True)
    if matrix.shape[1] < 2:
        raise DatasetError(f"{p} has one column; training needs features and a target "
                           "(pick them with --columns x=0:4,y=4)")
    return Data(p.name, {"x": np.ascontiguousarray(matrix[:, :-1]),
                         "y": np.ascontiguousarray(matrix[:, -1])}, by_role=True,
                notes=["features x: every column but the last; target y: the last column"])


# ------------------------------------------------------------------------------ IDX files
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


def load_idx_dir(directory: str | Path) -> Data:
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
    return Data(d.name, {"x": flat[0], "y": ys[0].astype(np.int64)},
                {"x": flat[1], "y": ys[1].astype(np.int64)}, by_role=True)
