"""Orders and housekeeping: what they cost the controller, and how fast the watchdog is.

    .venv/bin/python benchmarks/bench_orders.py [--rounds N] [--beads N]

Measures, medians over ``--rounds``:

* ``parse_cron`` + ``next_after`` for ordinary and for rare schedules (the
  worst case scans the whole five-year horizon: a leap day that is also a Monday);
* one ``run_orders`` pass over 50 schedule orders when none is due (what every
  tick pays), and one that fires one order (pour + state + event in one
  transaction);
* one housekeeping pass (timer gates + conditional bonds) on an idle ledger of
  ``--beads`` beads, and one wisp collection over it with 500 closed wisps;
* the watchdog: ``kill -9`` of the controller until a new one holds the lock.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gastown.chemistry.api import pour
from gastown.config.cron import parse_cron
from gastown.controller.daemon import read_state
from gastown.controller.housekeeping import collect_wisps, evaluate_bonds, open_timer_gates
from gastown.controller.orders import run_orders
from gastown.controller.service import down, is_running
from gastown.controller.watchdog import start_watchdog
from gastown.town.core import Town, init_town

FORMULA = """\
formula = "mol-bench"
[[steps]]
id = "a"
title = "A"
[[steps]]
id = "b"
title = "B"
needs = ["a"]
"""


def median_ms(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def make_town(root: Path, orders: int) -> Town:
    town = init_town(str(root / "town"), name="b", prefix="b", provider="subprocess",
                     actor="bench")
    Path(town.beads_dir, "formulas").mkdir(exist_ok=True)
    Path(town.beads_dir, "formulas", "mol-bench.formula.toml").write_text(FORMULA)
    with open(town.config_path, "a", encoding="utf-8") as fh:
        for n in range(orders):
            fh.write(f'\n[orders.o{n}]\nformula = "mol-bench"\nschedule = "{n % 60} 3 * * *"\n')
    town.reload()
    return town


def bench_cron(rounds: int) -> list[tuple[str, str]]:
    start = dt.datetime(2026, 11, 29, 13, 7, tzinfo=dt.UTC)
    rows = []
    for text in ("*/15 * * * *", "0 9 * * mon-fri", "0 0 29 2 *", "0 0 29 2 mon"):
        cron = parse_cron(text)
        rows.append((f"`{text}`: parse / next firing",
                     f"{median_ms(lambda t=text: parse_cron(t), rounds):.3f} ms / "
                     f"{median_ms(lambda c=cron: c.next_after(start), rounds):.3f} ms"))
    return rows


def bench_orders(root: Path, rounds: int) -> list[tuple[str, str]]:
    town = make_town(root, 50)
    with town.ledger("bench") as led:
        now = dt.datetime(2026, 11, 29, 13, 7, tzinfo=dt.UTC)
        run_orders(town, led, now=now)  # first sight: the baselines
        idle = median_ms(lambda: run_orders(town, led, now=now), rounds)
        day = [now]

        def one_due() -> None:
            day[0] += dt.timedelta(days=1)
            run_orders(town, led, now=day[0].replace(hour=3, minute=0, second=30))

        town.config.orders = {"o0": town.config.orders["o0"]}
        firing = median_ms(one_due, rounds)
    return [("`run_orders`, 50 schedule orders, none due (every tick)", f"{idle:.2f} ms"),
            ("`run_orders` firing one order (pour 2 steps + state + event)", f"{firing:.2f} ms")]


def bench_housekeeping(root: Path, beads: int, rounds: int) -> list[tuple[str, str]]:
    town = make_town(root / "hk", 0)
    with town.ledger("bench") as led:
        with led.transaction() as t:
            for n in range(beads):
                b = t.create(f"bead {n}")
                if n % 2:
                    t.close(b["id"])
        for _ in range(500):
            w = pour(led, "mol-bench", wisp=True, search_paths=town.formula_paths())
            for step in ("a", "b"):
                led.close_bead(w["metadata"]["steps"][step])
        evaluate_bonds(led)  # its cursor

        def idle() -> None:
            open_timer_gates(led)
            evaluate_bonds(led)

        idle_ms = median_ms(idle, rounds)
        scan = median_ms(lambda: collect_wisps(led, 86400), rounds)  # nothing old enough
        t0 = time.perf_counter()
        burned = collect_wisps(led, 1, time.time() + 10)
        burn_ms = (time.perf_counter() - t0) * 1000
        while burned:
            burned = collect_wisps(led, 1, time.time() + 10)
    return [(f"timer gates + conditional bonds, idle, {beads:,} beads", f"{idle_ms:.2f} ms"),
            (f"wisp collection scan, {beads:,} beads + 500 closed wisps, none old",
             f"{scan:.1f} ms"),
            ("wisp collection burning 200 wisps (one pass's limit)", f"{burn_ms:.0f} ms")]


def bench_watchdog(root: Path, rounds: int) -> list[tuple[str, str]]:
    town = make_town(root / "wd", 0)
    start_watchdog(town)
    times = []
    try:
        for _ in range(rounds):
            victim = read_state(town)["pid"]
            t0 = time.perf_counter()
            os.kill(victim, signal.SIGKILL)
            while not (is_running(town) and read_state(town).get("pid") not in (None, victim)):
                time.sleep(0.01)
            times.append((time.perf_counter() - t0) * 1000)
    finally:
        down(town, timeout=10)
    return [(f"watchdog: `kill -9` → a new controller holds the lock ({rounds} kills)",
             f"median {statistics.median(times):.0f} ms, max {max(times):.0f} ms")]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--beads", type=int, default=10_000)
    args, _ = ap.parse_known_args()  # run_all.py passes its arguments to every script
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows += bench_cron(args.rounds)
        rows += bench_orders(root / "orders", args.rounds)
        rows += bench_housekeeping(root, args.beads, args.rounds)
        rows += bench_watchdog(root, min(args.rounds, 5))
    print("| what | median |\n|---|---|")
    for what, value in rows:
        print(f"| {what} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
