"""Build: write a compiled module atomically under `generated/` and import it.

A module is reused when its header records the same spec hash (spec text + templates +
graphgen version) and its body is intact; otherwise it is regenerated. Writes go to a
temporary file in the same directory and `os.replace` it, so a reader never sees a partial
file, and concurrent builders of the same spec write identical bytes.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import warnings
from pathlib import Path

from .errors import SpecError
from .pipeline import Compiled, compile_source, module_name_for
from .render import is_intact, spec_hash

HASH_PREFIX = "# graphgen-spec-hash: "
DEFAULT_OUT_DIR = "generated"


def read_spec(path: str | os.PathLike) -> str:
    """The spec's text; unreadable or non-UTF-8 files are spec errors, not tracebacks."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"no such spec file: {p}") from None
    except OSError as e:
        raise SpecError(f"cannot read {p}: {e.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        from .errors import Span

        raise SpecError(f"the file is not valid UTF-8 (byte 0x{data[e.start]:02x})",
                        Span(str(path), line, 1, 2, ""), "save the spec as UTF-8") from None


def output_path(spec_path: str | os.PathLike, out_dir: str | os.PathLike | None) -> Path:
    return Path(out_dir or DEFAULT_OUT_DIR) / f"{module_name_for(str(spec_path))}.py"


def recorded_hash(path: Path) -> str | None:
    """The spec hash in a generated file's header, or None if absent/unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            for _ in range(200):
                line = f.readline()
                if not line:
                    break
                if line.startswith(HASH_PREFIX):
                    return line[len(HASH_PREFIX):].strip()
    except (OSError, UnicodeDecodeError):
        return None
    return None


def is_fresh(path: Path, text: str) -> bool:
    """The module exists, was generated from this spec by this graphgen, and is unmodified."""
    if recorded_hash(path) != spec_hash(text):
        return False
    try:
        intact = is_intact(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        intact = False
    if not intact:
        warnings.warn(f"{path} was edited or truncated after graphgen wrote it; regenerating",
                      stacklevel=3)
    return intact


def write_atomic(path: Path, source: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(source)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def compile_file(spec_path: str | os.PathLike) -> Compiled:
    text = read_spec(spec_path)
    return compile_source(text, str(spec_path))


def compile_spec(spec_path, out_dir=None, force: bool = False) -> Path:
    """Compile `spec_path` to `out_dir/NAME.py` unless it is already fresh; returns the path."""
    text = read_spec(spec_path)
    path = output_path(spec_path, out_dir)
    if force or not is_fresh(path, text):
        compiled = compile_source(text, str(spec_path))
        try:
            write_atomic(path, compiled.source)
        except OSError as e:
            raise SpecError(f"cannot write {path}: {e.strerror}", None,
                            "pass out_dir= (or --out) to write somewhere writable") from None
    return path


def _environment_stamp() -> str:
    import numba
    import numpy

    return f"python {sys.version.split()[0]}, numpy {numpy.__version__}, numba {numba.__version__}"


def purge_stale_jit_cache(path: Path) -> None:
    """Drop Numba's cached machine code for `path` if it was compiled under other versions.

    Numba invalidates its cache on a source change or a numba upgrade, but not on a numpy
    upgrade; a stamp file next to the cache covers that (and any other version change).
    """
    cache = path.parent / "__pycache__"
    stamp = cache / f"{path.stem}.graphgen-env"
    current = _environment_stamp()
    try:
        if stamp.read_text() == current:
            return
    except OSError:
        pass
    for old in list(cache.glob(f"{path.stem}.*.nbi")) + list(cache.glob(f"{path.stem}.*.nbc")):
        try:
            old.unlink()
        except OSError:
            pass
    try:
        cache.mkdir(exist_ok=True)
        write_atomic(stamp, current)
    except OSError:
        pass  # an unwritable cache directory: Numba falls back to its user-wide cache


def import_file(path: Path):
    """Import a generated module from its file (so inspect, pdb and Numba's cache work)."""
    purge_stale_jit_cache(path)
    # A stable name: Numba's on-disk cache records it and re-imports it in later processes.
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:10]
    name = f"graphgen_generated_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


_loaded: dict[tuple[str, str], object] = {}


def load(spec_path, out_dir=None, force: bool = False):
    """Compile if stale, import, and return the generated module (cached per process)."""
    path = compile_spec(spec_path, out_dir=out_dir, force=force)
    key = (str(path.resolve()), recorded_hash(path) or "")
    if key not in _loaded:
        _loaded[key] = import_file(path)
    return _loaded[key]


def load_python(source: str, name: str = "graphgen_python"):
    """Execute generated source with Numba's JIT off (`njit` is the identity): plain Python.

    For debugging (pdb steps through the kernels) and for fast tests of many small graphs:
    errors appear as Python tracebacks, and there is no compile time. The JIT path is what
    `load` returns; both run the same source.
    """
    import builtins
    import types

    def njit(*args, **kwargs):
        if args and callable(args[0]):
            return args[0]
        return lambda f: f

    stub = types.ModuleType("numba")
    stub.njit = njit
    stub.prange = range
    stub.config = types.SimpleNamespace(DISABLE_JIT=True, NUMBA_NUM_THREADS=1)
    stub.set_num_threads = lambda count: None  # plain Python runs on one thread
    real_import = builtins.__import__

    def _import(module, *args, **kwargs):
        return stub if module == "numba" else real_import(module, *args, **kwargs)

    namespace = {"__name__": name, "__spec__": None,
                 "__builtins__": dict(vars(builtins), __import__=_import)}
    exec(compile(source, f"<{name}>", "exec"), namespace)
    module = types.ModuleType(name)
    module.__dict__.update(namespace)
    return module
