"""End to end, through the command line only: a town, a rig, agents, work slung and done.

The agents are ``command`` agents running ``tests/agents/disciplined_agent.py``:
they prime, claim the current step, edit and commit in their worktree, close the
step, go on to the next, and finish with ``gt done`` -- with nothing but their
session's environment.  No model is involved; everything else is real (git, tmux,
processes, the SQLite ledger).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from agents.townkit import DISCIPLINED, ECHO, git, gt, gt_json, make_repo, teardown_town, wait_for
from gastown import Ledger
from gastown.town.core import Town
from gastown.town.text import sanitize

STEPS = ["Design", "Implement", "Review the change to", "Test", "Submit"]

pytest_plugins = ("agents.fixtures",)


@pytest.fixture
def cli_town(tmp_path: Path) -> Path:
    """``gt init`` + ``gt rig add`` over a fresh repository, as a new user would."""
    src = make_repo(tmp_path / "project")
    root = tmp_path / "town"
    gt(tmp_path, "init", str(root), "--email", "bots@example.com")
    gt(root, "rig", "add", "app", str(src))
    try:
        yield root
    finally:
        teardown_town(Town(str(root)))


def _ledger(root: Path) -> Ledger:
    return Ledger.open(str(root / ".beads" / "beads.db"))


def _agent_cmd(*extra: str) -> str:
    return f"{sys.executable} {DISCIPLINED} --once --wait 60 {' '.join(extra)}".strip()


def _wait_done(root: Path, bead_id: str, timeout: float = 90) -> dict:
    def finished() -> dict | None:
        for ev in gt_json(root, "events", "--type", "done"):
            if ev["bead_id"] == bead_id:
                return ev
        return None

    try:
        return wait_for(finished, timeout, 0.3, what=f"gt done for {bead_id}")
    except AssertionError:
        logs = "\n".join(p.read_text(errors="replace")[-3000:]
                         for p in (root / ".gt" / "logs").glob("*.log"))
        raise AssertionError(f"no gt done for {bead_id}; agent logs:\n{logs}") from None


def test_a_command_agent_completes_engineer_in_box(cli_town: Path) -> None:
    root = cli_town
    gt(root, "agent", "add", "eng", "--rig", "app", "--preset", "command", "--command",
       _agent_cmd())
    slung = gt_json(root, "sling", "engineer-in-box", "eng", "--var", "feature=search")
    mol = slung["id"]
    assert slung["session"] == "started" and slung["agent"] == "eng"
    done = _wait_done(root, mol)
    actor = "app/worker/eng"
    assert done["actor"] == actor and done["payload"]["status"] == "completed"

    with _ledger(root) as led:
        steps = [led.get(f"{mol}.{n}") for n in range(1, 6)]
        root_bead = led.get(mol)
        mr = led.get(done["payload"]["mr"])
    assert [s["title"] for s in steps] == [f"{s} search" for s in STEPS[:2]] + [
        "Review the change to search", "Test search", "Submit search for merge"]
    assert all(s["status"] == "closed" and s["assignee"] == actor for s in steps)
    assert root_bead["status"] == "closed", "the molecule closed itself with its last step"

    # every commit carries the agent's name; one commit per step, in order
    branch = f"eng/{mol}"
    log = git(root / "rigs" / "app" / "repo.git", "log", "--format=%an|%ae|%s",
              f"main..{branch}").splitlines()
    assert [line.split("|")[0] for line in log] == [actor] * 5
    assert {line.split("|")[1] for line in log} == {"bots@example.com"}
    assert [line.split("|")[2] for line in reversed(log)] == [
        f"{s['id']}: {s['title']}" for s in steps]
    assert mr["issue_type"] == "merge-request" and mr["metadata"]["branch"] == branch
    assert mr["metadata"]["commit"] == git(root / "rigs" / "app" / "repo.git", "rev-parse",
                                           branch).strip()

    # the events tell the whole story, each with its actor
    events = gt_json(root, "events")
    assert all({"type", "actor", "bead_id", "ts", "seq"} <= set(e) for e in events)
    story = [(e["type"], e["actor"], e["bead_id"]) for e in events]

    def at(item: tuple) -> int:
        assert item in story, f"missing event {item}"
        return story.index(item)

    order = [at(("sling", "tester", mol)),
             at(("session.started", "tester", None))]
    for s in steps:
        order += [at(("bead.claimed", actor, s["id"])), at(("bead.closed", actor, s["id"]))]
    order += [at(("bead.closed", actor, mol)), at(("merge.requested", actor, mr["id"])),
              at(("done", actor, mol))]
    assert order == sorted(order), "the events are in the order things happened"
    assert any(t == "mol.poured" and a == "tester" for t, a, _ in story)

    # afterwards: the hook is free, the session ended cleanly, status says so
    assert gt_json(root, "hook", "eng") is None
    status = gt_json(root, "status")
    eng = next(a for a in status["agents"] if a["name"] == "eng")
    assert eng["hook"] is None
    info = wait_for(lambda: (s := gt_json(root, "session", "status", "eng"))["state"] ==
                    "exited" and s["exit_status"] is not None and s, 10,
                    what="the agent to exit after --once")
    assert info["exit_status"] == 0
    assert "Done (completed)" in (root / ".gt" / "logs" / "eng.log").read_text()
    feed = gt(root, "feed", "--once").stdout
    assert "eng" in feed and "done" in feed


def test_a_pool_of_headless_workers_runs_two_molecules_at_once(cli_town: Path) -> None:
    root = cli_town
    cfg = root / "town.toml"
    cfg.write_text(cfg.read_text() + (
        '\n[pools.crew]\nrig = "app"\nrole = "worker"\npreset = "command"\n'
        # each step takes a second, so both workers still hold their molecule when the
        # third sling comes (each sling waits for its session to come up first)
        'provider = "subprocess"\nmax = 2\n'
        f'command = {json.dumps(_agent_cmd("--step-delay 1"))}\n'))
    a = gt_json(root, "sling", "engineer-in-box", "app", "--var", "feature=alpha")
    b = gt_json(root, "sling", "engineer-in-box", "app", "--var", "feature=beta")
    assert {a["agent"], b["agent"]} == {"crew-1", "crew-2"}
    full = gt(root, "sling", "engineer-in-box", "app", "--var", "feature=gamma", check=False)
    assert full.returncode == 4 and "pool crew is full" in full.stderr
    for slung in (a, b):
        ev = _wait_done(root, slung["id"])
        assert ev["actor"] == f"app/worker/{slung['agent']}"
        log = git(root / "rigs" / "app" / "repo.git", "log", "--format=%an",
                  f"main..{slung['agent']}/{slung['id']}").split()
        assert log == [f"app/worker/{slung['agent']}"] * 5
    assert (root / ".gt" / "logs" / "crew-1.log").exists(), "headless output goes to .gt/logs"


def test_resuming_a_half_done_molecule_skips_closed_steps(cli_town: Path) -> None:
    root = cli_town
    gt(root, "agent", "add", "late", "--rig", "app", "--preset", "command", "--command",
       _agent_cmd())
    with _ledger(root) as led:
        from gastown.chemistry import pour

        mol = pour(led, "engineer-in-box", {"feature": "resume"}, actor="tester")["id"]
        led.close_bead(f"{mol}.1")
        led.close_bead(f"{mol}.2")
    gt(root, "sling", mol, "late")
    _wait_done(root, mol)
    claimed = [e["bead_id"] for e in gt_json(root, "events", "--type", "bead.claimed")]
    assert claimed == [f"{mol}.3", f"{mol}.4", f"{mol}.5"], "closed steps stay closed"


def test_hostile_titles_and_vars_are_data_everywhere(cli_town: Path, tmp_path: Path) -> None:
    root = cli_town
    canary = tmp_path / "pwned"
    evil = f"$(touch {canary}); `touch {canary}` \\; #{{pane_pid}} && touch {canary};"
    gt(root, "agent", "add", "eng", "--rig", "app", "--preset", "command", "--command",
       _agent_cmd())
    slung = gt_json(root, "sling", "engineer-in-box", "eng", "--var", f"feature={evil}")
    _wait_done(root, slung["id"])
    subjects = git(root / "rigs" / "app" / "repo.git", "log", "--format=%s",
                   f"eng/{slung['id']}").splitlines()
    assert subjects[0] == f"{slung['id']}.5: Submit {evil} for merge"

    # a title typed into a live session by the sling nudge arrives verbatim
    heard = tmp_path / "heard.txt"
    gt(root, "agent", "add", "ears", "--rig", "app", "--preset", "command", "--command",
       f"{sys.executable} {ECHO} {heard}")
    with _ledger(root) as led:
        first = led.create("warm up")
        hostile = led.create(f"Fix {evil} \x1b[31m now")
    gt(root, "sling", first["id"], "ears")
    wait_for(lambda: "ready>" in gt(root, "peek", "ears").stdout, 10, what="the echo agent")
    gt(root, "hook", "clear", "ears")
    out = gt_json(root, "sling", hostile["id"], "ears")
    assert out["nudge"]["verified"]
    line = wait_for(lambda: heard.exists() and heard.read_text(), 10, what="the nudge")
    assert line == sanitize(f"[gt] {hostile['id']} is on your hook: {hostile['title']}. "
                            "Run `gt prime` and do it now.") + "\n"
    status = gt(root, "status").stdout
    assert "\x1b" not in status
    assert not canary.exists(), "a title or a variable executed something"
    assert sorted(os.listdir(root / "rigs" / "app" / "worktrees")) == ["ears", "eng"]
