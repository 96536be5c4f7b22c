"""Lowering: building index-form IR nodes for each construct of the spec language.

`check` validates names, types and shapes and reports errors; it then calls these builders,
which assume valid input and only construct nodes. Composite built-ins become a few simple
nodes: logsumexp is max-shifted (the shift is marked non-differentiable), softmax is
exp(x - logsumexp), cross_entropy is logsumexp minus the label's logit picked by a one-hot.
"""
from __future__ import annotations

import sympy as sp

from . import contract, ops
from .ir import Arg, Graph, Node, Origin, arg_symbol, dim_symbol, index_symbol


def broadcast_shapes(shapes: list[tuple]) -> tuple:
    """NumPy broadcasting of symbolic shapes; raises ValueError when they do not broadcast."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for k in range(rank):
        size = 1
        for s in shapes:
            j = k - (rank - len(s))
            if j < 0 or s[j] == 1:
                continue
            if size == 1:
                size = s[j]
            elif size != s[j]:
                raise ValueError("incompatible")
        out.append(size)
    return tuple(out)


class Lowering:
    """Appends nodes to `graph`, each tagged with the statement being lowered (`origin`)."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.origin: Origin | None = None

    def _add(self, prefix: str = "_t", **kw) -> Node:
        return self.graph.add(name=f"{prefix}{len(self.graph.nodes)}", kind="op",
                              origin=self.origin, **kw)

    def _fresh(self, count: int) -> tuple:
        return tuple(self.graph.fresh_index() for _ in range(count))

    def map(self, fn, nodes: list[Node]) -> Node:
        """fn(arg symbols...) applied elementwise with broadcasting (shapes pre-checked)."""
        shape = broadcast_shapes([n.shape for n in nodes])
        out = self._fresh(len(shape))
        args = []
        for n in nodes:
            offset = len(shape) - len(n.shape)
            idx = tuple(None if (s == 1 and shape[offset + k] != 1) else out[offset + k]
                        for k, s in enumerate(n.shape))
            args.append(Arg(n, idx))
        body = sp.sympify(fn(*[arg_symbol(k) for k in range(len(nodes))]))
        return self._add(shape=shape, out=out, args=tuple(args), body=body,
                         sizes=dict(zip(out, shape)))

    def transpose(self, v: Node) -> Node:
        if len(v.shape) < 2:
            return v
        out = self._fresh(len(v.shape))
        shape = tuple(reversed(v.shape))
        return self._add(shape=shape, out=out, args=(Arg(v, tuple(reversed(out))),),
                         body=arg_symbol(0), sizes=dict(zip(out, shape)))

    def matmul(self, a: Node, b: Node) -> Node:
        """a @ b for 1-D/2-D operands whose inner dimensions match."""
        (k,) = self._fresh(1)
        ia = self._fresh(1) if len(a.shape) == 2 else ()
        jb = self._fresh(1) if len(b.shape) == 2 else ()
        out = ia + jb
        shape = a.shape[:-1] + b.shape[1:]
        sizes = dict(zip(out, shape))
        sizes[k] = a.shape[-1]
        return self._add(shape=shape, out=out, reduce=(k,),
                         args=(Arg(a, ia + (k,)), Arg(b, (k,) + jb)),
                         body=arg_symbol(0) * arg_symbol(1), sizes=sizes)

    def reduce_sum(self, x: Node, axes: tuple, keepdims: bool, mean: bool) -> Node:
        idx = self._fresh(len(x.shape))
        sizes = dict(zip(idx, x.shape))
        out = tuple(None if k in axes else idx[k] for k in range(len(idx))
                    if keepdims or k not in axes)
        shape = tuple(sizes[a] if a is not None else 1 for a in out)
        body = arg_symbol(0)
        if mean:
            for a in axes:
                s = x.shape[a]
                body = body / (dim_symbol(s) if isinstance(s, str) else sp.Integer(s))
        return self._add(shape=shape, out=out, reduce=tuple(idx[a] for a in axes),
                         args=(Arg(x, idx),), body=body, sizes=sizes)

    def logsumexp(self, x: Node, axes: tuple, keepdims: bool) -> Node:
        """m = max(x) (not differentiated); e = exp(x - m); log(sum(e)) + m. e is a node of
        its own: the backward pass reads it (d/dx log(sum(e)) = e / sum(e)) instead of
        computing every exponential a second time."""
        idx = self._fresh(len(x.shape))
        sizes = dict(zip(idx, x.shape))
        reduce = tuple(idx[a] for a in axes)
        kept = tuple(None if k in axes else idx[k] for k in range(len(idx)))
        kshape = tuple(1 if a is None else sizes[a] for a in kept)
        shift = self._add("_max", shape=kshape, out=kept, reduce=reduce, reducer="max",
                          args=(Arg(x, idx),), body=arg_symbol(0), sizes=dict(sizes),
                          differentiable=False)
        shifted = self._add("_expshift", shape=x.shape, out=idx,
                            args=(Arg(x, idx), Arg(shift, kept)),
                            body=sp.exp(arg_symbol(0) - arg_symbol(1)), sizes=dict(sizes))
        total = self._add("_sumexp", shape=kshape, out=kept, reduce=reduce,
                          args=(Arg(shifted, idx),), body=arg_symbol(0), sizes=dict(sizes))
        lse = self.map(lambda s, m: sp.log(s) + m, [total, shift])
        if keepdims:
            return lse
        remaining = [k for k in range(len(idx)) if k not in axes]
        out = self._fresh(len(remaining))
        position = dict(zip(remaining, out))
        read = tuple(position.get(k) for k in range(len(idx)))  # None on reduced unit axes
        return self._add(shape=tuple(x.shape[k] for k in remaining), out=out,
                         args=(Arg(lse, read),), body=arg_symbol(0),
                         sizes={position[k]: x.shape[k] for k in remaining})

    def softmax(self, x: Node, axes: tuple) -> Node:
        lse = self.logsumexp(x, axes, keepdims=True)
        return self.map(lambda a, m: sp.exp(a - m), [x, lse])

    def cross_entropy(self, logits: Node, labels: Node) -> Node:
        """Per-row log(sum(exp(logits - m))) - (logits[label] - m), m the row maximum: the
        label's logit is selected (a -inf logit elsewhere gives 0, not NaN) and shifted
        before the subtraction, so equal logits of 1e16 give log(q), not a rounding of
        lse - logit at 1e16."""
        lse = self.logsumexp(logits, (len(logits.shape) - 1,), keepdims=True)
        total, shift = lse.args[0].node, lse.args[1].node  # sum(exp(x - m)), m; lse unused
        idx = self._fresh(len(logits.shape))
        row = idx[:-1] + (None,)  # total and shift keep the class axis as a unit axis
        picked = self._add("_picked", shape=logits.shape[:-1], out=idx[:-1], reduce=idx[-1:],
                           args=(Arg(logits, idx), Arg(labels, idx[:-1]), Arg(shift, row)),
                           body=ops.label_pick(arg_symbol(0) - arg_symbol(2), arg_symbol(1),
                                               index_symbol(idx[-1])),
                           sizes=dict(zip(idx, logits.shape)))
        return self._add(shape=logits.shape[:-1], out=idx[:-1],
                         args=(Arg(total, row), Arg(picked, idx[:-1])),
                         body=sp.log(arg_symbol(0)) - arg_symbol(1),
                         sizes=dict(zip(idx[:-1], logits.shape)))

    def einsum(self, terms: list[str], rhs: str, operands: list[Node],
               sizes: dict[str, object]) -> Node:
        """Products of the operands summed over the letters missing from `rhs`; three or more
        operands are contracted pair by pair, in the order `contract` chooses."""
        if len(operands) <= 2:
            return self._product(terms, rhs, operands, sizes)
        tree = contract.contraction_tree(terms, rhs, sizes)

        def build(sub, letters):
            if isinstance(sub, int):
                return operands[sub], terms[sub]
            (a, ta), (b, tb) = (build(t, contract.intermediate_letters(t, terms, rhs))
                                for t in sub)
            return self._product([ta, tb], letters, [a, b], sizes), letters

        return build(tree, rhs)[0]

    def _product(self, terms: list[str], rhs: str, operands: list[Node],
                 sizes: dict[str, object]) -> Node:
        """One node: the product of the operands summed over the letters not in `rhs`."""
        sizes = {c: sizes[c] for c in dict.fromkeys("".join(terms))}
        names = {c: self.graph.fresh_index() for c in sizes}
        body = sp.Integer(1)
        for k in range(len(operands)):
            body = body * arg_symbol(k)
        return self._add(shape=tuple(sizes[c] for c in rhs), out=tuple(names[c] for c in rhs),
                         reduce=tuple(names[c] for c in sizes if c not in rhs),
                         args=tuple(Arg(v, tuple(names[c] for c in t))
                                    for t, v in zip(terms, operands)),
                         body=body, sizes={names[c]: s for c, s in sizes.items()})
