"""A town's manifest: the replaceable event that says which keys act for it.

Signed by the town key (account 0), kind :data:`.kinds.MANIFEST`, tagged
``["gt", "gt://E/C"]`` and one ``["p", KEY]`` per sub-key; its content is JSON::

    {"town": "gt://E/C",
     "keys": [{"pubkey": HEX, "role": "rig"|"agent", "name": "...",
               "rigs": ["..."] (empty: every rig), "valid_from": T, "valid_until": T|null}],
     "relays": ["ws://..."], "settlement": {"backend": "sim", ...}}

An event counts as acting for ``gt://E/C[/RIG/…]`` only when its signer is the
town key or a key of E/C's latest manifest valid at the event's time and
(for a rig scope) listing that rig.

A key that has ended speaks no more (:meth:`Manifest.ended`): a sub-key whose
``valid_until`` is more than the allowed clock skew behind the receiver's clock
cannot sign anything that is *received* from then on, even dated inside its
window -- otherwise whoever holds a rotated-out or revoked key could keep
backdating events into its old window.  Its events received in time stay.  So a
town flushes its outbox before it ends a key; what still has to travel afterwards
is re-signed by the town key or the key's successor.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from . import kinds
from .events import Event, EventError, loads_bounded, sign

__all__ = ["Manifest", "KeyEntry", "build", "parse", "MAX_KEYS"]

MAX_KEYS = 2000
MAX_RELAYS = 32


@dataclass(frozen=True)
class KeyEntry:
    """One sub-key of a manifest."""

    pubkey: str
    role: str
    name: str
    rigs: tuple[str, ...] = ()
    valid_from: int = 0
    valid_until: int | None = None

    def as_json(self) -> dict[str, Any]:
        """The entry as the manifest's JSON writes it."""
        return {"pubkey": self.pubkey, "role": self.role, "name": self.name,
                "rigs": list(self.rigs), "valid_from": self.valid_from,
                "valid_until": self.valid_until}


@dataclass
class Manifest:
    """A parsed manifest."""

    town: str
    town_key: str
    created_at: int
    event_id: str
    keys: dict[str, KeyEntry] = field(default_factory=dict)
    relays: list[str] = field(default_factory=list)
    settlement: dict[str, Any] = field(default_factory=dict)

    def authorises(self, pubkey: str, at: int, rig: str | None = None) -> bool:
        """Does this manifest let ``pubkey`` act at time ``at`` (for ``rig``, if given)?"""
        if pubkey == self.town_key:
            return True
        k = self.keys.get(pubkey)
        if k is None or at < k.valid_from or (k.valid_until is not None and at > k.valid_until):
            return False
        return rig is None or not k.rigs or rig in k.rigs

    def ended(self, pubkey: str, now: int, skew: int) -> int | None:
        """``valid_until`` of a sub-key whose validity ended more than ``skew`` seconds
        before ``now`` (events it signs are refused when received after that), else None."""
        k = self.keys.get(pubkey)
        if pubkey == self.town_key or k is None or k.valid_until is None:
            return None
        return k.valid_until if now > k.valid_until + skew else None


def build(town_secret: bytes, town: str, entries: list[KeyEntry], relays: list[str],
          settlement: dict[str, Any] | None = None, created_at: int | None = None) -> Event:
    """A signed manifest event of ``town`` (``gt://E/C``)."""
    body = {"town": town, "keys": [e.as_json() for e in entries], "relays": list(relays),
            "settlement": settlement or {"backend": "sim"}}
    tags = [["gt", town], *(["p", e.pubkey] for e in entries)]
    return sign(town_secret, kinds.MANIFEST, json.dumps(body, sort_keys=True), tags, created_at)


def _entry(d: Any, where: str) -> KeyEntry:
    if not isinstance(d, dict):
        raise EventError(f"{where}: a key entry is not an object")
    pub, role, name = d.get("pubkey"), d.get("role"), d.get("name")
    rigs = d.get("rigs") or []
    vf, vu = d.get("valid_from", 0), d.get("valid_until")
    if not (isinstance(pub, str) and len(pub) == 64 and isinstance(role, str)
            and isinstance(name, str) and isinstance(rigs, list) and len(rigs) <= 256
            and all(isinstance(r, str) for r in rigs) and isinstance(vf, int)
            and (vu is None or isinstance(vu, int))):
        raise EventError(f"{where}: a key entry has fields of the wrong kinds")
    return KeyEntry(pub, role, name, tuple(rigs), vf, vu)


def parse(ev: Event, where: str = "manifest") -> Manifest:
    """The manifest in a (checked) event; :class:`EventError` when malformed."""
    if ev.kind != kinds.MANIFEST:
        raise EventError(f"{where}: kind {ev.kind} is not a manifest")
    body = loads_bounded(ev.content, where)
    if not isinstance(body, dict) or not isinstance(body.get("town"), str):
        raise EventError(f"{where}: content is not a manifest object")
    if ev.tag("gt") != body["town"]:
        raise EventError(f"{where}: its gt tag and its town differ")
    keys = body.get("keys") or []
    relays = body.get("relays") or []
    if not isinstance(keys, list) or len(keys) > MAX_KEYS:
        raise EventError(f"{where}: keys must be a list of at most {MAX_KEYS}")
    if (not isinstance(relays, list) or len(relays) > MAX_RELAYS
            or not all(isinstance(r, str) for r in relays)):
        raise EventError(f"{where}: relays must be at most {MAX_RELAYS} strings")
    settlement = body.get("settlement") or {}
    if not isinstance(settlement, dict):
        raise EventError(f"{where}: settlement is not an object")
    entries = [_entry(k, where) for k in keys]
    return Manifest(town=body["town"], town_key=ev.pubkey, created_at=ev.created_at,
                    event_id=ev.id, keys={e.pubkey: e for e in entries}, relays=list(relays),
                    settlement=settlement)
