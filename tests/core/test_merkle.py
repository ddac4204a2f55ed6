"""RFC 6962 Merkle tree: reference vectors, a naive recursive model, compact ranges, inclusion proofs."""

from __future__ import annotations

import hashlib

import pytest

from maestro.core.ledger.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MerkleTree,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_of,
    verify_inclusion,
)

# certificate-transparency / Trillian reference vectors (merkle/testonly/constants.go)
CT_LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657")] + [
    bytes.fromhex("606162636465666768696a6b6c6d6e6f")
]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_PROOFS = {  # (leaf index, tree size) -> audit path
    (0, 1): [],
    (0, 8): [
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    (5, 8): [
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ],
    (2, 3): ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    (1, 5): [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ],
}


def naive_mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH, literally: split at the largest power of two below n."""
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(naive_mth(leaves[:k]), naive_mth(leaves[k:]))


def naive_path(m: int, leaves: list[bytes]) -> list[bytes]:
    """RFC 6962 §2.1.1 PATH(m, D[n]), literally."""
    n = len(leaves)
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return naive_path(m, leaves[:k]) + [naive_mth(leaves[k:])]
    return naive_path(m - k, leaves[k:]) + [naive_mth(leaves[:k])]


def leaves_for(n: int) -> list[bytes]:
    return [leaf_hash(f"entry {i}".encode()) for i in range(n)]


@pytest.mark.parametrize("size", range(len(CT_ROOTS)))
def test_reference_roots(size: int) -> None:
    leaves = [leaf_hash(data) for data in CT_LEAVES[:size]]
    assert root_of(leaves).hex() == CT_ROOTS[size]
    assert MerkleTree(leaves).root().hex() == CT_ROOTS[size]
    assert naive_mth(leaves).hex() == CT_ROOTS[size]


@pytest.mark.parametrize(("index", "size"), sorted(CT_PROOFS))
def test_reference_inclusion_proofs(index: int, size: int) -> None:
    leaves = [leaf_hash(data) for data in CT_LEAVES[:size]]
    proof = MerkleTree(leaves).inclusion_proof(index)
    assert [node.hex() for node in proof] == CT_PROOFS[(index, size)]
    assert verify_inclusion(index, size, leaves[index], proof, bytes.fromhex(CT_ROOTS[size]))


def test_empty_tree() -> None:
    assert EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert CompactRange().root() == EMPTY_ROOT == MerkleTree([]).root()
    with pytest.raises(IndexError):
        MerkleTree([]).inclusion_proof(0)


def test_roots_and_compact_ranges_match_the_naive_tree_up_to_70() -> None:
    leaves = leaves_for(70)
    compact = CompactRange()
    for size in range(71):
        expected = naive_mth(leaves[:size])
        assert compact.root() == expected, size
        assert MerkleTree(leaves[:size]).root() == expected, size
        # the frontier: one perfect-subtree root per set bit of size, biggest first
        start, nodes = 0, []
        for bit in reversed(range(size.bit_length())):
            if size >> bit & 1:
                nodes.append(naive_mth(leaves[start : start + (1 << bit)]))
                start += 1 << bit
        assert list(compact.nodes) == nodes, size
        reparsed = CompactRange.from_hex(size, compact.hex_nodes())
        assert reparsed.root() == expected
        if size < 70:
            compact.append(leaves[size])


def test_inclusion_proofs_match_the_naive_path_up_to_70() -> None:
    leaves = leaves_for(70)
    for size in range(1, 71):
        tree = MerkleTree(leaves[:size])
        root = naive_mth(leaves[:size])
        for index in range(size):
            proof = tree.inclusion_proof(index)
            assert proof == naive_path(index, leaves[:size]), (index, size)
            assert verify_inclusion(index, size, leaves[index], proof, root)


def test_inclusion_proofs_reject_anything_else() -> None:
    leaves = leaves_for(13)
    tree = MerkleTree(leaves)
    root = tree.root()
    proof = tree.inclusion_proof(6)
    assert verify_inclusion(6, 13, leaves[6], proof, root)
    assert not verify_inclusion(7, 13, leaves[6], proof, root)  # wrong index
    assert not verify_inclusion(6, 13, leaves[7], proof, root)  # wrong leaf
    assert not verify_inclusion(6, 7, leaves[6], proof, root)  # wrong size (another shape)
    assert not verify_inclusion(6, 13, leaves[6], proof, leaves[0])  # wrong root
    assert not verify_inclusion(6, 13, leaves[6], proof[:-1], root)  # too short
    assert not verify_inclusion(6, 13, leaves[6], [*proof, leaves[0]], root)  # too long
    flipped = bytearray(proof[1])
    flipped[0] ^= 1
    assert not verify_inclusion(6, 13, leaves[6], [proof[0], bytes(flipped), *proof[2:]], root)
    assert root_from_inclusion_proof(13, 13, leaves[6], proof) is None
    assert root_from_inclusion_proof(-1, 13, leaves[6], proof) is None


def test_compact_range_rejects_a_malformed_frontier() -> None:
    with pytest.raises(ValueError, match="has 2 nodes"):
        CompactRange(3, [leaf_hash(b"a")])
    with pytest.raises(ValueError, match="32-byte"):
        CompactRange(1, [b"short"])
    with pytest.raises(ValueError):
        CompactRange.from_hex(1, ["zz"])
