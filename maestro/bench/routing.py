"""``maestro router bench``: the per-prompt router between Mixtral-8x7B and GPT-4 on RouteLLM's outcomes.

**Data** (``--data``, default ``../shared/data/routing``; lm-sys/RouteLLM, Apache-2.0): whether
``mistralai/Mixtral-8x7B-Instruct-v0.1`` (weak) and ``gpt-4-1106-preview`` (strong) answered each prompt
correctly, on GSM8K (``gsm8k/gsm8k_responses.csv``, with both responses) and 57 MMLU subjects
(``mmlu/mmlu_<subject>.csv``). Prompts in each ``contaminated_prompts.jsonl`` (``eval_prompt``) are
dropped.

**Protocol.** The router is fitted with :mod:`maestro.evals.prompt_fit` on a training split only (its
candidate is chosen by cross-validation inside that split) and measured on prompts it never saw:

* MMLU: held-out *subjects*, a fixed split: in alphabetical order every 4th subject (the 4th, 8th, ...;
  14 of 57) is test, the others train; CV folds are grouped by subject. By default a seeded sample of at
  most :data:`MMLU_TRAIN_PER_SUBJECT` prompts per training subject and :data:`MMLU_TEST_PER_SUBJECT` per
  test subject keeps a cold run (embeddings not cached yet) under 5 minutes on 2 cores; ``full`` uses all.
* GSM8K: a seeded random 30 % test split for each of the 10 seeds in :data:`GSM8K_SEEDS` (all 1,307
  prompts are embedded once; each seed refits); the figures are averaged over the seeds.

Only the first :data:`EMBED_CHARS` characters of a prompt are embedded (MiniLM through the retrieval
embedder and its SQLite cache, so a second run embeds nothing); the cheap features see the whole prompt.

**Routing rule.** ``router`` is what ``ModelRouter.decide`` does with the fitted file. On each training
split :func:`maestro.evals.prompt_fit.choose_rule` picks the rule from the out-of-fold predictions
(models priced as RouteLLM prices calls): the floor rule (the weak model serves a prompt when its P >= the
task class's floor, else the strong one if its P is higher) or, when it reaches 95 % of the strong
model's training accuracy more cheaply, the margin rule (the strong model serves a prompt when its P
exceeds the weak model's by more than a margin). Sweeping the floor sends prompts to the strong model in
order of rising P(weak) among those where P(strong) > P(weak), the others last (``floor_rule``); sweeping
the margin, in order of falling P(strong) - P(weak) (``gain_rule``). ``router`` takes, split by split,
the order of the rule chosen on that split's training data; both rules are reported for comparison.
``oracle`` sends exactly the prompts only the strong model gets right; ``random`` (baseline) sends a
random share, figures computed as expected values.

**Figures** (per dataset, on the test split): ``weak_accuracy``, ``strong_accuracy``; ``cpt50/80/95``
(RouteLLM's call-performance threshold: the smallest share of strong calls whose performance gap
recovered, PGR = (acc - weak) / (strong - weak), reaches 50/80/95 %); ``apgr`` (area under PGR over the
strong-call share, trapezoids on every prompt); ``strong_share_at_95``, ``cost_saving_at_95`` and
``call_saving_at_95`` at the smallest share reaching 95 % of the strong model's accuracy (RouteLLM's
"95 % of GPT-4 quality": the threshold is read off the test split, as RouteLLM reports it).
``router.from_training.*`` is what an operator would deploy, with nothing read off the test split: the
file as fitted (its margin, if the margin rule was chosen) and, in ``weights.yaml``, the floor where the
training split's out-of-fold predictions reach 95 %; every test prompt is routed by a real
``ModelRouter.decide`` on a catalog of the two models (:func:`route_with_decide`); reported are the GPT-4
share, the quality reached (accuracy / GPT-4's) and both savings. ``router.margin_rule_splits`` counts
the splits whose training data chose the margin rule, ``router.margin_mean`` their mean margin.

**Cost** of a prompt on a model = ``in_tokens * price_in + out_tokens * price_out`` with
:data:`PRICES_PER_1M` (GPT-4-1106 $10/$30, Mixtral-8x7B $0.6/$0.6 per 1M tokens); tokens = ceil(UTF-8
bytes / 4) of the prompt and of that model's recorded response (MMLU records none: its answer is one
letter, 1 token). ``cost_saving = 1 - cost(routed) / cost(every prompt on the strong model)``.
``call_saving`` is RouteLLM's own cost model (every call the same tokens, $24.7 per 1M for GPT-4 and
$0.24 for Mixtral): ``1 - (share * 24.7 + (1 - share) * 0.24) / 24.7``. It is higher than the token-priced
saving when the prompts sent to GPT-4 are longer than average, which hard ones are.

**Targets**: beat RouteLLM's published savings at 95 % of GPT-4 quality (their blog: about 45 % on MMLU
and 35 % on GSM8K), once with each cost model. Their routers were trained on Chatbot Arena preferences
plus augmentation and scored on all of MMLU; ours on the same benchmark's other subjects or problems, and
scored on held-out ones, so the comparison is indicative, not like for like.
"""

from __future__ import annotations

import csv
import json
import math
import tempfile
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from maestro.bench.report import BenchReport
from maestro.core.errors import ConfigurationError
from maestro.core.settings import Settings
from maestro.evals.prompt_fit import CANDIDATES, TaskData, choose_rule, fit_task
from maestro.retrieval.embeddings import Embedder, EmbeddingCache
from maestro.router.policy import RouteRequest
from maestro.router.prompt_router import Matrix, PromptRouter, design_matrix, parse_prompt_router

if TYPE_CHECKING:
    from rich.progress import Progress
    from rich.table import Table
    from sqlalchemy.engine import Engine

__all__ = [
    "DEFAULT_DATA",
    "PRICES_PER_1M",
    "ROUTELLM_SAVING_AT_95",
    "STRONG_MODEL",
    "WEAK_MODEL",
    "RoutingReport",
    "RoutingSet",
    "DecideRouting",
    "LookupEmbedder",
    "bench_routing",
    "figures",
    "load_gsm8k",
    "load_mmlu",
    "report_table",
    "route_with_decide",
    "routed_figures",
    "training_floor",
]

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "routing"
WEAK_MODEL = "mistralai/Mixtral-8x7B-Instruct-v0.1"
STRONG_MODEL = "gpt-4-1106-preview"
PRICES_PER_1M = {WEAK_MODEL: (0.6, 0.6), STRONG_MODEL: (10.0, 30.0)}  # USD per 1M tokens: in, out
ROUTELLM_SAVING_AT_95 = {"mmlu": 0.45, "gsm8k": 0.35}
QUALITY_SHARE = 0.95
MMLU_TEST_EVERY = 4
MMLU_TRAIN_PER_SUBJECT = 80
MMLU_TEST_PER_SUBJECT = 100
GSM8K_TEST_SHARE = 0.3
GSM8K_SEEDS = tuple(range(10))
EMBED_CHARS = 400
TASK = "chat"
ROUTELLM_USD_PER_1M = {WEAK_MODEL: 0.24, STRONG_MODEL: 24.7}  # RouteLLM's blended prices per call-token
DEPLOY_CATALOG = """
version: 1
deployments:
  - {{name: {weak}, model: openai/weak, api_base: "http://127.0.0.1:9/v1",
     input_cost_per_token: {weak_in}, output_cost_per_token: {weak_out},
     context_window: 1000000, max_output_tokens: 4096}}
  - {{name: {strong}, model: openai/strong, api_base: "http://127.0.0.1:9/v1",
     input_cost_per_token: {strong_in}, output_cost_per_token: {strong_out},
     context_window: 1000000, max_output_tokens: 4096}}
"""
FIGURES = (
    "cpt50",
    "cpt80",
    "cpt95",
    "apgr",
    "strong_share_at_95",
    "cost_saving_at_95",
    "call_saving_at_95",
)
Labels = npt.NDArray[np.float64]
Index = npt.NDArray[np.intp]


@dataclass(frozen=True)
class RoutingSet:
    """Per prompt: text, group (MMLU subject), both models' correctness (0/1) and cost (USD)."""

    name: str
    prompts: tuple[str, ...]
    groups: tuple[str, ...]
    weak: Labels
    strong: Labels
    cost_weak: Matrix
    cost_strong: Matrix

    def __len__(self) -> int:
        return len(self.prompts)

    def subset(self, index: Index) -> RoutingSet:
        return RoutingSet(
            self.name,
            tuple(self.prompts[i] for i in index),
            tuple(self.groups[i] for i in index),
            self.weak[index],
            self.strong[index],
            self.cost_weak[index],
            self.cost_strong[index],
        )


@dataclass
class RoutingReport(BenchReport):
    """The report, plus per dataset the candidate cross-validation chose (not part of the JSON)."""

    chosen: dict[str, str] = field(default_factory=dict)
    rules: dict[str, str] = field(default_factory=dict)


# -- data -----------------------------------------------------------------------------------------------


def load_mmlu(root: Path, *, subjects: Sequence[str] | None = None) -> RoutingSet:
    """MMLU outcomes (all 57 subjects, or ``subjects``), contaminated prompts dropped."""
    folder = _folder(root, "mmlu")
    files = sorted(folder.glob("mmlu_*.csv"))
    if subjects is not None:
        wanted = set(subjects)
        files = [f for f in files if f.stem.removeprefix("mmlu_") in wanted]
        missing = wanted - {f.stem.removeprefix("mmlu_") for f in files}
        if missing:
            raise ConfigurationError(f"{folder}: no mmlu_<subject>.csv for {sorted(missing)}")
    if not files:
        raise ConfigurationError(f"{folder}: no mmlu_<subject>.csv files")
    dropped = _contaminated(folder)
    rows: list[tuple[str, str, bool, bool, str, str]] = []
    for path in files:
        subject = path.stem.removeprefix("mmlu_")
        rows += [(p, subject, w, s, "", "") for p, w, s, _, _ in _read(path) if p not in dropped]
    return _routing_set("mmlu", rows, answer_tokens=1)


def load_gsm8k(root: Path, *, limit: int | None = None) -> RoutingSet:
    """GSM8K outcomes with both models' responses (for their output tokens), contaminated ones dropped."""
    folder = _folder(root, "gsm8k")
    dropped = _contaminated(folder)
    rows = [
        (p, "gsm8k", w, s, rw, rs)
        for p, w, s, rw, rs in _read(folder / "gsm8k_responses.csv")
        if p not in dropped
    ]
    return _routing_set("gsm8k", rows[:limit] if limit is not None else rows, answer_tokens=None)


def _folder(root: Path, name: str) -> Path:
    folder = root / name
    if not folder.is_dir():
        raise ConfigurationError(
            f"{folder}: not found; point --data at RouteLLM's routing data (the folder holding gsm8k/ "
            "and mmlu/, e.g. ../shared/data/routing)"
        )
    return folder


def _contaminated(folder: Path) -> set[str]:
    path = folder / "contaminated_prompts.jsonl"
    if not path.is_file():
        return set()
    return {json.loads(line)["eval_prompt"] for line in path.read_text("utf-8").splitlines() if line.strip()}


def _read(path: Path) -> list[tuple[str, bool, bool, str, str]]:
    if not path.is_file():
        raise ConfigurationError(f"{path}: not found")
    csv.field_size_limit(1 << 28)
    out = []
    with path.open(encoding="utf-8", newline="") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            try:
                weak, strong = _flag(row[WEAK_MODEL]), _flag(row[STRONG_MODEL])
                prompt = row["prompt"]
            except (KeyError, ValueError) as exc:
                raise ConfigurationError(
                    f"{path}: row {number}: {exc}; expected columns prompt, {WEAK_MODEL}, {STRONG_MODEL} "
                    "with True/False"
                ) from None
            responses = (row.get(f"{WEAK_MODEL}_response") or "", row.get(f"{STRONG_MODEL}_response") or "")
            out.append((prompt, weak, strong, *responses))
    return out


def _flag(value: str) -> bool:
    if value not in ("True", "False"):
        raise ValueError(f"correctness {value!r} is not True/False")
    return value == "True"


def _tokens(text: str) -> int:
    return math.ceil(len(text.encode("utf-8")) / 4)


def _routing_set(
    name: str, rows: Sequence[tuple[str, str, bool, bool, str, str]], *, answer_tokens: int | None
) -> RoutingSet:
    def cost(model: str, prompt: str, response: str) -> float:
        price_in, price_out = PRICES_PER_1M[model]
        out = answer_tokens if answer_tokens is not None else _tokens(response)
        return (_tokens(prompt) * price_in + out * price_out) / 1e6

    return RoutingSet(
        name,
        tuple(r[0] for r in rows),
        tuple(r[1] for r in rows),
        np.array([r[2] for r in rows], dtype=np.float64),
        np.array([r[3] for r in rows], dtype=np.float64),
        np.array([cost(WEAK_MODEL, r[0], r[4]) for r in rows]),
        np.array([cost(STRONG_MODEL, r[0], r[5]) for r in rows]),
    )


# -- splits -----------------------------------------------------------------------------------------------


def mmlu_split(data: RoutingSet, *, train_cap: int | None, test_cap: int | None) -> tuple[Index, Index]:
    """Every 4th subject (alphabetical, from the 4th) is test; a seeded sample of each subject's prompts."""
    subjects = sorted(set(data.groups))
    test_subjects = {s for i, s in enumerate(subjects) if i % MMLU_TEST_EVERY == MMLU_TEST_EVERY - 1}
    if not test_subjects or len(test_subjects) == len(subjects):
        test_subjects = {subjects[-1]}
    if len(subjects) < 2:
        raise ConfigurationError("the MMLU split needs at least two subjects (one to train, one to test)")
    groups = np.array(data.groups)
    train: list[int] = []
    test: list[int] = []
    for subject in subjects:
        rng = np.random.default_rng(zlib.crc32(subject.encode()))
        members = rng.permutation(np.flatnonzero(groups == subject))
        is_test = subject in test_subjects
        cap = test_cap if is_test else train_cap
        (test if is_test else train).extend(members[:cap].tolist())
    return np.array(sorted(train), dtype=np.intp), np.array(sorted(test), dtype=np.intp)


def random_split(n: int, *, seed: int, test_share: float = GSM8K_TEST_SHARE) -> tuple[Index, Index]:
    order = np.random.default_rng(seed).permutation(n)
    cut = max(1, round(n * test_share))
    return np.sort(order[cut:]).astype(np.intp), np.sort(order[:cut]).astype(np.intp)


# -- figures ----------------------------------------------------------------------------------------------


def frontier(order: Index, data: RoutingSet) -> tuple[Matrix, Matrix, Matrix]:
    """Strong-call share, accuracy and cost after sending the first 0..n prompts of ``order`` to strong."""
    n = len(data)
    share = np.arange(n + 1) / n
    accuracy = (data.weak.sum() + np.concatenate([[0.0], np.cumsum((data.strong - data.weak)[order])])) / n
    cost = data.cost_weak.sum() + np.concatenate(
        [[0.0], np.cumsum((data.cost_strong - data.cost_weak)[order])]
    )
    return share, accuracy, cost


def figures(order: Index, data: RoutingSet) -> dict[str, float]:
    """CPT(50/80/95 %), APGR, and the strong share and cost saving at 95 % of strong accuracy."""
    share, accuracy, cost = frontier(order, data)
    weak, strong = float(data.weak.mean()), float(data.strong.mean())
    gap = strong - weak
    pgr = (accuracy - weak) / gap if gap > 0 else np.ones_like(accuracy)
    reach = int(np.argmax(accuracy >= QUALITY_SHARE * strong - 1e-12))
    return {
        "cpt50": float(share[int(np.argmax(pgr >= 0.5 - 1e-12))]),
        "cpt80": float(share[int(np.argmax(pgr >= 0.8 - 1e-12))]),
        "cpt95": float(share[int(np.argmax(pgr >= 0.95 - 1e-12))]),
        "apgr": float(np.trapezoid(pgr, share)),
        "strong_share_at_95": float(share[reach]),
        "cost_saving_at_95": float(1 - cost[reach] / data.cost_strong.sum()),
        "call_saving_at_95": call_saving(float(share[reach])),
    }


def call_saving(strong_share: float) -> float:
    """RouteLLM's cost model: every call costs the same tokens, at $24.7 (GPT-4) or $0.24 (Mixtral) per 1M."""
    weak, strong = ROUTELLM_USD_PER_1M[WEAK_MODEL], ROUTELLM_USD_PER_1M[STRONG_MODEL]
    return 1 - (strong_share * strong + (1 - strong_share) * weak) / strong


def random_figures(data: RoutingSet) -> dict[str, float]:
    """Expected figures of sending each prompt to the strong model with probability ``share``."""
    weak, strong = float(data.weak.mean()), float(data.strong.mean())
    gap = strong - weak
    reach = min(1.0, max(0.0, (QUALITY_SHARE * strong - weak) / gap)) if gap > 0 else 0.0
    all_weak, all_strong = float(data.cost_weak.sum()), float(data.cost_strong.sum())
    return {
        "cpt50": 0.5 if gap > 0 else 0.0,
        "cpt80": 0.8 if gap > 0 else 0.0,
        "cpt95": 0.95 if gap > 0 else 0.0,
        "apgr": 0.5 if gap > 0 else 1.0,
        "strong_share_at_95": reach,
        "cost_saving_at_95": 1 - (all_weak + reach * (all_strong - all_weak)) / all_strong,
        "call_saving_at_95": call_saving(reach),
    }


def decide_order(p_weak: Matrix, p_strong: Matrix) -> Index:
    """The order in which ``decide``'s floor sends prompts to the strong model as the floor rises."""
    never = p_strong <= p_weak
    return np.lexsort((np.arange(len(p_weak)), p_weak, never)).astype(np.intp)


def gain_order(p_weak: Matrix, p_strong: Matrix) -> Index:
    return np.lexsort((np.arange(len(p_weak)), p_weak - p_strong)).astype(np.intp)


def oracle_order(data: RoutingSet) -> Index:
    """Prompts only the strong model gets right first (cheapest extra cost first), harmful ones last."""
    kind = np.where(data.strong > data.weak, 0, np.where(data.strong < data.weak, 2, 1))
    return np.lexsort((data.cost_strong - data.cost_weak, kind)).astype(np.intp)


def training_floor(train: RoutingSet, oof_weak: Matrix, oof_strong: Matrix) -> float:
    """The floor at which the training split's out-of-fold predictions, routed by ``decide``'s floor rule,
    reach 95 % of the strong model's accuracy (midway between two predictions; clipped to 0..1)."""
    order = decide_order(oof_weak, oof_strong)
    _, accuracy, _ = frontier(order, train)
    reach = int(np.argmax(accuracy >= QUALITY_SHARE * train.strong.mean() - 1e-12))
    ranked = np.sort(oof_weak[oof_strong > oof_weak])
    reach = min(reach, len(ranked))
    if reach == 0:
        return 0.0
    if reach == len(ranked):
        return 1.0
    return float(min(1.0, max(0.0, (ranked[reach - 1] + ranked[reach]) / 2)))


def routed_figures(test: RoutingSet, strong: Matrix) -> dict[str, float]:
    """GPT-4 share, quality (accuracy / GPT-4's) and savings of one routing of the test split."""
    mask = strong.astype(bool)
    accuracy = float(np.where(mask, test.strong, test.weak).mean())
    cost = float(np.where(mask, test.cost_strong, test.cost_weak).sum())
    return {
        "strong_share": float(mask.mean()),
        "quality_ratio": accuracy / float(test.strong.mean()),
        "cost_saving": 1 - cost / float(test.cost_strong.sum()),
        "call_saving": call_saving(float(mask.mean())),
    }


class LookupEmbedder:
    """The bench's vectors by text, behind the router's ``PromptEmbedder`` protocol (nothing re-embedded)."""

    def __init__(self, name: str, dim: int, vectors: dict[str, Matrix]) -> None:
        self._name, self._dim, self._vectors = name, dim, vectors

    @property
    def name(self) -> str:
        return self._name

    @property
    def dim(self) -> int:
        return self._dim

    def embed_query(self, text: str) -> Sequence[float]:
        return self._vectors[text].tolist()  # type: ignore[no-any-return]


@dataclass(frozen=True)
class DecideRouting:
    """Where the bench routes test prompts through a real ``ModelRouter``: settings pointing at a scratch
    data dir and state DB (``engine``), a folder for each fitted file's catalog and weights, the vectors."""

    settings: Settings
    root: Path
    engine: Engine
    embedder: LookupEmbedder


def route_with_decide(
    deployment: DecideRouting, fitted: PromptRouter, floor: float, prompts: Sequence[str]
) -> Matrix:
    """Route ``prompts`` with ``ModelRouter.decide`` as ``maestro serve`` would with ``fitted`` as its
    prompt router file (its rule, if any) and ``floor`` as the task class's floor in ``weights.yaml``, on a
    catalog of the two models at the bench's prices. 1.0 where the strong model was chosen."""
    from maestro.router.factory import build_router
    from maestro.router.testing import ScriptedLLM

    folder = deployment.root / fitted.version
    folder.mkdir(parents=True, exist_ok=True)
    (weak_in, weak_out), (strong_in, strong_out) = PRICES_PER_1M[WEAK_MODEL], PRICES_PER_1M[STRONG_MODEL]
    (folder / "catalog.yaml").write_text(
        DEPLOY_CATALOG.format(
            weak=json.dumps(WEAK_MODEL),
            strong=json.dumps(STRONG_MODEL),
            weak_in=weak_in / 1e6,
            weak_out=weak_out / 1e6,
            strong_in=strong_in / 1e6,
            strong_out=strong_out / 1e6,
        )
    )
    (folder / "weights.yaml").write_text(
        f'version: "{fitted.version}"\ntask_classes:\n  {TASK}: {{floor: {floor:.6f}, models: {{}}}}\n'
    )
    fitted.write(folder / "prompt-router.json")
    router = build_router(
        deployment.settings.model_copy(
            update={
                "catalog_path": folder / "catalog.yaml",
                "weights_path": folder / "weights.yaml",
                "prompt_router_path": folder / "prompt-router.json",
            }
        ),
        engine=deployment.engine,
        client=ScriptedLLM(),  # nothing is called: decisions only
        environ={},
        prompt_embedder=deployment.embedder,
    )
    try:
        chosen = [
            router.decide(
                RouteRequest(
                    task=TASK,
                    messages=[{"role": "user", "content": prompt}],
                    tenant="bench",
                    principal="bench",
                    max_tokens=64,
                ),
                fresh_budget=False,
            ).chosen
            for prompt in prompts
        ]
    finally:
        router.close()
    return np.array([c == STRONG_MODEL for c in chosen], dtype=np.float64)


# -- the benchmark ----------------------------------------------------------------------------------------


def bench_routing(
    settings: Settings,
    *,
    data: Path = DEFAULT_DATA,
    embedder: Embedder | None = None,
    full: bool = False,
    mmlu_subjects: Sequence[str] | None = None,
    gsm8k_limit: int | None = None,
    gsm8k_seeds: Sequence[int] = GSM8K_SEEDS,
    progress: Progress | None = None,
) -> RoutingReport:
    """Fit and measure the per-prompt router on both datasets; ``embedder`` defaults to the retrieval
    embedder with its cache in the data dir (tests pass a hashing one)."""
    started = time.perf_counter()
    sets, splits = _datasets(data, full=full, subjects=mmlu_subjects, limit=gsm8k_limit, seeds=gsm8k_seeds)
    prompts = [p for routing in sets.values() for p in routing.prompts]
    embed_started = time.perf_counter()
    if embedder is None:
        from maestro.retrieval.factory import build_embedder

        own = build_embedder(settings)  # MiniLM, its vectors cached in the data dir
        try:
            vectors = _embed(own, prompts, progress)
        finally:
            cache = getattr(own, "cache", None)
            if isinstance(cache, EmbeddingCache):
                cache.close()
        embedder = own
    else:
        vectors = _embed(embedder, prompts, progress)
    report = RoutingReport("routing")
    report.metrics["embed_s"] = time.perf_counter() - embed_started
    report.metrics["prompts_embedded"] = len(vectors)
    fit_started = time.perf_counter()
    lookup = LookupEmbedder(embedder.name, embedder.dim, vectors)
    with tempfile.TemporaryDirectory(prefix="maestro-router-bench-") as tmp:
        from maestro.router.factory import open_state_db

        scratch = settings.model_copy(
            update={
                "data_dir": Path(tmp) / "var",
                "database_url": None,
                "tenant_budget_usd": 1e9,
                "principal_budget_usd": 1e9,
                "budget_view_s": 3600.0,
                "weights_reload_s": 3600.0,
            }
        )
        engine = open_state_db(scratch)
        deployment = DecideRouting(scratch, Path(tmp), engine, lookup)
        try:
            for name, routing in sets.items():
                rows = design_matrix([vectors[p[:EMBED_CHARS]] for p in routing.prompts], routing.prompts)
                runs = [
                    _run(routing, rows, train, test, deployment=deployment, seed=k, progress=progress)
                    for k, (train, test) in enumerate(splits[name])
                ]
                _record(report, name, runs)
        finally:
            engine.dispose()
    report.metrics["fit_s"] = time.perf_counter() - fit_started
    report.metrics["bench_s"] = time.perf_counter() - started
    return report


def _datasets(
    data: Path, *, full: bool, subjects: Sequence[str] | None, limit: int | None, seeds: Sequence[int]
) -> tuple[dict[str, RoutingSet], dict[str, list[tuple[Index, Index]]]]:
    """Both datasets reduced to the prompts their splits use, and the splits (renumbered to match)."""
    sets = {"mmlu": load_mmlu(data, subjects=subjects), "gsm8k": load_gsm8k(data, limit=limit)}
    cap_train, cap_test = (None, None) if full else (MMLU_TRAIN_PER_SUBJECT, MMLU_TEST_PER_SUBJECT)
    splits = {
        "mmlu": [mmlu_split(sets["mmlu"], train_cap=cap_train, test_cap=cap_test)],
        "gsm8k": [random_split(len(sets["gsm8k"]), seed=s) for s in seeds],
    }
    for name, pairs in splits.items():
        used = np.unique(np.concatenate([np.concatenate(pair) for pair in pairs]))
        sets[name] = sets[name].subset(used)
        splits[name] = [(np.searchsorted(used, tr), np.searchsorted(used, te)) for tr, te in pairs]
    return sets, splits


def _embed(embedder: Embedder, texts: Sequence[str], progress: Progress | None) -> dict[str, Matrix]:
    """Vectors of every prompt's embedded part, shortest first (less padding), in cached batches."""
    parts = sorted({t[:EMBED_CHARS] for t in texts}, key=len)
    task = progress.add_task("embedding prompts", total=len(parts)) if progress is not None else None
    out: dict[str, Matrix] = {}
    for start in range(0, len(parts), 256):
        batch = parts[start : start + 256]
        for text, vector in zip(batch, embedder.embed(batch), strict=True):
            out[text] = np.asarray(vector, dtype=np.float64)
        if progress is not None and task is not None:
            progress.advance(task, len(batch))
    return out


@dataclass
class _Run:
    test: RoutingSet
    systems: dict[str, dict[str, float]]  # router, floor_rule, gain_rule, oracle, random
    deployed: dict[str, float]  # the test split routed by decide, as fitted on the training split
    margin: float | None  # the margin rule chosen on the training split (None: the floor rule)
    floor: float
    cv_auc: float
    chosen: str
    train_size: int


def _run(
    routing: RoutingSet,
    rows: Matrix,
    train: Index,
    test: Index,
    *,
    deployment: DecideRouting,
    seed: int,
    progress: Progress | None,
) -> _Run:
    task = progress.add_task(f"fitting {routing.name}", total=None) if progress is not None else None
    groups = [routing.groups[i] for i in train] if routing.name == "mmlu" else None
    data = {
        WEAK_MODEL: TaskData(rows[train], routing.weak[train], groups),
        STRONG_MODEL: TaskData(rows[train], routing.strong[train], groups),
    }
    chosen, scores, fits = fit_task(data, dim=deployment.embedder.dim, seed=seed, candidates=CANDIDATES)
    oof = {m: f.out_of_fold for m, f in fits.items()}
    trained = routing.subset(train)
    rule = choose_rule(  # on the training split only, priced as RouteLLM prices calls
        oof,
        {WEAK_MODEL: trained.weak, STRONG_MODEL: trained.strong},
        ROUTELLM_USD_PER_1M,
        quality_share=QUALITY_SHARE,
    ).rule
    fitted = PromptRouter(
        version=f"bench-{routing.name}-{seed}",
        embedder=deployment.embedder.name,
        dim=deployment.embedder.dim,
        embed_chars=EMBED_CHARS,
        task_classes={TASK: {m: f.predictor for m, f in fits.items()}},
        rules={TASK: rule} if rule is not None else {},
    )
    loaded = parse_prompt_router(fitted.to_dict(), source="bench")  # measure what a loaded file predicts
    predicted = loaded.predict_many(TASK, rows[test])
    p_weak, p_strong = predicted[WEAK_MODEL], predicted[STRONG_MODEL]
    held = routing.subset(test)
    floor = training_floor(trained, oof[WEAK_MODEL], oof[STRONG_MODEL])
    floor_rule = figures(decide_order(p_weak, p_strong), held)
    gain_rule = figures(gain_order(p_weak, p_strong), held)
    deployed = route_with_decide(deployment, loaded, floor, held.prompts)
    if progress is not None and task is not None:
        progress.remove_task(task)
    return _Run(
        test=held,
        systems={
            "router": gain_rule if rule is not None else floor_rule,
            "floor_rule": floor_rule,
            "gain_rule": gain_rule,
            "oracle": figures(oracle_order(held), held),
            "random": random_figures(held),
        },
        deployed=routed_figures(held, deployed),
        margin=rule.margin if rule is not None else None,
        floor=floor,
        cv_auc=scores[chosen],
        chosen=chosen,
        train_size=len(train),
    )


def _record(report: RoutingReport, name: str, runs: Sequence[_Run]) -> None:
    def mean(values: Sequence[float]) -> float:
        return float(np.mean(values)) if values else 0.0

    m, b = report.metrics, report.baseline
    m[f"{name}.splits"] = len(runs)
    m[f"{name}.train_prompts"] = mean([r.train_size for r in runs])
    m[f"{name}.test_prompts"] = mean([len(r.test) for r in runs])
    m[f"{name}.weak_accuracy"] = mean([float(r.test.weak.mean()) for r in runs])
    m[f"{name}.strong_accuracy"] = mean([float(r.test.strong.mean()) for r in runs])
    m[f"{name}.cv_auc"] = mean([r.cv_auc for r in runs])
    margins = [r.margin for r in runs if r.margin is not None]
    m[f"{name}.router.margin_rule_splits"] = len(margins)
    m[f"{name}.router.margin_mean"] = mean(margins)
    for system in ("router", "floor_rule", "gain_rule", "oracle"):
        for key in FIGURES:
            m[f"{name}.{system}.{key}"] = mean([r.systems[system][key] for r in runs])
    m[f"{name}.router.from_training.floor"] = mean([r.floor for r in runs])
    for key in ("strong_share", "quality_ratio", "cost_saving", "call_saving"):
        m[f"{name}.router.from_training.{key}"] = mean([r.deployed[key] for r in runs])
    for key in FIGURES:
        b[f"{name}.random.{key}"] = mean([r.systems["random"][key] for r in runs])
    b[f"{name}.routellm_published.cost_saving_at_95"] = ROUTELLM_SAVING_AT_95[name]
    for saving in ("cost_saving_at_95", "call_saving_at_95"):
        report.at_least(
            f"{name}.{saving}_beats_routellm",
            m[f"{name}.router.{saving}"],
            ROUTELLM_SAVING_AT_95[name],
            strict=True,
        )
    report.chosen[name] = ", ".join(sorted({r.chosen for r in runs}))
    rules = {"margin" if r.margin is not None else "floor" for r in runs}
    report.rules[name] = ", ".join(sorted(rules))


def report_table(document: dict[str, Any]) -> Table:
    """A rich table of a report's JSON: one row per dataset and system."""
    from rich.table import Table

    metrics, baseline = document["metrics"], document["baseline"]
    table = Table(title="per-prompt routing, Mixtral-8x7B vs GPT-4, on held-out prompts")
    columns = ("dataset", "system", "CPT50", "CPT80", "CPT95", "APGR", "GPT-4 share", "saving", "call saving")
    for column in columns:
        table.add_column(column, justify="left" if column in ("dataset", "system") else "right")
    systems = (
        ("router", "router", metrics),
        ("floor rule", "floor_rule", metrics),
        ("gain rule", "gain_rule", metrics),
        ("oracle", "oracle", metrics),
        ("random", "random", baseline),
    )
    for name in ("mmlu", "gsm8k"):
        if f"{name}.weak_accuracy" not in metrics:
            continue
        weak, strong = metrics[f"{name}.weak_accuracy"], metrics[f"{name}.strong_accuracy"]
        title = f"{name}\nweak {weak:.3f}\nstrong {strong:.3f}"
        for label, key, source in systems:
            values = [source[f"{name}.{key}.{f}"] for f in FIGURES]
            table.add_row(title, label, *[f"{v:.3f}" for v in values[:4]], *[f"{v:.1%}" for v in values[4:]])
            title = ""
        deployed = f"{name}.router.from_training"
        table.add_row(
            "",
            f"deployed\n(q {metrics[f'{deployed}.quality_ratio']:.1%})",
            *[""] * 4,
            f"{metrics[f'{deployed}.strong_share']:.1%}",
            f"{metrics[f'{deployed}.cost_saving']:.1%}",
            f"{metrics[f'{deployed}.call_saving']:.1%}",
        )
        published = f"{baseline[f'{name}.routellm_published.cost_saving_at_95']:.0%}"
        table.add_row("", "RouteLLM", *[""] * 5, published, published, end_section=True)
    table.caption = (
        "GPT-4 share and savings at 95% of GPT-4's accuracy. saving: tokens priced $10/$30 vs $0.6/$0.6 per "
        "1M; call saving: RouteLLM's model, $24.7 vs $0.24 per 1M and equal tokens per call. router: the "
        "rule chosen on the training split (floor or gain); floor rule: by P(weak) against a floor; gain "
        "rule: by P(strong) - P(weak); deployed: the test split routed by ModelRouter.decide with the "
        "training split's margin or floor (its own quality, not 95%); RouteLLM: their published savings."
    )
    return table
