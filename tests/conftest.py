"""Shared fixtures: compiled modules are built once per session (Numba compile time dominates
the suite), in a session temporary directory, through the public `graphgen.load`."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import graphgen

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="session")
def gen_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("generated")


@pytest.fixture(scope="session")
def spec_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("specs")


@pytest.fixture(scope="session")
def build(gen_dir, spec_dir):
    """build(text, name=None) -> imported module, one per distinct spec text per session."""
    cache: dict[str, object] = {}

    def _build(text: str, name: str | None = None):
        key = hashlib.sha256(text.encode()).hexdigest()[:12]
        if key not in cache:
            path = spec_dir / f"{name or 'spec'}_{key}.gg"
            path.write_text(text)
            cache[key] = graphgen.load(path, out_dir=gen_dir)
        return cache[key]

    return _build


@pytest.fixture(scope="session")
def mlp(gen_dir):
    return graphgen.load(EXAMPLES / "mlp.gg", out_dir=gen_dir)
