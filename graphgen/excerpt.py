"""Source excerpts: the code a generated module carries, cut from graphgen's own modules.

A generated module imports nothing from graphgen, so the elementary functions (`vecmath`)
and the BLAS call (`blas`) it uses are copied into it. The copy is cut out of the very file
that the tests import, between two marker comments, so the tested code is, byte for byte,
the emitted code; `source(used)` takes the top-level statements that define the names in
`used` and, transitively, everything they refer to, in file order.
"""
from __future__ import annotations

import ast
import functools
from pathlib import Path

BEGIN = "# --- emitted from here on"
END = "# --- emitted up to here"


@functools.cache
def definitions(path: str) -> tuple[tuple[frozenset, str, frozenset], ...]:
    """(names defined, source text, names referred to, whether it is a constant) of each
    top-level statement between the markers of the file at `path`, in file order. Constants
    are UPPER_CASE assignments; they go first in a generated module."""
    text = Path(path).read_text(encoding="utf-8")
    start, end = text.index(BEGIN), text.index(END)
    lines = text.splitlines(keepends=True)
    first_line, last_line = text.count("\n", 0, start) + 1, text.count("\n", 0, end) + 1
    out = []
    for node in ast.parse(text).body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        if not first_line < first < last_line:
            continue
        top = node.body + node.orelse if isinstance(node, ast.If) else [node]
        defined = {n.name if isinstance(n, (ast.FunctionDef, ast.ClassDef)) else n.targets[0].id
                   for n in top}
        refs = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        constant = isinstance(node, ast.Assign) and not any(n.islower() for n in defined)
        out.append((frozenset(defined), "".join(lines[first - 1:node.end_lineno]).rstrip("\n"),
                    frozenset(refs), constant))
    return tuple(out)


def source(path: str, used: set[str]) -> tuple[str, str] | None:
    """(constants, functions) as text for the names in `used` and everything they refer to;
    None if `used` is empty."""
    if not used:
        return None
    defs = definitions(path)
    refs_of = {name: refs for names, _, refs, _ in defs for name in names}
    wanted = set(used)
    todo = list(wanted)
    while todo:
        for ref in refs_of[todo.pop()]:
            if ref in refs_of and ref not in wanted:
                wanted.add(ref)
                todo.append(ref)
    chosen = [(body, constant) for names, body, _, constant in defs if names & wanted]
    constants = [body for body, constant in chosen if constant]
    functions = [body for body, constant in chosen if not constant]
    return "\n".join(constants), "\n\n\n".join(functions)
