"""How long cost accounting takes over many usage records (``gt costs``, budget checks).

A town of ``--agents`` agents (configuration only: no sessions run), each with a
Claude Code transcript of ``--records`` API messages in its project directory
(every message written on two lines, as Claude Code writes one per content
block), plus sessions and slings in the event log for attribution.  Timed:

* ``gt costs --json`` (a whole process: read, de-duplicate, attribute, price);
* ``gt costs --by molecule --json``;
* :func:`check_budgets` in process (what the controller runs every 30 s);
* the peer, ``ccusage daily --json --offline`` (Claude Code's usage reader,
  https://github.com/ryoppippi/ccusage, Node) over the same transcripts, when
  ``--ccusage PATH`` names its binary.

Usage: ``.venv/bin/python benchmarks/bench_costs.py [--agents 10] [--records 5000]
[--rounds 5] [--ccusage /path/to/node_modules/.bin/ccusage]``.
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

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from agents.townkit import make_repo  # noqa: E402
from agents.usagekit import claude_line  # noqa: E402
from gastown.config.edit import append_table  # noqa: E402
from gastown.town.budgets import check_budgets  # noqa: E402
from gastown.town.core import init_town  # noqa: E402
from gastown.town.rigs import add_rig  # noqa: E402
from gastown.town.usage import claude_project_dir  # noqa: E402

BIN = Path(sys.executable).parent


def median_ms(fn: object, rounds: int) -> float:
    """The median wall time of ``fn()`` over ``rounds`` runs, in milliseconds."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--agents", type=int, default=10)
    ap.add_argument("--records", type=int, default=5000, help="API messages per agent")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--ccusage", help="the ccusage binary, to time it side by side")
    ap.add_argument("--quick", action="store_true", help="4 agents x 1,000 messages, 3 rounds")
    a, _rest = ap.parse_known_args()  # ./run bench passes its options to every script
    if a.quick:
        a.agents, a.records, a.rounds = 4, 1000, 3
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        claude = root / "claude"
        town = init_town(str(root / "town"), name="bench", prefix="b", actor="bench")
        add_rig(town, "app", str(make_repo(root / "src")), actor="bench")
        names = [f"a{i}" for i in range(a.agents)]
        for n in names:
            append_table(town.config_path, f"agents.{n}",
                         {"rig": "app", "role": "worker", "preset": "command",
                          "command": ["true"]})
        with open(town.config_path, "a", encoding="utf-8") as fh:
            fh.write(f'\n[costs]\nclaude_dir = "{claude}"\n[budgets]\ntown = "$1000/day"\n')
        town.reload()
        start = time.time() - a.records - 100
        size = 0
        with town.ledger("bench") as led:
            for n in names:
                bead = led.create(f"work of {n}")["id"]
                led.emit("session.started", None, {"agent": n, "provider": "tmux"})
                led.emit("sling", bead, {"agent": n})
                proj = Path(claude_project_dir(str(claude), town.workdir(town.agent(n))))
                proj.mkdir(parents=True)
                with open(proj / "s.jsonl", "w", encoding="utf-8") as fh:
                    for i in range(a.records):
                        line = claude_line(start + i, f"{n}-{i}", "claude-sonnet-4-5",
                                           120, 400, 2000, 30000) + "\n"
                        fh.write(line + line)
                size += (proj / "s.jsonl").stat().st_size
        env = {**os.environ, "GT_TOWN": town.root, "BD_ACTOR": "bench"}
        total = a.agents * a.records

        def gt_costs(*extra: str) -> None:
            subprocess.run([str(BIN / "gt"), "costs", "--json", *extra], env=env, check=True,
                           capture_output=True)

        out = json.loads(subprocess.run([str(BIN / "gt"), "costs", "--json"], env=env,
                                        check=True, capture_output=True, text=True).stdout)
        assert sum(g["calls"] for g in out["groups"]) == total, out
        results = {
            "gt costs --json": median_ms(gt_costs, a.rounds),
            "gt costs --by molecule --json": median_ms(lambda: gt_costs("--by", "molecule"),
                                                       a.rounds),
        }
        with town.ledger("bench") as led:
            results["check_budgets (in process)"] = median_ms(
                lambda: check_budgets(town, led, time.time()), a.rounds)
        if a.ccusage:
            penv = {**os.environ, "CLAUDE_CONFIG_DIR": str(claude)}

            def peer() -> None:
                subprocess.run([a.ccusage, "daily", "--json", "--offline"], env=penv,
                               check=True, capture_output=True)

            results["peer: ccusage daily --json --offline"] = median_ms(peer, a.rounds)
        print(f"{a.agents} agents x {a.records} messages = {total} records "
              f"({2 * total} transcript lines, {size / 1e6:.1f} MB); medians of {a.rounds}")
        for k, v in results.items():
            print(f"| {k} | {v:,.0f} ms | {total / v * 1000:,.0f} records/s |")
        (HERE / "results").mkdir(exist_ok=True)
        (HERE / "results" / "costs.json").write_text(json.dumps(
            {"agents": a.agents, "records": total, "bytes": size, "rounds": a.rounds,
             "median_ms": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
