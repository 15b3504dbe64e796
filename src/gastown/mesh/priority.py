"""Trust-weighted merge priority: an optional order for the refinery's queue.

Lower lands first::

    effective = priority - urgency - 2 * trust(author's town) - waited / aging

* ``priority`` -- the bead's 0..4; ``urgency`` -- 1 with the label ``urgent``, else 0;
* ``trust`` -- 0..1, of the town the request came from (``metadata.town`` or the town
  of ``metadata.delegated_from``, a ``gt://`` address); a local request counts as 1;
* ``waited / aging`` -- one level per ``[merge] aging`` seconds waited, unbounded.

No starvation: the bonuses are bounded (at most 3 levels) and the age term is not,
so a request that has waited ``(its priority + 3) * aging`` seconds is ahead of any
newcomer.  Ties: the older ``created_at``, then the lower id.

The refinery uses it when ``town.toml`` says ``[merge] order = "trust"``
(:func:`merge_key`): trust is this town's view (:mod:`.trust`, cached) of the
pinned peer with that address; a town that is not pinned scores 0.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ..config import TownConfig
from ..errors import GastownError
from ..ledger.core import Ledger

__all__ = ["effective", "order_key", "town_of_request", "trust_of", "merge_key"]


def town_of_request(mr: dict[str, Any]) -> str | None:
    """The ``gt://E/C`` a request came from (None: this town)."""
    meta = mr.get("metadata") or {}
    src = meta.get("town") or meta.get("delegated_from")
    if not isinstance(src, str) or not src.startswith("gt://"):
        return None
    parts = src[5:].split("/")
    return f"gt://{parts[0]}/{parts[1]}" if len(parts) >= 2 else None


def _epoch(ts: Any, now: float) -> float:
    try:
        return datetime.fromisoformat(str(ts).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return now


def effective(mr: dict[str, Any], trust: float, aging: float, now: float) -> float:
    """The request's effective priority (see the module)."""
    urgency = 1 if "urgent" in (mr.get("labels") or ()) else 0
    waited = max(0.0, now - _epoch(mr.get("created_at"), now))
    t = min(1.0, max(0.0, trust))
    return int(mr.get("priority", 2)) - urgency - 2 * t - waited / aging


def order_key(trust_of: Callable[[str], float], aging: float, now: float | None = None
              ) -> Callable[[dict[str, Any]], tuple[float, str, str]]:
    """A sort key for merge requests; ``trust_of(town)`` scores a ``gt://E/C``."""
    at = time.time() if now is None else now
    cache: dict[str, float] = {}

    def key(mr: dict[str, Any]) -> tuple[float, str, str]:
        town = town_of_request(mr)
        if town is None:
            t = 1.0
        else:
            if town not in cache:
                cache[town] = trust_of(town)
            t = cache[town]
        return (effective(mr, t, aging, at), str(mr.get("created_at") or ""), str(mr["id"]))

    return key


def trust_of(ledger: Ledger, cfg: TownConfig, gt_dir: str) -> Callable[[str], float]:
    """Score a ``gt://E/C`` from this town's point of view (0 when it is not pinned)."""
    from . import identity, store, trust

    me = store.PEER + identity.SELF
    if ledger.kv_get(me) is None:
        try:  # pins this town as "self" (its key, from the town secret)
            identity.load(cfg, gt_dir, ledger)
        except GastownError:
            pass  # no mesh identity: history still counts, social distance does not
    raw = ledger.kv_get(me)
    observer = str(json.loads(raw)["key"]) if raw else ""
    keys = {p["uri"]: p["key"] for p in store.peers(ledger) if p["name"] != identity.SELF}

    def score(town: str) -> float:
        key = keys.get(town)
        if key is None:
            return 0.0
        return float(trust.score(ledger, observer, key)["trust"])

    return score


def merge_key(ledger: Ledger, cfg: TownConfig, gt_dir: str, aging: float,
              now: float | None = None) -> Callable[[dict[str, Any]], tuple[float, str, str]]:
    """The merge queue's trust-weighted sort key for this town (``[merge] order = "trust"``)."""
    return order_key(trust_of(ledger, cfg, gt_dir), aging, now)
