"""Timing peers side by side in one process: warm up, interleave rounds, report medians.

The machine is shared and noisy, and libraries with their own thread pools (OpenBLAS,
PyTorch's OpenMP, XLA) steal cores from each other right after they ran. So each timed block
is preceded by ~0.3 s of untimed calls of the same implementation, implementations run in a
fresh random order every round, and we report the median and interquartile range over rounds.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Timing:
    name: str
    samples: list = field(default_factory=list)  # seconds per call, one per round

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def iqr(self) -> tuple[float, float]:
        return float(np.percentile(self.samples, 25)), float(np.percentile(self.samples, 75))


def _calls_for(fn, budget: float) -> int:
    """How many calls of fn fit in about `budget` seconds (at least 1)."""
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, int(budget / once))


def spin(fn, seconds: float) -> None:
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        fn()


def compare(impls: dict, rounds: int = 7, block: float = 0.1, warm: float = 0.3,
            seed: int = 0) -> dict[str, Timing]:
    """Time every implementation in `impls` (name -> zero-argument callable), interleaved."""
    rng = random.Random(seed)
    timings = {name: Timing(name) for name in impls}
    counts = {name: _calls_for(fn, block) for name, fn in impls.items()}
    names = list(impls)
    for _ in range(rounds):
        rng.shuffle(names)
        for name in names:
            fn = impls[name]
            spin(fn, warm)
            k = counts[name]
            start = time.perf_counter()
            for _ in range(k):
                fn()
            timings[name].samples.append((time.perf_counter() - start) / k)
    return timings
