"""Verification: one pass over entries and signed heads that names the first index it cannot trust.

Used for the database (``Ledger.verify``) and for evidence bundles (``verify_bundle``). Entries and heads
arrive in ascending order (as iterators, so a large ledger is streamed); the running compact range gives
the root at every size, and each head is checked when the pass reaches its size:

- an entry whose ``idx`` is not the next position (a deleted or inserted row) is bad at that position;
- an entry whose recomputed leaf differs from its stored ``leaf_hash`` is bad at its index;
- a head with a bad signature or an unknown key, a root or frontier that differs from the entries, makes
  everything after the last head that passed untrusted (with a head at every size, that is its last
  entry, ``tree_size - 1``);
- a validly signed head larger than the entries that remain is truncation, bad at the entry count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from maestro.core.ledger.merkle import CompactRange, leaf_hash
from maestro.core.ledger.records import SignedHead


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of a verification; ``to_dict()`` is the ``maestro ledger verify --json`` document."""

    ok: bool
    entries: int
    first_bad_index: int | None
    head: str  # root hash hex of the newest signed head; "" when there is none
    reason: str = ""  # human explanation of the first problem (not part of the JSON contract)

    def to_dict(self) -> dict[str, Any]:
        """``{"ok": bool, "entries": int, "first_bad_index": int|null, "head": str}`` (DESIGN.md)."""
        return {
            "ok": self.ok,
            "entries": self.entries,
            "first_bad_index": self.first_bad_index,
            "head": self.head,
        }


@dataclass(frozen=True, slots=True)
class EntryRecord:
    """An entry as verification sees it: its position claim, exact bytes and stored leaf hash."""

    idx: int
    data: bytes
    leaf_hash: str


@dataclass(frozen=True, slots=True)
class HeadRecord:
    """A stored head plus its frontier (``None`` where the frontier is not available, as in bundles)."""

    head: SignedHead
    frontier: Sequence[str] | None = None


class Checker:
    """Consumes entries and heads in order; remembers the smallest bad index and why."""

    def __init__(self, keys: Mapping[str, Ed25519PublicKey], *, keep_leaves: bool = False) -> None:
        self._keys = keys
        self._range = CompactRange()
        self._verified_size = 0  # size of the last head that passed every check
        self.leaves: list[bytes] | None = [] if keep_leaves else None
        self.first_bad: int | None = None
        self.reason = ""

    @property
    def count(self) -> int:
        """Entries accepted in sequence so far."""
        return self._range.size

    def flag(self, index: int, reason: str) -> None:
        """Record a problem at ``index``; the smallest index wins."""
        if self.first_bad is None or index < self.first_bad:
            self.first_bad, self.reason = index, reason

    def run(self, entries: Iterable[EntryRecord], heads: Iterable[HeadRecord]) -> None:
        """Check ``entries`` (ascending idx) against ``heads`` (ascending tree_size)."""
        pending = iter(heads)
        head = next(pending, None)
        for entry in entries:
            while head is not None and head.head.tree_size <= self.count:
                self._check_head(head)
                head = next(pending, None)
            if not self._add_entry(entry):
                break
        while head is not None:
            self._check_head(head)
            head = next(pending, None)

    def _add_entry(self, entry: EntryRecord) -> bool:
        position = self.count
        if entry.idx != position:
            self.flag(position, f"entry {position} is missing: the next stored entry is {entry.idx}")
            return False
        leaf = leaf_hash(entry.data)
        if leaf.hex() != entry.leaf_hash:
            self.flag(position, f"entry {position}'s content does not match its stored leaf hash")
        self._range.append(leaf)
        if self.leaves is not None:
            self.leaves.append(leaf)
        return True

    def _check_head(self, record: HeadRecord) -> None:
        head = record.head
        size = head.tree_size
        if size <= 0:
            self.flag(0, f"a head claims {size} entries; heads start at 1")
        elif not head.verify(self._keys):
            known = "unknown key" if head.key_id not in self._keys else "invalid signature"
            self.flag(self._verified_size, f"the head for {size} entries has an {known} ({head.key_id})")
        elif size > self.count:
            self.flag(
                self.count, f"the signed head for {size} entries covers more than the {self.count} present"
            )
        elif head.root_hash != self._range.root().hex():
            self.flag(self._verified_size, f"the signed root for {size} entries does not match the entries")
        elif record.frontier is not None and list(record.frontier) != self._range.hex_nodes():
            self.flag(self._verified_size, f"the stored frontier of the head for {size} entries was altered")
        else:
            self._verified_size = size

    def report(self, head: SignedHead | None) -> VerifyReport:
        """The final report; ``head`` is the newest signed head that was read."""
        return VerifyReport(
            ok=self.first_bad is None,
            entries=self.count,
            first_bad_index=self.first_bad,
            head=head.root_hash if head is not None else "",
            reason=self.reason or "ok",
        )
