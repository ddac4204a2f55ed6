"""From per-item results to routing weights, and telling a real change from noise.

``fit_weights`` keeps the current file's floors, ceilings and prior, and replaces the estimate of every
(task class, model) pair the results measured: the mean of the measured item scores with its 95%
interval (``stats.estimate``) and the number of measured items. Pairs the results did not measure keep
their current entry. ``compare`` then decides, per pair, whether the new estimate is a change:

* a hand-set prior (``samples: 0``) is replaced once at least ``min_samples`` items were measured;
* a measured estimate changes only when the two intervals disagree both ways - the new quality lies
  outside the old interval *and* the old quality outside the new one. Anything else is noise.

``routing_impact`` says, per task class, which model the router would pick under each set of weights
(the cheapest whose quality meets the floor, for a reference request of ``prompt_tokens`` in and
``completion_tokens`` out) and what that does to the cost of a call.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from maestro.evals.stats import estimate
from maestro.evals.types import ResultRow
from maestro.router.catalog import Catalog
from maestro.router.weights import Estimate, Weights

__all__ = [
    "Change",
    "Impact",
    "compare",
    "fit_weights",
    "item_prompt",
    "prompt_outcomes",
    "routing_impact",
    "with_estimates",
]

MIN_SAMPLES = 10


@dataclass(frozen=True, slots=True)
class Change:
    task: str
    model: str
    old: Estimate
    new: Estimate
    significant: bool
    why: str

    def to_dict(self) -> dict[str, object]:
        return {
            "task": self.task,
            "model": self.model,
            "old": {
                "quality": self.old.quality,
                "samples": self.old.samples,
                "interval": list(self.old.interval),
            },
            "new": {
                "quality": self.new.quality,
                "samples": self.new.samples,
                "interval": list(self.new.interval),
            },
            "significant": self.significant,
            "why": self.why,
        }


@dataclass(frozen=True, slots=True)
class Impact:
    task: str
    old_model: str | None
    new_model: str | None
    old_cost_usd: float | None
    new_cost_usd: float | None

    @property
    def moved(self) -> bool:
        return self.old_model != self.new_model

    @property
    def cost_change(self) -> float | None:
        """Relative change of the cost of a reference call (-0.9: 90% cheaper)."""
        if self.old_cost_usd is None or self.new_cost_usd is None or self.old_cost_usd == 0:
            return None
        return self.new_cost_usd / self.old_cost_usd - 1.0

    def to_dict(self) -> dict[str, object]:
        return {
            "task": self.task,
            "old_model": self.old_model,
            "new_model": self.new_model,
            "old_cost_usd": self.old_cost_usd,
            "new_cost_usd": self.new_cost_usd,
            "cost_change": self.cost_change,
        }


def fit_weights(
    current: Weights, rows: Iterable[ResultRow], *, version: str, known_models: Iterable[str] | None = None
) -> Weights:
    """New weights: ``current`` with every pair the results measured re-estimated."""
    scores: dict[tuple[str, str], list[float | None]] = defaultdict(list)
    for row in rows:
        scores[(row.task_class, row.model)].append(row.score)
    allowed = set(known_models) if known_models is not None else None
    updates: dict[tuple[str, str], Estimate] = {}
    for (task, model), values in sorted(scores.items()):
        if not current.knows(task) or (allowed is not None and model not in allowed):
            continue
        found = estimate(values)
        if not found.measured:
            continue
        assert found.mean is not None and found.low is not None and found.high is not None
        updates[(task, model)] = Estimate(
            quality=found.mean, samples=found.samples, interval=(found.low, found.high)
        )
    return with_estimates(current, updates, version=version)


def with_estimates(current: Weights, updates: Mapping[tuple[str, str], Estimate], *, version: str) -> Weights:
    """``current`` (floors, ceilings, prior, other entries) with the ``(task, model)`` entries replaced."""
    estimates: dict[str, dict[str, Estimate]] = {t: dict(m) for t, m in current.estimates.items()}
    for (task, model), found in updates.items():
        estimates.setdefault(task, {})[model] = found
    return Weights(
        version=version,
        prior=current.prior,
        floors=dict(current.floors),
        cost_ceilings=dict(current.cost_ceilings),
        estimates=estimates,
    )


def compare(old: Weights, new: Weights, *, min_samples: int = MIN_SAMPLES) -> list[Change]:
    """Every pair whose estimate differs, each marked significant or noise (see the module docstring)."""
    changes: list[Change] = []
    for task, models in new.estimates.items():
        for model, after in models.items():
            before = old.estimate(task, model) if old.knows(task) else Estimate(old.prior, 0, (0.0, 1.0))
            if after == before or after.samples == 0:
                continue
            significant, why = _judge(before, after, min_samples)
            changes.append(Change(task, model, before, after, significant, why))
    return changes


def _judge(before: Estimate, after: Estimate, min_samples: int) -> tuple[bool, str]:
    if before.samples == 0:
        if after.samples >= min_samples:
            return True, f"first measurement ({after.samples} items) replaces a hand-set prior"
        return False, f"only {after.samples} items measured (at least {min_samples} replace a prior)"
    low, high = before.interval
    new_low, new_high = after.interval
    outside_old = not low <= after.quality <= high
    outside_new = not new_low <= before.quality <= new_high
    if outside_old and outside_new:
        return True, "the estimates' 95% intervals disagree both ways"
    return False, "within the intervals: noise"


def routing_impact(
    old: Weights,
    new: Weights,
    catalog: Catalog,
    *,
    tasks: Sequence[str] | None = None,
    prompt_tokens: int = 1000,
    completion_tokens: int = 500,
) -> list[Impact]:
    """Per task class: the model each set of weights routes a reference call to, and its cost."""
    impacts = []
    for task in tasks if tasks is not None else list(new.floors):
        if not (old.knows(task) and new.knows(task)):
            continue
        before = _pick(old, task, catalog, prompt_tokens, completion_tokens)
        after = _pick(new, task, catalog, prompt_tokens, completion_tokens)
        impacts.append(
            Impact(
                task,
                before[0] if before else None,
                after[0] if after else None,
                before[1] if before else None,
                after[1] if after else None,
            )
        )
    return impacts


def _pick(
    weights: Weights, task: str, catalog: Catalog, prompt_tokens: int, completion_tokens: int
) -> tuple[str, float] | None:
    """The policy's ranking without the per-request checks: cheapest meeting the floor, else the best."""
    floor = weights.floor(task)
    options = [
        (d.name, d.cost_usd(prompt_tokens, completion_tokens), weights.estimate(task, d.name).quality)
        for d in catalog.all()
    ]
    if not options:
        return None
    ceiling = weights.cost_ceilings.get(task)
    if ceiling is not None:
        within = sorted((o for o in options if o[1] <= ceiling), key=lambda o: (-o[2], o[1], o[0]))
        chosen = within[0] if within else min(options, key=lambda o: (o[1], o[0]))
        return chosen[0], chosen[1]
    good = sorted((o for o in options if o[2] >= floor), key=lambda o: (o[1], -o[2], o[0]))
    if good:
        return good[0][0], good[0][1]
    best = sorted(options, key=lambda o: (-o[2], o[1], o[0]))[0]
    return best[0], best[1]


def measured_pairs(rows: Iterable[ResultRow]) -> Mapping[tuple[str, str], int]:
    """How many measured items each (task class, model) pair has."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        if row.score is not None:
            counts[(row.task_class, row.model)] += 1
    return dict(counts)


def item_prompt(data: Mapping[str, object]) -> str:
    """The text that stands for an eval item's prompt when fitting a per-prompt router: the question
    (RAG, Cypher), the problem's prompt (HumanEval), else the target and what is expected (repository
    sets)."""
    for key in ("question", "prompt"):
        value = data.get(key)
        if isinstance(value, str) and value.strip():
            return value
    target = data.get("target") or data.get("targets") or ""
    return f"{target}: {data.get('expect', '')}".strip(": ")


def prompt_outcomes(
    rows: Iterable[ResultRow], prompts: Mapping[tuple[str, str], str], *, threshold: float = 0.5
) -> list[dict[str, object]]:
    """Per-prompt outcomes (``maestro router fit-prompts`` input) from measured results: success when the
    item's score reaches ``threshold``; unmeasured items are left out.

    ``prompts`` maps (dataset, item id) to the item's prompt text."""
    lines: list[dict[str, object]] = []
    for row in rows:
        text = prompts.get((row.dataset, row.item_id))
        if row.score is None or not text:
            continue
        lines.append(
            {
                "prompt": text,
                "task": row.task_class,
                "model": row.model,
                "success": row.score >= threshold,
                "group": row.dataset,
            }
        )
    return lines
