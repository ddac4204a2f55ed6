"""The testgen workcell's nodes.

``prepare`` opens the worktree and measures the target's coverage under the existing tests; ``write``
asks the model for a test module (task ``testgen.write``) and writes it as
``tests/test_maestro_<module>.py`` through the edit tools (the only test path the workcell may create);
``check`` runs it alone in the sandbox, drops the tests that fail on the current code, and measures the
existing suite plus the kept tests: the tests stay only if line or branch coverage of the target rose.
Then the diff guard, an optional approval and the pull request stating the delta.
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
)
from maestro.agents.runtime.context import RunContext
from maestro.agents.testgen.pruning import case_key, collected_tests, drop_tests, extract_code
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
    alone = await measure(ctx, worktree.path, target, [test_path])
    failing = [t for t in alone["tests"] if t["outcome"] in ("failed", "error")]
    passing = [t["name"] for t in alone["tests"] if t["outcome"] == "passed"]
    if not passing:
        why = (
            "\n".join(f"- {f['name']}: {f['message']}" for f in alone["failures"]) or alone["output"][-2000:]
        )
        return {"generated": alone, **_failed(ctx, state["rounds"], f"no generated test passed:\n{why}")}
    file = worktree.path / test_path
    if failing:
        source = await asyncio.to_thread(file.read_text)
        pruned = drop_tests(source, [case_key(t["function"], t["classname"]) for t in failing])
        await asyncio.to_thread(file.write_text, pruned)
    after = await measure(ctx, worktree.path, target, [*(state.get("test_args") or []), test_path])
    before = state["baseline"]["coverage"]
    gained = (
        after["coverage"]["lines"] > before["lines"] or after["coverage"]["branches"] > before["branches"]
    )
    update: dict[str, Any] = {
        "generated": alone,
        "kept": passing,
        "dropped": [t["name"] for t in failing],
        "after": after,
    }
    if not gained:
        missing = ", ".join(str(n) for n in before.get("missing_lines", [])[:40])
        feedback = f"the tests pass but cover nothing new; uncovered lines: {missing}"
        return {**update, **_failed(ctx, state["rounds"], feedback)}
    return {**update, "feedback": None}


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
    dropped = state.get("dropped", [])
    pr = await open_pull_request(
        runtime.context,
        worktree=worktree,
        workcell=WORKCELL,
        title=f"Tests for {state['target']}",
        summary=f"Generated tests for `{state['target']}`: {delta}.",
        why="The module's behaviour was not pinned by tests; these pass on the current code.",
        what=[f"added `{state['test_path']}` with {len(state.get('kept', []))} test(s)"]
        + ([f"dropped {len(dropped)} generated test(s) that failed on the current code"] if dropped else []),
        tests=state["generated"],
        test_command=f"python -m pytest {state['test_path']}",
        decisions=state.get("decisions", []),
        labels=["maestro", WORKCELL],
    )
    return {"pr": pr, "status": "opened", "summary": f"Opened {pr.get('id')}: {delta}."}


async def stop(state: TestgenState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    worktree = _worktree(state)
    (worktree.path / state["test_path"]).unlink(missing_ok=True)
    status = "no_gain" if state.get("after") else "tests_failing"
    return {
        "status": status,
        "summary": f"No tests kept after {state.get('rounds', 0)} round(s); no pull request was opened.\n\n"
        f"{state.get('feedback') or ''}".strip(),
    }


def _delta(state: TestgenState) -> str:
    before, after = state["baseline"]["coverage"], state["after"]["coverage"]
    return (
        f"line coverage {before['lines']}% -> {after['lines']}%, "
        f"branch coverage {before['branches']}% -> {after['branches']}%"
    )


def _failed(ctx: RunContext, rounds: int, feedback: str) -> dict[str, Any]:
    """A failed round: the feedback for the model, and whether it was the last allowed round."""
    return {"feedback": feedback, "exhausted": rounds >= repo_tools(ctx).rounds}
