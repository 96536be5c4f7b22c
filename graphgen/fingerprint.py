"""What identifies a generated module: its name, the hash of what it was made from, and the
hash of its own text. Plain hashing, no compiler: `build.load` decides that a module on disk
is fresh without importing sympy, Jinja or the pipeline (a warm start pays only for numpy,
numba and the module itself).
"""
from __future__ import annotations

import hashlib
import re
from importlib import resources
from pathlib import Path

from . import __version__


def module_name_for(file: str) -> str:
    """A Python identifier for the module generated from `file` (mlp.gg → mlp)."""
    stem = re.sub(r"\.gg$", "", file.replace("\\", "/").rsplit("/", 1)[-1])
    name = re.sub(r"\W", "_", stem, flags=re.ASCII) or "spec"
    if name[0].isdigit():
        name = "_" + name
    return name


def templates_dir() -> Path:
    """The templates: the source checkout's top-level `templates/`, else the packaged copy."""
    here = Path(__file__).resolve().parent.parent / "templates"
    if (here / "module.py.j2").is_file():
        return here
    return Path(str(resources.files("graphgen_templates")))


def template_digest() -> str:
    h = hashlib.sha256()
    for p in sorted(templates_dir().glob("*.j2")):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def compiler_digest() -> str:
    """A digest of graphgen's own source: a development checkout that changes the compiler
    without bumping the version still invalidates what it generated before."""
    h = hashlib.sha256()
    for p in sorted(Path(__file__).resolve().parent.glob("*.py")):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def spec_hash(text: str) -> str:
    """What decides staleness: the spec text, the templates and the compiler (version and
    source)."""
    h = hashlib.sha256()
    h.update(__version__.encode() + b"\0" + template_digest().encode() + b"\0")
    h.update(compiler_digest().encode() + b"\0")
    h.update(text.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


CONTENT_PREFIX = "# graphgen-content-sha256: "
CONTENT_PLACEHOLDER = "0" * 64


def _content_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def seal(text: str) -> str:
    """Fill in the header's content hash: the sha256 of the text with the hash zeroed."""
    return text.replace(CONTENT_PREFIX + CONTENT_PLACEHOLDER,
                        CONTENT_PREFIX + _content_digest(text), 1)


def is_intact(text: str) -> bool:
    """False if a generated module was edited or truncated after graphgen wrote it."""
    start = text.find(CONTENT_PREFIX)
    if start < 0:
        return False
    begin = start + len(CONTENT_PREFIX)
    recorded = text[begin:begin + 64]
    return _content_digest(text[:begin] + CONTENT_PLACEHOLDER + text[begin + 64:]) == recorded
