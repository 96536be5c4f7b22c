"""Lexer and parser: spec text → `Spec` (a syntax tree whose every node carries a `Span`).

The spec is parsed, never evaluated. One statement per line; `#` starts a comment.
Grammar (precedence from loosest to tightest, as in Python):

    expr    := arith (('<' | '<=' | '>' | '>=' | '==' | '!=') arith)?   (a 0/1 mask; not chained)
    arith   := term (('+' | '-') term)*
    term    := unary (('*' | '/' | '@') unary)*
    unary   := '-' unary | power
    power   := postfix ('**' unary)?
    postfix := atom ['[' item (',' item)* ']'] ('.T')*
    item    := expr | [expr] ':' [expr] [':' [expr]]     (an index or a slice)
    atom    := NUMBER | NAME | NAME '(' args ')' | '(' expr ')' | tuple
    tuple   := '(' expr ',' [expr (',' expr)*] ')'   (axis=(0, 2))
    args    := [arg (',' arg)*],  arg := expr | STRING | NAME '=' (NUMBER | '-' NUMBER | NAME)
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from .errors import Span, SpecError

MAX_NESTING = 100  # parentheses, calls and unary minus; deeper is refused, well before
# Python's recursion limit (each level costs about six parser frames)
MAX_LINE_LENGTH = 10_000
COMPARISONS = ("<", "<=", ">", ">=", "==", "!=")
MAX_DIM_DIGITS = 19  # 2**62 has 19; int() of thousands of digits is slow, then refused
MAX_LINES = 100_000


# ----------------------------------------------------------------------------- syntax tree
@dataclass(frozen=True)
class Name:
    id: str
    span: Span


@dataclass(frozen=True)
class Number:
    value: float
    is_int: bool
    span: Span


@dataclass(frozen=True)
class String:
    value: str
    span: Span


@dataclass(frozen=True)
class Unary:
    op: str
    operand: "Expr"
    span: Span


@dataclass(frozen=True)
class BinOp:
    op: str
    left: "Expr"
    right: "Expr"
    span: Span


@dataclass(frozen=True)
class Transpose:
    operand: "Expr"
    span: Span


@dataclass(frozen=True)
class Tuple:
    """(a, b, ...): only meaningful as axis=(0, 2); `check` refuses it elsewhere."""

    items: tuple
    span: Span


@dataclass(frozen=True)
class Slice:
    """start:stop:step inside x[...]; each part an expression or None."""

    start: "Expr | None"
    stop: "Expr | None"
    step: "Expr | None"
    span: Span


@dataclass(frozen=True)
class Subscript:
    """x[i, a:b, :]: items are expressions (an index) or Slices."""

    operand: "Expr"
    items: tuple
    span: Span


@dataclass(frozen=True)
class Keyword:
    name: str
    value: "Expr"
    span: Span


@dataclass(frozen=True)
class Call:
    func: Name
    args: tuple
    kwargs: tuple  # of Keyword
    span: Span


Expr = Name | Number | String | Unary | BinOp | Transpose | Call | Tuple | Subscript


@dataclass(frozen=True)
class Dim:
    name: str | None  # None for an integer literal
    size: int | None
    span: Span


@dataclass(frozen=True)
class Declare:
    kind: str  # "input" or "param"
    name: Name
    dims: tuple  # of Dim
    dtype: str  # "float" or "int"
    span: Span
    comment: str = ""


@dataclass(frozen=True)
class Hyper:
    name: Name
    value: float
    span: Span
    comment: str = ""


@dataclass(frozen=True)
class FnDef:
    name: Name
    params: tuple  # of Name
    body: Expr
    span: Span


@dataclass(frozen=True)
class Assign:
    target: Name
    value: Expr
    span: Span
    comment: str = ""


@dataclass(frozen=True)
class Minimize:
    name: Name
    span: Span


@dataclass(frozen=True)
class Output:
    names: tuple  # of Name
    span: Span


@dataclass
class Spec:
    file: str
    text: str
    statements: list = field(default_factory=list)


# ----------------------------------------------------------------------------- lexer
@dataclass(frozen=True)
class Token:
    kind: str  # NAME NUMBER STRING OP END
    text: str
    span: Span


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>[ \t\f]+)
  | (?P<comment>\#.*)
  | (?P<number>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<string>"[^"\\\n]*"|'[^'\\\n]*')
  | (?P<op>\*\*|==|!=|<=|>=|[-+*/@().,=\[\]:<>])
    """,
    re.VERBOSE | re.ASCII,  # \d is 0-9 only: '1e-৪' and 'x[٣]' are not numbers
)


def _lex_line(file: str, lineno: int, line: str) -> tuple[list[Token], str]:
    """Tokens of one line, and its trailing comment text (without '#')."""
    tokens: list[Token] = []
    comment = ""
    pos = 0
    while pos < len(line):
        m = _TOKEN_RE.match(line, pos)
        if m is None:
            ch = line[pos]
            span = Span(file, lineno, pos + 1, pos + 2, line)
            if ch in "\"'":
                raise SpecError("unterminated or escaped string literal", span,
                                "strings are only used for einsum subscripts, e.g. \"ij,jk->ik\"")
            shown = repr(ch) if ch.isprintable() else f"U+{ord(ch):04X}"
            if ch in "!$%&;?^`{|}~\\":  # an operator the language does not have
                raise SpecError(f"unexpected character {shown}", span,
                                "operators are + - * / ** @, comparisons < <= > >= == != "
                                "and .T; combine masks with * (and)")
            raise SpecError(f"unexpected character {shown}", span,
                            "names use ASCII letters, digits and '_'")
        kind = m.lastgroup
        text = m.group()
        span = Span(file, lineno, pos + 1, m.end() + 1, line)
        if kind == "comment":
            comment = text[1:].strip()
        elif kind != "ws":
            tokens.append(Token(kind.upper(), text, span))
        pos = m.end()
    tokens.append(Token("END", "", Span(file, lineno, len(line) + 1, len(line) + 2, line)))
    return tokens, comment


def split_lines(text: str, file: str) -> list[str]:
    """The spec's lines, after the encoding-level checks every stage relies on."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise SpecError("the file contains a NUL byte", Span(file, line, 1, 2, ""),
                        "is this a binary file? specs are UTF-8 text")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if len(lines) > MAX_LINES:
        raise SpecError(f"the spec has {len(lines)} lines; the limit is {MAX_LINES}",
                        Span(file, MAX_LINES + 1, 1, 2, ""))
    for i, line in enumerate(lines, 1):
        if len(line) > MAX_LINE_LENGTH:
            raise SpecError(f"line is {len(line)} characters long; the limit is "
                            f"{MAX_LINE_LENGTH}", Span(file, i, 1, 2, line[:200]))
    return lines


# ----------------------------------------------------------------------------- parser
class _LineParser:
    """Recursive-descent parser over the tokens of one line."""

    def __init__(self, tokens: list[Token]):
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def next(self) -> Token:
        tok = self.tokens[self.pos]
        if tok.kind != "END":
            self.pos += 1
        return tok

    def accept(self, text: str) -> Token | None:
        if self.tok.kind == "OP" and self.tok.text == text:
            return self.next()
        return None

    def expect(self, text: str, what: str | None = None) -> Token:
        tok = self.accept(text)
        if tok is None:
            found = "end of line" if self.tok.kind == "END" else repr(self.tok.text)
            raise SpecError(f"expected {what or repr(text)}, found {found}", self.tok.span)
        return tok

    def expect_name(self, what: str) -> Name:
        tok = self.tok
        if tok.kind != "NAME":
            found = "end of line" if tok.kind == "END" else repr(tok.text)
            raise SpecError(f"expected {what}, found {found}", tok.span)
        self.next()
        return Name(tok.text, tok.span)

    def expect_end(self) -> None:
        if self.tok.kind != "END":
            raise SpecError(f"unexpected {self.tok.text!r} after the end of the statement",
                            self.tok.span, "one statement per line")

    # -- expressions
    def _enter(self, span: Span) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise SpecError(f"expression nested more than {MAX_NESTING} levels deep", span,
                            "split it into several statements")

    def expr(self) -> Expr:
        left = self.arith()
        if self.tok.kind == "OP" and self.tok.text in COMPARISONS:
            op = self.next().text
            right = self.arith()
            left = BinOp(op, left, right, _span(left).to(_span(right)))
            if self.tok.kind == "OP" and self.tok.text in COMPARISONS:
                raise SpecError("comparisons cannot be chained", self.tok.span,
                                "combine masks with '*' (and), e.g. (a < b) * (b < c)")
        return left

    def arith(self) -> Expr:
        left = self.term()
        while self.tok.kind == "OP" and self.tok.text in "+-":
            op = self.next().text
            right = self.term()
            left = BinOp(op, left, right, _span(left).to(_span(right)))
        return left

    def term(self) -> Expr:
        left = self.unary()
        while self.tok.kind == "OP" and self.tok.text in ("*", "/", "@"):
            op = self.next().text
            right = self.unary()
            left = BinOp(op, left, right, _span(left).to(_span(right)))
        return left

    def unary(self) -> Expr:
        if self.tok.kind == "OP" and self.tok.text in "-+":
            self._enter(self.tok.span)
            tok = self.next()
            operand = self.unary()
            self.depth -= 1
            if tok.text == "+":
                return operand
            return Unary("-", operand, tok.span.to(_span(operand)))
        return self.power()

    def power(self) -> Expr:
        base = self.postfix()
        if self.accept("**"):
            exponent = self.unary()
            return BinOp("**", base, exponent, _span(base).to(_span(exponent)))
        return base

    def postfix(self) -> Expr:
        node = self.atom()
        if self.tok.kind == "OP" and self.tok.text == "[":
            node = self.subscript(node)
        while self.tok.kind == "OP" and self.tok.text == ".":
            self.next()
            attr = self.tok
            if attr.kind != "NAME" or attr.text != "T":
                raise SpecError("only the transpose attribute '.T' is supported", attr.span)
            self.next()
            node = Transpose(node, _span(node).to(attr.span))
        return node

    def atom(self) -> Expr:
        tok = self.tok
        if tok.kind == "NUMBER":
            self.next()
            is_int = re.fullmatch(r"[0-9]+", tok.text) is not None
            return Number(_finite(tok), is_int, tok.span)
        if tok.kind == "STRING":
            self.next()
            return String(tok.text[1:-1], tok.span)
        if tok.kind == "NAME":
            self.next()
            name = Name(tok.text, tok.span)
            if self.accept("("):
                return self.call(name)
            return name
        if self.accept("("):
            self._enter(tok.span)
            inner = self.expr()
            if self.accept(","):  # a tuple, e.g. axis=(0, 2)
                items = [inner]
                while self.tok.kind != "OP" or self.tok.text != ")":
                    items.append(self.expr())
                    if not self.accept(","):
                        break
                inner = Tuple(tuple(items), tok.span.to(self.tok.span))
            self.depth -= 1
            self.expect(")", "')' to close the parenthesis")
            return inner
        if tok.kind == "OP" and tok.text == "[":
            raise SpecError("a list [a, b, ...] is not supported yet", self._bracketed(),
                            "lists are for stack, concat, reshape and transpose, planned for "
                            "spec language v2 (issue 10)")
        found = "end of line" if tok.kind == "END" else repr(tok.text)
        raise SpecError(f"expected an expression, found {found}", tok.span)

    def subscript(self, operand: Expr) -> Subscript:
        """operand[item, ...] with items `e`, `:`, `a:b`, `a:b:c` (parts optional)."""
        self._enter(self.tok.span)
        self.next()  # '['
        items = []

        def part():
            if self.tok.kind == "OP" and self.tok.text in (":", ",", "]"):
                return None
            return self.expr()
        while True:
            first = self.tok
            start = part()
            if self.accept(":"):
                stop = part()
                step = part() if self.accept(":") else None
                end = self.tokens[self.pos - 1].span
                items.append(Slice(start, stop, step, first.span.to(end)))
            elif start is None:
                found = "end of line" if self.tok.kind == "END" else repr(self.tok.text)
                raise SpecError(f"expected an index or a slice, found {found}", self.tok.span,
                                "e.g. x[0], x[:, 0:3], x[1:, :], x[::2]")
            else:
                items.append(start)
            if self.accept("]"):
                break
            self.expect(",", "',' or ']' in the subscript")
        self.depth -= 1
        return Subscript(operand, tuple(items), _span(operand).to(self.tokens[self.pos - 1].span))

    def _bracketed(self) -> Span:
        """The span from the '[' at the current token to its matching ']' (or the line end)."""
        depth, end = 0, self.tok
        for t in self.tokens[self.pos:]:
            end = t
            if t.kind == "OP" and t.text == "[":
                depth += 1
            elif t.kind == "OP" and t.text == "]":
                depth -= 1
                if depth == 0:
                    break
        return self.tok.span.to(end.span)

    def call(self, func: Name) -> Call:
        self._enter(func.span)
        args, kwargs = [], []
        if not self.accept(")"):
            while True:
                if (self.tok.kind == "NAME" and self.tokens[self.pos + 1].kind == "OP"
                        and self.tokens[self.pos + 1].text == "="):
                    key = self.expect_name("a keyword")
                    self.next()  # '='
                    value = self.expr()
                    kwargs.append(Keyword(key.id, value, key.span.to(_span(value))))
                else:
                    if kwargs:
                        raise SpecError("positional argument after a keyword argument",
                                        self.tok.span)
                    args.append(self.expr())
                if self.accept(")"):
                    break
                self.expect(",", "',' or ')' in the argument list")
        self.depth -= 1
        end = self.tokens[self.pos - 1].span
        return Call(func, tuple(args), tuple(kwargs), func.span.to(end))

    # -- declarations
    def dims(self) -> tuple:
        dims = []
        if self.accept("["):
            while True:
                tok = self.tok
                if tok.kind == "NAME":
                    self.next()
                    dims.append(Dim(tok.text, None, tok.span))
                elif tok.kind == "NUMBER" and re.fullmatch(r"[0-9]+", tok.text):
                    self.next()
                    if len(tok.text.lstrip("0")) > MAX_DIM_DIGITS:
                        raise SpecError(f"dimension {tok.text[:20]}... has {len(tok.text)} "
                                        f"digits; the largest is 2**62", tok.span,
                                        "use a dimension name, bound from the arrays")
                    if not 1 <= int(tok.text) <= 2 ** 62:
                        raise SpecError("a dimension must be between 1 and 2**62", tok.span)
                    dims.append(Dim(None, int(tok.text), tok.span))
                else:
                    raise SpecError("expected a dimension (a name or a positive integer)",
                                    tok.span)
                if self.accept("]"):
                    break
                self.expect(",", "',' or ']' in the dimension list")
        return tuple(dims)


def _finite(tok: Token) -> float:
    value = float(tok.text)
    if value == float("inf"):
        raise SpecError(f"number {tok.text} is too large for a float64", tok.span)
    return value


def _span(node) -> Span:
    return node.span


def parse(text: str, file: str = "<spec>") -> Spec:
    """Parse spec text into a `Spec`; raises `SpecError` on the first syntax error."""
    spec = Spec(file=file, text=text)
    for lineno, line in enumerate(split_lines(text, file), 1):
        tokens, comment = _lex_line(file, lineno, line)
        if tokens[0].kind == "END":
            continue
        spec.statements.append(_parse_statement(_LineParser(tokens), comment))
    return spec


_KEYWORDS = ("input", "param", "hyper", "fn", "minimize", "output")


def _parse_statement(p: _LineParser, comment: str):
    first = p.tok
    second = p.tokens[p.pos + 1]
    is_assignment = second.kind == "OP" and second.text == "="
    if first.kind == "NAME" and first.text in _KEYWORDS and not is_assignment:
        p.next()
        kw = first.text
        if kw in ("input", "param"):
            name = p.expect_name(f"the name of the {kw}")
            dims = p.dims()
            dtype = "float"
            if p.accept(":"):
                t = p.expect_name("a type ('float' or 'int')")
                if t.id not in ("float", "int"):
                    raise SpecError(f"unknown type {t.id!r}", t.span,
                                    "types are 'float' (the default) and 'int'")
                if kw == "param" and t.id == "int":
                    raise SpecError("a param cannot be integer: params are differentiated",
                                    t.span, "declare integer data with 'input'")
                dtype = t.id
            p.expect_end()
            return Declare(kw, name, dims, dtype, first.span.to(p.tok.span), comment)
        if kw == "hyper":
            name = p.expect_name("the name of the hyperparameter")
            p.expect("=", "'=' and a default value")
            sign = -1.0 if p.accept("-") else 1.0
            tok = p.tok
            if tok.kind != "NUMBER":
                raise SpecError("a hyperparameter's default must be a number", tok.span,
                                "for example: hyper lam = 1e-4")
            p.next()
            p.expect_end()
            return Hyper(name, sign * _finite(tok), first.span.to(tok.span), comment)
        if kw == "fn":
            name = p.expect_name("the function's name")
            p.expect("(", "'(' and the parameter list")
            params = []
            if not p.accept(")"):
                while True:
                    params.append(p.expect_name("a parameter name"))
                    if p.accept(")"):
                        break
                    p.expect(",", "',' or ')' in the parameter list")
            p.expect("=", "'=' and the function body")
            body = p.expr()
            p.expect_end()
            return FnDef(name, tuple(params), body, first.span.to(body.span))
        if kw == "minimize":
            name = p.expect_name("the name of the objective")
            p.expect_end()
            return Minimize(name, first.span.to(name.span))
        # output
        names = [p.expect_name("an output name")]
        while p.accept(","):
            names.append(p.expect_name("an output name"))
        p.expect_end()
        return Output(tuple(names), first.span.to(names[-1].span))
    if first.kind == "NAME" and is_assignment:
        target = p.expect_name("a name")
        p.next()  # '='
        value = p.expr()
        p.expect_end()
        return Assign(target, value, first.span.to(value.span), comment)
    raise SpecError("expected a declaration (input, param, hyper, fn, minimize, output) "
                    "or an assignment 'name = expression'", first.span)
