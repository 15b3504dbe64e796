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

__all__ = ["hooked_work", "remember_work", "forget_work", "current_work", "molecule_view",
           "sling_meta"]

def hooked_work(led: Ledger, actor: str) -> list[Bead]:
    """The beads pinned to ``actor``'s hook (status ``hooked``)."""
    from ..hook import hooked

    return list(hooked(led, actor))


def _owed_key(agent_name: str) -> str:
    return f"gt.work.{agent_name}"


def remember_work(led: Ledger, agent_name: str, bead_id: str) -> None:
    """Record that ``agent_name`` owes a ``gt done`` for ``bead_id`` (set by sling)."""
    led.kv_set(_owed_key(agent_name), bead_id)


def forget_work(led: Ledger, agent_name: str) -> None:
    """The agent handed its work in (``gt done``) or had its hook cleared."""
    led.kv_clear(_owed_key(agent_name))


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
