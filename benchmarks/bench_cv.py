"""CV and matching benchmark: ``gt cv`` and ``gt match`` over a town's chain records.

Run: ``.venv/bin/python benchmarks/bench_cv.py [--records N] [--agents N] [--rounds N]
[--quick]`` (writes ``benchmarks/results/cv.json``).

A generated history (``tests/cv_history.py``: created, claimed, completed and a
verdict per bead; agents of five specialities with some work outside it) of about
``--records`` records over ``--agents`` agents is built in memory; then, each the median
of ``--rounds`` runs:

* ``read``: checking and ordering every record (what any of the functions pays first);
* ``candidates``: the TF-IDF model, every agent's skills and reputation, the index of
  past beads -- what ``gt match`` computes once per call;
* ``rank``: ranking every agent for one new bead (evidence for the top 5, as ``gt
  match`` shows), with and without the expansion by
  the nearest past beads (side by side: its cost, and what it buys in precision@1 on
  the specialised history of the tests);
* ``summarize``: one entity's whole CV (``gt cv``), which rebuilds all of the above.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE.parent / "tests"))

import cv_history as gen  # noqa: E402
from gastown.chains import match as match_mod  # noqa: E402
from gastown.chains.cv import summarize  # noqa: E402
from gastown.chains.cvinput import read_records  # noqa: E402
from gastown.chains.match import candidates, rank  # noqa: E402


def median_s(fn: Callable[[], Any], rounds: int) -> float:
    """The median wall time of ``rounds`` calls of ``fn``, in seconds."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def precision(expansion: bool, beads: int = 200) -> float:
    """precision@1 on the tests' specialised history (seed 7), new beads mostly bare."""
    pool = candidates(gen.specialised(seed=7, per_agent=40).records,
                      now=gen.T0.replace(year=2027))
    saved = match_mod.NEIGHBOURS
    match_mod.NEIGHBOURS = saved if expansion else 0
    try:
        rng = random.Random(1)
        kinds = sorted(gen.KINDS)
        hits = 0
        for i in range(beads):
            kind = kinds[i % len(kinds)]
            work = gen.new_work(rng, kind, files=rng.random() < 0.25)
            hits += rank(work, pool, top=1)[0]["entity"] == gen.agent(kind)
        return hits / beads
    finally:
        match_mod.NEIGHBOURS = saved


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=10_000)
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="2,000 records, 3 rounds")
    args = ap.parse_args()
    if args.quick:
        args.records, args.rounds = 2_000, 3
    recs = gen.big(1, args.records, args.agents)
    now = gen.T0.replace(year=2027)
    pool = candidates(recs, now=now)
    rng = random.Random(2)
    kinds = sorted(gen.KINDS)
    works = [gen.new_work(rng, kinds[i % len(kinds)], files=False) for i in range(50)]
    someone = pool.entities[len(pool.entities) // 2]

    def rank_all(expansion: bool) -> None:
        saved = match_mod.NEIGHBOURS
        match_mod.NEIGHBOURS = saved if expansion else 0
        try:
            for work in works:
                rank(work, pool, top=5)  # what gt match shows by default
        finally:
            match_mod.NEIGHBOURS = saved

    res: dict[str, Any] = {
        "records": len(recs), "agents": len(pool.entities), "completed_beads": len(pool.docs),
        "rounds": args.rounds,
        "read_s": median_s(lambda: read_records(recs), args.rounds),
        "candidates_s": median_s(lambda: candidates(recs, now=now), args.rounds),
        "rank_ms": 1000 * median_s(lambda: rank_all(True), args.rounds) / len(works),
        "rank_no_expansion_ms": 1000 * median_s(lambda: rank_all(False), args.rounds)
        / len(works),
        "summarize_s": median_s(lambda: summarize(recs, someone, now=now), args.rounds),
        "precision_at_1": precision(True),
        "precision_at_1_no_expansion": precision(False),
    }
    res["records_per_s_candidates"] = res["records"] / res["candidates_s"]
    out = HERE / "results" / "cv.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"{res['records']} records, {res['agents']} agents, {res['completed_beads']} "
          f"completed beads (median of {args.rounds}):")
    print(f"  read and check   {res['read_s'] * 1000:8.1f} ms")
    print(f"  candidates       {res['candidates_s'] * 1000:8.1f} ms "
          f"({res['records_per_s_candidates']:,.0f} records/s)")
    print(f"  rank one bead    {res['rank_ms']:8.2f} ms (without expansion "
          f"{res['rank_no_expansion_ms']:.2f} ms)")
    print(f"  summarize (cv)   {res['summarize_s'] * 1000:8.1f} ms")
    print(f"  precision@1      {res['precision_at_1']:.3f} (without expansion "
          f"{res['precision_at_1_no_expansion']:.3f}; 200 new beads)")


if __name__ == "__main__":
    main()
