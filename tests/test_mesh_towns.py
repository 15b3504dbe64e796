"""Towns as separate processes with their own ledgers and keys, over embedded relays.

Every step runs the installed ``gt``/``bd``: work published and synced, a delegation
paid for in credit and refused past the trust limit, a relay stopped mid-run (work goes
on, the outbox waits, everything catches up), two relays with one down, duplicated
and re-sent delivery, and a hostile relay serving forged events (all refused).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("coincurve")
pytest.importorskip("nostr_sdk")
pytest.importorskip("websockets")

from agents.townkit import BIN, clean_env  # noqa: E402
from gastown.mesh import events, keys, kinds  # noqa: E402
from gastown.mesh.relay import free_port  # noqa: E402
from helpers.fedtowns import bead, js, make_town, run  # noqa: E402


class Relay:
    """``gt mesh relay`` of a town, as its own process."""

    def __init__(self, town: Path, port: int) -> None:
        self.town, self.port = town, port
        self.url = f"ws://127.0.0.1:{port}"
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> Relay:
        self.proc = subprocess.Popen([str(BIN / "gt"), "mesh", "relay", "--port", str(self.port)],
                                     cwd=self.town, env=clean_env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # printed once the relay listens
        assert line.startswith(f"Relay {self.url}"), (line, self.proc.stderr)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def _key(town: Path) -> str:
    return str(js(town, "gt", "mesh", "id")["key"])


@pytest.fixture
def towns(tmp_path: Path) -> Iterator[dict[str, Any]]:
    a = make_town(tmp_path, "atown", "alice.example", 'publish = "all"')
    b = make_town(tmp_path, "btown", "bob.example", 'publish = "all"')
    ka, kb = _key(a), _key(b)
    run(a, "gt", "mesh", "peer", "add", "b", "gt://bob.example/btown", kb)
    run(b, "gt", "mesh", "peer", "add", "a", "gt://alice.example/atown", ka)
    relays = [Relay(a, free_port()), Relay(b, free_port())]
    for t in (a, b):
        with open(t / "town.toml", "a", encoding="utf-8") as fh:
            fh.write(f'\n[mesh]\nrelays = ["{relays[0].url}", "{relays[1].url}"]\nacks = 2\n'
                     "credit_max = 100\n")
    relays[0].start()
    relays[1].start()
    yield {"a": a, "b": b, "ka": ka, "kb": kb, "relays": relays}
    for r in relays:
        r.stop()


def _titles(town: Path, peer: str) -> set[str]:
    return {w["bead"]["title"] for w in js(town, "gt", "mesh", "work", peer) if "bead" in w}


def test_work_published_and_synced_and_a_relay_stopped_mid_run(towns: dict[str, Any]) -> None:
    a, b, (r1, _r2) = towns["a"], towns["b"], towns["relays"]
    bead(a, "first across")
    out = js(a, "gt", "mesh", "publish")
    assert out["sent"] == 2 and out["waiting"] == 0  # manifest + one work item, both relays
    js(b, "gt", "mesh", "sync")
    assert _titles(b, "a") == {"first across"}
    # one relay goes down: acks = 2 cannot be met, the events wait in the outbox
    r1.stop()
    bead(a, "during the partition")
    proc = run(a, "gt", "mesh", "publish", rc=3)
    assert "cannot connect" in proc.stderr and "1 waiting" in proc.stdout
    # b still learns through the other relay; a's own work goes on locally
    res = js(b, "gt", "mesh", "sync")
    assert r1.url in res["relays"] and "error" in res["relays"][r1.url]
    assert _titles(b, "a") == {"first across", "during the partition"}
    # the relay comes back (empty: it kept nothing); the outbox drains, b catches up
    r1.start()
    out = js(a, "gt", "mesh", "publish")
    assert out["waiting"] == 0 and out["sent"] == 1
    res = js(b, "gt", "mesh", "sync", "--relay", r1.url)
    assert res["refused"] == 0 and res["relays"][r1.url]["duplicates"] >= 1
    # duplicated delivery from both relays changes nothing
    again = js(b, "gt", "mesh", "sync")
    assert again["accepted"] == 0 and again["refused"] == 0
    assert len(js(b, "gt", "mesh", "work", "a")) == 2
    # protocol mail: signed, synced, and printed without the terminal escapes it carried
    js(a, "gt", "mesh", "mail", "b", "deploy at 5\x1b[2J", "--subject", "hi")
    js(b, "gt", "mesh", "sync")
    inbox = js(b, "gt", "mesh", "inbox")
    assert [(m["from"], m["subject"]) for m in inbox] == [("a", "hi")]
    shown = run(b, "gt", "mesh", "inbox").stdout
    assert "deploy at 5" in shown and "\x1b" not in shown


def test_a_delegation_paid_in_credit_bounded_by_trust(towns: dict[str, Any]) -> None:
    a, b, ka, kb = towns["a"], towns["b"], towns["ka"], towns["kb"]
    for t in (a, b):
        js(t, "gt", "mesh", "publish")
    js(a, "gt", "mesh", "sync")
    js(b, "gt", "mesh", "sync")
    # a stranger to b: trust 0, credit limit 0 -> b refuses a's offer
    assert js(b, "gt", "trust", "a", "--fresh")["trust"] == 0
    off = js(a, "gt", "mesh", "offer", "b", "gt://alice.example/atown/_/x-1", "--bid", "10")
    js(b, "gt", "mesh", "sync")
    assert [o["id"] for o in js(b, "gt", "mesh", "offers")] == [off["offer"]]
    refused = run(b, "gt", "mesh", "respond", off["offer"], rc=4)
    assert "credit limit" in refused.stdout
    # b follows a (and a follows b): distance 1 and a mutual follow -> trust, a limit
    js(b, "gt", "mesh", "follow", "a")
    js(a, "gt", "mesh", "follow", "b")
    js(b, "gt", "mesh", "sync")
    t = js(b, "gt", "trust", "a", "--fresh")
    assert t["distance"] == 1 and t["trust"] == pytest.approx(0.35)
    assert t["credit_limit"] == int(100 * 0.35 ** 2)  # min 0, max 100: 12
    off2 = js(a, "gt", "mesh", "offer", "b", "gt://alice.example/atown/_/x-2", "--bid", "10")
    js(b, "gt", "mesh", "sync")
    done = js(b, "gt", "mesh", "respond", off2["offer"])
    assert done["done"] is True
    js(a, "gt", "mesh", "sync")
    js(a, "gt", "mesh", "accept", done["result"])
    js(b, "gt", "mesh", "sync")
    # the signed acceptance is a debt on both sides, in double entry
    assert js(b, "gt", "credit", "balance", "a") == {"peer": ka, "balance": 10}
    assert js(a, "gt", "credit", "balance", "b") == {"peer": kb, "balance": -10}
    bal = js(b, "gt", "credit", "balance")
    assert sum(bal.values()) == 0 and bal["revenue"] == -10
    # a further bid of 10 would pass the limit of 12: refused
    off3 = js(a, "gt", "mesh", "offer", "b", "gt://alice.example/atown/_/x-3", "--bid", "10")
    js(b, "gt", "mesh", "sync")
    assert "credit limit" in run(b, "gt", "mesh", "respond", off3["offer"], rc=4).stdout
    # a settles (simulated backend); b receives the receipt and the debt is gone
    assert js(a, "gt", "mesh", "settle", "b")["settled"] == 10
    js(b, "gt", "mesh", "sync")
    assert js(b, "gt", "credit", "balance", "a")["balance"] == 0
    assert js(a, "gt", "credit", "balance", "b")["balance"] == 0
    hist = js(b, "gt", "credit", "history", "a")
    assert [h["memo"] for h in hist][-1] == "settlement received"
    t2 = js(b, "gt", "trust", "a", "--fresh")
    assert t2["accepted"] == 1 and t2["receipts"] == 1 and t2["trust"] > t["trust"]


def _hostile_relay(served: list[dict[str, Any]]) -> tuple[str, Any]:
    """A websocket server that answers every REQ with ``served`` (forged events)."""
    from websockets.sync.server import serve

    def handler(ws: Any) -> None:
        for raw in ws:
            msg = json.loads(raw)
            if msg[0] == "REQ":
                for ev in served:
                    ws.send(json.dumps(["EVENT", msg[1], ev]))
                ws.send(json.dumps(["EOSE", msg[1]]))

    port = free_port()
    server = serve(handler, "127.0.0.1", port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"ws://127.0.0.1:{port}", server


def test_a_hostile_relay_gets_nothing_into_the_ledger(towns: dict[str, Any]) -> None:
    a, b = towns["a"], towns["b"]
    bead(a, "genuine")
    js(a, "gt", "mesh", "publish")
    js(b, "gt", "mesh", "sync")
    genuine = [w for w in js(b, "gt", "mesh", "work", "a")][0]
    stranger = keys.derive(b"\x09" * 32, [keys.HARDENED])
    now = int(time.time())
    # a's genuine work item, then forged in every way
    tags = [["d", genuine["d"]], ["gt", genuine["uri"]]]
    forged_item = events.sign(stranger, kinds.WORK_ITEM, json.dumps({"id": "x", "bead": {}}),
                              tags, now + 5)
    served = [
        {**forged_item.as_dict(), "pubkey": genuine["author"]},      # claims a's rig key
        forged_item.as_dict(),                                       # a stranger's key
        {**forged_item.as_dict(), "id": "f" * 64},                   # wrong id
        events.sign(stranger, kinds.WORK_ITEM, "{}", tags, now + 99999).as_dict(),  # future
        {"id": 1, "junk": True},                                     # malformed
    ]
    url, server = _hostile_relay(served)
    try:
        res = js(b, "gt", "mesh", "sync", "--relay", url)
    finally:
        server.shutdown()
    assert res["accepted"] == 0 and res["refused"] == 2 * len(served)  # manifests REQ too
    assert [w["event"] for w in js(b, "gt", "mesh", "work", "a")] == [genuine["event"]]
    assert js(b, "gt", "mesh", "status")["refused"] == 2 * len(served)


def test_a_federation_remote_over_a_relay(towns: dict[str, Any]) -> None:
    a, b, (r1, _r2) = towns["a"], towns["b"], towns["relays"]
    bid = bead(a, "read me through a relay")
    js(a, "gt", "mesh", "publish")
    run(b, "gt", "remote", "add", "alice", "gt://alice.example/atown", "--url", r1.url)
    out = js(b, "gt", "remote", "sync", "alice")
    assert out[0]["applied"] == 1
    shown = js(b, "bd", "show", f"gt://alice.example/atown/_/{bid}")
    assert shown[0]["title"] == "read me through a relay" and shown[0]["remote"] == "alice"
    assert [x["id"] for x in js(b, "bd", "list", "--remote=alice")] == [bid]
    # gt trust takes a remote's name too
    assert js(b, "gt", "trust", "alice")["peer"] == towns["ka"]
    # a relay remote of a town not pinned to a key is refused with one line
    run(b, "gt", "remote", "add", "carol", "gt://carol.example/c", "--url", r1.url)
    proc = run(b, "gt", "remote", "sync", "carol", rc=3)
    assert "not pinned to a key" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_bad_input_is_one_line_with_stable_codes(tmp_path: Path) -> None:
    from helpers.fedtowns import one_line_error

    t = make_town(tmp_path, "ctown", "carol.example")
    assert "64 hex digits" in one_line_error(
        run(t, "gt", "mesh", "peer", "add", "x", "gt://a.example/b", "nothex", rc=2))
    assert "'self' is this town's own" in one_line_error(
        run(t, "gt", "mesh", "peer", "add", "self", "gt://a.example/b", "ab" * 32, rc=2))
    assert "no peer 'nobody'" in one_line_error(run(t, "gt", "trust", "nobody", rc=3))
    assert "no relays" in one_line_error(run(t, "gt", "mesh", "sync", rc=2))
    with open(t / "town.toml", "a", encoding="utf-8") as fh:
        fh.write('\n[mesh]\nrelays = ["http://not-a-relay"]\n')
    assert "ws:// or wss://" in one_line_error(run(t, "gt", "mesh", "id", rc=5))
    # the secret is owner-only
    assert (t / ".gt" / "mesh").exists() is False or \
        (t / ".gt" / "mesh" / "secret").stat().st_mode & 0o077 == 0
