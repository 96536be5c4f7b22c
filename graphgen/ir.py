"""The graph IR: typed, shaped nodes in one form, the indexed map-reduce.

    out[out_axes] = REDUCE over `reduce` of body(arg_0[idx_0], arg_1[idx_1], ...)

An axis or index entry is a loop-index name, or `None` for a unit axis (size 1, read at 0).
Leaves (inputs, params, hypers) have no body. `check` builds the forward graph, `autodiff`
appends backward nodes to the same `Graph`; nodes are created in topological order.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import sympy as sp

from .errors import Span

Size = str | int  # a named dim, or a literal size
Axis = str | None  # a loop index, or None for a unit axis


@dataclass(frozen=True)
class Arg:
    node: "Node"
    idx: tuple  # of Axis, one per axis of node


@dataclass(frozen=True)
class Origin:
    """Where a node comes from, for comments and error messages."""

    span: Span | None
    source: str  # the statement as written, e.g. "z = x @ W1.T"


@dataclass(eq=False)
class Node:
    id: int
    name: str  # identifier in generated code
    kind: str  # "input" | "param" | "hyper" | "op"
    shape: tuple  # of Size
    dtype: str = "float"  # "float" | "int"
    out: tuple = ()  # of Axis, len == len(shape)
    reduce: tuple = ()  # of index names
    reducer: str = "sum"  # "sum" | "max"
    args: tuple = ()  # of Arg
    body: sp.Expr | None = None  # in arg_symbol(k), index_symbol(i), dim_symbol(d)
    sizes: dict = field(default_factory=dict)  # index name -> Size
    differentiable: bool = True
    # False for a surrogate whose first derivative is right but whose second is not (the
    # product's, which holds the product of the others constant): hvp refuses the graph
    second_order: bool = True
    role: str = "forward"  # "forward" | "backward"
    named: bool = False  # a user-named variable (or the gradient of one)
    label: str = ""  # display name: "z", "dJ/dz"
    origin: Origin | None = None
    default: float | None = None  # hypers only
    label_range: Size | None = None  # int inputs used as class labels: values in [0, size)

    @property
    def is_leaf(self) -> bool:
        return self.kind != "op"

    @property
    def is_identity(self) -> bool:
        """A pure re-indexing (transpose, broadcast, unit-axis drop): free to inline."""
        return (self.kind == "op" and not self.reduce and len(self.args) == 1
                and self.body == arg_symbol(0))

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name}{list(self.shape)}>"


@lru_cache(maxsize=None)  # sympy's own symbol cache is slower to reach
def arg_symbol(k: int) -> sp.Symbol:
    return sp.Symbol(f"_a{k}", real=True)


@lru_cache(maxsize=None)  # sympy's own symbol cache is slower to reach
def index_symbol(name: str) -> sp.Symbol:
    return sp.Symbol(name, integer=True, nonnegative=True)


@lru_cache(maxsize=None)  # sympy's own symbol cache is slower to reach
def dim_symbol(name: str) -> sp.Symbol:
    return sp.Symbol(name, integer=True, positive=True)


def arg_index(sym: sp.Symbol) -> int | None:
    n = sym.name
    return int(n[2:]) if n.startswith("_a") and n[2:].isdigit() else None


class Graph:
    """Nodes in creation (topological) order, plus the spec's declarations."""

    def __init__(self, file: str, text: str):
        self.file = file
        self.text = text
        self.nodes: list[Node] = []
        self.inputs: list[Node] = []
        self.params: list[Node] = []
        self.hypers: list[Node] = []
        self.dims: list[str] = []  # named dims, in order of first appearance
        self.variables: dict[str, Node] = {}  # user-named values
        self.objective: Node | None = None
        self.outputs: list[Node] = []
        self.grads: dict[str, Node] = {}  # param name -> gradient node (after autodiff)
        self.disconnected: list[str] = []  # params the objective does not depend on
        # named dims an index or slice needs to be at least this large: dim -> (size, why)
        self.dim_minimums: dict[str, tuple[int, str]] = {}
        self._counter = 0

    def fresh_index(self) -> str:
        self._counter += 1
        return f"x{self._counter}"

    def add(self, **kw) -> Node:
        node = Node(id=len(self.nodes), **kw)
        self.nodes.append(node)
        return node

    @property
    def leaves(self) -> list[Node]:
        return self.inputs + self.params + self.hypers
