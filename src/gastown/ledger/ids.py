"""Bead ids: ``<prefix>-<base36 hash>``, adaptive length, and ``<parent>.N`` children.

The hash length is the shortest (3…8) for which the birthday-collision chance
among the current number of top-level beads stays under 25 %; a clash is retried
with a nonce, and after a few clashes the length grows by one.
"""

from __future__ import annotations

import os
import re

__all__ = ["hash_id", "id_length_for", "is_valid_id", "is_valid_template_id", "child_id",
           "MAX_CHILD_DEPTH"]

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
MIN_LEN, MAX_LEN = 3, 8
MAX_COLLISION_PROBABILITY = 0.25
MAX_CHILD_DEPTH = 3
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*-[A-Za-z0-9]+(\.[0-9]+)*$")
_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,30}$")
#: proto (template) ids are names, not hashes: ``formula`` and ``formula.step-id[.sub]``
_TEMPLATE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]*(\.[A-Za-z0-9][A-Za-z0-9_\-]*)*$")


_NEG_LN_ALLOWED = 0.2876820724517809  # -ln(1 - MAX_COLLISION_PROBABILITY)


def id_length_for(count: int) -> int:
    """Shortest hash length whose collision chance for ``count`` ids is acceptable.

    Birthday bound: P(collision) = 1 - exp(-n^2 / 2N) stays under the limit while
    n < sqrt(2 N ln(1/(1-P))); written without ``math`` to keep ``bd create`` lean.
    """
    for length in range(MIN_LEN, MAX_LEN + 1):
        if count < (2.0 * _NEG_LN_ALLOWED * 36.0**length) ** 0.5:
            return length
    return MAX_LEN


def _base36(n: int, length: int) -> str:
    out = []
    for _ in range(length):
        n, r = divmod(n, 36)
        out.append(_ALPHABET[r])
    return "".join(out)


def hash_id(prefix: str, seed: str, length: int, nonce: int = 0) -> str:
    """The id for ``seed`` (title and time) and ``nonce`` at the given hash length.

    The hash is Python's keyed SipHash of the seed and nonce mixed with 64 random
    bits: uniform, different in every process, and free of the milliseconds that
    loading OpenSSL for ``hashlib`` would add to every ``bd create``.
    """
    mixed = (hash((seed, nonce)) ^ int.from_bytes(os.urandom(8), "big")) & ((1 << 64) - 1)
    return f"{prefix}-{_base36(mixed, length)}"


def is_valid_prefix(prefix: str) -> bool:
    """True for a usable id prefix (letters, digits, ``-`` and ``_``)."""
    return bool(_PREFIX.fullmatch(prefix))


def is_valid_id(value: str) -> bool:
    """True for a syntactically valid bead id (any prefix)."""
    return bool(_ID.fullmatch(value))


def is_valid_template_id(value: str) -> bool:
    """True for a proto bead id: a formula name, optionally ``.step-id`` segments."""
    return len(value) <= 200 and bool(_TEMPLATE_ID.fullmatch(value))


def child_id(parent_id: str, n: int) -> str:
    """The id of the ``n``-th child of ``parent_id``."""
    return f"{parent_id}.{n}"


def child_depth(bead_id: str) -> int:
    """How many ``.N`` levels an id has."""
    tail = bead_id.rsplit("-", 1)[-1]
    return tail.count(".")
