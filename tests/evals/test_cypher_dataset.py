"""The NL->Cypher eval set and the few-shot library, checked against the real sample graph.

The sample (``maestro/tools/graph/samples/contract_lineage.cypher``) is loaded once into an embedded
FalkorDB (``open_graph`` with no URL: a server spawned in this module's own data dir). Every gold query
must pass the Cypher guard and return exactly its frozen ``gold_rows`` through ``query_readonly``; every
few-shot example must pass the guard and run; no example may repeat an eval question or query.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from maestro.core.settings import Settings
from maestro.tools.cypher import CypherGuard
from maestro.tools.graph import GraphBackend, open_graph

SAMPLES = resources.files("maestro.tools.graph").joinpath("samples")
SAMPLE = SAMPLES.joinpath("contract_lineage.cypher")
DATASET = resources.files("maestro.evals").joinpath("datasets", "cypher_sample.jsonl")
EXAMPLES = resources.files("maestro.agents.cypher").joinpath("examples.jsonl")
GRAPH = "contract-lineage"
ITEM_KEYS = {"id", "question", "gold_cypher", "gold_columns", "gold_rows", "ordered", "difficulty", "tags"}


def _jsonl(path: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


ITEMS = _jsonl(DATASET)
EXAMPLE_ROWS = _jsonl(EXAMPLES)


def load_sample(backend: GraphBackend, graph: str) -> None:
    """Through the graph loader when it exists; else one ``write`` per ``;``-terminated statement (the
    file keeps ``;`` out of its strings, so splitting on it is exact)."""
    try:
        from maestro.tools.graph.loader import load_file  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        text = SAMPLE.read_text(encoding="utf-8")
        backend.write_many(graph, [(s.strip(), {}) for s in text.split(";") if s.strip()])
        return
    with resources.as_file(SAMPLE) as path:
        load_file(backend, graph, Path(path), replace=True)


@pytest.fixture(scope="module")
def sample_graph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GraphBackend]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("cypher-eval") / "var", graph_url=None, _env_file=None
    )  # type: ignore[call-arg]
    backend = open_graph(settings)
    try:
        load_sample(backend, GRAPH)
        yield backend
    finally:
        backend.close()


def _key(row: list[Any]) -> str:
    return json.dumps(row, sort_keys=True)


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9_]+", text.lower()))


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


# -- the eval set ------------------------------------------------------------------------------------


def test_eval_set_shape() -> None:
    assert len(ITEMS) >= 50
    ids = [item["id"] for item in ITEMS]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    assert len({_norm(item["question"]) for item in ITEMS}) == len(ITEMS), "duplicate questions"
    for item in ITEMS:
        assert set(item) == ITEM_KEYS, item["id"]
        assert re.fullmatch(r"cy-\d{3}", item["id"])
        assert item["difficulty"] in {"easy", "medium", "hard"}
        assert isinstance(item["ordered"], bool) and item["tags"]
        assert item["gold_rows"], f"{item['id']}: an empty gold answer can't tell right from wrong"
        assert all(len(row) == len(item["gold_columns"]) for row in item["gold_rows"])
    assert Counter(item["difficulty"] for item in ITEMS).keys() == {"easy", "medium", "hard"}
    tags = {tag for item in ITEMS for tag in item["tags"]}
    assert {
        "var-length",
        "negation",
        "aggregation",
        "ordering",
        "limit",
        "distinct",
        "schema",
        "policies",
    } <= tags


def test_the_payments_question_has_an_answer() -> None:
    [item] = [i for i in ITEMS if i["question"] == "Which services depend on the payments contract?"]
    assert "CONSUMES" in item["gold_cypher"]
    assert ["payments-api"] not in item["gold_rows"]  # the producer does not consume its own contract
    assert len(item["gold_rows"]) >= 5


@pytest.mark.parametrize("item", ITEMS, ids=[i["id"] for i in ITEMS])
def test_gold_query_returns_gold_rows(sample_graph: GraphBackend, item: dict[str, Any]) -> None:
    verdict = CypherGuard().check(item["gold_cypher"])
    assert verdict.allowed, verdict.reasons
    result = sample_graph.query_readonly(GRAPH, verdict.query, timeout_ms=5_000, row_cap=1_000)
    assert not result.truncated
    assert result.columns == item["gold_columns"]
    if item["ordered"]:
        assert result.rows == item["gold_rows"]
    else:
        assert sorted(map(_key, result.rows)) == sorted(map(_key, item["gold_rows"]))


# -- the sample graph matches its README --------------------------------------------------------------


def test_sample_counts_match_the_readme(sample_graph: GraphBackend) -> None:
    readme = SAMPLES.joinpath("README.md").read_text(encoding="utf-8")
    total = re.search(r"\*\*(\d+) nodes, (\d+) relationships\.\*\*", readme)
    assert total is not None
    labels = {m[1]: int(m[2]) for m in re.finditer(r"^\| `(\w+)` \| (\d+) \|", readme, re.M)}
    rels = {
        m[1]: int(m[2]) for m in re.finditer(r"^\| `\(\w+\)-\[:(\w+)\]->\(\w+\)` \| (\d+) \|", readme, re.M)
    }
    assert len(labels) == 7 and len(rels) == 10

    def counts(query: str) -> dict[str, int]:
        rows = sample_graph.query_readonly(GRAPH, query, timeout_ms=5_000, row_cap=1_000).rows
        return {str(name): int(n) for name, n in rows}

    assert counts("MATCH (n) RETURN labels(n)[0] AS label, count(*) AS n") == labels
    assert counts("MATCH ()-[r]->() RETURN type(r) AS type, count(*) AS n") == rels
    assert (sum(labels.values()), sum(rels.values())) == (int(total[1]), int(total[2]))
    assert 150 <= sum(labels.values()) <= 300 and 400 <= sum(rels.values()) <= 900


def test_sample_file_is_plain_statements() -> None:
    text = SAMPLE.read_text(encoding="utf-8")
    statements = [s.strip() for s in text.split(";") if s.strip()]
    assert all(s.startswith(("CREATE ", "MATCH ")) and "CREATE" in s for s in statements)
    assert all(line.endswith(";") for line in text.splitlines() if line.strip())
    assert "example.com" in text and not re.search(r"@(?!example\.com)[\w.-]+\.\w+'", text)


# -- the few-shot library ---------------------------------------------------------------------------


def test_examples_shape() -> None:
    assert 25 <= len(EXAMPLE_ROWS) <= 60
    for row in EXAMPLE_ROWS:
        assert set(row) <= {"question", "cypher", "params"} and row["question"] and row["cypher"]


@pytest.mark.parametrize(
    "example", EXAMPLE_ROWS, ids=[f"ex-{n:02d}" for n in range(1, len(EXAMPLE_ROWS) + 1)]
)
def test_example_passes_the_guard_and_runs(sample_graph: GraphBackend, example: dict[str, Any]) -> None:
    params = example.get("params") or None
    verdict = CypherGuard().check(example["cypher"], params)
    assert verdict.allowed, verdict.reasons
    result = sample_graph.query_readonly(GRAPH, verdict.query, params, timeout_ms=5_000, row_cap=1_000)
    assert result.rows, "an example should show a query that finds something"


def test_examples_do_not_leak_the_eval_set() -> None:
    eval_questions = {_norm(i["question"]) for i in ITEMS}
    eval_queries = {_norm(i["gold_cypher"]) for i in ITEMS}
    for example in EXAMPLE_ROWS:
        assert _norm(example["question"]) not in eval_questions, example["question"]
        assert _norm(example["cypher"]) not in eval_queries, example["cypher"]
        words = _words(example["question"])
        for item in ITEMS:
            other = _words(item["question"])
            overlap = len(words & other) / len(words | other)
            assert overlap < 0.6, (example["question"], item["question"])
