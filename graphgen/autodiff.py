"""Reverse-mode differentiation over the index-form graph, with one rule for every node.

For a node  out[o] = Σ_r f(a_1[i_1], …)  and the cotangent g[o] of its output, the
cotangent flowing to argument k is itself a map-reduce node:

    ḡ_k[i_k] = Σ_{indices of the node not in i_k}  g[o] · ∂f/∂a_k

with ∂f/∂a_k from sympy. Matmul adjoints (transposed products), unbroadcasting (sums over
broadcast axes), the broadcast adjoint of a reduction, and transposes all follow from this
index bookkeeping. Nodes are visited from the objective backwards (the seed derivation's
order); contributions to a value used more than once are summed.
"""
from __future__ import annotations

import sympy as sp

from .check import gradient_name
from .ir import Arg, Graph, Node, arg_index, arg_symbol


def _on_path(graph: Graph, objective: Node, wrt: list[Node]) -> set[int]:
    """Ids of nodes that depend on a param (or other `wrt` leaf) and that the objective
    depends on."""
    from_params: set[int] = {p.id for p in wrt}
    for node in graph.nodes:
        if node.kind == "op" and node.differentiable and any(
                a.node.id in from_params for a in node.args):
            from_params.add(node.id)
    to_objective: set[int] = {objective.id}
    for node in reversed(graph.nodes):
        if node.id in to_objective:
            to_objective.update(a.node.id for a in node.args)
    return from_params & to_objective


def _constant_body(node: Node) -> sp.Expr | None:
    """The value of a node with no arguments (a folded constant), else None."""
    if node.kind == "op" and not node.args and not node.reduce:
        return node.body
    return None


def _grad_label(objective: Node, node: Node) -> str:
    return f"d{objective.name}/d{node.name}"


def differentiate(graph: Graph, inputs: bool = False) -> Graph:
    """Append the backward pass for `graph.objective` to `graph`; fills `graph.grads`.

    With `inputs`, float inputs are differentiated too (saliency, adversarial examples):
    `graph.grads` then also maps each float input to its gradient. The pipeline does that on
    a second copy of the graph, so the training kernels never carry the extra work.
    """
    objective = graph.objective
    wrt = graph.params + ([n for n in graph.inputs if n.dtype == "float"] if inputs else [])
    on_path = _on_path(graph, objective, wrt)
    contributions: dict[int, list[Node]] = {}
    seed = graph.add(name=f"_g{len(graph.nodes)}", kind="op", shape=(), body=sp.Integer(1),
                     role="backward", label=_grad_label(objective, objective),
                     origin=objective.origin)
    contributions[objective.id] = [seed]
    forward_nodes = [n for n in graph.nodes if n.role == "forward"]
    # A parameter's gradient is summed as soon as its last contribution arrives, so the
    # derivation reads in the seed's order (dJ/dW2 before the layers beneath it).
    pending: dict[int, int] = {p.id: 0 for p in wrt}
    for node in forward_nodes:
        if node.id in on_path and node.kind == "op" and node.differentiable:
            for a in node.args:
                if a.node.id in pending and a.node.id in on_path:
                    pending[a.node.id] += 1
    params = {p.id: p for p in wrt}

    def finish_param(p: Node) -> None:
        g = _accumulate(graph, objective, p, contributions.get(p.id, []))
        if g is None:
            graph.disconnected.append(p.name)
            g = graph.add(name=gradient_name(objective.name, p.name), kind="op", shape=p.shape,
                          out=tuple(f"z{k}" for k in range(len(p.shape))),
                          sizes={f"z{k}": s for k, s in enumerate(p.shape)},
                          body=sp.Integer(0), role="backward", origin=p.origin)
        g.name = gradient_name(objective.name, p.name)
        g.named = True
        g.label = _grad_label(objective, p)
        graph.grads[p.name] = g

    for node in reversed(forward_nodes):
        if node.id not in on_path or node.kind != "op":
            continue
        g = _accumulate(graph, objective, node, contributions.get(node.id, []))
        if g is None:
            continue
        for k, arg in enumerate(node.args):
            if arg.node.id not in on_path or arg.node.dtype != "float":
                continue
            ct = _adjoint(graph, node, k, g)
            if ct is not None:
                contributions.setdefault(arg.node.id, []).append(ct)
            if arg.node.id in pending and node.differentiable:
                pending[arg.node.id] -= 1
                if pending[arg.node.id] == 0:
                    finish_param(params[arg.node.id])
    for p in wrt:
        if p.name not in graph.grads:
            finish_param(p)
    graph.grads = {p.name: graph.grads[p.name] for p in wrt}
    return graph


def _accumulate(graph: Graph, objective: Node, node: Node, parts: list[Node]) -> Node | None:
    """The total cotangent of `node`: its single contribution, or their sum."""
    if not parts:
        return None
    if len(parts) == 1:
        total = parts[0]
    else:
        out = tuple(graph.fresh_index() for _ in node.shape)
        body = sp.Add(*[arg_symbol(k) for k in range(len(parts))])
        total = graph.add(name=f"_g{len(graph.nodes)}", kind="op", shape=node.shape, out=out,
                          args=tuple(Arg(p, out) for p in parts), body=body,
                          sizes=dict(zip(out, node.shape)), role="backward",
                          origin=node.origin)
    if node.named and not total.named and node.kind == "op":
        total.name = gradient_name(objective.name, node.name)
        total.named = True
    total.label = _grad_label(objective, node) if node.named else total.label
    return total


def _adjoint(graph: Graph, node: Node, k: int, g: Node) -> Node | None:
    """The cotangent node for argument k of `node`, given the cotangent `g` of its output."""
    if not node.differentiable:
        return None
    a_k = arg_symbol(k)
    derivative = sp.diff(node.body, a_k)
    if derivative == 0:
        return None
    args: list[Arg] = []
    subs: dict[sp.Symbol, sp.Expr] = {}
    # Rewrite in terms of the stored output where the node is a pure map (σ' = y(1-y)).
    if not node.reduce and not node.body.is_Symbol:
        # subs, not has(): sympy finds sqrt(a) inside 1/sqrt(a) = a**(-1/2) only this way
        derivative = derivative.subs(node.body, sp.Symbol("_y", real=True))
    used = sorted((s for s in derivative.free_symbols if arg_index(s) is not None),
                  key=lambda s: arg_index(s))
    for s in used:
        old = node.args[arg_index(s)]
        subs[s] = arg_symbol(len(args))
        args.append(old)
    if derivative.has(sp.Symbol("_y", real=True)):
        subs[sp.Symbol("_y", real=True)] = arg_symbol(len(args))
        args.append(Arg(node, node.out))
    derivative = derivative.xreplace(subs)
    constant = _constant_body(g)
    if constant is not None:
        body = constant * derivative
    else:
        body = arg_symbol(len(args)) * derivative
        args.append(Arg(g, node.out))
    target = node.args[k]
    out = tuple(target.idx)
    loop = [a for a in node.out if a is not None] + list(node.reduce)
    reduce = tuple(i for i in loop if i not in out)
    shape = target.node.shape
    sizes = {i: node.sizes[i] for i in loop}
    return graph.add(name=f"_g{len(graph.nodes)}", kind="op", shape=shape, out=out,
                     reduce=reduce, args=tuple(args), body=body, sizes=sizes, role="backward",
                     label="", origin=node.origin)


# ----------------------------------------------------------------------------- forward mode
def tangent_name(param: str) -> str:
    """The kernel's name for the tangent of a param (underscored: no spec name can be)."""
    return f"_dot_{param}"


def linearize(graph: Graph) -> Node:
    """Append forward mode to `graph`: each param gets a tangent leaf (an input named
    `tangent_name(p)`), each value on a path from them its tangent; returns the objective's.

    The same rule as reverse mode, read the other way. For  out[o] = Σ_r f(a_1[i_1], …)

        ṫ[o] = Σ_k Σ_r ∂f/∂a_k · ṫ_k[i_k]

    is one map-reduce node per argument (each a GEMM again when f is a product), summed.
    A value the spec stops (stop_gradient, the max of a reduction's surrogate) has none.
    """
    tangents = _push_tangents(graph, [n for n in graph.nodes if n.role == "forward"])
    objective = graph.objective
    result = tangents.get(objective.id)
    if result is None:  # no param reaches the objective
        result = graph.add(name="_d_none", kind="op", shape=(), body=sp.Integer(0),
                           origin=objective.origin)
    result.name = f"_d{objective.name}"  # underscored: a spec may name a value dJ
    result.named = True
    result.label = f"d{objective.name} along the tangents"
    return result


class SecondOrderUnsupported(Exception):
    """The spec uses a construct without a second derivative: its module's hvp() raises
    NotImplementedError with this message, and everything else works."""


def hessian_vector(graph: Graph) -> dict[str, Node]:
    """Forward over reverse: push tangents through a differentiated graph, backward nodes
    included; the tangent of dJ/dp along v is (H·v)_p. Returns {param: node}.

    Second derivatives of kinks are 0: their first derivatives are indicators (relu' is
    `x > 0`), whose own derivative sympy gives as 0, never a DiracDelta."""
    for n in graph.nodes:
        if not n.second_order and n.id in _on_path(graph, graph.objective, graph.params):
            where = f" (line {n.origin.span.line})" if n.origin and n.origin.span else ""
            raise SecondOrderUnsupported(
                f"hvp() is not available for this spec: prod() of a value that depends on a "
                f"param{where} has a first derivative here but no second derivative yet")
    tangents = _push_tangents(graph, list(graph.nodes))
    result = {}
    for p in graph.params:
        h = tangents.get(graph.grads[p.name].id)
        if h is None:  # a gradient that does not depend on the params: H·v = 0
            out = tuple(graph.fresh_index() for _ in p.shape)
            h = graph.add(name="", kind="op", shape=p.shape, out=out, body=sp.Integer(0),
                          sizes=dict(zip(out, p.shape)), origin=p.origin)
        h.name = f"_hvp_{p.name}"
        h.named = True
        h.label = f"(H·v) of {p.name}"
        result[p.name] = h
    return result


def _push_tangents(graph: Graph, walk: list[Node]) -> dict[int, Node]:
    """Tangent leaves for the params, then the tangent of each node of `walk` (in order)."""
    tangents: dict[int, Node] = {}
    for p in graph.params:
        tangents[p.id] = graph.add(name=tangent_name(p.name), kind="input", shape=p.shape,
                                   named=True, label=f"tangent of {p.name}", origin=p.origin)
    for node in walk:
        if node.kind != "op" or not node.differentiable or (
                node.reduce and node.reducer != "sum"):
            continue
        terms = []
        for k, a in enumerate(node.args):
            t = tangents.get(a.node.id)
            if t is None or a.node.dtype != "float":
                continue
            derivative = sp.diff(node.body, arg_symbol(k))
            if derivative == 0:
                continue
            used = sorted((s for s in derivative.free_symbols if arg_index(s) is not None),
                          key=arg_index)
            args = [node.args[arg_index(s)] for s in used]
            body = derivative.xreplace({s: arg_symbol(j) for j, s in enumerate(used)})
            body = body * arg_symbol(len(args))
            args.append(Arg(t, a.idx))
            terms.append(graph.add(name=f"_d{len(graph.nodes)}", kind="op", shape=node.shape,
                                   out=node.out, reduce=node.reduce, args=tuple(args),
                                   body=body, sizes=dict(node.sizes), origin=node.origin))
        if not terms:
            continue
        total = terms[0]
        if len(terms) > 1:
            out = tuple(graph.fresh_index() for _ in node.shape)
            total = graph.add(name=f"_d{len(graph.nodes)}", kind="op", shape=node.shape,
                              out=out, args=tuple(Arg(t, out) for t in terms),
                              body=sp.Add(*[arg_symbol(j) for j in range(len(terms))]),
                              sizes=dict(zip(out, node.shape)), origin=node.origin)
        total.label = f"tangent of {node.label or node.name}"
        tangents[node.id] = total
    return tangents
