"""The embedded relay with and without its disk store (``gt mesh relay`` vs ``--memory``).

    .venv/bin/python benchmarks/bench_mesh_store.py [--events 2000] [--runs 3]

For each mode, a relay process (our write policy, as ``gt mesh relay`` runs it) admits
``--events`` pre-signed item events sent in pages of 500 (each page waits for every
OK): events admitted per second.  With the store, the relay is then restarted and the
time until it is ready again (the file re-checked and every event sent back into the
relay) is measured, and a fetch confirms every event is served.  Medians of ``--runs``.
Writes benchmarks/results/mesh_store.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

from gastown.mesh import events, keys, wire  # noqa: E402
from gastown.mesh.relay import free_port  # noqa: E402

URI = "gt://bench.example/b"
_RELAY = """
import sys
from gastown.mesh.relay import WritePolicy, serve
from gastown.mesh.relaystore import RelayStore
store = RelayStore(sys.argv[3]) if sys.argv[3] != "-" else None
serve("127.0.0.1", int(sys.argv[1]), WritePolicy({sys.argv[2]: sys.argv[4]}, store=store),
      lambda u: print(u, flush=True))
"""


def _start(port: int, pk: str, store: str) -> tuple[subprocess.Popen[str], float]:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _RELAY, str(port), pk, store, URI],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("ws://"), line
    return proc, time.perf_counter() - t0


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(timeout=30)


def run_once(evs: list[events.Event], pk: str, with_store: bool, tmp: str) -> dict[str, float]:
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    path = os.path.join(tmp, f"relay-{port}.jsonl") if with_store else "-"
    proc, start_empty = _start(port, pk, path)
    try:
        t0 = time.perf_counter()
        for i in range(0, len(evs), 500):
            got = wire.publish(url, evs[i:i + 500], timeout=120)
            assert all(ok for ok, _m in got.values()) and len(got) == len(evs[i:i + 500])
        admit = len(evs) / (time.perf_counter() - t0)
    finally:
        _stop(proc)
    out = {"admit_per_s": admit, "start_empty_s": start_empty}
    if with_store:
        proc, restart = _start(port, pk, path)
        try:
            served = len({e["id"] for e in wire.fetch(url, {"authors": [pk]}, timeout=120)})
        finally:
            _stop(proc)
        assert served == len(evs), (served, len(evs))
        out.update(restart_s=restart, file_bytes=os.path.getsize(path))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    sk, pk = keys.entity_secret(b"\x09" * 32, "town")
    now = int(time.time())
    evs = [events.sign(sk, 4710, json.dumps({"n": n, "status": "in_progress"}),
                       [["gt", f"{URI}/web/b-{n}"]], now - args.events + n)
           for n in range(args.events)]
    res: dict[str, Any] = {"events": args.events, "runs": args.runs}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("memory", "store"):
            runs = [run_once(evs, pk, mode == "store", tmp) for _ in range(args.runs)]
            res[mode] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(mode, json.dumps(res[mode]), flush=True)
    out = HERE / "results" / "mesh_store.json"
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
