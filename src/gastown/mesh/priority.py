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
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

__all__ = ["effective", "order_key", "town_of_request"]


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
