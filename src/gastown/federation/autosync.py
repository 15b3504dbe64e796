"""``[federation] sync_every``: the controller syncs every remote on its own.

Without it, another town's closes, delegations and answers arrive when someone
runs ``gt remote sync``; with it, the town's leader (the controller, see
``controller/daemon.py``) syncs every remote that often, then runs what a manual
sync runs after it (:func:`~.delegation.after_sync`: auto-accepted delegations,
completion cascading up).  A remote that fails is logged and retried at the next
interval; it never stops the others or the controller's pass.  Each pass is
recorded as one ``federation.autosync`` event naming what was new and what failed,
so ``gt events`` shows when other towns' work last arrived.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from ..config import TownConfig
from ..errors import GastownError
from ..ledger.core import Ledger

__all__ = ["AutoSync"]


class AutoSync:
    """Syncs every remote at most once per ``sync_every`` seconds (0: never)."""

    def __init__(self, gt_dir: str, log: Callable[[str], None] = lambda _m: None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.gt_dir = gt_dir
        self.log = log
        self._clock = clock
        self._last: float | None = None

    def tick(self, ledger: Ledger, cfg: TownConfig) -> dict[str, Any] | None:
        """One pass when it is due (None when it is not, or syncing is off)."""
        from .identity import load_identity

        try:
            every = load_identity(cfg).sync_every
        except GastownError:
            return None  # a broken [federation] table: gt commands say what is wrong
        now = self._clock()
        if not every or (self._last is not None and now - self._last < every):
            return None
        self._last = now
        return self.run(ledger, cfg)

    def run(self, ledger: Ledger, cfg: TownConfig) -> dict[str, Any]:
        """Sync every remote now, then accept and cascade; what happened."""
        from .delegation import after_sync
        from .publish import fed_dir
        from .remotes import list_remotes, sync

        cache = os.path.join(fed_dir(self.gt_dir), "fetch.git")
        synced: list[dict[str, Any]] = []
        failed: dict[str, str] = {}
        for remote in list_remotes(ledger):
            try:
                synced.append(sync(ledger, remote["name"], cache))
            except GastownError as exc:  # one remote gone must not stop the others
                failed[remote["name"]] = str(exc)[:300]
                self.log(f"federation: sync {remote['name']}: {exc}")
        after: dict[str, Any] = {"accepted": [], "completed": []}
        if synced:
            try:
                after = after_sync(ledger, self.gt_dir, cfg)
            except GastownError as exc:
                self.log(f"federation: after sync: {exc}")
        out = {"synced": {r["remote"]: r["new"] for r in synced}, "failed": failed,
               "accepted": [d["id"] for d in after["accepted"]],
               "completed": [d["id"] for d in after["completed"]]}
        if synced or failed:
            ledger.emit("federation.autosync", None, out)
        return out
