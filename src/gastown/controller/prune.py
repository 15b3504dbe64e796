"""Worktree pruning: a long-running town's disk use stays flat.

After a merge request lands, its branch (``<agent>/<work-id>``) is contained in
the rig's branch, and the agent's worktree, once the agent has no work on its
hook and no live session, only holds a checkout that the next sling recreates.
:func:`prune_rig` removes exactly those, and the refinery's scratch worktrees of
finished requests:

* a branch is deleted only when a *landed* merge request names it, it is an
  ancestor of the rig's branch (nothing on it is lost) and no worktree has it
  checked out;
* an agent's worktree is removed only when it is clean (``git status`` shows
  nothing -- uncommitted work is never destroyed), its branch is landed or the
  rig's own, the agent's hook is empty and its session does not run.

Everything is an argument vector to git; nothing reaches a shell.
"""

from __future__ import annotations

import os
import shutil
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from ..town.core import Town

__all__ = ["prune_rig", "prune_town", "landed_branches", "disk_usage"]


def landed_branches(led: Ledger, rig: str) -> set[str]:
    """Branches of merge requests of ``rig`` that landed."""
    from ..ledger.query import Filter

    out: set[str] = set()
    for mr in led.list(Filter(issue_type=["merge-request"], status=["closed"],
                              labels_all=["merged"])):
        meta = mr.get("metadata") or {}
        if meta.get("rig") in (None, rig) and isinstance(meta.get("branch"), str):
            out.add(meta["branch"])
    return out


def _git(args: list[str], cwd: str) -> tuple[int, str]:
    from ..town.rigs import git

    proc = git(args, cwd=cwd, check=False)
    return proc.returncode, proc.stdout


def prune_rig(town: Town, led: Ledger, rig: str) -> dict[str, list[str]]:
    """Remove a rig's landed branches, idle agents' worktrees and finished scratch trees."""
    from ..town.rigs import _worktrees, is_clean, worktree_lock
    from ..town.sessions import Sessions

    out: dict[str, list[str]] = {"branches": [], "worktrees": [], "scratch": []}
    repo = town.repo_dir(rig)
    if not os.path.isdir(repo):
        return out
    base = town.config.rig(rig).branch
    landed = landed_branches(led, rig)
    hooked = {assignee for _bid, assignee in _hooked(led)}
    sessions = Sessions(town)
    trees = {os.path.realpath(t.get("worktree", "")): t for t in _worktrees(repo)}
    for agent in town.config.all_agents():
        if agent.rig != rig:
            continue
        path = town.workdir(agent)
        tree = trees.get(os.path.realpath(path))
        if tree is None or not os.path.isdir(path):
            continue
        branch = tree.get("branch", "").removeprefix("refs/heads/")
        if branch not in landed and branch != base:
            continue
        if town.actor_of(agent) in hooked or not is_clean(path):
            continue
        try:
            if sessions.is_alive(agent):
                continue
        except Exception:  # noqa: BLE001 - an unknown provider state: leave the tree alone
            continue
        with worktree_lock(repo):
            code, _ = _git(["worktree", "remove", path], repo)
        if code == 0:
            out["worktrees"].append(path)
    with worktree_lock(repo):
        _git(["worktree", "prune"], repo)
    checked_out = {t.get("branch", "").removeprefix("refs/heads/") for t in _worktrees(repo)}
    for branch in sorted(landed - checked_out - {base}):
        code, _ = _git(["merge-base", "--is-ancestor", f"refs/heads/{branch}",
                        f"refs/heads/{base}"], repo)
        if code == 0 and _git(["branch", "-D", "--quiet", branch], repo)[0] == 0:
            out["branches"].append(branch)
    out["scratch"] = _drop_scratch(town, led, rig, repo)
    if any(out.values()):
        _git(["gc", "--auto", "--quiet"], repo)  # packs loose objects once there are many
    return out


def _hooked(led: Ledger) -> list[tuple[str, str]]:
    from ..ledger.query import Filter

    return [(b["id"], str(b.get("assignee"))) for b in
            led.list(Filter(status=["hooked", "in_progress"], include_ephemeral=True))
            if b.get("assignee")]


def _drop_scratch(town: Town, led: Ledger, rig: str, repo: str) -> list[str]:
    """Scratch worktrees of the refinery whose merge request is no longer being landed."""
    from ..town.rigs import worktree_lock

    folder = os.path.join(town.rig_dir(rig), "refinery")
    if not os.path.isdir(folder):
        return []
    dropped = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        try:
            status = led.get(name)["status"]
        except Exception:  # noqa: BLE001 - not a bead id, or gone: not ours to judge
            continue
        if status == "closed":
            with worktree_lock(repo):
                _git(["worktree", "remove", "--force", path], repo)
                shutil.rmtree(path, ignore_errors=True)
            dropped.append(path)
    if dropped:
        with worktree_lock(repo):
            _git(["worktree", "prune"], repo)
    return dropped


def prune_town(town: Town, led: Ledger) -> dict[str, Any]:
    """:func:`prune_rig` for every rig; ``{rig: what went}`` (rigs with nothing left out)."""
    out: dict[str, Any] = {}
    for rig in town.config.rigs:
        done = prune_rig(town, led, rig)
        if any(done.values()):
            out[rig] = done
    return out


def disk_usage(path: str) -> int:
    """Bytes allocated under ``path`` (what ``du`` counts; links not followed)."""
    total = 0
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                continue
    return total
