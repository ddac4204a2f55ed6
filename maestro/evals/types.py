"""What the eval harness passes around: one item's outcome and the rows the state DB keeps."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def measured(value: float | None) -> float | None:
    """``value`` when it is a real number; ``None`` (unmeasured) for None, NaN and infinities.

    A failed judge or a metric that returns NaN is *unmeasured*: it is left out of every mean, never
    averaged in as a zero.
    """
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class ItemOutcome:
    """One item for one model: ``score`` in [0, 1] (None: unmeasured), the metrics behind it, cost,
    latency and, when the item could not be measured or the model failed it, why."""

    score: float | None
    metrics: Mapping[str, float | None] = field(default_factory=dict)
    cost_usd: float = 0.0
    latency_s: float | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        score = measured(self.score)
        if score is not None and not 0.0 <= score <= 1.0:
            raise ValueError(f"an item's score must be in [0, 1], got {score}")
        object.__setattr__(self, "score", score)
        object.__setattr__(self, "metrics", {k: measured(v) for k, v in self.metrics.items()})


@dataclass(frozen=True)
class ResultRow:
    """An item's outcome as stored: which run, dataset, item and model it belongs to."""

    run_id: str
    dataset: str
    item_id: str
    model: str
    task_class: str
    score: float | None
    metrics: Mapping[str, float | None]
    cost_usd: float
    latency_s: float | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "dataset": self.dataset,
            "item_id": self.item_id,
            "model": self.model,
            "task_class": self.task_class,
            "score": self.score,
            "metrics": dict(self.metrics),
            "cost_usd": self.cost_usd,
            "latency_s": self.latency_s,
            "error": self.error,
        }
