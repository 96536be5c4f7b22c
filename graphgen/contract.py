"""The order in which an einsum of three or more operands is contracted, pair by pair.

Why: one loop nest over every index of `einsum("ni,ij,mj->nm", X, W, Z)` costs n·i·j·m
multiply-adds (2.4 s at 256/128/128/256); contracted as (X @ W) then (· @ Z.T) it costs
n·i·j + n·j·m, two GEMMs (0.5 ms). Each pairwise contraction becomes a node of its own, so
the planner sees plain matrix products (BLAS), the chain rule gives each its own adjoint
(again pairwise contractions), and the intermediates are kept for the backward pass instead
of being recomputed.

The order minimises the total multiply-adds over all binary trees (as opt_einsum's
"optimal" path; dynamic programming over subsets, exact up to `EXACT_UP_TO` operands, then
greedy, as opt_einsum's "greedy"). Sizes are not known until call time: a named dim counts
as `TYPICAL_DIM`, a literal size as itself. With equal named sizes this picks the order of
lowest polynomial degree, which is the right one whatever the sizes are when they are
comparable; a dim far smaller than the others may call for another order (there is no way
to say so in a spec yet).
"""
from __future__ import annotations

from itertools import combinations

TYPICAL_DIM = 256  # what a named dim counts as when costing an order
EXACT_UP_TO = 8  # operands; above this, the greedy order


def _size(letters, sizes) -> int:
    total = 1
    for c in letters:
        s = sizes[c]
        total *= s if isinstance(s, int) else TYPICAL_DIM
    return total


def contraction_tree(terms: list[str], rhs: str, sizes: dict) -> object:
    """A binary tree of operand positions, e.g. ((0, 1), 2): contract 0 with 1, then the
    result with 2. `sizes` maps each letter to an int or a dim name."""
    n = len(terms)
    if n <= 2:
        return tuple(range(n)) if n == 2 else 0
    letters = [frozenset(t) for t in terms]
    out = frozenset(rhs)

    def kept(subset: frozenset) -> frozenset:
        """Letters of the intermediate of `subset`: those still needed outside it."""
        inside = frozenset().union(*(letters[k] for k in subset))
        outside = out.union(*(letters[k] for k in range(n) if k not in subset))
        return inside & outside

    if n > EXACT_UP_TO:
        return _greedy(letters, kept, sizes, n)
    best: dict[frozenset, tuple[int, object]] = {frozenset([k]): (0, k) for k in range(n)}
    for r in range(2, n + 1):
        for combo in combinations(range(n), r):
            subset = frozenset(combo)
            first = combo[0]  # each split once: the part holding the first operand
            rest = combo[1:]
            choice = None
            for m in range(0, r - 1):
                for part in combinations(rest, m):
                    left = frozenset((first,) + part)
                    right = subset - left
                    flops = _size(kept(left) | kept(right), sizes)
                    cost = best[left][0] + best[right][0] + flops
                    if choice is None or cost < choice[0]:
                        choice = (cost, (best[left][1], best[right][1]))
            best[subset] = choice
    return best[frozenset(range(n))][1]


def _greedy(letters, kept, sizes, n) -> object:
    """Contract, each time, the pair whose contraction costs the fewest multiply-adds."""
    groups = [(frozenset([k]), k) for k in range(n)]
    while len(groups) > 1:
        (i, j) = min(combinations(range(len(groups)), 2), key=lambda ij: (
            _size(kept(groups[ij[0]][0]) | kept(groups[ij[1]][0]), sizes), ij))
        merged = (groups[i][0] | groups[j][0], (groups[i][1], groups[j][1]))
        groups = [g for k, g in enumerate(groups) if k not in (i, j)] + [merged]
    return groups[0][1]


def intermediate_letters(tree, terms: list[str], rhs: str) -> str:
    """The letters of the value a subtree computes, in a fixed order (first appearance in
    its operands), keeping only those needed outside it."""
    leaves = list(_leaves(tree))
    inside = "".join(dict.fromkeys("".join(terms[k] for k in leaves)))
    outside = set(rhs).union(*(set(terms[k]) for k in range(len(terms)) if k not in leaves))
    return "".join(c for c in inside if c in outside)


def _leaves(tree):
    if isinstance(tree, int):
        yield tree
    else:
        for t in tree:
            yield from _leaves(t)
