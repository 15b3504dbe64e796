"""Merge requests as the town files them: ``gt done`` files one, and files a
sent-back one again with new work.

A merge request is a ``merge-request`` bead; its queue record is
``metadata.mq``.  The controller's merge queue (:mod:`gastown.controller.mergeq`)
orders and lands them; what the town itself does to a request lives here, so
that the town never imports the controller.  Every change writes its event in
the same durable transaction (DESIGN §3.3).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ConflictError, NotFoundError

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from ..ledger.model import Bead

__all__ = ["SENT_BACK_LABELS", "mq_meta", "target_of", "get_merge_request", "retry"]

#: labels the merge queue puts on a request it sends back (and takes off on retry)
SENT_BACK_LABELS = ("conflict", "tests-failed", "land-failed")


def mq_meta(mr: Bead) -> dict[str, Any]:
    """The request's queue record (``metadata.mq``), a copy."""
    meta = mr.get("metadata") or {}
    value = meta.get("mq") if isinstance(meta, dict) else None
    return dict(value) if isinstance(value, dict) else {}


def target_of(mr: Bead) -> tuple[str, str]:
    """``(rig, branch)`` the request merges into."""
    meta = mr.get("metadata") or {}
    return str(meta.get("rig") or ""), str(meta.get("base") or "main")


def get_merge_request(led: Ledger, mr_id: str) -> Bead:
    """The merge request ``mr_id`` (a prefix will do), or NotFoundError."""
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
    mr = get_merge_request(led, mr_id)
    mq = mq_meta(mr)
    if mr["status"] == "closed" and "merged" in (mr.get("labels") or []):
        raise ConflictError(f"{mr['id']} has already landed")
    meta = dict(mr.get("metadata") or {})
    new_work = commit is not None and (commit, branch or meta.get("branch")) != (
        meta.get("commit"), meta.get("branch"))
    if mr["status"] == "in_progress" or (mr["status"] == "open" and not new_work):
        return mr  # queued or landing already: retrying changes nothing
    with led.transaction(actor, durable=True) as t:  # a merge-queue record
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
