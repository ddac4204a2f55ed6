"""The PII guard: secrets, look-alikes, obfuscation, redaction modes, the vault, threads, no network."""

from __future__ import annotations

import base64
import copy
import json
import pickle
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from maestro.core.errors import InvalidRequest
from maestro.tools.pii import DEFAULT_ENTITIES, SECRET_ENTITIES, Finding, PIIGuard, Vault, find_secrets
from maestro.tools.pii import analyzer as analyzer_module
from maestro.tools.pii.guard import CHUNK_CHARS
from maestro.tools.pii.numbers import find_cards, find_phones, luhn_valid

FIXTURE = Path(__file__).parent / "data" / "secrets.jsonl"
ROWS = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
SECRET_ROWS = [r for r in ROWS if r["kind"] == "secret"]
LOOKALIKES = [r["text"] for r in ROWS if r["kind"] == "lookalike"]
HASH_KEY = b"k" * 32


@pytest.fixture(scope="module")
def guard() -> PIIGuard:
    g = PIIGuard(hash_key=HASH_KEY)
    g.warm_up()
    return g


class NetworkAttempt(AssertionError):
    pass


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail on any non-loopback connect or name lookup; yields the list of attempts."""
    attempts: list[str] = []
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def is_local(host: object) -> bool:
        return str(host) in {"localhost", "::1", ""} or str(host).startswith("127.")

    def connect(self: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if not is_local(host) and self.family != getattr(socket, "AF_UNIX", None):
            attempts.append(f"connect {address!r}")
            raise NetworkAttempt(f"network connect to {address!r}")
        real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not is_local(host):
            attempts.append(f"getaddrinfo {host!r}")
            raise NetworkAttempt(f"DNS lookup of {host!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts
    assert attempts == []


# -- secrets ---------------------------------------------------------------------------------------------


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return [f"{i}-{'+'.join(s['type'] for s in r['secrets'])}" for i, r in enumerate(rows)]


def test_fixture_covers_every_secret_type() -> None:
    covered = {s["type"] for r in SECRET_ROWS for s in r["secrets"]}
    assert covered == SECRET_ENTITIES


@pytest.mark.parametrize("row", SECRET_ROWS, ids=_ids(SECRET_ROWS))
def test_each_secret_is_found_with_its_exact_span(guard: PIIGuard, row: dict[str, Any]) -> None:
    findings = guard.scan(row["text"], with_text=True)
    for secret in row["secrets"]:
        start = row["text"].index(secret["value"])
        expected = (secret["type"], start, start + len(secret["value"]))
        assert expected in {(f.type, f.start, f.end) for f in findings}, (expected, findings)


@pytest.mark.parametrize("text", LOOKALIKES)
def test_lookalikes_do_not_fire(guard: PIIGuard, text: str) -> None:
    assert guard.scan(text, with_text=True) == []


def test_secret_rules_need_no_model() -> None:
    key = "AKIA" + "ABCDEFGHIJKLMNOP"
    assert [(s.entity, s.start) for s in find_secrets(f"id {key}")] == [("AWS_ACCESS_KEY", 3)]
    assert find_secrets("a git sha 3f2a9c1b7e4d5f60817a2b3c4d5e6f708192a3b4 in an aws repo") == []


# -- numbers ---------------------------------------------------------------------------------------------


def test_cards_pass_luhn_and_keep_context_rules() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert [s.entity for s in find_cards("card 4111 1111 1111 1111")] == ["CREDIT_CARD"]
    assert find_cards("card 4111 1111 1111 1112") == []
    assert find_cards("order 4111111111111111 shipped") == []
    assert find_cards("timestamp 1700000000000 ms") == []


@pytest.mark.parametrize(
    "text",
    [
        "Phone: 0490 75 40 81",
        "call me on 9472 7916",
        "+46 (0)8 928 571 38",
        "(602)272-9781",
        "345-899-3560x4587",
    ],
)
def test_phone_formats(text: str) -> None:
    assert [s.entity for s in find_phones(text)] == ["PHONE_NUMBER"]


@pytest.mark.parametrize(
    "text",
    [
        "version 1.2.3",
        "10.0.0.1",
        "2024-01-15",
        "port 8080",
        "$1 299 000",
        "Order #555-123-4567",
        "123-45-6789",
    ],
)
def test_phone_lookalikes(text: str) -> None:
    assert find_phones(text) == []


# -- obfuscation -----------------------------------------------------------------------------------------


def _tags(ascii_text: str) -> str:
    return "".join(chr(0xE0000 + ord(c)) for c in ascii_text)


@pytest.mark.parametrize(
    ("text", "hidden", "entity"),
    [
        (
            "Write to jo\u200bhn.smith@exam\u200cple.com today",
            "jo\u200bhn.smith@exam\u200cple.com",
            "EMAIL_ADDRESS",
        ),
        ("Write to j\u043ehn@ex\u0430mple.com today", "j\u043ehn@ex\u0430mple.com", "EMAIL_ADDRESS"),
        (
            "Write to john" + _tags("x") + "@example.com",
            "john" + _tags("x") + "@example.com",
            "EMAIL_ADDRESS",
        ),
        ("Please ask Mr. D\u0430vid Kowalski to call", "D\u0430vid Kowalski", "PERSON"),
        (
            "Key: ＡＫＩＡＩＯＳＦＯＤＮＮ７ＥＸＡＭＰＬＥ",
            "ＡＫＩＡＩＯＳＦＯＤＮＮ７ＥＸＡＭＰＬＥ",
            "AWS_ACCESS_KEY",
        ),
    ],
    ids=["zero-width-email", "cyrillic-email", "tag-chars-email", "cyrillic-name", "fullwidth-aws-key"],
)
def test_obfuscated_pii_is_found_and_redacted_in_the_original(
    guard: PIIGuard, text: str, hidden: str, entity: str
) -> None:
    findings = guard.scan(text)
    start = text.index(hidden)
    assert (entity, start, start + len(hidden)) in {(f.type, f.start, f.end) for f in findings}
    redacted = guard.redact(text).text
    assert hidden not in redacted
    assert f"<{entity}>" in redacted


def test_base64_wrapped_aws_key_is_reported_on_the_encoded_span(guard: PIIGuard) -> None:
    blob = base64.b64encode(b"aws_access_key_id=AKIAIOSFODNN7EXAMPLE").decode()
    text = f"config blob: {blob} end"
    findings = guard.scan(text)
    assert [(f.type, f.start, f.end, f.source) for f in findings] == [
        ("AWS_ACCESS_KEY", text.index(blob), text.index(blob) + len(blob), "base64")
    ]
    assert guard.redact(text).text == "config blob: <AWS_ACCESS_KEY> end"


def test_secret_smuggled_in_tag_characters_is_found(guard: PIIGuard) -> None:
    text = "harmless" + _tags("token AKIAIOSFODNN7EXAMPLE") + " text"
    (finding,) = guard.scan(text)
    assert (finding.type, finding.source) == ("AWS_ACCESS_KEY", "unicode_tags")
    assert guard.redact(text).text == "harmless<AWS_ACCESS_KEY> text"


# -- redaction modes -------------------------------------------------------------------------------------

TEXT = (
    "Ada Lovelace (ada@example.com) wrote to bob@example.org; cc ada@example.com. Card 4111 1111 1111 1111."
)


def test_redact_mode(guard: PIIGuard) -> None:
    result = guard.redact(TEXT)
    assert result.text == (
        "<PERSON> (<EMAIL_ADDRESS>) wrote to <EMAIL_ADDRESS>; cc <EMAIL_ADDRESS>. Card <CREDIT_CARD>."
    )
    assert [f.type for f in result.findings] == [
        "PERSON",
        "EMAIL_ADDRESS",
        "EMAIL_ADDRESS",
        "EMAIL_ADDRESS",
        "CREDIT_CARD",
    ]
    assert all(isinstance(f, Finding) and f.text is None for f in result.findings)


def test_mask_mode_keeps_length_and_the_last_four_card_digits(guard: PIIGuard) -> None:
    masked = guard.redact(TEXT, "mask").text
    assert len(masked) == len(TEXT)
    assert "**** **** **** 1111" in masked
    assert "ada@" not in masked and "Lovelace" not in masked


def test_hash_mode_is_stable_per_key_and_value(guard: PIIGuard) -> None:
    first = guard.redact(TEXT, "hash").text
    assert first == guard.redact(TEXT, "hash").text
    assert first == PIIGuard(hash_key=HASH_KEY).redact(TEXT, "hash").text
    tags = first.split("<EMAIL_ADDRESS:")[1:]
    assert tags[0][:8] == tags[2][:8] != tags[1][:8]
    assert guard.tag("EMAIL_ADDRESS", "ADA@example.com") == guard.tag(
        "EMAIL_ADDRESS", "ad\u200ba@ex\u0430mple.com"
    )
    assert PIIGuard(hash_key=b"other" * 8).tag("EMAIL_ADDRESS", "ada@example.com") != guard.tag(
        "EMAIL_ADDRESS", "ada@example.com"
    )


def test_pseudonymize_round_trip(guard: PIIGuard) -> None:
    result = guard.redact(TEXT, "pseudonymize")
    assert result.vault is not None
    assert result.text == (
        "<PERSON_1> (<EMAIL_ADDRESS_1>) wrote to <EMAIL_ADDRESS_2>; cc <EMAIL_ADDRESS_1>. "
        "Card <CREDIT_CARD_1>."
    )
    assert result.vault.restore(result.text) == TEXT
    answer = "I will email EMAIL_ADDRESS_1 and <PERSON_1>, not <PERSON_9>."
    assert result.vault.restore(answer) == "I will email ada@example.com and Ada Lovelace, not <PERSON_9>."


def test_one_vault_across_calls_keeps_placeholders(guard: PIIGuard) -> None:
    vault = Vault()
    first = guard.redact("mail bob@example.org", "pseudonymize", vault=vault).text
    second = guard.redact("bob@example.org and eve@example.net", "pseudonymize", vault=vault).text
    assert first == "mail <EMAIL_ADDRESS_1>"
    assert second == "<EMAIL_ADDRESS_1> and <EMAIL_ADDRESS_2>"
    assert len(vault) == 2


def test_vault_never_serializes_its_originals() -> None:
    vault = Vault()
    vault.placeholder("PERSON", "Ada Lovelace")
    assert "Ada" not in repr(vault)
    for dump in (pickle.dumps, copy.copy, copy.deepcopy, json.dumps):
        with pytest.raises(TypeError):
            dump(vault)


def test_unknown_mode_or_entity_is_refused(guard: PIIGuard) -> None:
    with pytest.raises(InvalidRequest, match="redaction mode"):
        guard.redact("x", "shred")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="NOT_A_TYPE"):
        guard.scan("x", entities={"NOT_A_TYPE"})


def test_findings_have_the_cli_json_shape(guard: PIIGuard) -> None:
    (finding,) = guard.scan("mail ada@example.com")
    assert finding.to_dict() == {"type": "EMAIL_ADDRESS", "start": 5, "end": 20, "score": finding.score}
    assert "ada@" not in repr(finding)


def test_scan_many_matches_scan(guard: PIIGuard) -> None:
    texts = [TEXT, "nothing here", "call +1 415-555-0100"]
    assert guard.scan_many(texts) == [guard.scan(t) for t in texts]


def test_default_entities_exclude_locations(guard: PIIGuard) -> None:
    assert "LOCATION" not in DEFAULT_ENTITIES
    assert all(f.type != "LOCATION" for f in guard.scan("She lives in Berlin, Germany."))


# -- building once, threads, no network ------------------------------------------------------------------


def test_analyzer_is_built_once_under_concurrent_first_use(monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[int] = []
    real = analyzer_module.build_maestro_analyzer

    def counting(model: str = analyzer_module.DEFAULT_MODEL, *, ner: bool = True) -> Any:
        builds.append(threading.get_ident())
        return real(model, ner=ner)

    monkeypatch.setattr(analyzer_module, "build_maestro_analyzer", counting)
    fresh = PIIGuard()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: fresh.scan(TEXT), range(8)))
    assert len(builds) == 1
    assert all(r == results[0] for r in results)


def test_patterns_only_guard_finds_secrets_and_cued_names() -> None:
    fast = PIIGuard(ner=False)
    found = {
        (f.type, f.text) for f in fast.scan("Dear Mr. Kowalski, key AKIAIOSFODNN7EXAMPLE", with_text=True)
    }
    assert found == {("PERSON", "Kowalski"), ("AWS_ACCESS_KEY", "AKIAIOSFODNN7EXAMPLE")}


def test_long_text_is_scanned_in_chunks() -> None:
    fast = PIIGuard(ner=False)  # the chunking is the same with the model, only slower
    filler = "lorem ipsum dolor sit amet " * 4_000  # over CHUNK_CHARS in total
    text = filler + "mail ada@example.com " + filler + "key AKIAIOSFODNN7EXAMPLE"
    assert len(text) > CHUNK_CHARS
    found = fast.scan(text, with_text=True)
    assert [(f.type, f.text) for f in found] == [
        ("EMAIL_ADDRESS", "ada@example.com"),
        ("AWS_ACCESS_KEY", "AKIAIOSFODNN7EXAMPLE"),
    ]


def test_construction_and_scan_make_no_network_attempt(no_network: list[str]) -> None:
    fresh = PIIGuard()
    fresh.warm_up()
    assert [f.type for f in fresh.scan("ada@example.com, https://example.org, 8.8.8.8")] == [
        "EMAIL_ADDRESS",
        "IP_ADDRESS",
    ]
    assert no_network == []
