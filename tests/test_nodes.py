"""Nodes on one PostgreSQL ledger: the leader's lock and lease, heartbeats, refusals.

The board is driven directly here (fast, exact); the two-node town with its
agents, merges and SIGKILLs is in ``test_nodes_e2e.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gastown import Ledger
from gastown.errors import ConflictError, UsageError, ValidationError
from gastown.ledger.nodes import NodeBoard, place, placements, read_board
from gastown.town.core import init_town

LEASE = 1.0


def _board(url: str) -> tuple[Ledger, NodeBoard]:
    led = Ledger.open(url, actor="tester")
    board = NodeBoard(led)
    board.ensure()
    return led, board


@pytest.fixture
def pg_ledger(pg_database: str, tmp_path: Path) -> str:
    (tmp_path / "a").mkdir()
    Ledger.init(str(tmp_path / "a"), prefix="t", db=pg_database, actor="tester").close()
    return pg_database


def test_one_leader_at_a_time_and_a_newcomer_waits_for_the_lease(pg_ledger: str) -> None:
    led_a, a = _board(pg_ledger)
    led_b, b = _board(pg_ledger)
    try:
        a.register("A", "ia", 2, {"pid": 1}, LEASE)
        b.register("B", "ib", 3, {"pid": 2}, LEASE)
        first = a.try_lead("A", "ia", LEASE)
        assert first is not None and first.holder == "A" and first.term == 1
        assert b.try_lead("B", "ib", LEASE) is None, "the lock is A's"
        renewed = a.renew("ia", first.term, LEASE)
        assert renewed is not None and renewed.term == 1 and renewed.expires_in > 0.5
        # A's connection dies (as with SIGKILL): the server frees the lock at once,
        # but B only takes over when A's lease has run out
        a.close()
        took = None
        deadline = time.monotonic() + 5
        gone_at = time.monotonic()
        while took is None and time.monotonic() < deadline:
            took = b.try_lead("B", "ib", LEASE)
            if took is None:
                time.sleep(0.05)
        waited = time.monotonic() - gone_at
        assert took is not None and took.holder == "B" and took.term == 2, "a new term"
        assert 0.3 < waited < LEASE + 2.0, waited
        view = read_board(led_b, LEASE)
        assert view["leader"]["node"] == "B" and view["leader"]["term"] == 2
        # A comes back: its old term is no good any more
        a2 = NodeBoard(led_a)
        assert a2.renew("ia", 1, LEASE) is None
        assert a2.try_lead("A", "ia", LEASE) is None
        a2.close()
    finally:
        b.close()
        led_a.close()
        led_b.close()


def test_heartbeats_say_who_is_alive_and_a_name_is_taken_once(pg_ledger: str) -> None:
    led, a = _board(pg_ledger)
    _, other = _board(pg_ledger)
    try:
        a.register("A", "ia", 4, {"pid": 11, "host": "h"}, LEASE)
        with pytest.raises(ConflictError, match="node 'A' is already up .pid 11 on h"):
            other.register("A", "someone-else", 4, {}, LEASE)
        assert a.beat("A", "ia") and not a.beat("A", "someone-else")
        nodes = read_board(led, LEASE)["nodes"]
        assert [(n["name"], n["alive"], n["capacity"]) for n in nodes] == [("A", True, 4)]
        time.sleep(LEASE + 0.2)
        assert read_board(led, LEASE)["nodes"][0]["state"] == "dead"
        other.register("A", "someone-else", 4, {}, LEASE)  # a dead node's name is free
        other.leave("A", "someone-else")
        assert read_board(led, LEASE)["nodes"][0]["state"] == "stopped"
    finally:
        a.close()
        other.close()
        led.close()


def test_a_clean_stop_hands_the_lease_over_without_waiting(pg_ledger: str) -> None:
    _, a = _board(pg_ledger)
    led, b = _board(pg_ledger)
    try:
        lease = a.try_lead("A", "ia", 30.0)
        assert lease is not None
        a.leave("A", "ia")
        took = b.try_lead("B", "ib", 30.0)
        assert took is not None and took.term == lease.term + 1
    finally:
        a.close()
        b.close()
        led.close()


def test_placement_is_recorded_with_its_event(pg_ledger: str) -> None:
    with Ledger.open(pg_ledger, actor="tester") as led:
        place(led, "ada", "A", "its node", None)
        place(led, "ada", "B", "node A is not alive", "A")
        assert placements(led)["ada"]["node"] == "B"
        evs = led.events(types=["node.placed"])
    assert [(e["payload"]["node"], e["payload"]["from"]) for e in evs] == [("A", None),
                                                                           ("B", "A")]


def test_sqlite_has_no_nodes_and_gt_up_node_is_refused(tmp_path: Path) -> None:
    town = init_town(str(tmp_path / "town"), name="t", prefix="t", actor="tester")
    with town.ledger() as led:
        assert read_board(led, 15.0) == {"nodes": [], "leader": None}
        with pytest.raises(UsageError, match="PostgreSQL"):
            NodeBoard(led)
    env = {k: v for k, v in os.environ.items() if k not in ("GT_TOWN", "BD_DB")}
    proc = subprocess.run([sys.executable, "-m", "gastown.cli.gt", "--town", town.root, "up",
                           "--node", "A"], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert proc.returncode not in (0, 70), proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "needs a PostgreSQL ledger" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    assert not os.path.exists(os.path.join(town.gt_dir, "controller.json")), "nothing started"


def test_node_settings_are_checked(tmp_path: Path) -> None:
    from gastown.config.schema import parse_config

    base = {"town": {"name": "t"}, "rigs": {"r": {"source": "/x"}},
            "agents": {"ada": {"rig": "r", "role": "w", "preset": "command",
                               "command": "true", "node": "A"}}}
    cfg = parse_config({**base, "nodes": {"lease": 3}}, "town.toml")
    assert cfg.agents["ada"].node == "A" and cfg.nodes.lease == 3 and cfg.nodes.beat == 1
    bad = {**base, "agents": {"ada": {**base["agents"]["ada"], "node": "no such/node"}}}
    with pytest.raises(ValidationError, match="agents.ada.node"):
        parse_config(bad, "town.toml")
    with pytest.raises(ValidationError, match="nodes.lease"):
        parse_config({**base, "nodes": {"lease": 0}}, "town.toml")
    with pytest.raises(ValidationError, match="nodes.heartbeat"):
        parse_config({**base, "nodes": {"lease": 3, "heartbeat": 2}}, "town.toml")


def test_the_leader_places_agents_by_their_node_then_by_free_capacity(
        pg_database: str, tmp_path: Path) -> None:
    from gastown.controller.nodes import NodeRuntime
    from gastown.town.config import append_table
    from gastown.town.slinging import sling

    root = tmp_path / "town"
    root.mkdir()
    Ledger.init(str(root), prefix="t", db=pg_database, actor="tester").close()
    town = init_town(str(root), name="t", prefix="t", provider="subprocess", actor="tester")
    with open(town.config_path, "a", encoding="utf-8") as fh:
        fh.write("\n[nodes]\nlease = 3\n")  # room for a loaded machine between beats
    for name, node in (("ada", "A"), ("bob", None), ("cy", None)):
        append_table(town.config_path, f"agents.{name}",
                     {"role": "worker", "preset": "command", "command": ["true"],
                      **({"node": node} if node else {})})
    town.reload()
    led = Ledger.open(pg_database, actor="t/controller")
    runtime = NodeRuntime(town, led, "A", 1, "t/controller", lambda _m: None, lambda: None)
    _, b = _board(pg_database)
    try:
        runtime.start()
        b.register("B", "ib", 3, {}, 3.0)
        assert runtime.is_leader()
        with led.transaction() as t:
            ids = [t.create(f"job {i}")["id"] for i in range(3)]
        for agent, bead in zip(("ada", "bob", "cy"), ids, strict=True):
            sling(town, bead, agent, nudge=False, start=False, actor="tester")
        moves = runtime.place()
        where = {a: r["node"] for a, r in placements(led).items()}
        # ada on her node; the others where most capacity is free (B: 3, A: 1 - ada)
        assert where == {"ada": "A", "bob": "B", "cy": "B"}, moves
        assert runtime.owns(town.agent("ada")) and not runtime.owns(town.agent("bob"))
        assert runtime.place() == [], "a second pass moves nothing"
        # B stops beating (A goes on): its agents move to the one live node, A
        deadline = time.monotonic() + 10
        while read_board(led, 3.0)["nodes"][1]["alive"] and time.monotonic() < deadline:
            runtime.beat()
            time.sleep(0.2)
        runtime.beat()
        runtime.place()
        where = {a: r["node"] for a, r in placements(led).items()}
        assert where == {"ada": "A", "bob": "A", "cy": "A"}
        evs = [e["payload"] for e in led.events(types=["node.placed"])]
        assert {"agent": "bob", "node": "A", "from": "B",
                "why": "node B is not alive"} in evs
    finally:
        runtime.stop()
        b.close()
        led.close()


def test_a_node_back_from_the_dead_stops_sessions_of_agents_moved_away(
        pg_database: str, tmp_path: Path) -> None:
    from gastown.controller.nodes import NodeRuntime
    from gastown.town.config import append_table
    from gastown.town.sessions import Sessions

    root = tmp_path / "town"
    root.mkdir()
    Ledger.init(str(root), prefix="t", db=pg_database, actor="tester").close()
    town = init_town(str(root), name="t", prefix="t", provider="subprocess", actor="tester")
    for name in ("ada", "bob"):
        append_table(town.config_path, f"agents.{name}",
                     {"role": "worker", "preset": "command", "node": "A",
                      "command": [sys.executable, "-c", "import time; time.sleep(60)"]})
    town.reload()
    sessions = Sessions(town)
    led = Ledger.open(pg_database, actor="t/controller")
    runtime = NodeRuntime(town, led, "A", 4, "t/controller", lambda _m: None, lambda: None)
    try:
        # A ran both; while it was down, bob was placed on B (ada stayed on A)
        for name in ("ada", "bob"):
            sessions.start(town.agent(name), actor="tester")
        place(led, "ada", "A", "its node", None)
        place(led, "bob", "B", "node A is not alive", "A")
        runtime.start()
        assert runtime.evict(sessions) == ["bob"]
        assert not sessions.is_alive(town.agent("bob")) and sessions.is_alive(town.agent("ada"))
        evicted = led.events(types=["node.evicted"])
        assert [e["payload"] for e in evicted] == [{"agent": "bob", "node": "A",
                                                    "placed_on": "B"}]
        assert runtime.evict(sessions) == [], "checked once, not every tick"
    finally:
        runtime.stop()
        for name in ("ada", "bob"):
            sessions.stop(town.agent(name))
        led.close()
