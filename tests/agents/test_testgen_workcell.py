"""The testgen workcell on the fixture repository: generated tests run in the real sandbox under
coverage.py with one context per test; a test is kept only if it passes and covers a line or branch
that the existing suite and the tests kept before it do not; the PR (git backend, local bare remote)
states the delta and each test's verdict. Only the model is fake."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_codegen_workcell import BOT, Model, _branches, _git
from test_codegen_workcell import make_services as make_services
from test_codegen_workcell import remote as remote

from maestro.agents.testgen.pruning import collected_tests, drop_tests
from maestro.agents.testgen.selection import select_tests
from maestro.api.container import Services

GOOD = """Here are the tests.
```python
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
    stock = Stock()
    with pytest.raises(OutOfStock):
        stock.take("plum", 1)


def test_wrong_expectation_is_dropped():
    assert Stock().level("kiwi") == 1


class TestLow:
    def test_low_is_sorted(self):
        stock = Stock()
        stock.add("b", 1)
        stock.add("a", 1)
        stock.add("c", 9)
        assert stock.low(5) == ["a", "b"]

    def test_also_wrong(self):
        assert Stock().low(1) == ["x"]
```
"""
SELECTIVE = """```python
import pytest

from shelfkit.stock import Stock


@pytest.fixture
def shelf():
    return Stock()


def put(stock, sku, units):
    return stock.add(sku, units)


def test_fails_on_the_current_code(shelf):
    assert shelf.level("kiwi") == 1


def test_add_sets_the_level(shelf):
    assert put(shelf, "apple", 2) == 2
    assert shelf.level("apple") == 2


def test_add_again_is_redundant(shelf):
    put(shelf, "pear", 1)
    assert shelf.level("pear") == 1
```
"""
BROKEN = "```python\nfrom shelfkit.stock import Nope\n\ndef test_x():\n    assert Nope()\n```\n"


def _start(services: Services, remote: Path, target: str = "shelfkit/stock.py") -> Any:
    return asyncio.run(services.runner().start("testgen", {"repo": str(remote), "target": target}, BOT))


def test_keeps_passing_tests_that_raise_coverage_and_opens_a_pr(
    make_services: Callable[..., Services], remote: Path
) -> None:
    run = _start(make_services(Model([GOOD])), remote)
    assert run.status == "succeeded", run.error
    out = run.output
    assert out["status"] == "opened", out["summary"]
    assert out["coverage_before"] == {"lines": 0.0, "branches": 0.0}
    assert out["coverage_after"]["lines"] > 80 and out["coverage_after"]["branches"] > 50
    assert sorted(n.rsplit("::", 1)[-1] for n in out["dropped"]) == [
        "test_also_wrong",
        "test_wrong_expectation_is_dropped",
    ]
    assert len(out["kept"]) == 4 and out["test_path"] == "tests/test_maestro_stock.py"
    branch = out["branch"]
    assert branch in _branches(remote)
    committed = _git("show", f"{branch}:tests/test_maestro_stock.py", cwd=remote)
    assert "test_take_leaves_the_rest" in committed and "test_wrong_expectation_is_dropped" not in committed
    assert "def test_also_wrong" not in committed and "def test_low_is_sorted" in committed
    assert ".maestro-coverage" not in out["diff"]
    assert "line coverage 0.0% ->" in out["pr"]["body"]


def test_keeps_only_the_test_that_passes_and_adds_coverage(
    make_services: Callable[..., Services], remote: Path
) -> None:
    services = make_services(Model([SELECTIVE]))
    run = _start(services, remote)
    assert run.status == "succeeded", run.error
    out = run.output
    assert out["status"] == "opened", out["summary"]
    verdicts = {v["test"]: v for v in out["selection"]}
    assert [v["test"] for v in out["selection"]] == [
        "test_fails_on_the_current_code",
        "test_add_sets_the_level",
        "test_add_again_is_redundant",
    ]  # the module's order, which the greedy choice follows
    assert verdicts["test_fails_on_the_current_code"]["reason"] == "failed"
    assert "assert 0 == 1" in verdicts["test_fails_on_the_current_code"]["message"]
    useful = verdicts["test_add_sets_the_level"]
    assert useful["kept"] and useful["reason"] == "new_coverage" and useful["new_lines"]
    assert verdicts["test_add_again_is_redundant"]["reason"] == "no_new_coverage"
    assert [n.rsplit("::", 1)[-1] for n in out["kept"]] == ["test_add_sets_the_level"]
    assert sorted(n.rsplit("::", 1)[-1] for n in out["dropped"]) == [
        "test_add_again_is_redundant",
        "test_fails_on_the_current_code",
    ]
    committed = _git("show", f"{out['branch']}:tests/test_maestro_stock.py", cwd=remote)
    assert collected_tests(committed) == ["test_add_sets_the_level"]
    assert "def shelf():" in committed and "def put(" in committed and "import pytest" in committed
    assert out["coverage_before"] == {"lines": 0.0, "branches": 0.0} and out["coverage_after"]["lines"] > 50
    body = out["pr"]["body"]
    assert "with 1 test function(s)" in body and "the model wrote 3, 1 kept" in body
    assert "kept `test_add_sets_the_level`: it passes and newly covers line(s)" in body
    assert "dropped `test_fails_on_the_current_code`: it fails on the current code" in body
    assert "dropped `test_add_again_is_redundant`: it passes but covers no line or branch" in body
    assert "| `tests/test_maestro_stock.py::test_add_sets_the_level` | ✅ passed" in body  # the re-run
    assert "test_fails_on_the_current_code` | ❌" not in body


PRICING = """```python
import pytest

from shelfkit.pricing import apply_discount, bulk_price


def test_bad_percent_is_refused():
    with pytest.raises(ValueError):
        apply_discount(1.0, -5)


def test_negative_quantity_is_refused():
    with pytest.raises(ValueError):
        bulk_price(1.0, -1)
```
"""


def test_what_the_existing_suite_covers_is_not_new(
    make_services: Callable[..., Services], remote: Path
) -> None:
    """tests/test_pricing.py already reaches apply_discount's ValueError, but not bulk_price's."""
    out = _start(make_services(Model([PRICING])), remote, target="shelfkit/pricing.py").output
    assert out["status"] == "opened", out["summary"]
    reasons = {v["test"]: v["reason"] for v in out["selection"]}
    assert reasons == {
        "test_bad_percent_is_refused": "no_new_coverage",
        "test_negative_quantity_is_refused": "new_coverage",
    }
    kept = next(v for v in out["selection"] if v["kept"])
    assert kept["new_lines"] == [16]  # raise ValueError("quantity must not be negative")
    assert out["coverage_after"]["lines"] > out["coverage_before"]["lines"]


def test_selection_is_greedy_in_module_order_and_per_function() -> None:
    tests = [
        {"name": "t.py::test_a[1]", "function": "test_a[1]", "classname": "t", "outcome": "passed"},
        {"name": "t.py::test_a[2]", "function": "test_a[2]", "classname": "t", "outcome": "passed"},
        {"name": "t.py::test_b", "function": "test_b", "classname": "t", "outcome": "passed"},
        {"name": "t.py::test_c", "function": "test_c", "classname": "t.TestC", "outcome": "passed"},
        {"name": "t.py::test_d[x]", "function": "test_d[x]", "classname": "t", "outcome": "passed"},
        {"name": "t.py::test_d[y]", "function": "test_d[y]", "classname": "t", "outcome": "failed"},
        {"name": "t.py::test_e", "function": "test_e", "classname": "t", "outcome": "skipped"},
    ]
    per_test = {
        "t.py::test_a[1]": {"lines": [1, 2], "branches": []},
        "t.py::test_a[2]": {"lines": [3], "branches": []},
        "t.py::test_b": {"lines": [1, 3], "branches": [[3, 4]]},
        "t.py::TestC::test_c": {"lines": [1, 2, 5], "branches": [[3, 4]]},
        "t.py::test_d[x]": {"lines": [9], "branches": []},
    }
    failures = [{"name": "t.py::test_d[y]", "message": "boom"}]
    order = ["test_b", "test_a", "TestC::test_c", "test_d", "test_e"]
    verdicts = select_tests(order, tests, failures, per_test, covered_lines=[2], covered_branches=[])
    got = {v.test: (v.reason, v.new_lines, v.new_branches) for v in verdicts}
    assert [v.test for v in verdicts] == order
    assert got["test_b"] == ("new_coverage", (1, 3), ((3, 4),))  # first in the module: judged first
    assert got["test_a"] == ("no_new_coverage", (), ())  # its cases together add nothing after test_b
    assert got["TestC::test_c"] == ("new_coverage", (5,), ())
    assert got["test_d"][0] == "failed" and verdicts[3].message == "boom"  # one failing case fails it
    assert got["test_e"][0] == "skipped"


def test_a_module_that_does_not_run_is_repaired(make_services: Callable[..., Services], remote: Path) -> None:
    model = Model([BROKEN, GOOD])
    out = _start(make_services(model), remote).output
    assert out["status"] == "opened" and out["rounds"] == 2
    assert "no generated test passed" in model.prompts[1]


def test_no_gain_opens_no_pr(make_services: Callable[..., Services], remote: Path) -> None:
    trivial = "```python\ndef test_nothing():\n    assert True\n```\n"
    out = _start(make_services(Model([trivial]), repo_rounds=1), remote).output
    assert out["status"] == "no_gain" and out["pr"] is None
    assert "cover nothing new" in out["summary"]
    assert not [b for b in _branches(remote) if b.startswith("maestro/")]


def test_refuses_a_test_module_as_target(make_services: Callable[..., Services], remote: Path) -> None:
    from maestro.core.errors import InvalidRequest

    with pytest.raises(InvalidRequest):
        _start(make_services(Model([GOOD])), remote, target="tests/test_pricing.py")
    with pytest.raises(InvalidRequest):
        _start(make_services(Model([GOOD])), remote, target="../outside.py")


def test_drop_tests_parses_the_module() -> None:
    source = GOOD.split("```python\n")[1].split("```")[0]
    assert "TestLow::test_also_wrong" in collected_tests(source)
    pruned = drop_tests(source, ["test_wrong_expectation_is_dropped", "TestLow::test_also_wrong"])
    assert "def test_wrong_expectation_is_dropped" not in pruned and "def test_also_wrong" not in pruned
    assert "def test_low_is_sorted" in pruned and compile(pruned, "t.py", "exec")
    assert subprocess.run([sys.executable, "-c", "pass"]).returncode == 0
