"""The github PR backend: REST calls replayed from recorded responses (httpx.MockTransport), git push to a
local bare repository standing in for github.com.

The transport asserts every request Maestro makes (method, path, query, JSON body, the bearer token in
the Authorization header) in order, and that nothing else was sent. The token never appears in logs,
errors, the ledger, the state DB or the worktree's .git/config.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine

from maestro.core.authority import Authority, Principal
from maestro.core.authorize import Authorizer
from maestro.core.db import create_db_engine, migrate
from maestro.core.errors import ConfigurationError, InvalidRequest, PolicyDenied
from maestro.core.policy import RegoEngine
from maestro.tools.prs import GitHubError, PRBackend, RepoRef
from maestro.tools.prs.config import PRConfig
from maestro.tools.prs.factory import build_pr_backend
from maestro.tools.prs.github_api import GitHubClient
from maestro.tools.prs.github_backend import GitHubBackend
from maestro.tools.prs.testing import commit_file, ref_sha, scratch_remote

DATA = Path(__file__).parent / "data" / "github"
POLICY_DIR = Path(__file__).resolve().parents[2] / "maestro" / "core" / "policies"
TOKEN = "ghs_" + "Zy9Xw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa99"
BRANCH = "maestro/remediate/run_1"
PULLS = "/repos/acme/app/pulls"


def who(name: str, kind: str, *scopes: str, run_id: str | None = None) -> Authority:
    principal = Principal(id=f"{kind}:{name}", tenant="acme", name=name, kind=kind, scopes=frozenset(scopes))  # type: ignore[arg-type]
    return Authority(principal=principal, scopes=frozenset(scopes), run_id=run_id)


BOT = who("remediator", "bot", "repo:propose", run_id="run_1")
ENGINEER = who("ana", "user", "repo:propose")
MERGER = who("mo", "user", "repo:propose", "repo:merge")


def recorded(name: str, **replace: Any) -> Any:
    doc = json.loads((DATA / name).read_text())
    if isinstance(doc, dict):
        doc.update(replace)
    return doc


@dataclass
class Expect:
    method: str
    path: str
    status: int
    response: Any
    json: Any = None
    params: dict[str, str] | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Replay:
    """A MockTransport handler: each request must match the next expectation; answers are recordings."""

    def __init__(self, *expected: Expect) -> None:
        self.expected = list(expected)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        assert self.expected, f"unexpected request {request.method} {request.url}"
        exp = self.expected.pop(0)
        assert (request.method, request.url.path) == (exp.method, exp.path)
        assert request.headers["authorization"] == f"Bearer {TOKEN}"
        assert request.headers["accept"] == "application/vnd.github+json"
        assert request.url.host == "api.github.com"
        if exp.params is not None:
            assert dict(request.url.params) == exp.params
        if exp.json is not None:
            body = json.loads(request.content)
            for key, value in exp.json.items():
                assert body.get(key) == value, (key, body.get(key), value)
        return httpx.Response(exp.status, json=exp.response, headers=exp.headers)

    def done(self) -> None:
        assert self.expected == [], f"requests not made: {[(e.method, e.path) for e in self.expected]}"


class Recorder:
    def __init__(self) -> None:
        self.entries: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        self.entries.append((kind, payload))


@pytest.fixture(scope="module")
def rego() -> RegoEngine:
    return RegoEngine(POLICY_DIR)


@pytest.fixture
def remote(tmp_path: Path) -> tuple[str, Path]:
    return scratch_remote(tmp_path / "repo")


def backend_for(
    engine: Engine, rego: RegoEngine, replay: Replay, push_url: str, recorder: Recorder | None = None
) -> GitHubBackend:
    record = recorder or Recorder()
    sleeps: list[float] = []
    client = GitHubClient(token=TOKEN, transport=httpx.MockTransport(replay), sleep=sleeps.append)
    return GitHubBackend(
        engine, Authorizer(rego, record=record), record, client=client, token=TOKEN, push_url=push_url
    )


def open_pr(backend: PRBackend, work: Path, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "repo": RepoRef(url="acme/app", tenant="acme", allowed=("acme/app",)),
        "source": work,
        "branch": BRANCH,
        "title": "Fix the weak TLS setting",
        "body": "## Summary\n\nraise TLS\n",
        "labels": ["remediation"],
        "idempotency_key": "run_1:remediate:open_pr",
    }
    args.update(kw)
    return backend.open_or_update(BOT, **args)


def creation(head: str) -> list[Expect]:
    return [
        Expect("GET", PULLS, 200, [], params={"head": f"acme:{BRANCH}", "state": "open"}),
        Expect(
            "POST",
            PULLS,
            201,
            recorded("pulls_create_201.json", head={"sha": head, "ref": BRANCH}),
            json={
                "title": "Fix the weak TLS setting",
                "head": BRANCH,
                "base": "main",
                "body": "## Summary\n\nraise TLS\n",
            },
        ),
        Expect(
            "PUT",
            "/repos/acme/app/issues/42/labels",
            200,
            recorded("issues_labels_200.json"),
            json={"labels": ["remediation"]},
        ),
    ]


def test_open_then_retry_updates_the_same_pull_request(
    sqlite_engine: Engine, rego: RegoEngine, remote: tuple[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url, work = remote
    head = commit_file(work, "tls.conf", "min=1.2\n")
    recorder = Recorder()
    replay = Replay(
        *creation(head),
        Expect(
            "PATCH",
            f"{PULLS}/42",
            200,
            recorded("pulls_update_200.json"),
            json={"title": "Fix TLS (v2)", "base": "main"},
        ),
        Expect(
            "PUT",
            "/repos/acme/app/issues/42/labels",
            200,
            recorded("issues_labels_200.json"),
            json={"labels": ["remediation", "tls"]},
        ),
    )
    backend = backend_for(sqlite_engine, rego, replay, url, recorder)
    pr = open_pr(backend, work)
    assert (pr.number, pr.url, pr.head_sha, pr.backend) == (
        42,
        "https://github.com/acme/app/pull/42",
        head,
        "github",
    )
    assert ref_sha(url, f"refs/heads/{BRANCH}", cwd=work) == head

    second = commit_file(work, "tls.conf", "min=1.3\n")
    again = open_pr(backend, work, title="Fix TLS (v2)", labels=["remediation", "tls"])
    assert (again.id, again.number, again.head_sha) == (pr.id, 42, second)
    assert len(backend.list(BOT)) == 1
    assert ref_sha(url, f"refs/heads/{BRANCH}", cwd=work) == second
    replay.done()
    # the token: in the git process's environment only, nowhere persisted or printed
    env = backend.git.env()
    assert any(
        v.startswith("Authorization: Basic ") for k, v in env.items() if k.startswith("GIT_CONFIG_VALUE_")
    )
    assert TOKEN not in (work / ".git" / "config").read_text()
    assert TOKEN not in caplog.text and TOKEN not in json.dumps(recorder.entries)
    assert TOKEN not in json.dumps(pr.to_dict())
    assert [k for k, _ in recorder.entries] == ["pr.opened", "pr.updated"]


def test_a_pull_request_opened_by_another_process_is_reused(
    sqlite_engine: Engine, rego: RegoEngine, remote: tuple[str, Path], tmp_path: Path
) -> None:
    url, work = remote
    head = commit_file(work, "a.txt", "a\n")
    first = Replay(*creation(head))
    open_pr(backend_for(sqlite_engine, rego, first, url), work)
    first.done()
    other_db = create_db_engine(f"sqlite:///{tmp_path / 'other.db'}")  # another deployment's state DB
    migrate(other_db)
    try:
        replay = Replay(
            Expect(
                "GET",
                PULLS,
                200,
                recorded("pulls_list_open.json"),
                params={"head": f"acme:{BRANCH}", "state": "open"},
            ),
            Expect("PATCH", f"{PULLS}/42", 200, recorded("pulls_update_200.json")),
            Expect("PUT", "/repos/acme/app/issues/42/labels", 200, recorded("issues_labels_200.json")),
        )
        pr = open_pr(backend_for(other_db, rego, replay, url), work)
        assert pr.number == 42
        replay.done()
    finally:
        other_db.dispose()


def test_a_concurrent_creation_422_falls_back_to_the_existing_pull_request(
    sqlite_engine: Engine, rego: RegoEngine, remote: tuple[str, Path]
) -> None:
    url, work = remote
    commit_file(work, "a.txt", "a\n")
    replay = Replay(
        Expect("GET", PULLS, 200, []),
        Expect("POST", PULLS, 422, recorded("pulls_create_422_exists.json")),
        Expect("GET", PULLS, 200, recorded("pulls_list_open.json")),
        Expect("PATCH", f"{PULLS}/42", 200, recorded("pulls_update_200.json")),
        Expect("PUT", "/repos/acme/app/issues/42/labels", 200, recorded("issues_labels_200.json")),
    )
    assert open_pr(backend_for(sqlite_engine, rego, replay, url), work).number == 42
    replay.done()


def test_review_and_merge_call_the_reviews_and_merge_endpoints(
    sqlite_engine: Engine, rego: RegoEngine, remote: tuple[str, Path]
) -> None:
    url, work = remote
    head = commit_file(work, "a.txt", "a\n")
    replay = Replay(
        *creation(head),
        Expect(
            "POST",
            f"{PULLS}/42/reviews",
            200,
            recorded("reviews_create_200.json", commit_id=head),
            json={"event": "APPROVE", "commit_id": head},
        ),
        Expect("PUT", f"{PULLS}/42/merge", 405, recorded("pulls_merge_405.json")),
        Expect(
            "PUT",
            f"{PULLS}/42/merge",
            200,
            recorded("pulls_merge_200.json"),
            json={"merge_method": "merge", "sha": head},
        ),
    )
    backend = backend_for(sqlite_engine, rego, replay, url)
    pr = open_pr(backend, work)
    with pytest.raises(PolicyDenied):  # refused before any request
        backend.merge(who("remediator", "bot", "repo:propose", "repo:merge"), pr.id)
    with pytest.raises(PolicyDenied):
        backend.review(BOT, pr.id, verdict="approve", note="lgtm")
    reviewed = backend.review(ENGINEER, pr.id, verdict="approve", note="thanks")
    assert "Reviewed by `user:ana`" in json.loads(replay.seen[-1].content)["body"]
    assert reviewed.approved
    with pytest.raises(GitHubError, match="not mergeable") as caught:
        backend.merge(MERGER, pr.id)
    assert caught.value.details["status"] == 405 and TOKEN not in str(caught.value.to_dict())
    assert backend.get(MERGER, pr.id).state == "open"
    merged = backend.merge(MERGER, pr.id)
    assert (merged.state, merged.merge_sha) == ("merged", "e5bd3914e2e596debea16f433f57875b5b90bcd6")
    replay.done()


def test_close_patches_the_state(sqlite_engine: Engine, rego: RegoEngine, remote: tuple[str, Path]) -> None:
    url, work = remote
    head = commit_file(work, "a.txt", "a\n")
    replay = Replay(
        *creation(head),
        Expect("PATCH", f"{PULLS}/42", 200, recorded("pulls_close_200.json"), json={"state": "closed"}),
    )
    backend = backend_for(sqlite_engine, rego, replay, url)
    pr = open_pr(backend, work)
    assert backend.close(ENGINEER, pr.id).state == "closed"
    replay.done()


def test_repositories_are_owner_slash_name(
    sqlite_engine: Engine, rego: RegoEngine, remote: tuple[str, Path]
) -> None:
    url, work = remote
    replay = Replay()
    backend = backend_for(sqlite_engine, rego, replay, url)
    bad = RepoRef(url="https://github.com/acme/app", tenant="acme", allowed=("https://github.com/acme/app",))
    with pytest.raises(InvalidRequest, match="owner/name"):
        open_pr(backend, work, repo=bad)
    with pytest.raises(PolicyDenied, match="allow-list"):
        open_pr(backend, work, repo=RepoRef(url="evil/app", tenant="acme", allowed=("acme/app",)))
    assert replay.seen == []


# -- the client: retries and errors ----------------------------------------------------------------------


def client_with(*expected: Expect, max_retries: int = 3) -> tuple[GitHubClient, Replay, list[float]]:
    replay = Replay(*expected)
    sleeps: list[float] = []
    client = GitHubClient(
        token=TOKEN,
        transport=httpx.MockTransport(replay),
        sleep=sleeps.append,
        max_retries=max_retries,
        clock=lambda: 1000.0,
    )
    return client, replay, sleeps


def test_5xx_and_secondary_rate_limits_are_retried_honouring_retry_after() -> None:
    client, replay, sleeps = client_with(
        Expect("POST", PULLS, 502, recorded("error_502.json")),
        Expect("POST", PULLS, 403, recorded("secondary_rate_limit_403.json"), headers={"Retry-After": "7"}),
        Expect("POST", PULLS, 429, {"message": "slow down"}, headers={"x-ratelimit-reset": "1030"}),
        Expect("POST", PULLS, 201, recorded("pulls_create_201.json")),
    )
    assert client.request("POST", PULLS, json={"title": "t"})["number"] == 42
    assert sleeps == [1.0, 7.0, 30.0]
    replay.done()


def test_retries_are_bounded_and_long_waits_are_reported_not_slept() -> None:
    client, _, sleeps = client_with(
        *[Expect("GET", PULLS, 502, recorded("error_502.json"))] * 3, max_retries=2
    )
    with pytest.raises(GitHubError, match="after 3 attempts"):
        client.request("GET", PULLS)
    assert sleeps == [1.0, 2.0]
    client, _, sleeps = client_with(
        Expect("GET", PULLS, 403, recorded("secondary_rate_limit_403.json"), headers={"Retry-After": "3600"})
    )
    with pytest.raises(GitHubError, match="retry after 3600s"):
        client.request("GET", PULLS)
    assert sleeps == []


@pytest.mark.parametrize(
    ("status", "name", "expected"),
    [
        (401, "error_401.json", "Bad credentials"),
        (404, "error_404.json", "Not Found"),
        (422, "pulls_create_422_exists.json", "A pull request already exists"),
    ],
)
def test_client_errors_fail_at_once_with_githubs_message(status: int, name: str, expected: str) -> None:
    client, replay, sleeps = client_with(Expect("POST", PULLS, status, recorded(name)))
    with pytest.raises(GitHubError, match=expected) as caught:
        client.request("POST", PULLS, json={})
    assert caught.value.details["status"] == status and sleeps == []
    assert TOKEN not in str(caught.value.to_dict())
    replay.done()


# -- configuration and the factory -----------------------------------------------------------------------


def test_factory_reads_the_token_variable_and_never_shows_it(sqlite_engine: Engine, rego: RegoEngine) -> None:
    config = PRConfig(backend="github", github_api_url="https://ghe.example.com/api/v3")
    assert config.resolved_push_url == "https://ghe.example.com/{repo}.git"
    assert PRConfig().resolved_push_url == "https://github.com/{repo}.git"
    record = Recorder()
    authorizer = Authorizer(rego, record=record)
    with pytest.raises(ConfigurationError, match="MAESTRO_GITHUB_TOKEN"):
        build_pr_backend(config, engine=sqlite_engine, authorizer=authorizer, record=record, environ={})
    built = build_pr_backend(
        config,
        engine=sqlite_engine,
        authorizer=authorizer,
        record=record,
        environ={"MAESTRO_GITHUB_TOKEN": TOKEN},
    )
    assert isinstance(built, GitHubBackend) and isinstance(built, PRBackend)
    git = build_pr_backend(PRConfig(), engine=sqlite_engine, authorizer=authorizer, record=record, environ={})
    assert git.name == "git"


def test_config_from_settings_defaults_and_allow_lists() -> None:
    @dataclass
    class FakeSettings:
        pr_repos_allowed: dict[str, list[str]]
        pr_backend: str = "git"

    config = PRConfig.from_settings(FakeSettings({"acme": ["acme/app"]}))
    assert config.repo("acme", "acme/app").allowed == ("acme/app",)
    assert config.repo("globex", "acme/app").allowed == ()
    with pytest.raises(ConfigurationError):
        PRConfig.from_settings(FakeSettings({}, pr_backend="gitlab"))
    assert PRConfig.from_settings(object()) == PRConfig()
