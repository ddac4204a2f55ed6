"""The pull-request body, rendered from structured inputs (deterministic Markdown).

A reviewer reads, in this order: what changed and why, the tests that ran with each result, the router
decisions behind the change with their cost, and the ledger ids that prove it. The same inputs always
give the same bytes (no clock, no randomness), so a retried run that renders again does not churn the
PR, and snapshot tests can pin the format. Every piece of free text goes through ``sanitize_markdown``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from maestro.tools.prs.markdown import sanitize_markdown

__all__ = ["BodyInput", "DecisionLine", "TestResult", "TestRun", "render_body"]

Outcome = Literal["passed", "failed", "skipped", "error"]
_ICONS: dict[str, str] = {"passed": "✅", "failed": "❌", "skipped": "⏭️", "error": "💥"}
MAX_PASSED_ROWS = 100
"""Passed tests listed one per row before the rest are summarised (failures are always all listed)."""


@dataclass(frozen=True, slots=True)
class TestResult:
    """One test's outcome (``detail``: the first line of a failure, optional)."""

    __test__ = False  # not a pytest class

    name: str
    outcome: Outcome
    duration_s: float | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class TestRun:
    """A test command and its per-test results."""

    __test__ = False

    command: str
    results: tuple[TestResult, ...] = ()
    exit_code: int | None = None


@dataclass(frozen=True, slots=True)
class DecisionLine:
    """One router decision: its id, the task class, the chosen model, what it cost."""

    decision_id: str
    task: str
    model: str
    cost_usd: float
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class BodyInput:
    """Everything a PR body says. ``what`` is a list of bullet points, ``plan`` numbered steps."""

    summary: str
    why: str
    what: tuple[str, ...] = ()
    plan: tuple[str, ...] = ()
    tests: tuple[TestRun, ...] = ()
    decisions: tuple[DecisionLine, ...] = ()
    ledger_ids: tuple[str, ...] = ()
    run_id: str | None = None
    workcell: str | None = None
    notes: tuple[str, ...] = field(default=())


def render_body(doc: BodyInput) -> str:
    """The Markdown body: Summary, What, Why, Plan, Tests, Router decisions, Ledger (empty sections
    omitted)."""
    parts: list[str] = [f"## Summary\n\n{_block(doc.summary)}"]
    if doc.what:
        parts.append("## What\n\n" + "\n".join(f"- {_line(item)}" for item in doc.what))
    parts.append(f"## Why\n\n{_block(doc.why)}")
    if doc.plan:
        steps = "\n".join(f"{n}. {_line(step)}" for n, step in enumerate(doc.plan, start=1))
        parts.append(f"## Plan\n\n{steps}")
    parts.append(_tests_section(doc.tests))
    if doc.decisions:
        parts.append(_decisions_section(doc.decisions))
    if doc.ledger_ids or doc.run_id:
        parts.append(_ledger_section(doc))
    if doc.notes:
        parts.append("## Notes\n\n" + "\n".join(f"- {_line(n)}" for n in doc.notes))
    origin = "Opened by Maestro"
    if doc.workcell:
        origin += f" (workcell `{_code(doc.workcell)}`)"
    parts.append(f"---\n_{origin}. Bots open pull requests; humans review and merge._")
    return sanitize_markdown("\n\n".join(parts) + "\n")


def _tests_section(runs: Sequence[TestRun]) -> str:
    if not runs:
        return "## Tests\n\n_No tests were run._"
    lines = ["## Tests"]
    for run in runs:
        counts = Counter(r.outcome for r in run.results)
        tally = ", ".join(f"{counts[o]} {o}" for o in ("passed", "failed", "error", "skipped") if counts[o])
        status = "" if run.exit_code is None else f" (exit code {run.exit_code})"
        lines.append(f"\n`{_code(run.command)}`{status}: {tally or 'no tests collected'}\n")
        if not run.results:
            continue
        lines.append("| test | result | time |\n|---|---|---|")
        passed_shown = 0
        hidden = 0
        for result in run.results:
            if result.outcome == "passed":
                if passed_shown >= MAX_PASSED_ROWS:
                    hidden += 1
                    continue
                passed_shown += 1
            lines.append(_test_row(result))
        if hidden:
            lines.append(f"| _… and {hidden} more passed_ | | |")
    return "\n".join(lines)


def _test_row(result: TestResult) -> str:
    time = "" if result.duration_s is None else f"{result.duration_s:.2f}s"
    outcome = f"{_ICONS[result.outcome]} {result.outcome}"
    if result.detail:
        outcome += f": {_cell(result.detail.splitlines()[0] if result.detail.strip() else '')}"
    return f"| `{_cell(_code(result.name))}` | {outcome} | {time} |"


def _decisions_section(decisions: Sequence[DecisionLine]) -> str:
    lines = [
        "## Router decisions",
        "",
        "| decision | task | model | cost (USD) | why |",
        "|---|---|---|---|---|",
    ]
    for d in decisions:
        lines.append(
            f"| `{_cell(_code(d.decision_id))}` | {_cell(d.task)} | {_cell(d.model)} | {_usd(d.cost_usd)} | "
            f"{_cell(d.reason or '')} |"
        )
    total = sum(d.cost_usd for d in decisions)
    lines.append(f"\nTotal model cost: **{_usd(total)}** over {len(decisions)} call(s).")
    return "\n".join(lines)


def _ledger_section(doc: BodyInput) -> str:
    lines = ["## Ledger", ""]
    if doc.run_id:
        lines.append(f"- run: `{_code(doc.run_id)}`")
    lines.extend(f"- `{_code(entry)}`" for entry in doc.ledger_ids)
    lines.append("\nVerify with `maestro ledger verify`.")
    return "\n".join(lines)


def _usd(value: float) -> str:
    return f"${value:.6f}"


def _block(text: str) -> str:
    return text.strip() or "_(none given)_"


def _line(text: str) -> str:
    return " ".join(text.split())


def _cell(text: str) -> str:
    return _line(text).replace("|", "\\|")


def _code(text: str) -> str:
    return _line(text).replace("`", "'")
