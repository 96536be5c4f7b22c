"""Workload 4: compile latency, spec text → first result, in a fresh process, cold (no
graphgen output, no Numba cache) and warm (cache hit), split into parse / derive / render /
write+import / first call (JIT or cache load). Peers: JAX and torch.compile first calls."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

GRAPHGEN_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import graphgen
from graphgen import syntax, check, autodiff, pipeline, build
t_import = time.perf_counter()
spec_path, out_dir = sys.argv[1], sys.argv[2]
text = open(spec_path).read()
t1 = time.perf_counter()
tree = syntax.parse(text, spec_path)
t2 = time.perf_counter()
graph = autodiff.differentiate(check.check(tree))
t3 = time.perf_counter()
path = build.output_path(spec_path, out_dir)
fresh = build.is_fresh(path, text)
if not fresh:
    compiled = pipeline.compile_source(text, spec_path)
t4 = time.perf_counter()
if not fresh:
    build.write_atomic(path, compiled.source)
m = build.import_file(path)
t5 = time.perf_counter()
rng = np.random.default_rng(0)
x = rng.normal(size=(128, 784)).astype(np.float32); y = rng.integers(0, 10, 128)
W1 = (rng.normal(size=(256, 784)) * 0.05).astype(np.float32)
W2 = (rng.normal(size=(10, 256)) * 0.05).astype(np.float32)
m.sgd_step(x, y, W1, W2, lr=0.1)
t6 = time.perf_counter()
print(json.dumps({"imports": t_import - t0, "parse": t2 - t1, "derive": t3 - t2,
                  "render": (t4 - t3) if not fresh else 0.0, "write+import": t5 - t4,
                  "first call": t6 - t5, "spec to first result": t6 - t1,
                  "regenerated": not fresh}))
"""

JAX_CHILD = r"""
import json, time
t0 = time.perf_counter()
import numpy as np, jax, jax.numpy as jnp
t1 = time.perf_counter()
rng = np.random.default_rng(0)
x = jnp.asarray(rng.normal(size=(128, 784)).astype(np.float32)); y = jnp.asarray(rng.integers(0, 10, 128))
W1 = jnp.asarray((rng.normal(size=(256, 784)) * 0.05).astype(np.float32))
W2 = jnp.asarray((rng.normal(size=(10, 256)) * 0.05).astype(np.float32))
def loss(p):
    o = jax.nn.relu(x @ p[0].T) @ p[1].T
    return jnp.mean(jax.nn.logsumexp(o, axis=1) - jnp.take_along_axis(o, y[:, None], 1)[:, 0]) \
        + 5e-5 * (jnp.sum(p[0] ** 2) + jnp.sum(p[1] ** 2))
step = jax.jit(lambda p: jax.tree_util.tree_map(lambda a, g: a - 0.1 * g, p, jax.grad(loss)(p)))
t2 = time.perf_counter()
jax.block_until_ready(step((W1, W2)))
t3 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "first call": t3 - t2, "spec to first result": t3 - t1}))
"""

TORCH_CHILD = r"""
import json, time
t0 = time.perf_counter()
import numpy as np, torch
t1 = time.perf_counter()
rng = np.random.default_rng(0)
x = torch.from_numpy(rng.normal(size=(128, 784)).astype(np.float32)); y = torch.from_numpy(rng.integers(0, 10, 128))
W1 = torch.from_numpy((rng.normal(size=(256, 784)) * 0.05).astype(np.float32)).requires_grad_()
W2 = torch.from_numpy((rng.normal(size=(10, 256)) * 0.05).astype(np.float32)).requires_grad_()
def step(a, b):
    J = torch.nn.functional.cross_entropy(torch.relu(x @ a.T) @ b.T, y) + 5e-5 * ((a * a).sum() + (b * b).sum())
    return torch.autograd.grad(J, (a, b))
c = torch.compile(step)
t2 = time.perf_counter()
c(W1, W2)
t3 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "first call": t3 - t2, "spec to first result": t3 - t1}))
"""


def _child(code: str, *args: str, env=None) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          cwd=ROOT, env=env or os.environ.copy(), timeout=900)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(include_torch_compile: bool, jax_ok: bool, torch_ok: bool) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        spec = str(ROOT / "examples" / "mlp.gg")
        results["graphgen cold"] = _child(GRAPHGEN_CHILD, spec, tmp)
        results["graphgen warm"] = _child(GRAPHGEN_CHILD, spec, tmp)
    if jax_ok:
        results["JAX jit"] = _child(JAX_CHILD)
    if torch_ok and include_torch_compile:
        results["torch.compile"] = _child(TORCH_CHILD)
    return results
