"""``gt status``, ``gt feed`` and ``gt events``: what is happening, and who did it."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from agents.townkit import BIN, add_agent, clean_env, gt, gt_json, sleeper, wait_for
from gastown.town.core import Town
from gastown.town.slinging import sling

pytest_plugins = ("agents.fixtures",)


def test_events_follow_streams_new_events_as_json_lines(town: Town) -> None:
    proc = subprocess.Popen([str(BIN / "gt"), "events", "--town", town.root, "--follow",
                             "--json", "--since", str(town.ledger().last_event_seq()),
                             "--interval", "0.1"], stdout=subprocess.PIPE, text=True,
                            env=clean_env())
    try:
        time.sleep(0.3)
        bead = town.ledger().create("followed")
        line = proc.stdout.readline() if proc.stdout else ""
        ev = json.loads(line)
        assert ev["type"] == "bead.created" and ev["bead_id"] == bead["id"]
        assert ev["actor"] == "tester" and ev["ts"] and ev["seq"] > 0
    finally:
        proc.kill()
        proc.wait()


def test_events_filter_by_type_and_bead(town: Town) -> None:
    led = town.ledger()
    a = led.create("a")
    led.create("b")
    led.close_bead(a["id"])
    only = gt_json(town, "events", "--bead", a["id"])
    assert {e["bead_id"] for e in only} == {a["id"]}
    closed = gt_json(town, "events", "--type", "bead.closed")
    assert [e["bead_id"] for e in closed] == [a["id"]]
    assert len(gt_json(town, "events", "--last", "2")) == 2


def test_status_shows_agents_hooks_steps_and_sessions(town: Town) -> None:
    add_agent(town, "ann", sleeper())
    add_agent(town, "idle", [sys.executable, "-c", "pass"])
    out = sling(town, "engineer-in-box", "ann", {"feature": "\x1b[2Jwipe"}, nudge=False,
                actor="tester")
    data = gt_json(town, "status")
    ann = next(a for a in data["agents"] if a["name"] == "ann")
    assert ann["hook"]["id"] == out.id and ann["step"]["id"] == f"{out.id}.1"
    assert ann["progress"] == {"closed": 0, "total": 5}
    assert ann["session"]["state"] == "running" and ann["actor"] == "app/worker/ann"
    idle = next(a for a in data["agents"] if a["name"] == "idle")
    assert idle["hook"] is None and idle["session"]["state"] == "stopped"
    assert data["events"] and data["events"][-1]["type"] == "session.started"
    text = gt(town, "status").stdout
    assert "ann" in text and out.id in text and "running" in text
    assert "\x1b" not in text, "titles are cleaned before they reach a terminal"
    feed = gt(town, "feed", "--once").stdout
    assert "Events (last" in feed and "\x1b" not in feed
    wait_for(lambda: "ann" in gt(town, "session", "list").stdout, 5)
