"""The refinery: land merge requests one at a time per target branch (DESIGN §5).

For each request, in queue order (:mod:`.mergeq`): check the author's commit out
in a scratch worktree of the rig's bare clone, rebase it onto the target, run
the rig's test command there, then move the target forward -- a compare-and-swap
``git update-ref`` that only ever fast-forwards (or the rig's ``land`` command,
for projects that land through pull requests).  A conflict or red tests send the
work back to its author as a bead and a mail; the author's branch is never
touched.  A request sent back again updates the same fix bead (a comment), and
when it finally lands its fix bead, the bug it was about (a ``mol-quick-fix``'s
``issue``) and the sent-back mails are closed with it.

Pushing rigs (``push = true``): when the source is a local working copy (a
non-bare repository, perhaps with the target branch checked out), the push
updates its files the way git's ``receive.denyCurrentBranch = updateInstead``
does -- only when that working copy is clean.  A push the source refuses for
any reason other than having moved on is shown with git's own words, in the
request, the mail to the town's owner and ``gt status``; it is never retried
as if the target had merely moved.

Crash safety: the planned landing (old and new target commits) is written
durably *before* the target moves.  A controller that restarts finds requests
still ``in_progress`` under its name and resumes them: when the recorded new
commit is already on the target, it only finishes the bookkeeping, so nothing is
landed twice; otherwise it starts that request over, and nothing is lost.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError, GastownError, NotFoundError
from .mergeq import mq_meta, queue, target_of
from .records import LandingRecords, Outcome, git_reason, push_summary

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..ledger.core import Ledger
    from ..ledger.model import Bead
    from ..town.config import RigConfig
    from ..town.core import Town
    from .policies import MergePolicy

__all__ = ["Refinery", "Outcome", "git_reason", "push_summary"]

_SCRUB = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
          "GIT_COMMON_DIR", "GIT_PREFIX", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL",
          "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "GT_TOWN", "GT_AGENT", "GT_RIG",
          "GT_ROLE", "GT_POOL", "BD_DB", "BEADS_DB", "BD_ACTOR", "TMUX", "TMUX_PANE")


class _Stopped(Exception):
    """The controller is shutting down in the middle of a landing."""


#: pushes into a local working copy update its checked-out branch only when it is clean
_UPDATE_INSTEAD = "git -c receive.denyCurrentBranch=updateInstead receive-pack"


class Refinery(LandingRecords):
    """Lands the requests of one town; :meth:`run_target` serves one target branch."""

    def __init__(self, town: Town, led: Ledger, policy: MergePolicy, actor: str,
                 stop: threading.Event, log: Callable[[str], None] = lambda _m: None) -> None:
        self.town = town
        self.led = led
        self.policy = policy
        self.actor = actor
        self.stop = stop
        self.log = log
        self._last_push = ""  # what git said when the last push was refused

    # ------------------------------------------------------------ plumbing
    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
        env.update(GIT_TERMINAL_PROMPT="0", GIT_COMMITTER_NAME=self.actor,
                   GIT_COMMITTER_EMAIL=self.town.config.town.email)
        return env

    def _git(self, args: list[str], cwd: str, check: bool = True,
             timeout: float = 300) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["git", *args], cwd=cwd, env=self._env(), capture_output=True,
                              text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise GastownError(f"git {args[0]} failed: {git_reason(proc)}")
        return proc

    def _rev(self, repo: str, ref: str) -> str | None:
        proc = self._git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], repo,
                         check=False)
        return proc.stdout.strip() or None if proc.returncode == 0 else None

    def _is_ancestor(self, repo: str, a: str, b: str) -> bool:
        return self._git(["merge-base", "--is-ancestor", a, b], repo,
                         check=False).returncode == 0

    def _scratch_path(self, rig: str, mr_id: str) -> str:
        return os.path.join(self.town.rig_dir(rig), "refinery", mr_id)

    def _drop_scratch(self, repo: str, path: str) -> None:
        from ..town.rigs import worktree_lock

        with worktree_lock(repo):
            if os.path.exists(path):
                self._git(["worktree", "remove", "--force", path], repo, check=False)
                shutil.rmtree(path, ignore_errors=True)
            self._git(["worktree", "prune"], repo, check=False)

    # --------------------------------------------------------------- queue
    def next_request(self, rig: str, base: str) -> Bead | None:
        """The request to land next on a target: our own unfinished one first (resume)."""
        mine = [b for b in queue(self.led, self.policy.aging, rig=rig, base=base,
                                 statuses=("in_progress",)) if b.get("assignee") == self.actor]
        if mine:
            return mine[0]
        waiting = queue(self.led, self.policy.aging, rig=rig, base=base, key=self._order())
        return waiting[0] if waiting else None

    def _order(self) -> Callable[[Bead], Any] | None:
        """``[merge] order = "trust"``: the mesh's trust-weighted key; else the default."""
        if getattr(self.policy, "order", "priority") != "trust":
            return None
        from ..mesh.priority import merge_key

        return merge_key(self.led, self.town.config, self.town.gt_dir, self.policy.aging)

    def run_target(self, rig: str, base: str) -> list[Outcome]:
        """Land every queued request of one target, one at a time, until none is left."""
        done: list[Outcome] = []
        while not self.stop.is_set():
            mr = self.next_request(rig, base)
            if mr is None:
                break
            if mr["status"] == "open":
                try:
                    mr = self.led.claim(mr["id"])  # atomic: open -> in_progress, ours
                except ConflictError:
                    continue  # changed under us (retried, rejected): look again
            outcome = self.land(mr)
            done.append(outcome)
            if outcome.result in ("stopped", "error-transient"):
                break
        return done

    # ------------------------------------------------------------- landing
    def land(self, mr: Bead) -> Outcome:
        """Land one claimed request (or resume one), recording the result."""
        started = time.monotonic()
        try:
            outcome = self._land(mr)
        except _Stopped:
            self.log(f"refinery: stopped while landing {mr['id']}; it resumes on restart")
            return Outcome(mr["id"], "stopped")
        except (GastownError, OSError, subprocess.SubprocessError) as exc:
            outcome = self._send_back(mr, "land-failed", f"the refinery failed: {exc}")
        outcome.extra["seconds"] = round(time.monotonic() - started, 3)
        self.log(f"refinery: {mr['id']} {outcome.result} {outcome.detail}".rstrip())
        return outcome

    def _land(self, mr: Bead) -> Outcome:
        meta = mr.get("metadata") or {}
        rig_name, base = target_of(mr)
        try:
            rig = self.town.config.rig(rig_name)
        except NotFoundError:
            return self._send_back(mr, "land-failed", f"rig {rig_name!r} is not configured")
        repo = self.town.repo_dir(rig.name)
        commit = str(meta.get("commit") or "")
        if commit and rig.push and self._rev(repo, commit) is None and meta.get("branch"):
            # handed in on another node (gt up --node): its branch is at the source
            branch = str(meta["branch"])
            self._git(["fetch", "--quiet", "origin",
                       f"+refs/heads/{branch}:refs/remotes/origin/{branch}"], repo, check=False)
        if not commit or self._rev(repo, commit) is None:
            return self._send_back(mr, "land-failed",
                                   f"commit {commit[:12] or '?'} is not in the rig's clone")
        landing = mq_meta(mr).get("landing")
        if isinstance(landing, dict) and landing.get("new"):
            # resuming after a crash: did the target already move to the planned commit?
            if self._landed(repo, rig, base, str(landing["new"])):
                return self._finish(mr, str(landing.get("old")), str(landing["new"]), resumed=True)
        self._last_push = ""
        for _attempt in range(self.policy.retries):
            self._check_stop()
            if rig.push:
                self._sync_from_origin(repo, base)
            old = self._rev(repo, f"refs/heads/{base}")
            if old is None:
                return self._send_back(mr, "land-failed", f"target branch {base!r} is missing")
            if self._is_ancestor(repo, commit, old):
                return self._finish(mr, old, old, note="already on the target")
            result = self._attempt(mr, rig, repo, base, commit, old)
            if result is not None:
                return result
        detail = f"{base} kept moving during {self.policy.retries} attempts"
        if self._last_push:
            detail += f"; the last push said:\n{self._last_push}"
        return self._send_back(mr, "land-failed", detail)

    def _attempt(self, mr: Bead, rig: RigConfig, repo: str, base: str, commit: str,
                 old: str) -> Outcome | None:
        """Rebase, test and land once; None when the target moved (try again)."""
        path = self._scratch_path(rig.name, mr["id"])
        self._drop_scratch(repo, path)  # a leftover from a crash
        os.makedirs(os.path.dirname(path), exist_ok=True)
        from ..town.rigs import worktree_lock

        with worktree_lock(repo):
            self._git(["worktree", "add", "--quiet", "--detach", path, commit], repo)
        try:
            rebase = self._git(["rebase", "--quiet", old], path, check=False)
            if rebase.returncode != 0:
                files = self._git(["diff", "--name-only", "--diff-filter=U"], path,
                                  check=False).stdout.split()
                self._git(["rebase", "--abort"], path, check=False)
                return self._send_back(mr, "conflict",
                                       f"does not rebase cleanly onto {base}", files=files)
            new = self._rev(path, "HEAD")
            assert new is not None
            # what the work touched: recorded with the landing (entity chains, skills)
            files = self._git(["diff", "--name-only", old, new], path,
                              check=False).stdout.split()[:500]
            if rig.test:
                code, tail = self._run_test(rig.test, path, mr["id"])
                if code != 0:
                    return self._send_back(mr, "tests-failed",
                                           f"the test command exited {code}", output=tail)
            self._check_stop()
            self._record_landing(mr, old, new)
            if rig.land:
                code, tail = self._run_land(rig, path, mr, base, new)
                if code != 0:
                    return self._send_back(mr, "land-failed",
                                           f"the land command exited {code}", output=tail)
                return self._finish(mr, old, new, note="landed by the rig's land command",
                                    checked=bool(rig.test), files=files)
            if rig.push:
                push = self._push(rig, repo, new, base)
                if push.returncode != 0:
                    self._last_push = git_reason(push)
                    self._sync_from_origin(repo, base)
                    if self._rev(repo, f"refs/remotes/origin/{base}") not in (old, None):
                        return None  # the source moved on: sync and rebase again
                    return self._push_refused(mr, rig, base, self._last_push)
            # compare-and-swap: moves the target only if it still is `old`; `new`
            # descends from `old` (we rebased onto it), so this is a fast-forward
            cas = self._git(["update-ref", f"refs/heads/{base}", new, old], repo, check=False)
            if cas.returncode != 0 and self._rev(repo, f"refs/heads/{base}") != new:
                return None
            return self._finish(mr, old, new, checked=bool(rig.test), files=files)
        finally:
            self._drop_scratch(repo, path)

    def _landed(self, repo: str, rig: RigConfig, base: str, new: str) -> bool:
        """Is ``new`` on the target already (locally, or at the source for a pushing rig)?"""
        if rig.land:
            return False  # only the land command knows; run it again (it must be idempotent)
        local = self._rev(repo, f"refs/heads/{base}")
        if local and self._is_ancestor(repo, new, local):
            return True
        if rig.push:
            self._sync_from_origin(repo, base)
            local = self._rev(repo, f"refs/heads/{base}")
            return bool(local and self._is_ancestor(repo, new, local))
        return False

    def _push(self, rig: RigConfig, repo: str, new: str,
              base: str) -> subprocess.CompletedProcess[str]:
        """Push the landed commit to the rig's source (a clean working copy is updated)."""
        from ..town.rigs import working_copy

        argv = ["push", "--quiet"]
        if working_copy(rig.source):
            argv.append(f"--receive-pack={_UPDATE_INSTEAD}")
        return self._git([*argv, "origin", f"{new}:refs/heads/{base}"], repo, check=False)

    def _sync_from_origin(self, repo: str, base: str) -> None:
        """Bring the local target up to the source's when the source is ahead (pushing rigs)."""
        self._git(["fetch", "--quiet", "origin", f"+refs/heads/{base}:refs/remotes/origin/{base}"],
                  repo, check=False)
        remote = self._rev(repo, f"refs/remotes/origin/{base}")
        local = self._rev(repo, f"refs/heads/{base}")
        if remote and local and remote != local and self._is_ancestor(repo, local, remote):
            self._git(["update-ref", f"refs/heads/{base}", remote, local], repo, check=False)

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise _Stopped()

    # ----------------------------------------------------------- commands
    def _run(self, argv: list[str], cwd: str, log_name: str,
             env: dict[str, str] | None = None) -> tuple[int, str]:
        """Run a configured command (argv, no shell) with a deadline; (exit, last lines)."""
        log_path = self.town.runtime("logs", "refinery", f"{log_name}.log")
        with open(log_path, "wb") as log:
            try:
                proc = subprocess.Popen(argv, cwd=cwd, env=env or self._env(),
                                        stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
            except OSError as exc:
                return 127, f"cannot run {argv[0]!r}: {exc.strerror}"
            deadline = time.monotonic() + self.policy.test_timeout
            code: int | None = None
            while code is None:
                try:
                    code = proc.wait(timeout=0.2)
                except subprocess.TimeoutExpired:
                    if self.stop.is_set() or time.monotonic() > deadline:
                        # its own process group: the whole test run goes, nothing lingers
                        try:
                            os.killpg(proc.pid, signal.SIGKILL)
                        except ProcessLookupError:
                            pass
                        proc.wait()
                        if self.stop.is_set():
                            raise _Stopped() from None
                        return 124, f"timed out after {self.policy.test_timeout:g}s"
        with open(log_path, encoding="utf-8", errors="replace") as fh:
            tail = "\n".join(fh.read().splitlines()[-40:])
        return code, tail

    def _run_test(self, argv: list[str], path: str, mr_id: str) -> tuple[int, str]:
        return self._run(argv, path, f"{mr_id}-test")

    def _run_land(self, rig: RigConfig, path: str, mr: Bead, base: str,
                  new: str) -> tuple[int, str]:
        meta = mr.get("metadata") or {}
        values = {"branch": str(meta.get("branch") or ""), "commit": new, "target": base,
                  "mr": mr["id"], "rig": rig.name, "repo": self.town.repo_dir(rig.name)}
        argv = list(rig.land or [])
        for key, value in values.items():
            argv = [a.replace("{" + key + "}", value) for a in argv]
        return self._run(argv, path, f"{mr['id']}-land")
