"""Contraction order of einsums with three or more operands (graphgen/contract.py).

The chosen tree is compared with an independent brute force over every binary tree; the
lowered graph with NumPy's einsum (values) and finite differences (gradients), on random
subscripts; and the emitted kernel is checked to run the pairs as BLAS products.
"""
import string
from itertools import combinations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphgen import contract
from graphgen.build import load_python
from graphgen.gradcheck import check_gradients
from graphgen.pipeline import compile_source


def _all_trees(items):
    """Every binary tree over the operand positions in `items` (an independent brute force)."""
    if len(items) == 1:
        yield items[0]
        return
    first, rest = items[0], items[1:]
    for r in range(len(rest)):
        for part in combinations(rest, r):
            left = (first,) + part
            right = tuple(x for x in rest if x not in part)
            for a in _all_trees(left):
                for b in _all_trees(right):
                    yield (a, b)


def _leaves(tree):
    return [tree] if isinstance(tree, int) else _leaves(tree[0]) + _leaves(tree[1])


def _cost(tree, terms, rhs, sizes):
    """Multiply-adds of a tree: each pair costs the product of the sizes of its letters."""
    if isinstance(tree, int):
        return 0
    def letters(t):
        inside = set("".join(terms[k] for k in _leaves(t)))
        outside = set(rhs).union(*(set(terms[k]) for k in range(len(terms))
                                   if k not in _leaves(t)))
        return inside & outside
    size = lambda s: int(np.prod([sizes[c] if isinstance(sizes[c], int)  # noqa: E731
                                  else contract.TYPICAL_DIM for c in s]))
    return (_cost(tree[0], terms, rhs, sizes) + _cost(tree[1], terms, rhs, sizes)
            + size(letters(tree[0]) | letters(tree[1])))


@pytest.mark.parametrize("subscripts, sizes", [
    ("ni,ij,mj->nm", {"n": "n", "i": "d", "j": "d", "m": "m"}),
    ("ab,bc,cd,de->ae", {"a": 2, "b": 300, "c": 3, "d": 300, "e": 2}),
    ("ij,jk,kl,lm,mn->in", dict.fromkeys("ijklmn", "n")),
    ("ia,ib,ic,abc->i", {"i": "n", "a": 4, "b": 5, "c": 6}),
])
def test_tree_is_the_cheapest_of_all_binary_trees(subscripts, sizes):
    lhs, rhs = subscripts.split("->")
    terms = lhs.split(",")
    tree = contract.contraction_tree(terms, rhs, sizes)
    best = min(_cost(t, terms, rhs, sizes) for t in _all_trees(tuple(range(len(terms)))))
    assert sorted(_leaves(tree)) == list(range(len(terms)))
    assert _cost(tree, terms, rhs, sizes) == best


def test_greedy_order_for_many_operands_uses_every_operand_once():
    terms = [a + b for a, b in zip(string.ascii_lowercase[:11], string.ascii_lowercase[1:12])]
    tree = contract.contraction_tree(terms, "al", dict.fromkeys("abcdefghijkl", "n"))
    assert sorted(_leaves(tree)) == list(range(11))


@st.composite
def einsum_specs(draw):
    """A random einsum of 3-4 operands (each 1-3 letters out of five), output a subset."""
    letters = "abcde"
    sizes = dict(zip(letters, (2, 3, 2, 4, 3)))
    k = draw(st.integers(3, 4))
    terms = ["".join(draw(st.permutations(letters))[:draw(st.integers(1, 3))])
             for _ in range(k)]
    used = sorted(set("".join(terms)))
    rhs = "".join(draw(st.permutations(used))[:draw(st.integers(0, min(2, len(used))))])
    return terms, rhs, sizes


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
@given(einsum_specs())
def test_multi_operand_einsum_matches_numpy_and_finite_differences(case):
    terms, rhs, sizes = case
    lines = [f"param p{k}[{', '.join(t)}]" for k, t in enumerate(terms)]
    lines.append(f"input w[{', '.join(rhs)}]" if rhs else "input w")
    operands = ", ".join(f"p{k}" for k in range(len(terms)))
    lines.append(f"E = einsum(\"{','.join(terms)}->{rhs}\", {operands})")
    lines += ["J = sum(E * w)" if rhs else "J = E * w", "minimize J"]
    module = load_python(compile_source("\n".join(lines) + "\n", "einsum.gg").source)
    rng = np.random.default_rng(len(lines[-3]))
    args = {f"p{k}": rng.uniform(-1, 1, [sizes[c] for c in t]) for k, t in enumerate(terms)}
    args["w"] = rng.uniform(-1, 1, [sizes[c] for c in rhs])
    J, _ = module.value_and_grad(**args)
    reference = np.einsum(f"{','.join(terms)}->{rhs}", *[args[f"p{k}"] for k in
                                                         range(len(terms))])
    assert J == pytest.approx(float(np.sum(reference * args["w"])), rel=1e-12, abs=1e-12)
    results = check_gradients(module, args, rtol=1e-6, seed=1)
    assert all(r.ok for r in results), [(r.name, r.max_rel_error) for r in results]


def test_bilinear_form_runs_as_blas_products_through_numba(build):
    """ni,ij,mj->nm: two GEMMs forward, no four-deep loop; gradient as by hand."""
    m = build('input X[n, i]\ninput Z[m, j]\nparam W[i, j]\n'
              'S = einsum("ni,ij,mj->nm", X, W, Z)\nJ = logsumexp(S)\nminimize J\n', "bilinear")
    source = open(m.__file__).read()
    kernel = source[source.index("def _value_and_grad_kernel"):]
    kernel = kernel[:kernel.index("\n\n\n")]
    assert kernel.count("np.dot(") + kernel.count("_dot_t(") >= 4
    assert "for i3 in" not in kernel  # no loop nest four deep
    rng = np.random.default_rng(0)
    X, Z, W = rng.normal(size=(7, 5)), rng.normal(size=(6, 4)), rng.normal(size=(5, 4))
    J, g = m.value_and_grad(X=X, Z=Z, W=W)
    S = X @ W @ Z.T
    P = np.exp(S - S.max()) / np.exp(S - S.max()).sum()
    assert J == pytest.approx(S.max() + np.log(np.exp(S - S.max()).sum()), rel=1e-13)
    np.testing.assert_allclose(g["W"], X.T @ P @ Z, rtol=1e-12)
