"""Worktree pruning in a real town: an agent's work lands, then its tree and branch go.

The whole path is real: ``gt up``, a scripted agent in tmux doing a molecule in
its worktree, ``gt done``, the refinery rebasing, testing and fast-forwarding,
then the controller's housekeeping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agents.controlkit import (
    RIG,
    agent_cmd,
    make_town,
    running,
    session_env,  # noqa: F401 - a fixture
    wait_events,
)
from agents.townkit import git, wait_for
from gastown.town.slinging import sling

pytestmark = pytest.mark.usefixtures("session_env")

TOML = """
[controller]
tick = 0.5

[housekeeping]
every = "1s"
"""


def test_landed_work_leaves_no_worktree_or_branch_behind(tmp_path: Path) -> None:
    town = make_town(tmp_path, agents={"ada": agent_cmd()}, extra_toml=TOML)
    tree = Path(town.rig_dir(RIG), "worktrees", "ada")
    repo = Path(town.repo_dir(RIG))
    with running(town):
        root = sling(town, "quick-fix", "ada", {"issue": "t-1"}, nudge=False).id
        landed = wait_events(town, "merge.landed", timeout=120)[0]
        branch = landed["payload"]["branch"]
        assert branch == f"ada/{root}"
        wait_for(lambda: not tree.exists(), 60, what="the landed worktree to be pruned")
        wait_for(lambda: not git(repo, "branch", "--list", branch).strip(), 30,
                 what="the landed branch to be deleted")
        # what landed is on main, nothing of it lost
        assert git(repo, "merge-base", "--is-ancestor", landed["payload"]["new"],
                   "main") == ""
        heads = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/").split()
        assert heads == ["main"]
        assert not os.listdir(Path(town.rig_dir(RIG), "worktrees"))
