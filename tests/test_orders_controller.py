"""Orders and timer gates run by the real controller daemon (``gt up``), real tmux sessions."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.controlkit import (
    ledger,
    make_town,
    running,
    session_env,  # noqa: F401 - a fixture
    wait_events,
)
from agents.townkit import sleeper, wait_for
from gastown.chemistry.api import pour
from gastown.controller.dispatch import epoch
from gastown.ledger.query import Filter

pytestmark = pytest.mark.usefixtures("session_env")

FORMULAS = {
    "mol-followup": """\
formula = "mol-followup"
[vars.after]
default = "?"
[[steps]]
id = "verify"
title = "Verify the deploy of {{after}}"
""",
    "mol-cooldown": """\
formula = "mol-cooldown"
[[steps]]
id = "wait"
title = "Announce"
[[steps]]
id = "later"
title = "Look again after the cooldown"
needs = ["wait"]
gate = { type = "timer", timeout = "2s" }
""",
}

TOML = """
[controller]
tick = 0.5

[orders.followup]
formula = "mol-followup"
on = "bead.closed"
label = "deploy"
sling = "ada"
vars = { after = "${bead}" }
"""


def _town(tmp: Path):  # type: ignore[no-untyped-def]
    town = make_town(tmp, agents={"ada": sleeper()}, extra_toml=TOML)
    folder = Path(town.beads_dir, "formulas")
    folder.mkdir(exist_ok=True)
    for name, text in FORMULAS.items():
        (folder / f"{name}.formula.toml").write_text(text)
    return town


def test_controller_fires_an_event_order_and_slings_it(tmp_path: Path) -> None:
    town = _town(tmp_path)
    with running(town):
        # the first pass sets the order's cursor; a close after it is what triggers
        wait_for(lambda: ledger(town).kv_get("gt.orders.cursor"), 20,
                 what="the orders' cursor")
        with ledger(town) as led:
            bead = led.create("deploy v2", labels=["deploy"])
            led.close_bead(bead["id"], reason="shipped")
        ev = wait_events(town, "order.fired", timeout=30)[0]
        assert ev["payload"]["order"] == "followup" and ev["payload"]["vars"] == {
            "after": bead["id"]}
        root = str(ev["bead_id"])
        wait_events(town, "sling", timeout=30, where=lambda e: e["bead_id"] == root)
        with ledger(town) as led:
            hooked = led.get(root)
            assert hooked["status"] == "hooked"
            assert hooked["assignee"] == "textkit/worker/ada"
            step = led.get(hooked["metadata"]["steps"]["verify"])
            assert step["title"] == f"Verify the deploy of {bead['id']}"
            assert led.get(root)["metadata"]["order"]["event"] > 0


def test_controller_opens_a_timer_gate_at_its_time(tmp_path: Path) -> None:
    town = _town(tmp_path)
    with running(town):
        with ledger(town) as led:
            root = pour(led, "mol-cooldown", search_paths=town.formula_paths())
            steps = root["metadata"]["steps"]
            gate_id = root["metadata"]["gates"]["later"]
            led.close_bead(steps["wait"])
            ready = {b["id"] for b in led.ready(Filter())}
            assert steps["later"] not in ready, "the timer gate holds the step"
        ev = wait_events(town, "gate.resolved", timeout=30)[0]
        assert ev["bead_id"] == gate_id and ev["payload"]["reason"] == "timer"
        with ledger(town) as led:
            gate = led.get(gate_id)
            waited = epoch(gate["closed_at"]) - epoch(gate["created_at"])
            assert 2.0 <= waited < 15, "opened at its time, not before"
            assert steps["later"] in {b["id"] for b in led.ready(Filter())}
