"""Convoys: batches of beads that land together, and stranded work fed to a pool."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.controlkit import (
    agent_cmd,
    events,
    ledger,
    make_town,
    running,
    session_env,  # noqa: F401 - a fixture
    wait_events,
)
from agents.townkit import gt, gt_json
from gastown import Filter
from gastown.controller.convoy import land_ready, stranded

pytestmark = pytest.mark.usefixtures("session_env")


def test_a_convoy_tracks_beads_and_lands_once_when_all_are_done(tmp_path: Path) -> None:
    town = make_town(tmp_path)
    with ledger(town) as led:
        a, b, c = (led.create(f"part {n}")["id"] for n in "abc")
    made = gt_json(town, "convoy", "create", "Release 1", a, b, "--notify", "lead")
    cid = made["id"]
    assert made["issue_type"] == "convoy"
    gt(town, "convoy", "add", cid, c)
    status = gt_json(town, "convoy", "status", cid)
    assert (status["total"], status["closed"], status["landed"]) == (3, 0, False)
    assert sorted(status["stranded"]) == sorted([a, b, c]), "ready and nobody on them"
    assert [x["id"] for x in gt_json(town, "convoy", "list")] == [cid]
    with ledger(town) as led:
        led.close_beads([a, b])
        assert land_ready(town, led) == [], "one bead is still open"
        led.close_bead(c)
        assert land_ready(town, led) == [cid]
        assert land_ready(town, led) == [], "landing is idempotent"
        mail = led.list(Filter(issue_type=["message"], assignee="lead"))
        assert [m["title"] for m in mail] == [f"Convoy {cid} landed: Release 1"]
        assert led.get(cid)["status"] == "closed"
    assert [e["bead_id"] for e in events(town, "convoy.landed")] == [cid]
    assert gt_json(town, "convoy", "list") == []
    assert gt_json(town, "convoy", "list", "--all")[0]["landed"] is True
    assert "landed, 3/3 done" in gt(town, "convoy", "status", cid).stdout
    # more work on a landed convoy opens it again
    with ledger(town) as led:
        d = led.create("part d")["id"]
    assert gt_json(town, "convoy", "add", cid, d)["status"] == "open"


def test_a_batch_sling_makes_a_convoy_and_the_controller_feeds_the_rest(
        tmp_path: Path) -> None:
    town = make_town(tmp_path, provider="subprocess", extra_toml=(
        '[pools.crew]\nrig = "textkit"\nrole = "worker"\npreset = "command"\nmax = 1\n'
        f'command = {json.dumps(agent_cmd("--wait", "5"))}\n[controller]\ntick = 0.3\n'))
    with ledger(town) as led:
        jobs = [led.create(f"batch job {i}")["id"] for i in range(3)]
    out = gt_json(town, "sling", *jobs, "crew")
    cid = out["convoy"]
    assert [s["id"] for s in out["slung"]] == jobs[:1], "the pool has one worker"
    assert [w["id"] for w in out["waiting"]] == jobs[1:]
    with ledger(town) as led:
        assert sorted(b["id"] for _, b in stranded(led)) == sorted(jobs[1:])
    with running(town):
        reported = wait_events(town, "convoy.stranded", timeout=20)
        wait_events(town, "convoy.landed", timeout=60)
        done = wait_events(town, "done", 3, timeout=30)
    assert set(reported[0]["payload"]["beads"]) <= set(jobs[1:])
    assert sorted(e["bead_id"] for e in done) == sorted(jobs)
    assert {e["actor"] for e in done} == {"textkit/worker/crew-1"}
    assert gt_json(town, "convoy", "status", cid)["landed"] is True
