"""The controller daemon: one per town, dispatch within a second, pools, idle cost.

Real everything: the daemon is a separate process started by ``gt up``, agents
are scripted ``command`` agents in tmux sessions on the town's private socket,
the rig is a real git repository with a real test suite.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from agents.controlkit import (
    agent_cmd,
    cpu_seconds,
    events,
    ledger,
    logs,
    make_town,
    pause,
    running,
    session_env,  # noqa: F401 - a fixture
    wait_events,
)
from agents.townkit import gt, gt_json, sleeper, teardown_town, wait_for
from gastown.controller.daemon import Controller, read_state
from gastown.controller.service import down, is_running, up
from gastown.errors import ConflictError
from gastown.town.slinging import sling

pytestmark = pytest.mark.usefixtures("session_env")


def test_up_is_one_per_town_and_down_stops_it(tmp_path: Path) -> None:
    town = make_town(tmp_path)
    try:
        first = gt_json(town, "up")
        assert first["started"] and first["running"] and first["pid"] != os.getpid()
        again = gt_json(town, "up")
        assert not again["started"] and again["pid"] == first["pid"], "one controller per town"
        with pytest.raises(ConflictError, match=str(first["pid"])):
            Controller(town).acquire(wait=0.2)
        status = gt_json(town, "status")
        assert status["controller"]["running"] and status["controller"]["pid"] == first["pid"]
        assert "Controller: up (pid" in gt(town, "status").stdout
        wait_for(lambda: read_state(town).get("ticks"), 10, what="a first tick")

        stopped = gt_json(town, "down")
        assert stopped["stopped"] and not stopped["killed"], "SIGTERM stops it cleanly"
        assert not is_running(town)
        kinds = [e["type"] for e in events(town, "controller.*")]
        assert kinds == ["controller.started", "controller.stopped"]
        assert "Controller: down" in gt(town, "status").stdout
        assert "No controller was running" in gt(town, "down").stdout

        # SIGKILL leaves no stale lock: the kernel drops it with the process
        pid = up(town)["pid"]
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not is_running(town), 5, what="the lock to be released")
        assert up(town)["started"]
    finally:
        down(town, timeout=10)
        teardown_town(town)


def test_each_closed_step_is_dispatched_to_its_agent_within_a_second(tmp_path: Path) -> None:
    # the agent waits up to 120 s for a nudge after each step: only dispatch moves it on
    town = make_town(tmp_path, agents={"ada": agent_cmd("--nudge-timeout", "120")})
    with running(town):
        root = sling(town, "engineer-in-box", "ada", {"feature": "slugify"}, nudge=False).id
        done = wait_events(town, "done", timeout=60)
        assert done[0]["bead_id"] == root
        evs = events(town)
    closed = {e["seq"]: e for e in evs if e["type"] == "bead.closed"
              and e["actor"] == "textkit/worker/ada" and e["bead_id"].startswith(root + ".")}
    dispatches = [e for e in evs if e["type"] == "dispatch"]
    assert len(closed) == 5
    by_after = {}
    for d in dispatches:
        assert d["payload"]["after"] not in by_after, "each closed step is dispatched once"
        by_after[d["payload"]["after"]] = d
    assert set(by_after) == set(closed), "every closed step was dispatched"
    for seq, d in by_after.items():
        p = d["payload"]
        assert p["agent"] == "ada" and p["delivered"] and p["verified"]
        assert d["seq"] > seq and p["latency_ms"] < 1000, p
    # the next step each nudge named is the one the agent claimed next
    claims = [e["bead_id"] for e in evs if e["type"] == "bead.claimed"
              and e["actor"] == "textkit/worker/ada"]
    named = [d["payload"]["step"] for d in sorted(dispatches, key=lambda e: e["seq"])]
    assert named[:-1] == claims[1:] and named[-1] is None, "the last nudge says gt done"
    log = Path(town.gt_dir, "logs", "ada.log").read_text()
    assert log.count("nudged after") == 5 and "looking anyway" not in log


def test_an_idle_controller_is_cheap_and_wakes_nobody(tmp_path: Path) -> None:
    town = make_town(tmp_path, agents={f"s{i}": sleeper() for i in range(3)},
                     extra_toml="[controller]\ntick = 0.5\n")
    with running(town):
        for i in range(3):
            with ledger(town) as led:
                bead = led.create(f"job {i}")
            sling(town, bead["id"], f"s{i}", nudge=False)
        wait_for(lambda: (read_state(town).get("ticks") or 0) >= 2, 10, what="two ticks")
        pid = read_state(town)["pid"]
        with ledger(town) as led:
            since = led.last_event_seq()
        ticks0, cpu0, t0 = read_state(town)["ticks"], cpu_seconds(pid), time.monotonic()
        pause(5.0)
        share = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
        ticks = read_state(town)["ticks"] - ticks0
        with ledger(town) as led:
            later = led.events(since_seq=since)
    assert ticks >= 8, "the controller kept ticking (patrol, pools, convoys, merges)"
    assert [e["type"] for e in later] == [], "nothing changed, so nothing was written or sent"
    # the budget is 2 % of a core (benchmarks/README.md); leave room for a busy CI host
    assert share < 0.05, f"idle controller used {share:.1%} of a core"


def test_ready_work_routed_to_a_pool_starts_workers_up_to_its_max(tmp_path: Path) -> None:
    town = make_town(tmp_path, provider="subprocess", extra_toml=(
        '[pools.crew]\nrig = "textkit"\nrole = "worker"\npreset = "command"\nmax = 2\n'
        f'command = {json.dumps(agent_cmd("--wait", "5"))}\n'
        + "[controller]\ntick = 0.3\n"))
    with ledger(town) as led:
        jobs = [led.create(f"small job {i}", labels=["pool:crew"])["id"] for i in range(3)]
    with running(town):
        done = wait_events(town, "done", 3, timeout=60)
        evs = events(town)
    assert sorted(e["bead_id"] for e in done) == sorted(jobs)
    pinned = [e for e in evs if e["type"] == "hook.pinned"]
    workers = {e["payload"]["agent"].rsplit("/", 1)[-1] for e in pinned}
    assert workers <= {"crew-1", "crew-2"}, "never more workers than the pool's max"
    # at no moment did three beads sit on hooks at once
    live: set[str] = set()
    for e in evs:
        if e["type"] == "hook.pinned":
            live.add(e["bead_id"])
        elif e["type"] == "done":
            live.discard(e["bead_id"])
        assert len(live) <= 2, logs(town)
    with ledger(town) as led:
        assert all(led.get(j)["status"] == "closed" for j in jobs)
