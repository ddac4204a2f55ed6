"""Line and branch coverage of one module, measured by coverage.py inside the sandbox.

The data and the JSON report are written under ``.maestro-coverage/`` in the worktree (the only place
the sandbox may write that outlives the run) and removed after reading, so they never reach a diff.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from maestro.agents.repo.steps import repo_tools, test_summary
from maestro.agents.runtime.context import RunContext
from maestro.tools.sandbox import JUNIT_XML

__all__ = ["COVERAGE_DIR", "measure"]

COVERAGE_DIR = ".maestro-coverage"


def _command(python: str, target: str, tests: Sequence[str]) -> list[str]:
    data = f"{COVERAGE_DIR}/data"
    run = [
        python, "-m", "coverage", "run", "--branch", f"--data-file={data}", f"--include={target}",
        "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={JUNIT_XML}",
        "-o", "junit_family=xunit1", *tests,
    ]  # fmt: skip
    report = [python, "-m", "coverage", "json", f"--data-file={data}", "-o", f"{COVERAGE_DIR}/cov.json", "-q"]
    script = (
        f"mkdir -p {COVERAGE_DIR}; {shlex.join(run)}; status=$?; "
        f"{shlex.join(report)} >/dev/null 2>&1; exit $status"
    )
    return ["/bin/sh", "-c", script]


def _percentages(report: dict[str, Any], target: str) -> dict[str, Any]:
    files = report.get("files", {})
    summary = next((v["summary"] for k, v in files.items() if k == target or k.endswith("/" + target)), None)
    if summary is None:
        return {"lines": 0.0, "branches": 0.0, "covered_lines": 0, "statements": 0, "missing_lines": []}
    branches = summary.get("num_branches", 0)
    covered_branches = summary.get("covered_branches", 0)
    detail = next(v for k, v in files.items() if k == target or k.endswith("/" + target))
    return {
        "lines": round(100.0 * summary["covered_lines"] / max(1, summary["num_statements"]), 1),
        "branches": round(100.0 * covered_branches / branches, 1) if branches else 100.0,
        "covered_lines": summary["covered_lines"],
        "statements": summary["num_statements"],
        "missing_lines": list(detail.get("missing_lines", []))[:200],
    }


async def measure(ctx: RunContext, worktree: Path, target: str, tests: Sequence[str]) -> dict[str, Any]:
    """Run ``tests`` under coverage for ``target``: the test summary plus ``coverage`` percentages."""
    tools = repo_tools(ctx)
    argv = _command(str(tools.sandbox.python), target, tests)
    ctx.emit("tool", {"tool": "sandbox.coverage", "phase": "start", "target": target})
    result = await asyncio.to_thread(
        tools.sandbox.run, argv, workdir=worktree, timeout_s=tools.test_timeout_s, junit=True
    )
    out = worktree / COVERAGE_DIR
    try:
        report = json.loads((out / "cov.json").read_text()) if (out / "cov.json").is_file() else {}
    except (OSError, json.JSONDecodeError):
        report = {}
    finally:
        shutil.rmtree(out, ignore_errors=True)
    summary = test_summary(result)
    summary["coverage"] = _percentages(report, target)
    ctx.emit(
        "tool",
        {"tool": "sandbox.coverage", "phase": "end", "status": summary["status"], **summary["coverage"]},
    )
    return summary
