"""Statements: each scheduled `Step` of a kernel as lines of code, (depth, text) pairs.

Consumes the `Program` of one kernel (its steps, in order) and produces the lines of its
body: BLAS calls (`np.dot`, `_dot_t`, and the `_gemm` of a folded update), loop nests (one
per step, or one per group of steps over the same domain, with threaded and libm twins
where they pay), the argument re-checks, and the comment that names each step's equation
and spec line. Expressions are spelled by the strict printer; `render` lays the module out.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import sympy as sp

from .explain import display_name, equation, fmt_shape
from .ir import Graph, Node, arg_symbol, dim_symbol, index_symbol
from .printer import CodePrinter
from .schedule import Step

if TYPE_CHECKING:
    from .render import Kernel


def safe_comment(text: str) -> str:
    """Spec text made safe inside a comment or docstring: printable, no quotes or escapes."""
    out = []
    for ch in text:
        if ch == "\t":
            out.append(" ")
        elif ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append("\\\"")
        elif not ch.isprintable() or ch in "\u2028\u2029":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


class StepWriter:
    """Turns one Step into (depth, line) pairs."""

    def __init__(self, graph: Graph, kernel: Kernel):
        self.graph = graph
        self.kernel = kernel
        self.locals: dict[int, str] = {}  # fused-loop members read as scalar locals
        # loops as functions of their own: (name, params, body lines, return, threaded?)
        self.twins: list = []
        # Values the kernel returns, and the buffers they take over in place, get their own
        # allocations: a returned view into the workspace would keep all of it alive.
        self.returned = {n.id for n in kernel.returns}
        for step in reversed(kernel.program.steps):
            if step.inplace_of is not None and step.node.id in self.returned:
                self.returned.add(step.inplace_of.id)
        self.workspace = sp.Integer(0)  # elements of the per-call workspace so far
        self.allocations: list = []  # (name, elements) of arrays allocated on their own
        self.temporaries: list = []  # (name, elements) of the views into the workspace
        self.scratch = False  # whether `_scratch` (blas._dot_t's room) follows the workspace
        # Threads only where no BLAS call runs: right after a GEMM, OpenBLAS's threads still
        # spin on the two cores, and a threaded loop then waited for them (8x slower on 65k
        # elements)
        self.threads = not any(s.kind == "dot" for s in kernel.program.steps)

    def fused_lines(self, group: list[Step], keep: set[int]) -> list[tuple[int, str]]:
        """One loop nest for consecutive steps over the same domain (see `fusable_groups`):
        intermediates become scalar locals; only values needed later are stored. A loop heavy
        in transcendental functions also gets a multi-threaded twin, used on large domains;
        one calling sin/cos a twin calling libm, used if an argument was out of range."""
        first = group[0]
        sizes = [first.node.sizes[i] for i in _loop_indices(first)]
        out: list[tuple[int, str]] = []
        for s in group:
            if s.form == "accumulate" or (s.node.out and s.node.id in keep):
                out.append((0, f"{s.node.name} = {s.inplace_of.name}  # reuse the buffer"
                            if s.inplace_of is not None else self.alloc(s.node)))
        serial, trig = self.loop_body(group, keep, sizes, "range", "poly")
        reductions = [f"_acc_{s.node.name}" for s in group if not s.node.out]
        members = {m.node.id for m in group}
        inputs = sorted({a.node.name for s in group for a in s.node.args
                         if a.node.id not in members})
        params = list(self.kernel.dims) + inputs + [s.node.name for s in group
                                                    if s.node.id in keep and s.node.out]
        lines = serial
        # (not with an array summed over the outer loop: threads would race on it)
        if self.threads and _transcendentals(group) >= PARALLEL_MIN_CALLS and all(
                s.form != "accumulate" for s in group):
            name = self.twin("parallel", group, keep, sizes, params, reductions
                             + (["_wide"] if trig else []))
            total = " * ".join(str(x) for x in sizes)
            call = _call(reductions + (["_wide"] if trig else []), name, params)
            lines = [(0, f"if {total} >= {PARALLEL_MIN_SIZE}:  # large: use every core"),
                     (1, call), (0, "else:")] + [(1 + d, line) for d, line in serial]
        if trig:
            name = self.twin("libm", group, keep, sizes, params, reductions)
            lines += [(0, "if _wide:  # sin/cos of an argument beyond 1e6 in size: again, "
                          "with libm"), (1, _call(reductions, name, params))]
        finals = [(0, f"{s.node.name} = _acc_{s.node.name}") for s in group if not s.node.out]
        return out + lines + finals

    def twin(self, kind: str, group, keep, sizes, params, returns) -> str:
        """A loop nest as a function of its own: threaded ("parallel": prange, vectorised
        sin/cos) or with libm's sin/cos ("libm")."""
        name = f"_{kind}_{self.kernel.name.strip('_')}_{len(self.twins)}"
        loop_fn, trig = ("numba.prange", "poly") if kind == "parallel" else ("range", "libm")
        body, _ = self.loop_body(group, keep, sizes, loop_fn, trig)
        body = [(1 + depth, line) for depth, line in body]
        self.twins.append((name, params, body, ", ".join(returns) or "None",
                           kind == "parallel"))
        return name

    def loop_body(self, group, keep, sizes, loop_fn, trig) -> tuple[list[tuple[int, str]], bool]:
        """The loop nest's lines (reductions left in `_acc_<name>`), and whether it calls the
        vectorised sin/cos (it then also counts, in `_wide`, the arguments they do not
        cover)."""
        out: list[tuple[int, str]] = []
        for s in group:
            if not s.node.out:
                out.append((0, f"_acc_{s.node.name} = 0.0"))
            elif s.form == "accumulate":  # here, not at allocation: a libm rerun sums again
                out.append((0, f"{s.node.name}[:] = 0.0"))
        for depth, size in enumerate(sizes):
            fn = loop_fn if depth == 0 else "range"
            out.append((depth, f"for i{depth} in {fn}({size}):"))
        inner = len(sizes)
        self.locals = {}
        trig_args: list[str] = []
        for s in group:
            loopvars = {i: f"i{k}" for k, i in enumerate(_loop_indices(s))}
            printer = CodePrinter(self.names(s.node, loopvars), trig)
            expr = printer(s.node.body)
            trig_args += [a for a in printer.trig_args if a not in trig_args]
            if s.form == "accumulate":
                out.append((inner, f"{self.read(s.node, s.node.out, loopvars)} += {expr}"))
            elif s.node.out:
                local = f"_v_{s.node.name}"
                out.append((inner, f"{local} = {expr}"))
                if s.node.id in keep:
                    out.append((inner, f"{self.read(s.node, s.node.out, loopvars)} = {local}"))
                self.locals[s.node.id] = local
            else:
                out.append((inner, f"_acc_{s.node.name} += {expr}"))
        self.locals = {}
        if trig_args:
            out.insert(0, (0, "_wide = 0"))
            # one update per pass: a threaded loop allows a reduction variable only once
            out.append((inner, "_wide += " + " + ".join(f"_trig_wide({a})" for a in trig_args)))
        return out, bool(trig_args)

    def read(self, node: Node, idx: tuple, loopvars: dict[str, str]) -> str:
        if not idx:
            # scalar inputs/params arrive as 1-element views (Numba's 0-d indexing is awkward)
            return f"{node.name}[0]" if node.kind in ("input", "param") else node.name
        return f"{node.name}[{', '.join('0' if i is None else loopvars[i] for i in idx)}]"

    def names(self, node: Node, loopvars: dict[str, str]):
        mapping = {}
        for k, a in enumerate(node.args):
            local = self.locals.get(a.node.id)
            mapping[arg_symbol(k)] = local if local is not None else \
                self.read(a.node, a.idx, loopvars)
        for i, v in loopvars.items():
            mapping[index_symbol(i)] = v
        for d in self.graph.dims:
            mapping[dim_symbol(d)] = d
        return mapping

    def size(self, s) -> str:
        return str(s)

    def alloc(self, node: Node, zero: bool = False) -> str:
        """A new array for `node`. Values the kernel returns get their own allocation (so a
        tape keeps only what it needs); temporaries are views into one workspace array per
        call (one allocation instead of one per temporary)."""
        shape = ", ".join(self.size(s) for s in node.shape)
        shape = f"({shape},)" if len(node.shape) == 1 else f"({shape})"
        if node.id in self.returned:
            fn = "np.zeros" if zero else "np.empty"
            self.allocations.append((node.name, sp.Mul(*[
                dim_symbol(s) if isinstance(s, str) else sp.Integer(s) for s in node.shape])))
            return f"{node.name} = {fn}({shape}, dt)"
        size = sp.Mul(*[dim_symbol(s) if isinstance(s, str) else sp.Integer(s)
                        for s in node.shape])
        self.temporaries.append((node.name, size))
        start, self.workspace = self.workspace, self.workspace + size
        view = f"{node.name} = _ws[{start}:{self.workspace}].reshape({shape})"
        return view + (f"; {node.name}[:] = 0.0" if zero else "")

    def lines(self, step: Step) -> list[tuple[int, str]]:
        node = step.node
        if step.kind == "scalar":
            expr = CodePrinter(self.names(node, {}))(node.body)
            return [(0, f"{node.name} = {expr}")]
        if step.kind == "dot":
            return self.dot_lines(step)
        if step.gemm:
            return self.gemm_update_lines(step)
        loopvars = {i: f"i{k}" for k, i in enumerate(step.order)}
        sizes = node.sizes
        out: list[tuple[int, str]] = []
        write = self.read(node, node.out, loopvars) if node.out else None
        if step.writes is not None and not node.out:
            write = f"{step.writes.name}[0]"
        elif step.writes is not None:
            write = self.read(step.writes, node.out, loopvars)
        expr = CodePrinter(self.names(node, loopvars))(node.body)
        if step.inplace_of is not None and len(node.args) == 1 and node.body == arg_symbol(0):
            return [(0, f"{node.name} = {step.inplace_of.name}  # same values: no copy")]
        if step.writes is None:
            if step.inplace_of is not None:
                out.append((0, f"{node.name} = {step.inplace_of.name}  # reuse the buffer"))
            elif node.out:
                out.append((0, self.alloc(node, zero=(step.form == "accumulate"))))
        if step.form == "map":
            outer = _row_constant_call(step)
            if outer is not None:  # the argument first, then the function in a flat pass
                expr = CodePrinter(self.names(node, loopvars))(node.body.args[0])
            for depth, i in enumerate(step.order):
                out.append((depth, f"for {loopvars[i]} in range({sizes[i]}):"))
            out.append((len(step.order), f"{write} = {expr}"))
            if outer is not None:
                total = " * ".join(str(sizes[i]) for i in step.order)
                flat = f"{node.name}.reshape({total})"
                call = CodePrinter({arg_symbol(0): "_flat[i0]"})(outer(arg_symbol(0)))
                out += [(0, f"_flat = {flat}  # the same buffer, as one row"),
                        (0, f"for i0 in range({total}):"), (1, f"_flat[i0] = {call}")]
            return out
        if step.form == "accumulate":
            for depth, i in enumerate(step.order):
                out.append((depth, f"for {loopvars[i]} in range({sizes[i]}):"))
            out.append((len(step.order), f"{write} += {expr}"))
            return out
        # register: out loops, then an accumulator over the reduced loops
        n_out = len([i for i in node.out if i is not None])
        for depth, i in enumerate(step.order[:n_out]):
            out.append((depth, f"for {loopvars[i]} in range({sizes[i]}):"))
        init = {"sum": "0.0", "max": "-np.inf", "prod": "1.0"}[node.reducer]
        # a total over every loop keeps a name of its own: it may share a loop over rows
        # with row statistics, whose `acc` starts again at each row (see share_row_loops)
        acc = "acc" if n_out else f"_acc_{node.name}"
        out.append((n_out, f"{acc} = {init}"))
        for depth, i in enumerate(step.order[n_out:], n_out):
            out.append((depth, f"for {loopvars[i]} in range({sizes[i]}):"))
        inner = len(step.order)
        if node.reducer == "sum":
            out.append((inner, f"{acc} += {expr}"))
        elif node.reducer == "prod":
            out.append((inner, f"{acc} *= {expr}"))
        else:
            out.append((inner, f"{acc} = max({acc}, {expr})"))
        out += [(inner, line) for line in self.decay_lines(step, loopvars)]
        out.append((n_out, f"{write} = {acc}" if write else f"{node.name} = {acc}"))
        return out

    def dot_lines(self, step: Step) -> list[tuple[int, str]]:
        node, d = step.node, step.dot
        left, right = _operands(d)
        out: list[tuple[int, str]] = []
        if len(node.shape) == 2 and d["right_t"] and not d["left_t"]:
            out.append((0, self.alloc(node)))  # a @ b.T: see blas._dot_t
            out.append((0, f"_dot_t({left}, {d['right'].name}, {node.name}, _scratch)"))
            self.scratch = True
        elif len(node.shape) == 2:
            out.append((0, self.alloc(node)))
            out.append((0, f"np.dot({left}, {right}, {node.name})"))
        else:
            out.append((0, f"{node.name} = np.dot({left}, {right})"))
        coef = self.coef_text(step)
        if coef is not None:
            if node.shape:
                out.append((0, f"{node.name} *= {coef}"))
            else:
                out.append((0, f"{node.name} = {node.name} * {coef}"))
        return out

    def coef_text(self, step: Step) -> str | None:
        """The scalar factor of a dot step (`1/n` of a mean), None when it is 1."""
        node, coef = step.node, step.dot["coef"]
        if coef == 1:
            return None
        scalars = {arg_symbol(k): self.read(a.node, a.idx, {})
                   for k, a in enumerate(node.args) if not a.idx}  # coef reads scalars only
        scalars.update({dim_symbol(d): d for d in self.graph.dims})
        return CodePrinter(scalars)(coef)

    def gemm_update_lines(self, step: Step) -> list[tuple[int, str]]:
        """`p = scale * (a @ b) + beta * p (+ rest)` as one `_gemm` writing p, after a loop
        that adds `rest` in place if there is one."""
        node, g = step.node, step.gemm
        loopvars = {i: f"i{k}" for k, i in enumerate(node.out)}
        out: list[tuple[int, str]] = []
        if g["rest"] is not None:
            names = self.names(node, loopvars)
            for depth, i in enumerate(node.out):
                out.append((depth, f"for {loopvars[i]} in range({node.sizes[i]}):"))
            out.append((len(node.out), f"{self.read(step.writes, node.out, loopvars)} = "
                                       f"{CodePrinter(names)(g['rest'])}"))
        alpha, beta = self.gemm_scalars(step)
        left, right = _operands(g["product"].dot)
        out.append((0, f"_gemm({alpha}, {left}, {right}, {beta}, {step.writes.name})"))
        return out

    def gemm_scalars(self, step: Step, applied: bool = True) -> tuple[str, str]:
        """alpha and beta of an update's GEMM, as code; beta is 1.0 where an earlier pass
        applied it (`applied`: what that pass multiplies by)."""
        g = step.gemm
        names = self.names(step.node, {i: f"i{k}" for k, i in enumerate(step.node.out)})
        alpha = _scalar_text(g["scale"], names)
        coef = self.coef_text(g["product"])
        if coef is not None:
            alpha = f"({alpha}) * ({coef})"
        beta = _scalar_text(g["beta"], names)
        return alpha, ("1.0" if g.get("decayed") and applied else beta)

    def decay_lines(self, step: Step, loopvars: dict[str, str]) -> list[str]:
        """`W[i, j] *= beta` for the updates whose decay this reading pass applies."""
        out = []
        for update in step.decays:
            param = update.writes
            idx = next(a.idx for a in step.node.args if a.node.id == param.id)
            _, beta = self.gemm_scalars(update, applied=False)
            out.append(f"{self.read(param, idx, loopvars)} *= {beta}  # decay of the "
                       f"{param.name} update below, while this pass reads {param.name}")
        return out

    def gemm_comment(self, step: Step) -> str:
        p, g = step.writes.name, step.gemm
        alpha, beta = self.gemm_scalars(step, applied=False)
        product = equation(g["product"], {})
        if any(c in beta for c in " +-*/"):
            beta = f"({beta})"
        if g.get("decayed"):
            return (f"  as one GEMM into {p}, no gradient array: {p} = {alpha} * ({product})"
                    f" + {p}, after {p} *= {beta} in the last pass that read it")
        if g["rest"] is not None:
            return (f"  the loop applies the other terms, then one GEMM adds {alpha} * "
                    f"({product}) into {p}: no gradient array")
        return (f"  as one GEMM into {p}, no gradient array: "
                f"{p} = {alpha} * ({product}) + {beta} * {p}")


def _operands(d: dict) -> tuple[str, str]:
    return (d["left"].name + (".T" if d["left_t"] else ""),
            d["right"].name + (".T" if d["right_t"] else ""))


def _scalar_text(expr: sp.Expr, names: dict) -> str:
    return repr(float(expr)) if expr.is_Number else CodePrinter(names)(expr)


def step_comment(step: Step, eq: str, objective: str = "J") -> list[str]:
    """The comment above a step: its equation (or spec line), shape and origin."""
    node = step.node
    lines = []
    origin = node.origin
    where = ""
    if origin is not None and origin.span is not None:
        where = f"  ({origin.span.file}:{origin.span.line})"
    if step.writes is not None:
        lines.append(f"SGD update of {step.writes.name}: {step.writes.name} -= lr * "
                     f"d{objective}/d{step.writes.name}")
    elif node.role == "backward" and origin is not None:
        lines.append(f"{eq}    {fmt_shape(node.shape)}")
        lines.append(f"  grad of: {origin.source}{where}")
    else:
        src = origin.source if origin is not None else display_name(node)
        if node.named:
            lines.append(f"{src}    {fmt_shape(node.shape)}{where}")
        else:
            lines.append(f"{eq}    {fmt_shape(node.shape)}")
            lines.append(f"  part of: {src}{where}")
    return [safe_comment(x) for x in lines]


def argument_checks(kernel: Kernel, minimums: dict | None = None) -> list[str]:
    """Compiled re-checks of what the Python fast path does not look at: every array's
    shape against the dims, dims non-empty, labels in range. They run before any write, so
    a failing call changes nothing; the wrapper then reports the precise error."""
    lines = [f"{d} = {expr}" for d, expr in kernel.derived_dims.items()]
    if kernel.dims:
        lines.append(f"if {' or '.join(f'{d} < 1' for d in kernel.dims)}:")
        lines.append("    raise ValueError(\"graphgen: empty dimension\")")
    for d, (least, where) in sorted((minimums or {}).items()):
        if d in kernel.dims:  # an index or slice of the spec reads this far
            lines.append(f"if {d} < {least}:")
            lines.append(f"    raise ValueError(\"graphgen: dimension {d} must be at least "
                         f"{least} for an index or slice at {safe_comment(where)}\")")
    for node in kernel.program.reads:
        if node.kind == "hyper" or not node.shape:
            continue
        conds = [f"{node.name}.shape[{k}] != {size}" for k, size in enumerate(node.shape)]
        lines.append(f"if {' or '.join(conds)}:")
        lines.append(f"    raise ValueError(\"graphgen: shape of {node.name}\")")
        if node.label_range is not None:
            lines.append(f"for _label in {node.name}.ravel():")
            lines.append(f"    if _label < 0 or _label >= {node.label_range}:")
            lines.append(f"        raise ValueError(\"graphgen: label in {node.name}\")")
    return lines + _aliasing_checks(kernel)


def _aliasing_checks(kernel: Kernel) -> list[str]:
    """sgd_step writes its params while it reads every array argument: any two that share
    memory (tied weights, overlapping views, an input that is a param) are refused before
    anything is written. On the fast path every array is C-contiguous, so overlapping
    address ranges are shared memory; the wrapper then names the pair."""
    if not kernel.lr:
        return []
    arrays = [n for n in kernel.program.reads if n.kind in ("input", "param")]
    lines = []
    for k, p in enumerate(arrays):
        for a in arrays[k + 1:]:
            if p.kind == "param" or a.kind == "param":
                lines.append(f"if _overlap({p.name}, {a.name}):")
                lines.append(f"    raise ValueError(\"graphgen: {p.name} and {a.name} share "
                             f"memory\")")
    return lines


MEMORY_CAP = 4.0e18  # bytes: any size below this fits int64, so no size computation wraps


def memory_checks(kernel: Kernel, allocations: list, temporaries: list,
                  itemsize: str) -> list[str]:
    """Compiled checks that every allocation of a call, and all of them together, fit the
    memory budget (`_budget` bytes, capped at MEMORY_CAP) before anything is allocated.

    Sizes are computed in float64, which cannot wrap: Numba's int64 size arithmetic and
    reshape checks wrap silently (n**4 for n = 65536 is 0), and a wrapped size let a kernel
    write past its buffer. Below MEMORY_CAP every int64 size computation is exact."""
    allocations = [(name, size) for name, size in allocations if size != 0]
    if not allocations:
        return []
    # each temporary by name, then the workspace that holds them, then everything
    named = [(f"temporary {n!r}", size) for n, size in temporaries] \
        if len(temporaries) > 1 else []
    floats = {dim_symbol(d): sp.Symbol(f"_f_{d}") for d in kernel.dims}
    lines = [f"_f_{d} = float({d})" for d in kernel.dims]
    lines.append(f"_budget = min(_budget, {MEMORY_CAP!r})")
    for k, (name, size) in enumerate(named + allocations):
        lines.append(f"_b{k} = ({sp.sympify(size).xreplace(floats)}) * {itemsize}")
        lines += _over_budget(f"_b{k}", name)
    if len(allocations) > 1:
        lines.append("_b = " + " + ".join(f"_b{k}" for k in range(len(named),
                                                                 len(named) + len(allocations))))
        lines += _over_budget("_b", "all arrays")
    return lines


def _over_budget(var: str, name: str) -> list[str]:
    what = "the temporaries" if name == "_ws" else name if " " in name else f"array {name!r}"
    return [f"if {var} > _budget:", f"    _memory_error(\"{what}\", {var}, _budget)"]


PARALLEL_MIN_CALLS = 3  # transcendental calls per element that make threads worth it
PARALLEL_MIN_SIZE = 65536  # elements; below this, thread start-up costs more than it saves
_TRANSCENDENTAL = ("_exp(", "_log(", "_sin(", "_cos(", "_tanh(", "_sigmoid(", "_softplus(",
                   "np.sqrt(", "np.sinh(", "np.cosh(", "np.tan(")


def _transcendentals(group: list[Step]) -> int:
    text = " ".join(CodePrinter(_any_names(s.node))(s.node.body) for s in group)
    return sum(text.count(f) for f in _TRANSCENDENTAL)


def _call(results: list[str], name: str, params: list[str]) -> str:
    lhs = ", ".join(results)
    return f"{lhs + ' = ' if lhs else ''}{name}({', '.join(params)})"


# Applied to a loop-wide argument in a pass of its own when the argument reads a value
# constant along the inner loop (exp(o[i, j] - max[i]) over few classes j): one flat pass
# vectorises (1.4 ns/element for 3 classes, 0.9 for 10) where rows of a few elements run
# the function scalar (6.4 and 1.9 ns); for long rows both take ~0.7 ns.
_FLAT_PASS_FUNCTIONS = (sp.exp, sp.log, sp.tanh)


def _row_constant_call(step: Step):
    """The function of `f(argument)` if a map step's body is that, with f one of
    _FLAT_PASS_FUNCTIONS and some operand constant along the innermost loop; else None."""
    node = step.node
    if (step.writes is not None or len(step.order) < 2 or None in node.out
            or node.body.func not in _FLAT_PASS_FUNCTIONS or len(node.body.args) != 1):
        return None
    inner = step.order[-1]
    used = node.body.free_symbols
    if any(arg_symbol(k) in used and a.idx and inner not in a.idx
           for k, a in enumerate(node.args)):
        return node.body.func
    return None


def calls_trig(step: Step) -> bool:
    return bool(step.node.body.atoms(sp.sin, sp.cos))


def _any_names(node: Node) -> dict:
    names = {arg_symbol(k): f"a{k}" for k in range(len(node.args))}
    names.update({s: s.name for s in node.body.free_symbols if s not in names})
    return names


def _loop_indices(step: Step) -> tuple:
    return tuple(step.node.out) if step.form == "map" else tuple(step.order)


def loop_domain(step: Step) -> tuple | None:
    """The iteration domain of a step that can share a loop nest, or None: an elementwise
    map, a sum to a scalar, or a sum over the outer loops into an array (a column sum,
    `out[j] += ...`, as the backward of a batch statistic or of a broadcast bias)."""
    node = step.node
    if step.kind != "loop" or step.writes is not None \
            or step.decays:  # a pass that writes a parameter runs once, on its own
        return None
    if step.inplace_of is not None and calls_trig(step):
        return None  # its libm rerun would read the buffer it overwrote
    if step.form == "map" and node.out and None not in node.out:
        return tuple(node.sizes[i] for i in node.out)
    if step.form == "register" and not node.out and node.reducer == "sum":
        return tuple(node.sizes[i] for i in step.order)
    if step.form == "accumulate" and node.reducer == "sum" and step.inplace_of is None:
        return tuple(node.sizes[i] for i in step.order)
    return None


def fusable_groups(steps: list[Step]) -> list[list[Step]]:
    """Consecutive steps over the same domain, each reading earlier members only at its own
    loop index (and never a reduction still being summed), share one loop nest. This is what
    makes an elementwise forward+backward one pass over memory."""
    groups: list[list[Step]] = []
    members: dict[int, bool] = {}  # node id -> is a reduction
    domain = None
    in_place = trig = False  # whether a member of the last group reuses a buffer, calls sin/cos
    for s in steps:
        d = loop_domain(s)
        # A loop that calls sin/cos may run twice (its libm twin): no member of it may
        # overwrite what it reads (a buffer reused in place).
        s_trig = calls_trig(s)
        rerun_safe = not ((in_place and s_trig) or (s.inplace_of is not None and trig))
        fits = d is not None and groups and d == domain and rerun_safe and all(
            a.node.id not in members or (not members[a.node.id]
                                         and tuple(a.idx) == _loop_indices(s))
            for a in s.node.args)
        if fits:
            groups[-1].append(s)
        else:
            groups.append([s])
            members = {}
            domain = d
            in_place = trig = False
        in_place = in_place or s.inplace_of is not None
        trig = trig or s_trig
        if d is not None:
            members[s.node.id] = s.form != "map"
    return groups


def _row_complete(step: Step) -> bool:
    """Whether row r of the step's value is final once its loop has done row r: a map, or a
    reduction over the inner loops only (a row statistic: max, sum, mean of a row)."""
    node = step.node
    outer = _loop_indices(step)[0] if _loop_indices(step) else None
    if step.form == "map":
        return bool(node.out) and node.out[0] is not None
    return step.form == "register" and bool(node.out) and node.out[0] is not None \
        and node.out[0] == outer


def _single_outer_loop(lines: list[tuple[int, str]]) -> tuple | None:
    """(prefix, loop line, body, suffix) if `lines` are set-up lines, one loop nest and
    finishing lines, else None (twins, flat passes and conditionals do not qualify)."""
    heads = [k for k, (depth, line) in enumerate(lines)
             if depth == 0 and line.startswith(("for ", "if ", "else"))]
    if len(heads) != 1 or not lines[heads[0]][1].startswith("for i0 in range("):
        return None
    k = heads[0]
    end = k + 1
    while end < len(lines) and lines[end][0] > 0:
        end += 1
    return lines[:k], lines[k], lines[k + 1:end], lines[end:]


def share_row_loops(units: list[tuple[list[Step], list[tuple[int, str]]]]) -> list[list[int]]:
    """Which consecutive units (each a fused group and its lines) share one loop over rows.

    A row statistic and the maps around it (layer norm: mean, centre, variance, scale;
    softmax: max, exp, sum, divide) are separate loop nests over the same rows; run inside
    one outer loop, each row is read from memory once and stays in cache for the passes
    that follow. A unit joins the run before it when its loop is `for i0 in range(S)` with
    the same S, and everything it reads from the run is row-complete at the row it is on
    (`_row_complete`, read at the outer index on the producer's outer axis). Returns the
    runs as lists of unit positions.
    """
    runs: list[list[int]] = []
    produced: dict[int, Step] = {}  # node id -> step, in the current run
    loop_line = None
    for u, (group, lines) in enumerate(units):
        # (never a pass that writes a parameter: an earlier unit may still read other rows)
        shape = _single_outer_loop(lines) if all(
            s.kind == "loop" and s.writes is None and not s.decays and not s.gemm
            for s in group) else None
        fits = bool(runs) and shape is not None and shape[1] == loop_line
        if fits:
            for s in group:
                own_outer = _loop_indices(s)[0] if _loop_indices(s) else None
                for a in s.node.args:
                    p = produced.get(a.node.id)
                    if p is None:
                        continue
                    if not (_row_complete(p) and a.idx and a.idx[0] == own_outer
                            and own_outer is not None):
                        fits = False
        if fits:
            runs[-1].append(u)
        else:
            runs.append([u])
            produced = {}
            loop_line = shape[1] if shape is not None else None
        if loop_line is not None:
            produced.update({s.node.id: s for s in group})
    return runs


def merge_row_loops(line_lists: list[list[tuple[int, str]]]) -> list[tuple[int, str]]:
    """The lines of units that share a loop over rows (see `share_row_loops`): every unit's
    set-up first, then one loop holding each unit's body in turn, then the finishing lines."""
    parts = [_single_outer_loop(lines) for lines in line_lists]
    out = [line for p in parts for line in p[0]] + [parts[0][1]]
    for p in parts:
        out += p[2]
    return out + [line for p in parts for line in p[3]]
