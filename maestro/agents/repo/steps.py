"""The steps every repository workcell takes around its own generation step.

* ``open_worktree`` — a fresh worktree on ``maestro/<workcell>/<slug>`` for the run (reopened, not
  recreated, when LangGraph replays the node after a resume or a redelivery);
* ``run_tests`` — the repository's tests in the sandbox, summarised per test;
* ``guard_diff`` — secrets and PII on the added lines of the diff refuse the change;
* ``open_pull_request`` — commit, then open (or, for a retried run, update) the PR through the PR port,
  as an effect keyed by the run, so it happens once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from maestro.agents.repo.tooling import RepoTools
from maestro.agents.runtime.context import RunContext
from maestro.core.errors import MaestroError, NoEligibleModel
from maestro.router.policy import RouteRequest
from maestro.tools.prs.body import BodyInput, DecisionLine, TestResult, TestRun, render_body
from maestro.tools.sandbox import SandboxResult, run_pytest
from maestro.tools.workspace import Workspace, Worktree

__all__ = [
    "added_lines",
    "ask_approval",
    "generate",
    "guard_diff",
    "json_schema_format",
    "open_pull_request",
    "open_worktree",
    "repo_tools",
    "review_diff",
    "run_tests",
    "test_summary",
    "wants_json_schema",
]

MAX_FAILURES = 10
OUTPUT_TAIL = 4_000


def repo_tools(ctx: RunContext) -> RepoTools:
    tools = ctx.tools.get("repo")
    if not isinstance(tools, RepoTools):
        raise TypeError("repository workcells need tools['repo'] to be a RepoTools")
    return tools


async def open_worktree(
    ctx: RunContext, *, repo: str, workcell: str, slug: str, base: str | None
) -> Worktree:
    tools = repo_tools(ctx)
    return await asyncio.to_thread(
        Workspace.open,
        repo,
        root=tools.workspace_root,
        workcell=workcell,
        slug=slug,
        base=base,
        run=ctx.run_id,
        reuse=True,
    )


def test_summary(result: SandboxResult) -> dict[str, Any]:
    """What the state keeps of a test run: counts, failures with their messages, the output's tail."""
    failures = [
        {"name": t.nodeid, "message": (t.message or "")[:500]}
        for t in result.tests
        if t.outcome in ("failed", "error")
    ]
    return {
        "status": result.status,
        "mode": result.mode,
        "exit_code": result.exit_code,
        "passed": result.count("passed"),
        "failed": result.count("failed") + result.count("error"),
        "skipped": result.count("skipped"),
        "failures": failures[:MAX_FAILURES],
        "tests": [
            {
                "name": t.nodeid,
                "function": t.name,
                "classname": t.classname,
                "outcome": t.outcome,
                "duration_s": t.duration_s,
            }
            for t in result.tests
        ],
        "output": (result.stdout + "\n" + result.stderr).strip()[-OUTPUT_TAIL:],
        "duration_s": round(result.duration_s, 3),
    }


async def run_tests(ctx: RunContext, worktree_path: Path, args: Sequence[str]) -> dict[str, Any]:
    """The repository's tests in the sandbox (``tool`` events around them)."""
    tools = repo_tools(ctx)
    ctx.emit("tool", {"tool": "sandbox.pytest", "phase": "start"})
    result = await asyncio.to_thread(
        run_pytest, worktree_path, list(args), sandbox=tools.sandbox, timeout_s=tools.test_timeout_s
    )
    summary = test_summary(result)
    ctx.emit(
        "tool",
        {
            "tool": "sandbox.pytest",
            "phase": "end",
            "status": summary["status"],
            "passed": summary["passed"],
            "failed": summary["failed"],
            "mode": summary["mode"],
        },
    )
    return summary


def added_lines(diff: str) -> str:
    return "\n".join(
        line[1:] for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++")
    )


async def guard_diff(ctx: RunContext, diff: str) -> list[dict[str, Any]]:
    """Secrets and blocked PII on the diff's added lines (types and line offsets only, never the values)."""
    tools = repo_tools(ctx)
    text = added_lines(diff)
    if not text.strip():
        return []
    findings = await asyncio.to_thread(tools.scan, text)
    return [
        {"type": f.type, "start": f.start, "end": f.end, "score": round(f.score, 2)}
        for f in findings
        if f.type in tools.blocked_entities
    ]


def _tests_run(command: str, summary: Mapping[str, Any]) -> TestRun:
    results = tuple(
        TestResult(
            name=t["name"],
            outcome="error" if t["outcome"] == "error" else t["outcome"],
            duration_s=t.get("duration_s"),
        )
        for t in summary.get("tests", [])
        if t["outcome"] in ("passed", "failed", "skipped", "error")
    )
    return TestRun(command=command, results=results, exit_code=summary.get("exit_code"))


async def open_pull_request(
    ctx: RunContext,
    *,
    worktree: Worktree,
    workcell: str,
    title: str,
    summary: str,
    why: str,
    what: Sequence[str],
    plan: Sequence[str] = (),
    tests: Mapping[str, Any],
    test_command: str,
    decisions: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
) -> dict[str, Any]:
    """Commit the worktree and open the PR once per run (a replay or a retry gets the same PR back)."""
    tools = repo_tools(ctx)

    async def act() -> dict[str, Any]:
        await asyncio.to_thread(worktree.commit, title)
        ledger = await asyncio.to_thread(tools.ledger_ids, ctx.authority.tenant, ctx.run_id)
        body = render_body(
            BodyInput(
                summary=summary,
                why=why,
                what=tuple(what),
                plan=tuple(plan),
                tests=(_tests_run(test_command, tests),),
                decisions=tuple(
                    DecisionLine(
                        decision_id=d["decision_id"], task=d["task"], model=d["model"], cost_usd=d["cost_usd"]
                    )
                    for d in decisions
                ),
                ledger_ids=tuple(ledger),
                run_id=ctx.run_id,
                workcell=workcell,
            )
        )
        backend = tools.prs()
        pr = await asyncio.to_thread(
            backend.open_or_update,
            ctx.authority,
            repo=tools.pr_config.repo(ctx.authority.tenant, worktree.remote_url),
            source=worktree.path,
            branch=worktree.branch,
            title=title,
            body=body,
            labels=tuple(labels),
            idempotency_key=f"{workcell}:{ctx.run_id}",
            ledger_ids=tuple(ledger),
        )
        return pr.to_dict()

    result: dict[str, Any] = await ctx.effect("open_pr", f"pr:{ctx.run_id}", act)
    return result


async def review_diff(ctx: RunContext, worktree: Worktree, *, what: str) -> dict[str, Any]:
    """The guard step's state update: no change, refused (secrets/PII on added lines), or on to the PR
    (``needs_approval`` when the deployment wants a human first). ``what`` names the change in messages."""
    diff = await asyncio.to_thread(worktree.diff)
    if not diff.strip():
        return {"diff": "", "status": "no_change", "summary": f"{what} left the repository unchanged."}
    findings = await guard_diff(ctx, diff)
    if findings:
        kinds = ", ".join(sorted({f["type"] for f in findings}))
        return {
            "diff": diff,
            "findings": findings,
            "status": "refused",
            "summary": f"{what} adds what looks like secrets or personal data ({kinds}); no PR opened.",
        }
    return {"diff": diff, "findings": [], "needs_approval": repo_tools(ctx).approval == "always"}


async def ask_approval(
    ctx: RunContext, worktree: Worktree, *, resource: Mapping[str, Any], reason: str
) -> dict[str, Any]:
    """Pause for a human with ``approve:<workcell>`` before the PR; the state update for either answer."""
    decision = await ctx.approve(
        "approve",
        action="pr.open",
        resource={"repo": worktree.remote_url, "branch": worktree.branch, **resource},
        reason=reason,
    )
    if decision.get("approved"):
        return {"approval": decision}
    note = decision.get("note") or "no reason given"
    return {
        "approval": decision,
        "status": "rejected",
        "summary": f"{decision.get('decided_by')} rejected it ({note}); no PR opened.",
    }


async def generate(
    ctx: RunContext,
    *,
    task: str,
    system: str,
    user: str,
    max_tokens: int,
    decisions: Sequence[Mapping[str, Any]],
    response_format: Mapping[str, Any] | None = None,
) -> tuple[str, dict[str, Any]]:
    """One routed generation (temperature 0): its text, and the state update recording the decision.

    With ``response_format`` (a JSON schema, see ``json_schema_format``) only deployments that support it
    are eligible; when none is, the call is made without it (the caller parses text either way)."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system},
        {"role": "user", "content": user},
    ]
    extra: dict[str, Any] = {}
    if response_format is not None:
        extra = {"requires_json": True, "response_format": dict(response_format)}
    try:
        result = await ctx.complete(
            task=task, messages=messages, temperature=0.0, max_tokens=max_tokens, **extra
        )
    except NoEligibleModel:
        if not extra:
            raise
        # no JSON-capable deployment is eligible right now: ask for text
        result = await ctx.complete(task=task, messages=messages, temperature=0.0, max_tokens=max_tokens)
    decision = {
        "decision_id": result.decision.id,
        "task": task,
        "model": result.model,
        "cost_usd": result.cost_usd,
    }
    return result.text, {"decisions": [*decisions, decision], "budget_used_usd": result.cost_usd}


def json_schema_format(name: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAI-style ``response_format`` asking for JSON that fits ``schema``."""
    return {"type": "json_schema", "json_schema": {"name": name, "schema": dict(schema)}}


def wants_json_schema(ctx: RunContext, *, task: str, system: str, user: str) -> bool:
    """Whether the deployment the router would pick for this call takes a JSON schema.

    Embedded local models (catalog tag ``local``) are asked for text: grammar-constrained JSON makes a
    small model loop instead of answering (the same rule as the RAG answer's ``structured="auto"``).
    Nothing is recorded by this peek; a routing error here means "no" (the real call raises it)."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system},
        {"role": "user", "content": user},
    ]
    request = RouteRequest.for_authority(ctx.authority, task=task, messages=messages)
    try:
        chosen = ctx.router.decide(request, fresh_budget=False).chosen
    except MaestroError:
        return False
    if chosen is None:
        return False
    deployment = ctx.router.catalog.get(chosen)
    return deployment.supports_json_schema and "local" not in deployment.tags
