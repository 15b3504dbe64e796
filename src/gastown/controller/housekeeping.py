"""Housekeeping: what a long-running town cleans up by itself (plain code, no model).

* **Wisps by age**: a closed wisp (an ephemeral molecule) older than
  ``[housekeeping] wisp_max_age`` is burned -- wisps are vapor, never exported.
* **Timer gates**: a gate bead of type ``timer`` opens (closes, with a
  ``gate.resolved`` event) when its time has come: ``timeout = "30m"`` after the
  gate was poured, or at ``id = "2026-12-01T09:00:00Z"``.  The ready rule is
  unchanged: the gate is an ordinary blocker that the controller resolves.
* **Conditional bonds**: a ``conditional-blocks`` edge whose metadata says
  ``when = "success"`` or ``"failure"`` is evaluated when its target closes; when
  the outcome is the other one, the waiting branch is closed as skipped, so it
  never becomes work.  A bead failed when its ``metadata.outcome`` is ``failure``
  (or ``failed``), it has the label ``failed``, or its close reason starts with
  ``fail``, ``failed``, ``failure``, ``error``, ``abort`` or ``abandon``; a
  molecule failed when any of its steps did.

Worktree pruning lives in :mod:`.prune`.  Each function is one bounded pass; the
controller calls them from :mod:`.upkeep`.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import GastownError, NotFoundError, ValidationError

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from ..ledger.model import Bead
    from ..ledger.ops import Txn

__all__ = ["collect_wisps", "timer_opens_at", "open_timer_gates", "bead_failed",
           "evaluate_bonds", "BONDS_CURSOR", "MAX_PER_PASS"]

BONDS_CURSOR = "gt.housekeeping.bonds.cursor"
#: beads changed per pass at most: a backlog is worked off over several passes
MAX_PER_PASS = 200
_FAILED = re.compile(r"^\s*(fail|failed|failure|error|abort|aborted|abandon|abandoned)\b",
                     re.IGNORECASE)


def _epoch(ts: Any) -> float | None:
    if not isinstance(ts, str) or not ts:
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def collect_wisps(led: Ledger, max_age: float, now: float | None = None) -> list[str]:
    """Burn closed wisps whose root closed more than ``max_age`` seconds ago; their ids."""
    from ..chemistry.digest import burn_in
    from ..ledger.query import Filter

    cutoff = (time.time() if now is None else now) - max_age
    # a wisp's root is a molecule: the query stays small however many beads are closed
    roots = [b for b in led.list(Filter(status=["closed"], issue_type=["molecule"],
                                        include_ephemeral=True))
             if b.get("ephemeral") and "." not in b["id"]
             and (_epoch(b.get("closed_at")) or cutoff + 1) <= cutoff]
    burned: list[str] = []
    for root in roots[:MAX_PER_PASS]:
        try:
            with led.transaction() as t:
                if burn_in(t, root["id"]):
                    burned.append(root["id"])
        except GastownError:
            continue  # changed under us (squashed, reopened): next pass looks again
    return burned


def timer_opens_at(gate: Bead) -> float | None:
    """When a ``timer`` gate opens (seconds since the epoch), or None if it is no timer."""
    from ..config.orders import parse_age

    meta = gate.get("metadata") or {}
    raw = meta.get("gate")
    spec: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if (meta.get("await_type") or spec.get("type")) != "timer":
        return None
    at = meta.get("await_id") or spec.get("id")
    if isinstance(at, str) and at.strip():
        when = _epoch(at.strip())
        if when is None:
            raise ValidationError(f"gate {gate['id']}: timer id {at!r} is not an RFC 3339 "
                                  "time such as 2026-12-01T09:00:00Z")
        return when
    wait = meta.get("timeout") or spec.get("timeout")
    if not wait:
        raise ValidationError(f"gate {gate['id']}: a timer gate needs timeout (\"30m\") or "
                              "id (a time)")
    created = _epoch(gate.get("created_at"))
    return (created or time.time()) + parse_age(wait, f"gate {gate['id']}: timeout")


def open_timer_gates(led: Ledger, now: float | None = None,
                     log: Any = None) -> list[str]:
    """Resolve every open timer gate whose time has come; returns their ids."""
    from ..ledger.query import Filter

    at = time.time() if now is None else now
    gates = led.list(Filter(issue_type=["gate"], include_closed=False, include_ephemeral=True))
    opened: list[str] = []
    for gate in gates:
        if gate["status"] == "closed":
            continue
        try:
            when = timer_opens_at(gate)
        except ValidationError as exc:
            if log is not None:
                log(str(exc))
            continue
        if when is None or when > at or len(opened) >= MAX_PER_PASS:
            continue
        with led.transaction() as t:
            if t.status_of(gate["id"]) == "closed":
                continue
            t.close(gate["id"], reason="timer elapsed", force=True)
            t.emit("gate.resolved", gate["id"], {"reason": "timer", "await_type": "timer"})
        opened.append(gate["id"])
    return opened


def bead_failed(bead: Bead) -> bool:
    """Did this closed bead fail? (see the module docstring for the rule)."""
    meta = bead.get("metadata") or {}
    if str(meta.get("outcome") or "").lower() in ("failure", "failed", "fail"):
        return True
    if "failed" in (bead.get("labels") or []):
        return True
    return bool(_FAILED.match(str(bead.get("close_reason") or "")))


def _outcome_failed(led: Ledger, bead: Bead) -> bool:
    """A bead failed; a molecule failed when it or any of its steps did."""
    if bead_failed(bead):
        return True
    if bead.get("issue_type") != "molecule":
        return False
    from ..ledger.query import Filter

    steps = led.list(Filter(mol=bead["id"], include_ephemeral=True))
    return any(bead_failed(s) for s in steps[:10_000] if s["id"] != bead["id"])


def _skip(t: Txn, bead_id: str, reason: str) -> list[str]:
    """Close ``bead_id`` and everything open under it, the top first (so a molecule's
    root keeps the skip's reason instead of closing itself as finished)."""
    order: list[str] = []
    stack = [bead_id]
    while stack and len(order) < 10_000:
        cur = stack.pop()
        order.append(cur)
        stack.extend(t.children_of(cur))
    closed = []
    for bid in order:
        if t.exists(bid) and t.status_of(bid) != "closed":
            t.close(bid, reason=reason, force=True)
            closed.append(bid)
    return closed


def evaluate_bonds(led: Ledger, log: Any = None) -> list[str]:
    """Skip the branches of conditional bonds whose condition did not hold; their ids.

    Follows ``bead.closed`` events from its own kv cursor, so a controller that
    was down evaluates what closed meanwhile; skipping is idempotent.
    """
    raw = led.kv_get(BONDS_CURSOR)
    if raw is None or not raw.isdigit():
        with led.transaction() as t:
            t.kv_put(BONDS_CURSOR, str(led.last_event_seq()))
        return []
    events = led.events(since_seq=int(raw), types=["bead.closed"], limit=MAX_PER_PASS)
    skipped: list[str] = []
    for ev in events:
        bid = ev.get("bead_id")
        if not bid:
            continue
        try:
            edges = [e for e in led.dependents(bid) if e["type"] == "conditional-blocks"
                     and isinstance(e.get("metadata"), dict)
                     and e["metadata"].get("when") in ("success", "failure")]
            if not edges:
                continue
            failed = _outcome_failed(led, led.get(bid))
        except NotFoundError:
            continue
        outcome = "failure" if failed else "success"
        for edge in edges:
            if edge["metadata"]["when"] == outcome:
                continue  # the condition holds: the edge stops blocking by itself
            reason = (f"skipped: {bid} ended in {outcome}; this branch runs on "
                      f"{edge['metadata']['when']}")
            with led.transaction() as t:
                done = _skip(t, edge["issue_id"], reason)
                if done:
                    t.emit("bond.skipped", edge["issue_id"],
                           {"after": bid, "outcome": outcome, "closed": len(done)})
            skipped.append(edge["issue_id"])
            if log is not None:
                log(reason.replace("skipped:", f"skipped {edge['issue_id']}:"))
    if events:
        with led.transaction() as t:
            t.kv_put(BONDS_CURSOR, str(events[-1]["seq"]))
    return skipped
