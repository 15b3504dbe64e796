"""What is on an agent's hook, and where it stands.

The hook itself is the chemistry's (:mod:`gastown.hook`: ``pin``, ``unpin``,
``hooked``).  This module adds what the town needs on top: the work an agent
still owes ``gt done`` for (a molecule whose last step closed has left the
``hooked`` status, but the agent has not handed its branch in yet), and a view
of a molecule's progress.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError
from ..ledger.query import Filter

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from ..ledger.model import Bead
    from ..ledger.ops import Txn

__all__ = ["hooked_work", "remember_work", "forget_work", "current_work", "molecule_view",
           "hook_pin", "hook_clear",
           "sling_meta"]

def hooked_work(led: Ledger, actor: str) -> list[Bead]:
    """The beads pinned to ``actor``'s hook (status ``hooked``)."""
    from ..hook import hooked

    return list(hooked(led, actor))


def _owed_key(agent_name: str) -> str:
    return f"gt.work.{agent_name}"


def remember_work(led: Ledger | Txn, agent_name: str, bead_id: str) -> None:
    """Record that ``agent_name`` owes a ``gt done`` for ``bead_id`` (set by sling).

    Given a :class:`~gastown.ledger.ops.Txn`, the record joins that transaction.
    """
    led.kv_set(_owed_key(agent_name), bead_id)


def forget_work(led: Ledger | Txn, agent_name: str) -> None:
    """The agent handed its work in (``gt done``) or had its hook cleared."""
    led.kv_clear(_owed_key(agent_name))


def hook_pin(led: Ledger, bead_id: str, agent_name: str, actor: str) -> Bead:
    """``gt hook pin``: pin, the ``sling`` event and the owed-work record, one transaction."""
    from ..hook import pin_in

    with led.transaction() as t:
        bead = pin_in(t, bead_id, actor)
        t.emit("sling", bead_id, {"agent": agent_name, "actor": actor, "kind": "hook"})
        remember_work(t, agent_name, bead_id)
        return bead


def hook_clear(led: Ledger, agent_name: str, actor: str,
               bead_id: str | None = None) -> list[str]:
    """``gt hook clear``: release the agent's hooked (and owed) work in one transaction.

    Work whose molecule finished is no longer ``hooked`` but is still owed: it is
    released too.  Returns the ids released.
    """
    from ..hook import unpin_in

    owed = current_work(led, actor, agent_name)
    with led.transaction() as t:
        released = unpin_in(t, actor, bead_id)
        if owed is not None and bead_id in (None, owed["id"]) and owed["id"] not in released:
            released.append(owed["id"])
        for done in released:
            t.emit("hook.cleared", done, {"agent": agent_name})
        forget_work(t, agent_name)
    return released


def current_work(led: Ledger, actor: str, agent_name: str) -> Bead | None:
    """The agent's work: its hooked bead, else the slung one it still owes ``gt done``.

    One key lookup when nothing is hooked (agents poll this), never a scan.
    """
    hooked = hooked_work(led, actor)
    if hooked:
        return hooked[0]
    bead_id = led.kv_get(_owed_key(agent_name))
    if not bead_id:
        return None
    try:
        bead = led.get(bead_id)
    except NotFoundError:
        return None
    if bead.get("assignee") not in (actor, None, ""):
        return None  # someone else has it now: not this agent's to finish
    return bead


def sling_meta(bead: Bead) -> dict[str, Any]:
    """What ``gt sling`` recorded on a bead (formula, vars, target), or {}."""
    meta = bead.get("metadata") or {}
    value = meta.get("sling") if isinstance(meta, dict) else None
    return value if isinstance(value, dict) else {}


def molecule_view(led: Ledger, root: Bead, actor: str | None = None) -> dict[str, Any] | None:
    """A molecule's steps, progress, the step to do now and the ready ones; None if no steps.

    The step to do now is ``actor``'s own step in progress, else the first ready
    one in step order (where a replacement worker resumes after a crash).
    """
    from ..chemistry import next_step_for, work_steps

    work = work_steps(led, root["id"])
    if not work:
        return None
    closed = [s for s in work if s["status"] == "closed"]
    ready_ids = {b["id"] for b in led.ready(Filter(mol=root["id"]))}
    current = next_step_for(led, root["id"], actor)
    return {"id": root["id"], "total": len(work), "closed": len(closed),
            "complete": len(closed) == len(work),
            "steps": [{"id": s["id"], "title": s["title"], "status": s["status"],
                       "assignee": s.get("assignee")} for s in work],
            "ready": [s["id"] for s in work if s["id"] in ready_ids], "current": current}
