"""The hot commands, side by side with an earlier commit (no regression check).

    .venv/bin/python benchmarks/bench_hotpath_compare.py [REF] [--rounds N]

Exports REF (default ``HEAD~1``) with ``git archive`` into a temporary folder and
times ``bd ready --json``, ``bd show``, ``bd create``, ``bd update --claim`` and
``bd close`` as whole processes, the two trees alternating run by run (ABAB…)
on ledgers of 2,000 beads built the same way, so that a busy machine slows
both sides alike.  Each side runs as ``python -m gastown.cli.bd`` with its own
``src`` on ``PYTHONPATH``; both are byte-compiled first.  Prints medians and the
ratio (this tree ÷ REF) and writes benchmarks/results/hotpath_compare.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _export(ref: str, dest: Path) -> Path:
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"],
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "src"


def _bd(src: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BD_", "GT_"))}
    env.update(PYTHONPATH=str(src), BD_ACTOR="bench")
    return subprocess.run([sys.executable, "-m", "gastown.cli.bd", *args], cwd=cwd, env=env,
                          capture_output=True, check=True)


def _ledger(src: Path, where: Path, n: int) -> list[str]:
    where.mkdir()
    _bd(src, where, "init", "--prefix", "hp", "-q")
    code = ("from gastown import Ledger; led = Ledger.open(); "
            f"ids = [led.create(f'bead {{i}}', priority=i % 5)['id'] for i in range({n})]; "
            "[led.add_dep(ids[i], ids[i - 1], 'blocks') for i in range(1, len(ids), 3)]; "
            "print(' '.join(ids))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BD_", "GT_"))}
    env.update(PYTHONPATH=str(src), BD_ACTOR="bench")
    out = subprocess.run([sys.executable, "-c", code], cwd=where, env=env,
                         capture_output=True, text=True, check=True).stdout
    return out.split()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ref", nargs="?", default="HEAD~1")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--beads", type=int, default=2000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gt-hotpath-"))
    try:
        sides = {"this": ROOT / "src", args.ref: _export(args.ref, tmp)}
        for src in sides.values():
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(src)], check=False,
                           capture_output=True)
        ledgers = {name: (tmp / f"ledger-{i}", _ledger(src, tmp / f"ledger-{i}", args.beads))
                   for i, (name, src) in enumerate(sides.items())}
        ops = ["ready --json", "show", "create", "update --claim", "close"]
        times: dict[str, dict[str, list[float]]] = {n: {o: [] for o in ops} for n in sides}
        for rnd in range(args.rounds):
            order = list(sides) if rnd % 2 == 0 else list(reversed(sides))
            for name in order:
                src, (where, ids) = sides[name], ledgers[name]
                target = ids[3 * (rnd + 1)]  # an unblocked bead (no blockers), new each round
                for op in ops:
                    argv = {"ready --json": ["ready", "--json"], "show": ["show", target],
                            "create": ["q", f"new {rnd}"],
                            "update --claim": ["update", target, "--claim"],
                            "close": ["close", target]}[op]
                    t0 = time.perf_counter()
                    _bd(src, where, *argv)
                    times[name][op].append((time.perf_counter() - t0) * 1000)
        result = {}
        print(f"| command | this tree (ms) | {args.ref} (ms) | ratio |")
        print("|---|---|---|---|")
        for op in ops:
            a = statistics.median(times["this"][op])
            b = statistics.median(times[args.ref][op])
            result[op] = {"this_ms": round(a, 2), "ref_ms": round(b, 2), "ratio": round(a / b, 3)}
            print(f"| bd {op} | {a:.1f} | {b:.1f} | {a / b:.2f} |")
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.ref],
                             capture_output=True, text=True, check=False).stdout.strip()
        out = ROOT / "benchmarks" / "results" / "hotpath_compare.json"
        out.write_text(json.dumps({"ref": args.ref, "ref_commit": rev, "rounds": args.rounds,
                                   "beads": args.beads, "load": os.getloadavg(),
                                   "results": result}, indent=2) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
