"""The testgen and docs eval sets on the packaged repositories (shelfkit, tillkit), through the real
workcells: the scratch bare remote made from the archive, worktrees, the sandbox (coverage per test,
doctests), the git PR backend, LangGraph and SQLite. Only the model is scripted (tests/evals/conftest.py):
``good`` writes useful tests and docs, ``poor`` tests that fail or cover too little and examples that do
not run, ``lazy`` docs that run but leave a function undocumented. Each archive must hold exactly its
fixture repository, and every item must be achievable: its target exists, and for tillkit a reference test
module (tests/fixtures/tillkit_answers) passes on the current code and reaches the item's coverage."""

from __future__ import annotations

import ast
import asyncio
import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import coverage
import pytest

from maestro.api.container import Services
from maestro.evals.data import Item, load_items, load_manifest
from maestro.evals.suites.repo import MODULE, docstrings_present
from maestro.evals.types import ItemOutcome
from maestro.tools.prs.store import PRStore

if TYPE_CHECKING:
    from conftest import Git  # tests/evals/conftest.py: the `git` fixture

ROOT = Path(__file__).parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
REPOS = {"shelfkit": FIXTURES / "sample_repo", "tillkit": FIXTURES / "tillkit"}
ANSWERS = FIXTURES / "tillkit_answers"
ARCHIVES = ROOT / "maestro" / "evals" / "repos"
TENANT = "acme"  # the default tenant of conftest's services
MIN_ITEMS = 12  # per task class: above MAESTRO_EVAL_MIN_SAMPLES (10), so a run replaces the prior


def _items(dataset: str, repo: str | None = None) -> list[Item]:
    items = load_items(load_manifest().datasets[dataset])
    return [i for i in items if repo is None or i.data["repo"] == repo]


@pytest.mark.parametrize("name", sorted(REPOS))
def test_the_archive_holds_exactly_the_fixture_repository(name: str) -> None:
    archive, fixture = ARCHIVES / f"{name}.tar.gz", REPOS[name]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(archive.read_bytes())), mode="r:") as tar:
        members = tar.getmembers()
        packed = {m.name: tar.extractfile(m).read() for m in members}  # type: ignore[union-attr]
    skipped = {"__pycache__", ".pytest_cache", ".coverage"}
    on_disk = {
        p.relative_to(fixture).as_posix(): p.read_bytes()
        for p in fixture.rglob("*")
        if p.is_file() and not skipped & set(p.relative_to(fixture).parts) and p.suffix != ".pyc"
    }
    assert packed == on_disk, f"rebuild it: python scripts/build_eval_repo.py {name}"
    assert [m.name for m in members] == sorted(packed)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {(0, 0, 0, "", "", 0o644)}
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_eval_repo.py"), "--check", name],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr  # a rebuild gives the same tar stream


def test_each_task_class_has_enough_distinct_items_on_existing_targets() -> None:
    packed = {
        name: hashlib.sha256(gzip.decompress((ARCHIVES / f"{name}.tar.gz").read_bytes())).hexdigest()
        for name in REPOS
    }
    for dataset in ("testgen_shelfkit", "docs_shelfkit"):
        items = _items(dataset)
        assert len(items) >= MIN_ITEMS, dataset
        targets = [(i.data.get("target"), i.data.get("page")) for i in items]
        assert len(set(targets)) == len(items), f"{dataset}: two items ask for the same thing"
        for item in items:
            fixture = REPOS[item.data["repo"]]
            assert item.data["repo_sha256"] == packed[item.data["repo"]] and item.data["expect"], item.id
            for target in [item.data["target"]] if "target" in item.data else item.data["targets"]:
                assert (fixture / target).is_file(), f"{item.id}: no {target}"
    for item in _items("docs_shelfkit"):
        fixture = REPOS[item.data["repo"]]
        assert not (fixture / item.data["page"]).exists(), (
            f"{item.id}: the page exists (the model cannot see it)"
        )
        assert set(item.data["docstrings"]) <= set(item.data["targets"]), item.id
        for path, names in item.data["docstrings"].items():
            assert set(names) <= _defined(fixture / path), f"{item.id}: {path} does not define all of {names}"


def _defined(path: Path) -> set[str]:
    """``<module>``, the top-level functions and classes, and ``Class.method`` of ``path``."""
    tree = ast.parse(path.read_text())
    names = {MODULE}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        if isinstance(node, ast.ClassDef):
            names |= {f"{node.name}.{f.name}" for f in node.body if isinstance(f, ast.FunctionDef)}
    return names


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in ``cwd``; pytest loads none of the venv's plugins (the fixture needs none, and
    importing them takes seconds)."""
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    env.pop("COVERAGE_PROCESS_START", None)
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_every_tillkit_item_is_achievable(tmp_path: Path) -> None:
    """testgen: the reference module of each item passes on the current code (bugs included) and, run
    with the existing suite, raises the target's line coverage to the item's ``min_line_coverage``.
    docs: every target's doctests run today, but for the stale example the refunds item is about; each
    item names at least one docstring that is missing, or has that example to fix."""
    repo = tmp_path / "tillkit"
    shutil.copytree(REPOS["tillkit"], repo)
    testgen = _items("testgen_shelfkit", "tillkit")
    for item in testgen:
        answer = ANSWERS / f"test_maestro_{Path(item.data['target']).stem}.py"
        shutil.copy(answer, repo / "tests" / answer.name)
    config = "[run]\nbranch = True\nsource = tillkit\ndynamic_context = test_function\n"  # context per test
    (repo / ".coveragerc").write_text(config)
    ran = _run(
        ["-m", "coverage", "run", "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml=j.xml"], repo
    )
    cases = ET.parse(repo / "j.xml").getroot().iter("testcase")
    failed = {f"{c.get('classname')}.{c.get('name')}" for c in cases if c.find("failure") is not None}
    assert failed == {"tests.test_loyalty.test_silver_from_500_points"}, ran.stdout[-3000:]  # the known bug

    cov = coverage.Coverage(data_file=str(repo / ".coverage"), config_file=str(repo / ".coveragerc"))
    cov.load()
    data = cov.get_data()
    contexts = data.measured_contexts()
    existing = [c for c in contexts if not c.startswith("test_maestro_")]  # "" (imports) and the suite's
    for item in testgen:
        target = str(repo / item.data["target"])
        statements = set(cov.analysis2(target)[1])
        mine = [c for c in contexts if c.startswith(f"test_maestro_{Path(target).stem}.")]
        assert mine, f"{item.id}: the reference tests ran under no context"
        before = _lines(data, target, existing) & statements
        after = _lines(data, target, existing + mine) & statements
        percent = 100.0 * len(after) / len(statements)
        assert len(after) > len(before), f"{item.id}: the reference tests cover nothing new"
        assert percent >= item.data["min_line_coverage"], f"{item.id}: {percent:.1f}% < the item's floor"

    doctests = _run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--doctest-modules", "tillkit"], repo)
    stale = "tillkit/refunds.py::tillkit.refunds.refund_amount"  # the dc-till-refunds item's stale example
    assert "1 failed" in doctests.stdout and stale in doctests.stdout, doctests.stdout[-3000:]
    for item in _items("docs_shelfkit", "tillkit"):
        ((path, names),) = item.data["docstrings"].items()
        missing = set(names) - docstrings_present((repo / path).read_text(), names)
        assert missing or path == "tillkit/refunds.py", f"{item.id}: every docstring it names exists"


def _lines(data: coverage.CoverageData, path: str, contexts: list[str]) -> set[int]:
    """The lines of ``path`` run under any of ``contexts``."""
    data.set_query_contexts(["^(" + "|".join(map(re.escape, contexts)) + ")$"])
    return set(data.lines(path) or [])


def test_repo_suite_scores_useful_tests_and_docs_one_and_failures_zero(
    make_repo_services: Callable[..., Services], git: Git
) -> None:
    services = make_repo_services()  # no MAESTRO_PR_REPOS_ALLOWED: the eval allows its scratch remotes only
    runner = services.eval_runner(services.eval_authority())
    summary = asyncio.run(runner.run("repo", ["good", "poor"], limit=1, concurrency=2))
    rows = {(r.dataset, r.model): r for r in runner.store.results(TENANT, summary.run.id)}
    assert summary.pairs == 4 and summary.unmeasured == 0, [r.error for r in rows.values()]

    good = rows["testgen_shelfkit", "good"]
    assert good.item_id == "tg-stock" and good.task_class == "testgen.write"
    assert good.score == 1.0, good.error
    metrics = good.metrics
    assert metrics["opened"] == 1.0 and metrics["tests_written"] == 5.0
    assert metrics["tests_kept"] == 4.0 and metrics["tests_dropped"] == 1.0  # the wrong expectation
    assert metrics["coverage_before"] == 0.0 and (metrics["coverage_after"] or 0) > 60
    assert metrics["coverage_delta"] == metrics["coverage_after"] and (metrics["branch_delta"] or 0) > 0
    poor = rows["testgen_shelfkit", "poor"]
    assert poor.score == 0.0 and "tests_failing" in (poor.error or "")
    assert poor.metrics["opened"] == 0.0 and poor.metrics["coverage_delta"] == 0.0

    docs = rows["docs_shelfkit", "good"]
    assert docs.item_id == "dc-report" and docs.task_class == "docs.write"
    assert docs.score == 1.0, docs.error
    assert docs.metrics["docstrings"] == 1.0 and docs.metrics["page_written"] == 1.0
    assert (docs.metrics["examples_passed"] or 0) >= 2 and docs.metrics["examples_failed"] == 0.0
    bad_docs = rows["docs_shelfkit", "poor"]
    assert bad_docs.score == 0.0 and "checks_failing" in (bad_docs.error or "")
    assert all(r.cost_usd > 0 for r in rows.values())  # the pinned models' calls were settled

    # the PRs went to the scratch remote (the eval harness opened them); their branches are cleaned up
    prs = PRStore(services.engine).list(TENANT)
    assert len(prs) == 2 and {p.opened_by for p in prs} == {"eval-harness"}
    (scratch,) = {Path(p.repo) for p in prs}
    assert scratch.is_relative_to(services.settings.data_dir / "evals" / "repos")
    assert "maestro/" not in git("branch", "--list", cwd=scratch)
    assert "eval-base" in git("tag", cwd=scratch)
    workspaces = services.settings.data_dir / "evals" / "workspaces"
    assert {p.name for p in (workspaces / "worktrees").iterdir()} == {"testgen", "docs"}
    assert not list((workspaces / "worktrees").glob("*/*"))  # each run's worktree removed
    (clone,) = (workspaces / "repos").glob("*.git")
    assert "maestro/" not in git("branch", "--list", cwd=clone)  # and its local branch

    # a second run on the same scratch remote: no collision; docs that leave a function bare score 0
    again = asyncio.run(runner.run("docs_shelfkit", ["lazy"], limit=1))
    (lazy,) = runner.store.results(TENANT, again.run.id)
    assert lazy.score == 0.0 and lazy.metrics["opened"] == 1.0
    assert "no docstring for shelfkit/report.py::summarize" in (lazy.error or "")
    assert lazy.metrics["docstrings"] == pytest.approx(2 / 3)
    assert len(PRStore(services.engine).list(TENANT)) == 3


def _outcomes(services: Services, pairs: list[tuple[str, str, str]]) -> dict[tuple[str, str], ItemOutcome]:
    """Each (dataset, item id, model) of ``pairs`` run by its dataset's suite adapter, two at a time as
    ``maestro eval run`` does, keyed by (item id, model)."""
    runner = services.eval_runner(services.eval_authority())
    specs = {name: load_manifest().datasets[name] for name, _, _ in pairs}
    items = {(name, i.id): i for name, spec in specs.items() for i in load_items(spec)}
    gate = asyncio.Semaphore(2)

    async def one(dataset: str, item_id: str, model: str) -> tuple[tuple[str, str], ItemOutcome]:
        spec, item = specs[dataset], items[dataset, item_id]
        async with gate:
            return (item_id, model), await runner.adapter(spec.kind).run(runner.env, spec, item, model)

    async def run() -> dict[tuple[str, str], ItemOutcome]:
        for name, spec in specs.items():
            wanted = [items[name, item_id] for dataset, item_id, _ in pairs if dataset == name]
            await runner.adapter(spec.kind).prepare(runner.env, spec, wanted)
        return dict(await asyncio.gather(*(one(*pair) for pair in pairs)))

    return asyncio.run(run())


def test_tillkit_items_score_end_to_end(make_repo_services: Callable[..., Services], git: Git) -> None:
    """tg-till-coupons: the good tests are kept but the one asserting the documented minimum spend (the
    code's ``<=`` bug) is dropped, and coverage reaches the floor; the poor module passes but covers too
    little. dc-till-refunds: the good docs correct the stale docstring example; the poor ones leave it."""
    services = make_repo_services()
    pairs = [
        (dataset, item, model)
        for dataset, item in (("testgen_shelfkit", "tg-till-coupons"), ("docs_shelfkit", "dc-till-refunds"))
        for model in ("good", "poor")
    ]
    outcomes = _outcomes(services, pairs)
    good, poor = outcomes["tg-till-coupons", "good"], outcomes["tg-till-coupons", "poor"]
    assert good.score == 1.0, good.error
    assert good.metrics["tests_written"] == 6.0 and good.metrics["tests_dropped"] == 1.0
    assert good.metrics["coverage_before"] == 0.0 and (good.metrics["coverage_after"] or 0) >= 90
    assert poor.score == 0.0 and poor.metrics["opened"] == 1.0  # a PR, but not enough of the module tested
    assert "below the item's 90%" in (poor.error or "") and (poor.metrics["coverage_delta"] or 0) > 0

    good, poor = outcomes["dc-till-refunds", "good"], outcomes["dc-till-refunds", "poor"]
    assert good.score == 1.0, good.error
    assert good.metrics["docstrings"] == 1.0 and (good.metrics["examples_passed"] or 0) >= 2
    assert poor.score == 0.0 and "checks_failing" in (poor.error or "") and poor.metrics["opened"] == 0.0

    prs = PRStore(services.engine).list(TENANT)
    (scratch,) = {Path(p.repo) for p in prs}
    assert len(prs) == 3 and scratch.parent.name.startswith("tillkit-")
    assert "tillkit/coupons.py" in git("show", "eval-base", "--stat", "--format=", cwd=scratch)
    assert "maestro/" not in git("branch", "--list", cwd=scratch)


def test_repo_evals_that_would_wait_for_a_human_are_unmeasured(
    make_repo_services: Callable[..., Services],
) -> None:
    services = make_repo_services(repo_approval="always")
    runner = services.eval_runner(services.eval_authority())
    summary = asyncio.run(runner.run("docs_shelfkit", ["good"], limit=1))
    (row,) = runner.store.results(TENANT, summary.run.id)
    assert row.score is None and "MAESTRO_REPO_APPROVAL=always" in (row.error or "")


def test_docstrings_present() -> None:
    source = (
        '"""Mod."""\n\ndef f():\n    """F."""\n\ndef g():\n    pass\n\n'
        'class C:\n    def m(self):\n        """M."""\n'
    )
    assert docstrings_present(source, ["<module>", "f", "g", "C", "C.m", "nope"]) == {"<module>", "f", "C.m"}
    assert docstrings_present("def (:", ["f"]) == set()
