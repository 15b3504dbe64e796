"""Chaos: the controller is killed with SIGKILL and started again.

Its state lives in the ledger (the event cursor, merge requests, hooks), so the
restarted controller carries on: every closed step still gets exactly one
dispatch, every merge request lands exactly once.  ``GT_CHAOS_SEED`` sets the
seed of the random kills (a longer run repeats the test with several seeds); the
counts go to :func:`helpers.robustness_report.report`.
"""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import time
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
from gastown.town.providers.tmux import PAUSE_VAR
from gastown.town.slinging import sling
from helpers.robustness_report import report

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
        assert up(town)["started"]
        landed = wait_events(town, "merge.landed", 2, timeout=90)
        evs = events(town)
    # no progress without a controller: the steps closed while it was dead were
    # dispatched by the restarted one, and nothing was claimed before that
    restart = [e["seq"] for e in evs if e["type"] == "controller.started"][-1]
    closed_while_down = [e["seq"] for e in evs if e["type"] == "bead.closed"
                         and e["seq"] < restart][2:4]
    assert len(closed_while_down) == 2
    for seq in closed_while_down:
        answer = [e for e in evs if e["type"] == "dispatch" and e["payload"]["after"] == seq]
        assert len(answer) == 1 and answer[0]["seq"] > restart
    assert not [e for e in evs if e["type"] == "bead.claimed" and e["actor"] != "t/controller"
                and closed_while_down[-1] < e["seq"] < restart]
    steps = {e["seq"]: e["bead_id"] for e in evs if e["type"] == "bead.closed"
             and e["bead_id"].startswith((a + ".", b + "."))}
    assert sorted(steps.values()) == sorted(f"{r}.{n}" for r in (a, b) for n in range(1, 6))
    afters = collections.Counter(seq for e in evs if e["type"] == "dispatch"
                                 for seq in e["payload"].get("covers") or [e["payload"]["after"]])
    roots_closed = {e["seq"] for e in evs if e["type"] == "bead.closed" and e["bead_id"] in (a, b)}
    merges = [e for e in evs if e["type"] == "merge.landed"]
    report("controller-kill9-while-agents-wait", cases=len(steps), kills=1,
           acked=len(steps), lost=len(set(steps) - set(afters)) + max(0, 2 - len(merges)),
           doubled=sum(1 for n in afters.values() if n > 1) + max(0, len(merges) - 2))
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


def test_repeated_kills_at_random_instants_lose_no_dispatch(tmp_path: Path) -> None:
    # every nudge is slowed between typing and Enter, so kills land inside that window
    # too; bounded: at most ~30 s of kills, then the town finishes on its own
    rng = random.Random(int(os.environ.get("GT_CHAOS_SEED", "7")))
    agents = {n: agent_cmd("--nudge-timeout", "120") for n in ("ada", "bo")}
    town = make_town(tmp_path, agents=agents)

    def up_slow() -> None:
        os.environ[PAUSE_VAR] = "typed:0.4"
        try:
            assert up(town)["started"]
        finally:
            del os.environ[PAUSE_VAR]

    with running(town):
        _kill_controller(town)
        up_slow()
        a = sling(town, "engineer-in-box", "ada", {"feature": "slugify"}, nudge=False).id
        b = sling(town, "engineer-in-box", "bo", {"feature": "word frequencies"},
                  nudge=False).id
        kills = 0
        deadline = time.monotonic() + 30
        while len(events(town, "done")) < 2 and time.monotonic() < deadline:
            pause(rng.uniform(0.2, 1.5))
            _kill_controller(town)
            kills += 1
            up_slow()
        try:
            done = wait_events(town, "done", 2, timeout=120)
            landed = wait_events(town, "merge.landed", 2, timeout=120)
        finally:
            evs = events(town)
            steps = {e["seq"] for e in evs if e["type"] == "bead.closed"
                     and e["bead_id"].startswith((a + ".", b + "."))}
            afters = collections.Counter(
                seq for e in evs if e["type"] == "dispatch"
                for seq in e["payload"].get("covers") or [e["payload"]["after"]])
            report("controller-kill9", cases=len(steps), kills=kills, acked=len(steps),
                   lost=len(steps - set(afters)) + (10 - len(steps)),
                   doubled=sum(1 for n in afters.values() if n > 1))
    assert kills >= 3, "the controller was killed again and again"
    assert sorted(e["bead_id"] for e in done) == sorted([a, b])
    assert sorted(e["payload"]["source_bead"] for e in landed) == sorted([a, b])
    assert len(steps) == 10 and steps <= set(afters), "every closed step was dispatched"
    assert max(afters.values()) == 1, "and none twice"


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
    merges = [e for e in evs if e["type"] == "merge.landed"]
    report("controller-kill9-while-landing", cases=1, kills=1, acked=1,
           lost=int(not merges), doubled=max(0, len(merges) - 1))
    assert [e["bead_id"] for e in merges] == [mr]
    assert landed[0]["payload"]["source_bead"] == root
    log = subprocess.run(["git", "log", "--format=%s", "main"], cwd=tmp_path / "sample",
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert len(log) == len(set(log)) == 5, "the feature's commits are on main once"
    assert not (tmp_path / "town" / "rigs" / "textkit" / "refinery" / mr).exists(), \
        "the scratch worktree of the killed run was cleaned up"
