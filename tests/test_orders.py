"""Orders: formulas poured on a schedule or an event, exactly once (real town, real SQLite)."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agents.townkit import clean_env, gt, gt_json
from gastown import Ledger
from gastown.controller.orders import STATE_PREFIX, fire, list_orders, order_state, run_orders
from gastown.town.core import Town, init_town

FORMULA = """\
formula = "mol-nightly"
description = "A scheduled check"

[vars.scope]
default = "all"

[[steps]]
id = "check"
title = "Check {{scope}}"

[[steps]]
id = "report"
title = "Report on {{scope}}"
needs = ["check"]
"""

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 29, 13, 7, 30, tzinfo=UTC)


def make_town(tmp: Path, orders: str) -> Town:
    town = init_town(str(tmp / "town"), name="t", prefix="t", provider="subprocess",
                     actor="tester")
    Path(town.beads_dir, "formulas").mkdir(exist_ok=True)
    Path(town.beads_dir, "formulas", "mol-nightly.formula.toml").write_text(FORMULA)
    with open(town.config_path, "a", encoding="utf-8") as fh:
        fh.write("\n" + textwrap.dedent(orders) + "\n")
    town.reload()
    return town


def open_ledger(town: Town) -> Ledger:
    return Ledger.open(town.db_url(), actor="tester")


def fired(led: Ledger, name: str) -> list[dict[str, object]]:
    return [e for e in led.events(types=["order.fired"]) if e["payload"]["order"] == name]


def molecules(led: Ledger) -> list[str]:
    return [e["bead_id"] for e in led.events(types=["mol.poured"])]


SCHEDULED = """
[orders.nightly]
formula = "mol-nightly"
schedule = "*/15 * * * *"
vars = { scope = "docs at ${time}" }
"""


def test_schedule_fires_once_per_slot_and_once_after_downtime(tmp_path: Path) -> None:
    town = make_town(tmp_path, SCHEDULED)
    with open_ledger(town) as led:
        # first sight: nothing fires for times before the order existed
        assert run_orders(town, led, now=T0) == []
        assert fired(led, "nightly") == []
        assert run_orders(town, led, now=T0 + dt.timedelta(minutes=5)) == []  # 13:12
        out = run_orders(town, led, now=T0 + dt.timedelta(minutes=8))  # 13:15:30
        assert [o["order"] for o in out] == ["nightly"]
        ev = fired(led, "nightly")
        assert len(ev) == 1 and ev[0]["payload"]["due"] == "2026-11-29T13:15:00Z"
        root = led.get(str(ev[0]["bead_id"]))
        assert root["title"].startswith("mol-nightly") or root["issue_type"] == "molecule"
        assert root["metadata"]["order"]["name"] == "nightly"
        steps = [led.get(s) for s in root["metadata"]["steps"].values()]
        assert sorted(s["title"] for s in steps) == ["Check docs at 2026-11-29T13:15:00Z",
                                                     "Report on docs at 2026-11-29T13:15:00Z"]
        # the same slot again, from this or another controller: nothing
        assert run_orders(town, led, now=T0 + dt.timedelta(minutes=9)) == []
        # down for a day: 96 slots missed, one firing
        later = T0 + dt.timedelta(days=1, minutes=1)
        assert len(run_orders(town, led, now=later)) == 1
        assert run_orders(town, led, now=later + dt.timedelta(seconds=20)) == []
        assert len(fired(led, "nightly")) == 2
        assert len(molecules(led)) == 2
        state = order_state(led, "nightly")
        assert state["last"] == "2026-11-30T13:08:00Z" and state["root"]
        listed = list_orders(town, led, now=later)
        assert listed[0]["next"] == "2026-11-30T13:15:00Z"
        assert listed[0]["formula_ok"] is True and listed[0]["last_root"] == state["root"]


def test_a_firing_checks_its_slot_in_its_own_transaction(tmp_path: Path) -> None:
    """Two controllers (or a restarted one) handing the same slot: one pour."""
    town = make_town(tmp_path, SCHEDULED)
    order = town.config.orders["nightly"]
    due = dt.datetime(2026, 11, 29, 13, 15, tzinfo=UTC)
    with open_ledger(town) as led:
        led.kv_set(STATE_PREFIX + "nightly", json.dumps({"last": "2026-11-29T13:07:00Z"}))
        first = fire(town, led, order, now=T0 + dt.timedelta(minutes=8), due=due)
        second = fire(town, led, order, now=T0 + dt.timedelta(minutes=8), due=due)
        assert first["fired"] and not second["fired"] and second["already"]
        assert len(fired(led, "nightly")) == 1


KILLER = """
import os, signal, sys, datetime as dt
import gastown.chemistry.api as api
from gastown.controller.orders import run_orders
from gastown.ledger.core import Ledger
from gastown.town.core import Town

real = api.pour_in
def pour_then_die(*a, **kw):
    out = real(*a, **kw)
    if sys.argv[2] == "inside":
        os.kill(os.getpid(), signal.SIGKILL)  # mid-transaction: nothing may remain
    return out
api.pour_in = pour_then_die
town = Town.find(sys.argv[1])
with Ledger.open(town.db_url(), actor="ctl") as led:
    now = dt.datetime.fromisoformat(sys.argv[3])
    run_orders(town, led, now=now)
if sys.argv[2] == "after":
    os.kill(os.getpid(), signal.SIGKILL)  # after the commit, before anything else
"""


def test_kill_9_mid_firing_leaves_nothing_and_the_next_pass_fires_once(tmp_path: Path) -> None:
    town = make_town(tmp_path, SCHEDULED)
    script = tmp_path / "killer.py"
    script.write_text(KILLER)
    with open_ledger(town) as led:
        run_orders(town, led, now=T0)  # baseline 13:07
    slot = (T0 + dt.timedelta(minutes=8)).isoformat()
    proc = subprocess.run([sys.executable, str(script), town.root, "inside", slot],
                          env=clean_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with open_ledger(town) as led:
        assert fired(led, "nightly") == [] and molecules(led) == []
        assert order_state(led, "nightly")["last"] == "2026-11-29T13:07:00Z"
    proc = subprocess.run([sys.executable, str(script), town.root, "after", slot],
                          env=clean_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    with open_ledger(town) as led:
        assert len(fired(led, "nightly")) == 1 and len(molecules(led)) == 1
        # restarted: the slot is handled, nothing more is poured
        assert run_orders(town, led, now=T0 + dt.timedelta(minutes=9)) == []
        assert len(molecules(led)) == 1


EVENTED = """
[orders.on-deploy]
formula = "mol-nightly"
on = "bead.closed"
label = "deploy"
vars = { scope = "after ${bead} by ${actor}" }
"""


def test_event_order_fires_for_labelled_closes_only_once_each(tmp_path: Path) -> None:
    town = make_town(tmp_path, EVENTED)
    with open_ledger(town) as led:
        early = led.create("before the order existed", labels=["deploy"])
        led.close_bead(early["id"])
        assert run_orders(town, led) == []  # first pass: history stays history
        plain = led.create("no label")
        tagged = led.create("ship it", labels=["deploy"])
        led.close_bead(plain["id"])
        led.close_bead(tagged["id"])
        out = run_orders(town, led)
        assert [o["order"] for o in out] == ["on-deploy"]
        root = led.get(str(out[0]["root"]))
        titles = sorted(led.get(s)["title"] for s in root["metadata"]["steps"].values())
        assert titles[0] == f"Check after {tagged['id']} by tester"
        assert run_orders(town, led) == []
        # the order's own molecule closing (even labelled) never triggers it again
        for step in root["metadata"]["steps"].values():
            led.add_label(step, "deploy")
        for step in ("check", "report"):
            led.close_bead(root["metadata"]["steps"][step])
        assert run_orders(town, led) == []
        assert len(fired(led, "on-deploy")) == 1


def test_unknown_formula_is_one_line_naming_order_and_formula(tmp_path: Path) -> None:
    town = make_town(tmp_path, """
        [orders.broken]
        formula = "mol-nope"
        schedule = "@daily"
        """)
    proc = gt(town, "orders", "list", check=False)
    assert proc.returncode == 1
    assert "error: order broken: formula 'mol-nope': no proto or formula named" in proc.stdout
    proc = gt(town, "orders", "run", "broken", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout
    assert "Order broken did not fire: order broken: formula 'mol-nope'" in proc.stdout
    with open_ledger(town) as led:
        failed = led.events(types=["order.failed"])
        assert len(failed) == 1 and failed[0]["payload"]["order"] == "broken"
        assert molecules(led) == []
    proc = gt(town, "orders", "run", "nobody", check=False)
    assert proc.returncode != 0 and proc.returncode != 70
    assert "no order named 'nobody'" in proc.stderr and "known: broken" in proc.stderr


def test_bad_cron_in_town_toml_is_refused_by_every_command(tmp_path: Path) -> None:
    town = make_town(tmp_path, "")
    with open(town.config_path, "a", encoding="utf-8") as fh:
        fh.write('\n[orders.bad]\nformula = "mol-nightly"\nschedule = "*/15 * * *"\n')
    proc = gt(town, "orders", "list", check=False)
    assert proc.returncode not in (0, 70)
    assert "orders.bad.schedule: '*/15 * * *' has 4 field(s)" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_gt_orders_list_and_run(tmp_path: Path) -> None:
    town = make_town(tmp_path, SCHEDULED + EVENTED)
    items = gt_json(town, "orders", "list")
    assert [i["name"] for i in items] == ["nightly", "on-deploy"]
    assert items[0]["schedule"] == "*/15 * * * *" and items[0]["next"]
    assert items[1]["on"] == "bead.closed" and items[1]["next"] is None
    text = gt(town, "orders").stdout
    assert "nightly: mol-nightly, schedule '*/15 * * * *'" in text and "last fired: never" in text
    out = gt_json(town, "orders", "run", "nightly")
    assert out["fired"] and out["root"]
    with open_ledger(town) as led:
        assert fired(led, "nightly")[0]["payload"]["reason"] == "manual"
        assert led.get(out["root"])["metadata"]["order"]["name"] == "nightly"
    assert gt_json(town, "orders", "list")[0]["last_root"] == out["root"]


def test_wisp_orders_pour_wisps(tmp_path: Path) -> None:
    town = make_town(tmp_path, """
        [orders.vapor]
        formula = "mol-nightly"
        schedule = "@hourly"
        wisp = true
        """)
    with open_ledger(town) as led:
        out = fire(town, led, town.config.orders["vapor"])
        assert led.get(str(out["root"]))["ephemeral"]


RACER = """
import sys, datetime as dt
from gastown.controller.orders import run_orders
from gastown.ledger.core import Ledger
from gastown.town.core import Town

town = Town.find(sys.argv[1])
with Ledger.open(town.db_url(), actor="ctl") as led:
    sys.stdin.readline()  # all start together
    out = run_orders(town, led, now=dt.datetime.fromisoformat(sys.argv[2]))
    print(len(out))
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_controllers_racing_for_one_slot_fire_it_once(tmp_path: Path, backend: str,
                                                      request: pytest.FixtureRequest) -> None:
    """Two nodes' leaders overlapping (a lease handover), or a restart: one pour."""
    if backend == "postgres":
        url = request.getfixturevalue("pg_database")
        (tmp_path / "town").mkdir()
        Ledger.init(str(tmp_path / "town"), prefix="t", db=url, actor="tester").close()
    town = make_town(tmp_path, SCHEDULED)
    assert town.db_url().startswith("postgresql") == (backend == "postgres")
    with open_ledger(town) as led:
        run_orders(town, led, now=T0)
    script = tmp_path / "racer.py"
    script.write_text(RACER)
    slot = (T0 + dt.timedelta(minutes=8)).isoformat()
    procs = [subprocess.Popen([sys.executable, str(script), town.root, slot], text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=clean_env()) for _ in range(4)]
    outs = [p.communicate("go\n", timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
    assert sorted(int(o[0]) for o in outs) == [0, 0, 0, 1]
    with open_ledger(town) as led:
        assert len(fired(led, "nightly")) == 1 and len(molecules(led)) == 1


def test_a_missing_variable_is_reported_and_the_schedule_moves_on(tmp_path: Path) -> None:
    town = make_town(tmp_path, """
        [orders.fix]
        formula = "mol-quick-fix"
        schedule = "*/15 * * * *"
        """)
    proc = gt(town, "orders", "list", check=False)
    assert proc.returncode == 1
    assert "order fix: formula 'mol-quick-fix'" in proc.stdout and "issue" in proc.stdout
    with open_ledger(town) as led:
        run_orders(town, led, now=T0)
        out = run_orders(town, led, now=T0 + dt.timedelta(minutes=8))
        assert out[0]["error"].startswith("order fix: formula 'mol-quick-fix'")
        # the slot is handled (as a failure): the next ticks do not fail again
        assert run_orders(town, led, now=T0 + dt.timedelta(minutes=9)) == []
        failed = led.events(types=["order.failed"])
        assert len(failed) == 1 and molecules(led) == []
        assert "missing variable" in order_state(led, "fix")["error"]
