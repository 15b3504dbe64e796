"""What the refinery writes down: landings planned and done, requests sent back or held.

Every record is one durable transaction with its event (and its mail), so a
request is never half sent back.  A request sent back again keeps its one fix
bead (the new reason is a comment on it); when it lands, what it settles is
closed with it: older sent-back requests of its branch, its fix bead, the mails
that sent it back, and the bug its work was about (a formula's ``issue`` var).
A push the rig's source refuses is held for the town's owner with git's words.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError
from .mergeq import SENT_BACK_LABELS, mq_meta, target_of

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from ..ledger.model import Bead
    from ..town.config import RigConfig
    from ..town.core import Town

__all__ = ["LandingRecords", "Outcome", "git_reason", "push_summary"]


@dataclass
class Outcome:
    """What happened to one request."""

    mr: str
    result: str  # merged | conflict | tests-failed | land-failed | push-refused | stopped
    detail: str = ""
    old: str | None = None
    new: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def git_reason(proc: subprocess.CompletedProcess[str]) -> str:
    """Everything git said about a failure, without hints and empty ``remote:`` lines."""
    text = proc.stderr if (proc.stderr or "").strip() else (proc.stdout or "")
    lines = []
    for raw in text.splitlines():
        line = " ".join(raw.split())
        if not line or line == "remote:" or line.startswith(("hint:", "To ")):
            continue
        lines.append(line)
    reason = "\n".join(lines)
    return reason[-4000:] if reason else f"exit status {proc.returncode}"


def push_summary(reason: str) -> str:
    """One line out of a refused push: git's own reason for the refusal."""
    rejected = [ln for ln in reason.splitlines() if "[remote rejected]" in ln
                or "[rejected]" in ln]
    why = ""
    if rejected and rejected[0].endswith(")") and "(" in rejected[0]:
        why = rejected[0][rejected[0].rindex("(") + 1:-1]
    errors = [ln.removeprefix("remote: ") for ln in reason.splitlines()
              if ln.startswith(("remote: error:", "error:", "fatal:", "remote: fatal:"))
              and "failed to push some refs" not in ln]
    first = errors[0] if errors else ""
    if why and first:
        return f"{first} ({why})"
    return why or first or reason.splitlines()[0]


class LandingRecords:
    """The recording half of :class:`~.refinery.Refinery` (a mixin: it needs the ledger)."""

    town: Town
    led: Ledger
    actor: str

    def _record_landing(self, mr: Bead, old: str, new: str) -> None:
        """Write the plan before the target moves: what a restarted controller resumes from."""
        current = self.led.get(mr["id"])
        meta = dict(current.get("metadata") or {})
        mq = mq_meta(current)
        mq.update(state="landing", landing={"old": old, "new": new},
                  attempts=int(mq.get("attempts", 0)) + 1)
        meta["mq"] = mq
        with self.led.transaction(self.actor, durable=True) as t:
            t.update(mr["id"], metadata=meta)
            t.emit("merge.landing", mr["id"], {"old": old, "new": new})

    def _finish(self, mr: Bead, old: str, new: str, *, resumed: bool = False,
                note: str = "", checked: bool = False,
                files: list[str] | None = None) -> Outcome:
        """The request landed: close it and what it settles (one transaction).

        Settled with it: older sent-back requests of the same branch, its fix
        bead(s), the mails that sent it back, and the bug its work was about
        (the ``issue`` variable of the formula poured for it, e.g. ``mol-quick-fix``).
        """
        current = self.led.get(mr["id"])
        meta = dict(current.get("metadata") or {})
        rig, base = target_of(current)
        mq = mq_meta(current)
        mq.update(state="merged", merged=new, landing={"old": old, "new": new})
        meta["mq"] = mq
        branch = meta.get("branch")
        stale = self._superseded(current)
        with self.led.transaction(self.actor, durable=True) as t:
            t.update(mr["id"], metadata=meta)
            t.add_label(mr["id"], "merged")
            t.close(mr["id"], reason=f"merged into {base} as {new[:12]}", force=True)
            for bead_id, reason in stale.items():
                t.close(bead_id, reason=reason, force=True)
            t.emit("merge.landed", mr["id"], {
                "rig": rig, "base": base, "branch": branch, "old": old, "new": new,
                "source_bead": meta.get("source_bead"), "agent": meta.get("agent"),
                "resumed": resumed, "note": note, "closed": sorted(stale),
                "checked": checked, "files": files or []})
        return Outcome(mr["id"], "merged", note, old, new)

    def _superseded(self, mr: Bead) -> dict[str, str]:
        """What landing ``mr`` settles: ``{bead id: why it is closed}`` (open beads only)."""
        from ..ledger.query import Filter

        meta = mr.get("metadata") or {}
        branch = meta.get("branch")
        mq = mq_meta(mr)
        out: dict[str, str] = {}
        for bead in self.led.list(Filter(issue_type=["merge-request"], status=["blocked"])):
            if (bead.get("metadata") or {}).get("branch") == branch and bead["id"] != mr["id"]:
                out[bead["id"]] = f"superseded by {mr['id']}"
        for bead in self.led.list(Filter(labels_any=list(SENT_BACK_LABELS),
                                         include_closed=False)):
            bmeta = bead.get("metadata") or {}
            if bead.get("issue_type") != "merge-request" and (
                    bmeta.get("mr") == mr["id"] or bmeta.get("branch") == branch):
                out[bead["id"]] = f"fixed: {mr['id']} landed"
        wanted = [str(x) for x in (mq.get("fix"), *(mq.get("mails") or []),
                                   self._issue_of(meta.get("source_bead"))) if x]
        for bead_id in wanted:
            try:
                bead = self.led.get(bead_id)
            except NotFoundError:
                continue
            if bead["status"] != "closed" and bead_id != mr["id"]:
                kind = "read" if bead.get("issue_type") == "message" else "fixed"
                out.setdefault(bead_id, f"{kind}: {mr['id']} landed")
        return out

    def _issue_of(self, source: Any) -> str | None:
        """The bug a piece of work was about: its formula's ``issue`` variable, if any."""
        if not source:
            return None
        try:
            root = self.led.get(str(source))
        except NotFoundError:
            return None
        meta = root.get("metadata") or {}
        values = meta.get("vars") if isinstance(meta.get("vars"), dict) else None
        issue = (values or {}).get("issue")
        if not isinstance(issue, str) or not issue:
            return None
        try:
            return self.led.resolve_id(issue)
        except NotFoundError:
            return None

    def _owner(self) -> str | None:
        """Who hears about a landing nobody but a person can unblock."""
        if self.town.config.town.escalate_to:
            return self.town.config.town.escalate_to
        with self.led.snapshot() as r:
            return r.first_actor("town.init")

    def _push_refused(self, mr: Bead, rig: RigConfig, base: str, reason: str) -> Outcome:
        """The rig's source refused the landed commit: held, with git's words, owner told.

        Not the author's doing, so no fix bead for them: the person who owns the
        source fixes it there and runs ``gt mq retry``.
        """
        from ..town.mail import send_txn
        from ..town.rigs import working_copy

        summary = push_summary(reason)
        local = working_copy(rig.source)
        if local:
            fix = (f"Your working copy {local} has changes git will not overwrite: commit "
                   f"or stash them (git -C {local} status shows them), then run "
                   f"`gt mq retry {mr['id']}`.")
        else:
            fix = (f"Make {rig.source} accept pushes to {base} (a non-bare repository needs "
                   "`git config receive.denyCurrentBranch updateInstead` and a clean working "
                   f"tree), then run `gt mq retry {mr['id']}`.")
        detail = f"git refused the push to {base}: {summary}"
        current = self.led.get(mr["id"])
        meta = dict(current.get("metadata") or {})
        mq = mq_meta(current)
        mq.update(state="push-refused", detail=detail, git=reason, todo=fix,
                  attempts=int(mq.get("attempts", 0)) + 1)
        mq.pop("landing", None)
        meta["mq"] = mq
        owner = self._owner()
        body = (f"Merge request {mr['id']} (branch `{meta.get('branch')}`) passed its checks, "
                f"but pushing it to {rig.source} failed: {summary}.\n\nWhat git said:\n"
                f"```\n{reason}\n```\n\n{fix}")
        with self.led.transaction(self.actor, durable=True) as t:
            t.update(mr["id"], status="blocked", assignee=None, metadata=meta)
            t.add_label(mr["id"], "land-failed")
            t.emit("merge.sent_back", mr["id"], {"why": "push-refused", "detail": detail,
                                                 "git": reason, "bead": None,
                                                 "branch": meta.get("branch"), "to": owner})
            if owner and not any(ch.isspace() for ch in owner):
                send_txn(self.town, t, owner, f"Merge request {mr['id']} waits: {summary}"[:200],
                         body)
        return Outcome(mr["id"], "push-refused", detail, extra={"git": reason})

    def _send_back(self, mr: Bead, why: str, detail: str, *, files: list[str] | None = None,
                   output: str = "") -> Outcome:
        """Back to the author: the request blocked, a bead to fix it, a mail (one transaction).

        A request sent back again keeps its one fix bead: the new reason is a
        comment on it (reopened if its author had closed it), not another bead.
        """
        from ..town.mail import send_txn

        current = self.led.get(mr["id"])
        meta = dict(current.get("metadata") or {})
        rig, base = target_of(current)
        branch = str(meta.get("branch") or "?")
        author = str(meta.get("author") or current.get("created_by") or "")
        mq = mq_meta(current)
        mq.update(state=why, detail=detail, attempts=int(mq.get("attempts", 0)) + 1)
        mq.pop("landing", None)
        if files:
            mq["files"] = files
        label = why if why in SENT_BACK_LABELS else "land-failed"
        title = {"conflict": f"Resolve the conflict of {branch} with {base}",
                 "tests-failed": f"Make the tests pass on {branch} rebased onto {base}"}.get(
                     why, f"Land {branch} on {base}: {detail.splitlines()[0]}")
        body = [f"The merge queue sent merge request {mr['id']} (branch `{branch}`, rig {rig}) "
                f"back: {detail}."]
        if files:
            body.append("Conflicting files: " + ", ".join(files))
        if output:
            body += ["", "Last lines of the output:", "```", output[-3000:], "```"]
        fix = self._open_fix(mq)
        with self.led.transaction(self.actor, durable=True) as t:
            if fix is None:
                fix = t.create(title[:200], issue_type="bug", priority=current.get("priority", 2),
                               assignee=author or None, labels=[label],
                               metadata={"mr": mr["id"], "branch": branch, "rig": rig,
                                         "base": base, "files": files or []},
                               deps=[("discovered-from", mr["id"])])
                body += self._how_to_fix(mr["id"], fix["id"], branch, base)
                t.update(fix["id"], description="\n".join(body))
            else:
                body += self._how_to_fix(mr["id"], fix["id"], branch, base)
                if fix["status"] == "closed":
                    t.reopen(fix["id"], reason=f"{mr['id']} was sent back again")
                t.add_label(fix["id"], label)
                t.add_comment(fix["id"], f"Sent back again ({why}, attempt "
                              f"{mq['attempts']}):\n" + "\n".join(body), author=self.actor)
            mq["fix"] = fix["id"]
            meta["mq"] = mq
            t.update(mr["id"], status="blocked", metadata=meta)
            t.add_label(mr["id"], label)
            t.emit("merge.sent_back", mr["id"], {"why": why, "detail": detail, "bead": fix["id"],
                                                 "branch": branch, "author": author,
                                                 "files": files or []})
            if author and not any(ch.isspace() for ch in author):
                sent = send_txn(self.town, t, author,
                                f"Merge request {mr['id']} sent back: {why}",
                                "\n".join(body) + f"\n\nThe bead to work on: {fix['id']}.")
                mq["mails"] = [*(mq.get("mails") or []), *(m["id"] for m in sent)]
                t.update(mr["id"], metadata=meta)
        return Outcome(mr["id"], why, detail, extra={"bead": fix["id"], "files": files or []})

    @staticmethod
    def _how_to_fix(mr_id: str, fix_id: str, branch: str, base: str) -> list[str]:
        return ["", f"Fix it on the same branch: `gt sling {fix_id} <you>` puts your worktree "
                f"back on `{branch}`. Rebase it onto `{base}`, fix what is above, commit, and "
                f"run `gt done`: merge request {mr_id} goes back into the queue with your new "
                "commit. Your branch was not changed."]

    def _open_fix(self, mq: dict[str, Any]) -> Bead | None:
        """The request's fix bead from an earlier send-back, if it still exists."""
        fix_id = mq.get("fix")
        if not fix_id:
            return None
        try:
            return self.led.get(str(fix_id))
        except NotFoundError:
            return None
