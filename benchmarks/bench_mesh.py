"""Mesh scaling curves: scripted agents across towns over embedded relays.

    .venv/bin/python benchmarks/bench_mesh.py [--agents 30,100,500,1000] [--seconds 8]

Measured here (every number in the table says whether it was measured or modelled):

* primitives on one core: BIP-340 sign, verify, and ingest (bounded parse, id
  recomputed, signature checked, authorised, stored in one SQLite transaction per batch);
* for each agent count N: towns of 30 agents (at least 2), each agent a scripted
  key that emits an item event every ``--period`` seconds (claim, status, comment,
  done: no model); publishers in 2 processes, one ``gt mesh relay``-style relay
  (nostr-sdk LocalRelay with our write policy) in its own process, and one
  subscriber town that receives live events and checks each one (id, signature).
  End-to-end latency = subscriber's check done − publisher's signing time (one clock);
* the same offered load into one town on one machine: the events written straight
  into its own ledger (what a single town pays for the same activity);
* a saturation run: publishers send as fast as they can; what the relay admits per second.

Relay storage per agent-hour and CPU per town at an agent's rate are computed from the
measured event size and per-event costs (modelled; the formulas are printed).
Writes benchmarks/results/mesh.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

from gastown.ledger.core import Ledger  # noqa: E402
from gastown.mesh import events, keys, kinds, store  # noqa: E402
from gastown.mesh.ingest import Ingest  # noqa: E402
from gastown.mesh.manifest import KeyEntry, build  # noqa: E402
from gastown.mesh.relay import free_port  # noqa: E402

TOWN_SIZE = 30


def _towns(n_agents: int) -> list[dict[str, Any]]:
    """Towns of up to 30 scripted agents, keys derived as gt mesh derives them."""
    n_towns = max(2, -(-n_agents // TOWN_SIZE))
    towns = []
    for t in range(n_towns):
        seed = t.to_bytes(4, "big") * 8
        sk, pk = keys.entity_secret(seed, "town")
        agents = []
        for a in range(t, n_agents, n_towns):
            ask, apk = keys.entity_secret(seed, "agent", f"agent{a}")
            agents.append((ask, apk))
        towns.append({"sk": sk, "pk": pk, "uri": f"gt://t{t}.bench/c{t}", "agents": agents})
    return towns


def _manifest(t: dict[str, Any]) -> events.Event:
    return build(t["sk"], t["uri"], [KeyEntry(pk, "agent", f"a{i}")
                                     for i, (_sk, pk) in enumerate(t["agents"])], [], None,
                 int(time.time()) - 10)


def _item(t: dict[str, Any], sk: bytes, n: int) -> events.Event:
    op = ("claim", "status", "comment", "status")[n % 4]
    body = {"op": op, "sent": time.time(), "n": n, "note": "scripted agent step " * 3}
    return events.sign(sk, kinds.ITEM_EVENT, json.dumps(body),
                       [["gt", t["uri"]], ["a", f"{kinds.WORK_ITEM}:{t['uri']}/_/b-{n}"],
                        ["op", op], ["prev", "0" * 64]])


def bench_primitives(n: int = 3000) -> dict[str, float]:
    town = _towns(30)[0]
    sk = town["agents"][0][0]
    t0 = time.perf_counter()
    evs = [_item(town, sk, i) for i in range(n)]
    sign_s = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for e in evs:
        events.check(e)
    verify_s = n / (time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as d:
        led = Ledger.init(d, prefix="b", actor="bench")
        store.add_peer(led, "t", town["uri"], town["pk"])
        Ingest(led).run([_manifest(town).as_dict()], "setup")
        raws = [e.to_json() for e in evs]
        t0 = time.perf_counter()
        for i in range(0, n, 200):
            Ingest(led).run(raws[i:i + 200], "bench")
        ingest_s = n / (time.perf_counter() - t0)
        # one town alone: the same events as plain ledger writes (no signatures)
        t0 = time.perf_counter()
        for i in range(0, n, 200):
            led.kv_set_many([(f"local.{i + j}", r) for j, r in enumerate(raws[i:i + 200])],
                            "local", {})
        local_s = n / (time.perf_counter() - t0)
    size = statistics.mean(len(e.to_json().encode()) for e in evs)
    return {"sign_per_s": sign_s, "verify_per_s": verify_s, "ingest_per_s": ingest_s,
            "local_write_per_s": local_s, "event_bytes": size}


RELAY_CODE = """
import json, sys
from gastown.mesh.relay import WritePolicy, serve
allow = json.loads(sys.stdin.read())
serve("127.0.0.1", int(sys.argv[1]), WritePolicy(allow), lambda u: print(u, flush=True))
"""


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _publisher(url: str, towns: list[dict[str, Any]], period: float, seconds: float,
               flood: bool, q: Any) -> None:
    """Scripted agents: every agent one item event per ``period`` (flood: a pre-signed
    pool sent back to back, to find what the relay admits per second)."""
    from websockets.sync.client import connect

    sent = ok = 0
    agents = [(t, sk) for t in towns for sk, _pk in t["agents"]]
    with connect(url, max_size=2**20) as ws:
        if flood:
            pool = [_item(t, sk, i) for i in range(max(1, 1500 // len(agents)))
                    for t, sk in agents]
            start = time.time()
            for e in pool:
                ws.send(json.dumps(["EVENT", e.as_dict()]))
            for _ in pool:
                msg = json.loads(ws.recv(timeout=60))
                ok += msg[0] == "OK" and msg[2] is True
            sent = len(pool)
        else:  # each agent at its own offset in the period (agents are not in step)
            start = time.time()
            gap = period / len(agents)
            n = 0
            while time.time() - start < seconds:
                time.sleep(max(0.0, start + n * gap - time.time()))
                t, sk = agents[n % len(agents)]
                ws.send(json.dumps(["EVENT", _item(t, sk, n).as_dict()]))
                msg = json.loads(ws.recv(timeout=60))
                ok += msg[0] == "OK" and msg[2] is True
                sent += 1
                n += 1
        q.put({"sent": sent, "ok": ok, "cpu": time.process_time(),
               "duration": time.time() - start})


def _subscriber(url: str, seconds: float, q: Any) -> None:
    from websockets.sync.client import connect

    lat: list[float] = []
    with connect(url, max_size=2**20) as ws:
        ws.send(json.dumps(["REQ", "live", {"kinds": [kinds.ITEM_EVENT],
                                             "since": int(time.time())}]))
        end = time.time() + seconds + 3
        while time.time() < end:
            try:
                msg = json.loads(ws.recv(timeout=1))
            except TimeoutError:
                continue
            if msg[0] == "EVENT":
                ev = events.check(events.from_dict(msg[2]))
                lat.append(time.time() - json.loads(ev.content)["sent"])
    q.put({"lat": lat, "cpu": time.process_time()})


def bench_agents(n_agents: int, seconds: float, period: float, flood: bool) -> dict[str, Any]:
    towns = _towns(n_agents)
    port = free_port()
    relay = subprocess.Popen([sys.executable, "-c", RELAY_CODE, str(port)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert relay.stdin and relay.stdout
    relay.stdin.write(json.dumps({t["pk"]: t["uri"] for t in towns}))
    relay.stdin.close()
    url = relay.stdout.readline().strip()
    try:
        from websockets.sync.client import connect

        with connect(url) as ws:  # the towns' manifests first
            for t in towns:
                ws.send(json.dumps(["EVENT", _manifest(t).as_dict()]))
                assert json.loads(ws.recv(timeout=30))[2] is True
        relay_cpu0, rss0 = _cpu(relay.pid), _rss(relay.pid)
        q: Any = mp.Queue()
        sub = mp.Process(target=_subscriber, args=(url, seconds, q))
        if not flood:
            sub.start()
            time.sleep(0.5)
        pubs = [mp.Process(target=_publisher,
                           args=(url, towns[i::2], period, seconds, flood, q)) for i in range(2)]
        t0 = time.time()
        for p in pubs:
            p.start()
        results = [q.get(timeout=seconds + 120) for _ in range(2 + (0 if flood else 1))]
        wall = time.time() - t0
        for p in [*pubs, *([] if flood else [sub])]:
            p.join(timeout=30)
        relay_cpu = _cpu(relay.pid) - relay_cpu0
        rss = _rss(relay.pid) - rss0
    finally:
        relay.terminate()
        relay.wait(timeout=10)
    pub = [r for r in results if "sent" in r]
    lat = sorted(x for r in results if "lat" in r for x in r["lat"])
    sent = sum(r["sent"] for r in pub)
    accepted = sum(r["ok"] for r in pub)
    duration = max(r["duration"] for r in pub)
    out = {"agents": n_agents, "towns": len(towns), "seconds": duration, "sent": sent,
           "accepted": accepted, "events_per_s": accepted / duration,
           "relay_cpu_share": relay_cpu / wall,
           "relay_rss_bytes_per_event": rss / max(1, accepted),
           "publisher_cpu_per_town_s": sum(r["cpu"] for r in pub) / len(towns)}
    if lat:
        out.update({"delivered": len(lat), "p50_ms": 1000 * lat[len(lat) // 2],
                    "p95_ms": 1000 * lat[int(len(lat) * 0.95)]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", default="30,100,500,1000")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--period", type=float, default=5.0,
                    help="seconds between one agent's events (offered load N/period)")
    args = ap.parse_args()
    prim = bench_primitives()
    print(json.dumps(prim, indent=1), flush=True)
    curves = []
    for n in (int(x) for x in args.agents.split(",")):
        r = bench_agents(n, args.seconds, args.period, flood=False)
        s = bench_agents(n, args.seconds, args.period, flood=True)
        r["saturation_events_per_s"] = s["events_per_s"]
        r["saturation_relay_cpu_share"] = s["relay_cpu_share"]
        r["saturation_relay_rss_bytes_per_event"] = s["relay_rss_bytes_per_event"]
        print(json.dumps(r), flush=True)
        curves.append(r)
    out = {"primitives": prim, "curves": curves, "period_s": args.period,
           "load": os.getloadavg()}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "mesh.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
