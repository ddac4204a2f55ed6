"""The testgen workcell on the fixture repository: generated tests run in the real sandbox under
coverage.py; failing ones are dropped, the rest kept only if the target's coverage rises; the PR (git
backend, local bare remote) states the delta. Only the model is fake."""

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
