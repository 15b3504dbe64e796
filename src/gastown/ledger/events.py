"""The event log: one append-only table every change writes in its own transaction.

Consumers follow it by ``seq``: :class:`~gastown.ledger.bus.EventBus`
subscriptions, or :func:`follow` (one subscription).  Two facts shape them:

* On PostgreSQL, ``seq`` comes from a sequence, which is not transactional: a
  transaction that takes seq 10 may commit *after* one that took seq 11, and a
  rolled-back one leaves seq 10 unused for ever.  A follower that only asks for
  ``seq > last`` could skip 10.  So the follower remembers the holes below its
  high-water mark and asks for them again until they fill or expire.
* On SQLite, writers are serialised and AUTOINCREMENT rolls back with its
  transaction, so there are never holes; the same code simply finds none.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only
    from collections.abc import Callable, Iterable, Iterator
    from typing import Any

    from .bus import EventBus
    from .core import Ledger

__all__ = ["follow", "matches"]

#: how long a hole below the high-water mark is waited for before it is
#: taken to be a rolled-back transaction's number
HOLE_PATIENCE_S = 10.0


def matches(event: dict[str, Any], types: Iterable[str] = (), bead_id: str | None = None) -> bool:
    """Does an event pass a ``--type`` (``prefix*`` allowed) and ``--bead`` filter?"""
    if bead_id and event.get("bead_id") != bead_id:
        return False
    wanted = list(types)
    if not wanted:
        return True
    etype = str(event.get("type", ""))
    return any(etype.startswith(t[:-1]) if t.endswith("*") else etype == t for t in wanted)


def follow(ledger: Ledger, since_seq: int = 0, *, interval: float = 0.2,
           timeout: float | None = None, types: Iterable[str] = (), bead_id: str | None = None,
           stop: Callable[[], bool] | None = None,
           bus: EventBus | None = None) -> Iterator[dict[str, Any]]:
    """Yield events after ``since_seq`` as they are committed, in commit-safe order.

    A subscription of its own :class:`~gastown.ledger.bus.EventBus`: it wakes as
    soon as an event commits (``LISTEN`` on PostgreSQL, the WAL file on SQLite)
    and reads the log every ``max(interval, 1)`` s in case a wake-up was lost.
    ``stop()`` is asked after each batch and at least every ``interval`` s; it
    runs until ``timeout`` seconds pass or ``stop()`` returns True (forever if
    neither is given).  Every committed event is yielded exactly once.

    A long-lived process with many followers (a server, one per client) passes
    its own ``bus``: they then share one waiter and one connection, and the bus
    stays open when a follower ends.
    """
    from .bus import EventBus

    own = bus is None
    if bus is None:
        bus = EventBus(ledger, fallback=max(interval, 1.0), hole_poll=min(interval, 0.05))
    sub = None
    try:
        sub = bus.subscribe(since_seq, types, bead_id)
        for batch in sub.batches(timeout=timeout or None, check_every=interval, stop=stop):
            yield from batch
    finally:
        if sub is not None:
            sub.close()
        if own:
            bus.close()
