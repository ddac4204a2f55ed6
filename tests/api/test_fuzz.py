"""Property-based fuzzing of the OpenAPI schema, once per kind of caller (RELIABILITY.md #32).

schemathesis reads the app's own OpenAPI document and, for every operation, sends schema-derived
requests, valid and invalid (its examples, coverage and fuzzing phases), through an in-process
``TestClient``: the lifespan runs, the state DB is real, the LLM is a ``FunctionLLM``. The run is
repeated for each kind of caller: every role as a user, the ``bot`` role as a user and as a bot, a bot
given ``admin`` (human-only scopes stripped) and no credentials at all, on SQLite; and the admin once
more on PostgreSQL, whose text columns refuse what SQLite accepts (NUL bytes). Whatever arrives:

* never a 5xx;
* the status code, content type, headers and body are ones the schema declares for the operation;
* schema-invalid input is refused with a 4xx;
* no error body carries a stack trace or anything shaped like an API key, and no body at all carries
  a key issued before the run or the ledger's signing key.

Checks left out, and why: ``positive_data_acceptance`` (schema-valid input must be accepted) fails on
rules the schema does not state and the API refuses with 422 by design (an unknown scope or task, an
empty prompt, ``max_tokens`` above a setting); ``allow_header_conformance`` is HTTP hygiene beyond #32
(Starlette's 405 lists only the first matching route's methods in ``Allow``).

On SQLite one app per caller serves every operation (the state barely matters: random ids find
nothing), and generation is derandomized, so a failure replays alone, e.g.
``pytest tests/api/test_fuzz.py -k "POST and keys and not approvals and sqlite-viewer"``. The last tests
pin edges the fuzzer reaches only by luck (NUL bytes, a pasted key, a request no model can serve).
"""

from __future__ import annotations

import base64
import copy
import json
import re
import secrets
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from pydantic import SecretStr
from schemathesis import Case
from schemathesis.schemas import BaseSchema

from maestro.api.main import create_app
from maestro.core.authority import Authority, PrincipalKind
from maestro.core.settings import Settings
from maestro.router.testing import FunctionLLM

pytestmark = pytest.mark.slow

TENANT = "acme"
BASE_URL = "http://testserver"

CALLERS: dict[str, tuple[PrincipalKind, list[str]] | None] = {
    "admin": ("user", ["admin"]),
    "engineer": ("user", ["engineer"]),
    "mlops": ("user", ["mlops"]),
    "viewer": ("user", ["viewer"]),
    "bot-role-user": ("user", ["bot"]),
    "bot": ("bot", ["bot"]),
    "bot-with-admin-role": ("bot", ["admin"]),
    "anonymous": None,
}
"""Who calls: (principal kind, roles), or ``None`` for requests without credentials."""

POSTGRES = pytest.param("postgres", marks=pytest.mark.postgres)
# On PostgreSQL the admin only: every other caller is refused before the handler touches the database.
RUNS = [pytest.param(("sqlite", name), id=f"sqlite-{name}") for name in CALLERS] + [
    pytest.param(("postgres", "admin"), id="postgres-admin", marks=pytest.mark.postgres)
]

STACK_TRACE = ("Traceback (most recent call last)", 'File "')
KEY_SHAPE = re.compile(r"mk_[a-z2-7]{8}_[a-z2-7]{52}")

SCHEMATHESIS_CONFIG = {
    "seed": 32,
    "checks": {
        "positive_data_acceptance": {"enabled": False},
        "allow_header_conformance": {"enabled": False},
    },
}


def _load_schema() -> BaseSchema:
    """The app's own OpenAPI document (building the app reads config files only; nothing starts)."""
    app = create_app(Settings(_env_file=None))  # type: ignore[call-arg]
    config = schemathesis.Config.from_dict(SCHEMATHESIS_CONFIG)
    return schemathesis.openapi.from_dict(copy.deepcopy(app.openapi()), config=config)


schema = _load_schema()


# -- a running app with something in it -------------------------------------------------------------------


@dataclass(frozen=True)
class App:
    client: TestClient
    never_shown: tuple[str, ...]
    """Strings no response may contain: every key issued (whole and secret half), the ledger key."""
    approval_id: str
    """A pending approval, requested by an engineer."""

    def issue_key(self, name: str, roles: list[str], kind: PrincipalKind = "user") -> tuple[App, str]:
        services = self.client.app.state.services  # type: ignore[attr-defined]
        principal = services.principals.create(TENANT, name, roles=roles, kind=kind)
        plaintext = str(services.api_keys.create(principal.id, "fuzz", tenant=TENANT)[0])
        secret = plaintext.rsplit("_", 1)[1]
        return App(self.client, (*self.never_shown, plaintext, secret), self.approval_id), plaintext


@contextmanager
def _running_app(data_dir: Path, database_url: str | None = None) -> Iterator[App]:
    """A running app with another user's key, a routed chat (a decision, ledger entries) and a pending
    approval in it."""
    ledger_key = base64.b64encode(secrets.token_bytes(32)).decode()
    settings = Settings(  # type: ignore[call-arg]
        data_dir=data_dir, database_url=database_url, ledger_key=SecretStr(ledger_key), _env_file=None
    )
    llm = FunctionLLM(lambda messages, call: "ok")
    # A crash reaches the test as the 500 a client would get, body and all (set True to see the traceback).
    with TestClient(create_app(settings, client=llm), raise_server_exceptions=False) as client:
        services = client.app.state.services  # type: ignore[attr-defined]
        requester = services.principals.create(TENANT, "requester", roles=["engineer"])
        plaintext = str(services.api_keys.create(requester.id, "fuzz", tenant=TENANT)[0])
        chat = {"model": "auto", "messages": [{"role": "user", "content": "hello"}]}
        seeded = client.post("/v1/chat/completions", json=chat, headers=_auth(plaintext))
        assert seeded.status_code == 200, seeded.text
        approval = services.approvals.request(
            Authority(principal=requester, scopes=requester.scopes, run_id="run_fuzz"),
            workcell="codegen",
            action="pr.open",
            resource={"kind": "repo", "tenant": TENANT, "id": "payments"},
            reason="open the fix PR",
        )
        yield App(client, (plaintext, plaintext.rsplit("_", 1)[1], ledger_key), approval.id)


def _auth(plaintext: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {plaintext}"}


@pytest.fixture(params=["sqlite", POSTGRES])
def app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[App]:
    """A fresh app on each engine."""
    database_url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    with _running_app(tmp_path / "var", database_url) as running:
        yield running


# -- the fuzz ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Caller:
    app: App
    headers: dict[str, str]


def _caller(app: App, name: str) -> Caller:
    if (spec := CALLERS[name]) is None:
        return Caller(app, {})
    kind, roles = spec
    app, plaintext = app.issue_key(f"fuzz-{name}", roles, kind)
    return Caller(app, _auth(plaintext))


class SharedCallers:
    """One app per caller on SQLite, shared by all the operations: built on first use (so under the
    network guard, which is per test), closed when the module ends."""

    def __init__(self, stack: ExitStack, root: Path) -> None:
        self._stack = stack
        self._root = root
        self._callers: dict[str, Caller] = {}

    def get(self, name: str) -> Caller:
        if name not in self._callers:
            app = self._stack.enter_context(_running_app(self._root / name / "var"))
            self._callers[name] = _caller(app, name)
        return self._callers[name]


@pytest.fixture(scope="module")
def shared_callers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedCallers]:
    with ExitStack() as stack:
        yield SharedCallers(stack, tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(params=RUNS)
def caller(request: pytest.FixtureRequest, tmp_path: Path, shared_callers: SharedCallers) -> Iterator[Caller]:
    """Who the fuzzer is, in which app. On PostgreSQL each operation gets a fresh app, as the database
    (``postgres_url``, from the conftest) lives for one test."""
    engine, name = request.param
    if engine == "sqlite":
        yield shared_callers.get(name)
        return
    with _running_app(tmp_path / "var", request.getfixturevalue("postgres_url")) as app:
        yield _caller(app, name)


def _send(client: TestClient, case: Case, headers: dict[str, str]) -> httpx2.Response:
    """The request schemathesis would send with ``requests``, sent through the app's own TestClient."""
    kwargs = case.as_transport_kwargs(base_url=BASE_URL, headers=headers)
    unsupported = set(kwargs) - {"method", "url", "headers", "params", "cookies", "json", "data"}
    assert not unsupported, f"this API takes JSON bodies only; schemathesis generated {unsupported}"
    request_headers = dict(kwargs["headers"])
    if kwargs["cookies"]:
        request_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in kwargs["cookies"].items())
    if "json" in kwargs:
        content: Any = json.dumps(kwargs["json"], allow_nan=False).encode()
    else:
        content = kwargs.get("data")
    return client.request(
        kwargs["method"], kwargs["url"], params=kwargs["params"], headers=request_headers, content=content
    )


def _leaks(response: httpx2.Response, app: App) -> list[str]:
    text = response.text
    found = [f"the secret {s[:6]}... (issued before the request)" for s in app.never_shown if s in text]
    if response.status_code >= 400:
        found += [f"stack trace marker {marker!r}" for marker in STACK_TRACE if marker in text]
        found += [f"an API key {key[:11]}..." for key in KEY_SHAPE.findall(text)]
    return found


def _assert_no_leaks(response: httpx2.Response, app: App) -> None:
    leaks = _leaks(response, app)
    assert not leaks, (
        f"{response.request.method} {response.request.url} -> {response.status_code}: "
        f"the body carries {'; '.join(leaks)}"
    )


@schema.parametrize()
@hypothesis.settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture],
)
def test_fuzz(case: Case, caller: Caller) -> None:
    response = _send(caller.app.client, case, caller.headers)
    _assert_no_leaks(response, caller.app)
    case.validate_response(response, headers=caller.headers)


# -- edges the fuzzer reaches only by luck ----------------------------------------------------------------


def test_nul_bytes_never_cause_a_server_error(app: App) -> None:
    """schemathesis never puts NUL in a path and rarely in a body; PostgreSQL text refuses it."""
    admin = _auth(app.issue_key("root", ["admin"])[1])
    probes: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", "/v1/router/decisions/dec%00x", None),
        ("GET", "/v1/approvals/apr%00x", None),
        ("POST", "/v1/approvals/apr%00x/grant", {}),
        ("DELETE", "/v1/keys/key%00x", None),
        ("POST", "/v1/keys", {"principal": "re\x00quester", "name": "ci"}),
        ("POST", f"/v1/approvals/{app.approval_id}/refuse", {"note": "not\x00now"}),
    ]
    answers = {
        f"{method} {url} {body}": app.client.request(method, url, json=body, headers=admin)
        for method, url, body in probes
    }
    server_errors = {what: r.status_code for what, r in answers.items() if r.status_code >= 500}
    assert server_errors == {}


def test_a_key_pasted_where_a_key_id_belongs_is_not_echoed(app: App) -> None:
    app, admin = app.issue_key("root", ["admin"])
    services = app.client.app.state.services  # type: ignore[attr-defined]
    outsider = services.principals.create("globex", "groot", roles=["admin"])
    plaintext = str(services.api_keys.create(outsider.id, "theirs", tenant="globex")[0])
    response = app.client.delete(f"/v1/keys/{plaintext}", headers=_auth(admin))
    assert response.status_code == 404
    assert plaintext.rsplit("_", 1)[1] not in response.text, response.text


def test_a_request_no_deployment_can_serve_is_not_a_server_error(app: App) -> None:
    """Only the local model is callable here, and it has no tool calling (the fuzzer finds this with
    ``tools: [{}]`` when the rest of the body happens to be valid)."""
    app, engineer = app.issue_key("eng", ["engineer"])
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    body = {"model": "auto", "messages": [{"role": "user", "content": "look it up"}], "tools": [tool]}
    response = app.client.post("/v1/chat/completions", json=body, headers=_auth(engineer))
    assert response.status_code < 500, response.text
