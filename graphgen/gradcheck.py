"""Gradient checking: compare a generated module's gradients with central finite differences.

For each parameter, the analytic gradient is compared with fourth-order central
differences along random directions (a directional derivative `∇J · v`) and, for small
parameters, element by element.
Reports carry which parameter, which index, both values and the errors, as PyTensor does.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class ParamCheck:
    name: str
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple
    analytic: float
    numeric: float
    ok: bool


def random_arguments(module, dims: dict[str, int], seed: int = 0, dtype=np.float64,
                     scale: float = 0.5) -> dict:
    """Random inputs, labels and parameters for a generated module, with the given dims."""
    rng = np.random.default_rng(seed)

    def shape_of(shape):
        return tuple(s if isinstance(s, int) else dims[s] for s in shape)

    args = {}
    for name, (shape, kind, label_range) in module.INPUTS.items():
        sh = shape_of(shape)
        if kind == "int":
            high = label_range if isinstance(label_range, int) else dims.get(label_range, 2)
            args[name] = rng.integers(0, high, size=sh)
        else:
            args[name] = (rng.normal(size=sh) * scale + 0.1).astype(dtype)
    for name, (shape, _, _) in module.PARAMS.items():
        args[name] = (rng.normal(size=shape_of(shape)) * scale).astype(dtype)
    return args


def check_gradients(module, args: dict, eps: float = 1e-4, rtol: float = 1e-6,
                    elementwise_limit: int = 400, directions: int = 3,
                    seed: int = 0) -> list[ParamCheck]:
    """Compare `module.value_and_grad`'s gradients with central differences of its value.

    The differences take the value from the same entry point, so the check JIT-compiles one
    kernel, not two: compiling is most of what `graphgen check` costs. (The entry points are
    checked against each other in tests/test_entry_points.py.)"""
    rng = np.random.default_rng(seed)
    _, grads = module.value_and_grad(**args)

    def J(**override):
        return float(module.value_and_grad(**dict(args, **override))[0])

    results = []
    for name in module.PARAMS:
        p = np.asarray(args[name], dtype=np.float64)
        g = np.asarray(grads[name], dtype=np.float64)
        worst = (0.0, 0.0, (), 0.0, 0.0)
        probes = []
        if p.size <= elementwise_limit:
            for idx in np.ndindex(p.shape):
                v = np.zeros_like(p)
                v[idx] = 1.0
                probes.append((idx, v))
        for _ in range(directions):
            probes.append((("direction",), rng.normal(size=p.shape)))
        for idx, v in probes:
            # fourth-order central difference: error O(eps^4) + rounding O(1e-16 |J| / eps)
            f = [J(**{name: np.asarray(p + k * eps * v, dtype=args[name].dtype)})
                 for k in (-2, -1, 1, 2)]
            numeric = (f[0] - 8 * f[1] + 8 * f[2] - f[3]) / (12 * eps)
            analytic = float(np.sum(g * v))
            err = abs(analytic - numeric)
            scale = max(abs(analytic), abs(numeric), 1e-3)
            rel = err / scale
            if rel >= worst[1]:
                worst = (err, rel, idx, analytic, numeric)
        results.append(ParamCheck(name, worst[0], worst[1], worst[2], worst[3], worst[4],
                                  worst[1] <= rtol))
    return results


@dataclass
class ForwardCheck:
    forward: float  # jvp's directional derivative
    reverse: float  # Σ_p <dJ/dp, t_p> from value_and_grad
    rel_error: float
    ok: bool


def check_forward_mode(module, args: dict, rtol: float = 1e-10, seed: int = 0) -> ForwardCheck:
    """Compare `module.jvp` along random tangents with reverse mode: two derivations of the
    same chain rule, which agree to rounding."""
    rng = np.random.default_rng(seed)
    tangents = {p: rng.normal(size=np.shape(args[p])).astype(np.asarray(args[p]).dtype)
                for p in module.PARAMS}
    _, forward = module.jvp(tangents, **args)
    _, grads = module.value_and_grad(**args)
    reverse = sum(float(np.sum(np.asarray(grads[p], dtype=np.float64) * t))
                  for p, t in tangents.items())
    rel = abs(forward - reverse) / max(abs(forward), abs(reverse), 1e-12)
    return ForwardCheck(forward, reverse, rel, rel <= rtol)


@dataclass
class HessianCheck:
    max_rel_error: float
    ok: bool
    refusal: str | None = None  # the module's reason when it has no hvp for this spec


def check_hvp(module, args: dict, eps: float = 1e-4, rtol: float = 1e-6,
              seed: int = 0) -> HessianCheck:
    """Compare `module.hvp` along a random v with 4th-order central differences of
    value_and_grad's gradient along v (reverse mode only: an independent route)."""
    rng = np.random.default_rng(seed)
    v = {p: rng.normal(size=np.shape(args[p])).astype(np.asarray(args[p]).dtype)
         for p in module.PARAMS}
    try:
        hv = module.hvp(v, **args)
    except NotImplementedError as e:
        return HessianCheck(0.0, True, str(e))

    def grad_at(k):
        moved = {p: np.asarray(args[p] + k * eps * t, dtype=args[p].dtype)
                 for p, t in v.items()}
        return module.value_and_grad(**{**args, **moved})[1]

    g = {k: grad_at(k) for k in (-2, -1, 1, 2)}
    worst = 0.0
    for p in module.PARAMS:
        numeric = (8 * (g[1][p] - g[-1][p]) - (g[2][p] - g[-2][p])) / (12 * eps)
        scale = max(float(np.max(np.abs(numeric))), float(np.max(np.abs(hv[p]))), 1e-3)
        worst = max(worst, float(np.max(np.abs(hv[p] - numeric))) / scale)
    return HessianCheck(worst, worst <= rtol)
