"""This town's work on the mesh: its manifest, its beads as work items, item events.

* a bead the ``[federation] publish`` policy allows becomes a work item (kind
  :data:`.kinds.WORK_ITEM`, ``d`` = ``CHAIN/RIG/ISSUE``, ``gt`` = its ``gt://`` address,
  content = the bead's snapshot) signed by its rig's key (the town key for a bead of
  no rig or of a rig not in ``town.toml``); a new version replaces it; a bead that is
  deleted or leaves the policy is published as ``{"withdrawn": true}``;
* an item event (status, claim, comment, dependency) is a regular event with a
  ``prev`` tag: the id of the same key's previous item event, so each author's
  events form a hash chain (:func:`chain_gaps` shows what is missing or forked).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..errors import NotFoundError, UsageError
from ..federation.publish import policy_allows
from ..federation.uris import format_uri, rig_of
from ..ledger.core import Ledger
from . import kinds, store
from .events import MAX_CONTENT, Event, sign
from .identity import MeshIdentity

__all__ = ["manifest_if_changed", "bead_items", "item_event", "chain_gaps", "work_items",
           "ITEM_OPS"]

_STATE = "mesh.pubstate"
_HEAD = "mesh.head."
ITEM_OPS = ("status", "claim", "comment", "dependency")


def manifest_if_changed(ledger: Ledger, me: MeshIdentity) -> list[Event]:
    """A new manifest when what it would say differs from the one held."""
    held = ledger.kv_get(store.MAN + me.public)
    fresh = me.manifest()
    if held and json.loads(held).get("content") == fresh.content:
        return []
    return [fresh]


def _signer(me: MeshIdentity, rig: str | None) -> bytes:
    if rig and rig in me.rigs:
        return me.key("rig", rig)[0]
    return me.key()[0]


def bead_items(ledger: Ledger, me: MeshIdentity, policy: list[str] | str) -> list[Event]:
    """Work item events for beads changed since the last call (state in the ledger)."""
    state = json.loads(ledger.kv_get(_STATE) or "{}")
    pol = json.dumps(policy)
    if state.get("policy") != pol:
        state = {"policy": pol, "seq": 0, "published": {}}
    touched: set[str] = set()
    for ev in ledger.events(since_seq=int(state["seq"])):
        if ev.get("bead_id"):
            touched.add(str(ev["bead_id"]))
        state["seq"] = int(ev["seq"])
    owner, chain = me.uri[5:].split("/", 1)
    out: list[Event] = []
    for bead_id in sorted(touched):
        try:
            bead: dict[str, Any] | None = dict(ledger.show(bead_id))
        except NotFoundError:
            bead = None
        published = state["published"]
        if bead is None or not policy_allows(policy, bead):
            if bead_id not in published:
                continue
            rig = published.pop(bead_id)[0]
            body: dict[str, Any] = {"id": bead_id, "withdrawn": True}
        else:
            bead.pop("dependents", None)
            rig = rig_of(bead)
            body = {"id": bead_id, "bead": bead}
            digest = hashlib.sha256(json.dumps(bead, sort_keys=True).encode()).hexdigest()
            if published.get(bead_id, [None, None])[1] == digest:
                continue
            published[bead_id] = [rig, digest]
        content = json.dumps(body, sort_keys=True)
        if len(content) > MAX_CONTENT:  # a huge description: publish the head of it
            body["bead"]["description"] = str(body["bead"].get("description", ""))[:8000]
            content = json.dumps(body, sort_keys=True)[:MAX_CONTENT]
        r = rig or "_"
        out.append(sign(_signer(me, rig), kinds.WORK_ITEM, content,
                        [["d", f"{chain}/{r}/{bead_id}"],
                         ["gt", format_uri(owner, chain, r, bead_id)]]))
    ledger.kv_set(_STATE, json.dumps(state, sort_keys=True))
    return out


def item_event(ledger: Ledger, me: MeshIdentity, target: str, op: str, body: dict[str, Any],
               rig: str | None = None, agent: str | None = None,
               created_at: int | None = None) -> Event:
    """An item event on ``target`` (a ``gt://`` bead address), chained to the signer's last."""
    if op not in ITEM_OPS:
        raise UsageError(f"item event {op!r}: one of {', '.join(ITEM_OPS)}")
    sk, pk = me.key("agent", agent) if agent else (_signer(me, rig), "")
    if not pk:
        pk = me.key("rig", rig)[1] if rig and rig in me.rigs else me.public
    prev = ledger.kv_get(_HEAD + pk) or ""
    # the signer acts for its own town (and rig); the target may be another town's
    scope = f"{me.uri}/{rig}/{target.rsplit('/', 1)[-1]}" if rig else me.uri
    ev = sign(sk, kinds.ITEM_EVENT, json.dumps({"op": op, **body}, sort_keys=True),
              [["gt", scope], ["a", f"{kinds.WORK_ITEM}:{target}"], ["op", op],
               ["prev", prev]], created_at)
    ledger.kv_set(_HEAD + pk, ev.id)
    return ev


def chain_gaps(ledger: Ledger, pubkey: str) -> dict[str, list[str]]:
    """An author's item-event chain as held: ``missing`` links and ``forks``."""
    evs = [e for e in store.events(ledger, kinds.ITEM_EVENT) if e.pubkey == pubkey]
    ids = {e.id for e in evs}
    by_prev: dict[str, list[str]] = {}
    for e in evs:
        by_prev.setdefault(e.tag("prev") or "", []).append(e.id)
    return {"missing": sorted(p for p in by_prev if p and p not in ids),
            "forks": sorted(p or "(start)" for p, kids in by_prev.items() if len(kids) > 1)}


def work_items(ledger: Ledger, town: str | None = None) -> list[dict[str, Any]]:
    """The work items held (the event in each slot), optionally of one town."""
    out = []
    for _k, v in ledger.kv_scan(f"{store.SLOT}{kinds.WORK_ITEM}:"):
        eid = json.loads(v)["id"]
        ev = store.event(ledger, eid)
        if ev is None or ledger.kv_get(store.GONE + eid) is not None:  # retracted (NIP-09)
            continue
        scope = ev.tag("gt") or ""
        if town and not scope.startswith(town + "/"):
            continue
        try:
            body = json.loads(ev.content)
        except (ValueError, RecursionError):  # signed, but not a work item's JSON
            continue
        if not isinstance(body, dict):
            continue
        # the body is the other town's; the fields that say where it came from are ours
        out.append({**body, "uri": scope, "d": ev.tag("d"), "author": ev.pubkey,
                    "created_at": ev.created_at, "event": ev.id})
    return sorted(out, key=lambda w: str(w["uri"]))
