"""Rendering: scheduled `Program`s → the source text of a self-contained Python module.

Jinja (`templates/module.py.j2`) lays the module out; `statements` turns each kernel's steps
into lines of code; this module gathers them with the support code they call (`vecmath`,
`blas`, printer helpers), the spec, its derivation and the API tables, and seals the text
with its hashes. Output is deterministic: the same spec and graphgen version give the same
bytes.
"""
from __future__ import annotations

from dataclasses import dataclass

import jinja2

from . import __version__, blas, threads, vecmath
from .explain import derivation_latex, derivation_text, program_equations
from .fingerprint import CONTENT_PLACEHOLDER, seal, spec_hash, templates_dir
from .ir import Graph, Node
from .printer import HELPER_IMPORTS, HELPERS
from .schedule import Program
from .statements import (
    StepWriter,
    argument_checks,
    calls_trig,
    fusable_groups,
    loop_domain,
    memory_checks,
    merge_row_loops,
    safe_comment,
    share_row_loops,
    step_comment,
)


@dataclass
class Kernel:
    name: str
    program: Program
    dims: list[str]  # every dim the kernel uses
    returns: list[Node]
    lr: bool = False
    graph: Graph | None = None  # its own graph (the input-gradient kernel's), if not the module's

    @property
    def derived_dims(self) -> dict[str, str]:
        """Dims the kernel reads off its own array arguments (`n = x.shape[0]`): fewer
        arguments to dispatch, and the compiled checks compare every other shape to them."""
        found: dict[str, str] = {}
        for node in self.program.reads:
            if node.kind == "hyper":
                continue
            for k, size in enumerate(node.shape):
                if isinstance(size, str) and size in self.dims:
                    found.setdefault(size, f"{node.name}.shape[{k}]")
        return found

    @property
    def passed_dims(self) -> list[str]:
        """Dims no array argument carries: passed as integers."""
        derived = self.derived_dims
        return [d for d in self.dims if d not in derived]




def _rows_together(steps: list[dict]) -> list[dict]:
    """Steps that share one loop over rows (`statements.share_row_loops`) become one."""
    out = []
    for run in share_row_loops([(s["group"], s["lines"]) for s in steps]):
        if len(run) == 1:
            out.append(steps[run[0]])
            continue
        comment = ["one loop over the rows for the next steps:"]
        comment += ["  " + line for u in run for line in steps[u]["comment"]]
        out.append({"comment": comment, "group": [s for u in run for s in steps[u]["group"]],
                    "lines": merge_row_loops([steps[u]["lines"] for u in run])})
    return out


def _kernel_context(graph: Graph, kernel: Kernel) -> dict:
    writer = StepWriter(graph, kernel)
    eqs = {id(s): eq for s, eq in program_equations(kernel.program, include_inlined=True)}
    steps = []
    groups = fusable_groups(kernel.program.steps)
    returned = {n.id for n in kernel.returns}
    objective = graph.objective.name
    for gi, group in enumerate(groups):
        if len(group) == 1 and group[0].folded:
            continue  # computed by the parameter update's GEMM, further down
        if len(group) == 1 and not (loop_domain(group[0]) is not None and calls_trig(group[0])):
            s = group[0]
            eq = eqs.get(id(s), f"{s.node.name} = ...")
            comment = step_comment(s, eq, objective)
            if s.gemm:
                comment.append(safe_comment(writer.gemm_comment(s)))
            steps.append({"comment": comment, "lines": writer.lines(s), "group": group})
            continue
        later = {a.node.id for g in groups[gi + 1:] for s in g for a in s.node.args}
        keep = {s.node.id for s in group if s.node.id in returned or s.node.id in later}
        comment = ["one fused loop for the next steps:"] if len(group) > 1 else []
        for s in group:
            comment += [("  " if len(group) > 1 else "") + line
                        for line in step_comment(s, eqs.get(id(s), s.node.name), objective)]
        steps.append({"comment": comment, "lines": writer.fused_lines(group, keep),
                      "group": group})
    steps = _rows_together(steps)
    float_reads = [n.name for n in kernel.program.reads if n.shape and n.dtype == "float"]
    workspace, scratch = writer.workspace, None
    if writer.scratch:
        scratch, workspace = str(workspace), workspace + blas._SCRATCH
    body = "\n".join(line for s in steps for _, line in s["lines"])
    itemsize = f"{float_reads[0]}.itemsize" if float_reads else "8"
    return {
        # BLAS's and Numba's threads are set before the call (see `threads`)
        "threads": "numba" if any(t[4] for t in writer.twins) else "blas" if any(
            f"{f}(" in body for f in ("np.dot", "_gemm", "_dot_t")) else None,
        "workspace": str(workspace) if workspace != 0 else None,
        "scratch": scratch,
        "twins": writer.twins,
        "checks": argument_checks(kernel, graph.dim_minimums),
        "memory": memory_checks(kernel, [("_ws", workspace)] + writer.allocations,
                                writer.temporaries, itemsize),
        "name": kernel.name,
        "params": kernel.passed_dims + [n.name for n in kernel.program.reads] + (
            ["lr"] if kernel.lr else []) + ["_budget"],
        "dtype_from": float_reads[0] if float_reads else None,
        "steps": steps,
        "returns": [n.name for n in kernel.returns],
        "reads": [n.name for n in kernel.program.reads],
    }


def _support_used(source_parts: list[str], threaded: bool) -> dict:
    """What the kernels call besides numpy: printer helpers, and the text of the `vecmath`
    and `blas` functions (with their constants and imports) that they and the kernels need;
    the thread control of `threads` if any kernel runs BLAS or threaded loops."""
    joined = "\n".join(source_parts)
    helpers = [HELPERS[name] for name in sorted(HELPERS) if f"{name}(" in joined]
    joined += "\n".join(helpers)
    found = [(m, m.source({f for f in m.FUNCTIONS if f"{f}(" in joined})) for m in (vecmath, blas)]
    found = [(m, text) for m, text in found if text is not None]
    if threaded:
        found.append((threads, threads.source()))
    return {
        "helpers": helpers,
        "support_imports": sorted({line for m, _ in found for line in m.IMPORTS}
                                  | {line for name in sorted(HELPERS) if f"{name}(" in joined
                                     for line in HELPER_IMPORTS.get(name, ())}),
        "support_constants": "\n".join(text[0] for _, text in found if text[0]),
        "support_functions": "\n\n\n".join(text[1] for _, text in found),
    }


def render_module(graph: Graph, kernels: dict[str, Kernel], api: dict, module_name: str) -> str:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, autoescape=False,
    )
    contexts = {name: _kernel_context(k.graph or graph, k) for name, k in kernels.items()}
    bodies = [line for c in contexts.values() for s in c["steps"] for _, line in s["lines"]]
    bodies += [line for c in contexts.values() for t in c["twins"] for _, line in t[2]]
    support = _support_used(bodies, any(c["threads"] for c in contexts.values()))
    template = env.get_template("module.py.j2")
    text = template.render(
        module_name=module_name,
        version=__version__,
        spec_hash=spec_hash(graph.text),
        canonical_name=f"graphgen_generated_{module_name}_{spec_hash(graph.text)[:12]}",
        spec_file=safe_comment(graph.file),
        spec_lines=[safe_comment(line) for line in graph.text.splitlines()],
        spec_literal=repr(graph.text),
        derivation_latex=derivation_latex(graph, kernels["value_and_grad"].program),
        derivation=[safe_comment(line) for line in
                    derivation_text(graph, kernels["value_and_grad"].program).splitlines()],
        **support,
        kernels=contexts,
        api=api,
        threads_of={k.name: contexts[key]["threads"] for key, k in kernels.items()},
        repr=repr,
        content_placeholder=CONTENT_PLACEHOLDER,
    )
    return seal(text)
