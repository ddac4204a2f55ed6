"""The eval harness's parts on real engines: datasets and their hashes, estimates, noise vs change, the
runner (resume, unmeasured items, an environment that cannot run a dataset), the report, the schedule,
the Cypher suite on the real sample graph, and the CLI's JSON. Only the model is scripted."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from maestro.api.container import Services, build_services
from maestro.core.errors import ConfigurationError, InvalidRequest
from maestro.core.schedule import due_in, parse_cron
from maestro.core.settings import Settings
from maestro.evals.data import content_sha256, load_items, load_manifest, resolve_suite
from maestro.evals.fit import compare, fit_weights
from maestro.evals.humaneval import load_problems
from maestro.evals.report import build_report
from maestro.evals.stats import estimate
from maestro.evals.store import EvalStore
from maestro.evals.types import ItemOutcome, ResultRow
from maestro.evals.weekly import run_schedule
from maestro.router.testing import FunctionLLM
from maestro.router.types import Message, ModelCall
from maestro.router.weights import Estimate, Weights, dump_weights, parse_weights

LOCAL = "local/smollm2-135m"

# -- datasets ---------------------------------------------------------------------------------------------


def test_every_dataset_matches_its_manifest_hash_and_loads() -> None:
    manifest = load_manifest()
    assert set(manifest.suites["weekly"]) == {
        "humaneval",
        "cypher_sample",
        "rag_python311",
        "testgen_shelfkit",
        "docs_shelfkit",
    }
    for dataset in manifest.datasets.values():
        assert content_sha256(dataset) == dataset.sha256, dataset.name
        items = load_items(dataset)
        assert len(items) == dataset.items
    assert len({i.id for i in load_items(manifest.datasets["humaneval"])}) == 164


def test_a_changed_dataset_is_refused_and_unknown_suites_are_named() -> None:
    dataset = replace(load_manifest().datasets["cypher_sample"], sha256="0" * 64)
    with pytest.raises(ConfigurationError, match="changed without a new version"):
        load_items(dataset)
    with pytest.raises(InvalidRequest, match="weekly"):
        resolve_suite("nope")
    assert [d.name for d in resolve_suite("cypher_sample")] == ["cypher_sample"]


# -- estimates, noise and change -------------------------------------------------------------------------


def test_unmeasured_scores_are_left_out_never_averaged_as_zero() -> None:
    found = estimate([1.0, 1.0, None, float("nan"), 0.0])
    assert found.samples == 3 and found.mean == pytest.approx(2 / 3)
    assert found.low is not None and found.high is not None and found.low < 2 / 3 < found.high
    assert not estimate([None, float("nan")]).measured
    assert ItemOutcome(float("nan"), {"m": float("inf")}).score is None
    with pytest.raises(ValueError):
        ItemOutcome(1.5)
    graded = estimate([0.2, 0.4, 0.9, 0.7])
    assert graded == estimate([0.2, 0.4, 0.9, 0.7])  # seeded bootstrap: the same interval every time
    perfect = estimate([1.0] * 20)
    assert perfect.high == 1.0 and perfect.low is not None and 0.8 < perfect.low < 0.9  # Wilson, not a point


def _weights(**models: Estimate) -> Weights:
    return Weights("w-1", 0.5, {"chat": 0.5}, {"chat": None}, {"chat": dict(models)})


def _rows(model: str, scores: list[float | None], task: str = "chat") -> list[ResultRow]:
    return [
        ResultRow("eval_x", "d", f"i{n}", model, task, s, {}, 0.0, None, None) for n, s in enumerate(scores)
    ]


def test_compare_tells_change_from_noise() -> None:
    prior = _weights(a=Estimate(0.3, 0, (0.0, 0.6)))
    few = fit_weights(prior, _rows("a", [1.0] * 5), version="v2")
    assert not compare(prior, few, min_samples=10)[0].significant  # 5 items do not replace a prior
    many = fit_weights(prior, _rows("a", [1.0] * 12), version="v2")
    (change,) = compare(prior, many, min_samples=10)
    assert change.significant and change.new.samples == 12

    measured = _weights(a=Estimate(0.8, 50, (0.7, 0.9)))
    noise = fit_weights(measured, _rows("a", [1.0] * 17 + [0.0] * 3), version="v3")  # 0.85: inside
    assert [c.significant for c in compare(measured, noise)] == [False]
    drop = fit_weights(measured, _rows("a", [1.0] * 8 + [0.0] * 32), version="v3")  # 0.2: both ways out
    assert [c.significant for c in compare(measured, drop)] == [True]
    unmeasured = fit_weights(measured, _rows("a", [None, None]), version="v3")
    assert compare(measured, unmeasured) == []  # nothing measured: the entry stays


def test_weights_yaml_round_trips() -> None:
    text = (Path(__file__).parents[2] / "maestro" / "router" / "weights.yaml").read_text()
    weights = parse_weights(text)
    again = parse_weights(dump_weights(weights))
    assert again.floors == weights.floors and again.cost_ceilings == weights.cost_ceilings
    for task, models in weights.estimates.items():
        for model, est in models.items():
            assert again.estimate(task, model).quality == pytest.approx(est.quality, abs=5e-4)


# -- runner, report --------------------------------------------------------------------------------------


class Coder:
    """A scripted model: HumanEval's canonical solutions, except for the problems in ``wrong``."""

    def __init__(self, wrong: set[str] | None = None, fail: bool = False) -> None:
        self.problems = {p["entry_point"]: (t, p["canonical_solution"]) for t, p in load_problems().items()}
        self.wrong = wrong or set()
        self.fail = fail
        self.calls = 0

    def __call__(self, messages: list[Message], call: ModelCall) -> str:
        self.calls += 1
        user = str(messages[-1].get("content") or "")
        names = [n for n in re.findall(r"def (\w+)\(", user) if n in self.problems]
        task_id, solution = self.problems[names[-1]]
        return "    return None\n" if task_id in self.wrong else solution


@pytest.fixture
def make_services(tmp_path: Path) -> Iterator[Callable[..., Services]]:
    built: list[Services] = []

    def make(model: Any, **overrides: Any) -> Services:
        settings = Settings(data_dir=tmp_path / "var", embedder="hashing", _env_file=None, **overrides)  # type: ignore[call-arg]
        services = build_services(settings, client=FunctionLLM(model))
        built.append(services)
        return services

    yield make
    for services in built:
        services.close()


class Stop(Exception):
    pass


def test_an_interrupted_run_resumes_without_repeating_items(make_services: Callable[..., Services]) -> None:
    coder = Coder(wrong={"HumanEval/1"})
    services = make_services(coder)
    runner = services.eval_runner(services.eval_authority())

    def stop_after_three(label: str, done: int, total: int) -> None:
        if done == 3:
            raise Stop

    with pytest.raises(Stop):
        asyncio.run(runner.run("humaneval", [LOCAL], limit=6, concurrency=1, progress=stop_after_three))
    (interrupted,) = runner.store.list_runs(services.settings.default_tenant)
    assert interrupted.status == "failed" and "--resume" in (interrupted.note or "")
    stored = len(runner.store.done_keys(interrupted.id))
    assert stored == 3 and coder.calls <= 3 + 1  # at most the one item in flight is lost
    before = coder.calls

    summary = asyncio.run(runner.run("humaneval", [], run_id=interrupted.id, concurrency=2))
    assert summary.run.status == "finished" and summary.ran == 3 and summary.pairs == 6
    assert coder.calls - before == 3  # only what was not stored ran again
    rows = runner.store.results(services.settings.default_tenant, interrupted.id)
    assert sorted((r.item_id, r.score) for r in rows)[:2] == [("HumanEval/0", 1.0), ("HumanEval/1", 0.0)]
    assert all(r.cost_usd >= 0 and r.latency_s is not None for r in rows)
    with pytest.raises(InvalidRequest, match="finished"):
        asyncio.run(runner.run("humaneval", [], run_id=interrupted.id))
    kinds = [e.kind for e in services.ledger.entries(tenant=services.settings.default_tenant, limit=50)]
    assert kinds.count("eval.started") == 1 and kinds.count("eval.finished") == 1


def test_a_dataset_the_environment_cannot_run_is_unmeasured_not_zero(
    make_services: Callable[..., Services],
) -> None:
    services = make_services(Coder())
    runner = services.eval_runner(services.eval_authority())
    runner.env.rag = None  # this environment has no RAG service
    summary = asyncio.run(runner.run("rag", [LOCAL], limit=3))
    assert summary.unmeasured == 3
    rows = runner.store.results(services.settings.default_tenant, summary.run.id)
    assert {r.score for r in rows} == {None} and all("no RAG service" in (r.error or "") for r in rows)
    report = build_report(summary.run, rows, None)
    assert "unmeasured" in report.markdown() and report.lines[0].quality.samples == 0
    current = services.router.weights
    assert compare(current, fit_weights(current, rows, version="x")) == []


def test_unknown_models_and_bad_arguments_are_refused(make_services: Callable[..., Services]) -> None:
    services = make_services(Coder())
    runner = services.eval_runner(services.eval_authority())
    with pytest.raises(InvalidRequest, match="not in the model catalog"):
        asyncio.run(runner.run("humaneval", ["no-such-model"]))
    with pytest.raises(InvalidRequest, match="at least one model"):
        asyncio.run(runner.run("humaneval", []))
    assert runner.store.list_runs(services.settings.default_tenant) == []  # nothing half-recorded


def test_the_report_flags_a_regression_against_the_previous_run(
    make_services: Callable[..., Services],
) -> None:
    store = EvalStore(make_services(Coder()).engine)
    runs = []
    for scores in ([1.0] * 20, [1.0] * 5 + [0.0] * 15):
        run = store.create_run(tenant="t", suite="s", models=["m"], datasets={}, started_by="x")
        for n, score in enumerate(scores):
            store.record(
                run.id,
                dataset="d",
                item_id=f"i{n}",
                model="m",
                task_class="chat",
                outcome=ItemOutcome(score, cost_usd=0.001),
            )
        runs.append(store.finish("t", run.id, "finished"))
    previous = store.previous_finished("t", runs[1])
    assert previous is not None and previous.id == runs[0].id
    report = build_report(
        runs[1], store.results("t", runs[1].id), (previous, store.results("t", previous.id))
    )
    assert [r.model for r in report.regressions] == ["m"]
    assert "REGRESSION" in report.markdown()
    page = report.html()
    assert "<svg" in page and "class='regress'" in page
    assert not store.record(
        runs[1].id, dataset="d", item_id="i0", model="m", task_class="chat", outcome=ItemOutcome(1.0)
    )


# -- schedule ---------------------------------------------------------------------------------------------


def test_cron_parsing_and_due_times() -> None:
    with pytest.raises(ConfigurationError, match="five fields"):
        parse_cron("weekly")
    with pytest.raises(ConfigurationError, match="MAESTRO_EVAL_SCHEDULE"):
        parse_cron("0 99 * * 1")
    monday_3am = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # a Monday
    assert due_in("0 3 * * 1", None) == timedelta(0)
    wait = due_in("0 3 * * 1", monday_3am, now=lambda: monday_3am + timedelta(days=1))
    assert timedelta(days=5, hours=23) < wait <= timedelta(days=6)
    late = due_in("0 3 * * 1", monday_3am, now=lambda: monday_3am + timedelta(days=8))
    assert late <= timedelta(0)  # the machine was off at the due time: due now


def test_the_in_process_schedule_runs_a_due_cycle_once(make_services: Callable[..., Services]) -> None:
    services = make_services(Coder())
    store = EvalStore(services.engine)
    cycles: list[str] = []

    async def main() -> None:
        stop = asyncio.Event()

        async def cycle() -> object:
            run = store.create_run(tenant="acme", suite="weekly", models=["m"], datasets={}, started_by="x")
            store.finish("acme", run.id, "finished")
            cycles.append(run.id)
            return run

        task = asyncio.create_task(
            run_schedule(store, "acme", "0 3 * * 1", cycle, suite="weekly", stop=stop, max_sleep_s=0.05)
        )
        await asyncio.sleep(0.5)
        stop.set()
        await task

    asyncio.run(main())
    assert len(cycles) == 1  # never run before: due at once; then not due for a week


# -- the Cypher suite on the real sample graph ---------------------------------------------------------


def test_cypher_items_score_execution_accuracy_on_the_sample_graph(
    make_services: Callable[..., Services],
) -> None:
    items = {i.id: i.data for i in load_items(load_manifest().datasets["cypher_sample"])}
    gold = {str(d["question"]): str(d["gold_cypher"]) for d in items.values()}

    def model(messages: list[Message], call: ModelCall) -> str:
        system, user = str(messages[0].get("content") or ""), str(messages[-1].get("content") or "")
        if system.startswith("You translate questions"):
            question = next(q for q in sorted(gold, key=len, reverse=True) if q in user)
            wrong = question.startswith("List all tier-1")  # the scripted model gets cy-002 wrong
            query = "MATCH (s:Service) RETURN s.name AS service LIMIT 1" if wrong else gold[question]
            return json.dumps({"cypher": query, "params": {}})
        return "Here is what the graph says [r1]."

    services = make_services(model)
    runner = services.eval_runner(services.eval_authority())
    summary = asyncio.run(runner.run("cypher", [LOCAL], limit=4, concurrency=1))
    rows = {r.item_id: r for r in runner.store.results(services.settings.default_tenant, summary.run.id)}
    assert set(rows) == {"cy-001", "cy-002", "cy-003", "cy-004"}
    assert rows["cy-002"].score == 0.0 and "rows differ" in (rows["cy-002"].error or "")
    assert [rows[i].score for i in ("cy-001", "cy-003", "cy-004")] == [1.0, 1.0, 1.0], [
        r.error for r in rows.values()
    ]
    assert rows["cy-001"].metrics["exec_accuracy"] == 1.0
    # the graph was loaded once into the eval tenant's own graph
    (entry,) = services.graph_catalog().list(services.settings.default_tenant)
    assert entry.name == services.settings.eval_cypher_graph and entry.nodes > 200


# -- the RAG suite on a real collection -------------------------------------------------------------------


def test_rag_items_score_cited_sources_and_ragas_metrics(
    make_services: Callable[..., Services], tmp_path: Path
) -> None:
    """A small corpus holding each item's gold file (its evidence sentence plus filler), ingested for the
    eval tenant; the scripted model answers with the evidence and cites source [1]."""
    items = load_items(load_manifest().datasets["rag_python311"])[:3]
    corpus = tmp_path / "docs"
    for item in items:
        page = corpus / str(item.data["source"])
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(
            f"{item.data['evidence']}. {item.data['answer']}\n\nUnrelated notes about other modules.\n"
        )

    def model(messages: list[Message], call: ModelCall) -> str:
        user = str(messages[-1].get("content") or "")
        item = next(i for i in items if str(i.data["question"]) in user)
        return f"{item.data['answer']} [1]"

    services = make_services(model)
    tenant = services.settings.default_tenant
    services.ingestor().ingest(
        [corpus], collection=services.settings.eval_rag_collection, tenant=tenant, root=corpus
    )
    runner = services.eval_runner(services.eval_authority())
    summary = asyncio.run(runner.run("rag", [LOCAL], limit=3, concurrency=1))
    rows = runner.store.results(tenant, summary.run.id)
    assert len(rows) == 3 and summary.unmeasured == 0, [r.error for r in rows]
    for row in rows:
        assert set(row.metrics) >= {"source_hit", "answer_similarity", "context_precision", "context_recall"}
        assert row.metrics["context_recall"] is not None and row.metrics["context_recall"] > 0.5
        assert row.score is not None and 0.0 < row.score <= 1.0
    assert sum(r.metrics["source_hit"] or 0 for r in rows) >= 2  # the retrieved top chunk is the gold file
