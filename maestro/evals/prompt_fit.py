"""Fit a per-prompt router (``router/prompt_router.py``) from per-item outcomes.

Input: one :class:`ItemOutcome` per (prompt, model): the prompt's text, its task class, the model and
whether the model got it right, optionally a ``group`` (e.g. the MMLU subject) that cross-validation keeps
within one fold. Per task class, every candidate in :data:`CANDIDATES` is cross-validated **on these
outcomes only** (k folds, grouped when every outcome has a group, else stratified) for every model, and
scored by the mean ROC AUC of its out-of-fold P(success) over the task's models: how well it ranks the
prompts a model gets right above the ones it gets wrong, which is what routing needs. The best candidate
is refitted on all outcomes for each model; a logistic one is then Platt-calibrated on its out-of-fold
predictions (folded into its coefficients), so its probabilities can be compared with a task's floor.

Candidates:

* ``logistic-C<c>``: L2 logistic regression on the standardised embedding ++ :data:`FEATURES` (the
  standardisation is folded into the stored coefficients too);
* ``features-C1``: the same on the cheap text features alone (no embedding signal);
* ``knn-<k>``: the success share among the ``k`` nearest training prompts (cosine).

A model whose outcomes for a task are all successes (or all failures) gets a ``constant`` predictor.

**The decision rule** (:func:`choose_rule`), per task class, also on these outcomes only: given each
model's price, the prompts every model has an outcome for are routed with the out-of-fold predictions,
once by the floor rule (the cheapest model whose P meets a floor, the floor swept) and once by the margin
rule (:class:`~maestro.router.prompt_router.MarginRule`: the cheapest model within a margin of the best
P, the margin swept). Each rule's cheapest setting whose success rate reaches ``quality_share`` (95 %) of
the best single model's is found; the margin rule is kept, with that margin, when it is cheaper than the
floor rule there. Otherwise the task has no rule and the floor in ``weights.yaml`` applies.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from maestro.core.errors import ConfigurationError
from maestro.router.prompt_router import (
    DEFAULT_EMBED_CHARS,
    ConstantPredictor,
    LogisticPredictor,
    MarginRule,
    Matrix,
    NeighboursPredictor,
    Predictor,
    PromptRouter,
    design_matrix,
)
from maestro.router.weights import TASK_CLASSES

__all__ = [
    "CANDIDATES",
    "FitCandidate",
    "ItemOutcome",
    "ModelFit",
    "PromptFit",
    "TYPICAL_CALL_TOKENS",
    "RuleChoice",
    "TaskData",
    "choose_rule",
    "fit_prompt_router",
    "fit_task",
    "read_outcomes",
]

EmbedMany = Callable[[Sequence[str]], Sequence[Sequence[float]]]
Labels = npt.NDArray[np.float64]
_EPS = 1e-6
QUALITY_SHARE = 0.95
"""The share of the best single model's success rate a fitted rule must keep (on training outcomes)."""
TYPICAL_CALL_TOKENS = (1_000, 500)
"""Prompt and completion tokens of the typical call a deployment is priced at to choose a rule."""
MIN_RULE_PROMPTS = 30
"""Fewer prompts with every model's outcome than this: no rule is fitted (the floor applies)."""
_MAX_SWEEP = 2_000


@dataclass(frozen=True)
class ItemOutcome:
    """One model's result on one prompt."""

    prompt: str
    task: str
    model: str
    success: bool
    group: str | None = None


@dataclass(frozen=True)
class FitCandidate:
    """A predictor family and its hyper-parameters: ``param`` is C (logistic) or k (knn);
    ``feature_weight`` multiplies the standardised text features, so L2 shrinks them less than the
    embedding's dimensions (a weight w acts like C * w**2 on the features alone)."""

    kind: str  # "logistic" | "features" | "knn"
    param: float
    feature_weight: float = 1.0

    @property
    def name(self) -> str:
        if self.kind == "knn":
            return f"knn-{int(self.param)}"
        weight = f"-fw{self.feature_weight:g}" if self.feature_weight != 1.0 else ""
        return f"{self.kind}-C{self.param:g}{weight}"


CANDIDATES: tuple[FitCandidate, ...] = (
    FitCandidate("logistic", 0.001),
    FitCandidate("logistic", 0.003),
    FitCandidate("logistic", 0.01),
    FitCandidate("logistic", 0.001, feature_weight=3.0),
    FitCandidate("logistic", 0.003, feature_weight=3.0),
    FitCandidate("features", 1.0),
    FitCandidate("knn", 100),
)


@dataclass(frozen=True)
class TaskData:
    """One model's outcomes on a task: design-matrix rows, 0/1 labels, optional CV groups."""

    rows: Matrix
    labels: Labels
    groups: Sequence[str] | None = None


@dataclass
class ModelFit:
    """The fitted predictor of one (task, model) and its calibrated out-of-fold predictions (one per
    training row, each from a model that never saw that row)."""

    predictor: Predictor
    out_of_fold: Matrix
    samples: int
    success_rate: float


@dataclass
class PromptFit:
    """The fitted router, and per task the chosen candidate, every candidate's CV AUC and each model's fit."""

    router: PromptRouter
    chosen: dict[str, str] = field(default_factory=dict)
    cv_auc: dict[str, dict[str, float]] = field(default_factory=dict)
    models: dict[str, dict[str, ModelFit]] = field(default_factory=dict)
    rules: dict[str, RuleChoice] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """Per task: the chosen candidate, every candidate's mean CV AUC, samples and success rates."""
        return {
            task: {
                "chosen": self.chosen[task],
                "cv_auc": {k: round(v, 4) for k, v in self.cv_auc[task].items()},
                "models": {
                    m: {"samples": f.samples, "success_rate": round(f.success_rate, 4)}
                    for m, f in self.models[task].items()
                },
                **({"rule": self.rules[task].summary()} if task in self.rules else {}),
            }
            for task in self.chosen
        }


def read_outcomes(path: Path) -> list[ItemOutcome]:
    """Outcomes from a JSON-lines file: ``{"prompt", "task", "model", "success"[, "group"]}`` per line."""
    if not path.is_file():
        raise ConfigurationError(f"{path}: outcomes file not found")
    rows: list[ItemOutcome] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            success = item["success"]
            if not isinstance(success, bool | int) or success not in (0, 1):
                raise ValueError(f"success must be true/false or 0/1, got {success!r}")
            group = item.get("group")
            rows.append(
                ItemOutcome(
                    prompt=str(item["prompt"]),
                    task=str(item["task"]),
                    model=str(item["model"]),
                    success=bool(success),
                    group=None if group is None else str(group),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"{path}: line {number}: not an outcome ({exc}); each line must be a JSON object with "
                '"prompt", "task", "model" and "success"'
            ) from None
    return rows


def fit_prompt_router(
    outcomes: Sequence[ItemOutcome],
    *,
    embed: EmbedMany,
    embedder: str,
    dim: int,
    version: str,
    embed_chars: int = DEFAULT_EMBED_CHARS,
    folds: int = 5,
    seed: int = 0,
    candidates: Sequence[FitCandidate] = CANDIDATES,
    costs: Mapping[str, float] | None = None,
    quality_share: float = QUALITY_SHARE,
) -> PromptFit:
    """Embed every distinct prompt once (its first ``embed_chars`` characters), then fit each task.

    With ``costs`` (each model's price of a typical call), each task's decision rule is chosen too
    (:func:`choose_rule`); without, no rule is fitted and the weights' floor applies."""
    if not outcomes:
        raise ConfigurationError("no outcomes to fit a prompt router from")
    unknown = sorted({o.task for o in outcomes} - set(TASK_CLASSES))
    if unknown:
        raise ConfigurationError(f"unknown task class(es) {unknown}; known: {', '.join(TASK_CLASSES)}")
    texts = list(dict.fromkeys(o.prompt for o in outcomes))
    vectors = np.asarray(embed([t[:embed_chars] for t in texts]), dtype=np.float64)
    if vectors.shape != (len(texts), dim):
        raise ConfigurationError(
            f"the embedder returned vectors of shape {vectors.shape}, expected ({len(texts)}, {dim})"
        )
    index = {t: i for i, t in enumerate(texts)}
    rows = design_matrix(vectors, texts)
    by_task: dict[str, dict[str, list[ItemOutcome]]] = {}
    for o in outcomes:
        by_task.setdefault(o.task, {}).setdefault(o.model, []).append(o)
    fitted = PromptFit(PromptRouter(version=version, embedder=embedder, dim=dim, task_classes={}))
    for task, models in sorted(by_task.items()):
        data = {
            model: TaskData(
                rows=rows[[index[o.prompt] for o in items]],
                labels=np.array([o.success for o in items], dtype=np.float64),
                groups=None if any(o.group is None for o in items) else [str(o.group) for o in items],
            )
            for model, items in sorted(models.items())
        }
        chosen, scores, fits = fit_task(data, dim=dim, folds=folds, seed=seed, candidates=candidates)
        fitted.chosen[task], fitted.cv_auc[task], fitted.models[task] = chosen, scores, fits
        if costs is not None and len(models) >= 2:
            shared = _shared_outcomes(models, fits)
            if shared is not None:
                oof, labels = shared
                fitted.rules[task] = choose_rule(oof, labels, costs, quality_share=quality_share)
    fitted.router = PromptRouter(
        version=version,
        embedder=embedder,
        dim=dim,
        embed_chars=embed_chars,
        task_classes={t: {m: f.predictor for m, f in fits.items()} for t, fits in fitted.models.items()},
        rules={t: c.rule for t, c in fitted.rules.items() if c.rule is not None},
        fit={
            "selection": "mean CV ROC AUC per task",
            "rule_selection": f"cheapest at {quality_share:g} of the best model's success, out of fold",
            "folds": folds,
            "seed": seed,
            **fitted.summary(),
        },
    )
    return fitted


def _shared_outcomes(
    models: Mapping[str, Sequence[ItemOutcome]], fits: Mapping[str, ModelFit]
) -> tuple[dict[str, Matrix], dict[str, Labels]] | None:
    """Out-of-fold P and outcomes on the prompts every model has an outcome for (the first one of each)."""
    position = {
        model: {o.prompt: i for i, o in reversed(list(enumerate(items)))} for model, items in models.items()
    }
    first = next(iter(position.values()))
    prompts = [p for p in first if all(p in found for found in position.values())]
    if len(prompts) < MIN_RULE_PROMPTS:
        return None
    oof = {m: fits[m].out_of_fold[[position[m][p] for p in prompts]] for m in models}
    labels = {m: np.array([float(models[m][position[m][p]].success) for p in prompts]) for m in models}
    return oof, labels


@dataclass(frozen=True)
class RuleChoice:
    """The rule :func:`choose_rule` chose (None: the floor rule) and what each rule cost at the target:
    the mean price per prompt of its cheapest setting that reaches it (None: no setting does)."""

    rule: MarginRule | None
    target: float
    floor_cost: float | None
    margin_cost: float | None
    best_cost: float
    prompts: int

    def summary(self) -> dict[str, Any]:
        def share(cost: float | None) -> float | None:
            return None if cost is None else round(cost / self.best_cost, 4) if self.best_cost else None

        return {
            "kind": self.rule.kind if self.rule is not None else "floor",
            **({"margin": round(self.rule.margin, 4)} if self.rule is not None else {}),
            "target_success": round(self.target, 4),
            "prompts": self.prompts,
            "cost_vs_best_model": {"floor": share(self.floor_cost), "margin": share(self.margin_cost)},
        }


def choose_rule(
    predicted: Mapping[str, Matrix],
    labels: Mapping[str, Labels],
    costs: Mapping[str, float],
    *,
    quality_share: float = QUALITY_SHARE,
) -> RuleChoice:
    """Choose a task's decision rule on training outcomes: ``predicted`` are each model's out-of-fold
    P(success) and ``labels`` its outcomes (0/1) on the same prompts, ``costs`` its price per call.

    The target is ``quality_share`` times the best single model's success rate. Both rules are swept
    over every setting where a choice changes; the margin rule (with the largest margin that reaches the
    target at its lowest cost, moved halfway to the next setting) is kept if it is strictly cheaper there
    than the floor rule."""
    missing = sorted(m for m in predicted if m not in costs or m not in labels)
    if missing:
        raise ConfigurationError(f"no price or no outcomes for {missing}: every model needs both")
    models = sorted(predicted, key=lambda m: (costs[m], m))  # cheapest first, as decide ranks
    p = np.column_stack([np.asarray(predicted[m], dtype=np.float64) for m in models])
    y = np.column_stack([np.asarray(labels[m], dtype=np.float64) for m in models])
    price = np.array([costs[m] for m in models], dtype=np.float64)
    best_model = int(np.argmax(y.mean(axis=0)))
    target = quality_share * float(y[:, best_model].mean())
    top = p.max(axis=1, keepdims=True)

    floors = _sweep(np.unique(p))
    floor_cost, _ = _cheapest(p, y, price, target, [np.full(len(p), f) for f in floors])
    gaps = _sweep(np.unique(np.concatenate([[0.0], (top - p).ravel()])))
    margin_cost, at = _cheapest(p, y, price, target, [top[:, 0] - g for g in gaps])
    rule = None
    if margin_cost is not None and (floor_cost is None or margin_cost < floor_cost - 1e-12):
        assert at is not None
        following = gaps[at + 1] if at + 1 < len(gaps) else gaps[at]
        rule = MarginRule(float(min(1.0, max(0.0, (gaps[at] + following) / 2))))
    return RuleChoice(
        rule=rule,
        target=target,
        floor_cost=floor_cost,
        margin_cost=margin_cost,
        best_cost=float(price[best_model]),
        prompts=len(p),
    )


def _sweep(values: Matrix) -> Matrix:
    """At most :data:`_MAX_SWEEP` settings, evenly spread over the sorted candidate values."""
    if len(values) <= _MAX_SWEEP:
        return values
    picked: Matrix = values[np.linspace(0, len(values) - 1, _MAX_SWEEP).round().astype(int)]
    return picked


def _cheapest(
    p: Matrix, y: Matrix, price: Matrix, target: float, floors: Sequence[Matrix]
) -> tuple[float | None, int | None]:
    """The lowest mean price per prompt among the per-prompt ``floors`` settings whose routed success
    rate reaches ``target`` (ties: the later setting), and that setting's index; (None, None) if none.
    Routing as ``decide`` does: the cheapest model (columns are cheapest first) whose P meets the floor,
    else the one with the best P."""
    rows = np.arange(len(p))
    fallback = p.argmax(axis=1)
    found: tuple[float | None, int | None] = (None, None)
    for index, floor in enumerate(floors):
        meets = p >= floor[:, None] - 1e-12
        chosen = np.where(meets.any(axis=1), meets.argmax(axis=1), fallback)
        if y[rows, chosen].mean() < target - 1e-12:
            continue
        cost = float(price[chosen].mean())
        if found[0] is None or cost <= found[0]:
            found = (cost, index)
    return found


def fit_task(
    data: dict[str, TaskData],
    *,
    dim: int,
    folds: int = 5,
    seed: int = 0,
    candidates: Sequence[FitCandidate] = CANDIDATES,
) -> tuple[str, dict[str, float], dict[str, ModelFit]]:
    """Choose one candidate for a task's models by mean CV AUC; refit and calibrate it for each model.

    Returns the chosen candidate's name, every candidate's mean CV AUC and each model's fit.
    """
    if not candidates:
        raise ConfigurationError("no candidate predictors to choose from")
    varied = {m: d for m, d in data.items() if 0 < d.labels.sum() < len(d.labels)}
    splits = {m: _splits(d, folds, seed) for m, d in varied.items()}
    scores: dict[str, float] = {}
    out_of_fold: dict[str, dict[str, Matrix]] = {}
    for candidate in candidates:
        oofs = {m: _out_of_fold(candidate, d, splits[m], dim) for m, d in varied.items()}
        scores[candidate.name] = float(np.mean([_auc(varied[m].labels, p) for m, p in oofs.items()] or [0.5]))
        out_of_fold[candidate.name] = oofs
    best = max(candidates, key=lambda c: (scores[c.name], -candidates.index(c)))
    fits: dict[str, ModelFit] = {}
    for model, d in data.items():
        rate = float(d.labels.mean()) if len(d.labels) else 0.5
        if model not in varied:
            constant = ConstantPredictor(_clip(rate))
            fits[model] = ModelFit(constant, np.full(len(d.labels), constant.p), len(d.labels), rate)
            continue
        predictor = _fit(best, d.rows, d.labels, dim)
        oof = out_of_fold[best.name][model]
        if isinstance(predictor, LogisticPredictor):
            predictor, oof = _calibrated(predictor, oof, d.labels)
        fits[model] = ModelFit(predictor, oof, len(d.labels), rate)
    return best.name, scores, fits


def _splits(data: TaskData, folds: int, seed: int) -> list[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]]:
    from sklearn.model_selection import GroupKFold, StratifiedKFold  # type: ignore[import-untyped]

    labels = data.labels
    if data.groups is not None and len(set(data.groups)) >= 2:
        splitter = GroupKFold(n_splits=min(folds, len(set(data.groups))), shuffle=True, random_state=seed)
        return list(splitter.split(labels, labels, groups=list(data.groups)))
    minority = int(min(labels.sum(), len(labels) - labels.sum()))
    stratified = StratifiedKFold(n_splits=max(2, min(folds, minority)), shuffle=True, random_state=seed)
    return list(stratified.split(labels, labels))


def _out_of_fold(
    candidate: FitCandidate,
    data: TaskData,
    splits: Sequence[tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]],
    dim: int,
) -> Matrix:
    oof = np.empty(len(data.labels))
    for train, test in splits:
        oof[test] = _fit(candidate, data.rows[train], data.labels[train], dim).predict(data.rows[test])
    return oof


def _fit(candidate: FitCandidate, rows: Matrix, labels: Labels, dim: int) -> Predictor:
    if labels.min() == labels.max():  # a fold with one class only
        return ConstantPredictor(_clip(float(labels.mean())))
    if candidate.kind == "knn":
        points = rows[:, :dim]
        norms = np.linalg.norm(points, axis=1, keepdims=True)
        return NeighboursPredictor(int(candidate.param), points / np.where(norms == 0, 1.0, norms), labels)
    if candidate.kind not in ("logistic", "features"):
        raise ConfigurationError(f"unknown candidate kind '{candidate.kind}': use logistic, features or knn")
    start = 0 if candidate.kind == "logistic" else dim
    return _logistic(
        rows, labels, candidate.param, start=start, dim=dim, feature_weight=candidate.feature_weight
    )


def _logistic(
    rows: Matrix, labels: Labels, c: float, *, start: int, dim: int, feature_weight: float
) -> LogisticPredictor:
    """Logistic regression on ``rows[:, start:]``, standardised (text features times ``feature_weight``);
    the scaling is folded into raw-space coefficients."""
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    x = rows[:, start:]
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    scale[max(0, dim - start) :] /= feature_weight
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit((x - mean) / scale, labels.astype(int))
    weights = model.coef_[0] / scale
    coef = np.zeros(rows.shape[1])
    coef[start:] = weights
    return LogisticPredictor(coef, float(model.intercept_[0] - float(weights @ mean)))


def _calibrated(
    predictor: LogisticPredictor, oof: Matrix, labels: Labels
) -> tuple[LogisticPredictor, Matrix]:
    """Platt scaling on the out-of-fold predictions, folded into the predictor (a monotone change)."""
    from sklearn.linear_model import LogisticRegression

    logits = np.log(_clip(oof) / (1 - _clip(oof))).reshape(-1, 1)
    platt = LogisticRegression(C=1e4, max_iter=1000).fit(logits, labels.astype(int))
    a, b = float(platt.coef_[0][0]), float(platt.intercept_[0])
    if a <= 0:  # no ranking signal out of fold: keep the fit as it is
        return predictor, oof
    calibrated = LogisticPredictor(predictor.coef * a, predictor.intercept * a + b)
    return calibrated, 1.0 / (1.0 + np.exp(-(a * logits[:, 0] + b)))


def _auc(labels: Labels, scores: Matrix) -> float:
    from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]

    return float(roc_auc_score(labels, scores))


def _clip(p: Any) -> Any:
    return np.clip(p, _EPS, 1 - _EPS)
