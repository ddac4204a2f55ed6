"""The benchmark report shape and the statistics every benchmark uses."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from typing import Any


def percentile(samples: list[float], pct: float) -> float:
    """Nearest-rank percentile (``pct`` in 0..100) of a non-empty sample."""
    ordered = sorted(samples)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def machine() -> str:
    """A one-line description of where the numbers were measured."""
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )


@dataclass
class BenchReport:
    bench: str
    metrics: dict[str, float] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def target(self, name: str, value: float, *, at_most: float) -> None:
        """Record a target of the form ``value <= at_most``."""
        self.targets[name] = {"value": round(value, 4), "target": f"<= {at_most}", "met": value <= at_most}

    def at_least(self, name: str, value: float, minimum: float, *, strict: bool = False) -> None:
        """Record a target of the form ``value >= minimum`` (``>`` with ``strict``)."""
        met = value > minimum if strict else value >= minimum
        self.targets[name] = {
            "value": round(value, 4),
            "target": f"{'>' if strict else '>='} {minimum}",
            "met": met,
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "bench": self.bench,
            "machine": machine(),
            "metrics": {k: round(v, 4) for k, v in self.metrics.items()},
            "baseline": {k: round(v, 4) for k, v in self.baseline.items()},
            "targets": self.targets,
        }
