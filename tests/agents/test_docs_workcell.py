"""The docs workcell on the fixture repository: docstrings and a page whose doctests run in the real
sandbox, links checked, the code proven unchanged; the PR goes through the git backend into a local bare
remote. Only the model is fake."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from test_codegen_workcell import BOT, Model, _branches, _git
from test_codegen_workcell import make_services as make_services
from test_codegen_workcell import remote as remote

from maestro.agents.docs.checks import broken_links, code_unchanged
from maestro.api.container import Services

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
GOOD = DOCSTRINGS + PAGE
WRONG_EXAMPLE = GOOD.replace("TOTAL            3", "TOTAL            4")
CHANGES_CODE = GOOD.replace(
    'return f"{sku:<{width}}{units:>6}"\n>>>>>>> REPLACE',
    'return f"{sku:<{width}}{units:>7}"\n>>>>>>> REPLACE',
)
BAD_LINK = GOOD.replace("../shelfkit/stock.py", "../shelfkit/nothere.py")


def _start(services: Services, remote: Path) -> Any:
    payload = {"repo": str(remote), "targets": ["shelfkit/report.py"]}
    return asyncio.run(services.runner().start("docs", payload, BOT))


def test_documents_runs_the_examples_and_opens_a_pr(
    make_services: Callable[..., Services], remote: Path
) -> None:
    run = _start(make_services(Model([GOOD])), remote)
    assert run.status == "succeeded", run.error
    out = run.output
    assert out["status"] == "opened", out["summary"]
    assert out["page"] == "docs/report.md" and out["examples"]["status"] == "passed"
    assert out["examples"]["passed"] >= 2  # the page and the docstring example ran
    branch = out["branch"]
    assert branch in _branches(remote)
    assert "def format_row" in _git("show", f"{branch}:shelfkit/report.py", cwd=remote)
    assert "# Reports" in _git("show", f"{branch}:docs/report.md", cwd=remote)


def test_a_failing_example_then_a_code_change_then_a_broken_link_are_each_refused(
    make_services: Callable[..., Services], remote: Path
) -> None:
    model = Model([WRONG_EXAMPLE, CHANGES_CODE, BAD_LINK])
    out = _start(make_services(model), remote).output
    assert out["status"] == "checks_failing" and out["pr"] is None and out["rounds"] == 3
    assert "examples that do not run" in model.prompts[1]
    assert "the code changed" in model.prompts[2]
    assert "nothere.py" in out["summary"]
    assert not [b for b in _branches(remote) if b.startswith("maestro/")]


def test_edits_outside_the_targets_are_refused(make_services: Callable[..., Services], remote: Path) -> None:
    stray = GOOD + (
        '\nshelfkit/pricing.py\n<<<<<<< SEARCH\n"""Prices: discounts and bulk pricing."""\n'
        '=======\n"""Prices."""\n>>>>>>> REPLACE\n'
    )
    model = Model([stray, GOOD])
    out = _start(make_services(model), remote).output
    assert out["status"] == "opened" and out["rounds"] == 2
    assert "shelfkit/pricing.py" in model.prompts[1] and "may change" in model.prompts[1]


def test_checks() -> None:
    before = "def f(x):\n    return x + 1\n"
    assert code_unchanged(before, 'def f(x):\n    """Add one."""\n    return x + 1\n')
    assert not code_unchanged(before, 'def f(x):\n    """Add one."""\n    return x + 2\n')
    root = Path(__file__).parents[2]
    assert broken_links(
        root, "README.md", "[ok](docs/cypher.md) [web](https://example.com) [no](docs/nope.md)"
    ) == ["docs/nope.md"]
    assert broken_links(root, "README.md", "[out](../../etc/passwd)") == ["../../etc/passwd"]
