"""Spec errors as values: a message, the span it points at, and an optional hint.

Errors are raised as `SpecError` by every stage that reads user text and formatted only at the
edge (the CLI, or `str(err)`), in the `FILE:LINE:COL: error: MESSAGE` form compilers use.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Span:
    """A region of one line of a spec file; columns are 1-based, `end` is exclusive."""

    file: str
    line: int
    col: int
    end: int
    text: str = ""  # the whole source line, for the caret display

    def to(self, other: "Span") -> "Span":
        """The span from the start of self to the end of other (same line) or to line end."""
        if other.line != self.line:
            return Span(self.file, self.line, self.col, len(self.text) + 1, self.text)
        return Span(self.file, self.line, self.col, max(self.end, other.end), self.text)


class SpecError(Exception):
    """A problem in a spec, located at a span. `str()` gives the full compiler-style report."""

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint

    def __str__(self) -> str:
        return format_error(self)


def _printable(line: str) -> str:
    """The source line with tabs expanded to one space and control characters made visible,
    so that the caret lines up with the column count."""
    return "".join(
        " " if ch == "\t" else (ch if ch.isprintable() else "?") for ch in line
    )


def escape_text(text: str) -> str:
    """Text (a file name, a message naming one) safe to print to a terminal: control
    characters, bidi controls and other non-printables are shown as escapes, so that a file
    named with ESC sequences cannot rewrite the screen or forge output."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in str(text))


def format_error(err: SpecError) -> str:
    span = err.span
    message = escape_text(err.message)
    if span is None:
        out = [f"error: {message}"]
    else:
        out = [f"{escape_text(span.file)}:{span.line}:{span.col}: error: {message}"]
        if span.text:
            shown = _printable(span.text[:200])
            out.append(f"    {shown}")
            width = max(1, min(span.end, len(shown) + 1) - span.col)
            out.append("    " + " " * (span.col - 1) + "^" * width)
    if err.hint:
        out.append(f"hint: {escape_text(err.hint)}")
    return "\n".join(out)
