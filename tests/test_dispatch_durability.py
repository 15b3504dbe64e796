"""A controller killed while a dispatch is under way loses nothing, and sends it once.

The nudge of a closed step takes a while (tmux calls, the check that the text
arrived); a test hook (``GT_TEST_NUDGE_PAUSE``) stretches it so that the
controller can be killed with SIGKILL at a known instant: before it types, after
it typed, after it wrote its intent to press Enter, or after it pressed Enter.
The restarted controller must dispatch that step -- exactly once -- and the
molecule must still finish.  Killed after it pressed Enter but before it recorded
that, it must not send it again: the restarted controller finds its intent, sees
the agent moved on, and records it.  The counts go to
:func:`helpers.robustness_report.report`.
"""

from __future__ import annotations

import collections
import json
import os
import signal
from pathlib import Path

import pytest

from agents.controlkit import (
    agent_cmd,
    events,
    ledger,
    make_town,
    pause,
    running,
    session_env,  # noqa: F401 - a fixture
    wait_events,
)
from agents.townkit import gt, sleeper, wait_for
from gastown import Ledger
from gastown.controller.daemon import read_state
from gastown.controller.dispatch import INTENT_PREFIX, WAKE_PREFIX
from gastown.controller.service import LOG_NAME, is_running, up
from gastown.town.providers.tmux import PAUSE_VAR
from gastown.town.slinging import sling
from helpers.robustness_report import report

pytestmark = pytest.mark.usefixtures("session_env")


def _controller_log(town: object) -> str:
    return Path(town.gt_dir, "logs", LOG_NAME).read_text(errors="replace")  # type: ignore[attr-defined]


def _covered(town: object, root: str) -> bool:
    """Is every closed step of ``root`` answered by a ``dispatch`` event?"""
    evs = events(town)
    closes = {e["seq"] for e in evs if e["type"] == "bead.closed"
              and str(e["bead_id"]).startswith(root + ".")}
    afters = {seq for e in evs if e["type"] == "dispatch"
              for seq in e["payload"].get("covers") or [e["payload"].get("after")]}
    return len(closes) == 5 and closes <= afters


def _intents(town: object) -> list[str]:
    with ledger(town) as led:
        return [k for k, _ in led.kv_list() if k.startswith(INTENT_PREFIX)]


@pytest.mark.parametrize("phase", [
    "before", "typed", "submitting", "entered",
    # every nudge of the killed controller went out and the agent finished the whole
    # molecule (`gt done` included) before the kill: all of it is recorded, none resent
    "finished"])
def test_a_controller_killed_mid_dispatch_dispatches_once_after_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, phase: str) -> None:
    # the agent waits far longer for a nudge than this test does: only dispatch moves it
    town = make_town(tmp_path, agents={"ada": agent_cmd("--nudge-timeout", "300")})
    pause_at = "entered" if phase == "finished" else phase
    monkeypatch.setenv(PAUSE_VAR, f"{pause_at}:120")  # for the first controller only
    with running(town):
        monkeypatch.delenv(PAUSE_VAR)
        first = read_state(town)
        root = sling(town, "engineer-in-box", "ada", {"feature": "slugify"}, nudge=False).id
        closed = wait_events(town, "bead.closed", where=lambda e: e["bead_id"] == root + ".1",
                             timeout=60)[0]
        wait_for(lambda: "pausing" in _controller_log(town), 30,
                 what="the controller to be inside the nudge")
        if phase != "before":
            wait_for(lambda: "next step" in gt(town, "peek", "ada").stdout, 10,
                     what="the nudge's text in the agent's input")
        if phase == "entered":  # the agent got it and acts on it; the record is missing
            wait_events(town, "bead.claimed", where=lambda e: e["bead_id"] == root + ".2",
                        timeout=30)
        if phase == "finished":
            wait_events(town, "done", timeout=60)
        pause(1.5)  # time enough for the controller to save its cursor (once a second)
        assert not events(town, "dispatch"), "the nudge is still under way"
        os.kill(first["pid"], signal.SIGKILL)
        wait_for(lambda: not is_running(town), 5, what="the killed controller's lock to go")
        assert up(town)["started"]
        wait_events(town, "done", timeout=90)
        # a fast agent may have finished the whole molecule before the kill (every
        # nudge of the killed controller went out, none was recorded): "done" is then
        # old news, and the restarted controller's records are what is waited for
        wait_for(lambda: _covered(town, root) and not _intents(town), 60,
                 what="the restarted controller to record every closed step's dispatch")
        evs = events(town)
        log = Path(town.gt_dir, "logs", "ada.log").read_text(errors="replace")
    steps = {e["seq"]: e["bead_id"] for e in evs if e["type"] == "bead.closed"
             and e["bead_id"].startswith(root + ".")}
    assert len(steps) == 5 and closed["seq"] in steps
    afters = collections.Counter(seq for e in evs if e["type"] == "dispatch"
                                 for seq in e["payload"].get("covers") or [e["payload"]["after"]])
    heard = [ln.split(": ", 1)[1] for ln in log.splitlines() if "nudged after" in ln]
    report(f"dispatch-kill9-{phase}", cases=len(steps), kills=1, acked=len(steps),
           lost=len(set(steps) - set(afters)), doubled=sum(1 for n in afters.values() if n > 1),
           partial=sum(1 for h in heard if not (h.startswith("[gt] ") and h.count("[gt]") == 1)))
    assert set(steps) <= set(afters), "every closed step was dispatched: nothing lost"
    assert max(afters.values()) == 1, "and none twice"
    restarted = [e["seq"] for e in evs if e["type"] == "controller.started"][-1]
    first_dispatch = next(e for e in evs if e["type"] == "dispatch"
                          and closed["seq"] in (e["payload"].get("covers")
                                                or [e["payload"]["after"]]))
    assert first_dispatch["seq"] > restarted, "the restarted controller recorded it"
    p = first_dispatch["payload"]
    if phase in ("entered", "finished"):  # sent once, by the killed one: recorded, not again
        assert p["recovered"] and p["delivered"] and p["step"] == root + ".2", p
        if phase == "finished":  # `gt done` was run: its nudge is recorded, not resent
            later = [e["payload"] for e in evs if e["type"] == "dispatch" and e["seq"] > restarted]
            assert later and all(d.get("recovered") for d in later), later
    else:  # never submitted by the killed one: the restarted one sent it
        assert p["delivered"] and p["verified"] and "recovered" not in p, p
    with ledger(town) as led:
        assert not [k for k, _ in led.kv_list() if k.startswith(INTENT_PREFIX)]
    assert log.count("nudged after") == 5 and "looking anyway" not in log
    assert all(h.startswith("[gt] ") and h.count("[gt]") == 1 for h in heard), heard


def test_a_controller_killed_while_waking_a_pool_worker_wakes_it_after_restart(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a pool worker with a running session gets new work by a nudge: that nudge too
    town = make_town(tmp_path, extra_toml=(
        '[pools.crew]\nrig = "textkit"\nrole = "worker"\npreset = "command"\nmax = 1\n'
        f'command = {json.dumps(sleeper())}\n' + "[controller]\ntick = 0.3\n"))
    with ledger(town) as led:
        first = led.create("first job", labels=["pool:crew"])["id"]
    monkeypatch.setenv(PAUSE_VAR, "before:120")  # for the first controller only
    with running(town):
        monkeypatch.delenv(PAUSE_VAR)
        pid = read_state(town)["pid"]
        wait_events(town, "session.started", timeout=30)
        worker = town.agent("crew-1")
        with Ledger.open(town.db_url(), actor=town.actor_of(worker)) as led:
            led.close_bead(first, reason="done by hand")  # the worker is free, still running
            led.kv_clear("gt.work.crew-1")
            second = led.create("second job", labels=["pool:crew"])["id"]
        wait_events(town, "hook.pinned", where=lambda e: e["bead_id"] == second, timeout=30)
        wait_for(lambda: "pausing" in _controller_log(town), 30,
                 what="the controller to be inside the wake-up nudge")
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not is_running(town), 5, what="the killed controller's lock to go")
        assert up(town)["started"]
        wait_events(town, "dispatch", where=lambda e: e["bead_id"] == second, timeout=30)
        wait_for(lambda: "is on your hook" in gt(town, "peek", "crew-1").stdout, 10,
                 what="the wake-up nudge in the worker's session")
        with ledger(town) as led:
            assert not [k for k, _ in led.kv_list() if k.startswith(WAKE_PREFIX)]
    # counted once the controller is down and its nudges in flight are finished: a
    # second wake-up sent after the first was recorded counts too
    woken = [e for e in events(town, "dispatch") if e["bead_id"] == second]
    report("dispatch-kill9-pool-wake", cases=1, kills=1, acked=1, lost=int(not woken),
           doubled=max(0, len(woken) - 1))
    assert len(woken) == 1 and woken[0]["payload"]["kind"] == "sling"
    assert woken[0]["payload"]["delivered"] and woken[0]["payload"]["agent"] == "crew-1"
