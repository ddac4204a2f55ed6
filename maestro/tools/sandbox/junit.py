"""Per-test outcomes from pytest's JUnit XML.

The XML is written by the code under test, so it is untrusted: it is read with a size cap, parsed by
the standard library's expat (which refuses entity-expansion bombs and never fetches external
entities), and anything unexpected yields fewer tests, never an exception in the caller.
pytest is asked for ``junit_family=xunit1`` so each case carries its ``file`` attribute.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from maestro.tools.sandbox.types import TestCase, TestOutcome

__all__ = ["parse_junit"]

MAX_XML_BYTES = 16 * 1024 * 1024
MAX_MESSAGE_CHARS = 2000


def parse_junit(path: Path) -> tuple[TestCase, ...]:
    """Every ``<testcase>`` in the JUnit XML at ``path``; empty if it is missing or unreadable."""
    try:
        with path.open("rb") as f:
            data = f.read(MAX_XML_BYTES + 1)
    except OSError:
        return ()
    if len(data) > MAX_XML_BYTES:
        return ()
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return ()
    return tuple(_case(el) for el in root.iter("testcase"))


def _case(el: ET.Element) -> TestCase:
    outcome: TestOutcome = "passed"
    message = ""
    for child in el:
        kind = _OUTCOMES.get(child.tag)
        if kind is None:
            continue
        # a test that failed and then errored in teardown has both; the error wins
        if outcome == "passed" or kind == "error":
            outcome = kind
            message = child.get("message") or (child.text or "")
    try:
        duration = float(el.get("time", "0") or 0)
    except ValueError:
        duration = 0.0
    return TestCase(
        name=el.get("name", ""),
        classname=el.get("classname", ""),
        file=el.get("file"),
        outcome=outcome,
        message=message[:MAX_MESSAGE_CHARS],
        duration_s=duration,
    )


_OUTCOMES: dict[str, TestOutcome] = {"failure": "failed", "error": "error", "skipped": "skipped"}
