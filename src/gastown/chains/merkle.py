"""The town log's Merkle tree: RFC 6962 hashing, inclusion and consistency proofs.

Leaves are the canonical bytes of chain records.  ``leaf = sha256(0x00 || data)``,
``node = sha256(0x01 || left || right)``; the tree over ``n`` leaves splits at the
largest power of two below ``n`` (RFC 6962 §2.1).  :class:`Tree` keeps every
complete, aligned subtree's hash (about ``2n`` hashes), so a root or a proof for
any size up to ``n`` costs ``O(log n)`` lookups after one ``O(n)`` build.

The verifiers (:func:`verify_inclusion`, :func:`verify_consistency`) follow the
iterative algorithms of RFC 9162 §2.1.3.2 and §2.1.4.2 and need nothing but
hashes: a proof is checkable offline.
"""

from __future__ import annotations

import hashlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["leaf_hash", "node_hash", "Tree", "verify_inclusion", "verify_consistency",
           "EMPTY_ROOT"]

#: the hash of the empty tree (RFC 6962: sha256 of nothing)
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: sha256(0x00 || data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: sha256(0x01 || left || right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (``n`` >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class Tree:
    """An append-only tree of leaf hashes with every complete subtree cached.

    ``levels[k][i]`` is the hash of leaves ``[i * 2**k, (i + 1) * 2**k)``.
    """

    def __init__(self, leaves: Sequence[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        for h in leaves:
            self.append(h)

    @property
    def size(self) -> int:
        """The number of leaves."""
        return len(self.levels[0])

    def append(self, leaf: bytes) -> None:
        """Add one leaf hash (``leaf_hash(data)``), completing the subtrees it closes."""
        self.levels[0].append(leaf)
        k = 0
        # a node at level k is complete when its level holds an even count
        while len(self.levels[k]) % 2 == 0:
            if len(self.levels) == k + 1:
                self.levels.append([])
            pair = self.levels[k][-2:]
            self.levels[k + 1].append(node_hash(pair[0], pair[1]))
            k += 1

    def _mth(self, lo: int, hi: int) -> bytes:
        """MTH of leaves ``[lo, hi)`` (a range the RFC's recursion can produce)."""
        n = hi - lo
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and lo % n == 0:
            return self.levels[n.bit_length() - 1][lo // n]
        k = _split(n)
        return node_hash(self._mth(lo, lo + k), self._mth(lo + k, hi))

    def root(self, size: int | None = None) -> bytes:
        """The root hash of the first ``size`` leaves (all by default)."""
        size = self.size if size is None else size
        if not 0 <= size <= self.size:
            raise ValueError(f"tree size {size} is outside 0..{self.size}")
        return self._mth(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """The audit path of leaf ``index`` in the tree of ``size`` leaves (RFC 6962 PATH)."""
        size = self.size if size is None else size
        if not 0 <= index < size <= self.size:
            raise ValueError(f"leaf {index} is not in a tree of {size} leaves")
        out: list[bytes] = []
        lo, hi = 0, size
        # walk down from the root, collecting the sibling of each step; reversed
        # at the end so the path runs from the leaf upward as RFC 6962 prints it
        while hi - lo > 1:
            k = _split(hi - lo)
            if index < lo + k:
                out.append(self._mth(lo + k, hi))
                hi = lo + k
            else:
                out.append(self._mth(lo, lo + k))
                lo = lo + k
        out.reverse()
        return out

    def consistency_proof(self, old: int, new: int | None = None) -> list[bytes]:
        """The proof that the tree of ``old`` leaves is a prefix of that of ``new``
        (RFC 6962 PROOF / SUBPROOF)."""
        new = self.size if new is None else new
        if not 0 < old <= new <= self.size:
            raise ValueError(f"no consistency proof from size {old} to {new} "
                             f"(sizes must satisfy 0 < old <= new <= {self.size})")
        return self._subproof(old, 0, new, True)

    def _subproof(self, m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if complete else [self._mth(lo, hi)]
        k = _split(n)
        if m <= k:
            return self._subproof(m, lo, lo + k, complete) + [self._mth(lo + k, hi)]
        return self._subproof(m - k, lo + k, hi, False) + [self._mth(lo, lo + k)]


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes],
                     root: bytes) -> bool:
    """Does ``proof`` show the leaf hash ``leaf`` at ``index`` in the tree of ``size``
    leaves whose root is ``root``?  (RFC 9162 §2.1.3.2)"""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """Does ``proof`` show the tree (``old``, ``old_root``) is a prefix of
    (``new``, ``new_root``)?  (RFC 9162 §2.1.4.2)"""
    if not 0 < old <= new:
        return False
    if old == new:
        return not proof and old_root == new_root
    path = list(proof)
    if old & (old - 1) == 0:  # old is a power of two: its root is the first node
        path.insert(0, old_root)
    if not path:
        return False
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0
