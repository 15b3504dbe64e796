"""The merge queue: rebase, test, fast-forward; conflicts and red tests go back to authors.

Real git throughout: branches are made in a clone and pushed to the rig's bare
repository, the refinery lands them in scratch worktrees, and the assertions
read the refs.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from agents.controlkit import make_town, session_env  # noqa: F401 - a fixture
from agents.townkit import git, gt, gt_json
from gastown import Filter, Ledger
from gastown.controller.mergeq import controller_actor, effective_priority, queue
from gastown.controller.policies import MergePolicy
from gastown.controller.refinery import Refinery
from gastown.ledger.model import Bead
from gastown.ledger.ops import Txn
from gastown.town.core import Town

pytestmark = pytest.mark.usefixtures("session_env")

AUTHOR_A, AUTHOR_B = "textkit/worker/ada", "textkit/worker/bo"


def _branch(town: Town, tmp: Path, name: str, files: dict[str, str]) -> str:
    """Commit ``files`` on a new branch off main and push it to the rig; returns the commit."""
    repo = town.repo_dir("textkit")
    work = tmp / f"clone-{name.replace('/', '-')}"
    git(tmp, "clone", "-q", repo, str(work))
    git(work, "switch", "-q", "-c", name)
    for rel, text in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", f"{name}: change {', '.join(files)}")
    git(work, "push", "-q", "origin", name)
    return git(work, "rev-parse", "HEAD").strip()


def _mr(led: Ledger | Txn, branch: str, commit: str, author: str, priority: int = 2,
        id: str | None = None) -> Bead:
    return led.create(f"Merge {branch}", issue_type="merge-request", priority=priority,
                      metadata={"branch": branch, "commit": commit, "base": "main",
                                "rig": "textkit", "author": author,
                                "agent": author.rsplit("/", 1)[-1]}, id=id)


def _refinery(town: Town, led: Ledger, **policy: Any) -> Refinery:
    return Refinery(town, led, MergePolicy(**policy), controller_actor(town), threading.Event())


def _main(town: Town) -> str:
    return git(town.repo_dir("textkit"), "rev-parse", "refs/heads/main").strip()


def test_two_conflicting_requests_the_first_lands_the_second_goes_back(tmp_path: Path) -> None:
    town = make_town(tmp_path, push=False)
    one = _branch(town, tmp_path, "ada/one", {"README.md": "# textkit\n\nAda's version\n"})
    two = _branch(town, tmp_path, "bo/two", {"README.md": "# textkit\n\nBo's version\n"})
    with town.ledger(controller_actor(town)) as led:
        first, second = _mr(led, "ada/one", one, AUTHOR_A), _mr(led, "bo/two", two, AUTHOR_B)
        outcomes = _refinery(town, led).run_target("textkit", "main")
        assert [(o.mr, o.result) for o in outcomes] == [(first["id"], "merged"),
                                                        (second["id"], "conflict")]
        assert _main(town) == one, "the first was a fast-forward"
        back = led.get(second["id"])
        assert back["status"] == "blocked" and "conflict" in back["labels"]
        assert back["metadata"]["mq"]["files"] == ["README.md"]
        fix = led.get(outcomes[1].extra["bead"])
        assert fix["assignee"] == AUTHOR_B and "conflict" in fix["labels"]
        assert "README.md" in fix["description"]
        assert [d["depends_on_id"] for d in led.deps(fix["id"])] == [second["id"]]
        mail = led.list(Filter(issue_type=["message"], assignee=AUTHOR_B))
        assert [m["title"] for m in mail] == [f"Merge request {second['id']} sent back: conflict"]
        assert led.get(first["id"])["status"] == "closed"
        assert "merged" in led.get(first["id"])["labels"]
    assert git(town.repo_dir("textkit"), "rev-parse", "bo/two").strip() == two, \
        "the author's branch is kept exactly as it was"
    assert not list(Path(town.rig_dir("textkit"), "refinery").iterdir()), "scratch cleaned"


def test_red_tests_block_the_merge_and_green_ones_land_rebased(tmp_path: Path) -> None:
    check = [sys.executable, "-c", "import pathlib, sys; "
             "sys.exit('BROKEN' in pathlib.Path('README.md').read_text())"]
    town = make_town(tmp_path, push=False, test=check)
    base = _main(town)
    bad = _branch(town, tmp_path, "ada/bad", {"README.md": "BROKEN\n"})
    good = _branch(town, tmp_path, "bo/good", {"NOTES.md": "notes\n"})
    other = _branch(town, tmp_path, "bo/other", {"OTHER.md": "other\n"})
    with town.ledger(controller_actor(town)) as led:
        red = _mr(led, "ada/bad", bad, AUTHOR_A)
        ok1, ok2 = _mr(led, "bo/good", good, AUTHOR_B), _mr(led, "bo/other", other, AUTHOR_B)
        outcomes = _refinery(town, led).run_target("textkit", "main")
        assert [o.result for o in outcomes] == ["tests-failed", "merged", "merged"]
        assert led.get(red["id"])["status"] == "blocked"
        fix = led.get(outcomes[0].extra["bead"])
        assert "tests-failed" in fix["labels"] and "exited 1" in fix["description"]
        landed = led.get(ok2["id"])["metadata"]["mq"]
        assert landed["merged"] != other, "the second green one was rebased onto the first"
        assert led.get(ok1["id"])["metadata"]["mq"]["merged"] == good
    repo = town.repo_dir("textkit")
    assert _main(town) == landed["merged"]
    tree = git(repo, "ls-tree", "--name-only", "main").split()
    assert "NOTES.md" in tree and "OTHER.md" in tree
    assert git(repo, "show", "main:README.md") != "BROKEN\n", "red work never reached main"
    assert git(repo, "rev-list", "--count", f"{base}..main").strip() == "2"


def test_queue_order_is_priority_then_age_and_old_requests_are_never_starved(
        tmp_path: Path) -> None:
    town = make_town(tmp_path, push=False, test=[])
    with town.ledger() as led:
        # one transaction: one clock reading, so all three share created_at and the tie
        # between the two priority-1 requests is broken by their ids, chosen here (the
        # later-created one sorts first), never by random ids or microseconds
        with led.transaction() as t:
            old = _mr(t, "x/old", "0" * 40, AUTHOR_A, priority=3, id="mq-c")
            same = _mr(t, "x/same", "2" * 40, AUTHOR_A, priority=1, id="mq-b")
            urgent = _mr(t, "x/urgent", "1" * 40, AUTHOR_A, priority=1, id="mq-a")
        assert old["created_at"] == same["created_at"] == urgent["created_at"]
        assert [b["id"] for b in queue(led, aging=600)] == ["mq-a", "mq-b", "mq-c"]
        # a stream of fresh priority-0 requests, one per round, 10 minutes apart: the old
        # priority-3 request still reaches the head after a few rounds
        now = __import__("time").time()
        heads = []
        for rnd in range(8):
            fresh = {"id": f"fresh-{rnd}", "priority": 0, "created_at": _ts(now + rnd * 600)}
            beads = [dict(old), fresh]
            beads.sort(key=lambda b: (effective_priority(b, 600, now + rnd * 600),
                                      b["created_at"], b["id"]))
            heads.append(beads[0]["id"])
            if heads[-1] == old["id"]:
                break
        assert heads[-1] == old["id"] and len(heads) <= 5, heads
        # without aging (a queue ordered by priority alone) it would wait for ever
        never = [min([dict(old), {"id": "f", "priority": 0, "created_at": _ts(now)}],
                     key=lambda b: (effective_priority(b, 1e12, now + 8 * 600),
                                    b["created_at"]))["id"]]
        assert never == ["f"]


def _ts(epoch: float) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(epoch))


def test_a_landing_interrupted_by_a_crash_resumes_without_landing_twice(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    town = make_town(tmp_path, push=False, test=[])
    base = _main(town)
    commit = _branch(town, tmp_path, "ada/feature", {"FEATURE.md": "x\n"})
    _branch(town, tmp_path, "bo/first", {"FIRST.md": "y\n"})
    with town.ledger(controller_actor(town)) as led:
        # make main move so the feature really is rebased (its landed commit is new)
        git(town.repo_dir("textkit"), "update-ref", "refs/heads/main",
            git(town.repo_dir("textkit"), "rev-parse", "bo/first").strip())
        mr = _mr(led, "ada/feature", commit, AUTHOR_A)
        crashing = _refinery(town, led)

        def die(*_a: Any, **_k: Any) -> Any:
            raise KeyboardInterrupt("the controller died right after moving main")

        monkeypatch.setattr(crashing, "_finish", die)
        with pytest.raises(KeyboardInterrupt):
            crashing.run_target("textkit", "main")
        moved = _main(town)
        assert moved != base and led.get(mr["id"])["status"] == "in_progress"
        landing = led.get(mr["id"])["metadata"]["mq"]["landing"]
        assert landing["new"] == moved, "the plan was on disk before main moved"

        restarted = _refinery(town, led)
        outcomes = restarted.run_target("textkit", "main")
        assert [o.result for o in outcomes] == ["merged"]
        assert _main(town) == moved, "not landed a second time"
        landed = [e for e in led.events(types=["merge.landed"])]
        assert len(landed) == 1 and landed[0]["payload"]["resumed"] is True
        assert led.get(mr["id"])["status"] == "closed"


def test_the_rig_land_command_replaces_the_fast_forward(tmp_path: Path) -> None:
    out = tmp_path / "landed.txt"
    town = make_town(tmp_path, push=False, test=[])
    text = Path(town.config_path).read_text().replace(
        "[rigs.textkit]\n", "[rigs.textkit]\nland = " + json.dumps(
            f"{sys.executable} -c \"import sys; open({str(out)!r}, 'w').write(' '.join("
            "sys.argv[1:]))\" {branch} {commit} {target} {mr}") + "\n", 1)
    Path(town.config_path).write_text(text)
    town.reload()
    before = _main(town)
    commit = _branch(town, tmp_path, "ada/pr", {"PR.md": "z\n"})
    with town.ledger(controller_actor(town)) as led:
        mr = _mr(led, "ada/pr; rm -rf /", commit, AUTHOR_A)
        outcomes = _refinery(town, led).run_target("textkit", "main")
    assert [o.result for o in outcomes] == ["merged"]
    assert out.read_text() == f"ada/pr; rm -rf / {commit} main {mr['id']}", \
        "placeholders are filled in as single arguments, never through a shell"
    assert _main(town) == before, "the project lands through its own tool"


def test_gt_mq_lists_retries_and_rejects(tmp_path: Path) -> None:
    town = make_town(tmp_path, push=False, test=[])
    one = _branch(town, tmp_path, "ada/one", {"README.md": "one\n"})
    two = _branch(town, tmp_path, "bo/two", {"README.md": "two\n"})
    with town.ledger(controller_actor(town)) as led:
        a, b = _mr(led, "ada/one", one, AUTHOR_A, 1), _mr(led, "bo/two", two, AUTHOR_B, 2)
    listed = gt_json(town, "mq", "list")
    assert [(m["id"], m["state"]) for m in listed] == [(a["id"], "queued"), (b["id"], "queued")]
    with town.ledger(controller_actor(town)) as led:
        _refinery(town, led).run_target("textkit", "main")
    assert gt_json(town, "mq", "status", b["id"])["state"] == "conflict"
    assert [(m["id"], m["state"]) for m in gt_json(town, "mq", "list")] == [
        (b["id"], "conflict")], "landed ones leave the list; sent-back ones stay in it"
    retried = gt_json(town, "mq", "retry", b["id"])
    assert retried["state"] == "queued" and retried["status"] == "open"
    assert "conflict" not in (Ledger.open(town.db_url()).get(b["id"]).get("labels") or [])
    gt(town, "mq", "reject", b["id"], "-r", "superseded by a better approach")
    with Ledger.open(town.db_url()) as led:
        gone = led.get(b["id"])
        assert gone["status"] == "closed" and "rejected" in gone["labels"]
        mail = [m["title"] for m in led.list(Filter(issue_type=["message"], assignee=AUTHOR_B))]
    assert f"Merge request {b['id']} rejected" in mail
    shown = gt(town, "mq", "list", "--all").stdout
    assert "merged" in shown and "rejected" in shown
    landed = gt(town, "mq", "retry", a["id"], check=False)
    assert landed.returncode == 4 and "already landed" in landed.stderr
