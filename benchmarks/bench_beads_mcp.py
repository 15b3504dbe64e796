"""Per-call latency of the beads MCP server (beads-mcp 1.3.2, unmodified) on our ``bd``.

Builds (or reuses) the cached virtual environment of tests/test_beads_mcp.py,
imports a 1,000-bead ledger, then drives the server over stdio with the official
``mcp`` client (tests/helpers/beads_mcp_driver.py): each tool is called
``--reps`` times (default 20, 5 with ``--quick``) after one warm-up call, and the
median wall time per call is reported next to the median of the same ``bd``
command run directly.  Writes ``benchmarks/results/beads_mcp.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BD = str(Path(sys.executable).parent / "bd")
sys.path.insert(0, str(ROOT / "tests"))

from test_beads_mcp import DRIVER, beads_mcp_python  # noqa: E402

#: tool, its arguments, and the bd command beads-mcp runs for it
CASES: list[tuple[str, dict[str, object], list[str]]] = [
    ("ready", {}, ["ready", "--limit", "10", "--json"]),
    ("list", {"status": "open"}, ["list", "--status", "open", "--limit", "20", "--json"]),
    ("show", {"issue_id": "$ID"}, ["show", "$ID", "--json"]),
    ("blocked", {}, ["blocked", "--json"]),
    ("stats", {}, ["stats", "--json"]),
    ("comments", {"issue_id": "$ID"}, ["comments", "$ID", "--json"]),
    ("create", {"title": "bench"}, ["create", "bench", "-p", "2", "-t", "task", "--json"]),
    ("update", {"issue_id": "$ID", "priority": 1}, ["update", "$ID", "--priority", "1",
                                                     "--json"]),
]


def make_ledger(ws: Path, n: int) -> str:
    """A git repo with a ledger of ``n`` beads (random blocks edges); returns one open id."""
    subprocess.run(["git", "init", "-q", str(ws)], check=True)
    subprocess.run([BD, "init", "--prefix", "bm", "-q"], cwd=ws, check=True)
    rng = random.Random(7)
    stamp = "2026-01-01T00:00:00Z"
    lines = []
    for i in range(n):
        obj: dict[str, object] = {"id": f"bm-{i:04d}", "title": f"bead {i}",
                                  "description": "benchmark bead with some text",
                                  "status": "closed" if rng.random() < 0.35 else "open",
                                  "priority": rng.randint(0, 4), "issue_type": "task",
                                  "created_at": stamp, "updated_at": stamp}
        if obj["status"] == "closed":
            obj["closed_at"] = stamp
        if i and rng.random() < 0.5:
            obj["dependencies"] = [{"issue_id": obj["id"], "depends_on_id":
                                    f"bm-{rng.randrange(i):04d}", "type": "blocks",
                                    "created_at": stamp}]
        lines.append(json.dumps(obj))
    (ws / "seed.jsonl").write_text("\n".join(lines) + "\n")
    subprocess.run([BD, "import", "seed.jsonl", "-q"], cwd=ws, check=True, capture_output=True)
    ready = json.loads(subprocess.run([BD, "ready", "--json"], cwd=ws, check=True,
                                      capture_output=True, text=True).stdout)
    return str(ready[0]["id"])


def direct(ws: Path, args: list[str], reps: int) -> float:
    env = {**os.environ, "BD_ACTOR": "bench"}
    times = []
    for i in range(reps + 1):
        start = time.perf_counter()
        subprocess.run([BD, *args], cwd=ws, env=env, check=True, capture_output=True)
        if i:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def drive(ws: Path, tmp: Path, calls: list[tuple[str, dict[str, object]]],
          reps: int) -> dict[str, list[float]]:
    """Seconds per call of each ``(tool, arguments)`` through beads-mcp in ``ws``.

    Each tool is called ``reps + 1`` times in one server session (the driver);
    the first, warm-up call is left out.  ``tmp`` holds the driver's call list.
    """
    python = beads_mcp_python()
    plan = [[tool, targs] for tool, targs in calls for _ in range(reps + 1)]
    (tmp / "calls.json").write_text(json.dumps(plan))
    env = {**os.environ, "BEADS_DRIVER_WS2": str(tmp)}
    out = subprocess.run([str(python), str(DRIVER), str(ws), BD, str(tmp / "calls.json")],
                         capture_output=True, text=True, env=env, check=True)
    done = [c for c in json.loads(out.stdout)["calls"] if not c["tool"].startswith("resource:")]
    times: dict[str, list[float]] = {}
    for n, (tool, _targs) in enumerate(calls):
        mine = done[n * (reps + 1):(n + 1) * (reps + 1)]
        assert all(c["ok"] for c in mine), [c for c in mine if not c["ok"]][:1]
        times[tool] = [c["seconds"] for c in mine[1:]]
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5 calls per tool")
    parser.add_argument("--reps", type=int, default=0, help="calls per tool")
    parser.add_argument("--beads", type=int, default=1000)
    args, _ = parser.parse_known_args()
    reps = args.reps or (5 if args.quick else 20)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        ws.mkdir()
        bead = make_ledger(ws, args.beads)
        via_mcp = drive(ws, Path(tmp), [(tool, {k: (bead if v == "$ID" else v)
                                                for k, v in targs.items()})
                                        for tool, targs, _cmd in CASES], reps)
        results = []
        for tool, _targs, cmd in CASES:
            mcp_ms = 1000 * statistics.median(via_mcp[tool])
            bd_ms = 1000 * direct(ws, [bead if a == "$ID" else a for a in cmd], reps)
            results.append({"tool": tool, "mcp_ms": round(mcp_ms, 1), "bd_ms": round(bd_ms, 1),
                            "overhead_ms": round(mcp_ms - bd_ms, 1)})
            print(f"{tool:<10} via MCP {mcp_ms:7.1f} ms   bd alone {bd_ms:7.1f} ms", flush=True)
    data = {"beads": args.beads, "reps": reps, "load": os.getloadavg()[0],
            "python": sys.version.split()[0], "results": results,
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "beads_mcp.json").write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
