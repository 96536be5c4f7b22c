"""Scheduling: which nodes become arrays, which fuse into their consumers, and how each
materialized node is computed. Consumes an `ir.Graph` and a set of roots; produces a
`Program` (ordered `Step`s) for one generated kernel.

Decisions, in order:
  1. identity maps (transposes, unit-axis drops, aliases) are inlined into every consumer;
  2. a pure map is inlined into its single consumer (fusion) unless that consumer is a BLAS
     contraction, or would recompute an expensive body under a broadcast; constants and cheap
     scalar maps are inlined everywhere;
  3. a node whose body is `coef · a · b` summed over one index shared by two 1-D/2-D operands
     becomes `np.dot` on (transposed) views; anything else is one loop nest;
  4. an elementwise node may write into the buffer of a dying single-consumer array it reads
     at the same indices (a GEMM followed by its epilogue: `dJ/dW1 = dJ/dz.T @ x + lam * W1`);
  5. a parameter update linear in a matrix product is that product's GEMM, writing the
     parameter: `W1 -= lr * (dJ/dz.T @ x + lam * W1)` is `W1 = -lr * (dJ/dz.T @ x)
     + (1 - lr * lam) * W1`, with no gradient array and no update pass; the decay
     `1 - lr * lam` is applied by the last full pass that reads W1 (the penalty's sum of
     squares) when there is one, so BLAS need not scale W1 in a pass of its own.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import sympy as sp

from .ir import Arg, Graph, Node, arg_index, arg_symbol, dim_symbol, index_symbol


@dataclass
class Step:
    node: Node  # the rewritten node this step computes
    kind: str  # "scalar" | "loop" | "dot"
    order: tuple = ()  # loop: loop indices, outermost first
    form: str = "map"  # loop: "map" | "register" (inner reduction) | "accumulate"
    inplace_of: Node | None = None  # loop: reuse this argument's buffer for the output
    writes: Node | None = None  # a parameter updated in place (sgd_step)
    dot: dict = field(default_factory=dict)  # dot: left, right, transposes, coef
    # an update whose gradient's matrix product is folded into one GEMM writing the
    # parameter: product (the dot Step), scale (of the product), beta (of the parameter),
    # rest (what a loop adds first, or None)
    gemm: dict = field(default_factory=dict)
    folded: bool = False  # a dot computed by a later update's GEMM (see `gemm`)
    # updates whose GEMM's beta (the weight decay) this step applies to their parameter, in
    # the same pass that reads it (their `gemm["decayed"]` is then True)
    decays: list = field(default_factory=list)


@dataclass
class Program:
    steps: list[Step]
    reads: list[Node]  # leaves and stored forward values the steps read
    roots: list[Node]


# ----------------------------------------------------------------------------- rewriting
def _normalize(node: Node, args: list[Arg], body: sp.Expr) -> Node:
    """Deduplicate identical argument reads and number argument symbols in order.

    One renaming pass in the common case: sympy re-evaluates every function it rebuilds
    (tanh asks whether its argument is zero), which dominated compiling long chains."""
    unique: list[Arg] = []
    position: dict[tuple, int] = {}  # (node, index) -> position in unique: linear, not n²
    subs = {}
    present = body.free_symbols
    for k, a in enumerate(args):
        sym = arg_symbol(k)
        if sym not in present:
            continue
        key = position.setdefault((id(a.node), a.idx), len(unique))
        if key == len(unique):
            unique.append(a)
        subs[sym] = arg_symbol(key)
    merged = len(subs) != len(unique)
    body = body.xreplace({s: t for s, t in subs.items() if s != t})
    if merged:
        # merged reads can cancel (v + s - stop(s), see lower._with_gradient): drop the unused
        present = body.free_symbols
        used = [k for k in range(len(unique)) if arg_symbol(k) in present]
        if len(used) != len(unique):
            body = body.xreplace({arg_symbol(k): arg_symbol(j) for j, k in enumerate(used)
                                  if j != k})
            unique = [unique[k] for k in used]
    return dataclasses.replace(node, args=tuple(unique), body=body)


def _splice(consumer: Node, k: int, producer: Node) -> tuple[list[Arg], sp.Expr]:
    """Inline `producer` (a pure map) into argument k of `consumer` by re-indexing."""
    read = consumer.args[k].idx
    mapping = {p: c for p, c in zip(producer.out, read) if p is not None}
    base = len(consumer.args)
    new_args = list(consumer.args)
    # one simultaneous renaming: the producer's argument symbols after the consumer's, and
    # its loop indices to the consumer's (the two sets of symbols are disjoint)
    rename = {index_symbol(p): (index_symbol(c) if c is not None else sp.Integer(0))
              for p, c in mapping.items()}
    for j, pa in enumerate(producer.args):
        new_args.append(Arg(pa.node, tuple(None if i is None else mapping[i] for i in pa.idx)))
        rename[arg_symbol(j)] = arg_symbol(base + j)
    inner = producer.body.xreplace(rename)
    body = consumer.body.xreplace({arg_symbol(k): inner})
    new_args[k] = Arg(consumer.args[k].node, ())  # dropped by _normalize (symbol gone)
    return new_args, body


MAX_FUSED_SIZE = 60  # sympy nodes in one fused body: keeps sympy and LLVM work bounded


def _size(expr: sp.Expr, limit: int = MAX_FUSED_SIZE + 1) -> int:
    """Number of nodes in `expr`, counting no further than `limit`."""
    count = 0
    for _ in sp.preorder_traversal(expr):
        count += 1
        if count >= limit:
            break
    return count


def _is_cheap(body: sp.Expr) -> bool:
    """Cheap enough to recompute under a broadcast: arithmetic without calls or powers."""
    return not body.atoms(sp.Function) and all(
        p.exp.is_Integer and abs(int(p.exp)) <= 2 for p in body.atoms(sp.Pow))


def _tensor_args(node: Node) -> list[int]:
    return [k for k, a in enumerate(node.args) if a.idx]


def dot_pattern(node: Node) -> dict | None:
    """If `node` is coef · a · b summed over one shared index (a GEMM/GEMV/dot), describe it."""
    if node.kind != "op" or node.reducer != "sum" or len(node.reduce) != 1:
        return None
    if any(o is None for o in node.out) or len(node.out) > 2:
        return None
    tensors = _tensor_args(node)
    if len(tensors) != 2:
        return None
    a_sym, b_sym = arg_symbol(tensors[0]), arg_symbol(tensors[1])
    factors = sp.Mul.make_args(node.body)
    if a_sym not in factors or b_sym not in factors:
        return None
    coef = node.body / (a_sym * b_sym)
    if coef.has(a_sym) or coef.has(b_sym) or coef.atoms(sp.Function) or any(
            arg_index(s) is not None and node.args[arg_index(s)].idx for s in coef.free_symbols):
        return None
    (k,) = node.reduce
    A, B = node.args[tensors[0]], node.args[tensors[1]]
    for a in (A, B):
        if any(i is None for i in a.idx) or len(a.idx) not in (1, 2) or k not in a.idx \
                or len(set(a.idx)) != len(a.idx) or a.node.dtype != "float":
            return None
    out = node.out
    if out and out[0] not in A.idx:
        A, B = B, A
    if out and out[0] not in A.idx:
        return None
    if len(out) == 2 and (out[1] not in B.idx or out[1] in A.idx):
        return None
    if len(out) == 1 and len(B.idx) != 1:
        return None
    if not out and (len(A.idx) != 1 or len(B.idx) != 1):
        return None
    if len(out) == 1 and len(A.idx) != 2:
        return None
    left_t = len(A.idx) == 2 and A.idx[0] == k
    right_t = len(B.idx) == 2 and B.idx[1] == k
    return {"left": A.node, "left_t": left_t, "right": B.node, "right_t": right_t,
            "coef": coef}


def _rewrite(order: list[Node], roots: set[int], updates: dict[int, Node]) -> list[Node]:
    """Apply the inlining decisions; returns rewritten nodes (materialized ones first-class)."""
    # Pass 1: collapse identity maps (free re-indexing) into their consumers.
    collapsed: dict[int, Node] = {}
    for n in order:
        if n.kind != "op":
            collapsed[n.id] = n
            continue
        cur = dataclasses.replace(n, args=tuple(Arg(collapsed[a.node.id], a.idx)
                                                for a in n.args))
        k = 0
        while k < len(cur.args):
            p = cur.args[k].node
            if p.is_identity and _update_may_read(p, cur, k, updates.get(n.id)):
                args, body = _splice(cur, k, p)
                cur = _normalize(cur, args, body)
                k = 0
                continue
            k += 1
        collapsed[n.id] = cur
    _reorient(order, collapsed, roots)
    # Consumer counts over the collapsed graph, from the roots.
    live: set[int] = set()
    stack = [r for r in roots]
    while stack:
        i = stack.pop()
        if i in live:
            continue
        live.add(i)
        stack.extend(a.node.id for a in collapsed[i].args)
    uses: dict[int, int] = {}
    for i in live:
        for a in collapsed[i].args:
            uses[a.node.id] = uses.get(a.node.id, 0) + 1
    # Pass 2: fuse maps into consumers, in topological order.
    final: dict[int, Node] = {}
    inlined: set[int] = set()
    for n in order:
        if n.id not in live:
            continue
        cur = collapsed[n.id]
        if cur.kind != "op":
            final[n.id] = cur
            continue
        cur = dataclasses.replace(cur, args=tuple(Arg(final[a.node.id], a.idx) for a in cur.args))
        blas = dot_pattern(cur) is not None
        k = 0
        while k < len(cur.args):
            p = cur.args[k].node
            if _should_inline(p, cur, k, uses, roots, blas, updates.get(n.id)):
                args, body = _splice(cur, k, p)
                cur = _normalize(cur, args, body)
                inlined.add(p.id)
                k = 0
                continue
            k += 1
        final[n.id] = cur
    # A node inlined into some consumers is still computed for those that refused it (an
    # update may not read another parameter through it); identity maps spliced into every
    # consumer in pass 1 are computed only as roots or where an update refused them.
    kept = [final[n.id] for n in order if n.id in final]
    read = {a.node.id for c in kept for a in c.args}
    return [c for c in kept if c.id in roots or c.id in read
            or (c.id not in inlined and not c.is_identity)]


def _reorient(order: list[Node], nodes: dict[int, Node], roots: set[int]) -> None:
    """Store a 2-D reduction in the axis order its consumers read it in.

    The adjoint of `x @ W.T` w.r.t. W is produced as [d, h] and read transposed by the
    gradient of W [h, d]; computing it as [h, d] directly (dz.T @ x) saves a strided pass
    and lets the consumer reuse the buffer.
    """
    consumers: dict[int, list[tuple[int, int]]] = {}
    for n in order:
        for k, a in enumerate(nodes[n.id].args):
            consumers.setdefault(a.node.id, []).append((n.id, k))
    for n in order:
        p = nodes[n.id]
        if p.kind != "op" or not p.reduce or len(p.out) != 2 or None in p.out or p.id in roots:
            continue
        reads = consumers.get(p.id, [])
        if not reads:
            continue
        flips = []
        for cid, k in reads:
            c = nodes[cid]
            idx = c.args[k].idx
            c_out = [i for i in c.out if i is not None]
            flips.append(None not in idx and len(c_out) == 2 and tuple(idx) == tuple(
                reversed(c_out)))
        if not all(flips):
            continue
        new_out = tuple(reversed(p.out))
        nodes[p.id] = dataclasses.replace(p, out=new_out, shape=tuple(reversed(p.shape)))
        for cid, k in reads:
            c = nodes[cid]
            args = list(c.args)
            args[k] = Arg(nodes[p.id], tuple(reversed(args[k].idx)))
            nodes[cid] = dataclasses.replace(c, args=tuple(args))
    # consumers must point at the re-oriented producers
    for n in order:
        c = nodes[n.id]
        if c.kind == "op":
            nodes[n.id] = dataclasses.replace(
                c, args=tuple(Arg(nodes[a.node.id], a.idx) for a in c.args))


def _update_may_read(p: Node, c: Node, k: int, writes: Node | None) -> bool:
    """Whether `p` may be inlined into argument k of `c`, when `c` updates the parameter
    `writes` in place (sgd_step): only if the parameters `p` reads are that one, at the very
    index being written. Updates run one after another, so any other read would see an
    already updated parameter (a bilinear `sum(a * c)` would step `c` along the new `a`);
    such values are computed as arrays before the first update instead."""
    if writes is None:
        return True
    mapping = {pi: ci for pi, ci in zip(p.out, c.args[k].idx) if pi is not None}
    for a in p.args:
        if a.node.kind != "param":
            continue
        mapped = tuple(None if i is None else mapping[i] for i in a.idx)
        if a.node.id != writes.id or mapped != c.out:
            return False
    return True


def _should_inline(p: Node, c: Node, k: int, uses, roots, blas: bool,
                   writes: Node | None) -> bool:
    if p.kind != "op" or p.reduce or p.id in roots:
        return False
    if not p.is_identity and _size(p.body) + _size(c.body) > MAX_FUSED_SIZE:
        return False  # a long chain of maps is fused in pieces, not into one expression
    if p.role != c.role and p.role == "forward" and c.role == "backward" and p.args:
        # recomputing a forward map in the backward pass is fine only when cheap
        if not _is_cheap(p.body):
            return False
    if not _update_may_read(p, c, k, writes):
        return False
    if not p.args:
        return True  # a constant
    if p.shape == () and _is_cheap(p.body):
        return True
    if uses.get(p.id, 0) != 1:
        return False
    if blas:
        return False
    loop = {i for i in c.out if i is not None} | set(c.reduce)
    read = {i for i in c.args[k].idx if i is not None}
    if read != loop and not _is_cheap(p.body):
        return False
    return True


# ----------------------------------------------------------------------------- steps
def _loop_order(node: Node) -> tuple[tuple, str]:
    out = [i for i in node.out if i is not None]
    loop = out + list(node.reduce)
    if not node.reduce:
        return tuple(out), "map"
    dominant = max((a for a in node.args if a.idx), key=lambda a: len([i for i in a.idx if i]),
                   default=None)
    order: list = []
    if dominant is not None:
        order = [i for i in dominant.idx if i is not None and i in loop]
    order += [i for i in loop if i not in order]
    reduce_first = min((order.index(r) for r in node.reduce), default=len(order))
    out_last = max((order.index(o) for o in out), default=-1)
    if out_last < reduce_first:
        return tuple(order), "register"
    if node.reducer != "sum":
        return tuple(out + list(node.reduce)), "register"
    return tuple(order), "accumulate"


def build_program(graph: Graph, roots: list[Node], updates: dict[Node, Node] | None = None,
                  lr: Node | None = None) -> Program:
    """Schedule the nodes needed for `roots` (and parameter `updates`: param → gradient)."""
    extra: list[Node] = []
    update_of: dict[int, Node] = {}
    next_id = len(graph.nodes)
    for p, g in (updates or {}).items():
        out = tuple(f"u{k}" for k in range(len(p.shape)))
        node = Node(id=next_id, name=p.name, kind="op", shape=p.shape, out=out,
                    args=(Arg(p, out), Arg(g, out), Arg(lr, ())),
                    body=arg_symbol(0) - arg_symbol(2) * arg_symbol(1),
                    sizes=dict(zip(out, p.shape)), role="backward", label=f"{p.name} update",
                    origin=p.origin)
        update_of[next_id] = p
        extra.append(node)
        next_id += 1
    root_ids = {r.id for r in roots} | {n.id for n in extra}
    needed: set[int] = set()
    stack = list(roots) + extra
    while stack:
        n = stack.pop()
        if n.id in needed:
            continue
        needed.add(n.id)
        stack.extend(a.node for a in n.args)
    order = ([lr] if lr is not None and updates else []) + \
        [n for n in graph.nodes if n.id in needed] + extra
    rewritten = _rewrite(order, root_ids, update_of)
    steps: list[Step] = []
    uses: dict[int, int] = {}
    for n in rewritten:
        for a in n.args:
            uses[a.node.id] = uses.get(a.node.id, 0) + 1
    reads: list[Node] = []
    for n in rewritten:
        if n.kind != "op":
            reads.append(n)
            continue
        if n.id in update_of:
            steps.append(Step(n, "loop", order=tuple(n.out), form="map", writes=update_of[n.id]))
            continue
        pattern = dot_pattern(n)
        if pattern is not None:
            steps.append(Step(n, "dot", dot=pattern))
        elif n.shape == () and not n.reduce:
            steps.append(Step(n, "scalar"))
        else:
            order_, form = _loop_order(n)
            step = Step(n, "loop", order=order_, form=form)
            if form == "map":
                step.inplace_of = _reusable(n, uses, root_ids)
            steps.append(step)
    _fold_updates_into_gemm(steps, uses, root_ids)
    _decay_in_last_read(steps)
    # Nodes computed here are not reads; stored forward values used here are.
    computed = {s.node.id for s in steps}
    for s in steps:
        for a in s.node.args:
            if a.node.id not in computed and all(a.node is not r for r in reads):
                reads.append(a.node)
    reads = sorted({r.id: r for r in reads if r.id not in computed}.values(), key=lambda r: r.id)
    return Program(steps=steps, reads=reads, roots=list(roots))


def _reusable(node: Node, uses, root_ids) -> Node | None:
    """A dying array this map may overwrite: read once, here, at exactly the output index,
    and made by a reduction (a GEMM's epilogue: `dJ/dW1 = dJ/dz.T @ x + lam * W1`). A map's
    array is not reused: this map then shares its loop instead (`statements.fusable_groups`),
    and a value used only inside one loop is never stored at all."""
    for a in node.args:
        p = a.node
        if (p.kind == "op" and p.reduce and p.id not in root_ids and uses.get(p.id) == 1
                and a.idx == node.out and p.shape == node.shape and p.role == node.role
                and None not in node.out):
            return p
    return None


def _fold_updates_into_gemm(steps: list[Step], uses, root_ids) -> None:
    """Let each parameter update that is linear in a matrix product be that product's GEMM.

    The product then runs where the update is, after every gradient has been computed, so
    its operands must not be parameters (those are being updated); they are not overwritten
    on the way, since an array is reused in place only by its single consumer.
    """
    written = {s.writes.id for s in steps if s.writes is not None}
    dots = {s.node.id: s for s in steps if s.kind == "dot"}
    for s in steps:
        if s.writes is None or len(s.node.shape) != 2:
            continue
        for k, a in enumerate(s.node.args):
            d = dots.get(a.node.id)
            if (d is None or len(d.node.shape) != 2 or d.node.id in root_ids
                    or uses.get(d.node.id) != 1 or tuple(a.idx) != tuple(s.node.out)
                    or d.dot["left"].id in written or d.dot["right"].id in written):
                continue
            split = _linear_split(s.node, k, s.writes)
            if split is not None:
                scale, beta, rest = split
                s.gemm = {"product": d, "scale": scale, "beta": beta, "rest": rest}
                d.folded = True
                break


def _decay_in_last_read(steps: list[Step]) -> None:
    """Apply a folded update's beta (`1 - lr*lam`, the weight decay) in the last pass that
    reads the parameter before its update, instead of in BLAS.

    BLAS scales C by a beta other than 1 in a pass of its own over the parameter; the L2
    penalty's sum of squares already reads every element once, after every other use of the
    parameter, so `W *= beta` there costs no memory traffic (6% of the seed step in float32).
    """
    for k, update in enumerate(steps):
        g = update.gemm
        if not g or g["rest"] is not None or g["beta"] == 1 or not _scalar_in(
                update.node, g["beta"], hypers_only=True):
            continue
        param = update.writes
        readers = [s for s in steps[:k] if any(a.node.id == param.id for a in s.node.args)]
        if not readers:
            continue
        last = readers[-1]
        reads = [a for a in last.node.args if a.node.id == param.id]
        # (not a loop that calls sin/cos: it may run twice, see statements.StepWriter.fused_lines)
        full = last.kind == "loop" and last.writes is None and last.form == "register" \
            and not last.node.out and not last.node.body.atoms(sp.sin, sp.cos) and all(
                None not in a.idx and len(a.idx) == len(param.shape) == len(last.order)
                and set(a.idx) == set(last.order) and a.idx == reads[0].idx for a in reads) \
            and tuple(last.node.sizes[i] for i in reads[0].idx) == tuple(param.shape)
        if full:
            last.decays.append(update)
            g["decayed"] = True


def _scalar_in(node: Node, expr: sp.Expr, hypers_only: bool = False) -> bool:
    """expr reads only dims and scalar arguments of node (only hyperparameters and lr, which
    are valid anywhere in a kernel, with `hypers_only`)."""
    def ok(x):
        if x == dim_symbol(str(x)):
            return True
        k = arg_index(x)
        return k is not None and not node.args[k].idx and (
            not hypers_only or node.args[k].node.kind == "hyper")
    return all(ok(x) for x in expr.free_symbols) and not expr.has(sp.nan, sp.zoo)


def _linear_split(node: Node, k: int, param: Node) -> tuple | None:
    """body = scale · a_k + beta · param + rest, with scale and beta scalar expressions;
    returns (scale, beta, rest), rest None when it is zero (beta is 1 when rest is not), or
    None if the body is not linear in a_k."""
    sym = arg_symbol(k)
    scale = sp.diff(node.body, sym)
    rest = node.body.xreplace({sym: sp.Integer(0)})
    if not _scalar_in(node, scale) or sp.expand(node.body - scale * sym - rest) != 0:
        return None
    own = next((arg_symbol(j) for j, a in enumerate(node.args)
                if a.node is param and tuple(a.idx) == tuple(node.out)), None)
    if own is not None:
        beta = sp.diff(rest, own)
        if _scalar_in(node, beta) and sp.expand(rest - beta * own) == 0:
            return scale, beta, None
    return scale, sp.Integer(1), rest
