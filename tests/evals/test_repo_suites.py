"""The testgen and docs eval sets on the packaged fixture repository, through the real workcells: the
scratch bare remote made from the archive, worktrees, the sandbox (coverage per test, doctests), the git
PR backend, LangGraph and SQLite. Only the model is scripted: ``good`` writes useful tests and docs,
``poor`` tests that fail and examples that do not run, ``lazy`` docs that run but leave a function
undocumented. The archive must hold exactly the fixture repository's files."""

from __future__ import annotations

import asyncio
import gzip
import io
import subprocess
import sys
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from maestro.api.container import Services, build_services
from maestro.core.settings import Settings
from maestro.evals.suites.repo import docstrings_present
from maestro.router.testing import FunctionLLM
from maestro.router.types import Message, ModelCall
from maestro.tools.prs.store import PRStore

ROOT = Path(__file__).parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "sample_repo"
ARCHIVE = ROOT / "maestro" / "evals" / "repos" / "shelfkit.tar.gz"
TENANT = "acme"
CATALOG = """
version: 1
deployments:
  - name: good
    model: openai/good-model
    api_base: http://127.0.0.1:9/v1
    input_cost_per_token: 0.000001
    output_cost_per_token: 0.000002
    context_window: 16000
    max_output_tokens: 4000
  - name: poor
    model: openai/poor-model
    api_base: http://127.0.0.1:9/v1
    input_cost_per_token: 0.0000001
    output_cost_per_token: 0.0000002
    context_window: 16000
    max_output_tokens: 4000
  - name: lazy
    model: openai/lazy-model
    api_base: http://127.0.0.1:9/v1
    input_cost_per_token: 0.0000001
    output_cost_per_token: 0.0000002
    context_window: 16000
    max_output_tokens: 4000
"""

WEIGHTS = """\
version: "repo-evals-1"
prior: 0.5
task_classes:
  testgen.write:
    floor: 0.3
    models: {}
  docs.write:
    floor: 0.3
    models: {}
"""

GOOD_TESTS = """```python
import pytest

from shelfkit.stock import OutOfStock, Stock


def test_add_and_level():
    stock = Stock()
    assert stock.add("apple", 3) == 3
    assert stock.add("apple", 2) == 5
    assert stock.level("apple") == 5


def test_take_leaves_the_rest():
    stock = Stock()
    stock.add("pear", 4)
    assert stock.take("pear", 3) == 1


def test_take_more_than_available_raises():
    with pytest.raises(OutOfStock):
        Stock().take("plum", 1)


def test_wrong_expectation():
    assert Stock().level("kiwi") == 1


def test_low_is_sorted():
    stock = Stock()
    stock.add("b", 1)
    stock.add("a", 1)
    stock.add("c", 9)
    assert stock.low(5) == ["a", "b"]
```
"""
POOR_TESTS = """```python
from shelfkit.stock import Stock


def test_level_starts_at_one():
    assert Stock().level("kiwi") == 1
```
"""
DOCSTRINGS = '''shelfkit/report.py
<<<<<<< SEARCH
from __future__ import annotations
=======
"""Plain-text stock reports."""

from __future__ import annotations
>>>>>>> REPLACE

shelfkit/report.py
<<<<<<< SEARCH
def format_row(sku: str, units: int, width: int = 12) -> str:
    return f"{sku:<{width}}{units:>6}"
=======
def format_row(sku: str, units: int, width: int = 12) -> str:
    """One report line: the SKU left-aligned in ``width`` columns, the units right-aligned in six.

    >>> format_row("apple", 3, width=8)
    'apple        3'
    """
    return f"{sku:<{width}}{units:>6}"
>>>>>>> REPLACE
'''
SUMMARIZE = '''
shelfkit/report.py
<<<<<<< SEARCH
def summarize(stock: Stock, skus: list[str]) -> str:
=======
def summarize(stock: Stock, skus: list[str]) -> str:
    """The rows of ``skus`` with their levels in ``stock``, then a TOTAL row."""
>>>>>>> REPLACE
'''
PAGE = """
docs/report.md
<<<<<<< SEARCH
=======
# Reports

`shelfkit.report` prints stock levels; see [the stock module](../shelfkit/stock.py).

>>> from shelfkit.stock import Stock
>>> from shelfkit.report import summarize
>>> stock = Stock()
>>> stock.add("apple", 3)
3
>>> print(summarize(stock, ["apple"]))
apple            3
TOTAL            3
>>>>>>> REPLACE
"""
GOOD_DOCS = DOCSTRINGS + SUMMARIZE + PAGE
POOR_DOCS = GOOD_DOCS.replace("TOTAL            3", "TOTAL            4")
LAZY_DOCS = DOCSTRINGS + PAGE  # runs, but summarize keeps no docstring


def model(messages: list[Message], call: ModelCall) -> str:
    """Replies by deployment (``call.deployment.name``) and by workcell (its system prompt)."""
    system = str(messages[0].get("content") or "")
    name = call.deployment.name
    if system.startswith("You write pytest tests"):
        return GOOD_TESTS if name == "good" else POOR_TESTS
    return {"good": GOOD_DOCS, "poor": POOR_DOCS, "lazy": LAZY_DOCS}[name]


@pytest.fixture
def make_services(tmp_path: Path) -> Iterator[Callable[..., Services]]:
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG)
    weights = tmp_path / "weights.yaml"
    weights.write_text(WEIGHTS)
    built: list[Services] = []

    def make(**overrides: Any) -> Services:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            data_dir=tmp_path / "var",
            embedder="hashing",
            catalog_path=catalog,
            weights_path=weights,
            default_tenant=TENANT,
            repo_rounds=1,  # one round each: the poor model's failure shows without repairs
            **overrides,
        )
        services = build_services(settings, client=FunctionLLM(model))
        built.append(services)
        return services

    yield make
    for services in built:
        services.close()


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_the_archive_holds_exactly_the_fixture_repository() -> None:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(ARCHIVE.read_bytes())), mode="r:") as tar:
        members = tar.getmembers()
        packed = {m.name: tar.extractfile(m).read() for m in members}  # type: ignore[union-attr]
    skipped = {"__pycache__", ".pytest_cache", ".coverage"}
    on_disk = {
        p.relative_to(FIXTURE).as_posix(): p.read_bytes()
        for p in FIXTURE.rglob("*")
        if p.is_file() and not skipped & set(p.relative_to(FIXTURE).parts) and p.suffix != ".pyc"
    }
    assert packed == on_disk, "rebuild it: python scripts/build_eval_repo.py"
    assert [m.name for m in members] == sorted(packed)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {(0, 0, 0, "", "", 0o644)}
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_eval_repo.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr  # a rebuild gives the same tar stream


def test_repo_suite_scores_useful_tests_and_docs_one_and_failures_zero(
    make_services: Callable[..., Services],
) -> None:
    services = make_services()  # no MAESTRO_PR_REPOS_ALLOWED: the eval allows its own scratch remote only
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
    assert "maestro/" not in _git("branch", "--list", cwd=scratch)
    assert "eval-base" in _git("tag", cwd=scratch)
    workspaces = services.settings.data_dir / "evals" / "workspaces"
    assert {p.name for p in (workspaces / "worktrees").iterdir()} == {"testgen", "docs"}
    assert not list((workspaces / "worktrees").glob("*/*"))  # each run's worktree removed
    (clone,) = (workspaces / "repos").glob("*.git")
    assert "maestro/" not in _git("branch", "--list", cwd=clone)  # and its local branch

    # a second run on the same scratch remote: no collision; docs that leave a function bare score 0
    again = asyncio.run(runner.run("docs_shelfkit", ["lazy"], limit=1))
    (lazy,) = runner.store.results(TENANT, again.run.id)
    assert lazy.score == 0.0 and lazy.metrics["opened"] == 1.0
    assert "no docstring for shelfkit/report.py::summarize" in (lazy.error or "")
    assert lazy.metrics["docstrings"] == pytest.approx(2 / 3)
    assert len(PRStore(services.engine).list(TENANT)) == 3


def test_repo_evals_that_would_wait_for_a_human_are_unmeasured(
    make_services: Callable[..., Services],
) -> None:
    services = make_services(repo_approval="always")
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
