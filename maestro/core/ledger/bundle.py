"""Evidence bundles: a self-contained, signed export of the ledger that anyone can check offline.

Format ``maestro-ledger-bundle/1`` (one JSON object)::

    {
      "format": "maestro-ledger-bundle/1",
      "tree": "rfc6962-sha256",
      "exported_at": "2026-01-02T03:04:05.000006Z",
      "tenant": null,                  # or "acme": only its entries (proofs against the full tree)
      "key_id": "0123456789abcdef",    # the key that signed this bundle
      "public_keys": {"0123456789abcdef": "<base64 raw 32-byte Ed25519 public key>", ...},
      "head": {"tree_size", "root_hash", "signed_at", "key_id", "signature"} | null,   # the final signed head
      "heads": [head, ...],            # every stored head, ascending; only [head] in a tenant bundle
      "entries": [{"idx": 0, "leaf_hash": "<hex>", "entry": "<the exact canonical JSON that was hashed>",
                   "proof": ["<hex>", ...]}, ...],   # RFC 6962 inclusion proof of the entry in "head"
      "signature": "<base64 Ed25519 over b'maestro-ledger-bundle/1\\n' + SHA-256(canonical JSON of the
                    bundle without 'signature')>"
    }

A whole-ledger bundle is verified like the database (every leaf, the root at every head, gaps,
truncation); a tenant bundle entry by entry through its proof. The bundle signature binds the rest
(dropping entries from a tenant bundle, changing the scope). A bundle proves integrity relative to
its keys: pass ``trusted_key_ids`` (the ids published for the deployment) to also prove who signed.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from maestro.core.ledger.checker import Checker, EntryRecord, HeadRecord, VerifyReport
from maestro.core.ledger.merkle import MerkleTree, leaf_hash, root_from_inclusion_proof
from maestro.core.ledger.records import SignedHead, canonical_json, iso_utc
from maestro.core.ledger.signing import key_id, public_key_from_b64, public_raw

FORMAT = "maestro-ledger-bundle/1"
TREE = "rfc6962-sha256"
_CONTEXT = FORMAT.encode() + b"\n"


def make_bundle(
    *,
    key: Ed25519PrivateKey,
    entries: Sequence[EntryRecord],
    leaves: Sequence[bytes],
    heads: Sequence[SignedHead],
    tenant: str | None,
    exported_at: datetime,
    public_keys: Mapping[str, Ed25519PublicKey] | None = None,
) -> dict[str, Any]:
    """Build and sign a bundle; ``leaves`` are all leaf hashes up to the final head (already verified)."""
    own_id = key_id(key.public_key())
    keys = dict(public_keys or {})
    keys[own_id] = key.public_key()
    used = {head.key_id for head in heads} | {own_id}
    tree = MerkleTree(leaves)
    body: dict[str, Any] = {
        "format": FORMAT,
        "tree": TREE,
        "exported_at": iso_utc(exported_at),
        "tenant": tenant,
        "key_id": own_id,
        "public_keys": {
            kid: base64.b64encode(public_raw(keys[kid])).decode() for kid in sorted(used) if kid in keys
        },
        "head": heads[-1].to_dict() if heads else None,
        "heads": [head.to_dict() for head in heads],
        "entries": [
            {
                "idx": record.idx,
                "leaf_hash": record.leaf_hash,
                "entry": record.data.decode(),
                "proof": [node.hex() for node in tree.inclusion_proof(record.idx)],
            }
            for record in entries
        ],
    }
    body["signature"] = base64.b64encode(key.sign(_signed_bytes(body))).decode()
    return body


def _signed_bytes(bundle: Mapping[str, Any]) -> bytes:
    unsigned = {name: value for name, value in bundle.items() if name != "signature"}
    return _CONTEXT + hashlib.sha256(canonical_json(unsigned).encode()).digest()


@dataclass(frozen=True, slots=True)
class _Entry:
    idx: int
    text: str
    data: bytes  # text as UTF-8: the bytes that were hashed
    leaf_hash: str
    proof: list[bytes]


@dataclass(frozen=True, slots=True)
class _Parsed:
    tenant: str | None
    key_id: str
    keys: dict[str, Ed25519PublicKey]
    head: SignedHead | None
    heads: list[SignedHead]
    entries: list[_Entry]


def verify_bundle(
    bundle: Mapping[str, Any], *, trusted_key_ids: Collection[str] | None = None
) -> VerifyReport:
    """Verify an evidence bundle with nothing but its own content (and optionally the trusted key ids).

    Recomputes every leaf from the exact entry bytes, checks every inclusion proof against the final
    head, the root at every head (whole-ledger bundles), every head signature and the bundle signature.
    ``first_bad_index`` names the first entry that fails; it is ``None`` with ``ok`` false when the
    problem is not one entry's (malformed bundle, untrusted key, bundle signature).
    """
    try:
        parsed = _parse(bundle)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return VerifyReport(False, 0, None, "", reason=f"the bundle is malformed: {exc!r}")
    root = parsed.head.root_hash if parsed.head is not None else ""
    keys = parsed.keys
    if trusted_key_ids is not None:
        keys = {kid: key for kid, key in keys.items() if kid in trusted_key_ids}
        if parsed.key_id not in keys:
            reason = f"the bundle is signed by key {parsed.key_id}, which is not trusted"
            return VerifyReport(False, len(parsed.entries), None, root, reason=reason)
    checker = Checker(keys)
    if parsed.tenant is None:
        records = [EntryRecord(entry.idx, entry.data, entry.leaf_hash) for entry in parsed.entries]
        checker.run(records, [HeadRecord(head) for head in parsed.heads])
    elif parsed.head is not None and not parsed.head.verify(keys):
        checker.flag(parsed.entries[0].idx if parsed.entries else 0, "the final head's signature is invalid")
    _check_entries(checker, parsed)
    report = checker.report(parsed.head)
    report = VerifyReport(report.ok, len(parsed.entries), report.first_bad_index, root, report.reason)
    if report.ok and not _signature_ok(bundle, keys.get(parsed.key_id)):
        reason = "the bundle signature is invalid: the bundle was altered after export"
        return VerifyReport(False, report.entries, None, root, reason=reason)
    return report


def _check_entries(checker: Checker, parsed: _Parsed) -> None:
    """Per entry: its bytes name its index (and tenant), hash to its leaf, and prove into the head."""
    head = parsed.head
    previous = -1
    for entry in parsed.entries:
        idx = entry.idx
        try:
            content = json.loads(entry.text)
        except ValueError:
            content = None
        if (
            not isinstance(content, dict)
            or content.get("idx") != idx
            or canonical_json(content) != entry.text
        ):
            checker.flag(max(idx, 0), f"entry {idx}'s bytes are not the canonical entry {idx}")
        elif parsed.tenant is not None and content.get("tenant") != parsed.tenant:
            checker.flag(idx, f"entry {idx} belongs to another tenant than the bundle's {parsed.tenant!r}")
        if idx <= previous:
            checker.flag(max(previous + 1, 0), f"entries are not in ascending order at {idx}")
        previous = max(previous, idx)
        leaf = leaf_hash(entry.data)
        if leaf.hex() != entry.leaf_hash:
            checker.flag(max(idx, 0), f"entry {idx}'s bytes do not match its leaf hash")
        if head is None or root_from_inclusion_proof(idx, head.tree_size, leaf, entry.proof) != bytes.fromhex(
            head.root_hash
        ):
            checker.flag(max(idx, 0), f"entry {idx}'s inclusion proof does not lead to the signed head")


def _signature_ok(bundle: Mapping[str, Any], key: Ed25519PublicKey | None) -> bool:
    signature = bundle.get("signature")
    if key is None or not isinstance(signature, str):
        return False
    try:
        key.verify(base64.b64decode(signature, validate=True), _signed_bytes(bundle))
    except (InvalidSignature, ValueError):
        return False
    return True


def _parse(bundle: Mapping[str, Any]) -> _Parsed:
    if bundle.get("format") != FORMAT or bundle.get("tree") != TREE:
        raise ValueError(f"not a {FORMAT} bundle over {TREE}")
    tenant = bundle["tenant"]
    if tenant is not None and not isinstance(tenant, str):
        raise TypeError("tenant is a string or null")
    keys: dict[str, Ed25519PublicKey] = {}
    for kid, raw in dict(bundle["public_keys"]).items():
        key = public_key_from_b64(raw)
        if key_id(key) != kid:
            raise ValueError(f"public key {kid} does not hash to its id")
        keys[kid] = key
    heads = [SignedHead.from_dict(item) for item in bundle["heads"]]
    head = SignedHead.from_dict(bundle["head"]) if bundle["head"] is not None else None
    if (heads[-1] if heads else None) != head:
        raise ValueError("the final head is not the last of the heads")
    if head is not None and len(bytes.fromhex(head.root_hash)) != 32:
        raise ValueError("the final head's root_hash is not a SHA-256 hash")
    entries = []
    for item in bundle["entries"]:
        idx, text, leaf, proof = item["idx"], item["entry"], item["leaf_hash"], item["proof"]
        if not (
            isinstance(idx, int)
            and isinstance(text, str)
            and isinstance(leaf, str)
            and isinstance(proof, list)
        ):
            raise TypeError("an entry has an integer idx, string entry and leaf_hash, and a proof list")
        entries.append(_Entry(idx, text, text.encode(), leaf, [bytes.fromhex(node) for node in proof]))
    return _Parsed(tenant, str(bundle["key_id"]), keys, head, heads, entries)
