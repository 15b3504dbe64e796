"""Sent-back work has a path forward: same branch, same request, one fix bead, tidy landing.

Real git, a real ledger and real (tmux) sessions running a do-nothing agent; the
test plays the agent's part in its worktree (edit, rebase, commit) and calls
``gt done``'s library function as the agent would.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from agents.townkit import add_agent, git, sleeper
from gastown import Filter, Ledger
from gastown.controller.mergeq import controller_actor, retry
from gastown.controller.policies import MergePolicy
from gastown.controller.refinery import Outcome, Refinery
from gastown.town.core import Town
from gastown.town.handin import done
from gastown.town.slinging import sling

pytest_plugins = ("agents.fixtures",)

ANN = "app/worker/ann"


def _land(town: Town) -> list[Outcome]:
    with town.ledger(controller_actor(town)) as led:
        return Refinery(town, led, MergePolicy(), controller_actor(town),
                        threading.Event()).run_target("app", "main")


def _commit(path: str | Path, rel: str, text: str, message: str) -> str:
    Path(path, rel).write_text(text)
    git(path, "add", "--", rel)
    git(path, "commit", "-q", "-m", message)
    return git(path, "rev-parse", "HEAD").strip()


def _move_main(town: Town, tmp: Path, rel: str, text: str) -> None:
    """Someone else lands a change on the rig's main (a clone pushes to the rig)."""
    clone = tmp / "other"
    if not clone.exists():
        git(tmp, "clone", "-q", town.repo_dir("app"), str(clone))
    git(clone, "pull", "-q", "--ff-only", "origin", "main")
    _commit(clone, rel, text, f"other: {rel}")
    git(clone, "push", "-q", "origin", "HEAD:main")


def _requests(led: Ledger) -> list[dict]:
    return led.list(Filter(issue_type=["merge-request"]))


def _done_as_ann(town: Town) -> dict:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BD_ACTOR", ANN)
        return done(town, "ann", actor=ANN)


def test_the_fix_bead_continues_the_same_branch_and_requeues_the_same_request(
        town: Town, tmp_path: Path) -> None:
    add_agent(town, "ann", sleeper(), provider="subprocess")
    with town.ledger("tester") as led:
        bug = led.create("The README is wrong", issue_type="bug")
    first = sling(town, "mol-quick-fix", "ann", {"issue": bug["id"]}, nudge=False,
                  actor="tester")
    branch = first.branch
    assert branch == f"ann/{first.id}"
    _commit(first.workdir, "README.md", "# app\n\nAnn's words\n", "ann: README")
    _move_main(town, tmp_path, "README.md", "# app\n\nSomeone else's words\n")
    handed = _done_as_ann(town)
    mr_id = handed["mr"]

    back = _land(town)
    assert [o.result for o in back] == ["conflict"]
    fix_id = back[0].extra["bead"]
    with town.ledger("tester") as led:
        fix = led.get(fix_id)
        assert fix["assignee"] == ANN and fix["metadata"]["mr"] == mr_id
        assert f"gt sling {fix_id}" in fix["description"]
        mails = [m["id"] for m in led.list(Filter(issue_type=["message"], assignee=ANN))]
        assert len(mails) == 1

    # slung to its author: the same branch, in the author's own worktree
    again = sling(town, fix_id, "ann", nudge=False, actor="tester")
    assert again.branch == branch and again.workdir == first.workdir
    assert git(again.workdir, "branch", "--show-current").strip() == branch
    # the author resolves the conflict by rebasing onto main, and hands it in again
    proc = subprocess.run(["git", "rebase", "-q", "main"], cwd=again.workdir,
                          capture_output=True, text=True, check=False,
                          env={**os.environ, "GIT_AUTHOR_NAME": "ann",
                               "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "ann",
                               "GIT_COMMITTER_EMAIL": "a@x"})
    assert proc.returncode != 0, "the rebase stops at the conflict"
    Path(again.workdir, "README.md").write_text("# app\n\nBoth sets of words\n")
    git(again.workdir, "add", "README.md")
    subprocess.run(["git", "-c", "core.editor=true", "rebase", "--continue"],
                   cwd=again.workdir, check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "ann", "GIT_AUTHOR_EMAIL": "a@x",
                        "GIT_COMMITTER_NAME": "ann", "GIT_COMMITTER_EMAIL": "a@x"})
    fixed = git(again.workdir, "rev-parse", "HEAD").strip()
    handed = _done_as_ann(town)
    assert handed["mr"] == mr_id and handed.get("requeued") is True
    with town.ledger("tester") as led:
        requests = _requests(led)
        assert [r["id"] for r in requests] == [mr_id], "no second request"
        mr = led.get(mr_id)
        assert mr["status"] == "open" and mr["metadata"]["commit"] == fixed
        assert mr["metadata"]["branch"] == branch
        assert not {"conflict", "land-failed"} & set(mr.get("labels") or [])

    landed = _land(town)
    assert [(o.mr, o.result) for o in landed] == [(mr_id, "merged")]
    with town.ledger("tester") as led:
        assert led.get(mr_id)["status"] == "closed"
        assert led.get(fix_id)["status"] == "closed", "its fix bead"
        assert led.get(bug["id"])["status"] == "closed", "the bug the quick-fix was about"
        assert all(led.get(m)["status"] == "closed" for m in mails), "the sent-back mail"
    repo = town.repo_dir("app")
    assert git(repo, "show", "main:README.md") == "# app\n\nBoth sets of words\n"


def test_repeated_failures_of_one_request_update_one_fix_bead(town: Town,
                                                              tmp_path: Path) -> None:
    check = [sys.executable, "-c", "import pathlib, sys; "
             "sys.exit('BROKEN' in pathlib.Path('README.md').read_text())"]
    head, tail = Path(town.config_path).read_text().rsplit("\n[rigs.app]\n", 1)
    Path(town.config_path).write_text(
        f"{head}\n[rigs.app]\ntest = {json.dumps(shlex.join(check))}\n{tail}")
    town.reload()
    add_agent(town, "ann", sleeper(), provider="subprocess")
    with town.ledger("tester") as led:
        work = led.create("Reword the README")
    slung = sling(town, work["id"], "ann", nudge=False, actor="tester")
    _commit(slung.workdir, "README.md", "BROKEN\n", "ann: oops")
    mr_id = _done_as_ann(town)["mr"]
    first = _land(town)
    assert [o.result for o in first] == ["tests-failed"]
    fix_id = first[0].extra["bead"]

    # handed in again still red (by the queue's retry, then by gt done on the fix bead)
    with town.ledger("tester") as led:
        retry(led, mr_id)
    second = _land(town)
    assert [o.result for o in second] == ["tests-failed"]
    assert second[0].extra["bead"] == fix_id, "the same fix bead"
    sling(town, fix_id, "ann", nudge=False, actor="tester")
    _commit(slung.workdir, "README.md", "STILL BROKEN\n", "ann: oops again")
    assert _done_as_ann(town)["mr"] == mr_id
    third = _land(town)
    assert [o.extra["bead"] for o in third] == [fix_id]
    with town.ledger("tester") as led:
        bugs = led.list(Filter(issue_type=["bug"]))
        assert [b["id"] for b in bugs] == [fix_id], "one bead, not a bug per retry"
        comments = led.comments(fix_id)
        assert len(comments) == 2 and all("Sent back again" in c["text"] for c in comments)
        mq = led.get(mr_id)["metadata"]["mq"]
        assert mq["fix"] == fix_id and len(mq["mails"]) == 3
    # and when it is finally green, everything it left behind is closed
    sling(town, fix_id, "ann", nudge=False, actor="tester")
    _commit(slung.workdir, "README.md", "# app\n\nfine\n", "ann: fixed")
    assert _done_as_ann(town)["mr"] == mr_id
    assert [o.result for o in _land(town)] == ["merged"]
    with town.ledger("tester") as led:
        assert led.get(fix_id)["status"] == "closed"
        assert all(led.get(m)["status"] == "closed" for m in mq["mails"])
