"""Rigs: bare clones, per-agent worktrees and branches, with real git."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.townkit import git, gt, gt_json, make_repo
from gastown.errors import ConflictError, NotFoundError
from gastown.town.config import AgentConfig
from gastown.town.core import Town
from gastown.town.rigs import add_rig, ensure_worktree, remove_rig

pytest_plugins = ("agents.fixtures",)


def test_rig_add_makes_a_bare_clone_and_records_it(town: Town, source_repo: Path
                                                   ) -> None:
    repo = Path(town.repo_dir("app"))
    assert (repo / "HEAD").is_file() and not (repo / ".git").exists(), "a bare clone"
    assert git(repo, "rev-parse", "--is-bare-repository").strip() == "true"
    rig = town.config.rig("app")
    assert rig.source == str(source_repo) and rig.branch == "main"
    listed = gt_json(town, "rig", "list")
    assert listed[0]["name"] == "app" and listed[0]["cloned"] is True
    assert any(e["type"] == "rig.added" for e in gt_json(town, "events"))


def test_rig_add_detects_the_default_branch_and_accepts_urls(town: Town,
                                                            tmp_path: Path) -> None:
    other = make_repo(tmp_path / "trunky", branch="trunk")
    rig = add_rig(town, "lib", f"file://{other}")
    assert rig.branch == "trunk" and rig.source == f"file://{other}"
    assert git(town.repo_dir("lib"), "rev-parse", "--verify", "refs/heads/trunk")


def test_rig_add_failures_leave_nothing_behind(town: Town, tmp_path: Path) -> None:
    before = Path(town.config_path).read_text()
    with pytest.raises(NotFoundError, match="does not exist"):
        add_rig(town, "ghost", str(tmp_path / "nowhere"))
    with pytest.raises(NotFoundError, match="branch 'nope' does not exist"):
        add_rig(town, "br", str(tmp_path / "src"), branch="nope")
    assert not Path(town.rig_dir("br")).exists()
    assert Path(town.config_path).read_text() == before
    with pytest.raises(ConflictError, match="already"):
        add_rig(town, "app", str(tmp_path / "src"))
    proc = gt(town, "rig", "add", "-bad", str(tmp_path / "src"), check=False)
    assert proc.returncode == 2  # argparse: an option-looking name is refused up front


def test_worktrees_are_per_agent_branch_per_work_and_never_clobber(town: Town
                                                                   ) -> None:
    agent = AgentConfig(name="ann", role="r", preset="command", rig="app", command=["x"])
    ws = ensure_worktree(town, agent, "ann/w-1")
    path = Path(ws.path)
    assert ws.created and path == Path(town.root) / "rigs" / "app" / "worktrees" / "ann"
    assert git(path, "branch", "--show-current").strip() == "ann/w-1"
    # a clean worktree moves to the next piece of work's branch
    ws2 = ensure_worktree(town, agent, "ann/w-2")
    assert ws2.switched and git(path, "branch", "--show-current").strip() == "ann/w-2"
    # uncommitted work is never thrown away
    (path / "draft.txt").write_text("half done")
    ws3 = ensure_worktree(town, agent, "ann/w-3")
    assert ws3.kept_dirty and ws3.branch == "ann/w-2" and (path / "draft.txt").exists()
    # the branch is a branch of the rig's clone: that is what `gt done` hands in
    assert git(town.repo_dir("app"), "rev-parse", "--verify", "refs/heads/ann/w-2")


def test_rig_remove_refuses_while_used_and_with_dirty_work(town: Town) -> None:
    gt(town, "agent", "add", "bob", "--rig", "app", "--preset", "command", "--command", "true")
    town.reload()
    with pytest.raises(ConflictError, match="still used by bob"):
        remove_rig(town, "app")
    gt(town, "agent", "remove", "bob")
    town.reload()
    agent = AgentConfig(name="tmp", role="r", preset="command", rig="app", command=["x"])
    ws = ensure_worktree(town, agent, "tmp/x")
    (Path(ws.path) / "wip.txt").write_text("wip")
    with pytest.raises(ConflictError, match="uncommitted work"):
        remove_rig(town, "app")
    assert Path(town.repo_dir("app")).is_dir()
    gt(town, "rig", "remove", "app", "--force")
    town.reload()
    assert "app" not in town.config.rigs and not Path(town.rig_dir("app")).exists()


def test_worktrees_made_while_others_prune_them_all_come_out_whole(town: Town) -> None:
    """``git worktree prune`` deletes a worktree's metadata that a concurrent ``git
    worktree add`` has not filled in yet; every add and prune takes the rig's lock."""
    import subprocess
    import threading

    from gastown.town.rigs import worktree_lock

    repo = town.repo_dir("app")
    stop = threading.Event()

    def prune_forever() -> None:  # what housekeeping and the refinery do, under the lock
        while not stop.is_set():
            with worktree_lock(repo):
                subprocess.run(["git", "worktree", "prune"], cwd=repo, check=True,
                               capture_output=True)

    pruners = [threading.Thread(target=prune_forever) for _ in range(2)]
    for t in pruners:
        t.start()
    try:
        for n in range(12):
            agent = AgentConfig(name=f"a{n}", role="r", preset="command", rig="app",
                                command=["x"])
            assert ensure_worktree(town, agent, f"a{n}/w-1").created
    finally:
        stop.set()
        for t in pruners:
            t.join()
    listed = git(Path(repo), "worktree", "list", "--porcelain")
    assert all(f"/worktrees/a{n}\n" in listed for n in range(12)), listed
