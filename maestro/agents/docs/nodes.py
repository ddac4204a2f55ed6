"""The docs workcell's nodes.

``prepare`` opens the worktree and keeps the targets' sources; ``write`` asks the model (task
``docs.write``) for SEARCH/REPLACE edits adding docstrings and creating the page; ``apply`` applies them
under the edit policy and refuses any file other than the targets and the page; ``verify`` checks that
the code is unchanged but for docstrings (syntax trees compared), that every relative link of the page
resolves, and runs every example — the page's and the docstrings' doctests — in the sandbox. Then the
diff guard, an optional approval and the pull request.
"""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.runtime import Runtime

from maestro.agents.docs.checks import broken_links, code_unchanged
from maestro.agents.docs.state import DocsState
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
from maestro.core.errors import InvalidRequest
from maestro.prompts.templates import load
from maestro.tools.edits import EditPolicy, EditRejected, apply_edits
from maestro.tools.workspace import Worktree

__all__ = ["apply", "approve", "guard", "open_pr", "prepare", "stop", "verify", "write"]

WORKCELL = "docs"
WRITE_MAX_TOKENS = 2_048  # the local model's output limit; a page and docstrings fit


def _worktree(state: DocsState) -> Worktree:
    return Worktree.from_record(dict(state["worktree"]))


def _failed(ctx: RunContext, state: DocsState, feedback: str) -> dict[str, Any]:
    return {"feedback": feedback, "exhausted": state.get("rounds", 0) >= repo_tools(ctx).rounds}


async def prepare(state: DocsState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    worktree = await open_worktree(
        runtime.context,
        repo=state["repo"],
        workcell=WORKCELL,
        slug=f"docs {' '.join(state['targets'])}",
        base=state.get("base"),
    )
    originals: dict[str, str] = {}
    for target in state["targets"]:
        if not (worktree.path / target).is_file():
            raise InvalidRequest(f"{target} is not a file in the repository")
        originals[target] = await asyncio.to_thread(worktree.read, target)
    if (worktree.path / state["page"]).is_file():  # an existing page is rewritten from its base text
        originals[state["page"]] = await asyncio.to_thread(worktree.read, state["page"])
    return {"worktree": worktree.to_record(), "originals": originals}


async def write(state: DocsState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Each round starts from the original files (a repair rewrites the docs, it does not patch a patch)."""
    ctx = runtime.context
    worktree = _worktree(state)
    if state.get("rounds", 0):
        await asyncio.to_thread(_restore, worktree, state)
    files = [{"path": t, "text": await asyncio.to_thread(worktree.read, t)} for t in state["targets"]]
    user = load("docs_write_user").render(page=state["page"], files=files, feedback=state.get("feedback"))
    reply, recorded = await generate(
        ctx,
        task="docs.write",
        system=load("docs_write_system").render(),
        user=user,
        max_tokens=WRITE_MAX_TOKENS,
        decisions=state.get("decisions", []),
    )
    return {"reply": reply, "rounds": state.get("rounds", 0) + 1, **recorded}


def _restore(worktree: Worktree, state: DocsState) -> None:
    originals = state["originals"]
    for path, text in originals.items():
        (worktree.path / path).write_text(text, encoding="utf-8")
    page = worktree.path / state["page"]
    if state["page"] not in originals:
        page.unlink(missing_ok=True)


async def apply(state: DocsState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    worktree = _worktree(state)
    allowed = {*state["targets"], state["page"]}
    try:
        planned = await asyncio.to_thread(apply_edits, worktree.path, state["reply"], dry_run=True)
        stray = sorted({*planned.changed, *planned.created, *planned.deleted} - allowed)
        if stray:
            return _failed(
                ctx, state, f"only {', '.join(sorted(allowed))} may change; not: {', '.join(stray)}"
            )
        report = await asyncio.to_thread(apply_edits, worktree.path, state["reply"], policy=EditPolicy())
    except EditRejected as exc:
        return _failed(ctx, state, exc.feedback)
    return {"feedback": None, "applied": report.to_dict()}


async def verify(state: DocsState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    ctx = runtime.context
    worktree = _worktree(state)
    problems: list[str] = []
    for target in state["targets"]:
        before = state["originals"][target]
        after = await asyncio.to_thread(worktree.read, target)
        if not code_unchanged(before, after):
            problems.append(f"{target}: the code changed, not only docstrings (or it no longer parses)")
    page = state["page"]
    if not (worktree.path / page).is_file():
        problems.append(f"the page {page} was not written")
    else:
        text = await asyncio.to_thread(worktree.read, page)
        missing = broken_links(worktree.path, page, text)
        if missing:
            problems.append(f"{page}: links to files that do not exist: {', '.join(missing)}")
    args = ["--doctest-modules", *state["targets"]]
    if (worktree.path / page).is_file():
        args += ["--doctest-glob=*.md", page]
    examples = await run_tests(ctx, worktree.path, args)
    if examples["status"] != "passed":
        failing = "\n".join(f"- {f['name']}: {f['message']}" for f in examples["failures"])
        problems.append(f"examples that do not run as written:\n{failing or examples['output'][-1500:]}")
    if problems:
        return {"examples": examples, **_failed(ctx, state, "\n".join(problems))}
    return {"examples": examples, "feedback": None}


async def guard(state: DocsState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    return await review_diff(runtime.context, _worktree(state), what="The docs")


async def approve(state: DocsState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    return await ask_approval(
        runtime.context,
        _worktree(state),
        resource={"page": state["page"]},
        reason=f"open a pull request documenting {', '.join(state['targets'])}",
    )


async def open_pr(state: DocsState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    worktree = _worktree(state)
    applied = state.get("applied") or {}
    examples = state["examples"]
    pr = await open_pull_request(
        runtime.context,
        worktree=worktree,
        workcell=WORKCELL,
        title=f"Docs for {', '.join(state['targets'])}"[:72],
        summary=f"Docstrings for {', '.join(f'`{t}`' for t in state['targets'])} "
        f"and the page `{state['page']}`.",
        why="Undocumented code. Every example in the page and the docstrings runs, every repository link "
        "resolves, and the code is unchanged but for docstrings (syntax trees compared).",
        what=[f"changed `{p}`" for p in applied.get("changed", [])]
        + [f"created `{p}`" for p in applied.get("created", [])],
        tests=examples,
        test_command="python -m pytest --doctest-modules --doctest-glob=*.md",
        decisions=state.get("decisions", []),
        labels=["maestro", WORKCELL],
    )
    return {
        "pr": pr,
        "status": "opened",
        "summary": f"Opened {pr.get('id')}: {examples['passed']} example(s) run.",
    }


async def stop(state: DocsState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    status = "edits_failed" if state.get("applied") is None else "checks_failing"
    return {
        "status": status,
        "summary": f"The docs did not pass the checks after {state.get('rounds', 0)} round(s); "
        f"no pull request was opened.\n\n{state.get('feedback') or ''}".strip(),
    }
