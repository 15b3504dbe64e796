"""``gt feed``: the town on one screen -- milestones by default, everything with ``-v``."""

from __future__ import annotations

import re
import sys
from typing import Any

import pytest

from agents.townkit import add_agent, gt, gt_json, wait_for
from gastown import Ledger
from gastown.town.core import Town
from gastown.town.slinging import sling
from test_status_view import _on_a_terminal

pytest_plugins = ("agents.fixtures",)

ASKER = [sys.executable, "-c", "print('Do you want to overwrite setup.cfg? [y/n]', flush=True)\n"
         "input()"]


#: routine changes the feed leaves out unless asked (-v)
NOISE = {"bead.created", "bead.updated", "bead.status", "kv.set", "mol.poured", "hook.pinned",
         "label.added", "dep.added", "mail.sent", "rig.added", "town.init", "ledger.init"}


def _waiting(town: Town) -> dict[str, Any]:
    result: dict[str, Any] = wait_for(
        lambda: (d := gt_json(town, "feed", "--once"))
        and d["agents"][0]["state"] == "waiting for input" and d, 20, 0.2,
        what="the asking agent to be waiting")
    return result


def test_the_feed_shows_milestones_and_everything_with_v(town: Town) -> None:
    led = town.ledger()
    noise = led.create("a bead nobody works on")["id"]
    led.update(noise, description="edited")
    done = led.create("a bead that gets closed")["id"]
    led.close_bead(done)
    add_agent(town, "asker", ASKER)
    sling(town, led.create("something to ask about")["id"], "asker", nudge=False)

    data = gt_json(town, "feed", "--once")
    kinds = [e["type"] for e in data["events"]]
    assert kinds and not NOISE & set(kinds), kinds
    assert ("bead.closed", done) in [(e["type"], e["bead_id"]) for e in data["events"]]
    assert "sling" in kinds and "session.started" in kinds
    everything = gt_json(town, "feed", "--once", "-v")
    assert {"bead.created", "bead.updated", "bead.closed"} <= {e["type"]
                                                               for e in everything["events"]}

    _waiting(town)
    text = gt(town, "feed", "--once").stdout
    assert "bead.closed" in text and "bead.created" not in text and "bead.updated" not in text
    assert "waiting for input" in text and "Do you want to overwrite setup.cfg? [y/n]" in text
    assert "bead.created" in gt(town, "feed", "--once", "--verbose").stdout
    # gt status follows the same rule, and -n counts milestones
    last_two = gt_json(town, "status", "-n", "2")["events"]
    assert last_two == gt_json(town, "status", "-n", "50")["events"][-2:]
    assert len(last_two) == 2
    assert "bead.created" not in gt(town, "status").stdout
    assert "bead.created" in gt(town, "status", "-v").stdout


def test_feed_json_carries_what_status_json_does(town: Town) -> None:
    add_agent(town, "asker", ASKER)
    gt(town, "session", "start", "asker")
    feed = _waiting(town)
    status = gt_json(town, "status")
    assert set(feed) == set(status)
    for key in ("agents", "merge_queue", "convoys", "rigs"):
        assert feed[key] == status[key], key
    asker = feed["agents"][0]
    assert asker["last_line"] == "Do you want to overwrite setup.cfg? [y/n]"
    assert asker["reason"] == "asks for permission"


def test_a_coloured_feed_fits_the_terminal_width(town: Town,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    add_agent(town, "asker", ASKER)
    gt(town, "session", "start", "asker")
    _waiting(town)
    screen = _on_a_terminal(town, "feed", "--once", COLUMNS="50", LINES="30")
    assert "\x1b[33mwaiting for input" in screen
    visible = [re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", line) for line in screen.splitlines()]
    assert max(len(line.rstrip("\r")) for line in visible) <= 50
    assert all(line.count("\x1b[0m") == line.count("\x1b[3") + line.count("\x1b[2m")
               + line.count("\x1b[1m") for line in screen.splitlines()), \
        "every colour a cut line starts is ended"


def test_recent_milestones_on_sqlite_and_postgresql(ledger: Ledger) -> None:
    from gastown.town.status import recent_events

    first = ledger.create("first")["id"]
    ledger.close_bead(first)
    ledger.emit("dispatch", first, {"agent": "ann"})
    for n in range(5):
        ledger.create(f"routine {n}")
    assert [e["type"] for e in recent_events(ledger, 2)] == ["bead.closed", "dispatch"]
    assert [e["type"] for e in recent_events(ledger, 1)] == ["dispatch"]
    assert len(recent_events(ledger, 50)) == 2, "only milestones, however many are asked"
    everything = recent_events(ledger, 3, everything=True)
    assert [e["type"] for e in everything] == ["bead.created"] * 3
