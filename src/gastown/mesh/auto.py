"""The controller's mesh step: publish the outbox and catch up from the relays, on a timer.

When ``[mesh] relays`` is set, the town's leader (``if self.leading():`` in the
controller's tick) calls :meth:`AutoSync.step` every tick.  Once every
``[mesh] sync_every`` seconds (default 30; 0 turns it off) it does what
``gt mesh publish`` and ``gt mesh sync`` do -- sign the manifest when it changed and a
work item per changed bead the ``[federation] publish`` policy covers, send the
outbox, then catch up from each relay -- on a thread of its own, so a slow or dead
relay never holds the tick up and never fails it.  A relay's error is logged (once
per change, not every round), kept in ``mesh.auto`` for ``gt mesh status`` and
``gt status``, and retried at the next interval; what waits stays in the outbox.
"""

from __future__ import annotations

import json
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from ..config import TownConfig
from ..errors import GastownError, ValidationError
from ..ledger.core import Ledger

__all__ = ["AutoSync", "STATE", "state", "run_once"]

#: the ledger key that holds the last round's outcome
STATE = "mesh.auto"


def state(ledger: Ledger) -> dict[str, Any] | None:
    """The last automatic round: ``{"at", "ok", "errors", "published", "waiting",
    "accepted", "refused", "failures", "next"}``, or None before the first."""
    v = ledger.kv_get(STATE)
    return dict(json.loads(v)) if v else None


def run_once(ledger: Ledger, cfg: TownConfig, gt_dir: str) -> dict[str, Any]:
    """One round: publish what changed, flush the outbox, sync; errors as data."""
    from ..federation.identity import load_identity
    from . import identity, sync, work

    me = identity.load(cfg, gt_dir, ledger)
    relays = list(me.settings.relays)
    evs = work.manifest_if_changed(ledger, me) + work.bead_items(
        ledger, me, load_identity(cfg).publish)
    posted = sync.post(ledger, evs, max_skew=me.settings.max_skew)
    sent = sync.flush(ledger, relays, me.settings.acks)
    got = sync.sync(ledger, relays, max_skew=me.settings.max_skew)
    errors = dict(sent["errors"])
    for url, r in got["relays"].items():
        if "error" in r:
            errors.setdefault(url, r["error"])
    return {"published": posted["queued"], "sent": sent["sent"], "waiting": sent["waiting"],
            "accepted": got["accepted"], "refused": got["refused"], "errors": errors}


class AutoSync:
    """Runs :func:`run_once` every ``sync_every`` seconds, one round at a time."""

    def __init__(self, log: Callable[[str], None] = lambda _m: None,
                 clock: Callable[[], float] = time.time) -> None:
        self.log = log
        self.clock = clock
        self.next_at = 0.0
        self.failures = 0
        self._last_errors: dict[str, str] = {}
        self._thread: threading.Thread | None = None
        self._bad_config = ""

    def busy(self) -> bool:
        """Is a round running now?"""
        return self._thread is not None and self._thread.is_alive()

    def step(self, ledger: Ledger, cfg: TownConfig, gt_dir: str, *, wait: bool = False
             ) -> bool:
        """Start a round when one is due (``wait``: run it here); True when one started."""
        from .identity import settings

        try:
            s = settings(cfg)
        except ValidationError as exc:  # said once, not every tick, until it is fixed
            if self._bad_config != str(exc):
                self.log(f"mesh: not syncing: {exc}")
            self._bad_config = str(exc)
            return False
        self._bad_config = ""
        if not s.relays or s.sync_every <= 0 or self.busy() or self.clock() < self.next_at:
            return False
        self.next_at = self.clock() + s.sync_every
        if wait:
            self._round(ledger, cfg, gt_dir, s.sync_every)
            return True
        self._thread = threading.Thread(target=self._round, name="mesh-sync", daemon=True,
                                        args=(ledger, cfg, gt_dir, s.sync_every))
        self._thread.start()
        return True

    def _round(self, ledger: Ledger, cfg: TownConfig, gt_dir: str, every: float) -> None:
        started = self.clock()
        try:
            res = run_once(ledger, cfg, gt_dir)
        except Exception as exc:  # noqa: BLE001 - a round's failure must not reach the tick
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            res = {"errors": {"*": first}}
            if self._last_errors.get("*") != first and not isinstance(
                    exc, (OSError, ValueError, GastownError)):
                self.log(f"mesh: round crashed:\n{traceback.format_exc()}")
        errors: dict[str, str] = res.get("errors", {})
        self.failures = self.failures + 1 if errors else 0
        for url, why in errors.items():
            if self._last_errors.get(url) != why:
                self.log(f"mesh: {url}: {why} (retried every {every:g}s)")
        for url in set(self._last_errors) - set(errors):
            self.log(f"mesh: {url}: reachable again")
        self._last_errors = errors
        rec = {**res, "at": started, "ok": not errors, "failures": self.failures,
               "next": self.next_at}
        try:
            ledger.kv_set(STATE, json.dumps(rec, sort_keys=True))
        except Exception:  # noqa: BLE001 - the ledger is busy or closing: next round
            self.log(f"mesh: could not record the round:\n{traceback.format_exc()}")
