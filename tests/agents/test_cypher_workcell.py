"""The NL->Cypher workcell end to end: real LangGraph, real embedded FalkorDB with the sample graph, the
real guard, policy, catalog, rate limit and ledger. Only the model is fake (``FunctionLLM``): it answers
the generator with queries chosen per test and the answerer with a reply citing rows."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from maestro.api.container import Services, build_services
from maestro.core.authority import Authority, Principal
from maestro.core.errors import InvalidRequest, PolicyDenied
from maestro.core.roles import scopes_for
from maestro.core.settings import Settings
from maestro.router.testing import FunctionLLM
from maestro.router.types import Message, ModelCall

SAMPLE = Path(__file__).parents[2] / "maestro" / "tools" / "graph" / "samples" / "contract_lineage.cypher"
PAYMENTS = "MATCH (s:Service)-[:CONSUMES]->(:DataContract {name: $contract}) RETURN s.name AS service"
PAYMENTS_QUESTION = "Which services depend on the payments contract?"

Generator = Callable[[str, int], str]


def _authority(name: str, roles: list[str], tenant: str = "acme") -> Authority:
    principal = Principal(
        id=f"prn-{name}", tenant=tenant, name=name, kind="user", roles=tuple(roles), scopes=scopes_for(roles)
    )
    return Authority(principal=principal, scopes=principal.scopes)


class Model:
    """The fake model: ``generate(user_prompt, attempt)`` writes the generator's reply; answers cite rows."""

    def __init__(self, generate: Generator, answer: Callable[[str], str] | None = None) -> None:
        self.generate = generate
        self.answer = answer or (lambda prompt: "These services consume it [r1][r2].")
        self.calls: list[tuple[str, ModelCall]] = []
        self.attempt = 0

    def __call__(self, messages: list[Message], call: ModelCall) -> str:
        system = str(messages[0].get("content") or "")
        user = str(messages[-1].get("content") or "")
        if system.startswith("You translate questions"):
            self.calls.append(("generate", call))
            self.attempt += 1
            return self.generate(user, self.attempt)
        self.calls.append(("answer", call))
        return self.answer(user)


def _json(query: str, **params: Any) -> str:
    return json.dumps({"cypher": query, "params": params})


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One data dir for the module: the embedded FalkorDB with the sample graph loaded once."""
    from maestro.tools.graph.loader import load_file

    root = tmp_path_factory.mktemp("cypher")
    settings = _settings(root)
    services = build_services(settings, client=FunctionLLM(lambda m, c: ""))
    try:
        catalog = services.graph_catalog()
        key = catalog.key_for("acme", "sample")
        report = load_file(services.graph(), key, SAMPLE, replace=True)
        catalog.register(
            "acme",
            "sample",
            by="test",
            nodes=report.nodes,
            relationships=report.relationships,
            source=str(SAMPLE),
        )
        yield root
    finally:
        services.graph().close()
        services.close()


def _settings(root: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=root / "var", embedder="hashing", _env_file=None, **overrides)  # type: ignore[call-arg]


@pytest.fixture
def make_services(home: Path) -> Iterator[Callable[..., Services]]:
    built: list[Services] = []

    def make(model: Model, **overrides: Any) -> Services:
        services = build_services(_settings(home, **overrides), client=FunctionLLM(model))
        built.append(services)
        return services

    yield make
    for services in built:
        services.close()


def _ask(services: Services, question: str, authority: Authority, **kw: Any) -> Any:
    return asyncio.run(
        services.runner().start("cypher", {"question": question, "graph": "sample"}, authority, **kw)
    )


ALICE = _authority("alice", ["engineer"])


def test_answers_with_the_right_rows_and_cites_them(make_services: Callable[..., Services]) -> None:
    model = Model(lambda prompt, n: _json(PAYMENTS, contract="payments"))
    services = make_services(model)
    events: list[tuple[str, dict[str, Any]]] = []
    run = _ask(services, PAYMENTS_QUESTION, ALICE, listener=lambda k, p: events.append((k, p)))
    assert run.status == "succeeded", run.error
    out = run.output
    expected = services.graph().query_readonly(
        services.graph_catalog().resolve("acme", "sample").key,
        "MATCH (s:Service)-[:CONSUMES]->(:DataContract {name: 'payments'}) RETURN s.name",
        timeout_ms=5000,
        row_cap=1000,
    )
    assert sorted(r[0] for r in out["rows"]) == sorted(r[0] for r in expected.rows) and len(out["rows"]) == 8
    assert out["columns"] == ["service"] and out["status"] == "answered"
    assert out["query"].startswith(PAYMENTS) and "LIMIT 1000" in out["query"]  # the guard's cap
    assert out["params"] == {"contract": "payments"}
    assert [c["n"] for c in out["citations"]] == [1, 2]
    assert out["citations"][0]["row"] == out["rows"][0]
    assert "Query:" in out["answer"] and PAYMENTS in out["answer"]
    kinds = [k for k, _ in events]
    assert {"node", "model", "tool", "guard"} <= set(kinds)
    nodes = [p["node"] for k, p in events if k == "node"]
    assert nodes == ["introspect", "generate", "check", "preview", "execute", "answer"]
    # JSON-constrained generation, the schema and the few-shot examples in the prompt
    gen_call = next(c for kind, c in model.calls if kind == "generate")
    assert gen_call.response_format is not None and gen_call.response_format["type"] == "json_schema"
    prompt = str(gen_call.messages[-1]["content"])
    assert "(:Service)" in prompt and "-[:CONSUMES]->(:DataContract)" in prompt and "Examples" in prompt
    ledger = {e.kind for e in services.ledger.entries(tenant="acme", limit=100)}
    assert {"run.started", "run.succeeded"} <= ledger


def test_guard_refusal_is_repaired(make_services: Callable[..., Services]) -> None:
    def generate(prompt: str, n: int) -> str:
        if n == 1:
            return _json("MATCH (s:Service) DETACH DELETE s RETURN count(*)")
        assert "the guard refused it" in prompt and "DETACH DELETE" in prompt  # the repair sees why
        return _json(PAYMENTS, contract="payments")

    services = make_services(Model(generate))
    run = _ask(services, PAYMENTS_QUESTION, ALICE)
    out = run.output
    assert run.status == "succeeded" and out["status"] == "answered" and out["attempts"] == 2
    assert out["failures"][0]["stage"] == "guard" and len(out["rows"]) == 8
    key = services.graph_catalog().resolve("acme", "sample").key
    left = services.graph().query_readonly(
        key, "MATCH (s:Service) RETURN count(s)", timeout_ms=5000, row_cap=1
    )
    assert left.rows == [[55]]  # nothing was deleted


def test_database_error_is_repaired_then_gives_up_honestly(make_services: Callable[..., Services]) -> None:
    services = make_services(Model(lambda prompt, n: _json("MATCH (s:Service) RETURN t.name")))
    run = _ask(services, "What are the services?", ALICE)
    out = run.output
    assert run.status == "succeeded" and out["status"] == "unanswered"
    assert out["attempts"] == 3  # one generation and the default two repairs
    assert [f["stage"] for f in out["failures"]] == ["explain", "explain", "explain"]
    assert "could not write a query" in out["answer"] and out["rows"] == []


def test_runtime_error_is_repaired(make_services: Callable[..., Services]) -> None:
    replies = iter([_json("MATCH (s:Service) RETURN s.tier / 0 AS x"), _json(PAYMENTS, contract="payments")])
    services = make_services(Model(lambda prompt, n: next(replies)))
    out = _ask(services, PAYMENTS_QUESTION, ALICE).output
    assert out["status"] == "answered" and out["attempts"] == 2
    assert out["failures"][0]["stage"] == "execute" and "Division by zero" in out["failures"][0]["reason"]


def test_unparseable_model_output_is_repaired(make_services: Callable[..., Services]) -> None:
    replies = iter(["I think you should look at the payments team.", _json(PAYMENTS, contract="payments")])
    services = make_services(Model(lambda prompt, n: next(replies)))
    out = _ask(services, PAYMENTS_QUESTION, ALICE).output
    assert out["status"] == "answered" and out["failures"][0]["stage"] == "generate"


def test_uncited_answer_falls_back_to_listing_the_rows(make_services: Callable[..., Services]) -> None:
    model = Model(lambda p, n: _json(PAYMENTS, contract="payments"), answer=lambda p: "Many services [r99].")
    out = _ask(make_services(model), PAYMENTS_QUESTION, ALICE).output
    assert "[r99]" not in out["answer"] and "8 rows:" in out["answer"]
    assert [c["n"] for c in out["citations"]] == list(range(1, 9))


def test_costly_query_waits_for_approval_and_resumes_in_new_services(
    make_services: Callable[..., Services],
) -> None:
    blast = "MATCH (a:Service)-[:DEPENDS_ON*1..4]->(b:Service) RETURN DISTINCT a.name AS s, b.name AS t"
    model = Model(lambda p, n: _json(blast))
    first = make_services(model, cypher_cost_threshold=10.0)
    run = _ask(first, "Which services reach which others?", ALICE)
    assert run.status == "waiting" and run.approval_id
    first.close()

    bob = _authority("bob", ["admin"])
    with pytest.raises(PolicyDenied):  # the requester cannot approve their own query
        asyncio.run(
            make_services(model, cypher_cost_threshold=10.0).runner().decide(run.id, ALICE, approve=True)
        )
    later = make_services(model, cypher_cost_threshold=10.0)  # as if after a restart
    done = asyncio.run(later.runner().decide(run.id, bob, approve=True, note="fine"))
    assert done.status == "succeeded" and done.output["status"] == "answered"
    assert len(done.output["rows"]) > 20 and done.output["plan"]["estimated_rows"] > 10


def test_rejected_costly_query_is_not_run(make_services: Callable[..., Services]) -> None:
    model = Model(lambda p, n: _json("MATCH (a)-[*1..5]->(b) RETURN count(*) AS paths"))
    services = make_services(model, cypher_cost_threshold=10.0)
    run = _ask(services, "How many paths are there?", ALICE)
    assert run.status == "waiting"
    done = asyncio.run(services.runner().decide(run.id, _authority("bob", ["admin"]), approve=False))
    assert done.status == "rejected" and done.output["status"] == "rejected"
    assert done.output["rows"] == [] and "was not run" in done.output["answer"]
    tools = [e["payload"] for e in services.runner().runs.events(run.id) if e["kind"] == "tool"]
    assert not any(t["tool"] == "graph.query" for t in tools)


def test_another_tenants_graph_does_not_exist(make_services: Callable[..., Services]) -> None:
    services = make_services(Model(lambda p, n: _json(PAYMENTS, contract="payments")))
    run = _ask(services, PAYMENTS_QUESTION, _authority("eve", ["engineer"], tenant="globex"))
    assert run.status == "failed" and run.error is not None and run.error["code"] == "not_found"
    assert "globex" not in json.dumps(services.graph_catalog().list("acme"))


def test_needs_cypher_read(make_services: Callable[..., Services]) -> None:
    services = make_services(Model(lambda p, n: _json(PAYMENTS, contract="payments")))
    viewer = Authority(principal=ALICE.principal, scopes=frozenset({"chat"}))
    with pytest.raises(PolicyDenied):
        _ask(services, PAYMENTS_QUESTION, viewer)
    with pytest.raises(InvalidRequest):
        asyncio.run(services.runner().start("cypher", {"question": "x", "graph": "../etc"}, ALICE))


def test_per_tenant_rate_limit(make_services: Callable[..., Services]) -> None:
    services = make_services(
        Model(lambda p, n: _json(PAYMENTS, contract="payments")), cypher_rate_per_minute=2
    )
    statuses = [_ask(services, PAYMENTS_QUESTION, ALICE) for _ in range(3)]
    assert [r.status for r in statuses] == ["succeeded", "succeeded", "failed"]
    assert statuses[2].error is not None and statuses[2].error["code"] == "rate_limited"


def test_multi_turn_conversation_sees_earlier_queries(make_services: Callable[..., Services]) -> None:
    tier1 = (
        "MATCH (s:Service {tier: 1})-[:CONSUMES]->(:DataContract {name: $contract}) RETURN s.name AS service"
    )
    prompts: list[str] = []

    def generate(prompt: str, n: int) -> str:
        prompts.append(prompt)
        return _json(PAYMENTS, contract="payments") if n == 1 else _json(tier1, contract="payments")

    services = make_services(Model(generate))
    first = _ask(services, PAYMENTS_QUESTION, ALICE)
    second = _ask(services, "And which of those are tier 1?", ALICE, thread_id=first.thread_id)
    assert second.thread_id == first.thread_id and second.status == "succeeded"
    assert "The conversation so far" in prompts[1] and PAYMENTS_QUESTION in prompts[1]
    assert re.search(r"Query: MATCH \(s:Service\)-\[:CONSUMES\]", prompts[1])
    assert 0 < len(second.output["rows"]) < len(first.output["rows"])
    assert second.output["attempts"] == 1 and second.output["failures"] == []  # per-question fields reset
