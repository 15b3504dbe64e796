"""What a town holds of the mesh, in the ledger's key/value store (both backends).

* ``mesh.peer.NAME``  -- a town this one reads: ``{"name", "uri", "key"}`` (its pinned key)
* ``mesh.man.KEY``    -- the latest manifest event of town key KEY
* ``mesh.ev.ID``      -- an accepted event (NIP-01 JSON)
* ``mesh.slot.K:P:D`` -- the event holding replaceable/addressable slot (kind, author, d)
* ``mesh.owner.D``    -- the key that owns work item ``d`` (only it updates that slot)
* ``mesh.gone.ID``    -- an event its author retracted (NIP-09): refused from then on
* ``mesh.refused``    -- how many events were refused, and the last reasons

Only :mod:`.ingest` writes ``mesh.ev``/``slot``/``owner``/``gone``, after every check.
"""

from __future__ import annotations

import json
from typing import Any

from ..config import NAME_RE
from ..errors import ConflictError, NotFoundError, UsageError
from ..federation.uris import parse as parse_uri
from ..ledger.core import Ledger
from .events import Event, from_dict

__all__ = ["add_peer", "peers", "get_peer", "remove_peer", "event", "events", "slot_key",
           "held_slot", "PEER", "MAN", "EV", "SLOT", "OWNER", "GONE", "REFUSED"]

PEER, MAN, EV, SLOT, OWNER, GONE = ("mesh.peer.", "mesh.man.", "mesh.ev.", "mesh.slot.",
                                    "mesh.owner.", "mesh.gone.")
REFUSED = "mesh.refused"


def add_peer(ledger: Ledger, name: str, uri: str, key: str) -> dict[str, Any]:
    """Pin town ``uri`` (``gt://E/C``) to its town key ``key`` (64 hex) as peer ``name``."""
    if not NAME_RE.fullmatch(name):
        raise UsageError(f"peer name {name!r}: use letters, digits, '-' and '_'")
    if name == "self":
        raise UsageError("peer name 'self' is this town's own (choose another)")
    town = parse_uri(uri, what="peer address")
    if town.issue is not None:
        raise UsageError(f"peer address {uri!r}: a town is gt://ENTITY/CHAIN")
    key = key.strip().lower()
    if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        raise UsageError(f"peer key {key!r}: 64 hex digits (the town's x-only public key)")
    for other in peers(ledger):
        if other["name"] != name and other["uri"] == str(town):
            raise ConflictError(f"town {town} is already peer {other['name']!r}")
    rec = {"name": name, "uri": str(town), "key": key}
    ledger.kv_set(PEER + name, json.dumps(rec, sort_keys=True))
    return rec


def peers(ledger: Ledger) -> list[dict[str, Any]]:
    """Every pinned town, by name."""
    return [json.loads(v) for _k, v in ledger.kv_scan(PEER)]


def get_peer(ledger: Ledger, name: str) -> dict[str, Any]:
    """A pinned town by name."""
    v = ledger.kv_get(PEER + name)
    if v is None:
        raise NotFoundError(f"no mesh peer {name!r} (gt mesh peer list)")
    return dict(json.loads(v))


def remove_peer(ledger: Ledger, name: str) -> None:
    """Unpin a town (what was accepted from it stays)."""
    get_peer(ledger, name)
    ledger.kv_clear(PEER + name)


def slot_key(kind: int, pubkey: str, d: str = "") -> str:
    """The kv key of a replaceable or addressable slot."""
    return f"{SLOT}{kind}:{pubkey}:{d}"


def held_slot(ledger: Ledger, kind: int, pubkey: str, d: str = "") -> dict[str, Any] | None:
    """``{"id", "created_at"}`` of the event in a slot, or None."""
    v = ledger.kv_get(slot_key(kind, pubkey, d))
    return json.loads(v) if v else None


def event(ledger: Ledger, eid: str) -> Event | None:
    """An accepted event by id."""
    v = ledger.kv_get(EV + eid)
    return from_dict(json.loads(v)) if v else None


def events(ledger: Ledger, kind: int | None = None) -> list[Event]:
    """Every accepted event (of ``kind``), oldest first (ties by id)."""
    out = [from_dict(json.loads(v)) for _k, v in ledger.kv_scan(EV)]
    if kind is not None:
        out = [e for e in out if e.kind == kind]
    return sorted(out, key=lambda e: (e.created_at, e.id))
