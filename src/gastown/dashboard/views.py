"""The dashboard's data: plain dicts the pages render and ``/api/`` returns as JSON."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError
from ..ledger.ready import BLOCKING_DEP_TYPES, DONE_STATUSES

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from ..town.core import Town

__all__ = ["overview", "ledger_summary", "SummaryCache", "bead_view", "molecule_page",
           "events_after", "unblocked_by"]

#: how many ready / blocked beads the overview lists (the counts are always whole)
LISTED = 20


def ledger_summary(led: Ledger) -> dict[str, Any]:
    """Ready and blocked beads: whole counts, the first :data:`LISTED` of each."""
    ready = led.ready(limit=LISTED)
    blocked = led.blocked(limit=LISTED)  # only the listed ones pay for their blocked_by
    brief = ("id", "title", "status", "priority", "assignee")
    return {"ready": {"count": led.ready_count(),
                      "beads": [{k: b.get(k) for k in brief} for b in ready[:LISTED]]},
            "blocked": {"count": led.blocked_count(),
                        "beads": [{**{k: b.get(k) for k in brief},
                                   "blocked_by": b.get("blocked_by", [])}
                                  for b in blocked[:LISTED]]}}


class SummaryCache:
    """:func:`ledger_summary`, computed again only when the event log has moved on.

    Every ledger write appends an event, so an unchanged last seq means unchanged
    ready and blocked sets -- except for deferrals that expire with time, hence
    ``max_age`` seconds at most.
    """

    def __init__(self, max_age: float = 30.0) -> None:
        self.max_age = max_age
        self._lock = threading.Lock()
        self._key: tuple[int, float] | None = None
        self._data: dict[str, Any] = {}

    def get(self, led: Ledger) -> dict[str, Any]:
        """The summary as of the ledger's last event."""
        seq = led.last_event_seq()
        with self._lock:
            now = time.monotonic()
            if self._key is None or self._key[0] != seq or now - self._key[1] > self.max_age:
                self._data = ledger_summary(led)
                self._key = (seq, now)
            return self._data


def overview(town: Town, led: Ledger, events: int = 30, *, everything: bool = True,
             cache: SummaryCache | None = None) -> dict[str, Any]:
    """``gt status --json``'s data plus ready/blocked counts and the first ready beads.

    ``everything``: every recent event, else only milestones (as ``gt status``).
    ``cache``: reuse the ready/blocked summary while no event has landed.
    """
    from ..controller.overview import town_overview

    last = led.last_event_seq()
    data = town_overview(town, led, events=events, everything=everything)
    data.update(cache.get(led) if cache is not None else ledger_summary(led))
    # read before anything else: a stream opened after it misses no change to this data
    data["last_seq"] = last
    data["abnormal"] = sum(1 for a in data["agents"] if _abnormal(a))
    return data


def _abnormal(agent: dict[str, Any]) -> bool:
    """Needs a person: quarantined, waiting for input, or exited with a failure."""
    if agent["state"] == "exited":
        return (agent.get("session") or {}).get("exit_status") not in (0, None)
    return agent["state"] not in ("running", "stopped")


def unblocked_by(led: Ledger, bead_id: str) -> list[str]:
    """Ids of open beads whose only open blocker is ``bead_id``: closing it frees them."""
    waiting = sorted({e["issue_id"] for e in led.dependents(bead_id)
                      if e["type"] in BLOCKING_DEP_TYPES and e.get("status") not in DONE_STATUSES})
    if not waiting:
        return []
    with led.snapshot() as r:
        return [other for other in waiting if r.open_blockers(other) == [bead_id]]


def bead_view(led: Ledger, bead_id: str) -> dict[str, Any]:
    """A bead with dependencies, dependents, comments, what closing it unblocks, its graph."""
    from .graph import dependency_svg

    bead = dict(led.show(led.resolve_id(bead_id)))
    bead["unblocks"] = unblocked_by(led, bead["id"])
    bead["graph_svg"] = dependency_svg(bead)
    try:
        bead["molecule"] = molecule_page(led, bead["id"])
    except NotFoundError:
        bead["molecule"] = None
    return bead


def molecule_page(led: Ledger, root_id: str) -> dict[str, Any]:
    """A molecule's steps and their states; NotFoundError when the bead has no steps."""
    from ..town.work import molecule_view

    root = led.get(led.resolve_id(root_id))
    view = molecule_view(led, root)
    if view is None:
        raise NotFoundError(f"{root['id']} is not a molecule (it has no steps)")
    return {**view, "title": root["title"], "status": root["status"]}


def events_after(led: Ledger, after: int = 0, limit: int = 200) -> list[dict[str, Any]]:
    """Events with ``seq > after``, oldest first, at most ``limit``."""
    return led.events(since_seq=max(0, after), limit=max(1, min(limit, 1000)))
