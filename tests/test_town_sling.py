"""Sling: targets, pools, idempotency, hooks (real tmux sessions, real worktrees)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agents.townkit import add_agent, git, gt, gt_json, sleeper
from gastown.errors import ConflictError, NotFoundError, UsageError
from gastown.town.config import append_table
from gastown.town.core import Town
from gastown.town.providers import TmuxProvider
from gastown.town.slinging import sling

pytest_plugins = ("agents.fixtures",)


def _events(town: Town, kind: str) -> list[dict]:
    return [e for e in gt_json(town, "events") if e["type"] == kind]


def test_sling_a_bead_pins_it_gives_a_worktree_and_starts_the_session(town: Town
                                                                      ) -> None:
    add_agent(town, "ann", sleeper())
    bead = town.ledger().create("Fix the flux capacitor")
    out = gt_json(town, "sling", bead["id"], "ann", "--no-nudge")
    assert out["id"] == bead["id"] and out["agent"] == "ann" and out["session"] == "started"
    assert out["branch"] == f"ann/{bead['id']}"
    with town.ledger() as led:
        got = led.get(bead["id"])
    assert got["status"] == "hooked" and got["assignee"] == "app/worker/ann"
    assert git(out["workdir"], "branch", "--show-current").strip() == out["branch"]
    assert TmuxProvider(town.gt_dir).sessions() == ["ann"]
    hook = gt_json(town, "hook", "ann")
    assert hook["id"] == bead["id"]
    sl = _events(town, "sling")
    assert len(sl) == 1 and sl[0]["actor"] == "tester" and sl[0]["bead_id"] == bead["id"]
    assert sl[0]["payload"]["agent"] == "ann"
    assert len(_events(town, "session.started")) == 1


def test_slinging_twice_dispatches_once(town: Town) -> None:
    add_agent(town, "ann", sleeper())
    bead = town.ledger().create("once")
    first = sling(town, bead["id"], "ann", nudge=False, actor="tester")
    again = sling(town, bead["id"], "ann", nudge=False, actor="tester")
    assert not first.already and again.already and again.agent == "ann"
    assert again.session == "running"
    assert len(_events(town, "sling")) == 1 and len(_events(town, "session.started")) == 1
    assert len(_events(town, "hook.pinned")) == 1


def test_formula_sling_is_idempotent_per_vars(town: Town) -> None:
    append_table(town.config_path, "pools.crew", {"rig": "app", "role": "worker",
                                                  "preset": "command", "command": sleeper(),
                                                  "max": 2})
    town.reload()
    a = gt_json(town, "sling", "engineer-in-box", "crew", "--var", "feature=search",
                "--no-nudge")
    b = gt_json(town, "sling", "engineer-in-box", "crew", "--var", "feature=search",
                "--no-nudge")
    assert a["poured"] and not b["poured"] and b["already"] and b["id"] == a["id"]
    assert b["agent"] == a["agent"] == "crew-1"
    c = gt_json(town, "sling", "engineer-in-box", "crew", "--var", "feature=other",
                "--no-nudge")
    assert c["poured"] and c["id"] != a["id"] and c["agent"] == "crew-2"
    assert len([e for e in gt_json(town, "events") if e["type"] == "mol.poured"]) == 2
    assert sorted(TmuxProvider(town.gt_dir).sessions()) == ["crew-1", "crew-2"]


def test_pools_have_a_maximum_and_rigs_sling_to_their_pool(town: Town) -> None:
    append_table(town.config_path, "pools.crew", {"rig": "app", "role": "worker",
                                                  "preset": "command", "command": sleeper(),
                                                  "max": 2})
    town.reload()
    led = town.ledger()
    beads = [led.create(f"job {i}") for i in range(3)]
    r1 = sling(town, beads[0]["id"], "app", nudge=False, actor="tester")  # rig -> its pool
    r2 = sling(town, beads[1]["id"], "crew", nudge=False, actor="tester")
    assert (r1.target_kind, r1.agent, r2.agent) == ("rig", "crew-1", "crew-2")
    assert Path(r1.workdir).name == "crew-1" and Path(r2.workdir).name == "crew-2"
    with pytest.raises(ConflictError, match="pool crew is full: all 2 workers"):
        sling(town, beads[2]["id"], "crew", nudge=False, actor="tester")
    assert led.get(beads[2]["id"])["status"] == "open", "a refused sling changes nothing"
    # a worker that finished frees its slot
    gt(town, "hook", "clear", "crew-1")
    r3 = sling(town, beads[2]["id"], "crew", nudge=False, actor="tester")
    assert r3.agent == "crew-1" and r3.branch == f"crew-1/{beads[2]['id']}"
    assert git(r3.workdir, "branch", "--show-current").strip() == r3.branch


def test_an_occupied_hook_is_refused(town: Town) -> None:
    add_agent(town, "ann", sleeper())
    led = town.ledger()
    a, b = led.create("a"), led.create("b")
    sling(town, a["id"], "ann", nudge=False, actor="tester")
    with pytest.raises(ConflictError, match=f"ann already has {a['id']} on its hook"):
        sling(town, b["id"], "ann", nudge=False, actor="tester")


def test_bad_targets_and_arguments(town: Town) -> None:
    add_agent(town, "ann", sleeper())
    bead = town.ledger().create("x")
    with pytest.raises(NotFoundError, match="no agent, pool or rig named 'zed'"):
        sling(town, bead["id"], "zed", actor="tester")
    with pytest.raises(UsageError, match="--var applies to formulas"):
        sling(town, bead["id"], "ann", {"k": "v"}, actor="tester")
    with pytest.raises(UsageError, match="name a target"):
        sling(town, bead["id"], None, actor="tester")
    with pytest.raises(UsageError, match="rig app has no pool"):
        sling(town, bead["id"], "app", actor="tester")
    proc = gt(town, "sling", "no-such-formula", "ann", check=False)
    assert proc.returncode == 3 and "no-such-formula" in proc.stderr
    town.ledger().close_bead(bead["id"])
    with pytest.raises(ConflictError, match="is closed"):
        sling(town, bead["id"], "ann", actor="tester")


def test_sling_to_a_running_session_nudges_it(town: Town, tmp_path: Path) -> None:
    from agents.townkit import ECHO, wait_for

    heard = tmp_path / "heard.txt"
    add_agent(town, "ears", [sys.executable, str(ECHO), str(heard)])
    led = town.ledger()
    first, second = led.create("first"), led.create("second one")
    sling(town, first["id"], "ears", actor="tester")  # starts the session: no nudge needed
    wait_for(lambda: "ready>" in gt(town, "peek", "ears").stdout, 10, what="the agent")
    gt(town, "hook", "clear", "ears")
    out = sling(town, second["id"], "ears", actor="tester")
    assert out.session == "running" and out.nudge and out.nudge["delivered"]
    line = wait_for(lambda: heard.exists() and heard.read_text(), 10, what="the nudge")
    assert line == f"[gt] {second['id']} is on your hook: second one. " \
                   "Run `gt prime` and do it now.\n"


def test_concurrent_slings_never_overfill_a_pool(town: Town) -> None:
    import subprocess

    from agents.townkit import BIN, clean_env

    append_table(town.config_path, "pools.solo", {"rig": "app", "role": "worker",
                                                  "preset": "command", "command": sleeper(),
                                                  "max": 1})
    town.reload()
    led = town.ledger()
    beads = [led.create(f"race {i}")["id"] for i in range(3)]
    procs = [subprocess.Popen([str(BIN / "gt"), "sling", b, "solo", "--town", town.root,
                               "--no-nudge", "--json"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=clean_env())
             for b in beads]
    results = [(p.wait(60), p.stderr.read() if p.stderr else "") for p in procs]
    assert sorted(code for code, _ in results) == [0, 4, 4], results
    assert sum("pool solo is full" in err for _, err in results) == 2
    hooked = [b for b in beads if led.get(b)["status"] == "hooked"]
    assert len(hooked) == 1 and led.get(hooked[0])["assignee"] == "app/worker/solo-1"
    assert TmuxProvider(town.gt_dir).sessions() == ["solo-1"]


def test_an_agent_whose_program_is_missing_gets_no_work(town: Town, tmp_path: Path) -> None:
    add_agent(town, "ada", ["definitely-not-installed-agent-cli", "--flag"])
    bead = town.ledger().create("needs a real program")
    before = town.ledger().last_event_seq()
    proc = gt(town, "sling", bead["id"], "ada", check=False)
    assert proc.returncode == 9 and "'definitely-not-installed-agent-cli'" in proc.stderr
    assert "not installed or not on PATH" in proc.stderr
    assert town.ledger().get(bead["id"])["status"] == "open"
    assert town.ledger().last_event_seq() == before
