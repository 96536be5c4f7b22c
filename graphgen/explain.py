"""Explanations for people: the derivation as equations (`show`) and the graph as DOT.

Equations are printed from scheduled programs, so what `show` prints is what the generated
code computes: one line per materialized value, named like the hand derivation (`dJ/dW1`).
"""
from __future__ import annotations

import sympy as sp
from sympy.printing.str import StrPrinter

from . import ops
from .ir import Graph, Node, arg_symbol, index_symbol
from .schedule import Program, Step

_LETTERS = "ijklmnpqrstuvwabcefgh"


def display_name(node: Node) -> str:
    return node.label or node.name


def fmt_shape(shape: tuple) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]" if shape else "scalar"


class _MathPrinter(StrPrinter):
    def _print_Add(self, expr, order=None):
        terms = sorted(expr.args, key=sp.default_sort_key)
        terms.sort(key=lambda t: t.could_extract_minus_sign())  # a - b, not -b + a
        out = ""
        for k, t in enumerate(terms):
            neg = t.could_extract_minus_sign()
            text = self.parenthesize(-t if neg else t, 40 if not neg else 41)
            out += (" - " if neg else " + ") + text if k else ("-" if neg else "") + text
        return out

    def _print_Heaviside(self, e):
        x = self._print(e.args[0])
        h0 = e.args[1] if len(e.args) > 1 else sp.S.Half
        if h0 == 0:
            return f"({x} > 0)"
        return f"step({x}, at0={h0})"

    def _print_label_pick(self, e):
        return f"({self._print(e.args[0])} if {self._print(e.args[1])} == " \
            f"{self._print(e.args[2])} else 0)"

    def _print_comparison(self, e):  # graphgen.ops comparisons: (a > b), a 0/1 mask
        op = next(o for o, cls in ops.COMPARISONS.items() if isinstance(e, cls))
        return f"({self._print(e.args[0])} {op} {self._print(e.args[1])})"

    # sympy dispatches a Function subclass on its own class name only
    _print_less = _print_less_equal = _print_greater = _print_comparison
    _print_greater_equal = _print_equal = _print_not_equal = _print_comparison

    def _print_label_is(self, e):
        return f"[{self._print(e.args[0])} == {self._print(e.args[1])}]"

    def _print_Symbol(self, e):
        return e.name


def _index_names(step_node: Node) -> dict[str, str]:
    loop = [i for i in step_node.out if i is not None] + list(step_node.reduce)
    return {i: _LETTERS[k % len(_LETTERS)] + ("" if k < len(_LETTERS) else str(k))
            for k, i in enumerate(loop)}


def _arg_display(node: Node, k: int, names: dict[str, str], inline: dict[int, str],
                 indexed: bool) -> str:
    a = node.args[k]
    base = inline.get(a.node.id, display_name(a.node))
    if not a.idx:
        return base
    if not indexed:
        out = [i for i in node.out]
        if list(a.idx) == out[len(out) - len(a.idx):]:
            return base
        if len(a.idx) == 2 and list(a.idx) == list(reversed(out)):
            return f"{base}.T"
    return base + "[" + ", ".join("0" if i is None else names[i] for i in a.idx) + "]"


def equation(step: Step, inline: dict[int, str]) -> str:
    """The right-hand side of a step, as a person would write it."""
    node = step.node
    if step.kind == "dot":
        d = step.dot
        left = inline.get(d["left"].id, display_name(d["left"])) + (".T" if d["left_t"] else "")
        right = inline.get(d["right"].id, display_name(d["right"])) + (".T" if d["right_t"] else "")
        text = f"{left} @ {right}"
        coef = d["coef"]
        if coef != 1:
            named = _named(coef, node, _index_names(node), inline, False)
            text = f"{_MathPrinter().doprint(named)} * ({text})"
        return text
    names = _index_names(node)
    indexed = bool(node.reduce) or any(
        a.idx and _arg_display(node, k, names, inline, False).endswith("]")
        for k, a in enumerate(node.args))
    body = _named(node.body, node, names, inline, indexed)
    text = _MathPrinter().doprint(body)
    if node.reduce:
        op = {"sum": "Σ"}.get(node.reducer, node.reducer)
        text = f"{op}_{''.join(names[r] for r in node.reduce)} {text}"
    return text


def _named(expr, node: Node, names, inline, indexed) -> sp.Expr:
    used = expr.free_symbols
    subs = {arg_symbol(k): sp.Symbol(_arg_display(node, k, names, inline, indexed))
            for k in range(len(node.args)) if arg_symbol(k) in used}
    subs.update({index_symbol(i): sp.Symbol(n) for i, n in names.items()})
    return _rename(expr, subs)


def _rename(expr: sp.Basic, subs: dict) -> sp.Basic:
    """expr.xreplace(subs) without re-evaluating what it rebuilds: a renaming for display
    needs no simplification, and sympy's re-evaluation (tanh asking whether its argument is
    zero) dominated explaining long chains. (Not `sp.evaluate(False)`: setting it clears
    sympy's whole cache.)"""
    if expr in subs:
        return subs[expr]
    if not expr.args:
        return expr
    args = tuple(_rename(a, subs) for a in expr.args)
    if args == expr.args:
        return expr
    try:
        return expr.func(*args, evaluate=False)
    except TypeError:  # a class without the option (ExprCondPair, Tuple)
        return expr.func(*args)


def lhs(step: Step) -> str:
    node = step.node
    if step.writes is not None:
        return node.name
    name = display_name(node)
    if step.kind == "loop" and (node.reduce or _has_indexed_reads(step)):
        names = _index_names(node)
        if node.out:
            return name + "[" + ", ".join("0" if i is None else names[i] for i in node.out) + "]"
    return name


def _has_indexed_reads(step: Step) -> bool:
    node = step.node
    names = _index_names(node)
    return any(a.idx and _arg_display(node, k, names, {}, False).endswith("]")
               for k, a in enumerate(node.args))


def program_equations(program: Program, role: str | None = None,
                      include_inlined: bool = False) -> list[tuple[Step, str]]:
    """(step, 'lhs = rhs') for each step; single-use unnamed dot results are shown inline in
    their consumer (and listed themselves only with `include_inlined`)."""
    uses: dict[int, int] = {}
    for s in program.steps:
        for a in s.node.args:
            uses[a.node.id] = uses.get(a.node.id, 0) + 1
    root_ids = {r.id for r in program.roots}
    inline: dict[int, str] = {}
    out = []
    for s in program.steps:
        text = equation(s, inline)
        hidden = (s.kind == "dot" and not s.node.named and uses.get(s.node.id) == 1
                  and s.node.id not in root_ids)
        if hidden:
            inline[s.node.id] = f"({text})"
        if (role is None or s.node.role == role) and (include_inlined or not hidden):
            out.append((s, f"{lhs(s)} = {text}"))
    return out


def _intermediates(program: Program) -> list[tuple[Step, str]]:
    """Forward values the backward equations name that no spec statement defines (`_t12 =
    pred - y`), with those their own equations name, in program order: so that `show`
    defines every name it prints."""
    steps = program_equations(program, include_inlined=True)
    by_id = {s.node.id: (s, eq) for s, eq in steps if s.node.role == "forward"}
    wanted: set[int] = set()
    stack = [a.node.id for s, _ in program_equations(program, role="backward")
             for a in s.node.args]
    while stack:
        i = stack.pop()
        if i in wanted or i not in by_id or by_id[i][0].node.named:
            continue
        wanted.add(i)
        stack.extend(a.node.id for a in by_id[i][0].node.args)
    return [(s, eq) for s, eq in steps if s.node.id in wanted]


def derivation_text(graph: Graph, program: Program) -> str:
    """Forward statements as written, the unnamed forward values the backward pass reads,
    then the derived backward equations, with shapes."""
    lines = ["Forward:"]
    for name, node in graph.variables.items():
        src = node.origin.source if node.origin else name
        lines.append(f"    {src:<48} {fmt_shape(node.shape)}")
    inner = _intermediates(program)
    if inner:
        lines.append("  where (intermediate values the backward pass reads):")
        for step, eq in inner:
            lines.append(f"    {eq:<48} {fmt_shape(step.node.shape)}")
    lines.append(f"Backward (reverse mode, from the objective {graph.objective.name}):")
    for step, eq in program_equations(program, role="backward"):
        lines.append(f"    {eq:<48} {fmt_shape(step.node.shape)}")
    if graph.disconnected:
        lines.append("Disconnected (zero gradient): " + ", ".join(graph.disconnected))
    return "\n".join(lines)


def _latex_term(text: str) -> str:
    """One printed equation side in LaTeX: dJ/dW → ∂J/∂W, `@` → product, `.T` → ᵀ,
    `a[i, j]` → a subscripted."""
    import re

    text = text.replace("_", r"\_")
    text = re.sub(r"d(\w+)/d([\w\\]+)", r"\\frac{\\partial \1}{\\partial \2}", text)
    text = re.sub(r"Σ\\_(\w+)", r"\\sum_{\1}", text)
    text = re.sub(r"max\\_(\w+)", r"\\max_{\1}", text)
    text = re.sub(r"([\w}])\[([^\[\]]*)\]", r"\1_{\2}", text)
    text = text.replace(".T", r"^{\top}").replace(" @ ", r" \, ").replace("**", "^")
    return text.replace("*", r" \cdot ")


def derivation_latex(graph: Graph, program: Program) -> str:
    """The derivation as LaTeX, for notebooks: the forward statements, the intermediates
    and the backward equations, each an aligned block with shapes on the right."""
    forward = [(f"{name} = " + (n.origin.source.split("=", 1)[1].strip() if n.origin else
                                name), n.shape) for name, n in graph.variables.items()]
    blocks = [forward, [(eq, s.node.shape) for s, eq in _intermediates(program)],
              [(eq, s.node.shape) for s, eq in program_equations(program, role="backward")]]
    out = []
    for rows in blocks:
        if not rows:
            continue
        lines = []
        for eq, shape in rows:
            lhs, _, rhs = eq.partition(" = ")
            lines.append(f"{_latex_term(lhs)} &= {_latex_term(rhs)} "
                         rf"&& \text{{{fmt_shape(shape)}}}")
        out.append("$$\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}$$")
    return "\n".join(out)


def update_text(graph: Graph, kernel) -> str:
    """How sgd_step applies each update: folded into the GEMM that makes the gradient
    (BLAS's alpha and beta, no gradient array) or as a loop."""
    from .statements import StepWriter

    writer = StepWriter(graph, kernel)
    lines = ["SGD step (sgd_step, p -= lr * dJ/dp):"]
    for step, eq in program_equations(kernel.program):
        if step.writes is None:
            continue
        if step.gemm:
            lines.append(f"    {step.writes.name}: {writer.gemm_comment(step).strip()}")
        else:
            lines.append(f"    {step.writes.name}: one loop, {eq}")
    return "\n".join(lines)


def ast_text(spec) -> str:
    """The syntax tree, one node a line, indented by depth: `Kind field=value @line:col`.

    Children (nodes, tuples of nodes) go on their own lines below; spans print as line:col.
    """
    import dataclasses

    from .errors import Span

    lines: list[str] = []

    def visit(node, depth: int, label: str = "") -> None:
        pad = "  " * depth + (f"{label}: " if label else "")
        if not dataclasses.is_dataclass(node):
            lines.append(pad + repr(node))
            return
        simple, children = [], []
        span = None
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if isinstance(value, Span):
                span = value
            elif dataclasses.is_dataclass(value):
                children.append((f.name, value))
            elif isinstance(value, (tuple, list)) and any(dataclasses.is_dataclass(v)
                                                         for v in value):
                children.extend((f"{f.name}[{k}]", v) for k, v in enumerate(value))
            elif value not in ("", None, ()) or f.name == "value":
                simple.append(f"{f.name}={value!r}")
        if type(node).__name__ == "Name" and not children:  # the common leaf, compactly
            simple = [repr(node.id)]
        where = f" @{span.line}:{span.col}" if span else ""
        lines.append(pad + type(node).__name__ + (" " + " ".join(simple) if simple else "")
                     + where)
        for name, child in children:
            visit(child, depth + 1, name)

    for statement in spec.statements:
        visit(statement, 0)
    return "\n".join(lines)


def to_dot(graph: Graph) -> str:
    """Graphviz DOT of the forward graph: variables as boxes, operations as circles."""
    out = ["digraph graphgen {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    shown: dict[int, str] = {}

    def var_id(n: Node) -> str:
        return f"v{n.id}"

    for n in graph.leaves:
        color = {"input": "lightblue", "param": "lightyellow", "hyper": "lightgrey"}[n.kind]
        out.append(f'  {var_id(n)} [shape=box, style=filled, fillcolor={color}, '
                   f'label="{n.name}\\n{n.kind} {fmt_shape(n.shape)}"];')
        shown[n.id] = var_id(n)
    for n in graph.nodes:
        if n.kind == "op" and n.role == "forward" and n.named:
            out.append(f'  {var_id(n)} [shape=box, label="{n.name}\\n{fmt_shape(n.shape)}"];')
            shown[n.id] = var_id(n)
    # One operation circle per user statement, linking the named values it reads.
    for name, n in graph.variables.items():
        op = f"op{n.id}"
        label = _op_label(n)
        out.append(f'  {op} [shape=circle, label="{label}"];')
        for src in sorted(_named_sources(n), key=lambda m: m.id):
            out.append(f"  {shown[src.id]} -> {op};")
        out.append(f"  {op} -> {var_id(n)};")
    out.append(f'  {var_id(graph.objective)} [shape=box, peripheries=2];')
    out.append("}")
    return "\n".join(out) + "\n"


def _named_sources(n: Node) -> set[Node]:
    found: set[Node] = set()
    stack = [a.node for a in n.args]
    seen = set()
    while stack:
        m = stack.pop()
        if m.id in seen:
            continue
        seen.add(m.id)
        if m.named or m.kind != "op":
            found.add(m)
        else:
            stack.extend(a.node for a in m.args)
    return found


def _op_label(n: Node) -> str:
    src = n.origin.source if n.origin else n.name
    rhs = src.split("=", 1)[1].strip() if "=" in src else src
    for ch in ('\\', '"'):
        rhs = rhs.replace(ch, "\\" + ch)
    return rhs if len(rhs) <= 24 else rhs[:21] + "..."

