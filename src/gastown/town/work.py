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

__all__ = ["hooked_work", "owed_work", "current_work", "molecule_view", "sling_meta"]

def hooked_work(led: Ledger, actor: str) -> list[Bead]:
    """The beads pinned to ``actor``'s hook (status ``hooked``)."""
    from ..hook import hooked

    return list(hooked(led, actor))


def owed_work(led: Ledger, agent_name: str) -> list[str]:
    """Ids slung to ``agent_name`` that it has not finished with ``gt done`` (oldest first)."""
    slung: dict[str, int] = {}
    for ev in led.events(types=["sling", "done", "hook.cleared"]):
        payload = ev.get("payload") or {}
        bead = ev.get("bead_id")
        if not bead or payload.get("agent") != agent_name:
            continue
        if ev["type"] == "sling":
            slung[bead] = ev["seq"]
        else:
            slung.pop(bead, None)
    return [b for b, _ in sorted(slung.items(), key=lambda kv: kv[1])]


def current_work(led: Ledger, actor: str, agent_name: str) -> Bead | None:
    """The agent's work: its hooked bead, else the last slung one it still owes ``gt done``."""
    hooked = hooked_work(led, actor)
    if hooked:
        return hooked[0]
    for bead_id in reversed(owed_work(led, agent_name)):
        try:
            bead = led.get(bead_id)
        except NotFoundError:
            continue
        if bead.get("assignee") in (actor, None, ""):
            return bead
    return None


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
