"""Entity chains benchmark: the cost of a record per transaction, verification, proofs.

Run: ``.venv/bin/python benchmarks/bench_chains.py [--quick] [--rounds N]``
(writes ``benchmarks/results/chains.json``).

1. **Added cost of close/claim, whole process.**  Two SQLite ledgers built the
   same way, one with chains enabled (the agent has a key of its own); ``python -m
   gastown.cli.bd close ID`` and ``update ID --claim`` run as separate processes,
   the two ledgers alternating run by run; medians.
2. **In process.**  Transactions that each claim or close a bead (one chain record
   each) against the same without chains: records appended per second and the
   added time per transaction.
3. **Verification.**  ``verify_ledger`` over every record (hash, link, signature,
   leaf, heads): records/s.
4. **Proofs at 1M leaves.**  A hash-only RFC 6962 tree of 1,000,000 random leaves:
   build time, root, inclusion and consistency proof time (median of 1,000) and size.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from gastown import Ledger  # noqa: E402
from gastown.chains.merkle import Tree, verify_consistency, verify_inclusion  # noqa: E402
from gastown.chains.setup import enable  # noqa: E402
from gastown.chains.verify import verify_ledger  # noqa: E402

AGENT = "rig1/polecat/toast"
RESULTS = Path(__file__).resolve().parent / "results" / "chains.json"


def make(root: Path, chains: bool, beads: int) -> tuple[Ledger, list[str]]:
    """A ledger of ``beads`` open beads (chains on or off); the ledger and the ids."""
    root.mkdir(parents=True)
    led = Ledger.init(str(root), prefix="b", actor="alice")
    if chains:
        gt_dir = root / ".gt"
        gt_dir.mkdir()
        enable(led, str(gt_dir), "bench", "gt://me@x.org/bench", [AGENT, "alice"])
    with led.transaction() as t:
        ids = [t.create(f"work item {i}", labels=["bench"])["id"] for i in range(beads)]
    return led, ids


def whole_process(tmp: Path, rounds: int) -> dict[str, dict[str, float]]:
    """Median ms of ``bd close`` and ``bd update --claim`` processes, with and without."""
    sides = {name: make(tmp / f"proc-{name}", name == "chains", 2 * rounds + 4)
             for name in ("plain", "chains")}
    src = Path(__file__).resolve().parent.parent / "src"
    # as on a user's machine: byte-compiled, bytecode writing on (see ./run)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(BD_ACTOR=AGENT, PYTHONPATH=str(src))
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(src)], check=True, env=env)
    times: dict[str, dict[str, list[float]]] = {n: {"claim": [], "close": []} for n in sides}
    for r in range(-1, rounds):  # round -1 warms the caches and is not counted
        for name, (led, ids) in sides.items():
            bead = ids[r + 1]
            db = str(Path(led.store.path))  # type: ignore[attr-defined]
            for op, argv in (("claim", ["update", bead, "--claim"]), ("close", ["close", bead])):
                t0 = time.perf_counter()
                subprocess.run([sys.executable, "-m", "gastown.cli.bd", "--db", db, *argv],
                               env=env, check=True, capture_output=True)
                if r >= 0:
                    times[name][op].append((time.perf_counter() - t0) * 1000)
    return {n: {op: round(statistics.median(v), 1) for op, v in ops.items()}
            for n, ops in times.items()}


def in_process(tmp: Path, n: int) -> dict[str, float]:
    """Claim + close of ``n`` beads, one transaction each, with and without chains."""
    out: dict[str, float] = {}
    for name in ("plain", "chains"):
        led, ids = make(tmp / f"inproc-{name}", name == "chains", n)
        agent = Ledger(led.store, actor=AGENT)
        t0 = time.perf_counter()
        for bead in ids:
            agent.claim(bead)
            agent.close_bead(bead)
        out[f"{name}_us_per_txn"] = round((time.perf_counter() - t0) / (2 * n) * 1e6, 1)
        led.close()
    out["added_us_per_record"] = round(out["chains_us_per_txn"] - out["plain_us_per_txn"], 1)
    out["records_per_s_in_txns"] = round(1e6 / out["chains_us_per_txn"])
    return out


def verification(tmp: Path, n: int) -> dict[str, float]:
    """``verify_ledger`` over about ``n`` records (n/2 beads claimed and closed)."""
    led, ids = make(tmp / "verify", True, n // 2)
    agent = Ledger(led.store, actor=AGENT)
    for bead in ids:
        agent.claim(bead)
        agent.close_bead(bead)
    t0 = time.perf_counter()
    res = verify_ledger(led)
    secs = time.perf_counter() - t0
    return {"records": res["records"], "seconds": round(secs, 3),
            "records_per_s": round(res["records"] / secs)}


def proofs(leaves: int, samples: int) -> dict[str, float]:
    """Build a hash-only tree of ``leaves`` random leaves; time and size its proofs."""
    raw = os.urandom(32 * leaves)
    t0 = time.perf_counter()
    tree = Tree([raw[i:i + 32] for i in range(0, len(raw), 32)])
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    root = tree.root()
    root_s = time.perf_counter() - t0
    rnd = random.Random(7)
    inc_t, con_t, ver_t, inc_n, con_n = [], [], [], [], []
    for _ in range(samples):
        i = rnd.randrange(leaves)
        t0 = time.perf_counter()
        path = tree.inclusion_proof(i)
        inc_t.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        assert verify_inclusion(tree.levels[0][i], i, leaves, path, root)
        ver_t.append(time.perf_counter() - t0)
        inc_n.append(len(path))
        old = rnd.randint(1, leaves)
        t0 = time.perf_counter()
        cons = tree.consistency_proof(old)
        con_t.append(time.perf_counter() - t0)
        con_n.append(len(cons))
    assert verify_consistency(old, leaves, tree.root(old), root, cons)
    med = statistics.median
    return {"leaves": leaves, "build_s": round(build, 2), "root_ms": round(root_s * 1000, 3),
            "inclusion_us": round(med(inc_t) * 1e6, 1),
            "inclusion_verify_us": round(med(ver_t) * 1e6, 1),
            "inclusion_hashes_max": max(inc_n), "inclusion_bytes_max": 32 * max(inc_n),
            "consistency_us": round(med(con_t) * 1e6, 1),
            "consistency_hashes_max": max(con_n), "consistency_bytes_max": 32 * max(con_n)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    rounds = 3 if args.quick else args.rounds
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        res = {"whole_process_ms": whole_process(tmp, rounds),
               "in_process": in_process(tmp, 100 if args.quick else 1000),
               "verify": verification(tmp, 500 if args.quick else 10_000),
               "proofs": proofs(10_000 if args.quick else 1_000_000,
                                100 if args.quick else 1000)}
    print(json.dumps(res, indent=1))
    if not args.quick:
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps(res, indent=1) + "\n")


if __name__ == "__main__":
    main()
