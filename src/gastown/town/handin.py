"""``gt done``: an agent hands its work in and frees its hook (DESIGN §5).

``completed`` (the default): the worktree must be clean; its branch -- already a
branch of the rig's clone, since worktrees share its refs -- is pushed to the
rig's source too when ``[rigs.NAME] push = true``; a ``merge-request`` bead
points at the branch and commit; the hook is released.  Work on a fix bead
the merge queue filed (sent-back work) re-queues that same request instead, with
the new commit.  ``escalated``: no merge
request; the work goes back, labelled, and whoever slung it (or
``[town] escalate_to``) gets mail.  ``deferred``: the work goes back, deferred.
Running it twice files one merge request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ConflictError, UsageError
from ..ledger.query import Filter
from .core import Town
from .rigs import current_branch, git, head_commit, is_clean
from .work import current_work, forget_work, sling_meta

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from ..ledger.model import Bead
    from .config import AgentConfig

__all__ = ["done", "STATUSES"]

STATUSES = ("completed", "escalated", "deferred")


def _existing_mr(led: Ledger, branch: str, commit: str) -> Bead | None:
    for mr in led.list(Filter(issue_type=["merge-request"], include_closed=False)):
        meta = mr.get("metadata") or {}
        if meta.get("branch") == branch and meta.get("commit") == commit:
            return mr
    return None


def _requeue(led: Ledger, work: Bead, branch: str, commit: str, pushed: bool) -> Bead | None:
    """Sent-back work handed in again: its own request goes back into the queue.

    ``work`` is the merge queue's fix bead (or a molecule poured for it); the
    request it names gets the new commit and is queued again, at its age.  A
    request that landed, or is being landed right now, is left alone (None: a
    new request is filed).
    """
    from .mergereq import retry
    from .slinging import sent_back_request

    mr = sent_back_request(led, work)
    if mr is None or mr["status"] not in ("blocked", "open"):
        return None
    return retry(led, mr["id"], led.actor, commit=commit, branch=branch, pushed=pushed,
                 by=work["id"])


def _hand_in(town: Town, led: Ledger, agent: AgentConfig, work: Bead,
             force: bool) -> dict[str, Any]:
    """Push (when configured) and file the merge request; returns what was done."""
    assert agent.rig is not None
    rig = town.config.rig(agent.rig)
    path = town.workdir(agent)
    if not is_clean(path) and not force:
        raise ConflictError(f"{path} has uncommitted changes: commit them first "
                            "(or pass --force to hand in only what is committed)")
    branch = current_branch(path)
    if not branch:
        raise ConflictError(f"{path} is not on a branch (detached HEAD); check one out first")
    commit = head_commit(path)
    repo = town.repo_dir(rig.name)
    ahead = git(["rev-list", "--count", f"refs/heads/{rig.branch}..{commit}"], cwd=repo,
                check=False).stdout.strip()
    pushed = False
    if rig.push:
        git(["push", "--quiet", "origin", f"{commit}:refs/heads/{branch}"], cwd=repo)
        pushed = True
    out: dict[str, Any] = {"branch": branch, "commit": commit, "base": rig.branch,
                           "ahead": int(ahead) if ahead.isdigit() else None, "pushed": pushed}
    mr = _existing_mr(led, branch, commit)
    if mr is None:
        mr = _requeue(led, work, branch, commit, pushed)
        if mr is not None:
            out["requeued"] = True
    if mr is None:
        with led.transaction() as t:
            mr = t.create(
                f"Merge {branch}: {' '.join(work['title'].split())}"[:200],
                issue_type="merge-request", priority=work.get("priority", 2),
                description=(f"Branch `{branch}` of rig {rig.name} at {commit[:12]}, "
                             f"{out['ahead']} commit(s) ahead of `{rig.branch}`.\n"
                             f"Work: {work['id']}. Author: {town.actor_of(agent)}."),
                metadata={"branch": branch, "commit": commit, "base": rig.branch,
                          "rig": rig.name, "source_bead": work["id"], "agent": agent.name,
                          "author": town.actor_of(agent), "pushed": pushed},
                deps=[("related", work["id"])])
            t.emit("merge.requested", mr["id"], {"branch": branch, "commit": commit,
                                                 "rig": rig.name, "source_bead": work["id"],
                                                 "agent": agent.name})
        out["mr_created"] = True
    else:
        out["mr_created"] = False
    out["mr"] = mr["id"]
    return out


def done(town: Town, agent_name: str | None = None, *, status: str = "completed",
         message: str | None = None, force: bool = False,
         actor: str | None = None) -> dict[str, Any]:
    """Hand in the agent's work (see the module docstring); returns a summary."""
    from ..hook import unpin_in

    if status not in STATUSES:
        raise UsageError(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")
    agent = town.current_agent(agent_name)
    me = town.actor_of(agent)
    with town.ledger(actor) as led:
        work = current_work(led, me, agent.name)
        if work is None:
            raise ConflictError(f"nothing on {agent.name}'s hook to hand in")
        summary: dict[str, Any] = {"agent": agent.name, "actor": me, "bead_id": work["id"],
                                   "status": status}
        if status == "completed" and agent.rig:
            summary.update(_hand_in(town, led, agent, work, force))
        # the hook released, the outcome recorded, the escalation mailed: one transaction
        with led.transaction() as t:
            if work["status"] == "hooked":
                unpin_in(t, me, work["id"])
            if status == "deferred":
                t.update(work["id"], status="deferred")
            if status == "escalated":
                t.add_label(work["id"], "escalated")
                if message:
                    t.add_comment(work["id"], message, author=t.actor)
                to = town.config.town.escalate_to or sling_meta(work).get("by")
                if to:
                    from .mail import send_txn

                    send_txn(town, t, str(to), f"Escalated: {work['title']}",
                             message or f"{me} could not finish {work['id']} and handed it "
                             "back.")
                    summary["escalated_to"] = to
            elif message:
                t.add_comment(work["id"], message, author=t.actor)
            t.emit("done", work["id"], {k: v for k, v in summary.items() if k != "bead_id"})
            forget_work(t, agent.name)
    return summary
