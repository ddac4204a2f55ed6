"""Repository items (task classes ``testgen.write`` and ``docs.write``): the testgen and docs workcells on
the packaged eval repositories (``maestro/evals/repos/<name>.tar.gz``: ``shelfkit``, ``tillkit``), each
item naming its repository (``repo``) and pinning its archive's hash (``repo_sha256``).

Each item runs the real workcell - worktree, the model's tests or docs, the sandbox (coverage per test,
doctests), repair rounds, the diff guard, the pull request - with every model call pinned to the model
under test. Each repository is a scratch bare remote in the data dir (``scratch.scratch_repo``), every run
starting from its ``eval-base`` commit; the eval's runner opens PRs there through the git backend
(whatever ``MAESTRO_PR_BACKEND`` says) and adds the scratch remotes - nothing else - to the eval
tenant's PR allow-list. After scoring, the run's worktree and branches are removed (``scratch.discard_run``).

* testgen: 1 when the run opened a PR whose kept tests pass (the workcell re-ran them in the sandbox),
  raised the target's coverage and reach the item's ``min_line_coverage``; 0 when it stopped without a
  useful change (``tests_failing``, ``no_gain``, ``refused``...). Metrics: ``tests_written``,
  ``tests_kept``, ``tests_dropped``, ``coverage_before``/``coverage_after`` (line %), ``coverage_delta``
  and ``branch_delta`` (percentage points the PR adds; 0 without a PR), ``rounds``, ``opened``.
* docs: 1 when the run opened a PR whose examples ran (none failed, at least ``min_examples`` passed), with
  the page and the docstrings the item names (read from the PR's branch); else 0. Metrics:
  ``examples_passed``, ``examples_failed``, ``docstrings`` (the share of the named ones present),
  ``page_written``, ``rounds``, ``opened``.

Unmeasured: the run failed (a provider outage, a broken environment: the workcells turn a model's bad
output into a status, not an error), waited for an approval, or a human rejected it.
"""

from __future__ import annotations

import ast
import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from maestro.agents.repo.tooling import RepoTools
from maestro.core.errors import ConfigurationError
from maestro.evals.data import Dataset, Item
from maestro.evals.suites.base import EvalEnv
from maestro.evals.suites.scratch import ScratchRepo, discard_run, eval_workspaces, scratch_repo
from maestro.evals.types import ItemOutcome
from maestro.tools.workspace.git import run_git

if TYPE_CHECKING:
    from maestro.agents.runtime.runner import WorkcellRunner
    from maestro.agents.runtime.store import RunRecord

__all__ = ["RepoSuite", "docstrings_present"]

KINDS = ("testgen", "docs")  # dataset kinds, named after the workcell each runs
MODULE = "<module>"  # in an item's ``docstrings``: the module's own docstring


@dataclass(frozen=True)
class _Prepared:
    env: EvalEnv
    runner: WorkcellRunner
    repos: Mapping[str, ScratchRepo]


class RepoSuite:
    """Runs ``testgen`` or ``docs`` items (one adapter per kind) on their scratch repositories."""

    def __init__(self, kind: str) -> None:
        if kind not in KINDS:
            raise ConfigurationError(
                f"no repository workcell for dataset kind '{kind}' (known: testgen, docs)"
            )
        self.kind = kind
        self._prepared: _Prepared | None = None

    async def prepare(self, env: EvalEnv, dataset: Dataset, items: Sequence[Item]) -> None:
        del dataset
        await self._prepare(env, items)

    async def _prepare(self, env: EvalEnv, items: Sequence[Item]) -> _Prepared:
        """The items' scratch repositories, and a runner whose repository tools open PRs there."""
        tools = env.need(env.repo_tools, "repository tools")
        if not isinstance(tools, RepoTools):
            raise ConfigurationError("the eval environment's repo_tools must build a RepoTools")
        if tools.approval == "always":
            raise ConfigurationError(
                "MAESTRO_REPO_APPROVAL=always: every testgen and docs eval run would wait for a human "
                "before its pull request; run the repo evals where it is 'never'"
            )
        await asyncio.to_thread(tools.sandbox.mode)  # SandboxUnavailable now, not once per item
        repos = dict(self._prepared.repos) if self._prepared and self._prepared.env is env else {}
        for item in items:
            name = str(item.data.get("repo") or "")
            if name not in repos:
                timeout = tools.pr_config.git_timeout_s
                repos[name] = await asyncio.to_thread(
                    scratch_repo, env.settings.data_dir, name, timeout=timeout
                )
            if item.data.get("repo_sha256") != repos[name].sha256:
                raise ConfigurationError(
                    f"item {item.id} was written for another {name}.tar.gz (its repo_sha256 is "
                    f"{item.data.get('repo_sha256')}, the packaged archive's is {repos[name].sha256}): "
                    "bump the dataset's version with the new hash in maestro/evals/datasets"
                )
        config = tools.pr_config
        tenant = env.authority.tenant
        scratch = tuple(str(r.remote) for r in repos.values())
        own = replace(
            tools,
            workspace_root=eval_workspaces(env.settings.data_dir),
            pr_config=replace(
                config,
                repos_allowed={
                    **config.repos_allowed,
                    tenant: (*config.repos_allowed.get(tenant, ()), *scratch),
                },
                default_branch="main",
            ),
        )
        base = env.need(env.runner, "workcell runner")
        self._prepared = _Prepared(env, base.with_tools(repo=own), repos)
        return self._prepared

    async def run(self, env: EvalEnv, dataset: Dataset, item: Item, model: str) -> ItemOutcome:
        prepared = self._prepared
        if prepared is None or prepared.env is not env or item.data.get("repo") not in prepared.repos:
            prepared = await self._prepare(env, [item])
        runner, scratch = prepared.runner, prepared.repos[str(item.data.get("repo"))]
        payload = {"repo": str(scratch.remote), "base": scratch.base, **self._input(item)}
        started = time.perf_counter()
        run = await runner.start(self.kind, payload, env.pinned(model))
        latency = time.perf_counter() - started
        output = run.output or {}
        try:
            unmeasured = _unmeasured(run)
            if unmeasured is not None:
                return ItemOutcome(None, cost_usd=run.cost_usd, latency_s=latency, error=unmeasured)
            score = _score_testgen if self.kind == "testgen" else _score_docs
            value, metrics, error = await asyncio.to_thread(score, scratch, item.data, output)
            return ItemOutcome(value, metrics, cost_usd=run.cost_usd, latency_s=latency, error=error)
        finally:
            if run.status != "waiting":
                await asyncio.to_thread(
                    discard_run, scratch, workcell=self.kind, run_id=run.id, branch=output.get("branch")
                )

    def _input(self, item: Item) -> dict[str, Any]:
        data = item.data
        if self.kind == "testgen":
            return {"target": data["target"]}
        return {"targets": list(data["targets"]), "page": data["page"]}


def _unmeasured(run: RunRecord) -> str | None:
    """Why the run says nothing about the model, or None when it does."""
    if run.status == "waiting":
        return "waited for an approval"
    if run.status == "rejected" or (run.output or {}).get("status") == "rejected":
        return "a human rejected the pull request"
    if run.status != "succeeded" or run.output is None:
        error = run.error or {}
        return f"{error.get('code', run.status)}: {error.get('message', '')}".strip()
    return None


def _score_testgen(
    scratch: ScratchRepo, data: Mapping[str, Any], out: Mapping[str, Any]
) -> tuple[float, dict[str, float | None], str | None]:
    selection = out.get("selection") or []
    before = out.get("coverage_before") or {}
    after = out.get("coverage_after") or {}
    opened = out.get("status") == "opened" and bool(out.get("pr"))
    metrics: dict[str, float | None] = {
        "opened": 1.0 if opened else 0.0,
        "tests_written": float(len(selection)),
        "tests_kept": float(len(out.get("kept") or [])) if opened else 0.0,
        "tests_dropped": float(len(out.get("dropped") or [])),
        "coverage_before": before.get("lines"),
        "coverage_after": after.get("lines") if opened else None,
        "coverage_delta": 0.0,
        "branch_delta": 0.0,
        "rounds": float(out.get("rounds") or 0),
    }
    if not opened:
        return 0.0, metrics, f"status {out.get('status')}: {_first_line(out.get('summary'))}"
    lines = float(after.get("lines") or 0.0) - float(before.get("lines") or 0.0)
    branches = float(after.get("branches") or 0.0) - float(before.get("branches") or 0.0)
    metrics.update(coverage_delta=round(lines, 2), branch_delta=round(branches, 2))
    problems = []
    if not out.get("kept"):
        problems.append("no test kept")
    if lines <= 0 and branches <= 0:
        problems.append("coverage did not rise")
    floor = data.get("min_line_coverage")
    if floor is not None and float(after.get("lines") or 0.0) < float(floor):
        problems.append(f"line coverage {after.get('lines')}% is below the item's {floor}%")
    if _show(scratch, out, str(out.get("test_path") or "")) is None:
        problems.append(f"the PR's branch has no {out.get('test_path')}")
    return (0.0 if problems else 1.0), metrics, "; ".join(problems) or None


def _score_docs(
    scratch: ScratchRepo, data: Mapping[str, Any], out: Mapping[str, Any]
) -> tuple[float, dict[str, float | None], str | None]:
    examples = out.get("examples") or {}
    opened = out.get("status") == "opened" and bool(out.get("pr"))
    wanted: Mapping[str, Sequence[str]] = data.get("docstrings") or {}
    metrics: dict[str, float | None] = {
        "opened": 1.0 if opened else 0.0,
        "examples_passed": float(examples.get("passed") or 0),
        "examples_failed": float(examples.get("failed") or 0),
        "docstrings": 0.0,
        "page_written": 0.0,
        "rounds": float(out.get("rounds") or 0),
    }
    if not opened:
        return 0.0, metrics, f"status {out.get('status')}: {_first_line(out.get('summary'))}"
    problems = []
    missing: list[str] = []
    total = 0
    for path, names in wanted.items():
        total += len(names)
        text = _show(scratch, out, path)
        present = docstrings_present(text or "", names)
        missing += [f"{path}::{n}" for n in names if n not in present]
    metrics["docstrings"] = 1.0 - len(missing) / total if total else 1.0
    page = _show(scratch, out, str(data["page"]))
    metrics["page_written"] = 1.0 if page and page.strip() else 0.0
    if missing:
        problems.append(f"no docstring for {', '.join(missing)}")
    if not metrics["page_written"]:
        problems.append(f"the PR's branch has no {data['page']}")
    if examples.get("failed") or examples.get("status") != "passed":
        problems.append(f"examples {examples.get('status')}: {examples.get('failed') or 0} failed")
    floor = int(data.get("min_examples") or 1)
    if int(examples.get("passed") or 0) < floor:
        problems.append(f"{examples.get('passed') or 0} example(s) ran, the item wants {floor}")
    return (0.0 if problems else 1.0), metrics, "; ".join(problems) or None


def docstrings_present(source: str, names: Sequence[str]) -> set[str]:
    """Which of ``names`` (``<module>``, ``func``, ``Class``, ``Class.method``) have a docstring in
    ``source`` (none when it does not parse)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    found: dict[str, bool] = {MODULE: ast.get_docstring(tree) is not None}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found[node.name] = ast.get_docstring(node) is not None
        if isinstance(node, ast.ClassDef):
            for inner in node.body:
                if isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef):
                    found[f"{node.name}.{inner.name}"] = ast.get_docstring(inner) is not None
    return {name for name in names if found.get(name)}


def _show(scratch: ScratchRepo, out: Mapping[str, Any], path: str) -> str | None:
    """``path`` as the PR's branch on the scratch remote has it (None: no such file or branch)."""
    branch = (out.get("pr") or {}).get("branch") or out.get("branch")
    if not branch or not path:
        return None
    shown = run_git(["show", f"refs/heads/{branch}:{path}"], cwd=scratch.remote, check=False)
    return shown.stdout if shown.returncode == 0 else None


def _first_line(text: object) -> str:
    lines = str(text or "").strip().splitlines()
    return lines[0][:300] if lines else ""
