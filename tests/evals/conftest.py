"""What the eval tests that run the repository workcells (testgen, docs) share.

``make_repo_services(**settings)`` builds the services with a catalog of three scripted deployments -
``good``, ``poor`` and ``lazy`` - answering through ``FunctionLLM``: the reply depends on the deployment
and on what the workcell asks for (testgen: the target module; docs: the page), looked up in
``repo_replies`` (``default_replies()``: fresh per test, a test may add to it). ``git(*args, cwd=...)``
runs git and returns its output. The shelfkit replies repeat those of tests/agents/test_testgen_workcell.py
and test_docs_workcell.py (module constants there, which this package cannot import); the good tillkit
test module is the item's reference answer in tests/fixtures/tillkit_answers plus one test of the
intended behaviour that the current code fails.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from maestro.api.container import Services, build_services
from maestro.core.settings import Settings
from maestro.router.testing import FunctionLLM
from maestro.router.types import Message, ModelCall

FIXTURES = Path(__file__).parents[1] / "fixtures"
ANSWERS = FIXTURES / "tillkit_answers"
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

# -- shelfkit (tests/fixtures/sample_repo) ----------------------------------------------------------------

STOCK_TESTS = """```python
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
STOCK_TESTS_FAILING = """```python
from shelfkit.stock import Stock


def test_level_starts_at_one():
    assert Stock().level("kiwi") == 1
```
"""
REPORT_DOCSTRINGS = '''shelfkit/report.py
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
REPORT_SUMMARIZE = '''
shelfkit/report.py
<<<<<<< SEARCH
def summarize(stock: Stock, skus: list[str]) -> str:
=======
def summarize(stock: Stock, skus: list[str]) -> str:
    """The rows of ``skus`` with their levels in ``stock``, then a TOTAL row."""
>>>>>>> REPLACE
'''
REPORT_PAGE = """
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
REPORT_DOCS = REPORT_DOCSTRINGS + REPORT_SUMMARIZE + REPORT_PAGE

# -- tillkit (tests/fixtures/tillkit) ---------------------------------------------------------------------

# After the reference tests of tg-till-coupons, one that asserts the documented minimum spend ("from which
# on the coupon applies"): it fails on the current code (``<=``) and is dropped.
MIN_SPEND_TEST = """

def test_the_minimum_spend_itself_gets_the_discount():
    assert parse_coupon("SAVE10-MIN20").discount(2000) == 200
"""
COUPONS_TESTS_TOO_FEW = """```python
from tillkit.coupons import parse_coupon


def test_parse_a_flat_coupon():
    assert parse_coupon("FLAT500").value == 500
```
"""
REFUNDS_STALE_EXAMPLE = """tillkit/refunds.py
<<<<<<< SEARCH
    >>> refund_amount(2000, date(2026, 3, 1), date(2026, 3, 10), opened=True)
    1800
=======
    >>> refund_amount(2000, date(2026, 3, 1), date(2026, 3, 10), opened=True)
    1700
>>>>>>> REPLACE
"""
REFUNDS_DOCS_REST = '''
tillkit/refunds.py
<<<<<<< SEARCH
def store_credit(paid: int, bought: date, today: date) -> int:
=======
def store_credit(paid: int, bought: date, today: date) -> int:
    """Store credit for a return: the refund within 30 days; after that half of ``paid`` up to 60 days
    after ``bought``; later ``RefundRefused``."""
>>>>>>> REPLACE

docs/refunds.md
<<<<<<< SEARCH
=======
# Refunds

[`tillkit.refunds`](../tillkit/refunds.py) says what a returned item gives back. Within 30 days the
price comes back in full; an opened item pays a 15% restocking fee.

>>> from datetime import date
>>> from tillkit.refunds import refund_amount, store_credit
>>> refund_amount(2000, date(2026, 3, 1), date(2026, 3, 10), opened=True)
1700

After 30 days there is no refund, but store credit of half the price up to 60 days:

>>> store_credit(2000, date(2026, 3, 1), date(2026, 4, 15))
1000
>>>>>>> REPLACE
'''

Replies = dict[tuple[str, str], dict[str, str]]


def default_replies() -> Replies:
    """(workcell, target module or page) -> deployment -> reply; a deployment not listed answers like
    ``poor``."""
    coupons = "```python\n" + (ANSWERS / "test_maestro_coupons.py").read_text() + MIN_SPEND_TEST + "```\n"
    return {
        ("testgen", "shelfkit/stock.py"): {"good": STOCK_TESTS, "poor": STOCK_TESTS_FAILING},
        ("docs", "docs/report.md"): {
            "good": REPORT_DOCS,
            "poor": REPORT_DOCS.replace("TOTAL            3", "TOTAL            4"),  # an example that fails
            "lazy": REPORT_DOCSTRINGS + REPORT_PAGE,  # runs, but summarize keeps no docstring
        },
        ("testgen", "tillkit/coupons.py"): {"good": coupons, "poor": COUPONS_TESTS_TOO_FEW},
        ("docs", "docs/refunds.md"): {
            "good": REFUNDS_STALE_EXAMPLE + REFUNDS_DOCS_REST,
            "poor": REFUNDS_DOCS_REST,  # leaves the stale example: the docstring's doctest fails
        },
    }


_ASKED = (
    ("testgen", re.compile(r"^Module (\S+) \(import it as", re.MULTILINE)),
    ("docs", re.compile(r"^Write the page (\S+) and add", re.MULTILINE)),
)


class Git(Protocol):
    def __call__(self, *args: str, cwd: Path) -> str: ...


def run_git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def scripted_reply(replies: Replies, messages: list[Message], call: ModelCall) -> str:
    """The reply of ``call.deployment`` to what the workcell's prompt asks for."""
    prompt = str(messages[-1].get("content") or "")
    for workcell, pattern in _ASKED:
        found = pattern.search(prompt)
        if found and (workcell, found.group(1)) in replies:
            by_model = replies[workcell, found.group(1)]
            return by_model.get(call.deployment.name, by_model["poor"])
    raise AssertionError(f"no scripted reply for this prompt: {prompt[:200]!r}")


@pytest.fixture
def git() -> Git:
    return run_git


@pytest.fixture
def repo_replies() -> Replies:
    return default_replies()


@pytest.fixture
def make_repo_services(tmp_path: Path, repo_replies: Replies) -> Iterator[Callable[..., Services]]:
    """Services in ``tmp_path`` whose only models are the scripted deployments."""
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(CATALOG)
    weights = tmp_path / "weights.yaml"
    weights.write_text(WEIGHTS)
    built: list[Services] = []

    def model(messages: list[Message], call: ModelCall) -> str:
        return scripted_reply(repo_replies, messages, call)

    def make(**overrides: Any) -> Services:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            data_dir=tmp_path / "var",
            embedder="hashing",
            catalog_path=catalog,
            weights_path=weights,
            default_tenant=TENANT,
            repo_rounds=1,  # one round each: a poor model's failure shows without repairs
            **overrides,
        )
        services = build_services(settings, client=FunctionLLM(model))
        built.append(services)
        return services

    yield make
    for services in built:
        services.close()
