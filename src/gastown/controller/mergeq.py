"""The merge queue as data: ``merge-request`` beads, their order, and what a person can do.

A merge request is a bead (``gt done`` files it).  Its state in the queue is its
status plus ``metadata.mq``; every change writes its event in the same,
durable transaction (DESIGN §3.3: ``synchronous=FULL`` for merge-queue records):

=============  ==================================================================
``open``       queued: waiting for its turn on its target branch
``in_progress`` being landed by the controller (``assignee`` = the controller)
``blocked``    sent back to its author: a conflict, red tests or a failed landing
``closed``     landed (label ``merged``), rejected (``rejected``) or superseded
=============  ==================================================================

Order (per target: rig and branch): effective priority, then age, then id.  The
effective priority is the bead's priority minus one level for every
``[merge] aging`` seconds it has waited, so an old request can never be starved
by a stream of newer, more urgent ones.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError
from ..ledger.query import Filter
from ..town.mergereq import SENT_BACK_LABELS, mq_meta, retry, target_of
from ..town.mergereq import get_merge_request as _get_mr

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from ..ledger.model import Bead
    from ..town.core import Town

__all__ = ["mq_meta", "target_of", "effective_priority", "queue", "targets",
           "retry", "reject", "describe", "SENT_BACK_LABELS", "controller_actor"]


def controller_actor(town: Town) -> str:
    """Who the controller acts as in the ledger (events, claims, mail)."""
    return f"{town.name}/controller"


def _epoch(ts: str | None) -> float:
    if not ts:
        return time.time()
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return time.time()


def effective_priority(mr: Bead, aging: float, now: float | None = None) -> int:
    """Priority minus one level per ``aging`` seconds waited (may go below 0)."""
    waited = max(0.0, (now or time.time()) - _epoch(mr.get("created_at")))
    return int(mr.get("priority", 2)) - int(waited // aging)


def queue(led: Ledger, aging: float, *, rig: str | None = None, base: str | None = None,
          statuses: tuple[str, ...] = ("open",), key: Any = None) -> list[Bead]:
    """Requests in the order they will be landed (per target), optionally one target's;
    ``key`` replaces the order (e.g. ``gastown.mesh.priority.order_key``: trust-weighted)."""
    beads = led.list(Filter(issue_type=["merge-request"], status=list(statuses)))
    now = time.time()
    out = [b for b in beads
           if (rig is None or target_of(b)[0] == rig) and (base is None or target_of(b)[1] == base)]
    if key is not None:
        out.sort(key=key)
        return out
    out.sort(key=lambda b: (effective_priority(b, aging, now), b.get("created_at") or "",
                            b["id"]))
    return out


def targets(led: Ledger) -> set[tuple[str, str]]:
    """Every target with a queued or in-flight request."""
    beads = led.list(Filter(issue_type=["merge-request"], status=["open", "in_progress"]))
    return {target_of(b) for b in beads}


def reject(town: Town, led: Ledger, mr_id: str, reason: str, actor: str | None = None) -> Bead:
    """Take a request out of the queue for good; its author is told why (same transaction)."""
    from ..town.mail import send_txn

    mr = _get_mr(led, mr_id)
    if mr["status"] == "closed":
        if "merged" in (mr.get("labels") or []):
            raise ConflictError(f"{mr['id']} has already landed")
        return mr
    if mr["status"] == "in_progress":
        raise ConflictError(f"{mr['id']} is being landed right now; retry the rejection "
                            "when it is done")
    meta = dict(mr.get("metadata") or {})
    mq = mq_meta(mr)
    mq.update(state="rejected", reason=reason)
    meta["mq"] = mq
    author = str(meta.get("author") or mr.get("created_by") or "")
    with led.transaction(actor, durable=True) as t:  # a merge-queue record
        t.update(mr["id"], metadata=meta)
        t.add_label(mr["id"], "rejected")
        t.close(mr["id"], reason=f"rejected: {reason}", force=True)
        t.emit("merge.rejected", mr["id"], {"reason": reason, "branch": meta.get("branch")})
        if author and not any(ch.isspace() for ch in author):
            send_txn(town, t, author, f"Merge request {mr['id']} rejected",
                     f"Your merge request {mr['id']} for branch `{meta.get('branch')}` was "
                     f"rejected: {reason}\nThe branch is kept as it is.")
        return t.get(mr["id"])


def describe(mr: Bead, aging: float) -> dict[str, Any]:
    """A request as ``gt mq`` shows it."""
    meta = mr.get("metadata") or {}
    rig, base = target_of(mr)
    mq = mq_meta(mr)
    labels = mr.get("labels") or []
    if mr["status"] == "closed":
        state = "merged" if "merged" in labels else mq.get("state") or "closed"
    elif mr["status"] == "blocked":
        state = mq.get("state") or "sent-back"
    elif mr["status"] == "in_progress":
        state = "landing"
    else:
        state = "queued"
    return {"id": mr["id"], "title": mr["title"], "state": state, "status": mr["status"],
            "rig": rig, "base": base, "branch": meta.get("branch"),
            "commit": meta.get("commit"), "author": meta.get("author"),
            "priority": mr.get("priority", 2),
            "effective_priority": effective_priority(mr, aging),
            "created_at": mr.get("created_at"), "mq": mq}
