"""The controller's policies: the ``[controller]``, ``[patrol]`` and ``[merge]`` tables.

Everything the deterministic machinery decides by is configuration a person
edits in ``town.toml`` (DESIGN §2.2: no role, no threshold is named in code
beyond these defaults).  A rig's test and land commands live on the rig
(``[rigs.NAME] test = "…"``, ``land = "…"``) and are parsed with the rigs.

Every mistake is one :class:`ValidationError` naming the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError
from .values import boolean, checked_table, integer, number

__all__ = ["ControllerPolicy", "PatrolPolicy", "MergePolicy", "Policies", "parse_policies",
           "TABLES", "MERGE_ORDERS"]

#: the top-level tables of town.toml that hold the controller's policies
TABLES = ("controller", "patrol", "merge")


@dataclass(frozen=True)
class ControllerPolicy:
    """``[controller]``: how often the loop looks at the event log and ticks."""

    tick: float = 10.0          # seconds between reconcile ticks (patrol, pools, convoys)
    # seconds between idle looks: a commit wakes the loop at once (the event bus) and
    # so does a stop, so this only bounds how stale the saved cursor may get
    poll: float = 1.0
    # nudges delivered at once: each mostly waits (its text to show, a settle pause), so
    # a burst of 100 closes needs many in flight to be delivered within the 1 s budget
    nudge_workers: int = 64


@dataclass(frozen=True)
class PatrolPolicy:
    """``[patrol]``: what counts as dead, stalled or crash-looping, and who hears of it."""

    start_missing: bool = True   # start a session for hooked work that has none
    restart_dead: bool = True    # restart a session that ended with work on its hook
    stall_after: float = 900.0   # seconds without output or ledger activity: nudge
    restart_after: float = 300.0  # seconds after that nudge without progress: restart
    max_restarts: int = 5        # restarts within `window` seconds quarantine an agent
    window: float = 3600.0
    notify: str | None = None    # who is mailed about quarantines (default: the owner)


@dataclass(frozen=True)
class MergePolicy:
    """``[merge]``: the merge queue's order and limits."""

    aging: float = 600.0         # seconds of waiting that raise a request one priority level
    test_timeout: float = 900.0  # seconds a rig's test command may run
    retries: int = 3             # attempts when the target moves under a landing
    #: "priority": priority, then aging; "trust": also urgency and the trust of the
    #: request's town (gastown.mesh.priority -- bounded bonuses, aging unbounded)
    order: str = "priority"


#: the values of ``[merge] order``
MERGE_ORDERS = ("priority", "trust")


@dataclass(frozen=True)
class Policies:
    """All three tables."""

    controller: ControllerPolicy = field(default_factory=ControllerPolicy)
    patrol: PatrolPolicy = field(default_factory=PatrolPolicy)
    merge: MergePolicy = field(default_factory=MergePolicy)


def parse_policies(data: dict[str, Any], path: str = "town.toml") -> Policies:
    """Validate the three tables of parsed ``town.toml`` data (defaults for what is absent)."""
    where = f"{path}: controller"
    c = checked_table(data.get("controller", {}), {"tick", "poll", "nudge_workers"}, where)
    controller = ControllerPolicy(
        tick=number(c, "tick", where, 10.0, 0.2, 3600.0),
        poll=number(c, "poll", where, 1.0, 0.01, 5.0),
        nudge_workers=integer(c, "nudge_workers", where, 64, 1, 256))
    where = f"{path}: patrol"
    p = checked_table(data.get("patrol", {}),
                      {"start_missing", "restart_dead", "stall_after", "restart_after",
                       "max_restarts", "window", "notify"}, where)
    notify = p.get("notify")
    if notify is not None and (not isinstance(notify, str) or not notify.strip()):
        raise ValidationError(f"{where}.notify must be a mail address (a string)")
    patrol = PatrolPolicy(
        start_missing=boolean(p, "start_missing", where, True),
        restart_dead=boolean(p, "restart_dead", where, True),
        stall_after=number(p, "stall_after", where, 900.0, 1.0, 7 * 86400.0),
        restart_after=number(p, "restart_after", where, 300.0, 1.0, 7 * 86400.0),
        max_restarts=integer(p, "max_restarts", where, 5, 1, 1000),
        window=number(p, "window", where, 3600.0, 1.0, 30 * 86400.0),
        notify=notify)
    where = f"{path}: merge"
    m = checked_table(data.get("merge", {}), {"aging", "test_timeout", "retries", "order"},
                      where)
    order = m.get("order", "priority")
    if order not in MERGE_ORDERS:
        raise ValidationError(f"{where}.order must be one of {', '.join(MERGE_ORDERS)} "
                              f"(not {order!r})")
    merge = MergePolicy(
        aging=number(m, "aging", where, 600.0, 1.0, 365 * 86400.0),
        test_timeout=number(m, "test_timeout", where, 900.0, 1.0, 86400.0),
        retries=integer(m, "retries", where, 3, 1, 100), order=str(order))
    return Policies(controller, patrol, merge)
