"""What the ledger stores and signs: entries, signed heads, and their canonical bytes.

Canonical JSON is ``json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
allow_nan=False)`` encoded as UTF-8. An entry's bytes are the canonical JSON of
``{"actor", "created_at", "idx", "kind", "payload", "tenant"}`` where ``payload`` is embedded verbatim
from ``ledger_entries.payload`` (which is itself canonical), so editing, moving or reordering any
field changes the leaf hash. Times are ISO 8601 UTC with microseconds: ``2026-01-02T03:04:05.000006Z``.

A head's signed bytes are the canonical JSON of ``{"key_id", "root_hash", "signed_at", "tree_size"}``.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from maestro.core.clock import as_utc
from maestro.core.errors import InvalidRequest

MAX_KIND = 64
MAX_NAME = 200  # tenant, actor: ledger_entries columns are VARCHAR(200)
_ISO = "%Y-%m-%dT%H:%M:%S.%fZ"


def canonical_json(value: Any) -> str:
    """The canonical JSON text of a JSON-safe value (sorted keys, no whitespace, UTF-8 friendly)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


to_utc = as_utc
"""``moment`` in UTC; a naive value (SQLite returns those) is taken to be UTC already."""


def iso_utc(moment: datetime) -> str:
    """The ledger's time format: ISO 8601 UTC with microseconds and a ``Z``."""
    return to_utc(moment).strftime(_ISO)


def parse_iso_utc(text: str) -> datetime:
    """Inverse of ``iso_utc``; ``ValueError`` for any other format."""
    return datetime.strptime(text, _ISO).replace(tzinfo=UTC)


def entry_bytes(
    *, idx: int, created_at: str, kind: str, tenant: str | None, actor: str | None, payload_json: str
) -> bytes:
    """The exact bytes hashed into entry ``idx``'s leaf (``payload_json`` is embedded verbatim)."""
    fields = canonical_json({"actor": actor, "created_at": created_at, "idx": idx, "kind": kind})
    tail = canonical_json(tenant)
    return f'{fields[:-1]},"payload":{payload_json},"tenant":{tail}}}'.encode()


def clean_payload(payload: Mapping[str, Any], redact: Callable[[str], str] | None) -> str:
    """Canonical JSON of ``payload`` after passing every string value through ``redact``.

    Keys are kept as they are (they name fields; put no personal data in them). Tuples become lists.
    Raises ``InvalidRequest`` for values JSON cannot represent exactly (NaN, sets, objects, ...).
    """
    if not isinstance(payload, Mapping):
        raise InvalidRequest(f"a ledger payload is a JSON object (dict), not {type(payload).__name__}")
    text = canonical_json(_clean(payload, redact, "payload"))
    _check_text("payload", text)
    return text


def _clean(value: Any, redact: Callable[[str], str] | None, where: str) -> Any:
    if isinstance(value, str):
        return redact(value) if redact is not None else value
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRequest(
                f"ledger {where} is {value}: JSON has no NaN or infinity; store it as a string"
            )
        return value
    if isinstance(value, Mapping):
        cleaned = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidRequest(
                    f"ledger {where} has a {type(key).__name__} key {key!r}: keys are strings"
                )
            cleaned[key] = _clean(item, redact, f"{where}.{key}")
        return cleaned
    if isinstance(value, list | tuple):
        return [_clean(item, redact, f"{where}[{i}]") for i, item in enumerate(value)]
    raise InvalidRequest(
        f"ledger {where} is a {type(value).__name__}, which JSON cannot hold: convert it first "
        "(datetimes to ISO strings, sets to sorted lists, models to dicts)"
    )


def check_name(field: str, value: str | None, limit: int, *, required: bool = False) -> None:
    """Validate ``kind``/``tenant``/``actor``: a non-empty string up to ``limit`` characters, or None."""
    if value is None and not required:
        return
    if not isinstance(value, str) or not value or len(value) > limit:
        raise InvalidRequest(
            f"ledger {field} must be a non-empty string of at most {limit} characters, got {value!r}"
        )
    _check_text(field, value)


def _check_text(field: str, value: str) -> None:
    if "\x00" in value:
        raise InvalidRequest(f"ledger {field} contains a NUL character, which the database cannot store")
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise InvalidRequest(f"ledger {field} is not valid Unicode (lone surrogate at {exc.start})") from exc


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One ledger entry. ``payload`` was redacted before it was hashed; it never holds raw PII."""

    idx: int
    created_at: datetime
    kind: str
    tenant: str | None
    actor: str | None
    payload: dict[str, Any]
    leaf_hash: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for the API and CLI."""
        return {
            "idx": self.idx,
            "created_at": iso_utc(self.created_at),
            "kind": self.kind,
            "tenant": self.tenant,
            "actor": self.actor,
            "payload": self.payload,
            "leaf_hash": self.leaf_hash,
        }


@dataclass(frozen=True, slots=True)
class SignedHead:
    """A signed tree head: the ledger's first ``tree_size`` entries have Merkle root ``root_hash``."""

    tree_size: int
    root_hash: str
    signed_at: datetime
    key_id: str
    signature: str  # base64 Ed25519 over ``signed_bytes()``

    def signed_bytes(self) -> bytes:
        """The exact bytes the signature covers."""
        return head_bytes(self.tree_size, self.root_hash, iso_utc(self.signed_at), self.key_id)

    def verify(self, keys: Mapping[str, Ed25519PublicKey]) -> bool:
        """True when the signature is valid under the key named by ``key_id`` in ``keys``."""
        key = keys.get(self.key_id)
        if key is None:
            return False
        try:
            key.verify(base64.b64decode(self.signature, validate=True), self.signed_bytes())
        except (InvalidSignature, ValueError):
            return False
        return True

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (the CLI's ``ledger head --json`` and the evidence bundle)."""
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "signed_at": iso_utc(self.signed_at),
            "key_id": self.key_id,
            "signature": self.signature,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignedHead:
        """Inverse of ``to_dict``; ``ValueError``/``KeyError``/``TypeError`` when malformed."""
        size, root, key_id, signature = (
            data["tree_size"],
            data["root_hash"],
            data["key_id"],
            data["signature"],
        )
        if not (isinstance(size, int) and isinstance(root, str) and isinstance(key_id, str)):
            raise TypeError("a head has an integer tree_size and string root_hash and key_id")
        if not isinstance(signature, str):
            raise TypeError("a head's signature is a base64 string")
        return cls(size, root, parse_iso_utc(data["signed_at"]), key_id, signature)


def head_bytes(tree_size: int, root_hash: str, signed_at: str, key_id: str) -> bytes:
    """Canonical bytes of a tree head, as signed."""
    head = {"key_id": key_id, "root_hash": root_hash, "signed_at": signed_at, "tree_size": tree_size}
    return canonical_json(head).encode()


def sign_head(
    key: Ed25519PrivateKey, key_id: str, *, tree_size: int, root_hash: str, signed_at: datetime
) -> SignedHead:
    """Sign the head for ``tree_size`` entries with root ``root_hash``."""
    moment = to_utc(signed_at)
    signature = key.sign(head_bytes(tree_size, root_hash, iso_utc(moment), key_id))
    return SignedHead(tree_size, root_hash, moment, key_id, base64.b64encode(signature).decode())
