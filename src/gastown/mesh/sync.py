"""Publishing through an outbox and catching up from relays.

* :func:`post` -- a new event of this town: admitted into its own ledger through
  :mod:`.ingest` (the same checks as anyone's) and queued in ``mesh.out.ID``;
* :func:`flush` -- send what is queued to every relay that has not acknowledged it;
  an event leaves the outbox once ``acks`` relays (at most as many as there are)
  said OK.  A relay that is down only leaves events queued for the next flush;
* :func:`sync` -- per relay, the manifests of the pinned towns first, then every
  event of their known keys since the relay's cursor less :data:`OVERLAP` (events
  arrive late and out of order; the overlap takes them, ingest drops duplicates by
  id).  The cursor (``mesh.cursor.URL``) only moves to what this clock has passed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

from ..errors import GastownError
from ..ledger.core import Ledger
from . import kinds, store, wire
from .events import Event, from_dict
from .ingest import DEFAULT_SKEW, Ingest

__all__ = ["post", "flush", "sync", "outbox", "OVERLAP", "OUT", "CURSOR"]

OUT, CURSOR = "mesh.out.", "mesh.cursor."
#: seconds each catch-up reaches back before the cursor
OVERLAP = 600


def post(ledger: Ledger, evs: Iterable[Event], *, max_skew: int = DEFAULT_SKEW
         ) -> dict[str, Any]:
    """Admit this town's new events into its ledger and queue them for the relays."""
    evs = list(evs)
    ing = Ingest(ledger, max_skew=max_skew)
    res = ing.run([e.as_dict() for e in evs], "this town")
    if res["refused"]:
        raise GastownError(f"this town's own event was refused: {res['reasons'][0]}")
    queued = [(OUT + e.id, json.dumps({"event": e.as_dict(), "acks": []})) for e in evs
              if e.id in set(res["ids"])]
    if queued:
        ledger.kv_set_many(queued, "mesh.queued", {"count": len(queued)})
    return {**res, "queued": len(queued)}


def outbox(ledger: Ledger) -> list[dict[str, Any]]:
    """What waits for acknowledgements: ``{"event", "acks"}`` each."""
    return [json.loads(v) for _k, v in ledger.kv_scan(OUT)]


def flush(ledger: Ledger, relays: list[str], acks: int = 1, timeout: float = 10.0
          ) -> dict[str, Any]:
    """Send queued events; how many left the outbox, how many wait, which relays failed."""
    pending = outbox(ledger)
    need = max(1, min(acks, len(relays)))
    errors: dict[str, str] = {}
    for url in relays:
        todo = [p for p in pending if url not in p["acks"]]
        if not todo:
            continue
        try:
            got = wire.publish(url, [from_dict(p["event"]) for p in todo], timeout)
        except wire.RelayError as exc:
            errors[url] = str(exc)
            continue
        for p in todo:
            ok = got.get(p["event"]["id"])
            if ok is not None and ok[0]:
                p["acks"].append(url)
            elif ok is not None:
                errors.setdefault(url, f"relay {url} refused {p['event']['id'][:16]}…: {ok[1]}")
    done = [p for p in pending if len(p["acks"]) >= need]
    left = [p for p in pending if len(p["acks"]) < need]
    if done:
        for p in done:
            ledger.kv_clear(OUT + p["event"]["id"])
    if left:
        ledger.kv_set_many([(OUT + p["event"]["id"], json.dumps(p)) for p in left],
                           "mesh.outbox", {"waiting": len(left)})
    return {"sent": len(done), "waiting": len(left), "errors": errors, "acks_needed": need}


def _known_keys(ledger: Ledger) -> tuple[list[str], list[str]]:
    """(pinned town keys, every key of their manifests)."""
    towns = sorted({p["key"] for p in store.peers(ledger)})
    subs: set[str] = set(towns)
    for _k, v in ledger.kv_scan(store.MAN):
        subs.update(t[1] for t in json.loads(v).get("tags", []) if t and t[0] == "p")
    return towns, sorted(subs)


def sync(ledger: Ledger, relays: list[str], *, max_skew: int = DEFAULT_SKEW,
         timeout: float = 20.0, now: int | None = None) -> dict[str, Any]:
    """Catch up from every relay; per relay what came, what was refused, or its error."""
    out: dict[str, Any] = {"relays": {}, "accepted": 0, "refused": 0, "duplicates": 0}
    for url in relays:
        clock = int(time.time()) if now is None else now
        cur = json.loads(ledger.kv_get(CURSOR + url) or "{}")
        since = max(0, int(cur.get("at", 0)) - OVERLAP) if cur else 0
        try:
            towns, _ = _known_keys(ledger)
            got = wire.fetch(url, {"kinds": [kinds.MANIFEST], "authors": towns}, timeout)
            r1 = Ingest(ledger, now=clock, max_skew=max_skew).run(got, f"relay {url}")
            _, subs = _known_keys(ledger)
            flt: dict[str, Any] = {"authors": subs}
            if since:
                flt["since"] = since
            got = wire.fetch(url, flt, timeout)
        except wire.RelayError as exc:
            out["relays"][url] = {"error": str(exc)}
            continue
        r2 = Ingest(ledger, now=clock, max_skew=max_skew).run(got, f"relay {url}")
        newest = max([int(e.get("created_at", 0)) for e in got
                      if isinstance(e, dict) and isinstance(e.get("created_at"), int)
                      and e["created_at"] <= clock] + [int(cur.get("at", 0))])
        ledger.kv_set(CURSOR + url, json.dumps({"at": newest, "synced_at": clock}))
        res = {k: r1[k] + r2[k] for k in ("accepted", "refused", "duplicates")}
        res["reasons"] = (r1["reasons"] + r2["reasons"])[:5]
        out["relays"][url] = res
        for k in ("accepted", "refused", "duplicates"):
            out[k] += res[k]
    return out
