"""A small town end to end with chains on: each agent's chain holds its work, signed.

``gt init`` turns chains on; two headless command agents (the README's sample
agent) work real beads, ``gt done`` files merge requests, the controller's
refinery lands them -- real git, real processes, the SQLite ledger.  Afterwards
each agent's chain holds its claimed and completed work, the refinery's chain
holds a ``validated`` record about each agent's work (with the files it
touched), and ``gt chain verify`` passes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from agents.townkit import DISCIPLINED, gt, gt_json, make_repo, teardown_town, wait_for
from gastown import Ledger
from gastown.chains import about, flags, records
from gastown.controller.service import down, up
from gastown.town.core import Town

pytest_plugins = ("agents.fixtures",)


def test_agents_chains_hold_their_completed_and_validated_work(tmp_path: Path) -> None:
    src = make_repo(tmp_path / "app")
    root = tmp_path / "town"
    gt(tmp_path, "init", str(root), "--name", "beta", "--email", "bots@example.com",
       "--provider", "subprocess")
    gt(root, "rig", "add", "app", str(src))
    agent = f"{sys.executable} {DISCIPLINED} --once --wait 60"
    names = ("ann", "bob")
    for name in names:
        gt(root, "agent", "add", name, "--rig", "app", "--preset", "command", "--command", agent)
    enabled = gt_json(root, "chain", "enable")  # again: the new agents get keys of their own
    assert {f"entity://gt/beta/app/worker/{n}" for n in names} <= set(enabled["entities"])
    town = Town(str(root))
    try:
        up(town)
        with Ledger.open(town.db_url(), actor="tester") as led:
            work = {n: led.create(f"Write {n}'s part", labels=["docs"])["id"] for n in names}
        for name in names:
            gt(root, "sling", work[name], name)

        def landed() -> list | None:
            evs = gt_json(root, "events", "--type", "merge.landed")
            return evs if len(evs) >= 2 else None

        try:
            wait_for(landed, 120, 0.5, what="two landed merge requests")
        except AssertionError:
            logs = "\n".join(p.read_text(errors="replace")[-1500:]
                             for p in (root / ".gt" / "logs").glob("*.log"))
            raise AssertionError(f"not landed:\n{logs}") from None
    finally:
        down(town, timeout=10)
        teardown_town(town)
    refinery = "entity://gt/beta/beta/controller"
    with Ledger.open(town.db_url()) as led:
        for name in names:
            actor = f"app/worker/{name}"
            entity = f"entity://gt/beta/{actor}"
            mine = records(led, actor)
            done = [(r["kind"], r["bead"]) for r in mine]
            assert ("claimed", work[name]) in done and ("completed", work[name]) in done
            # the agent's own bd close signs with its key; the sling by the town for it
            assert all(r["signer"] == entity and r["on_behalf"] is False for r in mine
                       if r["kind"] == "completed")
            [slung] = [r for r in mine if r["kind"] == "claimed"]
            assert slung["on_behalf"] is True and slung["by"] == "tester"
            judged = about(led, actor)
            [v] = [r for r in judged if r["kind"] == "validated"]
            assert v["entity"] == refinery and v["subject"] == entity
            assert v["bead"] == work[name] and v["quality"]["verdict"] == "merged"
            assert v["work"]["files"], "the landing recorded the files the work touched"
            assert v["work"]["labels"] == ["docs"]
        assert not [f for f in flags(records(led)) if f["flag"] == "reciprocal"]
    ok = gt(root, "chain", "verify")
    assert ok.stdout.startswith("ok: ")
    for name in names:
        cv = tmp_path / f"{name}.json"
        gt(root, "chain", "export", f"app/worker/{name}", "-o", str(cv))
        res = json.loads(gt(tmp_path, "chain", "verify", "--file", str(cv), "--json").stdout)
        assert res["ok"] and res["judgements"] >= 1
