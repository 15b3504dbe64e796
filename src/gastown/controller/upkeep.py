"""What the controller's tick adds for orders and housekeeping: :func:`upkeep`.

Orders are looked at on every tick (a schedule is kept to within one tick; a
``bead.closed`` wakes the ticker at once).  Timer gates and conditional bonds are
cheap and also run every tick; wisp collection and worktree pruning, which list
closed beads and run git, run every ``[housekeeping] every`` seconds.  When the
town has several nodes, only the leader calls this (a single entry point).
"""

from __future__ import annotations

import time
import traceback
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .daemon import Controller

__all__ = ["upkeep", "upkeep_pass", "orders_pass"]

#: events after which worktrees may have become prunable
_PRUNE_AFTER = ("merge.landed", "done", "hook.cleared", "hook.unpinned", "session.stopped")


def orders_pass(ctl: Controller) -> list[dict[str, Any]]:
    """Fire the town's due orders (:func:`gastown.controller.orders.run_orders`)."""
    from .orders import run_orders

    return run_orders(ctl.town, ctl.led, log=ctl.log)


def upkeep_pass(ctl: Controller, now: float | None = None) -> dict[str, Any]:
    """Timer gates and conditional bonds now; wisps and worktrees every ``every`` s."""
    from .housekeeping import evaluate_bonds, open_timer_gates

    town, led, log = ctl.town, ctl.led, ctl.log
    hk = town.config.housekeeping
    at = time.time() if now is None else now
    out: dict[str, Any] = {}
    if hk.timer_gates:
        opened = open_timer_gates(led, at, log=log)
        if opened:
            log(f"timer gates opened: {', '.join(opened)}")
            out["gates"] = opened
    if hk.conditional_bonds:
        skipped = evaluate_bonds(led, log=log)
        if skipped:
            out["skipped"] = skipped
    last = getattr(ctl, "_housekeeping_at", None)
    if last is None or at - last >= hk.every:
        ctl._housekeeping_at = at  # type: ignore[attr-defined]  # per controller, in memory
        out.update(_slow(ctl, at))
    return out


def _slow(ctl: Controller, at: float) -> dict[str, Any]:
    from .housekeeping import collect_wisps
    from .prune import prune_town

    town, led, log = ctl.town, ctl.led, ctl.log
    hk = town.config.housekeeping
    out: dict[str, Any] = {}
    if hk.wisp_max_age is not None:
        burned = collect_wisps(led, hk.wisp_max_age, at)
        if burned:
            log(f"housekeeping: burned {len(burned)} old wisp(s): {', '.join(burned[:10])}")
            out["wisps"] = burned
    # pruning runs git: only when something landed or an agent let go of its work since
    # the last look (an idle town costs nothing here)
    seen = getattr(ctl, "_pruned_at_seq", None)
    changed = seen is None or bool(led.events(since_seq=seen, types=list(_PRUNE_AFTER),
                                              limit=1))
    if hk.prune_worktrees and changed:
        ctl._pruned_at_seq = led.last_event_seq()  # type: ignore[attr-defined]
        pruned = prune_town(town, led)
        if pruned:
            log(f"housekeeping: pruned {pruned}")
            out["pruned"] = pruned
    return out


def upkeep(ctl: Controller) -> dict[str, Any]:
    """What the controller's tick calls: orders, then housekeeping, each on its own.

    One failing part is logged and does not keep the other from running.
    """
    out: dict[str, Any] = {}
    for name, step in (("orders", lambda: orders_pass(ctl)),
                       ("housekeeping", lambda: upkeep_pass(ctl))):
        try:
            result = step()
        except Exception:  # noqa: BLE001 - like the tick's own parts
            ctl.log(f"tick: {name} failed:\n{traceback.format_exc()}")
            continue
        if result:
            out[name] = result
    return out
