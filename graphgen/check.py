"""Name resolution, typing and shape checking: `syntax.Spec` → forward `ir.Graph`.

Every expression is lowered to indexed map-reduce nodes (see `ir`); literals fold into node
bodies. Composite built-ins are lowered here to a few stable nodes (max-shifted exponentials),
so `autodiff` needs no rule of its own for them. All user-facing checks of meaning (unknown
names, arity, shapes, types, name collisions with generated code) live here and raise
`SpecError` at the offending span.
"""
from __future__ import annotations

import builtins
import difflib
import keyword
import math
import re

import sympy as sp

from . import ops
from . import syntax as ast
from .errors import Span, SpecError
from .ir import Graph, Node, Origin, dim_symbol
from .lower import Lowering, broadcast_shapes

# Names the generated module defines or uses itself; a spec name may not shadow them.
RESERVED = frozenset({
    "np", "numba", "math", "forward", "backward", "predict", "sgd_step", "value_and_grad",
    "range", "len", "float", "int", "bool", "min", "max", "abs", "sum", "print", "dict",
    "tuple", "list", "object", "type", "None", "True", "False", "self", "tape", "lr", "grads",
    "dtype", "shape", "out", "acc", "dt", "unexpected", "SPEC", "SPEC_HASH", "GRAPHGEN_VERSION",
    "INPUTS", "PARAMS", "HYPERS", "OUTPUTS", "OBJECTIVE", "DIMS",
}) | frozenset(dir(builtins))
_LOOP_INDEX = re.compile(r"i\d+\Z")
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


def gradient_name(objective: str, name: str) -> str:
    """The generated name of dObjective/dname (one place decides it: `dJ_dW1`)."""
    return f"d{objective}_d{name}"


class _Checker:
    def __init__(self, spec: ast.Spec):
        self.spec = spec
        self.graph = Graph(spec.file, spec.text)
        self.env: dict[str, Node] = {}
        self.fns: dict[str, ast.FnDef] = {}  # applied by re-lowering the body (see call_fn)
        self.fn_applications = 0  # in the current statement (bounded: MAX_FN_APPLICATIONS)
        self.defined_at: dict[str, Span] = {}
        self.dim_at: dict[str, Span] = {}  # where each dimension name first appears
        self.origin: Origin | None = None
        self.lower = Lowering(self.graph)
        self.stmt_role = "value"

    # ------------------------------------------------------------------ names
    def check_new_name(self, name: ast.Name, what: str) -> None:
        n = name.id
        if not _IDENT.match(n):
            raise SpecError(f"{what} name {n!r} may not start with '_'", name.span,
                            "names starting with '_' are reserved for generated code")
        if keyword.iskeyword(n) or keyword.issoftkeyword(n):
            raise SpecError(f"{n!r} is a Python keyword and cannot be a {what} name", name.span,
                            f"rename it, e.g. {n}_")
        if n in ops.BUILTIN_NAMES:
            raise SpecError(f"{n!r} is a built-in function and cannot be a {what} name",
                            name.span, f"rename it, e.g. {n}_")
        if n in RESERVED or _LOOP_INDEX.match(n):
            raise SpecError(f"{what} name {n!r} would collide with a name in the generated code",
                            name.span, f"rename it, e.g. {n}_")
        if n in self.defined_at or n in self.fns:
            prev = self.defined_at.get(n)
            where = f" (first defined on line {prev.line})" if prev else ""
            raise SpecError(f"{n!r} is already defined{where}", name.span,
                            "each name is defined once; pick a new name")

    def check_rank(self, st) -> None:
        """A declaration of more than MAX_LOOP_DEPTH dimensions needs that many nested loops,
        which Python cannot compile (21 gave `too many statically nested blocks`)."""
        if isinstance(st, ast.Declare) and len(st.dims) > MAX_LOOP_DEPTH:
            raise SpecError(f"{st.name.id!r} has {len(st.dims)} dimensions; the limit is "
                            f"{MAX_LOOP_DEPTH}", st.dims[MAX_LOOP_DEPTH].span,
                            "each dimension is a nested loop in the generated code; reshape "
                            "the data to fewer axes")

    def define(self, name: ast.Name) -> None:
        self.defined_at[name.id] = name.span

    # ------------------------------------------------------------------ declarations
    def declare_dims(self, dims: tuple) -> tuple:
        shape = []
        for d in dims:
            if d.name is None:
                shape.append(d.size)
                continue
            if d.name in self.env or d.name in self.fns:
                raise SpecError(f"dimension {d.name!r} has the name of a value", d.span,
                                "dimension names and value names must differ")
            if d.name not in self.graph.dims:
                if keyword.iskeyword(d.name) or d.name in RESERVED or d.name.startswith("_") \
                        or _LOOP_INDEX.match(d.name) or d.name in ops.BUILTIN_NAMES:
                    raise SpecError(f"dimension name {d.name!r} would collide with a name in the "
                                    "generated code", d.span, f"rename it, e.g. {d.name}_")
                self.graph.dims.append(d.name)
                self.dim_at[d.name] = d.span
            shape.append(d.name)
        return tuple(shape)

    def run(self) -> Graph:
        g = self.graph
        minimize: ast.Minimize | None = None
        outputs: list[ast.Name] = []
        for st in self.spec.statements:
            self.origin = self.lower.origin = Origin(st.span, _source(st))
            first_new = len(g.nodes)
            self.fn_applications = 0
            self.check_rank(st)
            if isinstance(st, ast.Declare):
                self.check_new_name(st.name, st.kind)
                if st.name.id in g.dims:
                    raise SpecError(f"{st.name.id!r} is already a dimension name", st.name.span)
                shape = self.declare_dims(st.dims)
                node = g.add(name=st.name.id, kind=st.kind, shape=shape, dtype=st.dtype,
                             named=True, label=st.name.id, origin=self.origin)
                (g.inputs if st.kind == "input" else g.params).append(node)
                self.env[st.name.id] = node
                self.define(st.name)
            elif isinstance(st, ast.Hyper):
                self.check_new_name(st.name, "hyperparameter")
                if st.name.id in g.dims:  # as for inputs, params and variables
                    raise SpecError(f"{st.name.id!r} is already a dimension name", st.name.span,
                                    "dimension names and value names must differ")
                node = g.add(name=st.name.id, kind="hyper", shape=(), named=True,
                             label=st.name.id, origin=self.origin, default=st.value)
                g.hypers.append(node)
                self.env[st.name.id] = node
                self.define(st.name)
            elif isinstance(st, ast.FnDef):
                self.check_new_name(st.name, "function")
                if st.name.id in g.dims:
                    raise SpecError(f"{st.name.id!r} is already a dimension name", st.name.span,
                                    "dimension names and function names must differ")
                self.define_fn(st)
            elif isinstance(st, ast.Assign):
                self.check_new_name(st.target, "variable")
                if st.target.id in g.dims:
                    raise SpecError(f"{st.target.id!r} is already a dimension name",
                                    st.target.span)
                value = self.expr(st.value)
                node = self.as_node(value, st.value.span)
                if node.is_leaf or node.named:  # an alias: give the name its own node
                    node = self.lower.map(lambda a: a, [node])
                node.name = node.label = st.target.id
                node.named = True
                self.env[st.target.id] = node
                g.variables[st.target.id] = node
                self.define(st.target)
            elif isinstance(st, ast.Minimize):
                if minimize is not None:
                    raise SpecError("a spec has exactly one 'minimize'", st.span,
                                    f"the objective is already {minimize.name.id!r} "
                                    f"(line {minimize.span.line})")
                minimize = st
            elif isinstance(st, ast.Output):
                outputs.extend(st.names)
            _check_new_nodes(g.nodes[first_new:], st.span)
        self.finish(minimize, outputs)
        return g

    def finish(self, minimize: ast.Minimize | None, outputs: list[ast.Name]) -> None:
        g = self.graph
        if minimize is None:
            lines = self.spec.text.replace("\r\n", "\n").rstrip("\n").split("\n")
            raise SpecError("the spec has no 'minimize' statement",
                            Span(self.spec.file, len(lines), 1, 2, lines[-1]),
                            "add a line 'minimize NAME' naming the scalar objective")
        target = self.lookup(minimize.name)
        if target.kind != "op":
            raise SpecError(f"the objective {minimize.name.id!r} must be computed, not declared",
                            minimize.name.span)
        if target.shape != ():
            raise SpecError(f"the objective {minimize.name.id!r} must be a scalar, but its shape "
                            f"is {_fmt_shape(target.shape)}", minimize.name.span,
                            f"reduce it, e.g. minimize with sum({minimize.name.id}) or "
                            f"mean({minimize.name.id})")
        if not g.params:
            raise SpecError("the spec declares no 'param' to differentiate",
                            minimize.span, "declare the trainable arrays with 'param NAME[dims]'")
        g.objective = target
        seen = set()
        for name in outputs:
            node = self.lookup(name)
            if node.kind == "hyper":
                raise SpecError(f"hyperparameter {name.id!r} cannot be an output", name.span)
            if name.id in seen:
                raise SpecError(f"{name.id!r} is listed as an output twice", name.span)
            seen.add(name.id)
            g.outputs.append(node)
        # Gradient names must not collide with user names.
        for p in g.params:
            gname = gradient_name(target.name, p.name)
            if gname in self.defined_at:
                raise SpecError(f"name {gname!r} would collide with the generated gradient of "
                                f"{p.name!r}", self.defined_at[gname], f"rename it, e.g. {gname}_")
        for v in g.variables.values():
            gname = gradient_name(target.name, v.name)
            if gname in self.defined_at:
                raise SpecError(f"name {gname!r} would collide with the generated gradient of "
                                f"{v.name!r}", self.defined_at[gname], f"rename it, e.g. {gname}_")
        for n in list(g.params) + list(g.variables.values()):
            gname = gradient_name(target.name, n.name)
            if gname in self.dim_at:  # a dim is a local of the kernels, as the gradient is
                raise SpecError(f"dimension name {gname!r} would collide with the generated "
                                f"gradient of {n.name!r}", self.dim_at[gname],
                                f"rename it, e.g. {gname}_")

    def lookup(self, name: ast.Name) -> Node:
        if name.id in self.env:
            return self.env[name.id]
        if name.id in self.fns or name.id in ops.BUILTIN_NAMES:
            raise SpecError(f"{name.id!r} is a function; call it with arguments", name.span)
        if name.id in self.graph.dims:
            raise SpecError(f"{name.id!r} is a dimension, not a value", name.span,
                            "a dimension is a number in arithmetic (sum(x) / n), not an array")
        known = list(self.env) + list(self.fns)
        close = difflib.get_close_matches(name.id, known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else \
            "declare it (input/param/hyper) or assign it before this line"
        raise SpecError(f"unknown name {name.id!r}", name.span, hint)

    # ------------------------------------------------------------------ fn definitions
    def define_fn(self, st: ast.FnDef) -> None:
        """Check a fn's body once, here, where its errors belong; calls re-lower the body."""
        seen = set()
        for p in st.params:
            if p.id in seen:
                raise SpecError(f"parameter {p.id!r} appears twice", p.span)
            if not _IDENT.match(p.id) or keyword.iskeyword(p.id):
                raise SpecError(f"invalid parameter name {p.id!r}", p.span)
            seen.add(p.id)
        local = {p.id: sp.Symbol(f"_p_{p.id}", real=True) for p in st.params}
        # inner fn calls as opaque applications: checked for arity, not expanded
        def opaque(call, fname, args):
            if all(not a.free_symbols for a in args):
                return self.apply_scalar_fn(call, fname, args)
            return sp.Function(fname)(*args)

        self.scalar_expr(st.body, local, opaque)
        self.fns[st.name.id] = st
        self.define(st.name)

    def scalar_expr(self, e, local: dict[str, sp.Expr], call_fn) -> sp.Expr:
        """A fn body: elementwise arithmetic of its parameters, numbers and elementwise calls;
        `call_fn(call, name, args)` gives the value of a call of a user's fn."""
        if isinstance(e, ast.Number):
            return _number(e)
        if isinstance(e, ast.Name):
            if e.id in local:
                return local[e.id]
            if e.id in self.env:
                raise SpecError(f"a fn body can only use its own parameters, not {e.id!r}",
                                e.span, "pass it as an argument")
            raise SpecError(f"unknown name {e.id!r} in fn body", e.span)
        if isinstance(e, ast.Unary):
            return -self.scalar_expr(e.operand, local, call_fn)
        if isinstance(e, ast.BinOp):
            if e.op == "@":
                raise SpecError("'@' is not elementwise and cannot be used in a fn body", e.span)
            a = self.scalar_expr(e.left, local, call_fn)
            b = self.scalar_expr(e.right, local, call_fn)
            return check_size(_binary(e.op, a, b, e.span, e.right.span), e.span)
        if isinstance(e, ast.Call):
            fname = e.func.id
            args = [self.scalar_expr(a, local, call_fn) for a in e.args]
            if e.kwargs:
                raise SpecError(f"{fname}() takes no keyword arguments here", e.kwargs[0].span)
            if fname in self.fns:
                self.check_arity(e, len(self.fns[fname].params))
                return call_fn(e, fname, args)
            return self.apply_scalar_fn(e, fname, args)
        if isinstance(e, ast.Transpose):
            raise SpecError("'.T' is not elementwise and cannot be used in a fn body", e.span)
        if isinstance(e, ast.Tuple):
            raise SpecError("a tuple is only allowed as axis=(...)", e.span)
        if isinstance(e, ast.Subscript):
            raise SpecError("indexing is not elementwise and cannot be used in a fn body",
                            e.span, "index the argument where you call the fn")
        raise SpecError("a string is not a value", e.span)

    def apply_scalar_fn(self, call: ast.Call, fname: str, args: list[sp.Expr]) -> sp.Expr:
        if fname in ops.ELEMENTWISE:
            op = ops.ELEMENTWISE[fname]
            self.check_arity(call, op.arity)
            return _literal(op.build(*args), call.span)
        if fname in self.fns:  # every argument a number: the body folds to one
            self.check_arity(call, len(self.fns[fname].params))
            self.count_application(call)
            fn = self.fns[fname]
            local = {p.id: a for p, a in zip(fn.params, args)}
            return _literal(self.scalar_expr(fn.body, local, self.apply_scalar_fn), call.span)
        if fname in ops.STRUCTURAL:
            raise SpecError(f"{fname}() is not elementwise and cannot be used in a fn body",
                            call.func.span)
        raise self.unknown_function(call.func)

    def call_fn(self, call: ast.Call, fname: str, operands: list):
        """A user's fn applied to arrays: one elementwise node whose body is the fn's body.

        A fn called inside the body is a node of its own, which reads its argument once
        however often its body uses it: substituting bodies into each other instead doubled
        the expression at every level (`fn f1(a) = f0(f0(a))`, 15 levels: 300 s and more in
        autodiff). Nesting then costs what it computes: one node per application."""
        self.count_application(call)
        self.check_elementwise(operands, call)
        fn = self.fns[fname]
        leaves: list = []  # (symbol, value): the operands, then the inner calls' results
        local = {}
        for p, v in zip(fn.params, operands):
            if isinstance(v, Node):
                local[p.id] = sp.Symbol(f"_leaf{len(leaves)}", real=True)
                leaves.append((local[p.id], v))
            else:
                local[p.id] = v

        def value_of(expr):  # a leaf, a number, or an elementwise node over the leaves
            used = [(s, v) for s, v in leaves if s in expr.free_symbols]
            if not used:
                return expr
            if len(used) == 1 and expr == used[0][0]:
                return used[0][1]
            return self.lower.map(lambda *syms: expr.xreplace(
                dict(zip([s for s, _ in used], syms))), [v for _, v in used])

        def inner_call(inner: ast.Call, name: str, args: list) -> sp.Expr:
            values = [value_of(a) for a in args]
            if all(isinstance(v, sp.Expr) for v in values):
                return self.apply_scalar_fn(inner, name, values)
            symbol = sp.Symbol(f"_leaf{len(leaves)}", real=True)
            leaves.append((symbol, self.call_fn(inner, name, values)))
            return symbol

        body = self.scalar_expr(fn.body, local, inner_call)
        symbols = [s for s, _ in leaves]
        return self.elementwise(lambda *syms: body.xreplace(dict(zip(symbols, syms))),
                                [v for _, v in leaves], call)

    def count_application(self, call: ast.Call) -> None:
        self.fn_applications += 1
        if self.fn_applications > MAX_FN_APPLICATIONS:
            raise SpecError(f"this statement applies user fns more than "
                            f"{MAX_FN_APPLICATIONS:,} times; the limit is "
                            f"{MAX_FN_APPLICATIONS:,}", self.origin.span if self.origin
                            else call.span, "nested fn calls multiply: a fn that calls another "
                            "twice, nested k deep, makes 2**k calls; compute intermediate "
                            "values in statements of their own")

    def unknown_function(self, func: ast.Name) -> SpecError:
        if func.id in ops.NOT_YET:
            return SpecError(f"{func.id}() ({ops.NOT_YET[func.id]}) is not supported yet",
                             func.span, "planned for spec language v2 (issue 10); the built-ins "
                             "are listed in docs/language.md")
        known = sorted(ops.BUILTIN_NAMES | set(self.fns))
        close = difflib.get_close_matches(func.id, known, n=1)
        hint = f"did you mean {close[0]}()?" if close else \
            "built-ins are listed in docs/language.md; define your own with 'fn'"
        return SpecError(f"unknown function {func.id!r}", func.span, hint)

    @staticmethod
    def check_arity(call: ast.Call, arity: int) -> None:
        if len(call.args) != arity:
            s = "" if arity == 1 else "s"
            raise SpecError(f"{call.func.id}() takes {arity} argument{s}, "
                            f"got {len(call.args)}", call.span)

    # ------------------------------------------------------------------ expressions
    def expr(self, e):
        """Lower an expression: returns a Node or a sympy number (a folded literal)."""
        if isinstance(e, ast.Number):
            return _number(e)
        if isinstance(e, ast.Name):
            if e.id in self.graph.dims and e.id not in self.env:
                return dim_symbol(e.id)  # a dim is a number here: sum(x) / n
            node = self.lookup(e)
            return node
        if isinstance(e, ast.Tuple):
            raise SpecError("a tuple is only allowed as axis=(...)", e.span)
        if isinstance(e, ast.String):
            raise SpecError("a string is only allowed as the first argument of einsum", e.span)
        if isinstance(e, ast.Unary):
            v = self.expr(e.operand)
            return -v if isinstance(v, sp.Expr) else self.elementwise(lambda a: -a, [v], e)
        if isinstance(e, ast.Transpose):
            v = self.expr(e.operand)
            if isinstance(v, sp.Expr):
                return v
            self.require_float(v, e.operand.span)
            return self.lower.transpose(v)
        if isinstance(e, ast.BinOp):
            left, right = self.expr(e.left), self.expr(e.right)
            if e.op == "@":
                return self.matmul(left, right, e)
            if isinstance(left, sp.Expr) and isinstance(right, sp.Expr):
                return _binary(e.op, left, right, e.span, e.right.span)
            return self.elementwise(lambda a, b: _binary(e.op, a, b, e.span, e.right.span),
                                    [left, right], e)
        if isinstance(e, ast.Call):
            return self.call(e)
        if isinstance(e, ast.Subscript):
            return self.subscript(e)
        raise SpecError("unsupported expression", e.span)  # pragma: no cover

    def require_float(self, v, span: Span) -> None:
        if isinstance(v, Node) and v.dtype == "int":
            raise SpecError(f"integer input {v.name!r} cannot be used in arithmetic", span,
                            "integer data can be the labels of cross_entropy or one_hot, or be "
                            "compared (ids == 2)")

    def as_node(self, v, span: Span) -> Node:
        if isinstance(v, Node):
            self.require_float(v, span)
            return v
        return self.lower.map(lambda: v, [])

    def elementwise(self, fn, operands: list, e) -> Node:
        """fn applied to Nodes and folded literals, with broadcasting checked at `e`."""
        self.check_elementwise(operands, e)
        slots = [None if isinstance(v, Node) else v for v in operands]
        positions = [i for i, v in enumerate(operands) if isinstance(v, Node)]

        def body(*syms):
            vals = list(slots)
            for pos, s in zip(positions, syms):
                vals[pos] = s
            return fn(*vals)

        return self.lower.map(body, [v for v in operands if isinstance(v, Node)])

    def check_elementwise(self, operands: list, e) -> None:
        """Float operands (comparisons excepted) whose shapes broadcast together."""
        nodes = [v for v in operands if isinstance(v, Node)]
        compares = isinstance(e, ast.BinOp) and e.op in ops.COMPARISONS  # ids < 5 is fine
        for v, sub in zip(operands, _operand_spans(e)):
            if isinstance(v, Node) and not compares:
                self.require_float(v, sub)
        try:
            broadcast_shapes([n.shape for n in nodes])
        except ValueError:
            shapes = " and ".join(_fmt_shape(n.shape) for n in nodes)
            raise SpecError(f"shapes {shapes} cannot be broadcast together", e.span,
                            "trailing dimensions must match or be 1") from None

    def matmul(self, a, b, e: ast.BinOp) -> Node:
        for v, side in ((a, e.left), (b, e.right)):
            if not isinstance(v, Node):
                raise SpecError("'@' needs arrays on both sides; use '*' for a number", side.span)
            self.require_float(v, side.span)
            if len(v.shape) > 2:
                raise SpecError(f"'@' on a {len(v.shape)}-D operand (batched matmul) is not "
                                f"supported yet: {_fmt_shape(v.shape)}", side.span,
                                "use einsum, e.g. einsum(\"bij,bjk->bik\", a, b)")
            if len(v.shape) not in (1, 2):
                raise SpecError(f"'@' takes 1-D or 2-D operands, got {_fmt_shape(v.shape)}",
                                side.span, "use einsum for other contractions")
        ka, kb = a.shape[-1], b.shape[0]
        if ka != kb:
            hint = None
            if len(b.shape) == 2 and b.shape[1] == ka:
                hint = "did you mean to transpose the right operand ('.T')?"
            elif len(a.shape) == 2 and a.shape[0] == kb:
                hint = "did you mean to transpose the left operand ('.T')?"
            raise SpecError(f"matmul shapes do not match: {_fmt_shape(a.shape)} @ "
                            f"{_fmt_shape(b.shape)} (inner dimensions {ka} and {kb} differ)",
                            e.span, hint)
        return self.lower.matmul(a, b)

    # ------------------------------------------------------------------ calls
    def call(self, e: ast.Call):
        fname = e.func.id
        if fname in ops.ELEMENTWISE or fname in self.fns:
            if e.kwargs:
                raise SpecError(f"{fname}() takes no keyword arguments", e.kwargs[0].span)
            operands = [self.expr(a) for a in e.args]
            arity = ops.ELEMENTWISE[fname].arity if fname in ops.ELEMENTWISE \
                else len(self.fns[fname].params)
            self.check_arity(e, arity)
            if all(isinstance(v, sp.Expr) for v in operands):
                return self.apply_scalar_fn(e, fname, operands)
            if fname in self.fns:
                return self.call_fn(e, fname, operands)
            return self.elementwise(lambda *s: self.apply_scalar_fn(e, fname, list(s)),
                                    operands, e)
        if fname not in ops.STRUCTURAL:
            raise self.unknown_function(e.func)
        arity, allowed, _ = ops.STRUCTURAL[fname]
        kwargs = {}
        for kw in e.kwargs:
            if kw.name not in allowed:
                ok = ", ".join(allowed) or "none"
                raise SpecError(f"{fname}() got an unexpected keyword {kw.name!r}", kw.span,
                                f"keywords it takes: {ok}")
            if kw.name in kwargs:
                raise SpecError(f"keyword {kw.name!r} given twice", kw.span)
            kwargs[kw.name] = kw
        if fname == "einsum":
            return self.einsum(e)
        if fname in ("max", "min") and len(e.args) == 2:
            raise SpecError(f"{fname}() reduces one array over axis=; it takes 1 positional "
                            f"argument, got 2", e.span,
                            f"for the elementwise {fname}imum of two arrays use "
                            f"{fname}imum(a, b)")
        self.check_arity(e, arity)
        if fname == "cross_entropy":
            return self.cross_entropy(e)
        if fname == "one_hot":
            return self.one_hot(e)
        x = self.expr(e.args[0])
        if not isinstance(x, Node):
            raise SpecError(f"{fname}() needs an array argument", e.args[0].span)
        self.require_float(x, e.args[0].span)
        keepdims = self.bool_kw(kwargs.get("keepdims"), False)
        default_axis = -1 if fname in ("softmax", "log_softmax") else None
        axes = self.axis_kw(kwargs.get("axis"), x, default_axis)
        if fname in ("sum", "mean"):
            return self.lower.reduce_sum(x, axes, keepdims, mean=(fname == "mean"))
        if fname == "logsumexp":
            return self.lower.logsumexp(x, axes, keepdims)
        if fname in ("max", "min"):
            return self.lower.reduce_extreme(x, axes, keepdims, smallest=(fname == "min"))
        if fname == "prod":
            return self.lower.reduce_prod(x, axes, keepdims)
        if fname in ("var", "std"):
            ddof = self.ddof_kw(kwargs.get("ddof"), x, axes)
            return self.lower.variance(x, axes, keepdims, ddof, std=(fname == "std"))
        if fname == "log_softmax":
            return self.lower.log_softmax(x, axes)
        return self.lower.softmax(x, axes)

    def subscript(self, e: ast.Subscript) -> Node:
        """NumPy basic indexing with integer literals: an index drops its axis, a slice
        start:stop:step keeps it. On a named dim the result's size must not depend on the
        dim (x[:, 0:3], x[-2:], x[t]); the dim is then checked at call time to be large
        enough."""
        x = self.expr(e.operand)
        if not isinstance(x, Node):
            raise SpecError("only arrays can be indexed", e.operand.span)
        self.require_float(x, e.operand.span)
        if len(e.items) > len(x.shape):
            raise SpecError(f"too many indices ({len(e.items)}) for an array of shape "
                            f"{_fmt_shape(x.shape)}", e.span)
        axes = []
        for k, item in enumerate(e.items):
            size = x.shape[k]
            if isinstance(item, ast.Slice):
                start, stop, step = (self.index_literal(p) for p in
                                     (item.start, item.stop, item.step))
                axes.append(self.slice_axis(size, start, stop, 1 if step is None else step,
                                                     item.span))
            else:
                axes.append(self.index_axis(size, self.index_literal(item), item.span))
        axes += [("full",)] * (len(x.shape) - len(e.items))
        return self.lower.select(x, axes)

    def index_literal(self, item) -> int | None:
        if item is None:
            return None
        v, sign = item, 1
        if isinstance(v, ast.Unary):
            v, sign = v.operand, -1
        if isinstance(v, ast.Number) and v.is_int:
            return sign * int(v.value)
        if isinstance(item, ast.Name) and item.id in self.env \
                and self.env[item.id].dtype == "int":
            raise SpecError(f"indexing by an integer array ({item.id}: a gather) is not "
                            "supported yet", item.span, "planned for spec language v2 (issue "
                            f"10); a lookup E[{item.id}] can be written one_hot({item.id}, V) @ E")
        raise SpecError("an index must be an integer literal", item.span,
                        "e.g. x[:, 0], x[-1], x[:, 0:3]")

    def require_size(self, dim: str, least: int, span: Span) -> None:
        known = self.graph.dim_minimums.get(dim, (0, ""))
        if least > known[0]:
            self.graph.dim_minimums[dim] = (least, f"{span.file}:{span.line}")

    def index_axis(self, size, t: int, span: Span) -> tuple:
        if isinstance(size, int):
            if not -size <= t < size:
                raise SpecError(f"index {t} is out of range for an axis of size {size}", span,
                                f"valid indices are {-size}..{size - 1}")
            return ("index", sp.Integer(t % size))
        self.require_size(size, t + 1 if t >= 0 else -t, span)
        return ("index", sp.Integer(t) if t >= 0 else dim_symbol(size) + t)

    def slice_axis(self, size, start, stop, step: int, span: Span) -> tuple:
        if step <= 0:
            raise SpecError("a slice step must be positive" if step == 0 else
                            "a negative slice step (reversal) is not supported yet", span)
        if isinstance(size, int):
            r = range(size)[slice(start, stop, step)]
            if len(r) == 0:
                raise SpecError(f"the slice selects nothing from an axis of size {size}", span)
            if len(r) == size:
                return ("full",)
            return ("slice", sp.Integer(r.start), step, len(r))
        if start is None and stop is None and step == 1:
            return ("full",)
        # On a named dim the result's size may not depend on the dim
        if start is None:
            start = 0
        if stop is not None and (start >= 0) == (stop >= 0) and stop > start:
            count = -(-(stop - start) // step)
            self.require_size(size, stop if stop >= 0 else -start, span)
        elif stop is None and start < 0:
            count = -(-(-start) // step)
            self.require_size(size, -start, span)
        else:
            raise SpecError(f"this slice of the named dimension {size!r} has a size that "
                            f"depends on {size!r}, which is not supported yet", span,
                            "use start and stop of the same sign (x[0:3], x[-3:-1], x[-3:]) "
                            "or a literal dimension")
        offset = sp.Integer(start) if start >= 0 else dim_symbol(size) + start
        return ("slice", offset, step, count)

    def ddof_kw(self, kw: ast.Keyword | None, x: Node, axes: tuple) -> int:
        if kw is None:
            return 0
        if not (isinstance(kw.value, ast.Number) and kw.value.is_int):
            raise SpecError("ddof= must be a non-negative integer", kw.value.span,
                            "ddof=0: population (the default); ddof=1: sample variance")
        ddof = int(kw.value.value)
        sizes = [x.shape[a] for a in axes]
        if all(isinstance(s, int) for s in sizes) and ddof >= _product(sizes):
            raise SpecError(f"ddof={ddof} leaves no degrees of freedom: only {_product(sizes)} "
                            "values are reduced", kw.value.span)
        return ddof

    def one_hot(self, e: ast.Call) -> Node:
        labels_expr, q_expr = e.args
        labels = self.int_labels(labels_expr, "one_hot")
        if isinstance(q_expr, ast.Number) and q_expr.is_int and q_expr.value >= 1:
            q = int(q_expr.value)
        elif isinstance(q_expr, ast.Name) and q_expr.id in self.graph.dims:
            q = q_expr.id
        else:
            raise SpecError("the number of classes of one_hot() must be a positive integer or "
                            "a dimension name", q_expr.span, "e.g. one_hot(y, q) or one_hot(y, 10)")
        self.bind_label_range(labels, q, labels_expr.span)
        return self.lower.one_hot(labels, q)

    def int_labels(self, labels_expr, fname: str) -> Node:
        if not isinstance(labels_expr, ast.Name):
            raise SpecError(f"the labels of {fname}() must be an integer input",
                            labels_expr.span, "declare it with 'input y[n]: int'")
        labels = self.lookup(labels_expr)
        if labels.dtype != "int":
            raise SpecError(f"the labels of {fname}() must be an integer input; "
                            f"{labels.name!r} is float", labels_expr.span,
                            f"declare it with 'input {labels.name}[...]: int'")
        return labels

    def bind_label_range(self, labels: Node, q, span: Span) -> None:
        if labels.label_range is not None and labels.label_range != q:
            raise SpecError(f"labels {labels.name!r} are used with {labels.label_range} and "
                            f"{q} classes", span)
        labels.label_range = q

    def bool_kw(self, kw: ast.Keyword | None, default: bool) -> bool:
        if kw is None:
            return default
        if isinstance(kw.value, ast.Name) and kw.value.id in ("True", "False"):
            return kw.value.id == "True"
        raise SpecError(f"{kw.name}= must be True or False", kw.value.span)

    def axis_kw(self, kw: ast.Keyword | None, x: Node, default) -> tuple[int, ...]:
        rank = len(x.shape)
        if kw is None:
            return tuple(range(rank)) if default is None else (default % max(rank, 1),)
        items = kw.value.items if isinstance(kw.value, ast.Tuple) else (kw.value,)
        axes: list[int] = []
        for item in items:
            v, sign = item, 1
            if isinstance(v, ast.Unary):
                sign, v = -1, v.operand
            if not (isinstance(v, ast.Number) and v.is_int):
                raise SpecError("axis= must be an integer or a tuple of integers", item.span,
                                "e.g. axis=1, axis=-1 or axis=(0, 2)")
            axis = sign * int(v.value)
            if not -rank <= axis < rank:
                raise SpecError(f"axis {axis} is out of range for an array of shape "
                                f"{_fmt_shape(x.shape)}", item.span,
                                f"valid axes are {-rank}..{rank - 1}" if rank else
                                "a scalar has no axes")
            if axis % rank in axes:
                raise SpecError(f"axis {axis} is given twice", item.span)
            axes.append(axis % rank)
        return tuple(sorted(axes))

    def cross_entropy(self, e: ast.Call) -> Node:
        logits = self.expr(e.args[0])
        labels_expr = e.args[1]
        if not isinstance(logits, Node) or len(logits.shape) not in (1, 2):
            raise SpecError("cross_entropy() needs logits of shape [n, q] (or [q])",
                            e.args[0].span)
        self.require_float(logits, e.args[0].span)
        target = None if isinstance(labels_expr, ast.Name) and labels_expr.id in self.env \
            and self.env[labels_expr.id].dtype == "int" else self.expr(labels_expr)
        if isinstance(target, Node):  # float target probabilities (soft labels)
            if target.shape != logits.shape:
                raise SpecError(f"target probabilities of shape {_fmt_shape(target.shape)} do "
                                f"not match logits of shape {_fmt_shape(logits.shape)}",
                                labels_expr.span, "soft labels have one probability per logit;"
                                " integer labels are declared 'input y[n]: int'")
            return self.lower.soft_cross_entropy(logits, target)
        labels = self.int_labels(labels_expr, "cross_entropy")
        if labels.shape != logits.shape[:-1]:
            raise SpecError(f"labels of shape {_fmt_shape(labels.shape)} do not match logits "
                            f"of shape {_fmt_shape(logits.shape)}", labels_expr.span,
                            "labels have one entry per row of the logits")
        self.bind_label_range(labels, logits.shape[-1], labels_expr.span)
        return self.lower.cross_entropy(logits, labels)

    def einsum(self, e: ast.Call) -> Node:
        if not e.args or not isinstance(e.args[0], ast.String):
            raise SpecError("einsum() takes a subscripts string first, e.g. "
                            "einsum(\"ij,jk->ik\", a, b)", e.span)
        sub_span = e.args[0].span
        subs = e.args[0].value.replace(" ", "")
        operands = [self.expr(a) for a in e.args[1:]]
        for v, a in zip(operands, e.args[1:]):
            if not isinstance(v, Node):
                raise SpecError("einsum() operands must be arrays", a.span)
            self.require_float(v, a.span)
        if "->" in subs:
            lhs, rhs = subs.split("->", 1)
        else:
            lhs = subs
            letters = lhs.replace(",", "")
            rhs = "".join(sorted(c for c in set(letters) if letters.count(c) == 1))
        terms = lhs.split(",")
        if "..." in subs:
            raise SpecError("'...' (ellipsis) in einsum subscripts is not supported yet",
                            sub_span, "name every axis with a letter")
        if not re.fullmatch(r"[A-Za-z]*", rhs) or not all(re.fullmatch(r"[A-Za-z]*", t)
                                                         for t in terms):
            raise SpecError(f"invalid einsum subscripts {subs!r}", sub_span,
                            "use letters, commas and one '->', e.g. \"ij,jk->ik\"")
        if len(terms) != len(operands):
            raise SpecError(f"einsum subscripts name {len(terms)} operands but "
                            f"{len(operands)} were given", sub_span)
        sizes: dict[str, object] = {}
        for t, v, a in zip(terms, operands, e.args[1:]):
            if len(t) != len(v.shape):
                raise SpecError(f"einsum term {t!r} has {len(t)} indices but the operand has "
                                f"shape {_fmt_shape(v.shape)}", a.span)
            if len(set(t)) != len(t):
                raise SpecError(f"einsum term {t!r} repeats an index (a diagonal), which is not "
                                "supported yet", sub_span)
            for c, s in zip(t, v.shape):
                if sizes.setdefault(c, s) != s:
                    raise SpecError(f"einsum index {c!r} has size {sizes[c]} and {s}", a.span)
        if len(set(rhs)) != len(rhs) or any(c not in sizes for c in rhs):
            raise SpecError(f"einsum output {rhs!r} must use distinct indices of the inputs",
                            sub_span)
        return self.lower.einsum(terms, rhs, operands, sizes)


# ----------------------------------------------------------------------------- limits
MAX_LOOP_DEPTH = 16  # indices of one node (loops nested in its kernel); Python's limit is 20
MAX_EXPRESSION_SIZE = 2_000  # sympy nodes of one body, counted as a tree, after inlining
MAX_FN_APPLICATIONS = 1_000  # user fn calls one statement expands to (nesting multiplies)


def expression_size(e: sp.Basic, memo: dict | None = None) -> int:
    """Nodes of `e` as a tree (shared subexpressions counted each time they occur): what
    differentiation and printing would expand. Linear in the distinct nodes."""
    memo = {} if memo is None else memo
    size = memo.get(e)
    if size is None:
        size = 1 + sum(expression_size(a, memo) for a in e.args)
        memo[e] = size
    return size


def check_size(e: sp.Basic, span: Span, what: str = "this expression") -> sp.Basic:
    """Refuse an expression that inlining (nested fn calls) made exponentially large: a
    158-byte spec of nested fns ran for more than 300 s in autodiff."""
    size = expression_size(e)
    if size > MAX_EXPRESSION_SIZE:
        raise SpecError(f"{what} has {size:,} terms after inlining; the limit is "
                        f"{MAX_EXPRESSION_SIZE:,}", span,
                        "nested fn calls multiply; compute intermediate values in statements "
                        "of their own")
    return e


def _check_new_nodes(nodes: list, span: Span) -> None:
    for n in nodes:
        depth = len([i for i in n.out if i is not None]) + len(n.reduce)
        if depth > MAX_LOOP_DEPTH:
            raise SpecError(f"this statement needs {depth} nested loops; the limit is "
                            f"{MAX_LOOP_DEPTH}", span, "use fewer indices (e.g. reshape the "
                            "data to fewer axes, or contract in steps)")
        if n.body is not None:
            check_size(n.body, span)


def check_derivative_sizes(graph: Graph) -> Graph:
    """The same bound on the backward bodies autodiff derived: nested fns that pass the
    forward bound can still expand (a 639-term body had an 18,043-term derivative and made
    a 966 KB module whose first call spent minutes in LLVM)."""
    for n in graph.nodes:
        if n.role == "backward" and n.body is not None and n.origin is not None:
            size = expression_size(n.body)
            if size > MAX_EXPRESSION_SIZE:
                raise SpecError(f"the derivative of this statement has {size:,} terms; the "
                                f"limit is {MAX_EXPRESSION_SIZE:,}", n.origin.span,
                                "nested fn calls multiply; compute intermediate values in "
                                "statements of their own")
    return graph


def _literal(value: sp.Basic, span: Span) -> sp.Basic:
    """A folded literal must be a finite float64 real: log(0), 0/0, sqrt(-1) and 2**1024
    crashed the compiler ("internal error") instead."""
    if not isinstance(value, sp.Basic) or value.free_symbols:
        return value
    if value.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise SpecError(f"{_text(span)} is undefined or infinite", span,
                        "a literal expression must be a finite real number")
    try:
        v = complex(value)
    except (TypeError, ValueError, OverflowError):
        v = complex(float("inf"))
    if v.imag != 0:
        raise SpecError(f"{_text(span)} is not a real number", span,
                        "a literal expression must be a finite real number")
    if not math.isfinite(v.real):
        raise SpecError(f"{_text(span)} is too large for a float64", span,
                        "a literal expression must be a finite real number")
    if isinstance(value, sp.Rational) and not value.is_Integer and value.q > 2 ** 53:
        return sp.Float(v.real)  # 2 ** -1074: its IEEE value, not an exact fraction
    return value


def _binary(op: str, a, b, span: Span, right: Span):
    """a OP b where a or b is a sympy value (a literal, or a fn parameter)."""
    if op == "/" and isinstance(b, sp.Basic) and b.is_number and b == 0:
        raise SpecError("division by zero", right, "x / 0 is inf, -inf or NaN depending on "
                        "x; write the value you mean")
    if op == "**" and isinstance(a, sp.Basic) and isinstance(b, sp.Basic) and a.is_number \
            and b.is_number:
        fa, fb = complex(a).real, complex(b).real
        if fa == 0 and fb < 0:
            raise SpecError("0 raised to a negative power is a division by zero", span)
        magnitude = fb * math.log2(abs(fa)) if fa != 0 else 0.0  # log2 of the result
        if magnitude > 1100:  # checked before sympy computes an exact 10 ** 10 ** 10
            raise SpecError(f"{_text(span)} is too large for a float64", span,
                            "a literal expression must be a finite real number")
        if magnitude < -1100 and fa > 0:  # IEEE: underflows to 0
            return sp.Float(0.0)
    return _literal(_BINARY[op](a, b), span)


def _text(span: Span) -> str:
    code = span.text[span.col - 1:span.end - 1].strip()
    balanced = code.count("(") == code.count(")")  # spans leave out outer parentheses
    return repr(code) if code and len(code) <= 60 and balanced else "this expression"


# ----------------------------------------------------------------------------- helpers
_BINARY = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "**": lambda a, b: a ** b,
    **{op: (lambda cls: lambda a, b: cls(a, b))(cls) for op, cls in ops.COMPARISONS.items()},
}


def _number(e: ast.Number) -> sp.Expr:
    if e.is_int:
        return sp.Integer(int(float(e.value))) if e.value < 2 ** 53 else sp.Float(e.value)
    return sp.Float(e.value) if e.value != int(e.value) or e.value >= 2 ** 53 \
        else sp.Integer(int(e.value))


def _product(sizes: list[int]) -> int:
    total = 1
    for s in sizes:
        total *= s
    return total


def _operand_spans(e) -> list[Span]:
    if isinstance(e, ast.BinOp):
        return [e.left.span, e.right.span]
    if isinstance(e, ast.Unary):
        return [e.operand.span]
    if isinstance(e, ast.Call):
        return [a.span for a in e.args]
    return []


def _fmt_shape(shape: tuple) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]" if shape else "scalar"


def _source(st) -> str:
    text = st.span.text
    code = text.split("#", 1)[0].strip()
    return code


def check(spec: ast.Spec) -> Graph:
    """Resolve, type and shape-check a parsed spec; returns the forward graph."""
    return _Checker(spec).run()
