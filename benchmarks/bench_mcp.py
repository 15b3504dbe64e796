"""Per-call latency of ``gt mcp`` against beads-mcp on our ``bd``, same ledger, side by side.

One 1,000-bead ledger (bench_beads_mcp.make_ledger: 35 % closed, random
``blocks`` edges).  ``show`` and ``ready`` (10 beads) are each called ``--reps``
times (default 30) after one warm-up call, in ``--rounds`` rounds (default 3;
``--quick``: one round of 10) that alternate between the two servers, so both
see the same moments of a busy machine; over stdio with the official ``mcp``
client:

* ``gt mcp --db …`` (this project: the library in process, one open ledger),
  driven from this process with the SDK 2.x client;
* beads-mcp 1.3.2, unmodified (one ``bd`` process per call), driven by
  tests/helpers/beads_mcp_driver.py in its cached environment.

Medians per call, the ratio, and the size of each server's ``tools/list``
answer are printed and written to ``benchmarks/results/mcp.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))

from bench_beads_mcp import BD, drive, make_ledger  # noqa: E402

from test_beads_mcp import beads_mcp_python  # noqa: E402

#: the tools compared: (name, our arguments, beads-mcp's arguments); "$ID" is an open bead
CASES = [("show", {"id": "$ID"}, {"issue_id": "$ID"}),
         ("ready", {"limit": 10}, {"limit": 10})]

_LIST_SIZE = """
import asyncio, os, sys
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
async def main():
    env = dict(os.environ, PATH=os.path.dirname(sys.argv[2]) + os.pathsep + os.environ["PATH"],
               BEADS_WORKING_DIR=sys.argv[1])
    p = StdioServerParameters(command=sys.executable, args=["-m", "beads_mcp"], env=env,
                              cwd=sys.argv[1])
    with open(os.devnull, "w") as err:
        async with stdio_client(p, errlog=err) as (r, w), ClientSession(r, w) as s:
            await s.initialize()
            print(len((await s.list_tools()).model_dump_json(by_alias=True, exclude_none=True)))
asyncio.run(main())
"""


def _fill(args: dict[str, object], bead: str) -> dict[str, object]:
    return {k: (bead if v == "$ID" else v) for k, v in args.items()}


async def ours(db: str, bead: str, reps: int) -> tuple[dict[str, list[float]], int]:
    """Seconds per call of each case through ``gt mcp``, and its tools/list size."""
    from mcp import ClientSession, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=str(BIN / "gt"), args=["mcp", "--db", db],
                                   env={**os.environ, "BD_ACTOR": "bench"})
    out: dict[str, list[float]] = {}
    with open(os.devnull, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (r, w), ClientSession(r, w) as s:
            await s.initialize()
            size = len((await s.list_tools()).model_dump_json(by_alias=True,
                                                              exclude_none=True))
            for tool, args, _ in CASES:
                times = []
                for i in range(reps + 1):
                    start = time.perf_counter()
                    res = await s.call_tool(tool, _fill(args, bead))
                    if i:
                        times.append(time.perf_counter() - start)
                    assert not res.is_error, res
                out[tool] = times
    return out, size


def theirs(ws: Path, bead: str, reps: int, tmp: Path) -> tuple[dict[str, list[float]], int]:
    """Seconds per call of each case through beads-mcp, and its tools/list size."""
    out = drive(ws, tmp, [(tool, _fill(bargs, bead)) for tool, _args, bargs in CASES], reps)
    python = beads_mcp_python()
    size = subprocess.run([str(python), "-c", _LIST_SIZE, str(ws), BD], capture_output=True,
                          text=True, check=True, cwd=ws).stdout.strip()
    return out, int(size)


def main() -> int:
    """Run the comparison; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one round of 10 calls per tool")
    parser.add_argument("--reps", type=int, default=0, help="calls per tool")
    parser.add_argument("--beads", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    args, _ = parser.parse_known_args()
    reps = args.reps or (10 if args.quick else 30)
    rounds = 1 if args.quick else args.rounds
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        ws = tmp / "ws"
        ws.mkdir()
        bead = make_ledger(ws, args.beads)
        db = str(ws / ".beads" / "beads.db")
        load = os.getloadavg()[0]
        ms: dict[str, list[float]] = {}
        bs: dict[str, list[float]] = {}
        for _ in range(rounds):  # alternate, so both see the same moments of a busy machine
            got, my_size = asyncio.run(ours(db, bead, reps))
            for tool, times in got.items():
                ms.setdefault(tool, []).extend(times)
            got, their_size = theirs(ws, bead, reps, tmp)
            for tool, times in got.items():
                bs.setdefault(tool, []).extend(times)
    mine = {t: 1000 * statistics.median(v) for t, v in ms.items()}
    other = {t: 1000 * statistics.median(v) for t, v in bs.items()}
    results = []
    for tool, _a, _b in CASES:
        ratio = other[tool] / mine[tool]
        results.append({"tool": tool, "gt_mcp_ms": round(mine[tool], 2),
                        "beads_mcp_ms": round(other[tool], 1), "ratio": round(ratio, 1)})
        print(f"{tool:<6} gt mcp {mine[tool]:7.2f} ms   beads-mcp {other[tool]:7.1f} ms   "
              f"{ratio:5.1f}x", flush=True)
    print(f"tools/list: gt mcp {my_size} chars, beads-mcp {their_size} chars", flush=True)
    data = {"beads": args.beads, "reps": reps, "rounds": rounds, "load": load,
            "python": sys.version.split()[0],
            "results": results, "tools_list_chars": {"gt_mcp": my_size,
                                                     "beads_mcp": their_size},
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "mcp.json").write_text(json.dumps(data, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
