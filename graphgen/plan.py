"""`graphgen show --stage plan`: every decision the backend took for each kernel, in words.

For each entry point's kernel: the threads it may use, then each pass in order — a BLAS
product (which operands, transposed or not, and a parameter update folded into it with its
alpha and beta), a loop nest (domain, loop order, form: map, register reduction or column
sum), the steps that share one loop (fusion) or one loop over rows, which values are
stored and where (per-call workspace, an array of their own, or a dying buffer reused in
place), and which stay scalars in registers.

This reads the decisions where they are taken today (`schedule` and `statements`, through
`render`'s per-kernel context); it takes none of its own.
"""
from __future__ import annotations

import sympy as sp

from .explain import program_equations
from .ir import arg_symbol
from .render import Kernel, _kernel_context
from .schedule import Step


def _domain(step: Step) -> str:
    return "[" + ", ".join(str(step.node.sizes[i]) for i in step.order) + "]"


def _describe(step: Step, eq: str, stored: bool) -> str:
    node = step.node
    if step.kind == "dot":
        d = step.dot
        left = d["left"].name + (".T" if d["left_t"] else "")
        right = d["right"].name + (".T" if d["right_t"] else "")
        how = f"BLAS product {left} @ {right}"
        if step.folded:
            return f"{how}: folded into the update below (no array of its own)"
        return f"{how} -> {node.name} [{', '.join(str(s) for s in node.shape)}]"
    if step.gemm:
        g = step.gemm
        product = g["product"].dot
        left = product["left"].name + (".T" if product["left_t"] else "")
        right = product["right"].name + (".T" if product["right_t"] else "")
        decay = "; decay applied in the parameter's last read" if g.get("decayed") else ""
        rest = "; other terms added by a loop first" if g["rest"] is not None else ""
        names = {arg_symbol(k): sp.Symbol(a.node.name) for k, a in enumerate(node.args)}
        alpha, beta = (sp.sympify(g[k]).xreplace(names) for k in ("scale", "beta"))
        return (f"update {step.writes.name} in place by one GEMM: {step.writes.name} = "
                f"{alpha} * ({left} @ {right}) + ({beta}) * {step.writes.name}{rest}{decay}")
    if step.kind == "scalar":
        return f"scalar {eq}"
    if step.writes is not None:
        return f"update {step.writes.name} in place, loop over {_domain(step)}: {eq}"
    form = {"map": "map", "register": "reduction in a register",
            "accumulate": "sum into a zeroed array (outer loops reduced)"}[step.form]
    where = ""
    if step.inplace_of is not None:
        where = f"; written over {step.inplace_of.name}'s buffer"
    elif node.out and not stored:
        where = "; kept in a register, never stored"
    decays = "".join(f"; applies {u.writes.name}'s decay" for u in step.decays)
    return f"{form} over {_domain(step)}: {eq}{where}{decays}"


def kernel_plan(graph, kernel: Kernel) -> list[str]:
    context = _kernel_context(graph, kernel)
    eqs = {id(s): eq for s, eq in program_equations(kernel.program, include_inlined=True)}
    threads = {"numba": "BLAS and Numba threads", "blas": "BLAS threads",
               None: "one thread (no BLAS call, no threaded loop)"}[context["threads"]]
    lines = [f"{kernel.name}: {threads}" + (" set to the idle cores before each call"
                                             if context["threads"] else "")]
    body = "\n".join(line for s in context["steps"] for _, line in s["lines"])
    for entry in context["steps"]:
        group = entry["group"]
        header = entry["comment"][0] if entry["comment"] else ""
        indent = "    "
        if header.startswith("one loop over the rows"):
            lines.append("    one loop over rows, each row's passes in turn:")
            indent = "        "
        elif len(group) > 1:
            lines.append(f"    one fused loop over {_domain(group[0])}:")
            indent = "        "
        for s in group:
            stored = f"{s.node.name} = " in body and f"{s.node.name}[" in body
            lines.append(indent + _describe(s, eqs.get(id(s), s.node.name), stored))
    if context["workspace"]:
        lines.append(f"    per-call workspace: {context['workspace']} elements")
    return lines


def plan_text(compiled) -> str:
    out = []
    for name, kernel in compiled.kernels.items():
        out += [f"[{name}]"] + kernel_plan(compiled.graph, kernel) + [""]
    out.append("tape (kept by forward for backward): " + (", ".join(compiled.api["tape"])
                                                           or "nothing"))
    return "\n".join(out)
