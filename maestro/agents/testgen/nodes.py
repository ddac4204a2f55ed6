"""The testgen workcell's nodes.

``prepare`` opens the worktree and measures the target's coverage under the existing tests; ``write``
asks the model for a test module (task ``testgen.write``) and writes it as
``tests/test_maestro_<module>.py`` through the edit tools (the only test path the workcell may create);
``check`` runs it alone in the sandbox under coverage with one context per test, keeps each test that
passes and covers a line or branch of the target that the existing suite and the tests kept before it
do not (``selection.select_tests``), cuts the others out of the file, then re-runs the kept tests alone
(they must pass) and with the existing suite (the coverage delta the PR states).
Then the diff guard, an optional approval and the pull request, which lists every test with its verdict.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from langgraph.runtime import Runtime

from maestro.agents.repo.coverage import measure
from maestro.agents.repo.steps import (
    ask_approval,
    generate,
    open_pull_request,
    open_worktree,
    repo_tools,
    review_diff,
    run_tests,
)
from maestro.agents.runtime.context import RunContext
from maestro.agents.testgen.pruning import collected_tests, drop_tests, extract_code
from maestro.agents.testgen.selection import Verdict, select_tests
from maestro.agents.testgen.state import TestgenState
from maestro.core.errors import InvalidRequest
from maestro.prompts.templates import load
from maestro.tools.edits import EditPolicy, EditRejected, apply_edits
from maestro.tools.workspace import Worktree

__all__ = ["approve", "check", "guard", "open_pr", "prepare", "stop", "write"]

WORKCELL = "testgen"
WRITE_MAX_TOKENS = 2_048
POLICY = EditPolicy(allow=("tests/test_maestro_*.py",))


def _worktree(state: TestgenState) -> Worktree:
    return Worktree.from_record(dict(state["worktree"]))


def _module(target: str) -> str:
    return target.removesuffix(".py").replace("/", ".").removeprefix("src.")


async def prepare(state: TestgenState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    target = state["target"]
    worktree = await open_worktree(
        ctx, repo=state["repo"], workcell=WORKCELL, slug=f"tests {target}", base=state.get("base")
    )
    if not (worktree.path / target).is_file():
        raise InvalidRequest(f"{target} is not a file in the repository")
    test_path = f"tests/test_maestro_{Path(target).stem}.py"
    baseline = await measure(ctx, worktree.path, target, state.get("test_args") or [])
    return {"worktree": worktree.to_record(), "test_path": test_path, "baseline": baseline}


async def write(state: TestgenState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    worktree = _worktree(state)
    target = state["target"]
    user = load("testgen_write_user").render(
        target=target,
        module=_module(target),
        source=await asyncio.to_thread(worktree.read, target),
        existing=[t["name"] for t in state["baseline"].get("tests", [])][:40],
        coverage=state["baseline"]["coverage"],
        feedback=state.get("feedback"),
    )
    reply, recorded = await generate(
        ctx,
        task="testgen.write",
        system=load("testgen_write_system").render(),
        user=user,
        max_tokens=WRITE_MAX_TOKENS,
        decisions=state.get("decisions", []),
    )
    code = extract_code(reply)
    path = worktree.path / state["test_path"]
    update: dict[str, Any] = {"reply": reply, "rounds": state.get("rounds", 0) + 1, **recorded}
    try:
        compile(code, state["test_path"], "exec")
        if not collected_tests(code):
            raise SyntaxError("the module defines no test_* functions")
    except SyntaxError as exc:
        return {**update, **_failed(ctx, update["rounds"], f"the test module does not parse: {exc}")}
    path.unlink(missing_ok=True)  # the workcell's own file from an earlier round
    block = f"{state['test_path']}\n<<<<<<< SEARCH\n=======\n{code}>>>>>>> REPLACE\n"
    try:
        await asyncio.to_thread(apply_edits, worktree.path, block, policy=POLICY)
    except EditRejected as exc:
        return {**update, **_failed(ctx, update["rounds"], exc.feedback)}
    return {**update, "feedback": None}


async def check(state: TestgenState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    worktree = _worktree(state)
    test_path, target = state["test_path"], state["target"]
    file = worktree.path / test_path
    source = await asyncio.to_thread(file.read_text)
    alone = await measure(ctx, worktree.path, target, [test_path], per_test=True)
    before = state["baseline"]["coverage"]
    verdicts = select_tests(
        collected_tests(source),
        alone["tests"],
        alone["failures"],
        alone["per_test"],
        covered_lines=before["executed_lines"],
        covered_branches=before["executed_branches"],
    )
    kept = [v for v in verdicts if v.kept]
    ctx.emit(
        "selection",
        {"kept": [v.test for v in kept], "dropped": {v.test: v.reason for v in verdicts if not v.kept}},
    )
    update: dict[str, Any] = {
        "generated": alone,
        "selection": [v.to_record() for v in verdicts],
        "kept": [c for v in kept for c in v.cases],
        "dropped": [c for v in verdicts if not v.kept for c in v.cases],
        "after": None,
    }
    if not kept:
        passed = any(v.reason == "no_new_coverage" for v in verdicts)
        status = "no_gain" if passed else "tests_failing"
        return {
            **update,
            **_failed(ctx, state["rounds"], _nothing_kept(verdicts, alone, before), status=status),
        }
    if len(kept) < len(verdicts):
        pruned = drop_tests(source, [v.test for v in verdicts if not v.kept])
        await asyncio.to_thread(file.write_text, pruned)
    confirmed = await run_tests(ctx, worktree.path, [test_path])
    after = await measure(ctx, worktree.path, target, [*_existing_suite(state), test_path])
    update.update(generated=confirmed, after=after)
    kept_names = {v.test for v in kept}
    broken = _not_passing(confirmed, test_path) | _not_passing(after, test_path)
    if broken or not confirmed["passed"]:
        messages = {f["name"]: f["message"] for f in after["failures"] + confirmed["failures"]}
        why = "\n".join(f"- {n}: {messages.get(n, 'failed')}" for n in sorted(broken))
        feedback = f"the kept tests ({', '.join(sorted(kept_names))}) fail when run again:\n"
        return {**update, **_failed(ctx, state["rounds"], feedback + (why or confirmed["output"][-2000:]))}
    now = after["coverage"]  # counts, not the rounded percentages: one line of a long module counts
    gained = now["covered_lines"] > before["covered_lines"] or len(now["executed_branches"]) > len(
        before["executed_branches"]
    )
    if not gained:
        feedback = "the kept tests cover nothing new when run with the existing suite; " + _uncovered(before)
        return {**update, **_failed(ctx, state["rounds"], feedback, status="no_gain")}
    return {**update, "feedback": None}


def _existing_suite(state: TestgenState) -> list[str]:
    """pytest arguments for the existing suite next to the generated file: ``test_args`` if given, else
    the test files the baseline run collected (with no arguments at all, pytest would run only ours)."""
    if state.get("test_args"):
        return list(state["test_args"])
    files = (t["name"].split("::", 1)[0] for t in state["baseline"].get("tests", []))
    return list(dict.fromkeys(f for f in files if f.endswith(".py") and f != state["test_path"]))


def _not_passing(summary: dict[str, Any], test_path: str) -> set[str]:
    """The generated module's tests that failed or errored in ``summary``'s run."""
    return {
        t["name"]
        for t in summary["tests"]
        if t["name"].split("::", 1)[0] == test_path and t["outcome"] in ("failed", "error")
    }


def _uncovered(coverage: dict[str, Any]) -> str:
    missing = ", ".join(str(n) for n in coverage.get("missing_lines", [])[:40])
    return f"uncovered lines: {missing or 'none'}"


def _nothing_kept(verdicts: list[Verdict], alone: dict[str, Any], before: dict[str, Any]) -> str:
    """The feedback when no generated test is worth keeping."""
    if not any(v.reason == "no_new_coverage" for v in verdicts):
        why = (
            "\n".join(f"- {f['name']}: {f['message']}" for f in alone["failures"]) or alone["output"][-2000:]
        )
        return f"no generated test passed:\n{why}"
    lines = "\n".join(f"- {v.explain()}" for v in verdicts)
    return f"the tests that pass cover nothing new; {_uncovered(before)}\n{lines}"


async def guard(state: TestgenState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    return await review_diff(runtime.context, _worktree(state), what="The tests")


async def approve(state: TestgenState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    return await ask_approval(
        runtime.context,
        _worktree(state),
        resource={"target": state["target"]},
        reason=f"open a pull request adding tests for {state['target']}: {_delta(state)}",
    )


async def open_pr(state: TestgenState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    worktree = _worktree(state)
    delta = _delta(state)
    verdicts = state.get("selection", [])
    kept = [v for v in verdicts if v["kept"]]
    pr = await open_pull_request(
        runtime.context,
        worktree=worktree,
        workcell=WORKCELL,
        title=f"Tests for {state['target']}",
        summary=f"Generated tests for `{state['target']}`: {delta}.",
        why="The module's behaviour was not pinned by tests. Each test kept here passes on the current code "
        "and covers a line or branch of the module that the existing tests (and the tests kept before it) "
        f"do not; the model wrote {len(verdicts)}, {len(kept)} kept.",
        what=[f"added `{state['test_path']}` with {len(kept)} test function(s)"]
        + [_verdict_line(v) for v in verdicts],
        tests=state["generated"],
        test_command=f"python -m pytest {state['test_path']}",
        decisions=state.get("decisions", []),
        labels=["maestro", WORKCELL],
    )
    return {"pr": pr, "status": "opened", "summary": f"Opened {pr.get('id')}: {delta}."}


async def stop(state: TestgenState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    worktree = _worktree(state)
    (worktree.path / state["test_path"]).unlink(missing_ok=True)
    return {
        "status": state.get("failure") or "tests_failing",
        "summary": f"No tests kept after {state.get('rounds', 0)} round(s); no pull request was opened.\n\n"
        f"{state.get('feedback') or ''}".strip(),
    }


def _delta(state: TestgenState) -> str:
    before, after = state["baseline"]["coverage"], (state.get("after") or {})["coverage"]
    return (
        f"line coverage {before['lines']}% -> {after['lines']}%, "
        f"branch coverage {before['branches']}% -> {after['branches']}%"
    )


def _failed(ctx: RunContext, rounds: int, feedback: str, *, status: str = "tests_failing") -> dict[str, Any]:
    """A failed round: the feedback for the model, whether it was the last allowed round, and the status
    the run ends with if it was (``no_gain``: tests passed but none covered anything new)."""
    return {"feedback": feedback, "exhausted": rounds >= repo_tools(ctx).rounds, "failure": status}


def _verdict_line(record: dict[str, Any]) -> str:
    verdict = Verdict(
        test=record["test"],
        reason=record["reason"],
        new_lines=tuple(record["new_lines"]),
        new_branches=tuple((a, b) for a, b in record["new_branches"]),
        message=record.get("message", ""),
    )
    return verdict.explain()
