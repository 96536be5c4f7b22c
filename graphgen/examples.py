"""The example specs that ship with graphgen, found by name (`graphgen train mlp`).

In a source checkout they are the top-level `examples/`; installed, the package
`graphgen_examples` (as the templates are `graphgen_templates`).
"""
from __future__ import annotations

from pathlib import Path


def examples_dir() -> Path | None:
    here = Path(__file__).resolve().parent.parent / "examples"
    if here.is_dir() and any(here.glob("*.gg")):
        return here
    try:
        from importlib import resources

        return Path(str(resources.files("graphgen_examples")))
    except (ImportError, TypeError):
        return None


def list_examples() -> list[tuple[str, Path, str]]:
    """(name, path, first comment line) of each shipped example."""
    d = examples_dir()
    out = []
    for p in sorted(d.glob("*.gg")) if d else []:
        first = next((line.lstrip("# ").strip() for line in p.read_text().splitlines()
                      if line.startswith("#")), "")
        out.append((p.stem, p, first))
    return out


def resolve_spec(spec: str) -> str:
    """A spec path as given if it exists; else an example's path by name (`mlp`, `mlp.gg`);
    else the argument unchanged, so the caller's "no such spec file" error names it."""
    if Path(spec).exists() or "/" in spec or "\\" in spec:
        return spec
    d = examples_dir()
    if d is not None:
        for candidate in (d / spec, d / f"{spec}.gg"):
            if candidate.is_file():
                return str(candidate)
    return spec
