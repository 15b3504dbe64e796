"""The one door into the ledger for events from relays: every check, then one transaction.

For each event, in this order (the first that fails refuses it, with one line why):

1. bounded parse, every field typed (:func:`.events.from_dict`);
2. the id recomputed from the fields, the BIP-340 signature checked (:func:`.events.check`);
3. a duplicate (id already held or seen in this batch) is skipped, not refused;
4. an id its author retracted (NIP-09) is refused;
5. ``created_at`` more than ``max_skew`` seconds ahead of this machine's clock is refused;
6. the author must act for the town the event names: a manifest must be signed by the
   town key pinned for its ``gt`` tag; anything else must be signed by that key or by a
   key the town's latest manifest lists, valid at the event's time, for the event's rig
   (``gt`` tag ``gt://E/C[/RIG/…]``; a work item's ``d`` is ``CHAIN/RIG/ISSUE``);
   and a sub-key whose validity ended (more than ``max_skew`` before this clock, per
   the manifest held now) signs nothing received from then on, however it is dated
   (no backdating into an old key's window: :meth:`.manifest.Manifest.ended`);
7. a replaceable or addressable event must be newer than the one held in its slot
   (NIP-01: newest ``created_at``, then the lowest id) -- relays are not trusted to do it;
   a work item's ``d`` belongs to the first key that wrote it (only it updates the slot).

Manifests in a batch are taken first, so events signed by the keys they list can follow
in the same batch.  Nothing is written until the whole batch is checked.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from ..errors import UsageError
from ..federation.uris import parse as parse_uri
from ..ledger.core import Ledger
from . import kinds, store
from .events import Event, EventError, check, from_dict, loads_bounded
from .manifest import Manifest
from .manifest import parse as parse_manifest

__all__ = ["Ingest", "DEFAULT_SKEW", "ingest"]

#: how far ahead of our clock an event may be dated (seconds)
DEFAULT_SKEW = 300
_KEEP_REASONS = 20


class Ingest:
    """One batch's checks against what the ledger already holds."""

    def __init__(self, ledger: Ledger, *, now: int | None = None,
                 max_skew: int = DEFAULT_SKEW) -> None:
        self.ledger = ledger
        self.now = int(time.time()) if now is None else now
        self.max_skew = max_skew
        self.pinned = {p["uri"]: p["key"] for p in store.peers(ledger)}
        self.manifests: dict[str, Manifest] = {}
        for _k, v in ledger.kv_scan(store.MAN):
            m = parse_manifest(from_dict(json.loads(v)))
            self.manifests[m.town_key] = m
        self.items: dict[str, str] = {}
        self.seen: set[str] = set()
        self.slots: dict[str, dict[str, Any]] = {}
        self.gone: dict[str, dict[str, Any]] = {}

    # -- authorisation -------------------------------------------------------
    def _town_of(self, pubkey: str, town_uri: str) -> Manifest | None:
        key = self.pinned.get(town_uri)
        return self.manifests.get(key) if key else None

    def _scope(self, ev: Event) -> tuple[str, str | None]:
        """(town ``gt://E/C``, rig or None) that ``ev`` claims to act for."""
        tag = ev.tag("gt")
        if tag is None:
            raise EventError(f"event {ev.id[:16]}…: no gt tag naming its town (refused)")
        try:
            uri = parse_uri(tag, what="gt tag")
        except UsageError as exc:
            raise EventError(f"event {ev.id[:16]}…: {exc}") from None
        town = f"gt://{uri.entity}/{uri.chain}"
        rig = uri.rig if uri.rig not in (None, "_") else None
        if ev.kind == kinds.WORK_ITEM:
            d = ev.tag("d") or ""
            parts = d.split("/")
            if len(parts) != 3 or parts[0] != uri.chain or not all(parts):
                raise EventError(f"work item {ev.id[:16]}…: d {d!r} is not "
                                 f"{uri.chain}/RIG/ISSUE of its town (refused)")
            rig = None if parts[1] == "_" else parts[1]
        return town, rig

    def _authorise(self, ev: Event) -> str:
        town, rig = self._scope(ev)
        if ev.kind == kinds.MANIFEST:
            if self.pinned.get(town) != ev.pubkey:
                raise EventError(f"manifest {ev.id[:16]}… for {town}: signer "
                                 f"{ev.pubkey[:16]}… is not that town's pinned key (refused)")
            return town
        m = self._town_of(ev.pubkey, town)
        if m is None:
            raise EventError(f"event {ev.id[:16]}… for {town}: no manifest known for that "
                             "town (refused)")
        if not m.authorises(ev.pubkey, ev.created_at, rig):
            what = f"rig {rig} of {town}" if rig else town
            raise EventError(f"event {ev.id[:16]}…: signer {ev.pubkey[:16]}… is not listed "
                             f"for {what} in its manifest (refused)")
        ended = m.ended(ev.pubkey, self.now, self.max_skew)
        if ended is not None:
            raise EventError(f"event {ev.id[:16]}…: signer {ev.pubkey[:16]}…'s validity "
                             f"ended at {ended}; events it signed are refused once received "
                             "after that, whatever their date (refused)")
        return town

    # -- replacement ----------------------------------------------------------
    def _held(self, key: str) -> dict[str, Any] | None:
        if key in self.slots:
            return self.slots[key]
        v = self.ledger.kv_get(key)
        return json.loads(v) if v else None

    def _replace(self, ev: Event, town: str) -> None:
        d = ev.tag("d") or "" if kinds.is_addressable(ev.kind) else ""
        key = store.slot_key(ev.kind, ev.pubkey, d)
        held = self._held(key)
        if held is not None and (held["created_at"], held["id"]) != (ev.created_at, ev.id) and (
                held["created_at"] > ev.created_at
                or (held["created_at"] == ev.created_at and held["id"] < ev.id)):
            raise EventError(f"{kinds.NAMES.get(ev.kind, ev.kind)} {ev.id[:16]}…: stale "
                             f"replacement (slot holds {held['id'][:16]}… of "
                             f"{held['created_at']}; refused)")
        if ev.kind == kinds.WORK_ITEM:
            okey = f"{store.OWNER}{town}/{d}"
            owner = self.items.get(okey) or self.ledger.kv_get(okey)
            if owner is not None and owner != ev.pubkey:
                raise EventError(f"work item {d}: its slot belongs to {owner[:16]}…, not "
                                 f"{ev.pubkey[:16]}… (refused)")
            self.items[okey] = ev.pubkey
        self.slots[key] = {"id": ev.id, "created_at": ev.created_at}
        self.items[key] = json.dumps(self.slots[key])

    # -- one event -------------------------------------------------------------
    def admit(self, raw: Any, where: str) -> Event | None:
        """Check one event; the event when new and admitted, None for a duplicate."""
        data = loads_bounded(raw, where) if isinstance(raw, (str, bytes)) else raw
        ev = check(from_dict(data, where), where=where)
        if ev.id in self.seen or (self.ledger.kv_get(store.EV + ev.id) is not None
                                  and ev.id not in self.gone):
            return None
        gone = self.gone.get(ev.id) or self._gone(ev.id)
        if gone is not None and gone.get("author") == ev.pubkey:
            raise EventError(f"event {ev.id[:16]}…: retracted by its author (refused)")
        if ev.created_at > self.now + self.max_skew:
            raise EventError(f"event {ev.id[:16]}…: dated {ev.created_at - self.now}s in the "
                             f"future (more than {self.max_skew}s; refused)")
        town = self._authorise(ev)
        if kinds.is_replaceable(ev.kind) or kinds.is_addressable(ev.kind):
            self._replace(ev, town)
        if ev.kind == kinds.MANIFEST:
            m = parse_manifest(ev, where)
            self.manifests[ev.pubkey] = m
            self.items[store.MAN + ev.pubkey] = ev.to_json()
        elif ev.kind == kinds.RETRACTION:
            self._retract(ev)
        self.seen.add(ev.id)
        self.items[store.EV + ev.id] = ev.to_json()
        return ev

    def _gone(self, eid: str) -> dict[str, Any] | None:
        v = self.ledger.kv_get(store.GONE + eid)
        return json.loads(v) if v else None

    def _retract(self, ev: Event) -> None:
        """NIP-09: only the author's own events; a tombstone refuses them later too."""
        for eid in ev.tag_values("e")[:500]:
            held = self.ledger.kv_get(store.EV + eid)
            author = json.loads(held).get("pubkey") if held else None
            if author is not None and author != ev.pubkey:
                continue  # someone else's event: a retraction cannot touch it
            mark = {"author": ev.pubkey, "by": ev.id}
            self.gone[eid] = mark
            self.items[store.GONE + eid] = json.dumps(mark)

    def run(self, raws: Iterable[Any], source: str) -> dict[str, Any]:
        """Check a batch and write what passed in one transaction; a summary."""
        batch = list(raws)

        def manifest_first(raw: Any) -> int:
            kind = raw.get("kind") if isinstance(raw, dict) else None
            return 0 if kind == kinds.MANIFEST else 1

        batch.sort(key=manifest_first)
        accepted: list[Event] = []
        refused: list[str] = []
        dup = 0
        for i, raw in enumerate(batch):
            try:
                ev = self.admit(raw, f"{source} #{i + 1}")
            except EventError as exc:
                refused.append(str(exc))
                continue
            if ev is None:
                dup += 1
            else:
                accepted.append(ev)
        items = list(self.items.items())
        if refused:
            old = json.loads(self.ledger.kv_get(store.REFUSED) or "{}")
            items.append((store.REFUSED, json.dumps(
                {"count": int(old.get("count", 0)) + len(refused),
                 "last": (old.get("last", []) + refused)[-_KEEP_REASONS:]})))
        if items:
            self.ledger.kv_set_many(items, "mesh.ingested",
                                    {"source": source, "accepted": len(accepted),
                                     "refused": len(refused), "duplicates": dup})
        return {"source": source, "accepted": len(accepted), "duplicates": dup,
                "refused": len(refused), "reasons": refused,
                "ids": [e.id for e in accepted]}


def ingest(ledger: Ledger, raws: Iterable[Any], source: str, *, now: int | None = None,
           max_skew: int = DEFAULT_SKEW) -> dict[str, Any]:
    """Check and store a batch of events from ``source`` (see the module)."""
    return Ingest(ledger, now=now, max_skew=max_skew).run(raws, source)
