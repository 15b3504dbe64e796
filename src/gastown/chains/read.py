"""Reading chains out of a ledger (pure reads: no key, no ``cryptography``)."""

from __future__ import annotations

import json
from typing import Any

from ..errors import NotFoundError, ValidationError
from ..ledger import chainlog
from .entity import entity_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..ledger.core import Ledger

__all__ = ["records", "about", "entities", "resolve", "find", "org_in", "indexed"]


def org_in(tx: Any) -> str:
    """The town's org (public name) from the ledger's config; refused when chains are off."""
    org = chainlog.settings(tx).get("chains.org")
    if not org:
        raise ValidationError("this ledger has no entity chains: enable them with "
                              "'gt chain enable'")
    return org


def resolve(tx: Any, who: str) -> str:
    """An entity from an entity URI or a town actor (``RIG/ROLE/NAME``, a person)."""
    return who if who.startswith("entity://") else entity_of(who, org_in(tx))


def _parse(idx: int, text: str) -> dict[str, Any]:
    try:
        rec = json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"chain record at log #{idx} is not JSON ({exc})") from None
    if not isinstance(rec, dict):
        raise ValidationError(f"chain record at log #{idx} is not a JSON object")
    return rec


def indexed(ledger: Ledger, entity: str | None = None, subject: str | None = None,
            digest: str | None = None) -> list[tuple[int, dict[str, Any]]]:
    """``(log index, record)`` pairs, in log order (see :func:`records`)."""
    with ledger.store.read() as tx:
        if entity is not None:
            entity = resolve(tx, entity)
        if subject is not None:
            subject = resolve(tx, subject)
        rows = chainlog.rows(tx, entity=entity, subject=subject, digest=digest)
    return [(idx, _parse(idx, text)) for idx, text in rows]


def records(ledger: Ledger, entity: str | None = None) -> list[dict[str, Any]]:
    """Every record of ``entity``'s chain in order (an entity URI or a town actor), or
    of every chain in log order when ``entity`` is None."""
    return [rec for _, rec in indexed(ledger, entity=entity)]


def about(ledger: Ledger, subject: str) -> list[dict[str, Any]]:
    """The records on other chains that judge ``subject``'s work (validated, rejected,
    reopened), in log order."""
    return [rec for _, rec in indexed(ledger, subject=subject)]


def entities(ledger: Ledger) -> list[dict[str, Any]]:
    """Every chain: ``{"entity", "length", "head"}`` (head: its last record's sha256)."""
    with ledger.store.read() as tx:
        return [{"entity": e, "length": n, "head": h} for e, n, h in chainlog.entities(tx)]


def find(ledger: Ledger, ref: str) -> tuple[int, dict[str, Any]]:
    """One record by ``#INDEX`` (log position), ``ENTITY:SEQ`` or a sha256 prefix
    (at least 8 hex digits)."""
    ref = ref.strip()
    if ref.startswith("#") and ref[1:].isdigit():
        idx = int(ref[1:])
        hits = [(i, r) for i, r in indexed(ledger) if i == idx]
    elif ":" in ref and ref.rsplit(":", 1)[1].isdigit() and not ref.endswith("://"):
        who, seq = ref.rsplit(":", 1)
        hits = [(i, r) for i, r in indexed(ledger, entity=who) if r.get("seq") == int(seq)]
    elif len(ref) >= 8 and all(c in "0123456789abcdef" for c in ref.lower()):
        hits = indexed(ledger, digest=ref.lower())
    else:
        raise ValidationError(f"record {ref!r}: expected #INDEX, ENTITY:SEQ or a sha256 "
                              "prefix of 8+ hex digits")
    if not hits:
        raise NotFoundError(f"no chain record matches {ref!r}")
    if len(hits) > 1:
        raise ValidationError(f"record {ref!r} is ambiguous ({len(hits)} records): "
                              "give more of its hash")
    return hits[0]
