"""The tamper-evident ledger (RELIABILITY #30, #31): appends, signed heads, verification that names the first
bad index for every kind of tampering, concurrency across processes, evidence bundles, keys, redaction.

Database tests run on SQLite and on PostgreSQL (the ``engine`` / ``db_url`` fixtures).
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import queue
import stat
import threading
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr
from sqlalchemy.engine import Connection, Engine

from maestro.core.db import create_db_engine
from maestro.core.errors import ConfigurationError, InvalidRequest
from maestro.core.ledger import (
    Ledger,
    LedgerCorrupted,
    key_id,
    load_signing_key,
    parse_private_key,
    verify_bundle,
)
from maestro.core.ledger.merkle import leaf_hash
from maestro.core.ledger.records import canonical_json, entry_bytes, iso_utc, sign_head
from maestro.core.ledger.signing import KEY_FILE, load_or_create_key_file
from maestro.core.schema import ledger_entries, ledger_heads
from maestro.core.settings import Settings

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))
KEY_B64 = base64.b64encode(bytes(range(32))).decode()
E = ledger_entries.c
H = ledger_heads.c
N = 10  # entries in a tampering fixture


class TickingClock:
    """Each call is one millisecond later; starts in a non-UTC zone to prove times are normalised."""

    def __init__(self) -> None:
        self.now = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=timezone(timedelta(hours=2)))

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def make_ledger(engine: Engine, **kw: Any) -> Ledger:
    return Ledger(engine, KEY, clock=TickingClock(), **kw)


def fill(ledger: Ledger, n: int = N) -> None:
    for i in range(n):
        ledger.append(
            f"kind.{i % 3}",
            {"n": i, "note": f"entry {i} é", "nested": {"list": [i, "x", None, 1.5, True]}},
            tenant=f"tenant{i % 2}",
            actor=f"tenant{i % 2}/alice",
        )


def row(conn: Connection, idx: int) -> dict[str, Any]:
    return dict(conn.execute(sa.select(ledger_entries).where(E.idx == idx)).one()._mapping)


def flip(text: str) -> str:
    """Change one character of ``text`` (the last letter or digit), keeping its length."""
    pos = max(i for i, ch in enumerate(text) if ch.isalnum())
    ch = text[pos]
    new = "0" if ch == "1" else "1" if ch.isdigit() else ("b" if ch == "a" else "a")
    return text[:pos] + new + text[pos + 1 :]


def leaf_of(values: dict[str, Any]) -> str:
    data = entry_bytes(
        idx=values["idx"],
        created_at=iso_utc(values["created_at"]),
        kind=values["kind"],
        tenant=values["tenant"],
        actor=values["actor"],
        payload_json=values["payload"],
    )
    return leaf_hash(data).hex()


def update_entry(conn: Connection, idx: int, **values: Any) -> None:
    conn.execute(sa.update(ledger_entries).where(E.idx == idx).values(**values))


def flip_field(field: str) -> Callable[[Connection], None]:
    def tamper(conn: Connection) -> None:
        update_entry(conn, 4, **{field: flip(row(conn, 4)[field])})

    return tamper


def shift_created_at(conn: Connection) -> None:
    update_entry(conn, 4, created_at=row(conn, 4)["created_at"] + timedelta(microseconds=1))


def payload_rehashed(conn: Connection) -> None:
    """The attacker edits a payload and recomputes its leaf hash: the signed roots still catch it."""
    values = row(conn, 4)
    values["payload"] = flip(values["payload"])
    update_entry(conn, 4, payload=values["payload"], leaf_hash=leaf_of(values))


def swap(rehash: bool) -> Callable[[Connection], None]:
    def tamper(conn: Connection) -> None:
        a, b = row(conn, 3), row(conn, 6)
        for target, source in ((a, b), (b, a)):
            values = {k: v for k, v in source.items() if k != "idx"}
            if rehash:
                values["leaf_hash"] = leaf_of({**values, "idx": target["idx"]})
            update_entry(conn, target["idx"], **values)

    return tamper


def delete_entries(*indexes: int, heads: tuple[int, ...] = ()) -> Callable[[Connection], None]:
    def tamper(conn: Connection) -> None:
        if indexes:
            conn.execute(sa.delete(ledger_entries).where(E.idx.in_(indexes)))
        if heads:
            conn.execute(sa.delete(ledger_heads).where(H.tree_size.in_(heads)))

    return tamper


def update_head(size: int, **values: Any) -> Callable[[Connection], None]:
    def tamper(conn: Connection) -> None:
        conn.execute(sa.update(ledger_heads).where(H.tree_size == size).values(**values))

    return tamper


def resign_head(
    size: int, key: Ed25519PrivateKey, *, claim_id: str | None = None, root: str | None = None
) -> Callable[[Connection], None]:
    """Replace head ``size`` by one signed with ``key`` (claiming ``claim_id``), maybe for another root."""

    def tamper(conn: Connection) -> None:
        old = conn.execute(sa.select(ledger_heads).where(H.tree_size == size)).one()
        head = sign_head(
            key,
            claim_id or key_id(key.public_key()),
            tree_size=size,
            root_hash=root or old.root_hash,
            signed_at=old.signed_at,
        )
        update_head(size, root_hash=head.root_hash, signature=head.signature, key_id=head.key_id)(conn)

    return tamper


def garbage_signature(conn: Connection) -> None:
    update_head(6, signature=base64.b64encode(b"\x00" * 64).decode())(conn)


def append_unsigned_entry(conn: Connection) -> None:
    values = {**row(conn, 9), "idx": N}
    values["leaf_hash"] = leaf_of(values)
    conn.execute(sa.insert(ledger_entries).values(**values))


def prune_heads_then_rehash(conn: Connection) -> None:
    """With heads pruned, a rehashed edit is localised to the last head that still verifies."""
    conn.execute(sa.delete(ledger_heads).where(H.tree_size.between(2, 8)))
    payload_rehashed(conn)


TAMPERING: list[tuple[str, Callable[[Connection], None], int]] = [
    ("payload-byte", flip_field("payload"), 4),
    ("kind-byte", flip_field("kind"), 4),
    ("tenant-byte", flip_field("tenant"), 4),
    ("actor-byte", flip_field("actor"), 4),
    ("created-at", shift_created_at, 4),
    ("leaf-hash-byte", flip_field("leaf_hash"), 4),
    ("payload-and-leaf-rehashed", payload_rehashed, 4),
    ("swap-two-entries", swap(rehash=False), 3),
    ("swap-two-entries-rehashed", swap(rehash=True), 3),
    ("delete-middle", delete_entries(4, 5), 4),
    ("truncate-last-3", delete_entries(7, 8, 9), 7),
    ("truncate-and-newest-heads", delete_entries(7, 8, 9, heads=(9, 10)), 7),
    ("forged-head-garbage-signature", garbage_signature, 5),
    ("forged-head-other-key", resign_head(6, OTHER_KEY, claim_id=key_id(KEY.public_key())), 5),
    ("forged-head-unknown-key", resign_head(6, OTHER_KEY), 5),
    ("head-root-differs-from-entries", resign_head(6, KEY, root="ab" * 32), 5),
    ("head-root-edited", update_head(10, root_hash="cd" * 32), 9),
    ("head-frontier-edited", update_head(6, frontier=["ef" * 32, "01" * 32]), 5),
    ("entry-without-head", append_unsigned_entry, N),
    ("all-heads-deleted", delete_entries(heads=tuple(range(1, N + 1))), 0),
    ("pruned-heads-rehashed-edit", prune_heads_then_rehash, 1),
]


# -- append, head, listing -----------------------------------------------------------------------------------


def test_empty_ledger_verifies(engine: Engine) -> None:
    ledger = make_ledger(engine)
    assert ledger.head() is None
    assert ledger.entries() == []
    report = ledger.verify()
    assert report.to_dict() == {"ok": True, "entries": 0, "first_bad_index": None, "head": ""}


def test_append_signs_a_head_per_entry_and_verifies(engine: Engine) -> None:
    ledger = make_ledger(engine)
    fill(ledger)
    head = ledger.head()
    assert head is not None and head.tree_size == N
    assert head.verify({ledger.key_id: KEY.public_key()})
    assert (
        head.signed_bytes()
        == canonical_json(
            {
                "tree_size": N,
                "root_hash": head.root_hash,
                "signed_at": iso_utc(head.signed_at),
                "key_id": ledger.key_id,
            }
        ).encode()
    )
    with engine.connect() as conn:
        sizes = conn.execute(sa.select(H.tree_size).order_by(H.tree_size)).scalars().all()
        idxs = conn.execute(sa.select(E.idx).order_by(E.idx)).scalars().all()
    assert sizes == list(range(1, N + 1)) and idxs == list(range(N))
    report = ledger.verify()
    assert report.to_dict() == {"ok": True, "entries": N, "first_bad_index": None, "head": head.root_hash}
    assert list(report.to_dict()) == ["ok", "entries", "first_bad_index", "head"]


def test_entry_bytes_are_the_canonical_json_of_every_field(engine: Engine) -> None:
    ledger = make_ledger(engine)
    entry = ledger.append(
        "approval.granted", {"b": [1, {"z": "ü", "a": None}], "a": 2.5}, tenant="acme", actor=None
    )
    assert entry.created_at.tzinfo == UTC
    expected = {
        "actor": None,
        "created_at": iso_utc(entry.created_at),
        "idx": 0,
        "kind": "approval.granted",
        "payload": {"a": 2.5, "b": [1, {"a": None, "z": "ü"}]},
        "tenant": "acme",
    }
    data = json.dumps(expected, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    assert entry.leaf_hash == leaf_hash(data).hex()
    assert entry.created_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ") == expected["created_at"]
    with engine.connect() as conn:
        stored = conn.execute(sa.select(E.payload, E.created_at).where(E.idx == 0)).one()
    assert stored.payload == '{"a":2.5,"b":[1,{"a":null,"z":"ü"}]}'
    assert iso_utc(stored.created_at) == expected["created_at"]
    assert ledger.entries()[0] == entry


def test_entries_listing_filters_and_pages(engine: Engine) -> None:
    ledger = make_ledger(engine)
    fill(ledger)
    assert [e.idx for e in ledger.entries()] == list(reversed(range(N)))
    assert [e.idx for e in ledger.entries(tenant="tenant1")] == [9, 7, 5, 3, 1]
    assert [e.idx for e in ledger.entries(kind="kind.0")] == [9, 6, 3, 0]
    assert [e.idx for e in ledger.entries(tenant="tenant0", kind="kind.0", limit=1)] == [6]
    assert [e.idx for e in ledger.entries(limit=3, before=5)] == [4, 3, 2]
    first = ledger.entries(before=1)[0]
    assert first.to_dict()["payload"] == {
        "n": 0,
        "note": "entry 0 é",
        "nested": {"list": [0, "x", None, 1.5, True]},
    }
    with pytest.raises(InvalidRequest, match="limit"):
        ledger.entries(limit=0)


def test_append_joins_the_callers_transaction(engine: Engine) -> None:
    ledger = make_ledger(engine)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        ledger.append("router.decision", {"decision_id": "dec_1"}, conn=conn)
        raise RuntimeError("the decision failed to commit")
    assert ledger.head() is None and ledger.entries() == []
    with engine.begin() as conn:
        ledger.append("router.decision", {"decision_id": "dec_2"}, conn=conn)
        ledger.append("router.decision", {"decision_id": "dec_3"}, conn=conn)
    assert [e.payload["decision_id"] for e in ledger.entries()] == ["dec_3", "dec_2"]
    assert ledger.verify().ok


@pytest.mark.parametrize(
    ("kind", "payload", "tenant", "match"),
    [
        ("k", {"x": float("nan")}, None, "NaN"),
        ("k", {"x": {1, 2}}, None, "set"),
        ("k", {"x": datetime(2026, 1, 1)}, None, "datetime"),
        ("k", {1: "x"}, None, "int key"),
        ("k", ["not", "a", "dict"], None, "JSON object"),
        ("", {}, None, "kind"),
        ("k" * 65, {}, None, "kind"),
        ("k", {}, "t" * 201, "tenant"),
        ("k", {}, "a\x00b", "NUL"),
        ("k", {"x": "\ud800"}, None, "surrogate"),
    ],
)
def test_append_rejects_what_json_cannot_hold(
    sqlite_engine: Engine, kind: str, payload: Any, tenant: str | None, match: str
) -> None:
    ledger = make_ledger(sqlite_engine)
    with pytest.raises(InvalidRequest, match=match):
        ledger.append(kind, payload, tenant=tenant)
    assert ledger.head() is None


def test_redact_hook_sees_every_payload_string_before_hashing(engine: Engine) -> None:
    seen: list[str] = []

    def redact(text: str) -> str:
        seen.append(text)
        return text.replace("alice@example.com", "<EMAIL_ADDRESS>")

    ledger = make_ledger(engine, redact=redact)
    payload = {"prompt": "mail alice@example.com now", "tools": [{"out": "alice@example.com"}, 3], "n": 1}
    entry = ledger.append("tool.output", payload, tenant="acme", actor="acme/bob")
    assert sorted(seen) == ["alice@example.com", "mail alice@example.com now"]
    assert entry.payload == {
        "n": 1,
        "prompt": "mail <EMAIL_ADDRESS> now",
        "tools": [{"out": "<EMAIL_ADDRESS>"}, 3],
    }
    with engine.connect() as conn:
        stored = conn.execute(sa.select(E.payload, E.leaf_hash)).one()
    assert "alice@example.com" not in stored.payload
    assert stored.payload == canonical_json(entry.payload)
    assert stored.leaf_hash == entry.leaf_hash  # the hash covers the redacted text, not the raw one
    assert ledger.verify().ok
    assert payload["prompt"] == "mail alice@example.com now"  # the caller's object is not mutated


# -- tampering -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tamper", "expected"), [(t, e) for _, t, e in TAMPERING], ids=[n for n, _, _ in TAMPERING]
)
def test_verify_names_the_first_bad_index(
    engine: Engine, tamper: Callable[[Connection], None], expected: int
) -> None:
    ledger = make_ledger(engine)
    fill(ledger)
    assert ledger.verify().ok
    with engine.begin() as conn:
        tamper(conn)
    report = ledger.verify()
    assert not report.ok, report
    assert report.first_bad_index == expected, report.reason
    assert report.reason and report.reason != "ok"
    assert set(report.to_dict()) == {"ok", "entries", "first_bad_index", "head"}


def test_verify_streams_across_pages(sqlite_engine: Engine) -> None:
    """Verification reads in pages of 2000 rows: problems on either side of a page boundary are found."""
    ledger = make_ledger(sqlite_engine)
    with sqlite_engine.begin() as conn:  # one transaction: fast, and the same log as 2001 commits
        for i in range(2_001):
            ledger.append("bulk", {"i": i}, conn=conn)
    assert ledger.verify().to_dict()["entries"] == 2_001
    with sqlite_engine.begin() as conn:
        update_entry(conn, 2_000, payload='{"i":2001}')
    assert ledger.verify().first_bad_index == 2_000
    with sqlite_engine.begin() as conn:
        delete_entries(1_999)(conn)
    assert ledger.verify().first_bad_index == 1_999


def test_verify_survives_values_the_columns_cannot_parse(sqlite_engine: Engine) -> None:
    """SQLite stores whatever it is given: an unreadable timestamp or payload is reported, not raised."""
    ledger = make_ledger(sqlite_engine)
    fill(ledger)
    with sqlite_engine.begin() as conn:
        conn.execute(sa.text("UPDATE ledger_entries SET created_at = 'yesterday' WHERE idx = 6"))
        conn.execute(sa.text("UPDATE ledger_entries SET payload = '{\"n\":' WHERE idx = 8"))
    report = ledger.verify()
    assert (report.ok, report.first_bad_index, report.entries) == (False, 6, N)
    with pytest.raises(LedgerCorrupted, match="entry 8's payload is not JSON"):
        ledger.entries(limit=3)


def test_append_refuses_to_extend_a_corrupted_ledger(engine: Engine) -> None:
    ledger = make_ledger(engine)
    fill(ledger, 3)
    with engine.begin() as conn:
        update_head(3, frontier=["ab" * 32, "cd" * 32])(conn)
    with pytest.raises(LedgerCorrupted, match="frontier"):
        ledger.append("k", {})
    with engine.begin() as conn:
        update_head(3, frontier=["ab" * 32])(conn)  # wrong shape for 3 entries
    with pytest.raises(LedgerCorrupted, match="malformed"):
        ledger.append("k", {})


def test_append_refuses_when_an_unsigned_entry_occupies_the_next_index(engine: Engine) -> None:
    ledger = make_ledger(engine)
    fill(ledger)
    with engine.begin() as conn:
        append_unsigned_entry(conn)
    with pytest.raises(LedgerCorrupted, match="without a head"):
        ledger.append("k", {})
    assert ledger.verify().first_bad_index == N


# -- concurrency ---------------------------------------------------------------------------------------------

PROCESSES = 4
APPENDS = 25


def _append_in_process(url: str, key_b64: str, index: int, start: Any, results: Any) -> None:
    """Child process: wait for the others, then append APPENDS entries as fast as possible."""
    engine = create_db_engine(url)
    try:
        ledger = Ledger(engine, parse_private_key(key_b64))
        start.wait(timeout=120)
        for n in range(APPENDS):
            ledger.append("test.concurrent", {"process": index, "n": n}, tenant=f"p{index}")
        results.put((index, None))
    except BaseException:  # report every failure to the parent, then unblock the others
        results.put((index, traceback.format_exc()))
        start.abort()
    finally:
        engine.dispose()


def test_concurrent_appends_from_processes_never_fork_the_log(engine: Engine, db_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    children = [
        ctx.Process(target=_append_in_process, args=(db_url, KEY_B64, i, start, results))
        for i in range(PROCESSES)
    ]
    for child in children:
        child.start()
    outcomes = []
    try:
        for _ in children:
            try:
                outcomes.append(results.get(timeout=180))
            except queue.Empty:
                pytest.fail("a ledger child process neither reported nor failed within 180 s")
    finally:
        for child in children:
            child.join(timeout=60)
            if child.is_alive():
                child.kill()
    errors = [error for _, error in outcomes if error]
    assert not errors, errors[0]
    total = PROCESSES * APPENDS
    ledger = make_ledger(engine)
    report = ledger.verify()
    assert report.to_dict()["ok"] and report.entries == total, report
    entries = list(reversed(ledger.entries(limit=total)))
    assert [e.idx for e in entries] == list(range(total))
    for index in range(PROCESSES):
        assert [e.payload["n"] for e in entries if e.payload["process"] == index] == list(range(APPENDS))
    with engine.connect() as conn:
        sizes = conn.execute(sa.select(H.tree_size).order_by(H.tree_size)).scalars().all()
    assert sizes == list(range(1, total + 1))


# -- evidence bundles ----------------------------------------------------------------------------------------


def test_export_writes_a_bundle_that_verifies_standalone(engine: Engine, tmp_path: Path) -> None:
    ledger = make_ledger(engine)
    fill(ledger)
    path = tmp_path / "evidence.json"
    bundle = ledger.export(path)
    loaded = json.loads(path.read_text(encoding="utf-8"))
    assert loaded == bundle
    head = ledger.head()
    assert head is not None
    assert loaded["head"] == head.to_dict() and len(loaded["heads"]) == N
    assert loaded["public_keys"] == {
        ledger.key_id: base64.b64encode(KEY.public_key().public_bytes_raw()).decode()
    }
    for item in loaded["entries"]:
        assert leaf_hash(item["entry"].encode()).hex() == item["leaf_hash"]
    report = verify_bundle(loaded)
    assert report.to_dict() == {"ok": True, "entries": N, "first_bad_index": None, "head": head.root_hash}
    assert verify_bundle(loaded, trusted_key_ids={ledger.key_id}).ok
    untrusted = verify_bundle(loaded, trusted_key_ids={"0" * 16})
    assert (untrusted.ok, untrusted.first_bad_index) == (False, None)


def test_tenant_bundle_holds_only_its_entries_with_proofs_against_the_whole_tree(
    sqlite_engine: Engine,
) -> None:
    ledger = make_ledger(sqlite_engine)
    fill(ledger)
    bundle = ledger.bundle(tenant="tenant1")
    assert [item["idx"] for item in bundle["entries"]] == [1, 3, 5, 7, 9]
    assert all(json.loads(item["entry"])["tenant"] == "tenant1" for item in bundle["entries"])
    assert len(bundle["heads"]) == 1 and bundle["head"]["tree_size"] == N
    assert verify_bundle(bundle).to_dict() == {
        "ok": True,
        "entries": 5,
        "first_bad_index": None,
        "head": bundle["head"]["root_hash"],
    }
    dropped = {**bundle, "entries": bundle["entries"][1:]}
    assert verify_bundle(dropped).ok is False  # the bundle signature binds the selection
    rescoped = {**bundle, "tenant": "tenant0"}
    report = verify_bundle(rescoped)
    assert (report.ok, report.first_bad_index) == (False, 1)


def test_empty_ledger_exports_an_empty_bundle(sqlite_engine: Engine) -> None:
    bundle = make_ledger(sqlite_engine).bundle()
    assert bundle["head"] is None and bundle["entries"] == []
    assert verify_bundle(bundle).to_dict() == {"ok": True, "entries": 0, "first_bad_index": None, "head": ""}


def test_export_refuses_a_ledger_that_does_not_verify(sqlite_engine: Engine, tmp_path: Path) -> None:
    ledger = make_ledger(sqlite_engine)
    fill(ledger)
    with sqlite_engine.begin() as conn:
        flip_field("payload")(conn)
    with pytest.raises(LedgerCorrupted, match="from entry 4"):
        ledger.export(tmp_path / "evidence.json")
    assert not (tmp_path / "evidence.json").exists()


def _swap_items(bundle: dict[str, Any], field: str | None) -> None:
    entries = bundle["entries"]
    if field is None:
        entries[3], entries[6] = entries[6], entries[3]
    else:
        entries[3][field], entries[6][field] = entries[6][field], entries[3][field]


def _flip_proof(bundle: dict[str, Any]) -> None:
    proof = bundle["entries"][2]["proof"]
    proof[0] = flip(proof[0])


def _forge_bundle_head(bundle: dict[str, Any]) -> None:
    head = bundle["heads"][5]
    head["signature"] = base64.b64encode(OTHER_KEY.sign(b"forged")).decode()


BUNDLE_TAMPERING: list[tuple[str, Callable[[dict[str, Any]], None], int | None]] = [
    ("entry-byte", lambda b: b["entries"][4].update(entry=flip(b["entries"][4]["entry"])), 4),
    ("leaf-hash-byte", lambda b: b["entries"][4].update(leaf_hash=flip(b["entries"][4]["leaf_hash"])), 4),
    ("swap-entries", lambda b: _swap_items(b, None), 3),
    ("swap-entry-bytes", lambda b: _swap_items(b, "entry"), 3),
    ("delete-middle", lambda b: b["entries"].pop(4), 4),
    ("truncate", lambda b: b.update(entries=b["entries"][:7]), 7),
    ("proof-byte", _flip_proof, 2),
    ("forged-head", _forge_bundle_head, 5),
    ("exported-at", lambda b: b.update(exported_at="2000-01-01T00:00:00.000000Z"), None),
    ("bundle-signature", lambda b: b.update(signature=base64.b64encode(b"\x01" * 64).decode()), None),
    ("malformed", lambda b: b.pop("heads"), None),
]


@pytest.mark.parametrize(
    ("tamper", "expected"), [(t, e) for _, t, e in BUNDLE_TAMPERING], ids=[n for n, _, _ in BUNDLE_TAMPERING]
)
def test_tampered_bundle_fails(
    sqlite_engine: Engine, tamper: Callable[[dict[str, Any]], None], expected: int | None
) -> None:
    ledger = make_ledger(sqlite_engine)
    fill(ledger)
    bundle = json.loads(json.dumps(ledger.bundle()))
    assert verify_bundle(bundle).ok
    tamper(bundle)
    report = verify_bundle(bundle)
    assert not report.ok
    assert report.first_bad_index == expected, report.reason


# -- keys ----------------------------------------------------------------------------------------------------


def _settings(tmp_path: Path, **kw: Any) -> Settings:
    kw.setdefault("ledger_key", None)
    return Settings(data_dir=tmp_path / "var", _env_file=None, **kw)


def test_key_from_settings_pem_or_base64(tmp_path: Path) -> None:
    pem = KEY.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    expected = key_id(KEY.public_key())
    for text in (pem, KEY_B64, base64.urlsafe_b64encode(bytes(range(32))).decode()):
        key = load_signing_key(_settings(tmp_path, env="prod", ledger_key=SecretStr(text)))
        assert key_id(key.public_key()) == expected
    assert len(expected) == 16 and int(expected, 16) >= 0
    assert not (tmp_path / "var").exists()  # an explicit key never writes a key file


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("not a key!", "neither PEM nor base64"),
        (base64.b64encode(b"short").decode(), "5 bytes, not 32"),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", "PEM"),
    ],
)
def test_bad_key_is_a_configuration_error(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as info:
        load_signing_key(_settings(tmp_path, ledger_key=SecretStr(text)))
    assert "MAESTRO_LEDGER_KEY" in info.value.message


def test_prod_without_a_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="MAESTRO_LEDGER_KEY is not set") as info:
        load_signing_key(_settings(tmp_path, env="prod"))
    assert "openssl genpkey" in info.value.message
    assert not (tmp_path / "var").exists()


def test_dev_generates_a_private_key_file_once(tmp_path: Path) -> None:
    settings = _settings(tmp_path, env="dev")
    first = load_signing_key(settings)
    path = settings.data_dir / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key_id(load_signing_key(settings).public_key()) == key_id(first.public_key())
    assert [p.name for p in path.parent.iterdir()] == [path.name]
    path.write_text("garbage")
    with pytest.raises(ConfigurationError, match="not an Ed25519 PEM key"):
        load_signing_key(settings)


def _create_key_in_process(path: str, start: Any, results: Any) -> None:
    try:
        start.wait(timeout=60)
        results.put((key_id(load_or_create_key_file(Path(path)).public_key()), None))
    except BaseException:
        results.put(("", traceback.format_exc()))
        start.abort()


def test_key_generation_is_race_safe_across_processes(tmp_path: Path) -> None:
    path = tmp_path / "var" / KEY_FILE
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Barrier(PROCESSES), ctx.Queue()
    children = [
        ctx.Process(target=_create_key_in_process, args=(str(path), start, results)) for _ in range(PROCESSES)
    ]
    for child in children:
        child.start()
    try:
        outcomes = [results.get(timeout=120) for _ in children]
    except (queue.Empty, threading.BrokenBarrierError):
        pytest.fail("a key-generating child process neither reported nor failed within 120 s")
    finally:
        for child in children:
            child.join(timeout=60)
            if child.is_alive():
                child.kill()
    errors = [error for _, error in outcomes if error]
    assert not errors, errors[0]
    ids = {kid for kid, _ in outcomes}
    assert ids == {key_id(load_or_create_key_file(path).public_key())}
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary files left behind
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_heads_signed_by_a_rotated_key_verify_with_verify_keys(sqlite_engine: Engine) -> None:
    fill(make_ledger(sqlite_engine), 3)
    rotated = Ledger(sqlite_engine, OTHER_KEY, clock=TickingClock())
    rotated.append("k", {"after": "rotation"})
    assert rotated.verify().first_bad_index == 0  # heads by the old key are not trusted by default
    trusting = Ledger(sqlite_engine, OTHER_KEY, verify_keys=[KEY.public_key()])
    assert trusting.verify().ok
    bundle = trusting.bundle()
    assert set(bundle["public_keys"]) == {key_id(KEY.public_key()), key_id(OTHER_KEY.public_key())}
    assert verify_bundle(bundle).ok


def test_append_many_signs_one_head_per_batch_and_verifies(engine: Engine) -> None:
    ledger = make_ledger(engine)
    ledger.append("single", {"n": 0})
    batch = [("batch", {"n": i}, "acme", "alice") for i in range(1, 6)]
    entries = ledger.append_many(batch)
    assert [e.idx for e in entries] == [1, 2, 3, 4, 5]
    ledger.append("single", {"n": 6})
    assert ledger.append_many([]) == []
    with engine.connect() as conn:
        sizes = [r[0] for r in conn.execute(sa.text("SELECT tree_size FROM ledger_heads ORDER BY tree_size"))]
    assert sizes == [1, 6, 7]
    report = ledger.verify()
    assert report.ok and report.entries == 7
    assert verify_bundle(ledger.bundle()).ok
    with engine.begin() as conn:
        update_entry(conn, 3, payload=flip(row(conn, 3)["payload"]))
    tampered = ledger.verify()
    # the head over the batch no longer matches, so everything after the last good head (size 1) is
    # suspect: with batched heads the first bad index is reported at batch granularity
    assert not tampered.ok and tampered.first_bad_index is not None and 1 <= tampered.first_bad_index <= 3
