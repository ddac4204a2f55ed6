"""The codegen workcell's nodes.

``prepare`` opens the run's worktree and runs the tests as they are; ``plan`` asks the model (once per
run) for a few steps and the files they involve, from the task, the repository's file list and the
failing tests (an unreadable plan falls back to the task); ``edit`` asks the model for SEARCH/REPLACE
edits (seeing the task, the plan, the files the plan names and a code search finds, the failing tests
and, on a repair round, why the last round failed); ``apply`` applies them all-or-nothing under the
edit policy (tests, test config, CI config and the verifier are protected); ``verify`` runs the tests
again in the sandbox; ``guard`` scans the diff's added lines for secrets and PII; ``approve`` (when
configured) asks a human; ``open_pr`` commits and opens the pull request once; ``stop`` explains why
there is none.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.runtime import Runtime

from maestro.agents.codegen.plan import PLAN_SCHEMA, Plan, parse_plan
from maestro.agents.codegen.state import CodegenState
from maestro.agents.repo.context import mentioned_paths, pick_files
from maestro.agents.repo.search import related_files
from maestro.agents.repo.steps import (
    ask_approval,
    generate,
    json_schema_format,
    open_pull_request,
    open_worktree,
    repo_tools,
    review_diff,
    run_tests,
    wants_json_schema,
)
from maestro.agents.runtime.context import RunContext
from maestro.prompts.templates import load
from maestro.tools.edits import EditPolicy, EditRejected, apply_edits
from maestro.tools.workspace import Worktree, repository_files

__all__ = ["apply", "approve", "edit", "guard", "open_pr", "plan", "prepare", "stop", "verify"]

WORKCELL = "codegen"
TASK = "codegen.edit"  # the plan is part of making the edit: it is routed (and weighted) the same way
EDIT_MAX_TOKENS = 2_048
PLAN_MAX_TOKENS = 512
PLAN_MAX_LISTED = 300  # repository files listed in the plan prompt


def _worktree(state: CodegenState) -> Worktree:
    return Worktree.from_record(dict(state["worktree"]))


async def prepare(state: CodegenState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    worktree = await open_worktree(
        ctx, repo=state["repo"], workcell=WORKCELL, slug=state["task"], base=state.get("base")
    )
    baseline = await run_tests(ctx, worktree.path, state.get("test_args") or [])
    return {"worktree": worktree.to_record(), "baseline": baseline}


async def plan(state: CodegenState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The task, the repository's files and the failing tests -> a few steps and the files involved."""
    ctx = runtime.context
    worktree = _worktree(state)
    paths = await asyncio.to_thread(repository_files, worktree)
    shown = paths[:PLAN_MAX_LISTED]
    system = load("codegen_plan_system").render()
    user = load("codegen_plan_user").render(
        task=state["task"], files=shown, more=len(paths) - len(shown), tests=state["baseline"]
    )
    structured = wants_json_schema(ctx, task=TASK, system=system, user=user)
    reply, recorded = await generate(
        ctx,
        task=TASK,
        system=system,
        user=user,
        max_tokens=PLAN_MAX_TOKENS,
        decisions=state.get("decisions", []),
        response_format=json_schema_format("codegen_plan", PLAN_SCHEMA) if structured else None,
    )
    made = parse_plan(reply, paths, state["task"])
    event: dict[str, Any] = {
        "parsed": made.source != "fallback",
        "source": made.source,
        "structured": structured,
        "steps": list(made.steps),
        "files": list(made.files),
    }
    if made.note:
        event["note"] = made.note
    ctx.emit("plan", event)
    return {"plan": made.to_record(), **recorded}


async def edit(state: CodegenState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    worktree = _worktree(state)
    tests = state.get("tests") or state["baseline"]
    failures = tests.get("failures", [])
    made = Plan.from_record(state.get("plan") or {})
    query = "\n".join([state["task"], *made.steps, *made.files, *mentioned_paths(failures)])
    ranked = await related_files(ctx, worktree, query)
    files = await asyncio.to_thread(
        pick_files, worktree, query, mentioned_paths(failures), ranked=ranked, planned=made.files
    )
    user = load("codegen_edit_user").render(
        task=state["task"], plan=made.text(), files=files, tests=tests, feedback=state.get("feedback")
    )
    reply, recorded = await generate(
        ctx,
        task=TASK,
        system=load("codegen_edit_system").render(),
        user=user,
        max_tokens=EDIT_MAX_TOKENS,
        decisions=state.get("decisions", []),
    )
    return {"files": files, "reply": reply, "rounds": state.get("rounds", 0) + 1, **recorded}


async def apply(state: CodegenState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    worktree = _worktree(state)
    try:
        report = await asyncio.to_thread(apply_edits, worktree.path, state["reply"], policy=EditPolicy())
    except EditRejected as exc:
        runtime.context.emit("edits", {"applied": False, "problems": len(exc.problems)})
        return {"feedback": exc.feedback, "applied": None, "exhausted": _exhausted(state, runtime)}
    runtime.context.emit("edits", {"applied": True, "changed": report.changed, "created": report.created})
    return {"feedback": None, "applied": report.to_dict()}


async def verify(state: CodegenState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    worktree = _worktree(state)
    tests = await run_tests(ctx, worktree.path, state.get("test_args") or [])
    if tests["status"] == "passed":
        return {"tests": tests, "feedback": None}
    failing = (
        "\n".join(f"- {f['name']}: {f['message']}" for f in tests["failures"]) or tests["output"][-2000:]
    )
    return {
        "tests": tests,
        "feedback": f"the tests still fail ({tests['status']}):\n{failing}",
        "exhausted": _exhausted(state, runtime),
    }


async def guard(state: CodegenState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    return await review_diff(runtime.context, _worktree(state), what="The change")


async def approve(state: CodegenState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    return await ask_approval(
        runtime.context,
        _worktree(state),
        resource={"diff_lines": len(state["diff"].splitlines())},
        reason=f"open a pull request for: {state['task'][:200]}",
    )


async def open_pr(state: CodegenState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    worktree = _worktree(state)
    applied = state.get("applied") or {}
    tests = state["tests"]
    pr = await open_pull_request(
        runtime.context,
        worktree=worktree,
        workcell=WORKCELL,
        title=_title(state["task"]),
        summary=state["task"],
        why=_why(state),
        what=[f"changed `{p}`" for p in applied.get("changed", [])]
        + [f"created `{p}`" for p in applied.get("created", [])],
        plan=_plan_lines(state),
        tests=tests,
        test_command="python -m pytest " + " ".join(state.get("test_args") or []),
        decisions=state.get("decisions", []),
        labels=["maestro", WORKCELL],
    )
    return {
        "pr": pr,
        "status": "opened",
        "summary": f"Opened {pr.get('id')} on {worktree.branch}: {tests['passed']} tests pass.",
    }


async def stop(state: CodegenState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """No PR: say honestly why (the tests still fail, or the edits never applied)."""
    rounds = state.get("rounds", 0)
    if state.get("applied") is None:
        status, head = "edits_failed", f"The model's edits did not apply after {rounds} round(s)."
    else:
        tests = state.get("tests") or {}
        status = "tests_failing"
        head = f"The tests still fail after {rounds} round(s) ({tests.get('failed', '?')} failing)."
    return {
        "status": status,
        "summary": f"{head} No pull request was opened.\n\n{state.get('feedback') or ''}".strip(),
    }


def _exhausted(state: CodegenState, runtime: Runtime[RunContext]) -> bool:
    return state.get("rounds", 0) >= repo_tools(runtime.context).rounds


def _title(task: str) -> str:
    first = task.strip().splitlines()[0] if task.strip() else "change"
    return first if len(first) <= 72 else first[:69] + "..."


def _why(state: CodegenState) -> str:
    baseline = state["baseline"]
    if baseline.get("failed"):
        passed = state["tests"]["passed"]
        return f"Before this change {baseline['failed']} test(s) failed; now all {passed} pass."
    return "Requested task; the repository's tests pass with the change."


def _plan_lines(state: CodegenState) -> list[str]:
    """The plan's steps for the PR body; a fallback plan says that it is one."""
    made = Plan.from_record(state.get("plan") or {})
    if made.source == "fallback":
        return [f"(no plan could be read from the model's reply, so it worked from the task) {made.steps[0]}"]
    return list(made.steps)
