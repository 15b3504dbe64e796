"""A town over two nodes on one PostgreSQL ledger, and the loss of one of them.

Two town folders (each with its own clone of the rig and its own sessions) share
the ledger that the tests' PostgreSQL server holds; ``gt up --node A`` and
``--node B`` run a controller in each.  Agent ``ada`` belongs on A, ``bob`` on
B.  A starts first and leads (it runs the merge queue).  While ``bob``'s merge
request is being landed on A and ``ada`` is half-way through her molecule, node
A is killed with SIGKILL -- its controller and ada's session, as if the machine
went away.  B must take the lease within the lease time, finish the merge queue
(nothing lost, nothing landed twice) and restart ada on the same hook, where
she resumes at her first unfinished step.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agents.controlkit import RIG, agent_cmd, logs, session_env  # noqa: F401 - a fixture
from agents.townkit import EMAIL, teardown_town, wait_for
from gastown import Ledger
from gastown.controller.overview import town_overview
from gastown.controller.service import down, up
from gastown.demo.sample import TEST_ARGS, write_sample
from gastown.town.config import append_table
from gastown.town.core import Town, init_town
from gastown.town.rigs import add_rig
from gastown.town.sessions import Sessions
from gastown.town.slinging import sling
from gastown.town.status import render_status

pytestmark = pytest.mark.usefixtures("session_env")

LEASE = 3.0

#: the rig's tests, two seconds slower: a landing is in flight long enough to kill it
SLOW_TEST = """\
import subprocess, sys, time
time.sleep(2)
sys.exit(subprocess.call([sys.executable, *{args!r}]))
"""


def _node_town(root: Path, url: str, sample: str, first: bool) -> Town:
    """One node's town folder on the shared ledger, with its own clone of the rig."""
    root.mkdir()
    Ledger.init(str(root), prefix="t", db=url, actor="tester", attach=not first).close()
    town = init_town(str(root), name="t", prefix="t", provider="subprocess", email=EMAIL,
                     actor="tester")
    add_rig(town, RIG, sample, push=True, actor="tester")
    return town


def _configure(town: Town, slow_test: str,
               agents: tuple[tuple[str, str, str], ...] = (("ada", "A", "2.5"),
                                                           ("bob", "B", "0")),
               tick: float = 0.5) -> None:
    text = Path(town.config_path).read_text()
    test = json.dumps(shlex.join([sys.executable, slow_test]))
    text = text.replace(f"[rigs.{RIG}]\n", f"[rigs.{RIG}]\ntest = {test}\n", 1)
    text += (f"\n[nodes]\nlease = {LEASE}\nheartbeat = 0.5\n"
             f"\n[controller]\ntick = {tick}\n")
    Path(town.config_path).write_text(text)
    for name, node, delay in agents:
        append_table(town.config_path, f"agents.{name}",
                     {"rig": RIG, "role": "worker", "preset": "command", "node": node,
                      "command": agent_cmd("--nudge-timeout", "60", "--step-delay", delay)})
    town.reload()


def _events(url: str, *types: str) -> list[dict[str, Any]]:
    with Ledger.open(url, actor="tester") as led:
        return led.events(types=list(types))


def _wait(url: str, what: str, pred: Any, timeout: float, towns: list[Town]) -> Any:
    def found() -> Any:
        return pred(_events(url))
    try:
        return wait_for(found, timeout, 0.1, what=what)
    except AssertionError:
        raise AssertionError(f"timed out waiting for {what}:\n"
                             + "\n".join(logs(t) for t in towns)) from None


def test_two_nodes_survive_losing_the_leader(tmp_path: Path, pg_database: str) -> None:
    url = pg_database
    sample = write_sample(str(tmp_path / "sample"))
    slow = tmp_path / "slowtest.py"
    slow.write_text(SLOW_TEST.format(args=TEST_ARGS))
    town_a = _node_town(tmp_path / "node-a", url, sample, first=True)
    town_b = _node_town(tmp_path / "node-b", url, sample, first=False)
    for town in (town_a, town_b):
        _configure(town, str(slow))
    towns = [town_a, town_b]
    try:
        assert up(town_a, node="A")["node"] == "A"
        _wait(url, "A to lead", lambda evs: [e for e in evs if e["type"] == "node.leader"],
              10, towns)
        up(town_b, node="B")
        slung = [sling(town_a, "engineer-in-box", agent, {"feature": feature})
                 for agent, feature in (("ada", "slugify"), ("bob", "word frequencies"))]
        # not started here: the leader places them, and their own nodes start them
        assert [r.session for r in slung] == ["waiting for a node"] * 2
        ada, bob = slung[0].id, slung[1].id

        # bob works on B; his merge request is claimed by the leader, A, which is
        # then killed in the middle of landing it (its test takes two seconds)
        def bob_landing(evs: list[dict[str, Any]]) -> Any:
            mrs = {e["bead_id"] for e in evs if e["type"] == "merge.requested"}
            return [e for e in evs if e["type"] == "bead.claimed" and e["bead_id"] in mrs
                    and e["actor"] == "t/controller"]
        _wait(url, "bob's merge request to be landing", bob_landing, 90, towns)
        evs = _events(url)
        assert not [e for e in evs if e["type"] == "done" and e["bead_id"] == ada], \
            "ada still has work on her hook when A goes"
        ada_pid = _session_pid(town_a, "ada")
        ctl_pid = json.loads(Path(town_a.gt_dir, "controller.json").read_text())["pid"]
        killed_at = time.time()
        os.kill(ctl_pid, signal.SIGKILL)
        if ada_pid:
            os.killpg(ada_pid, signal.SIGKILL)

        # B takes the lease (a new term) within the lease time
        lead = _wait(url, "B to lead", lambda evs: [
            e for e in evs if e["type"] == "node.leader" and e["payload"]["node"] == "B"], 20,
            towns)[0]
        took = _ts(lead["ts"]) - killed_at
        assert took <= LEASE + 1.5, f"B led {took:.1f}s after A died (lease {LEASE}s)"
        assert lead["payload"]["term"] == 2

        # ada moves to B and finishes there on the same hook; both requests land
        _wait(url, "both to land", lambda evs: len(
            [e for e in evs if e["type"] == "merge.landed"]) >= 2 or None, 120, towns)
        evs = _events(url)
        overview = _overview(town_b)
    finally:
        for town in towns:
            try:
                down(town, timeout=10)
            finally:
                teardown_town(town)

    moved = [e["payload"] for e in evs if e["type"] == "node.placed"
             and e["payload"]["agent"] == "ada"]
    assert moved[0]["node"] == "A" and moved[-1] == {**moved[-1], "node": "B", "from": "A"}
    restarted = [e for e in evs if e["type"] in ("patrol.started", "patrol.restarted")
                 and e["payload"]["agent"] == "ada" and _ts(e["ts"]) > killed_at]
    assert restarted and restarted[0]["bead_id"] == ada, "ada restarted on her hook"
    # every step of ada's molecule was closed exactly once, and she handed in once
    closes = [e["bead_id"] for e in evs if e["type"] == "bead.closed"
              and str(e["bead_id"]).startswith(ada + ".")]
    assert len(closes) == len(set(closes)) == 5, closes
    done = [e["bead_id"] for e in evs if e["type"] == "done"]
    assert done.count(ada) == 1 and done.count(bob) == 1
    # nothing lost, nothing landed twice
    landed = [e["bead_id"] for e in evs if e["type"] == "merge.landed"]
    assert len(landed) == len(set(landed)) == 2, landed
    requested = {e["bead_id"] for e in evs if e["type"] == "merge.requested"}
    assert set(landed) == requested
    # the source has both features, each commit once; ada's design note was written on
    # A before it died: her branch was checkpointed to the source and taken up on B
    log = _git(sample, "log", "--format=%s", "main")
    files = set(_git(sample, "ls-files").split())
    assert {"textkit/slugify.py", "docs/design/slugify.md",
            "docs/design/word_frequencies.md"} <= files, files
    assert len(log.splitlines()) == len(set(log.splitlines())), log
    # gt status on B: A dead, B alive and leading, ada placed on B
    nodes = {n["name"]: n for n in overview["nodes"]["nodes"]}
    assert nodes["A"]["state"] == "dead" and nodes["B"]["state"] == "alive"
    assert overview["nodes"]["leader"]["node"] == "B"
    assert {a["name"]: a.get("node") for a in overview["agents"]} == {"ada": "B", "bob": "B"}
    text = render_status(overview)
    assert "Node A: dead" in text and "Node B: alive" in text and "leader (term 2" in text
    assert "Controller: up (node B, pid" in text


def test_a_follower_node_dies_and_its_agent_finishes_on_the_leader(
        tmp_path: Path, pg_database: str) -> None:
    url = pg_database
    sample = write_sample(str(tmp_path / "sample"))
    fast = tmp_path / "fasttest.py"
    fast.write_text(SLOW_TEST.replace("time.sleep(2)", "pass").format(args=TEST_ARGS))
    town_a = _node_town(tmp_path / "node-a", url, sample, first=True)
    town_b = _node_town(tmp_path / "node-b", url, sample, first=False)
    for town in (town_a, town_b):
        # ticks far apart: the leader notices B's death at its heartbeat, not its tick
        _configure(town, str(fast), agents=(("bob", "B", "1.5"),), tick=20)
    towns = [town_a, town_b]
    try:
        up(town_a, node="A")
        _wait(url, "A to lead", lambda evs: [e for e in evs if e["type"] == "node.leader"],
              10, towns)
        up(town_b, node="B")
        bob = sling(town_b, "engineer-in-box", "bob", {"feature": "slugify"}).id
        _wait(url, "bob's first step", lambda evs: [
            e for e in evs if e["type"] == "bead.closed" and e["bead_id"] == f"{bob}.1"],
            60, towns)
        bob_pid = _session_pid(town_b, "bob")
        killed_at = time.time()
        os.kill(json.loads(Path(town_b.gt_dir, "controller.json").read_text())["pid"],
                signal.SIGKILL)
        if bob_pid:
            os.killpg(bob_pid, signal.SIGKILL)
        _wait(url, "bob's work to land", lambda evs: [
            e for e in evs if e["type"] == "merge.landed"], 90, towns)
        evs = _events(url)
    finally:
        for town in towns:
            try:
                down(town, timeout=10)
            finally:
                teardown_town(town)
    assert [e["payload"]["node"] for e in evs if e["type"] == "node.leader"] == ["A"], \
        "the leader was not the node that died: it stays the leader"
    moved = [e for e in evs if e["type"] == "node.placed" and e["payload"]["agent"] == "bob"]
    assert [m["payload"]["node"] for m in moved] == ["B", "A"]
    assert _ts(moved[-1]["ts"]) - killed_at <= LEASE + 2.0, "moved once B's heartbeat aged"
    closes = [e["bead_id"] for e in evs if e["type"] == "bead.closed"
              and str(e["bead_id"]).startswith(bob + ".")]
    assert len(closes) == len(set(closes)) == 5, closes
    assert [e["bead_id"] for e in evs if e["type"] == "done"] == [bob]


def _session_pid(town: Town, agent: str) -> int | None:
    sessions = Sessions(town)
    cfg = town.agent(agent)
    return sessions.provider_for(cfg).pid(sessions.session_name(cfg))


def _overview(town: Town) -> dict[str, Any]:
    with town.ledger("tester") as led:
        return town_overview(town, led)


def _ts(ts: str) -> float:
    from gastown.controller.dispatch import epoch

    return epoch(ts)


def _git(repo: str, *args: str) -> str:
    import subprocess

    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                          check=True).stdout
