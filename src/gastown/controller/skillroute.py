"""Routing a pool's ready work by skills (``[pools.NAME] route = "skills"``).

A pool's slots are entities with chains of their own (``POOL-1``, ``POOL-2``…: the
same slot is the same entity every time it works).  For a bead routed to such a
pool, the feeder tries the slots in the order ``gt match`` ranks them -- the one
whose demonstrated work fits the bead best first, ties by name -- and the first free
one gets it.  The ranking's inputs (every chain record) are read again only when
the town log has grown, and at most every :data:`REFRESH_S` seconds: skills change
slowly, and a big town's records take a second or more to read (benchmarks/README.md),
which the controller's loop must not pay on every tick.  With chains off, or nothing
to go on, the order is empty and the pool picks its first free slot as usual.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..errors import GastownError

if TYPE_CHECKING:
    from ..chains.match import Candidates
    from ..config.schema import PoolConfig
    from ..ledger.core import Ledger
    from ..town.core import Town

__all__ = ["REFRESH_S", "SkillRouter"]

#: the shortest time between two reads of every chain record by one router
REFRESH_S = 60.0


class SkillRouter:
    """Orders a pool's slots for a bead; keeps the candidates until the log grows."""

    def __init__(self, town: Town, led: Ledger) -> None:
        self.town = town
        self.led = led
        self._cached: tuple[int, Candidates] | None = None
        self._read_at = 0.0

    def _candidates(self) -> Candidates:
        from ..chains.match import candidates
        from ..chains.read import entities, records

        if self._cached is not None and time.monotonic() - self._read_at < REFRESH_S:
            return self._cached[1]
        size = sum(int(e["length"]) for e in entities(self.led))
        if self._cached is None or self._cached[0] != size:
            self._cached = (size, candidates(records(self.led)))
        self._read_at = time.monotonic()
        return self._cached[1]

    def order(self, bead_id: str, pool: PoolConfig) -> list[str]:
        """The pool's slot names, best fit for ``bead_id`` first ([] with chains off)."""
        from dataclasses import replace

        from ..chains.entity import entity_of
        from ..chains.hook import work_of
        from ..chains.match import rank
        from ..ledger import chainlog

        with self.led.snapshot() as view:
            org = chainlog.settings(view).get("chains.org")
        if not org:
            return []
        slots = {entity_of(self.town.actor_of(pool.slot(n)), org): pool.slot(n).name
                 for n in range(1, pool.max + 1)}
        try:
            work = work_of(self.led.get(bead_id))
            # the town's candidates, narrowed to this pool's slots (a copy: the cache stays)
            mine = replace(self._candidates(), entities=sorted(slots))
            ranked = rank(work, mine, bead=bead_id, terms=0)
        except GastownError:
            return []  # a record the ranking refuses: route as a plain pool would
        return [slots[r["entity"]] for r in ranked]
