"""RFC 6962 Merkle trees: leaf and node hashes, roots, compact ranges and inclusion proofs.

Pure functions over bytes, no I/O. The tree is the one Certificate Transparency uses (RFC 6962 §2.1,
RFC 9162 §2.1): ``leaf = SHA-256(0x00 || data)``, ``node = SHA-256(0x01 || left || right)``, and for
``n`` leaves that are not a power of two the left subtree holds the largest power of two below ``n``.
The empty tree's root is ``SHA-256("")``.

A ``CompactRange`` (the "frontier") is the list of perfect-subtree roots that cover ``[0, n)``, biggest
first: one hash per set bit of ``n``. It is all an append needs, so appending is O(log n).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """The hash of a leaf: SHA-256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The hash of an interior node: SHA-256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


class CompactRange:
    """The roots of the perfect subtrees covering leaves ``[0, size)``, biggest first."""

    __slots__ = ("_nodes", "_size")

    def __init__(self, size: int = 0, nodes: Iterable[bytes] = ()) -> None:
        node_list = list(nodes)
        if size < 0 or len(node_list) != size.bit_count():
            raise ValueError(
                f"a compact range of size {size} has {size.bit_count()} nodes, not {len(node_list)}"
            )
        if any(len(node) != HASH_SIZE for node in node_list):
            raise ValueError("every compact range node is a 32-byte SHA-256 hash")
        self._size = size
        self._nodes = node_list

    @classmethod
    def from_hex(cls, size: int, nodes: Iterable[str]) -> CompactRange:
        """Parse the hex form stored with a signed head; ``ValueError`` when it is malformed."""
        return cls(size, (bytes.fromhex(node) for node in nodes))

    @property
    def size(self) -> int:
        return self._size

    @property
    def nodes(self) -> tuple[bytes, ...]:
        return tuple(self._nodes)

    def hex_nodes(self) -> list[str]:
        """The nodes as hex strings (the JSON form stored in ``ledger_heads.frontier``)."""
        return [node.hex() for node in self._nodes]

    def copy(self) -> CompactRange:
        return CompactRange(self._size, self._nodes)

    def append(self, leaf: bytes) -> None:
        """Add the leaf hash of entry ``size``: merge equal-sized subtrees like a binary counter."""
        node, size = leaf, self._size
        while size & 1:
            node = node_hash(self._nodes.pop(), node)
            size >>= 1
        self._nodes.append(node)
        self._size += 1

    def root(self) -> bytes:
        """The RFC 6962 root of the ``size`` leaves (folding the subtree roots from the right)."""
        if not self._nodes:
            return EMPTY_ROOT
        root = self._nodes[-1]
        for node in reversed(self._nodes[:-1]):
            root = node_hash(node, root)
        return root


class MerkleTree:
    """All levels of the tree over ``leaves`` (leaf hashes): its root and every inclusion proof.

    Levels pair nodes left to right and carry a last unpaired node up unchanged, which builds exactly
    the RFC 6962 tree. Memory is about two hashes per leaf.
    """

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self._levels: list[list[bytes]] = [list(leaves)]
        while len(self._levels[-1]) > 1:
            below = self._levels[-1]
            level = [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
            if len(below) % 2:
                level.append(below[-1])
            self._levels.append(level)

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def root(self) -> bytes:
        """The tree's root hash (``SHA-256("")`` when empty)."""
        return self._levels[-1][0] if self.size else EMPTY_ROOT

    def inclusion_proof(self, index: int) -> list[bytes]:
        """RFC 6962 audit path of leaf ``index``, from the leaf's sibling up to the root's child."""
        if not 0 <= index < self.size:
            raise IndexError(f"leaf {index} is outside a tree of {self.size} leaves")
        proof = []
        for level in self._levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                proof.append(level[sibling])
            index >>= 1
        return proof


def root_of(leaves: Sequence[bytes]) -> bytes:
    """The RFC 6962 Merkle tree hash of ``leaves`` (leaf hashes)."""
    compact = CompactRange()
    for leaf in leaves:
        compact.append(leaf)
    return compact.root()


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes | None:
    """The root that ``proof`` implies for leaf hash ``leaf`` at ``index`` in a tree of ``size`` leaves.

    ``None`` when the proof has the wrong shape for ``(index, size)``. RFC 9162 §2.1.3.2.
    """
    if not 0 <= index < size:
        return None
    fn, sn, node = index, size - 1, leaf
    for sibling in proof:
        if sn == 0 or len(sibling) != HASH_SIZE:
            return None
        if fn & 1 or fn == sn:
            node = node_hash(sibling, node)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            node = node_hash(node, sibling)
        fn >>= 1
        sn >>= 1
    return node if sn == 0 else None


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """True when ``proof`` shows that leaf hash ``leaf`` is leaf ``index`` of the tree with ``root``."""
    return root_from_inclusion_proof(index, size, leaf, proof) == root
