"""The compiler driver: spec text → `Compiled` (graph, programs, module source).

Runs the stages in order (parse, check, differentiate, schedule, render) and keeps every
intermediate so that `graphgen show --stage ...` and the tests can look at each one.
"""
from __future__ import annotations

from dataclasses import dataclass

from .autodiff import SecondOrderUnsupported, differentiate, hessian_vector, linearize, tangent_name
from .check import check, check_derivative_sizes
from .fingerprint import module_name_for  # noqa: F401  (re-exported)
from .ir import Graph, Node
from .render import Kernel, render_module
from .schedule import Program, build_program
from .syntax import Spec, parse


@dataclass
class Compiled:
    spec: Spec
    graph: Graph
    kernels: dict[str, Kernel]
    api: dict
    source: str
    module_name: str


def _split(program: Program, role: str) -> Program:
    steps = [s for s in program.steps if s.node.role == role]
    computed = {s.node.id for s in steps}
    reads: dict[int, Node] = {}
    for s in steps:
        for a in s.node.args:
            if a.node.id not in computed:
                reads[a.node.id] = a.node
    return Program(steps=steps, reads=sorted(reads.values(), key=lambda n: n.id), roots=[])


def _kernel_dims(graph: Graph, program: Program) -> list[str]:
    used: set = set()
    for n in program.reads:
        used.update(s for s in n.shape if isinstance(s, str))
    for s in program.steps:
        used.update(x for x in s.node.shape if isinstance(x, str))
        used.update(x for x in s.node.sizes.values() if isinstance(x, str))
        used.update(str(sym) for sym in s.node.body.free_symbols if str(sym) in graph.dims)
        for d in (s.dot or {}).get("coef", 1).free_symbols if s.dot else ():
            if str(d) in graph.dims:
                used.add(str(d))
    return [d for d in graph.dims if d in used]


# Forward and backward nodes of the specs whose module gets hvp(): a thousand-statement chain
# compiled in 31 s without it and 92 s with it.
MAX_HVP_NODES = 2_000


def compile_source(text: str, file: str = "<spec>", module_name: str | None = None) -> Compiled:
    """Run the whole pipeline on spec text; raises `SpecError` for a bad spec."""
    spec = parse(text, file)
    graph = check_derivative_sizes(differentiate(check(spec)))
    objective = graph.objective
    grads = [graph.grads[p.name] for p in graph.params]
    lr = Node(id=-1, name="lr", kind="hyper", shape=())

    combined = build_program(graph, [objective] + graph.outputs + grads)
    fwd = _split(combined, "forward")
    bwd = _split(combined, "backward")
    fwd_ids = {s.node.id for s in fwd.steps}
    tape = [n for n in bwd.reads if n.id in fwd_ids]
    fwd_returns = [objective] + [o for o in graph.outputs if o is not objective]
    fwd_returns += [t for t in tape if all(t.id != r.id for r in fwd_returns)]
    fwd.roots = fwd_returns
    bwd.roots = grads
    predict_roots = graph.outputs or [objective]
    predict = build_program(graph, predict_roots)
    step = build_program(graph, [objective], updates={p: graph.grads[p.name]
                                                      for p in graph.params}, lr=lr)
    step.reads = [r for r in step.reads if r is not lr]

    kernels = {
        "forward": Kernel("_forward_kernel", fwd, _kernel_dims(graph, fwd), fwd_returns),
        "backward": Kernel("_backward_kernel", bwd, _kernel_dims(graph, bwd), grads),
        "value_and_grad": Kernel("_value_and_grad_kernel", combined,
                                 _kernel_dims(graph, combined),
                                 [objective] + grads + _extra_outputs(graph)),
        "predict": Kernel("_predict_kernel", predict, _kernel_dims(graph, predict),
                          predict_roots),
        "sgd_step": Kernel("_sgd_step_kernel", step, _kernel_dims(graph, step), [objective],
                           lr=True),
    }
    if any(n.dtype == "float" for n in graph.inputs):
        # Gradients w.r.t. float inputs (value_and_grad(wrt=...)): the same derivation on a
        # second copy of the graph, so the training kernels carry none of the extra work.
        g2 = differentiate(check(parse(text, file)), inputs=True)
        roots = [g2.objective] + list(g2.grads.values())
        program = build_program(g2, roots + g2.outputs)
        kernels["input_grads"] = Kernel("_input_grads_kernel", program,
                                        _kernel_dims(g2, program),
                                        roots + _extra_outputs(g2), graph=g2)
    # Forward mode (jvp): tangents pushed through a third copy of the graph, for the same
    # reason the input gradients have their own.
    g3 = check(parse(text, file))
    dJ = linearize(g3)
    program = build_program(g3, [g3.objective, dJ])
    kernels["jvp"] = Kernel("_jvp_kernel", program, _kernel_dims(g3, program),
                            [g3.objective, dJ], graph=g3)
    # Hessian-vector products: forward mode over the differentiated graph (a fourth copy)
    g4 = differentiate(check(parse(text, file)))
    try:
        if len(graph.nodes) > MAX_HVP_NODES:
            raise SecondOrderUnsupported(
                f"hvp() is generated for specs of up to {MAX_HVP_NODES} graph nodes (this one "
                f"has {len(graph.nodes)}): second-order code for larger graphs tripled "
                f"compile time (graphgen.pipeline.MAX_HVP_NODES)")
        hv = hessian_vector(g4)
    except SecondOrderUnsupported as e:
        hvp_refusal = str(e)
    else:
        hvp_refusal = None
        program = build_program(g4, list(hv.values()))
        kernels["hvp"] = Kernel("_hvp_kernel", program, _kernel_dims(g4, program),
                                list(hv.values()), graph=g4)
    api = _api(graph, kernels, tape, hvp_refusal)
    name = module_name or module_name_for(file)
    source = render_module(graph, kernels, api, name)
    return Compiled(spec, graph, kernels, api, source, name)


def _extra_outputs(graph: Graph) -> list[Node]:
    """Outputs a value_and_grad kernel returns besides the objective (outputs=True)."""
    return [o for o in graph.outputs if o is not graph.objective]


def _table(leaves: list[Node]) -> str:
    entries = [f"{n.name!r}: {'INPUTS' if n.kind == 'input' else 'PARAMS'}[{n.name!r}]"
               for n in leaves]
    return "{" + ", ".join(entries) + "}"


def _call(kernel: Kernel, lhs: list[str]) -> str:
    args = [f"*_dims(_bound, {tuple(kernel.passed_dims)!r})"] if kernel.passed_dims else []
    for r in kernel.program.reads:
        if r.kind in ("input", "param"):
            args.append(f"_a[{r.name!r}]")
        elif r.kind == "hyper":
            args.append(r.name)
        else:  # pragma: no cover - tapes are read only by backward()
            args.append(f"tape[{r.name!r}]")
    if kernel.lr:
        args.append("lr")
    args.append("MEMORY_BUDGET")
    # compiled for these (validated) types first; the dispatcher itself stays closed
    return f"_args = ({', '.join(args)},)\n    _compile_for({kernel.name}, _args)\n    " \
        f"{', '.join(lhs)} = {kernel.name}(*_args)"


def _fast_path(kernel: Kernel, arrays: list[Node], hypers: list[Node], writable: tuple,
               lhs: list[str], result) -> list[str]:
    """Straight-line checks that let a well-formed call skip the general validator.

    Cheap Python tests (class, rank, one float dtype, int64 labels, C-contiguity, writeable
    params, float hypers) guard the kernel; the kernel itself re-checks shapes, empty dims and
    label ranges before it writes anything and raises ValueError, after which the general
    validator runs and reports the precise error. Nothing unchecked reaches native code.
    `result(array, dims)` spells the return value given how arrays and dims are named.
    """
    if any(not a.shape for a in arrays):
        return []  # 0-d arrays take the general path (they are passed as 1-element views)
    binding = _bindings(arrays)
    if not kernel.passed_dims:
        # The kernel's dispatcher compiles nothing new outside the validated path, so any
        # call whose types it has not seen (a list, a view, int32 labels, mixed float
        # dtypes, a read-only parameter) is refused with TypeError before native code runs;
        # shapes and labels are checked in compiled code. Either way: the general path.
        args = [r.name for r in kernel.program.reads] + (["lr"] if kernel.lr else [])
        args.append("MEMORY_BUDGET")
        dims = "{" + ", ".join(f"{d!r}: {expr}" for d, expr in binding.items()) + "}"
        # Numba types ndarray subclasses (np.ma, np.matrix) as plain arrays, and converts
        # Python numbers loosely (a bool, a huge int): only plain arrays and floats pass here
        floats = [h.name for h in hypers] + (["lr"] if kernel.lr else [])
        guard = "".join(f" and {a.name}.__class__ is _ndarray" for a in arrays)
        guard += "".join(f" and {h}.__class__ is float" for h in floats)
        return [f"if {kernel.name} in _READY{guard}:",
                "    try:",
                f"        {', '.join(lhs)} = {kernel.name}({', '.join(args)})",
                "    except (TypeError, ValueError):",
                "        pass  # unseen argument types, or a shape/label problem: see below",
                "    else:",
                f"        return {result(lambda name: name, dims)}"]
    if any(d not in binding for d in kernel.passed_dims):
        return []
    conds = [f"{kernel.name} in _READY"]  # compiled (validated) once; never compiles here
    conds += [f"{a.name}.__class__ is _ndarray" for a in arrays]
    conds += [f"{a.name}.ndim == {len(a.shape)}" for a in arrays]
    floats = [a for a in arrays if a.dtype == "float"]
    if floats:
        conds.append(f"((_dt := {floats[0].name}.dtype) is _F64 or _dt is _F32)")
        conds += [f"{a.name}.dtype is _dt" for a in floats[1:]]
    conds += [f"{a.name}.dtype is _I64" for a in arrays if a.dtype == "int"]
    conds += [f"((_f := {a.name}.flags).c_contiguous and _f.writeable)" if a.name in writable
              else f"{a.name}.flags.c_contiguous" for a in arrays]
    conds += [f"{h.name}.__class__ is float" for h in hypers]
    if kernel.lr:
        conds.append("lr.__class__ is float")
    args = list(kernel.passed_dims) + [r.name for r in kernel.program.reads] + (
        ["lr"] if kernel.lr else [])
    args.append("MEMORY_BUDGET")
    needs_dims = "_dims" in result(lambda name: name, "_dims")  # a tape records its dims
    bound = binding if needs_dims else {d: binding[d] for d in kernel.passed_dims}
    dims_dict = "{" + ", ".join(f"{d!r}: {d}" for d in bound) + "}"
    lines = ["if (" + conds[0]]
    lines += [f"        and {c}" for c in conds[1:]]
    lines[-1] += "):"
    lines += [f"    {d} = {expr}" for d, expr in bound.items()]
    lines += ["    try:",
              f"        {', '.join(lhs)} = {kernel.name}({', '.join(args)})",
              "    except ValueError:",
              "        pass  # a shape or label problem: the validator below names it",
              "    else:",
              f"        return {result(lambda name: name, dims_dict)}"]
    return lines


def _bindings(arrays: list[Node]) -> dict[str, str]:
    """Where each dim can be read off the arguments: {"n": "x.shape[0]", ...}."""
    found: dict[str, str] = {}
    for a in arrays:
        for k, size in enumerate(a.shape):
            if isinstance(size, str):
                found.setdefault(size, f"{a.name}.shape[{k}]")
    return found


def _as_array(expr: str, graph: Graph, param: str) -> str:
    """Gradients of scalar params come back from kernels as floats; return 0-d arrays."""
    node = next(p for p in graph.params if p.name == param)
    return f"np.asarray({expr}, dtype=_dtype)" if node.shape == () else expr


def _api(graph: Graph, kernels: dict[str, Kernel], tape: list[Node],
         hvp_refusal: str | None = None) -> dict:
    arrays = graph.inputs + graph.params
    hypers = graph.hypers
    signature = ", ".join([f"{n.name}=_REQUIRED" for n in arrays] +
                          [f"{h.name}={h.default!r}" for h in hypers])
    obj = graph.objective.name
    grads = [p.name for p in graph.params]
    grad_names = [graph.grads[p].name for p in grads]
    params = tuple(p.name for p in graph.params)
    slow_array = lambda name: f"_a[{name!r}]"  # noqa: E731
    functions = []

    def add(name, kernel, fn_arrays, fn_hypers, sig, lhs, result, doc, writable=(),
            fast=True):
        functions.append({
            "name": name, "signature": sig, "doc": doc, "kernel": kernel.name,
            "arrays": [n.name for n in fn_arrays], "table": _table(fn_arrays),
            "writable": writable, "hypers": [h.name for h in fn_hypers], "lr": kernel.lr,
            "fast": _fast_path(kernel, fn_arrays, fn_hypers, writable, lhs, result)
            if fast else [],
            "body": [_call(kernel, lhs), f"return {result(slow_array, '_bound')}"],
        })

    fk = kernels["forward"]
    ret = [n.name for n in fk.returns]

    def tape_dict(array, dims):
        items = [f"{r!r}: {r}" for r in ret]
        for r in kernels["backward"].program.reads:
            if r.kind in ("input", "param"):
                items.append(f"{r.name!r}: {array(r.name)}")
            elif r.kind == "hyper":
                items.append(f"{r.name!r}: {r.name}")
        return "_sealed({" + ", ".join(items + [f'"_dims": {dims}']) + "})"

    add("forward", fk, arrays, hypers, signature + ", *, strict=True", ret, tape_dict,
        f"Training forward pass: a tape dict with {obj}, the outputs and the values "
        f"backward() reuses.")
    grads_dict = "{" + ", ".join(f"{p!r}: {_as_array(g, graph, p)}"
                                 for p, g in zip(grads, grad_names)) + "}"
    outs = [o.name for o in _extra_outputs(graph)]
    outs_dict = "{" + ", ".join(f"{o.name!r}: {o.name if o is not graph.objective else obj}"
                                for o in graph.outputs) + "}"
    vg_result = f"(float({obj}), {grads_dict}, {outs_dict}) if outputs else " \
        f"(float({obj}), {grads_dict})"
    add("value_and_grad", kernels["value_and_grad"], arrays, hypers,
        signature + ", *, outputs=False, wrt=None, strict=True", [obj] + grad_names + outs,
        lambda array, dims: vg_result,
        f"({obj}, {{param: d{obj}/dparam}}) in one native call; with outputs=True also "
        f"{{output: value}}; wrt=(input, ...) adds d{obj}/dinput for float inputs.")
    every = ", ".join(f"{n.name}={n.name}" for n in arrays + hypers)
    functions[-1]["fast"][:0] = [
        "if wrt is not None and _check_wrt(wrt):",
        f"    return _value_and_grad_wrt({every}, wrt=_check_wrt(wrt), outputs=outputs)"]
    if "input_grads" in kernels:
        ik = kernels["input_grads"]
        g2 = ik.graph
        names2 = [g2.grads[k].name for k in g2.grads]
        all_grads = "{" + ", ".join(
            f"{k!r}: {_as_array(g2.grads[k].name, graph, k) if k in grads else g2.grads[k].name}"
            for k in g2.grads) + "}"
        outs2 = [o.name for o in _extra_outputs(g2)]
        add("_value_and_grad_wrt", ik, arrays, hypers,
            signature + ", *, wrt=(), outputs=False, strict=True",
            [obj] + names2 + outs2,
            lambda array, dims: f"_wrt_result(float({obj}), {all_grads}, {outs_dict}, wrt, "
                                f"outputs)",
            "value_and_grad with gradients w.r.t. the float inputs named in wrt.", fast=False)
    jk = kernels["jvp"]
    dJ = jk.returns[1].name
    functions.append({
        "name": "jvp", "signature": "_tangents, /, " + signature + ", *, strict=True",
        "doc": f"Forward mode: ({obj}, d{obj}), the objective and its directional derivative "
               f"along the first argument, tangents {{param: array}} (positional: a spec may "
               f"name a value tangents; a param left out has tangent 0).",
        "kernel": jk.name, "arrays": [n.name for n in arrays], "table": _table(arrays),
        "writable": (), "hypers": [h.name for h in hypers], "lr": False, "fast": [],
        "body": ["_a.update(_tangent_arrays(_tangents, _bound, _dtype, 'jvp', 'tangents'))",
                 _call(jk, [obj, dJ]), f"return float({obj}), float({dJ})"],
    })
    hvp = {
        "name": "hvp", "signature": "_vector, /, " + signature + ", *, strict=True",
        "doc": f"Hessian-vector product {{param: (H·v)_param}} of {obj} along the first "
               f"argument, v = {{param: array}} (forward over reverse; a param left out has "
               f"v = 0).",
        "kernel": None, "arrays": [n.name for n in arrays], "table": _table(arrays),
        "writable": (), "hypers": [h.name for h in hypers], "lr": False, "fast": [],
        "body": [f"raise NotImplementedError({hvp_refusal!r})"],
    }
    if hvp_refusal is None:
        hk = kernels["hvp"]
        hv_names = [n.name for n in hk.returns]
        hv_dict = "{" + ", ".join(f"{p!r}: {_as_array(h, graph, p)}"
                                  for p, h in zip(grads, hv_names)) + "}"
        hvp["kernel"] = hk.name
        hvp["body"] = ["_a.update(_tangent_arrays(_vector, _bound, _dtype, 'hvp', 'vector'))",
                       _call(hk, hv_names), f"return {hv_dict}"]
    functions.append(hvp)
    pk = kernels["predict"]
    p_leaves = [r for r in pk.program.reads if r.kind in ("input", "param")]
    p_hypers = [r for r in pk.program.reads if r.kind == "hyper"]
    p_sig = ", ".join([f"{n.name}=_REQUIRED" for n in p_leaves] +
                      [f"{h.name}={h.default!r}" for h in p_hypers])
    outs = [n.name for n in pk.returns]
    if graph.outputs:
        result = outs[0] if len(outs) == 1 else "(" + ", ".join(outs) + ")"
        doc = "Inference: " + ", ".join(outs) + "; keeps nothing for a backward pass."
    else:
        result = f"float({outs[0]})"
        doc = f"Inference: the objective {obj} (the spec declares no outputs)."
    add("predict", pk, p_leaves, p_hypers, p_sig + ", *, strict=True", outs,
        lambda array, dims: result, doc)
    add("sgd_step", kernels["sgd_step"], arrays, hypers,
        signature + ", *, lr=_REQUIRED, strict=True",
        [obj], lambda array, dims: f"float({obj})",
        f"One SGD step in one native call: updates the params in place "
        f"(p -= lr * d{obj}/dp) and returns {obj} before the update.", writable=params)
    return {
        "objective": obj,
        "outputs": [o.name for o in graph.outputs],
        "output_shapes": {o.name: o.shape for o in graph.outputs},
        "dims": list(graph.dims),
        "inputs": [{"name": n.name, "shape": n.shape, "dtype": n.dtype,
                    "label_range": n.label_range} for n in graph.inputs],
        "params": [{"name": n.name, "shape": n.shape} for n in graph.params],
        "hypers": [{"name": h.name, "default": repr(h.default)} for h in hypers],
        "functions": functions,
        "grads": grads,
        "backward_kernel": kernels["backward"].name,
        "backward_reads": [n.name for n in kernels["backward"].program.reads],
        "backward_dims": tuple(kernels["backward"].passed_dims),
        "scalar_grads": [p.name for p in graph.params if p.shape == ()],
        "tape": [t.name for t in tape],
        "float_inputs": [n.name for n in graph.inputs if n.dtype == "float"],
        "tangents": {p.name: tangent_name(p.name) for p in graph.params},
    }
