"""A federation remote whose ``--url`` is a relay: ``gt remote sync`` over Nostr.

``gt remote add NAME gt://E/C --url ws://…`` then ``gt remote sync NAME`` catch up
from that relay (every event checked by :mod:`.ingest`) and mirror the town's work
items into the federation mirror (``fed.bead.NAME.ID``), so ``bd show gt://…`` and
``bd list --remote=NAME`` read them like any remote's beads.  The town must be
pinned to its key first (``gt mesh peer add``): a relay never says who a town is.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..errors import NotFoundError
from ..federation.remotes import inert, mirror_key
from ..ledger.core import Ledger
from . import store, sync, work

__all__ = ["sync_remote"]


def sync_remote(ledger: Ledger, name: str, remote: dict[str, Any]) -> dict[str, Any]:
    """Catch up from the remote's relay; mirror its town's work items (a sync summary)."""
    town = remote["uri"]
    peer = next((p for p in store.peers(ledger) if p["uri"] == town), None)
    if peer is None:
        raise NotFoundError(f"remote {name}: {town} is not pinned to a key "
                            f"(gt mesh peer add NAME {town} KEY)")
    res = sync.sync(ledger, [remote["url"]])
    err = res["relays"][remote["url"]].get("error")
    if err:
        raise NotFoundError(f"remote {name}: {err}")
    items = []
    for w in work.work_items(ledger, town):
        rec = {"seq": w["created_at"], "at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                           time.gmtime(w["created_at"])),
               "kind": "bead.withdrawn" if w.get("withdrawn") else "bead",
               "body": {"id": w.get("id"), "bead": w.get("bead"), "uri": w["uri"]}}
        if mirror_key(rec) is None:  # not a bead snapshot of the expected shape
            continue
        items.append((f"fed.bead.{name}.{rec['body']['id']}",
                      json.dumps({**rec, "body": inert(rec["body"])}, sort_keys=True)))
    state = {"count": len(items), "head": "", "public_key": peer["key"],
             "synced_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    items.append((f"fed.sync.{name}", json.dumps(state, sort_keys=True)))
    ledger.kv_set_many(items, "federation.synced", {"remote": name, "relay": remote["url"]})
    return {"remote": name, "new": res["accepted"], "applied": len(items) - 1,
            "count": len(items) - 1, "head": ""}
