"""Chain records: building, signing and appending one in an open ledger transaction.

A record (canonical JSON, one per row of the ledger's ``chain_log``)::

    {"v": 1, "entity": "entity://gt/acme/backend/polecat/toast", "seq": 3,
     "prev": "<sha256 hex of record 2's full canonical bytes>" ("" for seq 1),
     "kind": "created|claimed|completed|validated|rejected|reopened|delegated|digest",
     "uri": "gt://…" (the bead's address), "bead": "gt-a1b2", "at": "<ISO-8601 UTC>",
     "subject": "<entity whose work is judged>" (validated/rejected/reopened only),
     "work": {"title", "type", "labels", "formula", "files", "due", "priority"},
     "quality": {signals known then: "on_time", "revisions", "verdict", "review_activity"},
     "signer": "<entity whose key signed>", "on_behalf": false,
     "sig": "<base64 Ed25519 over the canonical bytes without sig>"}

*Canonical bytes* are :func:`gastown.federation.log.canonical` (sorted keys, no
spaces, UTF-8).  Each record is also a leaf of the town's Merkle log
(:mod:`.merkle`): leaf data = the record's full canonical bytes.
"""

from __future__ import annotations

import hashlib

from ..errors import ValidationError
from ..federation.log import canonical
from ..ledger import chainlog
from .merkle import leaf_hash

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing only for type checkers: this runs in every agent's bd close
    from typing import Any

    from ..ledger.store import Tx
    from .entity import Keyring

__all__ = ["VERSION", "KINDS", "JUDGED", "unsigned", "digest_of", "append", "signed_bytes"]

VERSION = 1
KINDS = ("created", "claimed", "completed", "validated", "rejected", "reopened",
         "delegated", "digest")
#: kinds that judge someone's work: their ``subject`` may not be their author
JUDGED = ("validated", "rejected")


def unsigned(rec: dict[str, Any]) -> dict[str, Any]:
    """The record without its signature (what ``sig`` signs)."""
    return {k: v for k, v in rec.items() if k != "sig"}


def signed_bytes(rec: dict[str, Any]) -> bytes:
    """The canonical bytes a record's signature covers."""
    return canonical(unsigned(rec))


def digest_of(rec: dict[str, Any]) -> str:
    """sha256 (hex) of a record's full canonical bytes: the next record's ``prev``."""
    return hashlib.sha256(canonical(rec)).hexdigest()


def append(tx: Tx, keys: Keyring, *, entity: str, kind: str, uri: str, bead: str | None,
           at: str, work: dict[str, Any], quality: dict[str, Any], by_itself: bool,
           subject: str | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sign and store the next record of ``entity``'s chain in transaction ``tx``.

    ``by_itself``: the entity is the one acting (it signs with its own key when
    it has one); otherwise the town signs on its behalf.
    """
    if kind not in KINDS:
        raise ValidationError(f"unknown chain record kind {kind!r} (one of {', '.join(KINDS)})")
    if kind in JUDGED and subject == entity:
        raise ValidationError(f"{entity} cannot validate its own work ({bead})")
    idx = chainlog.next_position(tx)  # first: the log row lock orders concurrent appenders
    seq, prev = chainlog.head(tx, entity)
    from ..federation.keys import sign

    key, signer, on_behalf = keys.signer_for(entity, by_itself)
    rec: dict[str, Any] = {"v": VERSION, "entity": entity, "seq": seq + 1, "prev": prev,
                           "kind": kind, "uri": uri, "bead": bead, "at": at, "work": work,
                           "quality": quality, "signer": signer, "on_behalf": on_behalf}
    if subject is not None:
        rec["subject"] = subject
    for k, v in (extra or {}).items():
        rec.setdefault(k, v)
    rec["sig"] = sign(key, canonical(rec))
    data = canonical(rec)
    chainlog.append(tx, idx, entity, seq + 1, kind, bead, subject,
                    hashlib.sha256(data).hexdigest(), leaf_hash(data).hex(),
                    data.decode("utf-8"))
    return rec
