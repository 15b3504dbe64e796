"""Nodes on one PostgreSQL ledger: write throughput with N node-like writers, and failover.

Run: ``.venv/bin/python benchmarks/bench_nodes.py [--quick] [--pg-url URL]``

1. **Ledger write throughput.** 1, 2 and 4 writer processes, each standing for
   one node's agents (side by side with the same writers on one SQLite file,
   the one-machine town): it opens its own ledger on the server and, for a fixed
   time, creates a bead, claims it and closes it (three write transactions, each
   with its event) as fast as it can.  Reported: transactions per second in
   all, per process, and the median latency of one create/claim/close cycle.
2. **Failover.** Two real controllers, ``gt up --node A`` and ``--node B`` in two
   town folders on the same ledger (no agents); the leader is killed with
   SIGKILL and the time until the other one's ``node.leader`` event is
   measured (the event's server-side time against the moment of the kill).  The
   killed node is started again (it comes back as a follower) and the roles
   swap, for several rounds; ``[nodes] lease`` is 3 s and 1 s.

Without ``--pg-url`` a throw-away PostgreSQL server is started the way the test
suite starts one (``fsync=off``, ``synchronous_commit=off``: it measures the
ledger's own cost, not the disk's).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from gastown import Ledger  # noqa: E402

WRITER = textwrap.dedent("""\
    import json, sys, time
    from gastown import Ledger
    url, start, seconds = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    led = Ledger.open(url, actor=f"bench/writer/{sys.argv[4]}")
    while time.time() < start:
        time.sleep(0.001)
    n, cycles = 0, []
    end = start + seconds
    while time.time() < end:
        t0 = time.perf_counter()
        b = led.create("node work", issue_type="task")
        led.claim(b["id"])
        led.close_bead(b["id"])
        cycles.append(time.perf_counter() - t0)
        n += 3
    led.close()
    print(json.dumps({"tx": n, "cycles": cycles}))
""")


def throughput(url: str, writers: int, seconds: float) -> dict[str, Any]:
    """``writers`` processes writing for ``seconds``; totals and cycle latency."""
    script = WRITER
    start = time.time() + 2.0  # every process connected and waiting
    procs = [subprocess.Popen([sys.executable, "-c", script, url, str(start), str(seconds),
                               str(i)], stdout=subprocess.PIPE, text=True)
             for i in range(writers)]
    outs = [json.loads(p.communicate(timeout=seconds + 120)[0]) for p in procs]
    tx = sum(o["tx"] for o in outs)
    cycles = [c for o in outs for c in o["cycles"]]
    return {"writers": writers, "tx_per_s": round(tx / seconds),
            "tx_per_s_per_writer": round(tx / seconds / writers),
            "cycle_ms_median": round(statistics.median(cycles) * 1000, 2),
            "cycle_ms_p95": round(sorted(cycles)[int(len(cycles) * 0.95)] * 1000, 2)}


def _node_town(root: Path, url: str, first: bool, lease: float) -> Any:
    from gastown.town.core import init_town

    root.mkdir()
    Ledger.init(str(root), prefix="n", db=url, actor="bench", attach=not first).close()
    town = init_town(str(root), name="n", prefix="n", provider="subprocess", actor="bench")
    with open(town.config_path, "a", encoding="utf-8") as fh:
        fh.write(f"\n[nodes]\nlease = {lease}\n")
    town.reload()
    return town


def _leader_events(url: str, node: str, after_seq: int) -> list[dict[str, Any]]:
    with Ledger.open(url, actor="bench") as led:
        return [e for e in led.events(since_seq=after_seq, types=["node.leader"])
                if (e["payload"] or {}).get("node") == node]


def _wait_leader(url: str, node: str, after_seq: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _leader_events(url, node, after_seq)
        if found:
            return found[0]
        time.sleep(0.02)
    raise SystemExit(f"bench_nodes: node {node} did not lead within {timeout}s")


def failover(url: str, work: Path, lease: float, rounds: int) -> dict[str, Any]:
    """Kill the leader ``rounds`` times; seconds from SIGKILL to the next leader."""
    from gastown.controller.dispatch import epoch
    from gastown.controller.service import down, up

    towns = {"A": _node_town(work / f"a-{lease:g}", url, False, lease),
             "B": _node_town(work / f"b-{lease:g}", url, False, lease)}
    times: list[float] = []
    try:
        with Ledger.open(url, actor="bench") as led:
            seq = led.last_event_seq()
        up(towns["A"], node="A")
        _wait_leader(url, "A", seq, 30)
        up(towns["B"], node="B")
        leader, other = "A", "B"
        for _ in range(rounds):
            time.sleep(lease / 2)  # the follower has beaten a few times
            with Ledger.open(url, actor="bench") as led:
                seq = led.last_event_seq()
            pid = json.loads(Path(towns[leader].gt_dir, "controller.json").read_text())["pid"]
            killed = time.time()
            os.kill(pid, signal.SIGKILL)
            ev = _wait_leader(url, other, seq, lease * 4 + 10)
            times.append(epoch(ev["ts"]) - killed)
            up(towns[leader], node=leader)  # back, as a follower
            leader, other = other, leader
    finally:
        for town in towns.values():
            down(town, timeout=10)
    return {"lease_s": lease, "rounds": rounds,
            "failover_s_median": round(statistics.median(times), 2),
            "failover_s_min": round(min(times), 2), "failover_s_max": round(max(times), 2)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs, fewer rounds")
    ap.add_argument("--no-failover", action="store_true", help="only the write throughput")
    ap.add_argument("--pg-url", help="an empty PostgreSQL database to use")
    args = ap.parse_args()
    seconds = 3.0 if args.quick else 8.0
    rounds = 3 if args.quick else 5
    work = Path(tempfile.mkdtemp(prefix="bench-nodes-"))
    server = None
    results: dict[str, Any] = {"python": sys.version.split()[0]}
    try:
        url = args.pg_url
        if not url:
            from conftest import _start_pg_server  # the test suite's throw-away server

            server = _start_pg_server()
            server.admin('CREATE DATABASE "bench_nodes"')
            url = server.url("bench_nodes")
        (work / "seed").mkdir()
        Ledger.init(str(work / "seed"), prefix="n", db=url, actor="bench").close()
        # the peer: the same writers on one machine's SQLite file (what nodes replace)
        (work / "sqlite").mkdir()
        Ledger.init(str(work / "sqlite"), prefix="n", actor="bench").close()
        sqlite = str(work / "sqlite" / ".beads" / "beads.db")
        results["throughput"] = []
        for n in (1, 2, 4):
            for backend, target in (("postgresql", url), ("sqlite", sqlite)):
                row = {"backend": backend, **throughput(target, n, seconds)}
                results["throughput"].append(row)
                print(f"{backend} writers={row['writers']}: {row['tx_per_s']} tx/s "
                      f"({row['tx_per_s_per_writer']}/writer), cycle median "
                      f"{row['cycle_ms_median']} ms, p95 {row['cycle_ms_p95']} ms", flush=True)
        leases = () if args.no_failover else (3.0, 1.0)
        results["failover"] = [failover(url, work, lease, rounds) for lease in leases]
        for row in results["failover"]:
            print(f"lease {row['lease_s']:g}s: failover median {row['failover_s_median']} s "
                  f"(min {row['failover_s_min']}, max {row['failover_s_max']}, "
                  f"{row['rounds']} rounds)", flush=True)
    finally:
        if server is not None:
            server.stop()
            shutil.rmtree(server.base_dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "nodes.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
