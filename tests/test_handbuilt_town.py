"""A town built by hand over a person's own working copy lands its work there.

The source is an ordinary repository with ``main`` checked out, as a person has
it in ``~/src/app``; ``push = true`` sends landed work back to it.  Real git, a
real controller, real headless agent processes (the README's sample agent).
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from agents.townkit import DISCIPLINED, git, gt, gt_json, make_repo, teardown_town, wait_for
from gastown import Filter, Ledger
from gastown.controller.mergeq import controller_actor, retry
from gastown.controller.policies import MergePolicy
from gastown.controller.refinery import Refinery
from gastown.controller.service import down, up
from gastown.town.core import Town

pytest_plugins = ("agents.fixtures",)

AUTHOR = "app/worker/ann"


def _set_rig_keys(town: Town, keys: str) -> None:
    """Put ``keys`` (TOML lines) at the top of ``[rigs.app]`` and reload."""
    head, tail = Path(town.config_path).read_text().rsplit("\n[rigs.app]\n", 1)
    Path(town.config_path).write_text(f"{head}\n[rigs.app]\n{keys}{tail}")
    town.reload()


def _branch(town: Town, tmp: Path, name: str, rel: str, text: str) -> str:
    """Commit one file on a new branch off the rig's main, in the rig's clone."""
    work = tmp / f"clone-{name.replace('/', '-')}"
    git(tmp, "clone", "-q", town.repo_dir("app"), str(work))
    git(work, "switch", "-q", "-c", name)
    (work / rel).write_text(text)
    git(work, "add", rel)
    git(work, "commit", "-q", "-m", f"{name}: {rel}")
    git(work, "push", "-q", "origin", name)
    return git(work, "rev-parse", "HEAD").strip()


def _request(led: Ledger, branch: str, commit: str) -> dict:
    return led.create(f"Merge {branch}", issue_type="merge-request",
                      metadata={"branch": branch, "commit": commit, "base": "main",
                                "rig": "app", "author": AUTHOR, "agent": "ann"})


def _refinery(town: Town, led: Ledger) -> Refinery:
    return Refinery(town, led, MergePolicy(), controller_actor(town), threading.Event())


def test_three_agents_land_their_work_in_the_persons_working_copy(tmp_path: Path) -> None:
    src = make_repo(tmp_path / "app")  # the person's own repository, main checked out
    root = tmp_path / "town"
    gt(tmp_path, "init", str(root), "--email", "bots@example.com", "--provider", "subprocess")
    added = gt(root, "rig", "add", "app", str(src), "--push")
    assert "your working copy" in added.stdout
    agent = f"{sys.executable} {DISCIPLINED} --once --wait 60"
    names = ("ann", "bob", "cy")
    for name in names:
        gt(root, "agent", "add", name, "--rig", "app", "--preset", "command", "--command", agent)
    town = Town(str(root))
    try:
        up(town)
        with Ledger.open(town.db_url(), actor="tester") as led:
            work = {n: led.create(f"Write {n}'s part")["id"] for n in names}
        for name in names:
            gt(root, "sling", work[name], name)

        def landed() -> list | None:
            evs = gt_json(root, "events", "--type", "merge.landed")
            return evs if len(evs) >= 3 else None

        try:
            wait_for(landed, 120, 0.5, what="three landed merge requests")
        except AssertionError:
            status = gt(root, "status", check=False).stdout
            logs = "\n".join(p.read_text(errors="replace")[-1500:]
                             for p in (root / ".gt" / "logs").glob("*.log"))
            raise AssertionError(f"not landed:\n{status}\n{logs}") from None
    finally:
        down(town, timeout=10)
        teardown_town(town)
    # the person's main -- the checked-out branch and its files -- has all three
    assert git(src, "branch", "--show-current").strip() == "main"
    log = git(src, "log", "--format=%an", "main").split("\n")
    assert {f"app/worker/{n}" for n in names} <= set(log)
    for name in names:
        step = work[name]
        assert (src / "work" / f"{step}.md").is_file(), f"{name}'s file is in the working copy"
    assert git(src, "status", "--porcelain") == "", "the working copy is clean and matches main"
    with Ledger.open(town.db_url()) as led:
        assert not led.list(Filter(issue_type=["merge-request"], status=["blocked"]))


def test_a_dirty_working_copy_holds_the_landing_with_gits_reason_and_loses_nothing(
        town: Town, source_repo: Path, tmp_path: Path) -> None:
    _set_rig_keys(town, "push = true\n")
    commit = _branch(town, tmp_path, "ann/x", "X.md", "x\n")
    (source_repo / "README.md").write_text("# app\n\nthe person's unsaved edit\n")
    with town.ledger(controller_actor(town)) as led:
        mr = _request(led, "ann/x", commit)
        outcomes = _refinery(town, led).run_target("app", "main")
        assert [o.result for o in outcomes] == ["push-refused"], "not 'main kept moving'"
        held = led.get(mr["id"])
        mq = held["metadata"]["mq"]
        assert held["status"] == "blocked" and mq["state"] == "push-refused"
        assert "Working directory has unstaged changes" in mq["detail"]
        assert "[remote rejected]" in mq["git"], "git's whole message is kept"
        assert f"gt mq retry {mr['id']}" in mq["todo"]
        mail = led.list(Filter(issue_type=["message"], assignee="tester"))
        assert len(mail) == 1 and "Working directory has unstaged changes" in mail[0]["title"]
        assert "[remote rejected]" in mail[0]["description"]
        assert not led.list(Filter(issue_type=["bug"])), "nothing for the author to fix"
    status = gt(town, "status").stdout
    assert "Working directory has unstaged changes" in status
    shown = gt(town, "mq", "status", mr["id"]).stdout
    assert "git said:" in shown and "[remote rejected]" in shown
    assert "the person's unsaved edit" in (source_repo / "README.md").read_text()
    assert not (source_repo / "X.md").exists()

    git(source_repo, "checkout", "--", "README.md")  # the person tidies up, then retries
    with town.ledger(controller_actor(town)) as led:
        retry(led, mr["id"])
        assert [o.result for o in _refinery(town, led).run_target("app", "main")] == ["merged"]
    assert (source_repo / "X.md").read_text() == "x\n"
    assert git(source_repo, "rev-parse", "main").strip() == git(
        town.repo_dir("app"), "rev-parse", "main").strip()
    assert git(source_repo, "status", "--porcelain") == ""


def test_a_refused_push_shows_everything_git_said(town: Town, tmp_path: Path) -> None:
    bare = tmp_path / "hub.git"
    git(tmp_path, "clone", "-q", "--bare", town.config.rig("app").source, str(bare))
    hook = bare / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is frozen for the release' >&2\n"
                    "echo 'ask the release manager' >&2\nexit 1\n")
    hook.chmod(0o755)
    gt(town, "rig", "add", "hub", str(bare))
    head, tail = Path(town.config_path).read_text().rsplit("\n[rigs.hub]\n", 1)
    Path(town.config_path).write_text(f"{head}\n[rigs.hub]\npush = true\n{tail}")
    town.reload()
    clone = tmp_path / "w"
    git(tmp_path, "clone", "-q", town.repo_dir("hub"), str(clone))
    git(clone, "switch", "-q", "-c", "ann/y")
    (clone / "Y.md").write_text("y\n")
    git(clone, "add", "Y.md")
    git(clone, "commit", "-q", "-m", "y")
    git(clone, "push", "-q", "origin", "ann/y")
    commit = git(clone, "rev-parse", "HEAD").strip()
    with town.ledger(controller_actor(town)) as led:
        mr = led.create("Merge ann/y", issue_type="merge-request",
                        metadata={"branch": "ann/y", "commit": commit, "base": "main",
                                  "rig": "hub", "author": AUTHOR})
        outcomes = _refinery(town, led).run_target("hub", "main")
        assert [o.result for o in outcomes] == ["push-refused"]
        mq = led.get(mr["id"])["metadata"]["mq"]
        tries = led.events(types=["merge.landing"], bead_id=mr["id"])
        assert len(tries) == 1, "a refusal is not retried as if main had moved"
        assert "main is frozen for the release" in mq["git"]
        assert "ask the release manager" in mq["git"], "not only git's last line"
        assert "pre-receive hook declined" in mq["detail"]


def test_the_controller_notices_an_edited_town_toml(town: Town, source_repo: Path,
                                                    tmp_path: Path) -> None:
    Path(town.config_path).write_text(Path(town.config_path).read_text()
                                      + "\n[controller]\ntick = 0.3\n")
    town.reload()
    try:
        up(town)
        _set_rig_keys(town, "push = true\n")  # edited while the controller runs
        wait_for(lambda: "town.toml" not in gt(town, "status").stdout, 20, 0.2,
                 what="the controller to reload town.toml")
        commit = _branch(town, tmp_path, "ann/z", "Z.md", "z\n")
        with Ledger.open(town.db_url(), actor="tester") as led:
            mr = _request(led, "ann/z", commit)
            led.emit("merge.requested", mr["id"], {"rig": "app", "base": "main"})
        try:
            wait_for(lambda: (source_repo / "Z.md").exists(), 30, 0.2,
                     what="the landed work pushed to the working copy (push = true, reloaded)")
        except AssertionError:
            log = Path(town.gt_dir, "logs", "controller.log").read_text()
            raise AssertionError(f"{gt(town, 'status').stdout}\n{log[-3000:]}") from None
        # what cannot change under a running controller is named, with what to do
        text = Path(town.config_path).read_text()
        Path(town.config_path).write_text(text.replace("tick = 0.3", "tick = 0.4"))
        said = wait_for(lambda: (out := gt(town, "status").stdout) and
                        "gt down && gt up" in out and out, 20, 0.2,
                        what="gt status to say a restart is needed")
        assert "[controller]" in said
        # a mistake in the file: gt says what and where; the controller keeps what it had
        Path(town.config_path).write_text(text + "\n[merge]\naging = \"soon\"\n")
        broken = gt(town, "status", check=False)
        assert broken.returncode == 5 and "merge.aging" in broken.stderr
        log = Path(town.gt_dir, "logs", "controller.log")
        wait_for(lambda: "keeping the old one" in log.read_text(), 20, 0.2,
                 what="the controller to refuse the broken town.toml")
        Path(town.config_path).write_text(text)
        wait_for(lambda: "town.toml" not in gt(town, "status").stdout, 20, 0.2,
                 what="the controller to take the repaired town.toml")
    finally:
        down(town, timeout=10)


@pytest.mark.parametrize("push", [False, True])
def test_rig_add_says_how_landed_work_reaches_a_working_copy(town: Town, tmp_path: Path,
                                                             push: bool) -> None:
    src = make_repo(tmp_path / f"mine-{push}")
    out = gt_json(town, "rig", "add", "mine", str(src), *(["--push"] if push else []))
    assert out["push"] is push and out["working_copy"] == str(src)
    town.reload()
    assert town.config.rig("mine").push is push
