"""How far this town trusts a peer, computed locally from events it holds.

Deterministic for a given set of held events (no clock except the cache's).
With the observer O (this town's key) and the peer P (a town key)::

    social   = 1, 1/2, 1/4 for P at follow distance 1, 2, 3 from O (NIP-02 kind 3
               lists of town keys; a sub-key's follows count as its town's); else 0
    mutual   = m / (m + 2), m = towns O follows directly that also follow P
               (counted only next to the observer: far-away follows cannot be bought)
    delivery = accepted / offered of the delegations P took part in (offers made to
               it or by it) that O holds -- the requester's signed acceptance is the
               receipt -- and
    settled  = on-time / all settlement receipts P signed as payer,
               each weighted by its confidence n / (n + 5) (n = how many)
    trust    = 0.35 social + 0.15 mutual + 0.35 delivery + 0.15 settled   (0..1)

A stranger (no follows, no history) scores 0; O itself scores 1.  Results are cached
in ``mesh.trust.P`` for :data:`TTL` seconds.
"""

from __future__ import annotations

import json
import time
from collections import deque
from typing import Any

from ..ledger.core import Ledger
from . import kinds, store
from .events import Event

__all__ = ["score", "WEIGHTS", "TTL", "town_of_key"]

WEIGHTS = {"social": 0.35, "mutual": 0.15, "delivery": 0.35, "settled": 0.15}
TTL = 300
MAX_DEPTH = 3
_CACHE = "mesh.trust."


def town_of_key(ledger: Ledger) -> dict[str, str]:
    """Every known key -> the town key it acts for (town keys map to themselves)."""
    out: dict[str, str] = {}
    for p in store.peers(ledger):
        out[p["key"]] = p["key"]
    for _k, v in ledger.kv_scan(store.MAN):
        ev = json.loads(v)
        for t in ev.get("tags", []):
            if len(t) >= 2 and t[0] == "p":
                out.setdefault(t[1], ev["pubkey"])
    return out


def _graph(evs: list[Event], towns: dict[str, str]) -> dict[str, set[str]]:
    g: dict[str, set[str]] = {}
    for e in evs:  # the newest list of each author replaced the others (ingest)
        src = towns.get(e.pubkey, e.pubkey)
        g.setdefault(src, set()).update(towns.get(p, p) for p in e.tag_values("p")[:5000])
    return g


def _distance(g: dict[str, set[str]], src: str, dst: str) -> int | None:
    seen, q = {src}, deque([(src, 0)])
    while q:
        node, d = q.popleft()
        if node == dst:
            return d
        if d >= MAX_DEPTH:
            continue
        for nxt in sorted(g.get(node, ())):
            if nxt not in seen:
                seen.add(nxt)
                q.append((nxt, d + 1))
    return None


def _held_follows(ledger: Ledger) -> list[Event]:
    out = []
    for _k, v in ledger.kv_scan(f"{store.SLOT}{kinds.FOLLOWS}:"):
        ev = store.event(ledger, json.loads(v)["id"])
        if ev is not None:
            out.append(ev)
    return out


def compute(ledger: Ledger, observer: str, peer: str) -> dict[str, Any]:
    """Trust of ``peer`` (a town key) seen from ``observer`` with its parts."""
    if peer == observer:
        return {"trust": 1.0, "social": 1.0, "mutual": 1.0, "delivery": 1.0, "settled": 1.0,
                "distance": 0, "mutual_follows": 0, "offered": 0, "accepted": 0,
                "receipts": 0, "on_time": 0}
    towns = town_of_key(ledger)
    g = _graph(_held_follows(ledger), towns)
    dist = _distance(g, observer, peer)
    social = {1: 1.0, 2: 0.5, 3: 0.25}.get(dist or 0, 0.0)
    m = sum(1 for x in g.get(observer, ()) if x != peer and peer in g.get(x, ()))
    mutual = m / (m + 2)
    # delegations P took part in, either side: made to P, or made by P
    offers = [e for e in store.events(ledger, kinds.OFFER)
              if towns.get(e.pubkey) == peer
              or any(towns.get(p, p) == peer for p in e.tag_values("p"))]
    offer_by = {e.id: towns.get(e.pubkey) for e in offers}
    # a receipt counts only when the offer's own town signed the acceptance
    accepted = {e.tag("offer") for e in store.events(ledger, kinds.ACCEPTANCE)
                if e.tag("offer") in offer_by
                and towns.get(e.pubkey) == offer_by[str(e.tag("offer"))]}
    n = len(offers)
    delivery = (len(accepted) / n) * (n / (n + 5)) if n else 0.0
    receipts = [e for e in store.events(ledger, kinds.RECEIPT)
                if towns.get(e.pubkey) == peer]
    on_time = sum(1 for e in receipts if e.tag("on_time") == "1")
    r = len(receipts)
    settled = (on_time / r) * (r / (r + 5)) if r else 0.0
    parts = {"social": social, "mutual": mutual, "delivery": delivery, "settled": settled}
    trust = sum(WEIGHTS[k] * v for k, v in parts.items())
    return {"trust": round(min(1.0, trust), 6), **{k: round(v, 6) for k, v in parts.items()},
            "distance": dist, "mutual_follows": m, "offered": n, "accepted": len(accepted),
            "receipts": r, "on_time": on_time}


def score(ledger: Ledger, observer: str, peer: str, *, fresh: bool = False,
          now: float | None = None) -> dict[str, Any]:
    """:func:`compute`, cached for :data:`TTL` seconds (``fresh``: recompute)."""
    t = time.time() if now is None else now
    key = f"{_CACHE}{observer[:16]}.{peer}"
    if not fresh:
        v = ledger.kv_get(key)
        if v:
            cached = json.loads(v)
            if t - float(cached["at"]) < TTL:
                return {**cached["result"], "cached": True}
    res = compute(ledger, observer, peer)
    ledger.kv_set(key, json.dumps({"at": t, "result": res}, sort_keys=True))
    return {**res, "cached": False}
