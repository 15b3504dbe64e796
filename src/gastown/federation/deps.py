"""Cross-town dependencies: a local bead held until another town's bead is closed.

An edge ``LOCAL -> gt://ENTITY/CHAIN/_/ID`` is stored with its target in the
canonical rig-less form (:func:`canonical`), so the rig segment a user typed (or
``hop://``) never makes two spellings of one bead.  Whether the target blocks is
decided by the ledger's ready rule (:mod:`gastown.ledger.ready`): it holds until
the last sync of that town's remote saw the bead closed.  :func:`closed_states`
turns a sync's applied records into the states the sync commits with them;
:func:`reason` says in words why a remote edge holds.  Standard library only.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ..ledger.ready import DONE_STATUSES
from .uris import NO_RIG, format_uri, is_uri, parse

__all__ = ["canonical", "closed_states", "reason", "is_uri"]


def canonical(text: str) -> str:
    """``gt://E/C/_/ID`` for any bead address (``hop://``, any rig); bad input: UsageError."""
    from ..errors import UsageError

    uri = parse(text, what="remote bead")
    if uri.issue is None:
        raise UsageError(f"{text!r}: a dependency needs a bead (gt://ENTITY/CHAIN/RIG/ID), "
                         "not a town")
    return format_uri(uri.entity, uri.chain, NO_RIG, uri.issue)


def closed_states(town_uri: str, changed: dict[str, dict[str, Any]]) -> dict[str, bool]:
    """Remote bead (canonical) → closed, for the mirror slots a sync changed."""
    town = parse(town_uri)
    out: dict[str, bool] = {}
    for slot, entry in changed.items():
        if not slot.startswith("bead."):
            continue
        body = entry.get("body") or {}
        bead = body.get("bead") or {}
        closed = entry.get("kind") == "bead" and bead.get("status") in DONE_STATUSES
        out[format_uri(town.entity, town.chain, NO_RIG, slot[5:])] = closed
    return out


def _age(iso: str | None) -> str:
    if not iso:
        return "never synced"
    try:
        then = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return f"synced {iso}"
    s = max(0, int((datetime.now(UTC) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"sync {s // size} {unit} ago"
    return f"sync {s} s ago"


def reason(ledger: Any, target: str) -> str:
    """Why the remote edge to ``target`` holds: ``waiting on gt://… (open as of sync
    3 min ago)`` or ``waiting on gt://… (unknown remote bead …)``."""
    uri = parse(target)
    for key, value in ledger.kv_scan("fed.remote."):
        rec = json.loads(value)
        town = parse(rec.get("uri", ""))
        if (town.entity, town.chain) != (uri.entity, uri.chain):
            continue
        name = key[len("fed.remote."):]
        sync = json.loads(ledger.kv_get(f"fed.sync.{name}") or "{}")
        entry = json.loads(ledger.kv_get(f"fed.bead.{name}.{uri.issue}") or "{}")
        if entry.get("kind") != "bead":
            why = "withdrawn" if entry else "unknown remote bead"
            return f"waiting on {target} ({why} as of {_age(sync.get('synced_at'))})"
        status = (entry.get("body") or {}).get("bead", {}).get("status", "?")
        return f"waiting on {target} ({status} as of {_age(sync.get('synced_at'))})"
    return f"waiting on {target} (unknown remote bead: no remote for " \
           f"{format_uri(uri.entity, uri.chain)})"
