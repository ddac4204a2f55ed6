"""``maestro router bench``: a small slice of RouteLLM's real outcomes, a hashing embedder, the shape and
the invariants every run must satisfy (not the scores, which depend on the slice)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from maestro.bench.routing import (
    DEFAULT_DATA,
    EMBED_CHARS,
    FIGURES,
    STRONG_MODEL,
    WEAK_MODEL,
    DecideRouting,
    LookupEmbedder,
    RoutingSet,
    bench_routing,
    decide_order,
    figures,
    gain_order,
    load_gsm8k,
    load_mmlu,
    oracle_order,
    random_figures,
    report_table,
    route_with_decide,
)
from maestro.core.errors import ConfigurationError
from maestro.core.settings import Settings
from maestro.retrieval.embeddings import HashingEmbedder
from maestro.router.factory import open_state_db
from maestro.router.prompt_router import (
    FEATURES,
    LogisticPredictor,
    MarginRule,
    PromptRouter,
    design_matrix,
)

SUBJECTS = ("abstract_algebra", "anatomy", "astronomy", "business_ethics", "college_biology")
MAESTRO = str(Path(sys.executable).with_name("maestro"))


@pytest.fixture(scope="module")
def data() -> Path:
    if not (DEFAULT_DATA / "mmlu").is_dir():
        pytest.fail(
            f"RouteLLM's routing data is missing at {DEFAULT_DATA} (shared/data/routing/)", pytrace=False
        )
    return DEFAULT_DATA


def test_a_small_run_has_the_bench_shape_and_its_invariants(settings: Settings, data: Path) -> None:
    report = bench_routing(
        settings,
        data=data,
        embedder=HashingEmbedder(dim=64),
        mmlu_subjects=SUBJECTS,
        gsm8k_limit=200,
        gsm8k_seeds=(0, 1),
    )
    document = report.to_dict()
    assert set(document) == {"bench", "machine", "metrics", "baseline", "targets"}
    json.dumps(document)
    metrics, baseline = document["metrics"], document["baseline"]
    assert all(isinstance(v, int | float) and np.isfinite(v) for v in (*metrics.values(), *baseline.values()))
    assert metrics["gsm8k.splits"] == 2 and metrics["gsm8k.test_prompts"] == 60
    assert metrics["mmlu.test_prompts"] == 100  # business_ethics, the 4th subject, capped at 100 prompts
    for name in ("mmlu", "gsm8k"):
        for system, source in (
            ("router", metrics),
            ("floor_rule", metrics),
            ("gain_rule", metrics),
            ("oracle", metrics),
            ("random", baseline),
        ):
            f = {key: source[f"{name}.{system}.{key}"] for key in FIGURES}
            assert 0 <= f["cpt50"] <= f["cpt80"] <= f["cpt95"] <= 1
            assert 0 <= f["strong_share_at_95"] <= 1
            assert f["cost_saving_at_95"] <= 1 and f["call_saving_at_95"] <= 1
        # the oracle's curve is the best any order can reach
        assert metrics[f"{name}.oracle.strong_share_at_95"] <= metrics[f"{name}.router.strong_share_at_95"]
        assert metrics[f"{name}.oracle.apgr"] >= metrics[f"{name}.router.apgr"]
        assert (baseline[f"{name}.random.cpt50"], baseline[f"{name}.random.apgr"]) == (0.5, 0.5)
        # the router is whichever rule the training split chose, per split
        splits, margins = metrics[f"{name}.splits"], metrics[f"{name}.router.margin_rule_splits"]
        if margins == 0:
            assert metrics[f"{name}.router.apgr"] == metrics[f"{name}.floor_rule.apgr"]
        if margins == splits:
            assert metrics[f"{name}.router.apgr"] == metrics[f"{name}.gain_rule.apgr"]
        assert 0 <= metrics[f"{name}.router.from_training.strong_share"] <= 1
        assert 0 <= metrics[f"{name}.router.from_training.floor"] <= 1
        assert 0 < metrics[f"{name}.router.from_training.quality_ratio"]
        assert 0 <= metrics[f"{name}.weak_accuracy"] <= 1 and 0 <= metrics[f"{name}.strong_accuracy"] <= 1
        for saving in ("cost", "call"):
            target = document["targets"][f"{name}.{saving}_saving_at_95_beats_routellm"]
            assert target["met"] is (
                target["value"] > baseline[f"{name}.routellm_published.cost_saving_at_95"]
            )
    assert set(report.chosen) == {"mmlu", "gsm8k"} and set(report.rules) == {"mmlu", "gsm8k"}
    assert report_table(document).row_count == 2 * 7


def test_the_figures_on_a_hand_made_split() -> None:
    # 4 prompts: weak right on 0 and 1, strong right on 0, 2 and 3; strong costs 10x
    data = RoutingSet(
        "toy",
        ("a", "b", "c", "d"),
        ("g",) * 4,
        np.array([1.0, 1.0, 0.0, 0.0]),
        np.array([1.0, 0.0, 1.0, 1.0]),
        np.ones(4),
        np.full(4, 10.0),
    )
    oracle = figures(oracle_order(data), data)
    # weak 0.5, strong 0.75: sending c and d recovers the gap twice over; 95% of 0.75 needs one of them
    assert oracle["strong_share_at_95"] == 0.25
    assert oracle["cpt50"] == 0.25 and oracle["cpt95"] == 0.25
    assert oracle["cost_saving_at_95"] == pytest.approx(1 - (3 + 10) / 40)
    worst = figures(np.array([1, 0, 2, 3]), data)  # the harmful prompt first
    assert worst["strong_share_at_95"] == 1.0
    rand = random_figures(data)
    assert rand["strong_share_at_95"] == pytest.approx((0.95 * 0.75 - 0.5) / 0.25)
    # decide's order: prompts where P(strong) > P(weak), by rising P(weak); the rest last
    order = decide_order(np.array([0.9, 0.2, 0.5, 0.4]), np.array([0.8, 0.9, 0.9, 0.3]))
    assert order.tolist() == [1, 2, 3, 0]


def test_loading_drops_contaminated_prompts_and_prices_both_models(data: Path) -> None:
    gsm8k = load_gsm8k(data)
    contaminated = {
        json.loads(line)["eval_prompt"] for line in (data / "gsm8k" / "contaminated_prompts.jsonl").open()
    }
    assert contaminated and not contaminated & set(gsm8k.prompts)
    assert len(gsm8k) == 1319 - len(contaminated)
    assert (gsm8k.cost_strong > gsm8k.cost_weak).all()
    mmlu = load_mmlu(data, subjects=["anatomy"])
    assert set(mmlu.groups) == {"anatomy"} and len(mmlu) == 135
    assert set(np.unique(mmlu.weak)) <= {0.0, 1.0}
    with pytest.raises(ConfigurationError, match="no mmlu_<subject>.csv for \\['poetry'\\]"):
        load_mmlu(data, subjects=["poetry"])


def test_a_wrong_data_folder_is_a_clear_error(settings: Settings, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="point --data at RouteLLM's routing data"):
        bench_routing(settings, data=tmp_path, embedder=HashingEmbedder(dim=8))


def test_the_cli_prints_one_json_document(tmp_path: Path, data: Path) -> None:
    slice_dir = tmp_path / "routing"
    (slice_dir / "mmlu").mkdir(parents=True)
    (slice_dir / "gsm8k").mkdir()
    for subject in SUBJECTS:
        shutil.copy(data / "mmlu" / f"mmlu_{subject}.csv", slice_dir / "mmlu")
    with (data / "gsm8k" / "gsm8k_responses.csv").open(encoding="utf-8", newline="") as source:
        rows = list(csv.DictReader(source))[:150]
    with (slice_dir / "gsm8k" / "gsm8k_responses.csv").open("w", encoding="utf-8", newline="") as target:
        writer = csv.DictWriter(target, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert {WEAK_MODEL, STRONG_MODEL} <= set(rows[0])
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MAESTRO_")}
    environment.update(MAESTRO_DATA_DIR=str(tmp_path / "var"), MAESTRO_EMBEDDER="hashing")
    done = subprocess.run(
        [MAESTRO, "router", "bench", "--data", str(slice_dir), "--json"],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["bench"] == "routing"
    assert set(document["targets"]) == {
        f"{name}.{saving}_saving_at_95_beats_routellm"
        for name in ("mmlu", "gsm8k")
        for saving in ("cost", "call")
    }
    assert document["metrics"]["gsm8k.splits"] == 10
    assert (tmp_path / "var" / "embeddings.sqlite").is_file()  # the vectors are cached for the next run


def test_decide_routes_held_out_prompts_exactly_as_the_bench_ranks_them(
    settings: Settings, tmp_path: Path
) -> None:
    """The bench's figures sweep an order; its `deployed` figures route through ModelRouter.decide. For
    one margin (or floor), decide must send to GPT-4 exactly the first prompts of that order."""
    embedder = HashingEmbedder(dim=16)
    prompts = [
        f"Problem {i}: a train leaves at {i % 12} and travels {7 * i} miles. " * (1 + i % 3)
        for i in range(150)
    ]
    parts = [p[:EMBED_CHARS] for p in prompts]
    vectors = {t: np.asarray(v) for t, v in zip(parts, embedder.embed(parts), strict=True)}
    rng = np.random.default_rng(3)

    def predictor(intercept: float) -> LogisticPredictor:  # on the embedding only (features weigh 0)
        return LogisticPredictor(
            np.r_[rng.normal(scale=3.0, size=embedder.dim), np.zeros(len(FEATURES))], intercept
        )

    predictors = {WEAK_MODEL: predictor(0.3), STRONG_MODEL: predictor(0.8)}
    floor_file = PromptRouter(
        version="same-floor",
        embedder=embedder.name,
        dim=embedder.dim,
        embed_chars=EMBED_CHARS,
        task_classes={"chat": predictors},
    )
    margin_file = replace(floor_file, version="same-margin", rules={"chat": MarginRule(0.1)})
    predicted = floor_file.predict_many("chat", design_matrix([vectors[t] for t in parts], prompts))
    p_weak, p_strong = predicted[WEAK_MODEL], predicted[STRONG_MODEL]
    assert (p_strong > p_weak + 0.1).sum() > 10 and (p_strong < p_weak).sum() > 10  # both kinds occur

    scratch = settings.model_copy(update={"tenant_budget_usd": 1e9, "principal_budget_usd": 1e9})
    engine = open_state_db(scratch)
    try:
        routing = DecideRouting(
            scratch, tmp_path, engine, LookupEmbedder(embedder.name, embedder.dim, vectors)
        )
        by_margin = route_with_decide(routing, margin_file, 0.9, prompts).astype(bool)
        by_floor = route_with_decide(routing, floor_file, 0.6, prompts).astype(bool)
    finally:
        engine.dispose()
    assert (by_margin == (p_strong - p_weak > 0.1)).all()  # the margin rule ignores the weights' floor
    assert set(gain_order(p_weak, p_strong)[: by_margin.sum()]) == set(np.flatnonzero(by_margin))
    assert (by_floor == ((p_weak < 0.6) & (p_strong > p_weak))).all()
    assert set(decide_order(p_weak, p_strong)[: by_floor.sum()]) == set(np.flatnonzero(by_floor))
