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
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError, NotFoundError
from ..ledger.ops import Txn
from ..ledger.query import Filter

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from ..ledger.model import Bead
    from ..town.core import Town

__all__ = ["durable", "mq_meta", "target_of", "effective_priority", "queue", "targets",
           "retry", "reject", "describe", "SENT_BACK_LABELS", "controller_actor"]

#: labels the refinery puts on a request it sends back (and takes off on retry)
SENT_BACK_LABELS = ("conflict", "tests-failed", "land-failed")


def controller_actor(town: Town) -> str:
    """Who the controller acts as in the ledger (events, claims, mail)."""
    return f"{town.name}/controller"


@contextmanager
def durable(led: Ledger, actor: str | None = None) -> Iterator[Txn]:
    """A write transaction committed to disk before it returns (merge-queue records).

    SQLite commits these with ``synchronous=FULL``; PostgreSQL's commits are
    synchronous anyway.  A store without ``durable()`` gets a plain write.
    """
    opener = getattr(led.store, "durable", None) or led.store.write
    prefix = led.prefix
    with opener() as tx:
        yield Txn(tx, actor or led.actor, prefix)


def mq_meta(mr: Bead) -> dict[str, Any]:
    """The request's queue record (``metadata.mq``), a copy."""
    meta = mr.get("metadata") or {}
    value = meta.get("mq") if isinstance(meta, dict) else None
    return dict(value) if isinstance(value, dict) else {}


def target_of(mr: Bead) -> tuple[str, str]:
    """``(rig, branch)`` the request merges into."""
    meta = mr.get("metadata") or {}
    return str(meta.get("rig") or ""), str(meta.get("base") or "main")


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
          statuses: tuple[str, ...] = ("open",)) -> list[Bead]:
    """Requests in the order they will be landed (per target), optionally one target's."""
    beads = led.list(Filter(issue_type=["merge-request"], status=list(statuses)))
    now = time.time()
    out = [b for b in beads
           if (rig is None or target_of(b)[0] == rig) and (base is None or target_of(b)[1] == base)]
    out.sort(key=lambda b: (effective_priority(b, aging, now), b.get("created_at") or "",
                            b["id"]))
    return out


def targets(led: Ledger) -> set[tuple[str, str]]:
    """Every target with a queued or in-flight request."""
    beads = led.list(Filter(issue_type=["merge-request"], status=["open", "in_progress"]))
    return {target_of(b) for b in beads}


def _get_mr(led: Ledger, mr_id: str) -> Bead:
    bead = led.get(led.resolve_id(mr_id))
    if bead.get("issue_type") != "merge-request":
        raise NotFoundError(f"{bead['id']} is not a merge request")
    return bead


def retry(led: Ledger, mr_id: str, actor: str | None = None, *, commit: str | None = None,
          branch: str | None = None, pushed: bool | None = None,
          by: str | None = None) -> Bead:
    """Put a sent-back (or rejected) request back in the queue, at its original age.

    ``commit`` (and ``branch``) re-queue it with new work: ``gt done`` on the
    fix bead ``by`` of a sent-back request does that; a queued request gets the
    new commit too.
    """
    mr = _get_mr(led, mr_id)
    mq = mq_meta(mr)
    if mr["status"] == "closed" and "merged" in (mr.get("labels") or []):
        raise ConflictError(f"{mr['id']} has already landed")
    meta = dict(mr.get("metadata") or {})
    new_work = commit is not None and (commit, branch or meta.get("branch")) != (
        meta.get("commit"), meta.get("branch"))
    if mr["status"] == "in_progress" or (mr["status"] == "open" and not new_work):
        return mr  # queued or landing already: retrying changes nothing
    with durable(led, actor) as t:
        if mr["status"] == "closed":
            t.reopen(mr["id"], reason="retry")
        for label in (*SENT_BACK_LABELS, "rejected"):
            t.remove_label(mr["id"], label)
        mq.update(state="queued", retried=int(mq.get("retried", 0)) + 1)
        for key in ("detail", "files", "git", "todo"):
            mq.pop(key, None)
        payload: dict[str, Any] = {"rig": target_of(mr)[0], "base": target_of(mr)[1]}
        if new_work:
            meta.update(commit=commit, branch=branch or meta.get("branch"))
            if pushed is not None:
                meta["pushed"] = pushed
            mq["requeued_by"] = by
            payload.update(commit=commit, branch=meta["branch"], by=by)
        meta["mq"] = mq
        t.update(mr["id"], status="open", assignee=None, metadata=meta)
        t.emit("merge.retry", mr["id"], payload)
        return t.get(mr["id"])


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
    with durable(led, actor) as t:
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
