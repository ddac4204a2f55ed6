"""``Ledger``: appends, signed heads, listing, verification and export over the state DB.

Every append inserts the entry and a newly signed head for the new size in one transaction, so the
newest signed head always covers every committed entry and any truncation shows against it. Appends
are serialised: PostgreSQL takes a transaction-scoped advisory lock first; SQLite's ``BEGIN IMMEDIATE``
(see ``maestro.core.db``) already admits one writer at a time. The newest head's frontier is read inside
that same transaction, so concurrent appenders from any number of processes never fork the log.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy.engine import Connection, Engine, Row

from maestro.core.clock import utcnow
from maestro.core.errors import InvalidRequest, LedgerCorrupted
from maestro.core.ledger.bundle import make_bundle
from maestro.core.ledger.checker import Checker, EntryRecord, HeadRecord, VerifyReport
from maestro.core.ledger.merkle import CompactRange, leaf_hash
from maestro.core.ledger.records import (
    MAX_KIND,
    MAX_NAME,
    LedgerEntry,
    SignedHead,
    check_name,
    clean_payload,
    entry_bytes,
    iso_utc,
    sign_head,
    to_utc,
)
from maestro.core.ledger.signing import key_id
from maestro.core.schema import ledger_entries, ledger_heads

ADVISORY_LOCK_KEY = 0x6D61657374726F4C  # "maestroL": PostgreSQL advisory lock serialising appends
_PAGE = 2_000  # rows per read transaction when streaming (keeps SQLite's write lock short)
_MIN_BIGINT = -(2**63)

_E = ledger_entries.c
_H = ledger_heads.c
_HEAD_COLS = (_H.tree_size, _H.root_hash, _H.signed_at, _H.key_id, _H.signature)
_ENTRY_COLS = (_E.idx, _E.created_at, _E.kind, _E.tenant, _E.actor, _E.payload, _E.leaf_hash)
_PG_LOCK = sa.text("SELECT pg_advisory_xact_lock(:k_lock)").bindparams(k_lock=ADVISORY_LOCK_KEY)
_NEWEST_FRONTIER = sa.select(_H.tree_size, _H.root_hash, _H.frontier).order_by(_H.tree_size.desc()).limit(1)
_NEWEST_HEAD = sa.select(*_HEAD_COLS).order_by(_H.tree_size.desc()).limit(1)
_INSERT_ENTRY = sa.insert(ledger_entries)
_INSERT_HEAD = sa.insert(ledger_heads)
_ENTRY_PAGE = (
    sa.select(*_ENTRY_COLS)
    .where(_E.idx > sa.bindparam("k_after"), _E.idx < sa.bindparam("k_below"))
    .order_by(_E.idx)
    .limit(_PAGE)
)
# the same page with created_at as stored text: for a SQLite row whose timestamp no longer parses
_ENTRY_PAGE_RAW = (
    sa.select(*(sa.type_coerce(_E.created_at, sa.String) if c is _E.created_at else c for c in _ENTRY_COLS))
    .where(_E.idx > sa.bindparam("k_after"), _E.idx < sa.bindparam("k_below"))
    .order_by(_E.idx)
    .limit(_PAGE)
)
_HEAD_PAGE = (
    sa.select(*_HEAD_COLS, _H.frontier)
    .where(_H.tree_size > sa.bindparam("k_after"), _H.tree_size <= sa.bindparam("k_upto"))
    .order_by(_H.tree_size)
    .limit(_PAGE)
)
# one statement, so PostgreSQL reads both maxima from one snapshot
_EXTENT = sa.select(
    sa.select(sa.func.max(_E.idx)).scalar_subquery(), sa.select(sa.func.max(_H.tree_size)).scalar_subquery()
)


class Ledger:
    """The append-only, tamper-evident log of decisions, denials, approvals, effects and eval results.

    Raw PII must never enter an entry: every string value of a payload passes through ``redact`` (the
    composition root plugs the PII guard in) before it is hashed and stored, because a hashed entry can
    never be edited afterwards without breaking the ledger. ``kind``, ``tenant``, ``actor`` and payload
    keys are not redacted: keep them identifiers.

    ``verify_keys`` adds public keys whose heads are accepted besides the signing key's (key rotation).
    The engine must come from ``maestro.core.db.create_db_engine`` (SQLite transactions are
    ``BEGIN IMMEDIATE`` there) and PostgreSQL transactions must be READ COMMITTED (the default).
    """

    def __init__(
        self,
        engine: Engine,
        signing_key: Ed25519PrivateKey,
        *,
        redact: Callable[[str], str] | None = None,
        clock: Callable[[], datetime] = utcnow,
        verify_keys: Sequence[Ed25519PublicKey] = (),
    ) -> None:
        self._engine = engine
        self._key = signing_key
        self._key_id = key_id(signing_key.public_key())
        self._redact = redact
        self._clock = clock
        keys = {key_id(key): key for key in verify_keys}
        keys[self._key_id] = signing_key.public_key()
        self._keys: Mapping[str, Ed25519PublicKey] = keys

    @property
    def key_id(self) -> str:
        """The id of the key that signs new heads."""
        return self._key_id

    def append(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        tenant: str | None = None,
        actor: str | None = None,
        conn: Connection | None = None,
    ) -> LedgerEntry:
        """Append one entry and sign the head for the new size; return the entry.

        With ``conn``, the entry and its head are written in the caller's transaction (they commit or
        roll back with it, and later appends wait for it on PostgreSQL); without, in a transaction of
        their own. Raises ``InvalidRequest`` for a payload JSON cannot hold exactly, ``LedgerCorrupted``
        when the stored ledger contradicts its newest head (nothing is written then).
        """
        check_name("kind", kind, MAX_KIND, required=True)
        check_name("tenant", tenant, MAX_NAME)
        check_name("actor", actor, MAX_NAME)
        payload_json = clean_payload(payload, self._redact)
        if conn is not None:
            return self._append(conn, kind, payload_json, tenant, actor)
        with self._engine.begin() as own:
            return self._append(own, kind, payload_json, tenant, actor)

    def append_many(
        self,
        items: Sequence[tuple[str, Mapping[str, Any], str | None, str | None]],
        *,
        conn: Connection | None = None,
    ) -> list[LedgerEntry]:
        """Append several ``(kind, payload, tenant, actor)`` entries under one signed head.

        One lock, one head read, one head signature for the whole batch: what a batching writer (the
        router's settlement writer) uses. Same checks and guarantees as :meth:`append`.
        """
        if not items:
            return []
        prepared = []
        for kind, payload, tenant, actor in items:
            check_name("kind", kind, MAX_KIND, required=True)
            check_name("tenant", tenant, MAX_NAME)
            check_name("actor", actor, MAX_NAME)
            prepared.append((kind, clean_payload(payload, self._redact), tenant, actor))
        if conn is not None:
            return self._append_batch(conn, prepared)
        with self._engine.begin() as own:
            return self._append_batch(own, prepared)

    def _append(
        self, conn: Connection, kind: str, payload_json: str, tenant: str | None, actor: str | None
    ) -> LedgerEntry:
        return self._append_batch(conn, [(kind, payload_json, tenant, actor)])[0]

    def _append_batch(
        self, conn: Connection, batch: Sequence[tuple[str, str, str | None, str | None]]
    ) -> list[LedgerEntry]:
        if conn.dialect.name == "postgresql":
            conn.execute(_PG_LOCK)
        frontier = _frontier_of(conn.execute(_NEWEST_FRONTIER).first())
        first = frontier.size
        now = to_utc(self._clock())
        created = iso_utc(now)
        rows = []
        entries = []
        for offset, (kind, payload_json, tenant, actor) in enumerate(batch):
            idx = first + offset
            data = entry_bytes(
                idx=idx, created_at=created, kind=kind, tenant=tenant, actor=actor, payload_json=payload_json
            )
            leaf = leaf_hash(data)
            frontier.append(leaf)
            rows.append(
                {
                    "idx": idx,
                    "created_at": now,
                    "kind": kind,
                    "tenant": tenant,
                    "actor": actor,
                    "payload": payload_json,
                    "leaf_hash": leaf.hex(),
                }
            )
            entries.append(LedgerEntry(idx, now, kind, tenant, actor, json.loads(payload_json), leaf.hex()))
        head = sign_head(
            self._key, self._key_id, tree_size=frontier.size, root_hash=frontier.root().hex(), signed_at=now
        )
        try:
            conn.execute(_INSERT_ENTRY, rows)
            conn.execute(
                _INSERT_HEAD,
                {
                    "tree_size": head.tree_size,
                    "root_hash": head.root_hash,
                    "signed_at": head.signed_at,
                    "signature": head.signature,
                    "key_id": head.key_id,
                    "frontier": frontier.hex_nodes(),
                },
            )
        except sa.exc.IntegrityError as exc:
            raise LedgerCorrupted(
                f"ledger entry {first} already exists although the newest signed head covers {first} "
                "entries: entries were added without a head; run `maestro ledger verify`"
            ) from exc
        return entries

    def head(self) -> SignedHead | None:
        """The newest signed head, or ``None`` while the ledger is empty."""
        with self._engine.connect() as conn:
            row = conn.execute(_NEWEST_HEAD).first()
        return None if row is None else _head_of(row)

    def entries(
        self,
        *,
        tenant: str | None = None,
        kind: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> list[LedgerEntry]:
        """Entries newest first, optionally of one tenant and/or kind; ``before`` pages (idx < before)."""
        if not 1 <= limit <= 10_000:
            raise InvalidRequest(f"limit must be between 1 and 10000, got {limit}")
        query = sa.select(*_ENTRY_COLS).order_by(_E.idx.desc()).limit(limit)
        if tenant is not None:
            query = query.where(_E.tenant == tenant)
        if kind is not None:
            query = query.where(_E.kind == kind)
        if before is not None:
            query = query.where(_E.idx < before)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_entry_of(row) for row in rows]

    def verify(self) -> VerifyReport:
        """Check every entry and every stored head; name the first index that cannot be trusted.

        Streams the ledger in pages (memory stays O(log n)); appends may continue meanwhile and are
        outside the report. What cannot be caught from the database alone: an attacker who deletes the
        last entries together with every head that covered them. Export bundles (or publish heads)
        regularly to anchor the log outside the database.
        """
        newest = self.head()
        size = newest.tree_size if newest is not None else 0
        checker = Checker(self._keys)
        checker.run((record for record, _ in self._stream_entries(size)), self._stream_heads(size))
        with self._engine.connect() as conn:
            max_idx, max_size = conn.execute(_EXTENT).one()
        signed = max_size or 0
        if max_idx is not None and max_idx + 1 > signed:
            checker.flag(signed, f"entries {signed}..{max_idx} are not covered by any signed head")
        return checker.report(newest)

    def bundle(self, *, tenant: str | None = None) -> dict[str, Any]:
        """A signed evidence bundle of the whole ledger, or of one tenant's entries (see ``bundle.py``).

        Raises ``LedgerCorrupted`` when the ledger does not verify: evidence is never exported from a
        log that contradicts its own heads.
        """
        newest = self.head()
        size = newest.tree_size if newest is not None else 0
        checker = Checker(self._keys, keep_leaves=True)
        chosen: list[EntryRecord] = []
        heads: list[SignedHead] = []

        def entries() -> Iterator[EntryRecord]:
            for record, entry_tenant in self._stream_entries(size):
                if tenant is None or entry_tenant == tenant:
                    chosen.append(record)
                yield record

        def all_heads() -> Iterator[HeadRecord]:
            for record in self._stream_heads(size):
                heads.append(record.head)
                yield record

        checker.run(entries(), all_heads())
        if checker.first_bad is not None:
            raise LedgerCorrupted(
                f"the ledger does not verify from entry {checker.first_bad} ({checker.reason}): "
                "run `maestro ledger verify` and investigate before exporting evidence"
            )
        return make_bundle(
            key=self._key,
            entries=chosen,
            leaves=checker.leaves or [],
            heads=heads if tenant is None else heads[-1:],
            tenant=tenant,
            exported_at=to_utc(self._clock()),
            public_keys=self._keys,
        )

    def export(self, path: str | os.PathLike[str], *, tenant: str | None = None) -> dict[str, Any]:
        """Write ``bundle(tenant=...)`` to ``path`` as JSON (atomically) and return it."""
        bundle = self.bundle(tenant=tenant)
        target = Path(path)
        temp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        temp.write_text(json.dumps(bundle, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        os.replace(temp, target)
        return bundle

    def _stream_entries(self, below: int) -> Iterator[tuple[EntryRecord, str | None]]:
        after = _MIN_BIGINT
        while True:
            params = {"k_after": after, "k_below": below}
            with self._engine.connect() as conn:
                try:
                    rows = conn.execute(_ENTRY_PAGE, params).all()
                except ValueError:  # a created_at that is not a timestamp any more: hash what is stored
                    rows = conn.execute(_ENTRY_PAGE_RAW, params).all()
            for row in rows:
                yield _record_of(row), row.tenant
            if len(rows) < _PAGE:
                return
            after = rows[-1].idx

    def _stream_heads(self, upto: int) -> Iterator[HeadRecord]:
        after = _MIN_BIGINT
        while True:
            with self._engine.connect() as conn:
                rows = conn.execute(_HEAD_PAGE, {"k_after": after, "k_upto": upto}).all()
            for row in rows:
                yield HeadRecord(_head_of(row), row.frontier)
            if len(rows) < _PAGE:
                return
            after = rows[-1].tree_size


def _frontier_of(row: Row[*tuple[Any, ...]] | None) -> CompactRange:
    """The newest head's compact range, checked against its signed root before anything extends it."""
    if row is None:
        return CompactRange()
    try:
        frontier = CompactRange.from_hex(row.tree_size, row.frontier)
    except (ValueError, TypeError) as exc:
        raise LedgerCorrupted(
            f"the stored frontier of the head for {row.tree_size} entries is malformed: "
            "run `maestro ledger verify`"
        ) from exc
    if frontier.root().hex() != row.root_hash:
        raise LedgerCorrupted(
            f"the stored frontier of the head for {row.tree_size} entries does not match its signed root: "
            "run `maestro ledger verify`"
        )
    return frontier


def _head_of(row: Row[*tuple[Any, ...]]) -> SignedHead:
    return SignedHead(row.tree_size, row.root_hash, to_utc(row.signed_at), row.key_id, row.signature)


def _entry_of(row: Row[*tuple[Any, ...]]) -> LedgerEntry:
    try:
        payload = json.loads(row.payload)
    except ValueError as exc:
        raise LedgerCorrupted(
            f"ledger entry {row.idx}'s payload is not JSON: it was altered; run `maestro ledger verify`"
        ) from exc
    return LedgerEntry(
        row.idx, to_utc(row.created_at), row.kind, row.tenant, row.actor, payload, row.leaf_hash
    )


def _stored_time(value: datetime | str) -> str:
    """The ISO form of a stored created_at; unparseable text is kept (and then fails its leaf hash)."""
    if isinstance(value, datetime):
        return iso_utc(value)
    try:
        return iso_utc(datetime.fromisoformat(value))
    except ValueError:
        return str(value)


def _record_of(row: Row[*tuple[Any, ...]]) -> EntryRecord:
    data = entry_bytes(
        idx=row.idx,
        created_at=_stored_time(row.created_at),
        kind=row.kind,
        tenant=row.tenant,
        actor=row.actor,
        payload_json=row.payload,
    )
    return EntryRecord(row.idx, data, row.leaf_hash)
