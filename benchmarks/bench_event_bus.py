"""Event bus benchmark: write→subscriber latency and idle CPU, on SQLite and PostgreSQL.

Run: ``.venv/bin/python benchmarks/bench_event_bus.py [--quick] [--pg-url URL]``

For each backend a writer *process* emits events (one transaction each, a
fixed gap apart), each carrying the wall-clock time just before its commit; a
subscriber in this process records when each arrives.  Measured three ways:

* ``bus``: :class:`gastown.ledger.bus.EventBus` as shipped (``LISTEN/NOTIFY`` on
  PostgreSQL, the WAL-file signal on SQLite);
* ``poll-0.1``: the same subscription with no wake-up signal, reading the log
  every 0.1 s -- what the controller's follower did before the bus.

Idle CPU: this process's user+system time while one subscriber waits with no
events for a few seconds.  Without ``--pg-url`` a throw-away PostgreSQL server
is started with the test suite's helper (skipped when PostgreSQL is not
installed).  Writes ``benchmarks/results/event_bus.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from gastown import Ledger  # noqa: E402
from gastown.ledger.bus import EventBus  # noqa: E402
from gastown.ledger.signals import TimerSignal  # noqa: E402

_WRITER = textwrap.dedent("""
    import sys, time
    from gastown import Ledger
    url, count, gap = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    led = Ledger.open(url, actor="bench")
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(count):
        led.emit("bench.tick", None, {"i": i, "t": time.time()})
        time.sleep(gap)
    led.close()
""")


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def latency(url: str, led: Ledger, count: int, gap: float, poll_only: bool) -> dict[str, Any]:
    """Write ``count`` events from another process; latencies at the subscriber (ms)."""
    store: Any = led.store
    if poll_only:  # no wake-up signal: read the log every 0.1 s
        store.change_signal = TimerSignal
    bus = EventBus(led, fallback=0.1) if poll_only else EventBus(led)
    env = {"PYTHONPATH": str(ROOT / "src")}
    with bus:
        sub = bus.subscribe(types=["bench.tick"])
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, url, str(count), str(gap)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                env={**os.environ, **env})
        assert proc.stdout is not None and proc.stdin is not None
        proc.stdout.readline()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        lat: list[float] = []
        for _ in range(count):
            ev = sub.get(timeout=30)
            if ev is None:
                break
            lat.append((time.time() - ev["payload"]["t"]) * 1000)
        proc.wait(timeout=60)
    if poll_only:
        del store.change_signal  # the class's method again
    return {"events": len(lat), "p50_ms": round(statistics.median(lat), 2),
            "p95_ms": round(_pct(lat, 0.95), 2), "max_ms": round(max(lat), 2)}


def idle_cpu(led: Ledger, seconds: float) -> dict[str, Any]:
    """CPU time of this process while one subscriber waits with nothing to read."""
    with EventBus(led) as bus:
        sub = bus.subscribe()
        sub.get(timeout=0.2)
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.monotonic()
        sub.get(timeout=seconds)
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(wall, 2), "cpu_ms": round(cpu * 1000, 1),
            "cpu_share_pct": round(100 * cpu / wall, 3)}


def run_backend(name: str, url: str, led: Ledger, quick: bool) -> dict[str, Any]:
    """All measurements on one backend."""
    count = 50 if quick else 200
    result = {"bus": latency(url, led, count, 0.02, poll_only=False),
              "poll-0.1": latency(url, led, count, 0.02, poll_only=True),
              "idle": idle_cpu(led, 3.0 if quick else 10.0)}
    print(f"{name:10} bus p50 {result['bus']['p50_ms']:6.2f} ms p95 "
          f"{result['bus']['p95_ms']:6.2f} ms | poll-0.1 p50 {result['poll-0.1']['p50_ms']:6.2f}"
          f" ms p95 {result['poll-0.1']['p95_ms']:6.2f} ms | idle CPU "
          f"{result['idle']['cpu_share_pct']:.3f} %", flush=True)
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer events, shorter idle")
    ap.add_argument("--pg-url", help="an empty PostgreSQL database to use")
    args = ap.parse_args()
    results: dict[str, Any] = {"python": sys.version.split()[0]}
    work = Path(tempfile.mkdtemp(prefix="bench-bus-"))
    server = None
    try:
        for sub in ("sqlite", "pg"):
            (work / sub).mkdir()
        led = Ledger.init(str(work / "sqlite"), prefix="b", actor="bench")
        store: Any = led.store
        results["sqlite"] = run_backend("sqlite", str(store.path), led, args.quick)
        led.close()
        url = args.pg_url
        if url is None:
            sys.path.insert(0, str(ROOT / "tests"))
            try:
                from conftest import _start_pg_server  # the test suite's throw-away server

                server = _start_pg_server()
                server.admin('CREATE DATABASE "bench_bus"')
                url = server.url("bench_bus")
            except BaseException as exc:  # noqa: BLE001 - pytest.fail raises outside tests
                print(f"postgresql: skipped ({str(exc).splitlines()[0]})")
        if url:
            led = Ledger.init(str(work / "pg"), prefix="b", db=url, actor="bench")
            results["postgresql"] = run_backend("postgresql", url, led, args.quick)
            led.close()
    finally:
        if server is not None:
            server.stop()
            shutil.rmtree(server.base_dir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    out = ROOT / "benchmarks" / "results" / "event_bus.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
