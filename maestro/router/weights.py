"""Routing weights (``router/weights.yaml``): expected quality per task class and model.

Written by hand at first and later by the eval harness (``maestro router fit``). Each entry carries the
estimate, the number of samples behind it and an interval, so a change can be told apart from noise.
A model without an entry gets the file's ``prior`` with zero samples.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from maestro.core.configfile import describe_validation_error, load_yaml_text
from maestro.core.errors import ConfigurationError

logger = logging.getLogger(__name__)

TASK_CLASSES = (
    "chat",
    "rag.answer",
    "cypher.generate",
    "cypher.answer",
    "codegen.edit",
    "testgen.write",
    "docs.write",
    "remediate.fix",
)


class _Estimate(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    quality: float = Field(ge=0, le=1)
    samples: int = Field(default=0, ge=0)
    interval: tuple[float, float] = (0.0, 1.0)

    @model_validator(mode="after")
    def _interval_holds_quality(self) -> _Estimate:
        low, high = self.interval
        if not 0 <= low <= self.quality <= high <= 1:
            raise ValueError(f"interval {list(self.interval)} must satisfy 0 <= low <= quality <= high <= 1")
        return self


class _TaskClass(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    floor: float = Field(ge=0, le=1)
    cost_ceiling_usd: float | None = Field(default=None, ge=0)
    models: dict[str, _Estimate] = Field(default_factory=dict)


class _WeightsSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=64)
    prior: float = Field(default=0.5, ge=0, le=1)
    task_classes: dict[str, _TaskClass]


@dataclass(frozen=True, slots=True)
class Estimate:
    quality: float
    samples: int
    interval: tuple[float, float]


@dataclass(frozen=True)
class Weights:
    """Loaded weights. ``quality(task, model)`` never fails: unknown pairs get the prior."""

    version: str
    prior: float
    floors: Mapping[str, float]
    cost_ceilings: Mapping[str, float | None]
    estimates: Mapping[str, Mapping[str, Estimate]]

    def estimate(self, task: str, model: str) -> Estimate:
        found = self.estimates.get(task, {}).get(model)
        return found if found is not None else Estimate(self.prior, 0, (0.0, 1.0))

    def floor(self, task: str) -> float:
        return self.floors[task]

    def knows(self, task: str) -> bool:
        return task in self.floors

    def with_floor(self, task: str, floor: float) -> Weights:
        """These weights with another floor for ``task`` (a prompt router's per-prompt floor)."""
        return replace(self, floors={**self.floors, task: floor})


def load_weights(path: Path, *, known_models: set[str] | None = None) -> Weights:
    """Read and validate a weights file; every problem is a ConfigurationError naming file and key."""
    if not path.exists():
        raise ConfigurationError(f"{path}: weights file not found (set MAESTRO_WEIGHTS_PATH)")
    return parse_weights(path.read_text(encoding="utf-8"), source=str(path), known_models=known_models)


def parse_weights(
    text: str, *, source: str = "weights.yaml", known_models: set[str] | None = None
) -> Weights:
    """Validate weights YAML text. With ``known_models``, entries for models not in the catalog fail."""
    data = load_yaml_text(text, source)
    try:
        spec = _WeightsSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(describe_validation_error(exc, source, data)) from None
    for task, cls in spec.task_classes.items():
        if task not in TASK_CLASSES:
            raise ConfigurationError(
                f"{source}: task_classes.{task}: unknown task class; known: {', '.join(TASK_CLASSES)}"
            )
        for model in cls.models:
            if known_models is not None and model not in known_models:
                raise ConfigurationError(
                    f"{source}: task_classes.{task}.models.{model}: not a deployment in the catalog"
                )
    return Weights(
        version=spec.version,
        prior=spec.prior,
        floors={t: c.floor for t, c in spec.task_classes.items()},
        cost_ceilings={t: c.cost_ceiling_usd for t, c in spec.task_classes.items()},
        estimates={
            t: {m: Estimate(e.quality, e.samples, e.interval) for m, e in c.models.items()}
            for t, c in spec.task_classes.items()
        },
    )


WEIGHTS_HEADER = """\
# Routing weights: expected quality (0-1) per task class and deployment, with the samples and the
# interval behind each estimate. The router picks the cheapest eligible deployment whose quality meets
# the task class's floor (or the best within cost_ceiling_usd when set). Models without an entry get
# `prior`. Rewritten by `maestro router fit` / `maestro eval propose-weights` from eval results
# (samples > 0); entries with samples: 0 are hand-set priors.
"""


def dump_weights(weights: Weights, *, header: str = WEIGHTS_HEADER) -> str:
    """The weights as YAML in this file's own layout (one line per model), parseable by ``parse_weights``.

    Numbers are written with three decimals, rounded so that ``low <= quality <= high`` still holds."""
    lines = [header.rstrip("\n"), f'version: "{weights.version}"', f"prior: {weights.prior:.2f}", ""]
    lines.append("task_classes:")
    for task, floor in weights.floors.items():
        lines.append(f"  {task}:")
        lines.append(f"    floor: {floor:.2f}")
        ceiling = weights.cost_ceilings.get(task)
        if ceiling is not None:
            lines.append(f"    cost_ceiling_usd: {ceiling}")
        models = weights.estimates.get(task, {})
        if not models:
            lines.append("    models: {}")
            continue
        lines.append("    models:")
        for model, est in models.items():
            quality = round(est.quality, 3)
            low = min(round(est.interval[0], 3), quality)
            high = max(round(est.interval[1], 3), quality)
            lines.append(
                f"      {model}: {{quality: {quality:.3f}, samples: {est.samples}, "
                f"interval: [{low:.3f}, {high:.3f}]}}"
            )
    return "\n".join(lines) + "\n"


class WeightsFile:
    """The weights of a file that may change while the process runs (a merged weights PR deployed).

    ``current()`` returns the loaded weights and, at most every ``check_s`` seconds, looks at the file's
    modification time and size; when they changed it loads and validates the file again. A file that no
    longer loads (half-written, invalid, naming unknown models) is logged and ignored: routing keeps the
    last good weights until a good file replaces it.
    """

    def __init__(
        self,
        path: Path,
        weights: Weights,
        *,
        known_models: set[str] | None = None,
        check_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._weights = weights
        self._known = known_models
        self._check_s = check_s
        self._clock = clock
        self._checked = clock()
        self._stamp = self._stat()
        self._lock = threading.Lock()

    def _stat(self) -> tuple[int, int] | None:
        try:
            found = self.path.stat()
        except OSError:
            return None
        return found.st_mtime_ns, found.st_size

    def current(self) -> Weights:
        now = self._clock()
        if now - self._checked < self._check_s:
            return self._weights
        with self._lock:
            self._checked = now
            stamp = self._stat()
            if stamp is None or stamp == self._stamp:
                return self._weights
            self._stamp = stamp
            try:
                loaded = load_weights(self.path, known_models=self._known)
            except ConfigurationError as exc:
                logger.error(
                    "weights file changed but does not load; keeping %s: %s", self._weights.version, exc
                )
                return self._weights
            if loaded.version != self._weights.version:
                logger.info("routing weights reloaded: %s -> %s", self._weights.version, loaded.version)
            self._weights = loaded
            return loaded
