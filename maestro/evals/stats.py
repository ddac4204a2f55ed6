"""Estimates with intervals: the mean of measured scores and a 95% interval around it.

Binary scores (pass/fail: HumanEval, Cypher execution accuracy) get the Wilson score interval, which
stays honest at 0/n and n/n where a bootstrap collapses to a point. Graded scores get a seeded
percentile bootstrap (numpy), so the same results always give the same interval. Unmeasured items
(``None``) are left out: ``samples`` counts only what was measured.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Interval", "bootstrap_diff", "estimate"]

Z95 = 1.959963984540054
RESAMPLES = 2000


@dataclass(frozen=True, slots=True)
class Interval:
    mean: float | None
    low: float | None
    high: float | None
    samples: int

    @property
    def measured(self) -> bool:
        return self.samples > 0 and self.mean is not None

    def to_dict(self) -> dict[str, float | int | None]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "samples": self.samples}


def estimate(scores: Sequence[float | None], *, seed: int = 0) -> Interval:
    """Mean and 95% interval of the measured scores (Wilson when all are 0/1, else bootstrap)."""
    values = [float(s) for s in scores if s is not None and math.isfinite(s)]
    n = len(values)
    if n == 0:
        return Interval(None, None, None, 0)
    mean = sum(values) / n
    if all(v in (0.0, 1.0) for v in values):
        low, high = _wilson(mean, n)
    else:
        low, high = _bootstrap(np.asarray(values), seed)
    return Interval(mean, min(low, mean), max(high, mean), n)


def bootstrap_diff(
    before: Sequence[float | None], after: Sequence[float | None], *, seed: int = 0
) -> tuple[float, float, float] | None:
    """Difference of means (after - before) and its 95% bootstrap interval; None if either is empty."""
    a = np.asarray([s for s in before if s is not None], dtype=float)
    b = np.asarray([s for s in after if s is not None], dtype=float)
    if a.size == 0 or b.size == 0:
        return None
    rng = np.random.default_rng(seed)
    diffs = rng.choice(b, size=(RESAMPLES, b.size)).mean(axis=1) - rng.choice(
        a, size=(RESAMPLES, a.size)
    ).mean(axis=1)
    low, high = np.percentile(diffs, [2.5, 97.5])
    return float(b.mean() - a.mean()), float(low), float(high)


def _wilson(p: float, n: int) -> tuple[float, float]:
    z2 = Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _bootstrap(values: np.ndarray, seed: int) -> tuple[float, float]:
    if values.size == 1:
        return 0.0, 1.0  # one graded sample says nothing about the spread
    rng = np.random.default_rng(seed)
    means = rng.choice(values, size=(RESAMPLES, values.size)).mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)
