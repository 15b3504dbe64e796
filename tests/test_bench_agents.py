"""``benchmarks/bench_agents.py`` runs end to end with a handful of agents.

A smoke test, not a measurement: four real headless agents (bash programs on the
``subprocess`` provider) on one node with a SQLite ledger, and four split over
two real ``gt up --node`` controllers on a PostgreSQL server the script starts
itself.  Every close must be answered by a nudge that the agent read from its
standard input, and in the relay round every agent must close its later steps
itself with ``bd close`` -- so a script that measured nothing, or agents that
never ran, fail here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_agents.py"


def test_bench_agents_runs_with_tiny_n(tmp_path: Path) -> None:
    nodes = "1" if os.environ.get("GT_SKIP_POSTGRES") else "1,2"
    out = tmp_path / "agents.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--sizes", "4", "--ledgers", "sqlite", "--nodes", nodes,
         "--idle-s", "1", "--rounds", "1", "--out", str(out)],
        capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    points = json.loads(out.read_text())["points"]
    assert [(p["ledger"], p["nodes"]) for p in points] == \
        [("sqlite", 1)] + ([("pg", 2)] if nodes == "1,2" else [])
    for point in points:
        idle = point["idle"]
        assert idle["processes"] == 8, idle  # a launcher and a bash per agent
        assert idle["events_written"] == 0, idle
        burst = point["bursts"][0]
        assert burst["delivered"] == 4 and burst["dispatch_ms"]["n"] == 4, burst
        assert burst["read_by_agent_ms"]["n"] == 4, burst  # each agent read its nudge
        # the relay: the script closes step 2, each agent closes steps 3, 4 and 5
        # itself with `bd close` as their nudges come, and is told to run gt done
        relay = point["relay"]
        assert relay["agent_closes"] == 12, relay
        assert relay["relay_dispatch_ms"]["n"] == 12 and relay["delivered"] == 16, relay
        if point["nodes"] == 2:
            assert burst["dispatch_ms_A"]["n"] == burst["dispatch_ms_B"]["n"] == 2, burst
            assert len(burst["controller_cpu_s"]) == 2
