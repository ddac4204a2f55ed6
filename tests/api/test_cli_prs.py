"""``maestro prs list|show|review|merge`` through the real entry point (subprocesses).

A bot opens a pull request through the git backend in this process (state DB and ledger in the test's
data dir, a local bare repository as the remote); the human at the terminal lists it, reads its body,
approves it and merges it, and the remote's default branch then holds the bot's commit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maestro.api.container import build_services
from maestro.core.authority import Authority, Principal
from maestro.core.settings import Settings
from maestro.tools.prs import BodyInput, RepoRef, TestResult, TestRun, render_body
from maestro.tools.prs.git_backend import GitBackend
from maestro.tools.prs.testing import commit_file, is_ancestor, ref_sha, scratch_remote

if TYPE_CHECKING:
    from conftest import MaestroCli  # tests/api/conftest.py: the `cli` fixture


def _json(done: Any, code: int = 0) -> Any:
    assert done.returncode == code, done.stderr
    return json.loads(done.stdout)


def _open_pr(tmp_path: Path) -> tuple[str, str, Path, str]:
    """A bot's PR in tenant 'default' of ``tmp_path/var``: (pr id, remote url, worktree, head)."""
    url, work = scratch_remote(tmp_path / "repo")
    head = commit_file(work, "tls.conf", "min=1.2\n")
    settings = Settings(data_dir=tmp_path / "var", _env_file=None)  # type: ignore[call-arg]
    services = build_services(settings, eager_policy=False)
    try:
        principal = Principal(
            id="bot:remediator",
            tenant="default",
            name="remediator",
            kind="bot",
            scopes=frozenset({"repo:propose"}),
        )
        bot = Authority(principal=principal, scopes=principal.scopes, run_id="run_1")
        backend = GitBackend(services.engine, services.authorizer, services.record)
        body = render_body(
            BodyInput(
                summary="Raise TLS to 1.2.",
                why="SC-8.",
                tests=(TestRun("pytest -q", (TestResult("test_tls", "passed", 0.01),), exit_code=0),),
                ledger_ids=("led_1",),
                run_id="run_1",
            )
        )
        pr = backend.open_or_update(
            bot,
            repo=RepoRef(url=url, tenant="default", allowed=(url,)),
            source=work,
            branch="maestro/remediate/run_1",
            title="Fix the weak TLS setting",
            body=body,
            labels=["remediation"],
            idempotency_key="run_1:remediate",
        )
    finally:
        services.close()
    return pr.id, url, work, head


def test_list_show_review_merge(tmp_path: Path, cli: MaestroCli) -> None:
    pr_id, url, work, head = _open_pr(tmp_path)

    listed = _json(cli(["prs", "list", "--json"], tmp_path))
    assert listed["tenant"] == "default"
    [summary] = listed["pull_requests"]
    assert summary["id"] == pr_id and summary["state"] == "open" and "body" not in summary
    assert summary["labels"] == ["remediation"] and summary["head_sha"] == head

    shown = _json(cli(["prs", "show", pr_id, "--json"], tmp_path))
    assert shown["body"].startswith("## Summary") and "| `test_tls` | ✅ passed | 0.01s |" in shown["body"]
    assert shown["opened_by"] == "bot:remediator" and shown["reviews"] == []
    human = cli(["prs", "show", pr_id], tmp_path)
    assert human.returncode == 0 and "Fix the weak TLS setting" in human.stderr and "## Why" in human.stderr

    missing = _json(cli(["prs", "show", "pr_nope", "--json"], tmp_path), code=1)
    assert missing["error"]["code"] == "not_found"
    other_tenant = _json(cli(["prs", "show", pr_id, "--tenant", "globex", "--json"], tmp_path), code=1)
    assert other_tenant["error"]["code"] == "not_found"  # the same answer as for an id that never existed
    assert "default" not in other_tenant["error"]["message"] and "TLS" not in json.dumps(other_tenant)

    unapproved = _json(cli(["prs", "merge", pr_id, "--json"], tmp_path), code=2)
    assert "no approving review" in unapproved["error"]["message"]
    both = cli(["prs", "review", pr_id, "--approve", "--request-changes"], tmp_path)
    assert both.returncode == 2

    reviewed = _json(cli(["prs", "review", pr_id, "--approve", "--note", "looks right", "--json"], tmp_path))
    [review] = reviewed["reviews"]
    assert (
        review["verdict"] == "approve"
        and review["note"] == "looks right"
        and review["by"].startswith("local:")
    )

    merged = _json(cli(["prs", "merge", pr_id, "--json"], tmp_path))
    assert merged["state"] == "merged" and merged["merged_by"].startswith("local:")
    assert ref_sha(url, "refs/heads/main", cwd=work) == merged["merge_sha"]
    assert is_ancestor(url, head, "refs/heads/main", cwd=work)

    assert _json(cli(["prs", "list", "--state", "open", "--json"], tmp_path))["pull_requests"] == []
    assert _json(cli(["prs", "list", "--state", "bogus", "--json"], tmp_path), code=2)["error"]
