"""The main job: SGD training of the seed network on digits, and the IDX loader."""
import gzip
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from graphgen.datasets import DatasetError, load_digits, load_idx_dir, read_idx
from graphgen.training import TrainConfig, TrainError, train

ROOT = Path(__file__).resolve().parent.parent


def test_seed_network_reaches_93_percent_on_digits(mlp):
    result = train(mlp, load_digits(seed=0), TrainConfig(epochs=15, dims={"h": 64}),
                   progress=False)
    assert result.test_accuracy >= 0.93
    assert result.losses[-1] < result.losses[0]


def test_train_cli_end_to_end(tmp_path):
    plot = tmp_path / "loss.png"
    proc = subprocess.run(
        [sys.executable, "-m", "graphgen", "train", "examples/mlp.gg", "--epochs", "8",
         "--dim", "h=32", "--plot", str(plot), "--out", str(tmp_path / "gen"),
         "--dtype", "float32"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    accuracy = float(proc.stdout.split("test accuracy ")[1].split("%")[0]) / 100
    assert accuracy >= 0.9
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_dim_is_a_clear_error(mlp):
    with pytest.raises(TrainError, match="no dimension 'k'"):
        train(mlp, load_digits(), TrainConfig(epochs=1, dims={"k": 3}), progress=False)


def _write_idx(path: Path, array: np.ndarray, compress: bool = False) -> None:
    codes = {np.dtype(np.uint8): 0x08}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape)
    data = header + array.tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)


def _fake_mnist(directory: Path, compress: bool) -> None:
    rng = np.random.default_rng(0)
    for split, count in (("train", 50), ("t10k", 20)):
        labels = rng.integers(0, 10, count).astype(np.uint8)
        images = np.zeros((count, 6, 6), np.uint8)
        for i, lab in enumerate(labels):  # a learnable pattern: a bright pixel per class
            images[i].flat[lab] = 255
        _write_idx(directory / f"{split}-images-idx3-ubyte", images, compress)
        _write_idx(directory / f"{split}-labels-idx1-ubyte", labels, compress)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_loader_reads_mnist_layout(tmp_path, compress):
    _fake_mnist(tmp_path, compress)
    data = load_idx_dir(tmp_path)
    assert data.x_train.shape == (50, 36) and data.x_test.shape == (20, 36)
    assert data.x_train.max() == 1.0 and data.y_train.dtype == np.int64
    rows = np.arange(50)
    assert np.all(data.x_train[rows, data.y_train] == 1.0)


def test_idx_loader_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(DatasetError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1]) + struct.pack(">I", 10) + b"\x00")
    with pytest.raises(DatasetError, match="truncated"):
        read_idx(tmp_path / "short")
    with pytest.raises(DatasetError, match="has no train-images"):
        load_idx_dir(tmp_path)


def test_train_on_idx_directory(mlp, tmp_path):
    _fake_mnist(tmp_path, compress=True)
    result = train(mlp, load_idx_dir(tmp_path), TrainConfig(epochs=30, batch_size=10,
                                                            lr=0.5, dims={"h": 16}),
                   progress=False)
    assert result.test_accuracy >= 0.9
