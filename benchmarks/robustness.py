"""The long form of the chaos, concurrency and fuzzing harnesses, with one table of counts.

Usage (from the repository root)::

    .venv/bin/python benchmarks/robustness.py            # the long run (docs/robustness.md)
    .venv/bin/python benchmarks/robustness.py --quick    # the bounded sizes of CI
    .venv/bin/python benchmarks/robustness.py --seed 5 --only fuzz-bd kill9

Each harness is a test module of ``tests/``: this script sets its size and seed
knobs (environment variables read by the test module), runs it with pytest, one
harness after the other, and collects the counts every harness appends to the
file named by ``GASTOWN_ROBUSTNESS_REPORT`` (see ``tests/helpers/robustness_report.py``).
It prints a Markdown table (cases, kills, acknowledged writes, lost, doubled,
internal errors, partial changes, tests passed/failed, wall time) and writes the
raw figures to ``benchmarks/results/robustness.json``.  The exit status is 1 when
any harness failed or counted anything lost, doubled, internal or partial.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results" / "robustness.json"
COUNTS = ("cases", "kills", "acked", "lost", "doubled", "internal", "partial")
BAD = ("lost", "doubled", "internal", "partial")


@dataclass
class Harness:
    """One pytest invocation: its test ids and the knobs of its long and its quick form."""

    name: str
    tests: list[str]
    long_env: dict[str, str]
    quick_env: dict[str, str] = field(default_factory=dict)
    seed_vars: tuple[str, ...] = ()
    pytest_args: list[str] = field(default_factory=list)
    repeat: int = 1  # the long form runs it this many times, with seeds seed, seed+1, …


HARNESSES = [
    Harness("fuzz-bd", ["tests/test_fuzz_bd.py"], {"GASTOWN_FUZZ_EXAMPLES": "5000"},
            seed_vars=("GASTOWN_FUZZ_SEED",)),
    Harness("fuzz-formulas", ["tests/test_formula_limits.py"],
            {"GASTOWN_FORMULA_FUZZ_EXAMPLES": "800", "GASTOWN_FORMULA_FUZZ_CLI_EXAMPLES": "30"},
            pytest_args=["-k", "fuzz", "--hypothesis-seed={seed}"]),
    Harness("init-kill9",
            ["tests/test_robustness_bd.py::test_kill_during_init_never_leaves_a_ledger_without_prefix"],
            {"GASTOWN_INIT_KILLS": "80"}, seed_vars=("GASTOWN_INIT_SEED",)),
    Harness("kill9-writers", ["tests/test_crash_kill9.py"], {"GASTOWN_KILL9_KILLS": "60"},
            seed_vars=("GASTOWN_KILL9_SEED",)),
    Harness("claims", ["tests/test_concurrency_cli.py"], {"GASTOWN_CLAIM_BEADS": "200"}),
    Harness("chemistry", ["tests/test_chemistry_chaos.py"], {"GASTOWN_POUR_KILLS": "15"},
            seed_vars=("GASTOWN_POUR_SEED",)),
    Harness("controller-chaos",
            ["tests/test_controller_chaos.py::test_repeated_kills_at_random_instants_lose_no_dispatch"],
            {}, seed_vars=("GT_CHAOS_SEED",), repeat=2),
    Harness("controller-restarts",
            ["tests/test_controller_chaos.py", "tests/test_dispatch_durability.py",
             "--deselect",
             "tests/test_controller_chaos.py::test_repeated_kills_at_random_instants_lose_no_dispatch"],
            {}),
    Harness("stalls", ["tests/test_stalls.py"], {}),
]


def _pytest_summary(text: str) -> dict[str, int]:
    """``{"passed": n, "failed": n, ...}`` from pytest's last summary line."""
    found: dict[str, int] = {}
    for line in reversed(text.splitlines()):
        pairs = re.findall(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)", line)
        if pairs:
            for n, what in pairs:
                found["error" if what.startswith("error") else what] = int(n)
            break
    return found


@dataclass
class Row:
    """The figures of one harness: the sums of its counts over its runs."""

    harness: str
    seed: int
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))
    passed: int = 0
    failed: int = 0
    wall_s: float = 0.0
    runs: list[dict[str, object]] = field(default_factory=list)

    def bad(self) -> bool:
        """Whether a test failed or anything was lost, doubled, internal or partial."""
        return bool(self.failed or any(self.counts[k] for k in BAD))


def run_harness(h: Harness, seed: int, quick: bool, log_dir: Path) -> Row:
    """Run one harness (its repeats included) and return its row of figures."""
    row = Row(h.name, seed)
    started = time.monotonic()
    for n in range(1 if quick else h.repeat):
        run_seed = seed + n
        report = log_dir / f"{h.name}-{n}.jsonl"
        env = dict(os.environ, GASTOWN_ROBUSTNESS_REPORT=str(report))
        env.update(h.quick_env if quick else h.long_env)
        env.update({var: str(run_seed) for var in h.seed_vars})
        args = [a.format(seed=run_seed) for a in h.pytest_args]
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE",
               *args, *h.tests]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        summary = _pytest_summary(proc.stdout)
        row.passed += summary.get("passed", 0)
        failed = summary.get("failed", 0) + summary.get("error", 0)
        if proc.returncode not in (0, 5) and not failed:
            failed = 1  # pytest itself failed (collection, usage)
        row.failed += failed
        for line in report.read_text().splitlines() if report.exists() else []:
            rec = json.loads(line)
            for key in COUNTS:
                row.counts[key] += int(rec.get(key, 0))
            row.runs.append({**rec, "seed": run_seed})
        if failed:
            tail = "\n".join(proc.stdout.splitlines()[-15:])
            print(f"   {h.name} (seed {run_seed}) failed:\n{tail}", file=sys.stderr)
    row.wall_s = round(time.monotonic() - started, 1)
    return row


def table(rows: list[Row]) -> str:
    """The Markdown table of the rows."""
    head = ["harness", "cases", "kills", "acked writes", "lost", "doubled", "internal errors",
            "partial changes", "tests passed / failed", "wall time"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        counts = [f"{r.counts[k]:,}" if r.runs else "–" for k in COUNTS]  # "–": no counts
        cells = [r.harness, *counts, f"{r.passed} / {r.failed}", f"{r.wall_s:.0f} s"]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Run the harnesses one after the other and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the bounded sizes of CI")
    parser.add_argument("--seed", type=int, default=20261129, help="seed of every harness")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="harnesses whose name contains one of these")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the JSON goes")
    args = parser.parse_args(argv)
    chosen = [h for h in HARNESSES
              if not args.only or any(part in h.name for part in args.only)]
    rows: list[Row] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gastown-robustness-") as tmp:
        for h in chosen:
            print(f"== {h.name}", flush=True)
            r = run_harness(h, args.seed, args.quick, Path(tmp))
            rows.append(r)
            print("   " + " ".join(f"{k}={v}" for k, v in r.counts.items())
                  + f" passed={r.passed} failed={r.failed} wall={r.wall_s:.0f}s", flush=True)
    total = round(time.monotonic() - started, 1)
    print()
    print(table(rows))
    print(f"\nseed {args.seed}, {'quick' if args.quick else 'long'} form, {total:.0f} s in all")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"seed": args.seed, "quick": args.quick, "wall_s": total,
                                    "python": sys.version.split()[0], "cpus": os.cpu_count(),
                                    "load_at_end": os.getloadavg(),
                                    "rows": [asdict(r) for r in rows]}, indent=1) + "\n")
    return 1 if any(r.bad() for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
