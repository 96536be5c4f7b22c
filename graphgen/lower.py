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

    # ------------------------------------------------------------------ language v2
    def _reduce_layout(self, x: Node, axes: tuple):
        """Fresh indices of x, their sizes, the reduced indices, and the keepdims layout."""
        idx = self._fresh(len(x.shape))
        sizes = dict(zip(idx, x.shape))
        reduce = tuple(idx[a] for a in axes)
        kept = tuple(None if k in axes else idx[k] for k in range(len(idx)))
        kshape = tuple(1 if a is None else sizes[a] for a in kept)
        return idx, sizes, reduce, kept, kshape

    def _drop_axes(self, v: Node, axes: tuple) -> Node:
        """v (with unit axes at `axes`) without those axes: a free re-indexing."""
        remaining = [k for k in range(len(v.shape)) if k not in axes]
        out = self._fresh(len(remaining))
        position = dict(zip(remaining, out))
        read = tuple(position.get(k) for k in range(len(v.shape)))
        return self._add(shape=tuple(v.shape[k] for k in remaining), out=out,
                         args=(Arg(v, read),), body=arg_symbol(0),
                         sizes={position[k]: v.shape[k] for k in remaining})

    def _stop(self, v: Node) -> Node:
        """v as a constant to the chain rule (an identity map, so free in generated code)."""
        out = self._fresh(len(v.shape))
        return self._add(shape=v.shape, out=out, args=(Arg(v, out),), body=arg_symbol(0),
                         sizes=dict(zip(out, v.shape)), differentiable=False)

    def _with_gradient(self, value, surrogate: Node) -> Node:
        """A node whose value is `value` (not differentiated; a callable of its argument
        symbol) and whose gradient is the surrogate's: value + s - stop(s). The schedule
        splices stop(s) into the same read as s, so the sum cancels to `value` exactly in
        the generated code and s is computed only in the backward pass."""
        value_node, fn = value
        return self.map(lambda v, s, t: fn(v) + s - t,
                        [value_node, surrogate, self._stop(surrogate)])

    def reduce_extreme(self, x: Node, axes: tuple, keepdims: bool, smallest: bool) -> Node:
        """max (or min = -max(-x)) over axes. The gradient goes to the positions equal to
        the extreme, divided by their count (ties split evenly, as torch.amax): the
        surrogate Σ x·[x = m]/count has exactly that derivative."""
        sign = -1 if smallest else 1
        idx, sizes, reduce, kept, kshape = self._reduce_layout(x, axes)
        m = self._add("_max", shape=kshape, out=kept, reduce=reduce, reducer="max",
                      args=(Arg(x, idx),), body=sign * arg_symbol(0), sizes=dict(sizes),
                      differentiable=False)
        hit = self._add("_argmax", shape=x.shape, out=idx, args=(Arg(x, idx), Arg(m, kept)),
                        body=ops.equal(sign * arg_symbol(0), arg_symbol(1)),
                        sizes=dict(sizes), differentiable=False)
        ties = self._add("_ties", shape=kshape, out=kept, reduce=reduce, args=(Arg(hit, idx),),
                         body=arg_symbol(0), sizes=dict(sizes), differentiable=False)
        share = self._add("_maxgrad", shape=kshape, out=kept, reduce=reduce,
                          args=(Arg(x, idx), Arg(hit, idx), Arg(ties, kept)),
                          body=arg_symbol(0) * arg_symbol(1) / arg_symbol(2), sizes=dict(sizes))
        out = self._with_gradient((m, lambda v: sign * v), share)
        return out if keepdims else self._drop_axes(out, axes)

    def reduce_prod(self, x: Node, axes: tuple, keepdims: bool) -> Node:
        """Product over axes. d/dx_r = product of the others, also with zeros (as PyTorch):
        nz/x_r with no zero, nz (the product of the non-zeros) at a single zero and 0
        elsewhere then, 0 everywhere with two zeros or more."""
        idx, sizes, reduce, kept, kshape = self._reduce_layout(x, axes)
        a0, a1, a2 = arg_symbol(0), arg_symbol(1), arg_symbol(2)

        def red(prefix, reducer, body, args=(Arg(x, idx),)):
            return self._add(prefix, shape=kshape, out=kept, reduce=reduce, reducer=reducer,
                             args=args, body=body, sizes=dict(sizes), differentiable=False)
        value = red("_prod", "prod", a0)
        nonzero = red("_prodnz", "prod", ops.where(ops.not_equal(a0, 0), a0, 1))
        zeros = red("_zeros", "sum", ops.equal(a0, 0))
        others = self._add("_others", shape=x.shape, out=idx,
                           args=(Arg(x, idx), Arg(nonzero, kept), Arg(zeros, kept)),
                           body=ops.where(ops.not_equal(a0, 0),
                                          ops.where(ops.equal(a2, 0), a1 / a0, 0),
                                          ops.where(ops.equal(a2, 1), a1, 0)),
                           sizes=dict(sizes), differentiable=False)
        surrogate = self._add("_prodgrad", shape=kshape, out=kept, reduce=reduce,
                              args=(Arg(x, idx), Arg(others, idx)), body=a0 * a1,
                              sizes=dict(sizes), second_order=False)
        out = self._with_gradient((value, lambda v: v), surrogate)
        return out if keepdims else self._drop_axes(out, axes)

    def variance(self, x: Node, axes: tuple, keepdims: bool, ddof: int, std: bool) -> Node:
        """Σ (x - mean)² / (N - ddof), two passes; std = sqrt(var). The chain rule runs
        through the mean as well (its contribution sums to zero, as it should)."""
        mu = self.reduce_sum(x, axes, keepdims=True, mean=True)
        dev = self.map(lambda a, m: a - m, [x, mu])
        count = sp.Integer(1)
        for a in axes:
            s = x.shape[a]
            count = count * (dim_symbol(s) if isinstance(s, str) else sp.Integer(s))
        squares = self.reduce_sum(dev, axes, keepdims, mean=False)
        squares.body = arg_symbol(0) ** 2
        v = self.map(lambda t: t / (count - ddof), [squares])
        return self.map(sp.sqrt, [v]) if std else v

    def log_softmax(self, x: Node, axes: tuple) -> Node:
        lse = self.logsumexp(x, axes, keepdims=True)
        return self.map(lambda a, m: a - m, [x, lse])

    def one_hot(self, labels: Node, q) -> Node:
        idx = self._fresh(len(labels.shape) + 1)
        shape = labels.shape + (q,)
        return self._add("_onehot", shape=shape, out=idx, args=(Arg(labels, idx[:-1]),),
                         body=ops.label_is(arg_symbol(0), index_symbol(idx[-1])),
                         sizes=dict(zip(idx, shape)), differentiable=False)

    def soft_cross_entropy(self, logits: Node, target: Node) -> Node:
        """-Σ_j P_j log_softmax(logits)_j over the last axis (torch's probability targets);
        differentiable in both."""
        last = len(logits.shape) - 1
        ls = self.log_softmax(logits, (last,))
        prod = self.map(lambda p, s: -p * s, [target, ls])
        return self.reduce_sum(prod, (last,), keepdims=False, mean=False)

    def select(self, x: Node, axes: list) -> Node:
        """Basic indexing as a map-reduce: each indexed or sliced axis is read at its own
        index r and summed against the indicator [r = offset + step·j] (j: the output's
        index; an index has none). Reads stay in bounds whatever the sizes are, and the
        adjoint is the same chain rule: a scatter of the cotangent into a zero array."""
        if all(a[0] == "full" for a in axes):
            return x
        idx = self._fresh(len(x.shape))
        sizes = dict(zip(idx, x.shape))
        out, shape, reduce = [], [], []
        body = arg_symbol(0)
        for k, a in enumerate(axes):
            if a[0] == "full":
                out.append(idx[k])
                shape.append(x.shape[k])
                continue
            reduce.append(idx[k])
            if a[0] == "index":
                body = body * ops.equal(index_symbol(idx[k]), a[1])
                continue
            _, offset, step, count = a
            (j,) = self._fresh(1)
            sizes[j] = count
            out.append(j)
            shape.append(count)
            body = body * ops.equal(index_symbol(idx[k]), offset + step * index_symbol(j))
        return self._add(shape=tuple(shape), out=tuple(out), reduce=tuple(reduce),
                         args=(Arg(x, idx),), body=body, sizes=sizes)
