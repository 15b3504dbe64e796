"""Chaos: the controller is killed with SIGKILL and started again.

Its state lives in the ledger (the event cursor, merge requests, hooks), so the
restarted controller carries on: every closed step still gets exactly one
dispatch, every merge request lands exactly once.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agents.controlkit import (
    agent_cmd,
    events,
    make_town,
    pause,
    running,
    session_env,  # noqa: F401 - a fixture
    wait_events,
)
from agents.townkit import wait_for
from gastown.controller.daemon import read_state
from gastown.controller.service import is_running, up
from gastown.demo.sample import TEST_ARGS
from gastown.town.sling import sling

pytestmark = pytest.mark.usefixtures("session_env")


def _kill_controller(town: object) -> None:
    pid = read_state(town)["pid"]  # type: ignore[arg-type]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not is_running(town), 5, what="the killed controller's lock to go")  # type: ignore[arg-type]


def test_a_killed_controller_restarts_with_nothing_lost_or_done_twice(tmp_path: Path) -> None:
    # agents wait up to 120 s for a nudge: while the controller is dead, they wait
    agents = {n: agent_cmd("--nudge-timeout", "120", "--step-delay", "0.3")
              for n in ("ada", "bo")}
    town = make_town(tmp_path, agents=agents)
    with running(town):
        a = sling(town, "engineer-in-box", "ada", {"feature": "slugify"}, nudge=False).id
        b = sling(town, "engineer-in-box", "bo", {"feature": "word frequencies"},
                  nudge=False).id
        wait_events(town, "dispatch", 2)
        _kill_controller(town)
        # both agents finish the step in hand, then sit waiting for a nudge nobody sends
        wait_for(lambda: len(events(town, "bead.closed")) >= 4, 20, what="steps to close")
        pause(1.0)
        stuck = len(events(town, "bead.closed"))
        pause(1.0)
        assert len(events(town, "bead.closed")) == stuck, "no progress without a controller"
        assert up(town)["started"]
        landed = wait_events(town, "merge.landed", 2, timeout=90)
        evs = events(town)
    steps = {e["seq"]: e["bead_id"] for e in evs if e["type"] == "bead.closed"
             and e["bead_id"].startswith((a + ".", b + "."))}
    assert sorted(steps.values()) == sorted(f"{r}.{n}" for r in (a, b) for n in range(1, 6))
    afters = collections.Counter(seq for e in evs if e["type"] == "dispatch"
                                 for seq in e["payload"].get("covers") or [e["payload"]["after"]])
    roots_closed = {e["seq"] for e in evs if e["type"] == "bead.closed" and e["bead_id"] in (a, b)}
    assert set(steps) <= set(afters), "every closed step was dispatched: nothing lost"
    assert set(afters) - set(steps) <= roots_closed, "(and the molecules' own closes)"
    assert max(afters.values()) == 1, "and none twice"
    assert sorted(e["payload"]["source_bead"] for e in landed) == sorted([a, b])
    assert len([e for e in evs if e["type"] == "merge.landed"]) == 2
    assert [e["type"] for e in evs if e["type"].startswith("controller.")] == [
        "controller.started", "controller.started"], "the killed one never said goodbye"
    subjects = subprocess.run(["git", "log", "--format=%s", "main"], cwd=tmp_path / "sample",
                              capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(subjects) == len(set(subjects)) == 1 + 4 + 4, "each commit landed once"


def test_a_controller_killed_while_landing_resumes_the_merge_once(tmp_path: Path) -> None:
    # a slow test command: the controller dies while it runs
    slow = [sys.executable, "-c",
            "import subprocess, sys, time; time.sleep(2); "
            f"sys.exit(subprocess.call([sys.executable, *{TEST_ARGS!r}]))"]
    town = make_town(tmp_path, agents={"ada": agent_cmd()}, test=slow)
    with running(town):
        root = sling(town, "engineer-in-box", "ada", {"feature": "slugify"}, nudge=False).id
        mr = wait_events(town, "bead.claimed", where=lambda e: e["actor"] == "t/controller",
                         timeout=60)[0]["bead_id"]
        pause(0.5)
        _kill_controller(town)
        assert up(town)["started"]
        landed = wait_events(town, "merge.landed", timeout=60)
        pause(0.5)
        evs = events(town)
    assert [e["bead_id"] for e in evs if e["type"] == "merge.landed"] == [mr]
    assert landed[0]["payload"]["source_bead"] == root
    log = subprocess.run(["git", "log", "--format=%s", "main"], cwd=tmp_path / "sample",
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(log) == len(set(log)) == 5, "the feature's commits are on main once"
    assert not (tmp_path / "town" / "rigs" / "textkit" / "refinery" / mr).exists(), \
        "the scratch worktree of the killed run was cleaned up"
