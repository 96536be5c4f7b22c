"""How a spec meets a dataset, decided before training starts (`plan_run`).

Consumes a generated module (its INPUTS, PARAMS, DIMS, OUTPUTS, OUTPUT_SHAPES tables and
predict's signature) and a `Data`; produces a `Plan` (which array feeds which input, the
dims, the task, metric, output and target) and the arrays in the declared ranks and dtypes.
Every mismatch is a `TrainError` that names the spec's inputs and the data's arrays.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np

from .datasets import Data, describe


class TrainError(Exception):
    """The spec, the data or the options do not fit a training run (a user mistake)."""


class Diverged(TrainError):
    """The objective became NaN/inf or grew by orders of magnitude."""


def _spec_inputs_text(module) -> str:
    return ", ".join(f"{n}{shape_text(s)} {k}" for n, (s, k, _) in module.INPUTS.items())


def shape_text(shape) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def accepted(fn) -> set:
    return set(inspect.signature(fn).parameters) - {"unexpected"}


@dataclass
class Plan:
    """How one spec meets one dataset: which array feeds which input, dims, task, metric."""

    inputs: dict  # spec input -> data array name
    batch_dim: str
    dims: dict
    task: str  # "classification" | "regression" | "objective"
    metric: str | None
    output: str | None
    target: str | None  # the spec input the metric compares the output with
    predict_inputs: list


def bind_names(module, data: Data, needed: list[str]) -> dict:
    arrays = data.arrays
    if all(n in arrays for n in needed):
        return {n: n for n in needed}
    if data.by_role and set(arrays) <= {"x", "y"}:
        reads = accepted(module.predict)
        features = [n for n in needed if n in reads]
        targets = [n for n in needed if n not in reads]
        if len(features) == 1 and len(targets) <= 1 and (targets or "y" not in arrays or
                                                          len(needed) == 1):
            mapping = {features[0]: "x"}
            if targets and "y" in arrays:
                mapping[targets[0]] = "y"
            if len(mapping) == len(needed):
                return mapping
    missing = [n for n in needed if n not in arrays]
    raise TrainError(
        f"the data does not match the spec's inputs: the spec takes "
        f"{', '.join(f'{n}{shape_text(module.INPUTS[n][0])}' for n in needed)}; {data.name} holds "
        f"{describe(arrays)} (no array named {', '.join(map(repr, missing))}). Name the "
        f"arrays after the inputs (np.savez(..., {missing[0]}=...)) or pick table columns "
        f"with --columns {missing[0]}=...")


def coerce(name: str, array, decl: tuple, dtype, where: str, classes: int = 0) -> np.ndarray:
    """The data array for input `name`, in the declared rank and kind; integer labels for a
    float [n, q] input become one-hot rows of width `classes`."""
    shape, kind, _ = decl
    a = np.asarray(array)
    if kind == "float" and len(shape) == 2 and a.ndim == 1 and a.dtype.kind in "iu" and \
            shape[1] != 1 and classes:
        if a.min() < 0:
            raise TrainError(f"input {name!r}: {where} holds the negative label {a.min()}")
        return np.ascontiguousarray(np.eye(classes, dtype=dtype)[a])
    if a.ndim == len(shape) + 1 and a.shape[-1] == 1:
        a = a[..., 0]
    elif a.ndim == len(shape) - 1 and (shape[-1] == 1 or isinstance(shape[-1], str)) and \
            len(shape) >= 2:
        a = a[..., None]
    if a.ndim != len(shape):
        raise TrainError(f"input {name!r} is declared {shape_text(shape)} ({len(shape)} axes), "
                         f"but {where} has shape {a.shape}")
    if a.dtype.kind not in "biuf":
        raise TrainError(f"input {name!r}: {where} holds {a.dtype} values, not numbers")
    if kind == "int":
        if a.dtype.kind == "f":
            if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
                raise TrainError(f"input {name!r} holds integer labels in the spec, but "
                                 f"{where} has non-integer values")
        a = a.astype(np.int64)
        if a.size and a.min() < 0:
            raise TrainError(f"input {name!r} holds class labels, but {where} has the "
                             f"negative label {a.min()}")
        return np.ascontiguousarray(a)
    a = np.ascontiguousarray(a, dtype=dtype)
    if not np.all(np.isfinite(a)):
        raise TrainError(f"input {name!r}: {where} holds NaN or infinite values")
    return a


def plan_run(module, data: Data, config, saved_dims: dict | None = None,
             needed: list[str] | None = None) -> tuple[Plan, dict, dict | None]:
    """Bind data to the spec; returns (plan, train arrays by input, test arrays or None).
    `config`: a TrainConfig (dims, dtype, output, metric are read)."""
    needed = list(module.INPUTS) if needed is None else needed
    mapping = bind_names(module, data, needed)
    dtype = np.dtype(config.dtype)
    widths = {}  # one-hot widths: the declared size, a --dim, or the largest label + 1
    for n, src in mapping.items():
        parts = [data.arrays[src]] + ([data.test[src]] if data.test is not None else [])
        if all(np.asarray(a).dtype.kind in "iu" and np.asarray(a).size for a in parts):
            q = module.INPUTS[n][0][-1] if module.INPUTS[n][0] else 1
            widths[n] = q if isinstance(q, int) else int(
                (saved_dims or {}).get(q) or config.dims.get(q) or
                max(int(np.max(a)) for a in parts) + 1)
    arrays = {n: coerce(n, data.arrays[src], module.INPUTS[n], dtype,
                         f"{data.name}'s array {src!r}", widths.get(n, 0))
              for n, src in mapping.items()}
    test = None
    if data.test is not None:
        test = {n: coerce(n, data.test[src], module.INPUTS[n], dtype,
                           f"{data.name}'s test array {src!r}", widths.get(n, 0))
                for n, src in mapping.items()}
    firsts = {module.INPUTS[n][0][0] for n in needed if module.INPUTS[n][0]}
    if len(firsts) != 1 or not isinstance(next(iter(firsts)), str) or any(
            not module.INPUTS[n][0] for n in needed):
        raise TrainError("training splits the data into minibatches along the first axis, "
                         "which all of the spec's inputs must share as one named dim (like "
                         f"n in x[n, d], y[n]); the spec declares {_spec_inputs_text(module)}")
    batch = next(iter(firsts))
    dims: dict = {}
    where: dict = {}
    for n, a in arrays.items():
        for axis, (dim, size) in enumerate(zip(module.INPUTS[n][0], a.shape)):
            if axis == 0 and dim == batch:
                continue
            if isinstance(dim, int):
                if size != dim:
                    raise TrainError(f"input {n!r} must have size {dim} on axis {axis}; the "
                                     f"data has shape {a.shape}")
            elif dim in dims and dims[dim] != size:
                raise TrainError(f"dim {dim!r} is {size} in input {n!r} but {dims[dim]} in "
                                 f"{where[dim]!r}")
            else:
                dims[dim], where[dim] = size, n
    rows = {len(a) for a in arrays.values()}
    if len(rows) > 1:
        raise TrainError(f"the inputs have different numbers of rows: "
                         f"{', '.join(f'{n} {len(a)}' for n, a in arrays.items())}")
    for n, a in arrays.items():
        high = module.INPUTS[n][2]
        if high is None:
            continue
        top = int(max(a.max(), test[n].max() if test else 0)) + 1
        if isinstance(high, str) and high not in dims:
            dims[high], where[high] = max(top, int(config.dims.get(high, 0))), n
        limit = high if isinstance(high, int) else dims[high]
        if top > limit:
            raise TrainError(f"input {n!r} holds labels up to {top - 1}, but the spec allows "
                             f"[0, {limit}) ({high} = {limit})")
    for name, size in (saved_dims or {}).items():
        if name in dims and dims[name] != size:
            raise TrainError(f"the saved weights were trained with {name} = {size}; this "
                             f"data has {name} = {dims[name]}")
        dims.setdefault(name, size)
    for name, size in config.dims.items():
        if name not in module.DIMS or name == batch:
            raise TrainError(f"dim {name!r}: the spec has no dimension {name!r} to set (it has "
                             f"{', '.join(d for d in module.DIMS if d != batch)})")
        if name in dims and dims[name] != size:
            source = "saved weights fix" if saved_dims and name in saved_dims else "data fixes"
            raise TrainError(f"dim {name}={size}: the {source} {name} = {dims[name]}")
        dims[name] = size
    for name in module.DIMS:
        if name not in dims and name != batch:
            dims[name] = config.default_dim
    for p, (shape, _, _) in module.PARAMS.items():
        if batch in shape:
            raise TrainError(f"param {p!r} is declared {shape_text(shape)}, sized by the batch dim "
                             f"{batch!r}; training needs params that do not depend on it")
    plan = _plan_task(module, config, batch, dims, mapping)
    return plan, arrays, test


def _plan_task(module, config, batch, dims, mapping) -> Plan:
    reads = [n for n in module.INPUTS if n in accepted(module.predict)]
    targets = [n for n in module.INPUTS if n not in reads]
    outputs = list(module.OUTPUTS)
    labels = [n for n in targets if module.INPUTS[n][1] == "int"]
    output = config.output
    if output is not None and output not in outputs:
        declared = f"its outputs are {', '.join(outputs)}" if outputs else \
            "it declares no outputs"
        raise TrainError(f"output {output!r}: the spec has no output of that name ({declared}); "
                         f"declare it with `output {output}`")

    def scores(o):  # [n, q] with q the label range
        shape = _output_shape(module, o)
        return shape is not None and len(shape) == 2 and shape[0] == batch

    if output is None and outputs:
        if labels:  # the [n, q] scores whose q is the labels' range, else any [n, k]
            classes = module.INPUTS[labels[0]][2]
            output = next((o for o in outputs if scores(o) and classes is not None and
                           _output_shape(module, o)[1] == classes), None) or next(
                (o for o in outputs if scores(o)), None)
        if output is None:
            output = next((o for o in outputs if any(
                _output_shape(module, o) == module.INPUTS[t][0] for t in targets)), outputs[0])
    if output is None:
        if config.metric:
            raise TrainError(f"metric {config.metric!r} needs an output to score, and the spec "
                             "declares none; add `output NAME`")
        return Plan(mapping, batch, dims, "objective", None, None, None, reads)
    out_shape = _output_shape(module, output)
    target = None
    if labels and scores(output):
        target = labels[0]
    else:
        same = [t for t in targets if module.INPUTS[t][0] == out_shape]
        target = (same or targets or [None])[0]
    task = "classification" if target in labels and scores(output) else "regression"
    metric = config.metric or ("accuracy" if task == "classification" else "mse")
    if target is None:
        raise TrainError(f"metric {metric!r} compares output {output!r} with a target input, "
                         "but every input of the spec is read by the outputs")
    t_shape, t_kind, _ = module.INPUTS[target]
    if metric == "accuracy":
        classes = module.INPUTS[target][2]
        ok = scores(output) and (t_kind == "int" and len(t_shape) == 1 and
                                 out_shape[1] == classes or t_shape == out_shape)
        if not ok:
            raise TrainError(f"accuracy needs output {output!r} to be [{batch}, classes] scores "
                             f"and {target!r} integer labels [{batch}] in [0, classes) (or one-hot "
                             f"rows); the "
                             f"spec has {output}{shape_text(out_shape or ())} and "
                             f"{target}{shape_text(t_shape)} {t_kind}; use --metric mse or mae")
    elif out_shape is not None and _squeeze(out_shape) != _squeeze(t_shape):
        raise TrainError(f"{metric} compares output {output!r} {shape_text(out_shape)} with the "
                         f"target {target!r} {shape_text(t_shape)}: the shapes differ; choose "
                         "another --output")
    return Plan(mapping, batch, dims, task, metric, output, target, reads)


def _squeeze(shape):
    return tuple(s for s in shape if s != 1)


def _output_shape(module, name):
    """The declared shape of an output (the generated module's OUTPUT_SHAPES table)."""
    return tuple(module.OUTPUT_SHAPES[name])
