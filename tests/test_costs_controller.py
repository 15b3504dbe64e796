"""Budgets with a running controller: a pool over its budget gets no new work (an event
and ``gt status`` say why) until its limit is raised in town.toml."""

from __future__ import annotations

import json
import time
from pathlib import Path

from agents.controlkit import agent_cmd, events, ledger, make_town, running, wait_events
from agents.townkit import gt, wait_for
from agents.usagekit import claude_line
from gastown.controller.daemon import read_state
from gastown.town.usage import usage_file


def test_a_pool_over_budget_is_paused_until_its_limit_is_raised(tmp_path: Path) -> None:
    town = make_town(tmp_path, provider="subprocess", extra_toml=(
        '[pools.crew]\nrig = "textkit"\nrole = "worker"\npreset = "command"\nmax = 1\n'
        f'command = {json.dumps(agent_cmd("--wait", "5"))}\n'
        '[controller]\ntick = 0.3\n'
        '[budgets.pool]\ncrew = "$0.01/day"\n'))
    f = Path(usage_file(town.gt_dir, "crew-1"))
    f.parent.mkdir(parents=True)
    # yesterday's spend does not count; today's ($0.018) is over the limit
    f.write_text(claude_line(time.time() - 86400 * 2, "old", "claude-sonnet-4", 10**6, 10**6)
                 + "\n" + claude_line(time.time() - 1, "m1", "claude-sonnet-4", 1000, 1000)
                 + "\n")
    with ledger(town) as led:
        job = led.create("small job", labels=["pool:crew"])["id"]
    with running(town):
        (ev,) = wait_events(town, "budget.paused", 1, timeout=30)
        assert ev["payload"]["key"] == "budgets.pool.crew"
        ticks = read_state(town)["ticks"]
        wait_for(lambda: read_state(town)["ticks"] >= ticks + 3, 20, what="three more ticks")
        with ledger(town) as led:
            assert led.get(job).get("assignee") in (None, ""), "nothing slung while paused"
        assert not events(town, "sling")
        status = gt(town, "status").stdout
        assert "Paused by budget: budgets.pool.crew = $0.01/day" in status
        path = Path(town.config_path)
        path.write_text(path.read_text().replace('crew = "$0.01/day"', 'crew = "$1/day"'))
        wait_events(town, "budget.resumed", 1, timeout=30)
        (sl,) = wait_events(town, "sling", 1, timeout=30)
        assert sl["bead_id"] == job and sl["payload"]["agent"] == "crew-1"
        assert "Paused by budget" not in gt(town, "status").stdout
