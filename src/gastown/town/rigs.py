"""Rigs: a bare clone per repository and a worktree + branch per agent.

Every git call is an argument vector (``--`` before anything a person typed), run
with a scrubbed environment so a caller's ``GIT_DIR`` cannot redirect it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..errors import ConflictError, NotFoundError, TownError
from .config import AgentConfig, RigConfig, append_table, check_name, remove_table
from .core import Town

__all__ = ["git", "add_rig", "list_rigs", "remove_rig", "ensure_worktree", "Workspace",
           "is_clean", "current_branch", "head_commit", "exclude_path", "checked_out_in",
           "working_copy"]

_SCRUB = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
          "GIT_COMMON_DIR", "GIT_PREFIX")


def git(args: list[str], cwd: str | None = None, check: bool = True,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``git ARGS`` (an argv, never a shell string); a failure is one-line TownError."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.setdefault("GIT_TERMINAL_PROMPT", "0")  # never hang asking for a password
    try:
        proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except FileNotFoundError:
        raise TownError("git is not installed (it is needed for rigs and worktrees)") from None
    except subprocess.TimeoutExpired:
        raise TownError(f"git {' '.join(args[:2])} timed out after {timeout:.0f}s") from None
    if check and proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
        detail = lines[-1] if lines else f"exit status {proc.returncode}"
        raise TownError(f"git {args[0]} failed: {detail}")
    return proc


def _is_local(source: str) -> bool:
    return "://" not in source and not (":" in source and "@" in source.split(":", 1)[0])


def working_copy(source: str) -> str | None:
    """``source`` when it is a local, non-bare repository (a person's working copy)."""
    path = source.removeprefix("file://")
    if "://" in path or not os.path.isdir(path):
        return None
    proc = git(["rev-parse", "--is-bare-repository"], cwd=path, check=False)
    return path if proc.returncode == 0 and proc.stdout.strip() == "false" else None


def add_rig(town: Town, name: str, source: str, *, branch: str | None = None,
            push: bool = False, actor: str | None = None) -> RigConfig:
    """Clone ``source`` (a path or URL) bare into ``rigs/NAME/repo.git`` and record the rig.

    ``push``: landed work is pushed back to ``source`` (``push = true``); a
    working copy's checked-out branch is then updated when it is clean.
    """
    check_name("rig", name)
    cfg = town.config
    if name in cfg.rigs or name in cfg.agents or name in cfg.pools:
        raise ConflictError(f"{name!r} is already a rig, agent or pool in {town.config_path}")
    if _is_local(source):
        path = os.path.abspath(os.path.expanduser(source))
        if not os.path.exists(path):
            raise NotFoundError(f"rig source {source!r} does not exist")
        source = path
    rig_dir = town.rig_dir(name)
    if os.path.exists(rig_dir):
        raise ConflictError(f"{rig_dir} already exists; remove it or pick another name")
    repo = town.repo_dir(name)
    os.makedirs(rig_dir)
    try:
        git(["clone", "--bare", "--quiet", "--", source, repo])
        # later fetches land in origin/*, never over branches agents work on
        git(["config", "remote.origin.fetch", "+refs/heads/*:refs/remotes/origin/*"], cwd=repo)
        if branch is None:
            head = git(["symbolic-ref", "--quiet", "--short", "HEAD"], cwd=repo, check=False)
            branch = head.stdout.strip() or "main"
        if git(["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"], cwd=repo,
               check=False).returncode != 0:
            raise NotFoundError(f"rig {name}: branch {branch!r} does not exist in {source} "
                                "(an empty repository needs one commit first)")
        values: dict[str, Any] = {"source": source, "branch": branch}
        if push:
            values["push"] = True
        append_table(town.config_path, f"rigs.{name}", values,
                     comment=f"added by gt rig add {name}")
    except BaseException:
        shutil.rmtree(rig_dir, ignore_errors=True)
        raise
    town.reload()
    with town.ledger(actor) as led:
        led.emit("rig.added", None, {"rig": name, "source": source, "branch": branch,
                                     "push": push})
    return town.config.rigs[name]


def _worktrees(repo: str) -> list[dict[str, str]]:
    if not os.path.isdir(repo):
        return []
    out = git(["worktree", "list", "--porcelain"], cwd=repo, check=False).stdout
    trees: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    for line in out.splitlines() + [""]:
        if not line:
            if cur and "bare" not in cur:
                trees.append(cur)
            cur = {}
            continue
        key, _, value = line.partition(" ")
        cur[key] = value
    return trees


def list_rigs(town: Town) -> list[dict[str, Any]]:
    """Every rig with its clone's state and its worktrees."""
    out = []
    for rig in town.config.rigs.values():
        repo = town.repo_dir(rig.name)
        trees = [{"path": t.get("worktree", ""),
                  "branch": t.get("branch", "").removeprefix("refs/heads/")}
                 for t in _worktrees(repo)]
        out.append({"name": rig.name, "source": rig.source, "branch": rig.branch,
                    "pool": rig.pool, "push": rig.push, "repo": repo,
                    "cloned": os.path.isdir(repo), "worktrees": trees})
    return out


def remove_rig(town: Town, name: str, *, force: bool = False,
               actor: str | None = None) -> None:
    """Remove a rig: its clone, worktrees and ``[rigs.NAME]``.

    Refused while agents or pools are configured on it, or (without ``force``)
    while a worktree has work that is not committed.
    """
    town.config.rig(name)
    users = [a.name for a in town.config.agents.values() if a.rig == name]
    users += [f"pool {p.name}" for p in town.config.pools.values() if p.rig == name]
    if users:
        raise ConflictError(f"rig {name} is still used by {', '.join(users)}; "
                            "remove those from town.toml first")
    repo = town.repo_dir(name)
    if not force:
        dirty = [t["worktree"] for t in _worktrees(repo)
                 if os.path.isdir(t.get("worktree", "")) and not is_clean(t["worktree"])]
        if dirty:
            raise ConflictError(f"rig {name} has uncommitted work in {', '.join(dirty)} "
                                "(pass --force to delete it anyway)")
    if not remove_table(town.config_path, f"rigs.{name}"):
        raise ConflictError(f"could not find a [rigs.{name}] table in {town.config_path}; "
                            "edit the file by hand")
    shutil.rmtree(town.rig_dir(name), ignore_errors=True)
    town.reload()
    with town.ledger(actor) as led:
        led.emit("rig.removed", None, {"rig": name})


# ---------------------------------------------------------------- worktrees
def is_clean(path: str) -> bool:
    """True when a worktree has no changes and no untracked files."""
    return not git(["status", "--porcelain"], cwd=path).stdout.strip()


def current_branch(path: str) -> str:
    """The branch checked out in a worktree ('' when detached)."""
    return git(["branch", "--show-current"], cwd=path).stdout.strip()


def head_commit(path: str) -> str:
    """The commit id at HEAD of a worktree or repository."""
    return git(["rev-parse", "HEAD"], cwd=path).stdout.strip()


def exclude_path(repo: str, pattern: str) -> None:
    """Add ``pattern`` to the clone's ``info/exclude`` (shared by all its worktrees)."""
    common = git(["rev-parse", "--git-common-dir"], cwd=repo).stdout.strip()
    if not os.path.isabs(common):
        common = os.path.join(repo, common)
    path = os.path.join(common, "info", "exclude")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except FileNotFoundError:
        lines = []
    if pattern not in lines:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(f"{pattern}\n")


@dataclass
class Workspace:
    """Where an agent works and what happened to make it so."""

    path: str
    branch: str
    created: bool = False
    switched: bool = False
    kept_dirty: bool = False


def _branch_exists(repo: str, branch: str) -> bool:
    return git(["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"], cwd=repo,
               check=False).returncode == 0


def checked_out_in(repo: str, branch: str) -> str | None:
    """The worktree of ``repo`` that has ``branch`` checked out, if any."""
    for tree in _worktrees(repo):
        if tree.get("branch") == f"refs/heads/{branch}":
            return tree.get("worktree")
    return None


def _adopt_branch(town: Town, repo: str, branch: str) -> None:
    """A node of a town over several machines takes up work begun on another node:
    that node pushed the agent's branch to the source at every closed step
    (:mod:`gastown.controller.nodes`), so start from there, not from scratch."""
    from .nodes import local_node

    if local_node(town) is None:
        return
    git(["fetch", "--quiet", "origin", f"refs/heads/{branch}:refs/heads/{branch}"], cwd=repo,
        check=False)


@contextmanager
def worktree_lock(repo: str) -> Iterator[None]:
    """Hold the rig's worktree lock (``repo.git/gt-worktrees.lock``, ``flock``).

    ``git worktree prune`` deletes the administrative folder of any worktree
    whose ``gitdir`` file it cannot read -- including one that a concurrent
    ``git worktree add`` (another process: a sling, the merge queue, housekeeping)
    has created and not yet filled in, which then fails.  Every add, remove and
    prune of a rig's worktrees takes this lock first.
    """
    import fcntl

    fd = os.open(os.path.join(repo, "gt-worktrees.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def ensure_worktree(town: Town, agent: AgentConfig, branch: str,
                    start: str | None = None) -> Workspace:
    """Make sure ``agent`` has its worktree, on ``branch`` when that is safe.

    A missing branch is created from ``start`` (default: the rig's branch).  A
    missing worktree is created on it.  An existing clean one is switched to
    ``branch``; one with uncommitted work is left exactly as it is
    (``kept_dirty``), since nothing may destroy work.
    """
    if not agent.rig:
        return Workspace(path=town.root, branch="")
    rig = town.config.rig(agent.rig)
    repo = town.repo_dir(rig.name)
    if not os.path.isdir(repo):
        raise NotFoundError(f"rig {rig.name} has no clone at {repo} (re-add it with gt rig add)")
    path = town.workdir(agent)
    base = start or f"refs/heads/{rig.branch}"
    if not os.path.isdir(path):
        with worktree_lock(repo):
            git(["worktree", "prune"], cwd=repo)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if rig.push and not _branch_exists(repo, branch):
                _adopt_branch(town, repo, branch)
            if _branch_exists(repo, branch):
                git(["worktree", "add", "--quiet", path, branch], cwd=repo)
            else:
                git(["worktree", "add", "--quiet", "-b", branch, path, base], cwd=repo)
        return Workspace(path=path, branch=branch, created=True)
    now = current_branch(path)
    if now == branch:
        return Workspace(path=path, branch=branch)
    if not is_clean(path):
        return Workspace(path=path, branch=now, kept_dirty=True)
    if _branch_exists(repo, branch):
        git(["switch", "--quiet", branch], cwd=path)
    else:
        git(["switch", "--quiet", "-c", branch, base], cwd=path)
    return Workspace(path=path, branch=branch, switched=True)
