"""Per-prompt quality: each model's probability of success on *this* prompt, from a fitted JSON file.

``weights.yaml`` says how good a model is on a task class on average; a prompt router says how likely it
is to get one particular prompt right. For each task class and model the file holds a small predictor over
the prompt's embedding and a few cheap features of its text (:data:`FEATURES`):

* ``logistic``: ``P = sigmoid(coef · x + intercept)`` with ``x`` = embedding ++ features;
* ``knn``: the share of successes among the ``k`` stored training prompts nearest (cosine) to the prompt;
* ``constant``: one probability (a model that never, or always, failed in training).

Per task class the file may also hold a decision **rule** (``rules``). Without one, ``decide`` routes a
scored prompt by the task class's floor from ``weights.yaml``: the cheapest eligible model whose P meets
it. With a :class:`MarginRule` the floor is set per prompt instead: the best P(success) among the
eligible models the file scores, minus ``margin``, so a pricier model is chosen only when it is predicted
to succeed by more than ``margin`` over every cheaper one (the expected gain is worth its price).
``maestro.evals.prompt_fit`` chooses between the two on training outcomes only and fits the margin.

The file is JSON (never pickle) written by ``maestro.evals.prompt_fit`` and checked on load: format and
version, the embedder it was fitted with and its dimension, the feature list, task classes, model names
and every vector's length. The router package cannot import retrieval, so the embedder arrives through
the :class:`PromptEmbedder` protocol (the composition root passes the retrieval embedder); loading fails
when it is not the embedder the file was fitted with. A running router watches the file
(:class:`PromptRouterFile`): a refitted file is checked the same way and used; one that fails a check
is logged and ignored.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from maestro.core.configfile import describe_validation_error
from maestro.core.errors import ConfigurationError
from maestro.router.types import Message

__all__ = [
    "DEFAULT_EMBED_CHARS",
    "FEATURES",
    "FORMAT",
    "FORMAT_VERSION",
    "ConstantPredictor",
    "LogisticPredictor",
    "MarginRule",
    "NeighboursPredictor",
    "Predictor",
    "PromptEmbedder",
    "PromptRouter",
    "PromptRouterFile",
    "design_matrix",
    "load_prompt_router",
    "parse_prompt_router",
    "prompt_features",
    "prompt_text",
]

logger = logging.getLogger(__name__)

FORMAT = "maestro.prompt-router"
FORMAT_VERSION = 1
FEATURES = ("log_chars", "log_words", "log_lines", "log_numbers", "digit_share", "symbol_share")
"""Cheap features of the prompt's text, appended to its embedding (same order in fitting and serving)."""
DEFAULT_EMBED_CHARS = 1_000
"""How much of a prompt is embedded by default (MiniLM reads at most 256 tokens, about 1,000 characters)."""

Matrix = npt.NDArray[np.float64]
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SYMBOLS = frozenset("+-*/=^<>()[]{}|%$\\")


class PromptEmbedder(Protocol):
    """What the router needs from an embedder (``maestro.retrieval.embeddings.Embedder`` satisfies it)."""

    @property
    def name(self) -> str:
        """The embedding model's name; must match the one the prompt router was fitted with."""
        ...

    @property
    def dim(self) -> int:
        """Vector size."""
        ...

    def embed_query(self, text: str) -> Sequence[float]:
        """The vector of one text (not cached: prompts are not stored anywhere, not even as vectors)."""
        ...


def prompt_text(messages: Sequence[Message]) -> str:
    """The text a prompt router scores: the last user message's text (the question being asked)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):  # OpenAI content parts: keep the text ones
                return "\n".join(
                    str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"
                )
    return ""


def prompt_features(text: str) -> list[float]:
    """The :data:`FEATURES` of ``text``: sizes on a log scale and the share of digits and math symbols."""
    chars = len(text)
    return [
        math.log1p(chars),
        math.log1p(len(text.split())),
        math.log1p(text.count("\n")),
        math.log1p(len(_NUMBER.findall(text))),
        sum(c.isdigit() for c in text) / chars if chars else 0.0,
        sum(c in _SYMBOLS for c in text) / chars if chars else 0.0,
    ]


def design_matrix(vectors: npt.ArrayLike, texts: Sequence[str]) -> Matrix:
    """The predictors' input: one row per prompt, its embedding followed by its :data:`FEATURES`."""
    embedded = np.asarray(vectors, dtype=np.float64)
    if embedded.ndim != 2 or embedded.shape[0] != len(texts):
        raise ValueError(f"need one vector per text: got shape {embedded.shape} for {len(texts)} texts")
    features = np.array([prompt_features(t) for t in texts], dtype=np.float64).reshape(len(texts), -1)
    return np.hstack([embedded, features])


# -- predictors -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogisticPredictor:
    """``sigmoid(coef · x + intercept)`` over the whole design row (scaling is folded into ``coef``)."""

    coef: Matrix
    intercept: float
    kind: Literal["logistic"] = "logistic"

    def predict(self, rows: Matrix) -> Matrix:
        z = np.clip(rows @ self.coef + self.intercept, -60.0, 60.0)
        result: Matrix = 1.0 / (1.0 + np.exp(-z))
        return result

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "coef": [float(c) for c in self.coef], "intercept": self.intercept}


@dataclass(frozen=True)
class NeighboursPredictor:
    """The success share among the ``k`` training prompts whose embeddings are nearest (cosine)."""

    k: int
    points: Matrix  # unit-length training embeddings, one per row
    labels: Matrix  # 1.0 success, 0.0 failure
    kind: Literal["knn"] = "knn"

    def predict(self, rows: Matrix) -> Matrix:
        dim = self.points.shape[1]
        queries = rows[:, :dim]
        norms = np.linalg.norm(queries, axis=1, keepdims=True)
        sims = (queries / np.where(norms == 0, 1.0, norms)) @ self.points.T
        k = min(self.k, len(self.labels))
        nearest = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        result: Matrix = self.labels[nearest].mean(axis=1)
        return result

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "k": self.k,
            "points_f32_b64": base64.b64encode(self.points.astype("<f4").tobytes()).decode("ascii"),
            "labels": [int(v) for v in self.labels],
        }


@dataclass(frozen=True)
class ConstantPredictor:
    """One probability for every prompt."""

    p: float
    kind: Literal["constant"] = "constant"

    def predict(self, rows: Matrix) -> Matrix:
        return np.full(rows.shape[0], self.p, dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "p": self.p}


Predictor = LogisticPredictor | NeighboursPredictor | ConstantPredictor


@dataclass(frozen=True)
class MarginRule:
    """Per prompt, the cheapest eligible model whose P(success) is within ``margin`` of the best eligible
    model's: the floor of a prompt is ``best - margin``. With two models, the pricier one serves a prompt
    when it is predicted to succeed by more than ``margin`` over the cheaper one."""

    margin: float
    kind: Literal["margin"] = "margin"

    def floor(self, best: float) -> float:
        """The prompt's floor, given the best predicted P(success) among the eligible models."""
        return max(0.0, best - self.margin)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "margin": self.margin}


@dataclass(frozen=True)
class PromptRouter:
    """Per task class and model, a predictor of P(success) for a prompt."""

    version: str
    embedder: str
    dim: int
    task_classes: Mapping[str, Mapping[str, Predictor]]
    embed_chars: int = DEFAULT_EMBED_CHARS  # only the prompt's first characters are embedded
    fit: Mapping[str, Any] | None = None  # how it was fitted (informational)
    rules: Mapping[str, MarginRule] = field(default_factory=dict)  # task -> rule; absent: the weights' floor

    def embed_text(self, text: str) -> str:
        """The part of a prompt that is embedded (the features always see all of it)."""
        return text[: self.embed_chars]

    def covers(self, task: str) -> bool:
        return bool(self.task_classes.get(task))

    def models(self, task: str) -> tuple[str, ...]:
        return tuple(self.task_classes.get(task, {}))

    def rule(self, task: str) -> MarginRule | None:
        """The task class's decision rule, or None: the floor in ``weights.yaml`` applies."""
        return self.rules.get(task)

    def predict(self, task: str, vector: Sequence[float], text: str) -> dict[str, float]:
        """P(success) of every model the file knows for ``task`` on one prompt (empty if none)."""
        if not self.covers(task):
            return {}
        predicted = self.predict_many(task, design_matrix([list(vector)], [text]))
        return {model: float(values[0]) for model, values in predicted.items()}

    def predict_many(self, task: str, rows: Matrix) -> dict[str, Matrix]:
        """P(success) per model for each row of a :func:`design_matrix`."""
        if rows.ndim != 2 or rows.shape[1] != self.dim + len(FEATURES):
            raise ValueError(
                f"prompt router '{self.version}' expects rows of {self.dim} + {len(FEATURES)} values, "
                f"got shape {rows.shape}"
            )
        return {model: p.predict(rows) for model, p in self.task_classes.get(task, {}).items()}

    def check_embedder(self, embedder: PromptEmbedder, *, source: str = "prompt router") -> None:
        """Refuse an embedder other than the one the file was fitted with."""
        if embedder.name != self.embedder or embedder.dim != self.dim:
            raise ConfigurationError(
                f"{source}: fitted with embedder '{self.embedder}' ({self.dim} dims) but the configured "
                f"embedder is '{embedder.name}' ({embedder.dim} dims): refit it with this embedder "
                "(maestro router fit-prompts) or set MAESTRO_EMBEDDER to the one it was fitted with"
            )

    def to_dict(self) -> dict[str, Any]:
        """The JSON document :func:`parse_prompt_router` reads back."""
        document: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "version": self.version,
            "embedder": self.embedder,
            "dim": self.dim,
            "embed_chars": self.embed_chars,
            "features": list(FEATURES),
            "task_classes": {
                task: {model: p.to_dict() for model, p in models.items()}
                for task, models in self.task_classes.items()
            },
        }
        if self.rules:
            document["rules"] = {task: rule.to_dict() for task, rule in self.rules.items()}
        if self.fit is not None:
            document["fit"] = dict(self.fit)
        return document

    def write(self, path: Path) -> None:
        """Write the JSON file (atomically: a reader never sees half a file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(self.to_dict(), separators=(",", ":")), encoding="utf-8")
        partial.replace(path)


# -- loading ------------------------------------------------------------------------------------------


class _Logistic(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["logistic"]
    coef: list[float] = Field(min_length=1)
    intercept: float


class _Neighbours(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["knn"]
    k: int = Field(ge=1)
    points_f32_b64: str
    labels: list[Literal[0, 1]] = Field(min_length=1)


class _Constant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["constant"]
    p: float = Field(ge=0, le=1)


class _Margin(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Literal["margin"]
    margin: float = Field(ge=0, le=1)


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    format: Literal["maestro.prompt-router"]
    format_version: int
    version: str = Field(min_length=1, max_length=64)
    embedder: str = Field(min_length=1)
    dim: int = Field(ge=1)
    embed_chars: int = Field(ge=1)
    features: list[str]
    task_classes: dict[str, dict[str, _Logistic | _Neighbours | _Constant]]
    rules: dict[str, _Margin] = Field(default_factory=dict)
    fit: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _known_version(self) -> _Spec:
        if self.format_version != FORMAT_VERSION:
            raise ValueError(
                f"format_version {self.format_version} is not supported (this Maestro reads "
                f"{FORMAT_VERSION}): refit with `maestro router fit-prompts`"
            )
        return self


def load_prompt_router(
    path: Path, *, known_models: Collection[str] | None = None, known_tasks: Collection[str] | None = None
) -> PromptRouter:
    """Read and check a prompt router file; every problem is a ConfigurationError naming file and key."""
    if not path.is_file():
        raise ConfigurationError(
            f"{path}: prompt router file not found: fit one with `maestro router fit-prompts` or unset "
            "MAESTRO_PROMPT_ROUTER_PATH"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{path}: line {exc.lineno}: not valid JSON: {exc.msg}") from None
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:  # removed or unreadable between the check above and the read
        raise ConfigurationError(f"{path}: cannot read the prompt router file: {exc.strerror}") from None
    return parse_prompt_router(data, source=str(path), known_models=known_models, known_tasks=known_tasks)


def parse_prompt_router(
    data: Any,
    *,
    source: str = "prompt router",
    known_models: Collection[str] | None = None,
    known_tasks: Collection[str] | None = None,
) -> PromptRouter:
    """Check a parsed document; with ``known_models``/``known_tasks``, other names are refused."""
    try:
        spec = _Spec.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(describe_validation_error(exc, source, data)) from None
    if tuple(spec.features) != FEATURES:
        raise ConfigurationError(
            f"{source}: features {spec.features} differ from the ones this Maestro computes "
            f"{list(FEATURES)}: refit with `maestro router fit-prompts`"
        )
    tasks: dict[str, dict[str, Predictor]] = {}
    for task, models in spec.task_classes.items():
        if known_tasks is not None and task not in known_tasks:
            raise ConfigurationError(
                f"{source}: task_classes.{task}: unknown task class; known: {', '.join(known_tasks)}"
            )
        tasks[task] = {}
        for model, entry in models.items():
            where = f"{source}: task_classes.{task}.{model}"
            if known_models is not None and model not in known_models:
                raise ConfigurationError(f"{where}: not a deployment in the catalog (names must match)")
            tasks[task][model] = _predictor(entry, spec.dim, where)
    for task in spec.rules:
        if not tasks.get(task):
            raise ConfigurationError(
                f"{source}: rules.{task}: a rule for a task class without predictors; a rule needs the "
                "models' predictions (refit with `maestro router fit-prompts`)"
            )
    return PromptRouter(
        version=spec.version,
        embedder=spec.embedder,
        dim=spec.dim,
        task_classes=tasks,
        embed_chars=spec.embed_chars,
        fit=spec.fit,
        rules={task: MarginRule(rule.margin) for task, rule in spec.rules.items()},
    )


def _predictor(entry: _Logistic | _Neighbours | _Constant, dim: int, where: str) -> Predictor:
    if isinstance(entry, _Constant):
        return ConstantPredictor(entry.p)
    if isinstance(entry, _Logistic):
        expected = dim + len(FEATURES)
        if len(entry.coef) != expected:
            raise ConfigurationError(
                f"{where}.coef: {len(entry.coef)} values, expected {expected} "
                f"({dim} embedding dims + {len(FEATURES)} features)"
            )
        coef = np.asarray(entry.coef, dtype=np.float64)
        if not (np.isfinite(coef).all() and math.isfinite(entry.intercept)):
            raise ConfigurationError(f"{where}: coef and intercept must be finite numbers")
        return LogisticPredictor(coef, entry.intercept)
    try:
        raw = base64.b64decode(entry.points_f32_b64, validate=True)
    except ValueError:
        raise ConfigurationError(f"{where}.points_f32_b64: not valid base64") from None
    if len(raw) != 4 * dim * len(entry.labels):
        raise ConfigurationError(
            f"{where}.points_f32_b64: {len(raw)} bytes, expected {len(entry.labels)} points of {dim} "
            f"float32 ({4 * dim * len(entry.labels)} bytes)"
        )
    points = np.frombuffer(raw, dtype="<f4").astype(np.float64).reshape(len(entry.labels), dim)
    return NeighboursPredictor(entry.k, points, np.asarray(entry.labels, dtype=np.float64))


# -- watching the file --------------------------------------------------------------------------------


class PromptRouterFile:
    """The prompt router of a file that may change while the process runs (a refitted file deployed).

    Works like ``router.weights.WeightsFile``: ``current()`` returns the loaded router and, at most every
    ``check_s`` seconds, looks at the file's modification time, size and inode; when they changed it loads
    the file again with every check made at start (format, features, vector lengths, catalog models, task
    classes and, with ``embedder``, the embedder it was fitted with). A file that no longer loads
    (half-written, invalid, fitted with another embedder, naming unknown models, removed) is logged as a
    warning, once per change, and ignored: routing keeps the last good router until a good file replaces it.
    """

    def __init__(
        self,
        path: Path,
        router: PromptRouter,
        *,
        embedder: PromptEmbedder | None = None,
        known_models: Collection[str] | None = None,
        known_tasks: Collection[str] | None = None,
        check_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._router = router
        self._embedder = embedder
        self._known_models = known_models
        self._known_tasks = known_tasks
        self._check_s = check_s
        self._clock = clock
        self._checked = clock()
        self._stamp = self._stat()
        self._lock = threading.Lock()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            found = self.path.stat()
        except OSError:
            return None
        return found.st_mtime_ns, found.st_size, found.st_ino  # an atomic replace changes the inode

    def load(self) -> PromptRouter:
        """Read and check the file as it is now (ConfigurationError if it does not pass)."""
        router = load_prompt_router(self.path, known_models=self._known_models, known_tasks=self._known_tasks)
        if self._embedder is not None:
            router.check_embedder(self._embedder, source=str(self.path))
        return router

    def current(self) -> PromptRouter:
        """The router in force, reloaded first if the file changed and the check interval has passed."""
        now = self._clock()
        if now - self._checked < self._check_s:
            return self._router
        with self._lock:
            self._checked = now
            stamp = self._stat()
            if stamp == self._stamp:
                return self._router
            self._stamp = stamp
            if stamp is None:
                logger.warning(
                    "prompt router file %s is gone; keeping prompt router %s until a good file is back",
                    self.path,
                    self._router.version,
                )
                return self._router
            try:
                loaded = self.load()
            except ConfigurationError as exc:
                logger.warning(
                    "prompt router file changed but does not load; keeping prompt router %s: %s",
                    self._router.version,
                    exc,
                )
                return self._router
            logger.info(
                "prompt router reloaded from %s: %s -> %s", self.path, self._router.version, loaded.version
            )
            self._router = loaded
            return loaded
