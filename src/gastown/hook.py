"""Hooks: the work pinned to an agent (GUPP: work on your hook runs now).

Pinning sets a bead's status to ``hooked`` and its assignee to the agent, in one
transaction with a ``hook.pinned`` event.  ``hooked`` is an active status that
holds nothing: the steps of a hooked molecule stay ready.  Unpinning puts the
status back to what it was before the pin (``open`` or ``in_progress``) and
writes ``hook.unpinned``.  Both are idempotent.
"""

from __future__ import annotations

from .errors import ConflictError, UsageError
from .ledger.core import Filter, Ledger
from .ledger.model import Bead
from .ledger.ops import Txn

__all__ = ["pin", "pin_in", "unpin", "unpin_in", "hooked"]


def _check_agent(agent: str) -> str:
    agent = (agent or "").strip()
    if not agent or any(ch.isspace() for ch in agent):
        raise UsageError(f"invalid agent name {agent!r}")
    return agent


def pin(ledger: Ledger, bead_id: str, agent: str) -> Bead:
    """Hang ``bead_id`` on ``agent``'s hook; pinning it there again changes nothing."""
    agent = _check_agent(agent)
    with ledger.transaction() as t:
        return pin_in(t, bead_id, agent)


def pin_in(t: Txn, bead_id: str, agent: str) -> Bead:
    """:func:`pin` inside a caller's transaction (composite commands such as ``gt sling``)."""
    agent = _check_agent(agent)
    bead = t.get(bead_id)
    status, holder = bead["status"], bead.get("assignee")
    if status == "hooked":
        if holder == agent:
            return bead
        raise ConflictError(f"{bead_id} is already on {holder}'s hook (unpin it first)")
    if status == "closed":
        raise ConflictError(f"cannot pin {bead_id}: it is closed")
    if bead.get("is_template"):
        raise ConflictError(f"cannot pin {bead_id}: it is a proto; pour it first")
    updated = t.update(bead_id, status="hooked", assignee=agent)
    t.emit("hook.pinned", bead_id, {"agent": agent, "from": status, "assignee": holder})
    return updated


def _status_before_pin(t: Txn, bead: Bead) -> tuple[str, str | None]:
    payload = t.last_payload(bead["id"], "hook.pinned") or {}
    before = payload.get("from")
    if before not in ("open", "in_progress"):
        before = "in_progress" if bead.get("started_at") else "open"
    return before, payload.get("assignee")


def unpin(ledger: Ledger, agent: str, bead_id: str | None = None) -> list[str]:
    """Take ``bead_id`` (default: everything) off ``agent``'s hook; returns the ids released."""
    agent = _check_agent(agent)
    with ledger.transaction() as t:
        return unpin_in(t, agent, bead_id)


def unpin_in(t: Txn, agent: str, bead_id: str | None = None) -> list[str]:
    """:func:`unpin` inside a caller's transaction."""
    agent = _check_agent(agent)
    released: list[str] = []
    if bead_id is not None:
        bead = t.get(bead_id)
        if bead["status"] != "hooked":
            return released  # not on any hook: nothing to do
        if bead.get("assignee") != agent:
            raise ConflictError(f"{bead_id} is on {bead.get('assignee')}'s hook, "
                                f"not {agent}'s")
        targets = [bead]
    else:
        targets = [t.get(b) for b in t.hooked_ids(agent)]
    for bead in targets:
        before, old_assignee = _status_before_pin(t, bead)
        # back to open: hand the bead back to whoever had it before the pin
        assignee = agent if before == "in_progress" else old_assignee
        t.update(bead["id"], status=before, assignee=assignee or None)
        t.emit("hook.unpinned", bead["id"], {"agent": agent, "to": before})
        released.append(bead["id"])
    return released


def hooked(ledger: Ledger, agent: str) -> list[Bead]:
    """The beads on ``agent``'s hook, oldest first (wisps included)."""
    agent = _check_agent(agent)
    f = Filter(status=["hooked"], assignee=agent, include_ephemeral=True)
    return ledger.list(f, sort="created")
