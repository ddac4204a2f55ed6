"""The census name gazetteer and the person rules built on it (maestro.tools.pii.names / person)."""

from __future__ import annotations

import pytest

from maestro.tools.pii import PIIGuard
from maestro.tools.pii.names import fold, gazetteer


@pytest.fixture(scope="module")
def guard() -> PIIGuard:
    g = PIIGuard()
    g.warm_up()
    return g


def _persons(guard: PIIGuard, text: str) -> list[str]:
    return [text[f.start : f.end] for f in guard.scan(text) if f.type == "PERSON"]


def test_gazetteer_loads_census_lists() -> None:
    g = gazetteer()
    assert len(g.first) > 5000 and len(g.last) > 80000
    assert g.is_first("Rebecca") and g.is_first("JAMES") and g.is_last("Johnson")
    assert g.is_last("Ramsey-Johnson")
    assert g.is_common_first("Megan") and not g.is_common_first("Soon")
    assert fold("Miklós") == "miklos"


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Rebecca Moore will join the call later.", "Rebecca Moore"),
        ("Yesterday I had lunch with Zoe Young and her team.", "Zoe Young"),
        ("The keynote is by someone called Hanna Ukkonen", "Hanna Ukkonen"),
        ("Please forward the invoice to Sofia Lima.", "Sofia Lima"),
        ("Why is Rebecca so impulsive?", "Rebecca"),
        ("Scott is a very sympathetic person.", "Scott"),
    ],
)
def test_full_names_in_varied_positions(guard: PIIGuard, text: str, name: str) -> None:
    assert name in _persons(guard, text)


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Please ask Dr. Yefimova about the results.", "Yefimova"),
        ("I spoke to Mrs. Baker this morning.", "Baker"),
        ("Mr. Michael Hernandez signed the lease.", "Michael Hernandez"),
    ],
)
def test_names_after_titles(guard: PIIGuard, text: str, name: str) -> None:
    found = _persons(guard, text)
    assert any(name in f for f in found), found


@pytest.mark.parametrize(
    "text",
    [
        "See you on Monday, the report is due in April.",
        "Will the build pass on the new runner?",
        "May I ask where the grace period is documented?",
        "We moved the cluster from Windows to Linux and installed Python and Excel.",
        "The Discipline and Salesperson fields are optional.",
        "User: where is my parcel?\nBot: it ships tomorrow.",
        "the mark was on the bill, as hope would have it.",
        "We flew to Georgia and then to Paris.",
        "The Clark, Romero and Hall Orchestra was founded in 1973.",
        "Southern Canada had a mild winter.",
    ],
)
def test_common_words_and_capitalised_non_names_not_flagged(guard: PIIGuard, text: str) -> None:
    assert _persons(guard, text) == []


def test_names_inside_emails_and_code_not_double_reported(guard: PIIGuard) -> None:
    text = "Write to rebecca.moore@example.com or call get_rebecca_moore() from the script."
    findings = guard.scan(text)
    assert [f.type for f in findings] == ["EMAIL_ADDRESS"]
    email = findings[0]
    assert text[email.start : email.end] == "rebecca.moore@example.com"


def test_name_and_email_side_by_side(guard: PIIGuard) -> None:
    text = "Rebecca Moore <rebecca.moore@example.com> approved it."
    types = {(f.type, text[f.start : f.end]) for f in guard.scan(text)}
    assert ("PERSON", "Rebecca Moore") in types
    assert ("EMAIL_ADDRESS", "rebecca.moore@example.com") in types
    assert len(types) == 2


def test_lowercase_chat_names(guard: PIIGuard) -> None:
    text = "follow up with patricia desrosiers in a couple of months."
    assert _persons(guard, text) == ["patricia desrosiers"]
