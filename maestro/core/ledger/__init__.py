"""The tamper-evident ledger: an append-only log with an RFC 6962 Merkle tree and Ed25519-signed heads.

It records decisions, policy denials, approvals, effects and eval results. Each entry is a leaf of a
Merkle tree (``merkle.py``) over its canonical bytes (``records.py``); each append signs a tree head
for the new size in the same transaction (``store.py``), so editing, reordering, deleting or
truncating entries, or forging a head, is caught by ``Ledger.verify`` (``checker.py``), which names the
first index it cannot trust. ``Ledger.export`` writes a signed evidence bundle (``bundle.py``) that
``verify_bundle`` checks with nothing but the bundle. Keys: ``signing.py``.

Raw PII must never enter an entry: a hashed entry cannot be edited later. ``Ledger(redact=...)`` passes
every payload string through the PII guard before hashing; the composition root plugs it in (core
does not import tools).

Typical wiring::

    ledger = Ledger(engine, load_signing_key(settings), redact=pii_guard.redact)
    with engine.begin() as conn:
        ...  # write the decision
        ledger.append("router.decision", {"decision_id": ...}, tenant="acme", actor="acme/alice", conn=conn)
"""

from maestro.core.errors import LedgerCorrupted
from maestro.core.ledger.bundle import verify_bundle
from maestro.core.ledger.checker import VerifyReport
from maestro.core.ledger.records import LedgerEntry, SignedHead
from maestro.core.ledger.signing import key_id, load_signing_key, parse_private_key
from maestro.core.ledger.store import Ledger

__all__ = [
    "Ledger",
    "LedgerCorrupted",
    "LedgerEntry",
    "SignedHead",
    "VerifyReport",
    "key_id",
    "load_signing_key",
    "parse_private_key",
    "verify_bundle",
]
