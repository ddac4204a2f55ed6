"""Line and branch coverage of one module, measured by coverage.py inside the sandbox.

The data and the JSON report are written under ``.maestro-coverage/`` in the worktree (the only place
the sandbox may write that outlives the run) and removed after reading, so they never reach a diff.

``per_test=True`` also says which lines and branches of the module each test covered: a small pytest
plugin (written next to the data, loaded with ``-p``) switches coverage.py's dynamic context to each
test's node id for the test's setup, call and teardown (what pytest-cov's ``--cov-context=test`` does),
and a script run in the sandbox after the tests reads the lines and arcs recorded under each context.
Code run outside any test (imports at collection, session fixtures set up before the first test) is in
the empty context and attributed to no test.
"""

from __future__ import annotations

import asyncio
import json
import shlex
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from maestro.agents.repo.steps import repo_tools, test_summary
from maestro.agents.runtime.context import RunContext
from maestro.tools.sandbox import JUNIT_XML

__all__ = ["COVERAGE_DIR", "measure"]

COVERAGE_DIR = ".maestro-coverage"
PLUGIN = "maestro_test_contexts"
MAX_LISTED = 200  # missing lines kept in the summary (the prompt shows them)

_PLUGIN_SOURCE = '''\
"""Written by Maestro for one coverage run: each test is measured under its node id."""
import coverage
import pytest


def _switch(context):
    cov = coverage.Coverage.current()
    if cov is not None:
        cov.switch_context(context)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    _switch(item.nodeid)
    yield
    _switch("")
'''

_CONTEXTS_SOURCE = '''\
"""Written by Maestro: the lines and arcs of one file under each coverage context, as JSON."""
import json
import re
import sys

import coverage

data_file, target, out = sys.argv[1:4]
data = coverage.CoverageData(basename=data_file)
data.read()
path = next((f for f in sorted(data.measured_files()) if f == target or f.endswith("/" + target)), None)
contexts = {}
for context in sorted(data.measured_contexts()) if path else []:
    data.set_query_contexts(["^" + re.escape(context) + "$"])
    contexts[context] = {"lines": sorted(data.lines(path) or []), "arcs": sorted(data.arcs(path) or [])}
with open(out, "w") as f:
    json.dump({"contexts": contexts}, f)
'''


def _command(python: str, target: str, tests: Sequence[str], *, per_test: bool) -> list[str]:
    data = f"{COVERAGE_DIR}/data"
    run = [
        python, "-m", "coverage", "run", "--branch", f"--data-file={data}", f"--include={target}",
        "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={JUNIT_XML}",
        "-o", "junit_family=xunit1", *(["-p", PLUGIN] if per_test else []), *tests,
    ]  # fmt: skip
    report = [python, "-m", "coverage", "json", f"--data-file={data}", "-o", f"{COVERAGE_DIR}/cov.json", "-q"]
    contexts = [python, f"{COVERAGE_DIR}/contexts.py", data, target, f"{COVERAGE_DIR}/contexts.json"]
    plugin_path = f"PYTHONPATH={COVERAGE_DIR} " if per_test else ""  # where ``-p PLUGIN`` finds it
    dump = f"{shlex.join(contexts)} >/dev/null 2>&1; " if per_test else ""
    script = (
        f"mkdir -p {COVERAGE_DIR}; {plugin_path}{shlex.join(run)}; status=$?; "
        f"{shlex.join(report)} >/dev/null 2>&1; {dump}exit $status"
    )
    return ["/bin/sh", "-c", script]


def _file_report(report: Mapping[str, Any], target: str) -> Mapping[str, Any] | None:
    files = report.get("files", {})
    return next((v for k, v in files.items() if k == target or k.endswith("/" + target)), None)


def _percentages(detail: Mapping[str, Any] | None) -> dict[str, Any]:
    """Percentages, and what was (not) executed: ``executed_lines``, ``executed_branches`` and
    ``branch_arcs`` (every branch of the module, as ``[from, to]``)."""
    if detail is None:
        return {
            "lines": 0.0, "branches": 0.0, "covered_lines": 0, "statements": 0, "missing_lines": [],
            "executed_lines": [], "executed_branches": [], "branch_arcs": [],
        }  # fmt: skip
    summary = detail["summary"]
    branches = summary.get("num_branches", 0)
    executed_branches = [list(a) for a in detail.get("executed_branches", [])]
    return {
        "lines": round(100.0 * summary["covered_lines"] / max(1, summary["num_statements"]), 1),
        "branches": round(100.0 * summary.get("covered_branches", 0) / branches, 1) if branches else 100.0,
        "covered_lines": summary["covered_lines"],
        "statements": summary["num_statements"],
        "missing_lines": list(detail.get("missing_lines", []))[:MAX_LISTED],
        "executed_lines": list(detail.get("executed_lines", [])),
        "executed_branches": executed_branches,
        "branch_arcs": sorted(executed_branches + [list(a) for a in detail.get("missing_branches", [])]),
    }


def _per_test(contexts: Mapping[str, Any], coverage: Mapping[str, Any]) -> dict[str, dict[str, list[Any]]]:
    """Each test's (node id's) statements and branches of the module; the empty context is left out."""
    statements = set(coverage["executed_lines"])
    branches = {tuple(a) for a in coverage["branch_arcs"]}
    out: dict[str, dict[str, list[Any]]] = {}
    for context, seen in contexts.items():
        if not context:
            continue
        out[context] = {
            "lines": sorted(set(seen.get("lines", [])) & statements),
            "branches": sorted(list(a) for a in {tuple(a) for a in seen.get("arcs", [])} & branches),
        }
    return out


def _read_json(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


async def measure(
    ctx: RunContext, worktree: Path, target: str, tests: Sequence[str], *, per_test: bool = False
) -> dict[str, Any]:
    """Run ``tests`` under coverage for ``target``: the test summary plus ``coverage`` (percentages and
    executed lines/branches); with ``per_test``, also ``per_test``: node id -> its lines and branches."""
    tools = repo_tools(ctx)
    argv = _command(str(tools.sandbox.python), target, tests, per_test=per_test)
    out = worktree / COVERAGE_DIR
    if per_test:
        out.mkdir(exist_ok=True)
        (out / f"{PLUGIN}.py").write_text(_PLUGIN_SOURCE)
        (out / "contexts.py").write_text(_CONTEXTS_SOURCE)
    ctx.emit("tool", {"tool": "sandbox.coverage", "phase": "start", "target": target})
    try:
        result = await asyncio.to_thread(
            tools.sandbox.run, argv, workdir=worktree, timeout_s=tools.test_timeout_s, junit=True
        )
        report = _read_json(out / "cov.json")
        contexts = _read_json(out / "contexts.json").get("contexts", {}) if per_test else {}
    finally:
        shutil.rmtree(out, ignore_errors=True)
    summary = test_summary(result)
    summary["coverage"] = _percentages(_file_report(report, target))
    if per_test:
        summary["per_test"] = _per_test(contexts, summary["coverage"])
    ctx.emit(
        "tool",
        {
            "tool": "sandbox.coverage",
            "phase": "end",
            "status": summary["status"],
            **{k: summary["coverage"][k] for k in ("lines", "branches", "covered_lines", "statements")},
        },
    )
    return summary
