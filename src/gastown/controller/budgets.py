"""The controller's budget watch: pauses and resumes by :mod:`gastown.town.budgets`.

Reading every agent program's logs costs a little disk time, so the watch runs
at most once per ``every`` seconds (and only when ``town.toml`` has budgets or a
budget is still paused); the pool feeder reads the paused records, which is one
indexed kv scan.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..town.budgets import check_budgets, paused

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from ..town.core import Town

__all__ = ["BudgetWatch"]


class BudgetWatch:
    """Checks the town's budgets on the controller's tick."""

    def __init__(self, town: Town, led: Ledger, log: Callable[[str], None] = lambda _m: None,
                 every: float = 30.0) -> None:
        self.town = town
        self.led = led
        self.log = log
        self.every = every
        self._last = 0.0

    def wake(self) -> None:
        """Run at the next tick (``town.toml`` changed: a limit may have moved)."""
        self._last = 0.0

    def check(self, force: bool = False) -> dict[str, list[str]] | None:
        """Pause or resume budgets when due; what changed (None when not run)."""
        now = time.monotonic()
        if not force and now - self._last < self.every:
            return None
        self._last = now
        if not self.town.config.budgets and not paused(self.led):
            return None
        changed = check_budgets(self.town, self.led, time.time())
        for key in changed["paused"]:
            self.log(f"budgets: {key} reached: no new work goes there this period")
        for key in changed["resumed"]:
            self.log(f"budgets: {key} resumed")
        return changed
