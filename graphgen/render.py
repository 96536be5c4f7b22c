"""Rendering: scheduled `Program`s → the source text of a self-contained Python module.

Jinja (`templates/module.py.j2`) lays the module out; `statements` turns each kernel's steps
into lines of code; this module gathers them with the support code they call (`vecmath`,
`blas`, printer helpers), the spec, its derivation and the API tables, and seals the text
with its hashes. Output is deterministic: the same spec and graphgen version give the same
bytes.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jinja2

from . import __version__, blas, vecmath
from .explain import derivation_latex, derivation_text, program_equations
from .ir import Graph, Node
from .printer import HELPERS
from .schedule import Program
from .statements import (
    StepWriter,
    argument_checks,
    calls_trig,
    fusable_groups,
    loop_domain,
    safe_comment,
    step_comment,
)


def templates_dir() -> Path:
    """The templates: the source checkout's top-level `templates/`, else the packaged copy."""
    here = Path(__file__).resolve().parent.parent / "templates"
    if (here / "module.py.j2").is_file():
        return here
    return Path(str(resources.files("graphgen_templates")))


def template_digest() -> str:
    h = hashlib.sha256()
    for p in sorted(templates_dir().glob("*.j2")):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def compiler_digest() -> str:
    """A digest of graphgen's own source: a development checkout that changes the compiler
    without bumping the version still invalidates what it generated before."""
    h = hashlib.sha256()
    for p in sorted(Path(__file__).resolve().parent.glob("*.py")):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def spec_hash(text: str) -> str:
    """What decides staleness: the spec text, the templates and the compiler (version and
    source)."""
    h = hashlib.sha256()
    h.update(__version__.encode() + b"\0" + template_digest().encode() + b"\0")
    h.update(compiler_digest().encode() + b"\0")
    h.update(text.encode("utf-8", "surrogatepass"))
    return h.hexdigest()




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
            steps.append({"comment": comment, "lines": writer.lines(s)})
            continue
        later = {a.node.id for g in groups[gi + 1:] for s in g for a in s.node.args}
        keep = {s.node.id for s in group if s.node.id in returned or s.node.id in later}
        comment = ["one fused loop for the next steps:"] if len(group) > 1 else []
        for s in group:
            comment += [("  " if len(group) > 1 else "") + line
                        for line in step_comment(s, eqs.get(id(s), s.node.name), objective)]
        steps.append({"comment": comment, "lines": writer.fused_lines(group, keep)})
    float_reads = [n.name for n in kernel.program.reads if n.shape and n.dtype == "float"]
    workspace, scratch = writer.workspace, None
    if writer.scratch:
        scratch, workspace = str(workspace), workspace + blas._SCRATCH
    return {
        "workspace": str(workspace) if workspace != 0 else None,
        "scratch": scratch,
        "twins": writer.twins,
        "checks": argument_checks(kernel),
        "name": kernel.name,
        "params": kernel.passed_dims + [n.name for n in kernel.program.reads] + (
            ["lr"] if kernel.lr else []),
        "dtype_from": float_reads[0] if float_reads else None,
        "steps": steps,
        "returns": [n.name for n in kernel.returns],
        "reads": [n.name for n in kernel.program.reads],
    }


def _support_used(source_parts: list[str]) -> dict:
    """What the kernels call besides numpy: printer helpers, and the text of the `vecmath`
    and `blas` functions (with their constants and imports) that they and the kernels need."""
    joined = "\n".join(source_parts)
    helpers = [HELPERS[name] for name in sorted(HELPERS) if f"{name}(" in joined]
    joined += "\n".join(helpers)
    found = [(m, m.source({f for f in m.FUNCTIONS if f"{f}(" in joined})) for m in (vecmath, blas)]
    found = [(m, text) for m, text in found if text is not None]
    return {
        "helpers": helpers,
        "support_imports": sorted({line for m, _ in found for line in m.IMPORTS}),
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
    support = _support_used(bodies)
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
        repr=repr,
        content_placeholder=CONTENT_PLACEHOLDER,
    )
    return seal(text)


CONTENT_PREFIX = "# graphgen-content-sha256: "
CONTENT_PLACEHOLDER = "0" * 64


def _content_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def seal(text: str) -> str:
    """Fill in the header's content hash: the sha256 of the text with the hash zeroed."""
    return text.replace(CONTENT_PREFIX + CONTENT_PLACEHOLDER,
                        CONTENT_PREFIX + _content_digest(text), 1)


def is_intact(text: str) -> bool:
    """False if a generated module was edited or truncated after graphgen wrote it."""
    start = text.find(CONTENT_PREFIX)
    if start < 0:
        return False
    begin = start + len(CONTENT_PREFIX)
    recorded = text[begin:begin + 64]
    return _content_digest(text[:begin] + CONTENT_PLACEHOLDER + text[begin + 64:]) == recorded
