"""The health patrol: dead sessions restarted on their hook, stalls, crash loops, manners.

Chaos by SIGKILL: a session killed in the middle of a step is restarted by the
controller, the agent resumes at its unfinished step and the work completes.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest

from agents.controlkit import (
    agent_cmd,
    events,
    ledger,
    logs,
    make_town,
    pause,
    running,
    session_env,  # noqa: F401 - a fixture
    wait_events,
)
from agents.townkit import gt, sleeper, wait_for
from gastown.chemistry.inspect import work_steps
from gastown.town.providers import TmuxProvider
from gastown.town.providers.base import SessionSpec
from gastown.town.sessions import Sessions
from gastown.town.slinging import sling

pytestmark = pytest.mark.usefixtures("session_env")

FAST = "[controller]\ntick = 0.3\n"


def test_a_session_killed_mid_step_is_restarted_and_resumes(tmp_path: Path) -> None:
    town = make_town(tmp_path, agents={"ada": agent_cmd("--step-delay", "1.0")},
                     extra_toml=FAST)
    with running(town):
        root = sling(town, "engineer-in-box", "ada", {"feature": "slugify"}, nudge=False).id
        victim = f"{root}.2"
        wait_events(town, "bead.claimed", where=lambda e: e["bead_id"] == victim)
        pid = TmuxProvider(town.gt_dir).pid("ada")
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)  # the whole session: launcher, agent, its tools
        restarted = wait_events(town, "patrol.restarted", timeout=20)
        assert restarted[0]["payload"]["agent"] == "ada"
        assert restarted[0]["payload"]["why"] == "dead" and restarted[0]["bead_id"] == root
        wait_events(town, "merge.landed", timeout=60)
        evs = events(town)
        with ledger(town) as led:
            steps = work_steps(led, root)
    assert [s["status"] for s in steps] == ["closed"] * 5
    closes = [e["bead_id"] for e in evs if e["type"] == "bead.closed"
              and e["bead_id"].startswith(root + ".")]
    assert sorted(closes) == sorted(s["id"] for s in steps), "each step closed exactly once"
    claims = [e["bead_id"] for e in evs if e["type"] == "bead.claimed"
              and e["bead_id"].startswith(root + ".")]
    assert claims.count(victim) == 1, "the killed step was resumed, not claimed again"
    assert f"resuming {victim}" in Path(town.gt_dir, "logs", "ada.log").read_text()
    assert len([e for e in evs if e["type"] == "patrol.restarted"]) == 1
    assert any(e["type"] == "patrol.digest" for e in evs), "the patrol recorded a digest"


def test_a_stalled_session_is_nudged_then_restarted(tmp_path: Path) -> None:
    town = make_town(tmp_path, agents={"idle": sleeper()}, extra_toml=FAST + (
        "[patrol]\nstall_after = 1.5\nrestart_after = 1.5\n"))
    with ledger(town) as led:
        job = led.create("a job the agent will sit on")["id"]
    sling(town, job, "idle", nudge=False)
    before = Sessions(town).info(town.agent("idle")).pid
    with running(town):
        nudged = wait_events(town, "patrol.nudged", timeout=20)
        restarted = wait_events(town, "patrol.restarted", timeout=20)
        after = wait_for(lambda: Sessions(town).info(town.agent("idle")).pid, 5,
                         what="the restarted session")
    assert nudged[0]["payload"]["agent"] == "idle" and nudged[0]["payload"]["delivered"]
    assert restarted[0]["payload"]["why"] == "stalled"
    assert nudged[0]["seq"] < restarted[0]["seq"], "a nudge first, a restart only after"
    assert after != before, "a new process runs on the same hook"
    with ledger(town) as led:
        assert led.get(job)["status"] == "hooked", "the work stayed on the hook"


def test_a_crash_loop_is_quarantined_and_the_owner_told(tmp_path: Path) -> None:
    town = make_town(tmp_path, agents={"bad": agent_cmd("--crash")}, extra_toml=FAST + (
        '[patrol]\nmax_restarts = 2\nwindow = 120\nnotify = "owner"\n'))
    with ledger(town) as led:
        job = led.create("work for a broken agent")["id"]
    sling(town, job, "bad", nudge=False)
    with running(town):
        quarantined = wait_events(town, "patrol.quarantined", timeout=30)
        pause(1.5)
        restarts = events(town, "patrol.restarted")
        assert len(restarts) == 2, "no restarts beyond the limit"
        with ledger(town) as led:
            mail = led.list(__import__("gastown").Filter(issue_type=["message"],
                                                         assignee="owner"))
        assert [m["title"] for m in mail] == ["Agent bad quarantined (crash loop)"]
        assert quarantined[0]["payload"] == {"agent": "bad", "restarts": 2, "notify": "owner"}
        assert "quarantined" in gt(town, "events", "--type", "patrol.*").stdout
        # a person starting it by hand lifts the quarantine (and is told it died again)
        again = gt(town, "session", "start", "bad", check=False)
        assert again.returncode == 9 and "exited at once (status 3)" in again.stderr
        wait_events(town, "patrol.released", timeout=10)


def test_the_patrol_never_kills_a_session_the_town_did_not_start(tmp_path: Path) -> None:
    town = make_town(tmp_path, agents={"mine": sleeper()}, extra_toml=FAST + (
        "[patrol]\nstall_after = 1\nrestart_after = 1\n"))
    with ledger(town) as led:
        job = led.create("work on a hand-started session")["id"]
    sling(town, job, "mine", nudge=False, start=False)
    os.makedirs(town.workdir(town.agent("mine")), exist_ok=True)
    provider = TmuxProvider(town.gt_dir)
    # a person's own program, on the town's socket under the agent's name: not started by gt
    provider.start(SessionSpec(name="mine", argv=[sys.executable, "-c",
                                                  "import time; time.sleep(120)"],
                               cwd=town.workdir(town.agent("mine"))))
    pid = provider.pid("mine")
    with running(town):
        wait_events(town, "patrol.nudged", timeout=20)
        digest = wait_events(town, "patrol.digest", where=lambda e: any(
            f["finding"] == "stalled-foreign" for f in e["payload"]["findings"]), timeout=20)
        pause(1.5)
        assert provider.pid("mine") == pid, "still the same process: " + logs(town)
        assert not events(town, "patrol.restarted"), "never restarted"
    assert digest[0]["payload"]["findings"][0]["agent"] == "mine"


def test_a_session_stopped_by_hand_stays_stopped(tmp_path: Path) -> None:
    town = make_town(tmp_path, agents={"held": sleeper()}, extra_toml=FAST)
    with ledger(town) as led:
        job = led.create("work a person paused")["id"]
    sling(town, job, "held", nudge=False)
    with running(town):
        wait_events(town, "controller.started")
        gt(town, "session", "stop", "held")
        pause(1.5)
        assert not Sessions(town).is_alive(town.agent("held")), "not started again"
        assert not events(town, "patrol.*"), "the patrol left it alone"
        gt(town, "session", "start", "held")
        pause(1.0)
        assert Sessions(town).is_alive(town.agent("held"))
        assert not events(town, "patrol.*"), "and did not touch the restarted one either"
