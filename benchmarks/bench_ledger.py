"""Ledger benchmarks against the budgets of DESIGN §7 (medians, whole processes).

    .venv/bin/python benchmarks/bench_ledger.py [--quick] [--skip-100k] [--skip-taskwarrior]

Builds random graphs (benchmarks/gen_graph.py) of 10k beads / 15k blocking edges
and 100k / 200k, imports them, then times the hot commands as whole processes
(hyperfine when installed, else a subprocess loop), 16 processes claiming from
one SQLite file, and the import of 5,000 real beads (the shared ledgers'
beads, repeated with fresh ids).  Taskwarrior's ``task +READY export`` on the
same 10k graph is timed side by side when ``task`` is installed.

Prints a Markdown table and writes benchmarks/results/ledger.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared" / "ledgers"
BIN = Path(sys.executable).parent
BD = str(BIN / "bd")
sys.path.insert(0, str(HERE))

from gen_graph import generate  # noqa: E402

from gastown import Filter, Ledger  # noqa: E402
from gastown.ledger.jsonl import import_jsonl  # noqa: E402


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 1)


def time_command(cmd: list[str], cwd: Path, runs: int, env: dict[str, str],
                 prepare: str | None = None) -> float:
    """Median wall time of a whole process, in ms (hyperfine when available)."""
    if shutil.which("hyperfine") and prepare is None:
        out = Path(tempfile.mkstemp(suffix=".json")[1])
        quoted = " ".join(_q(c) for c in cmd)
        subprocess.run(["hyperfine", "-N", "--warmup", "3", "--runs", str(runs),
                        "--export-json", str(out), quoted], cwd=cwd, env=env,
                       capture_output=True, check=True)
        data = json.loads(out.read_text())
        out.unlink()
        return round(data["results"][0]["median"] * 1000, 1)
    samples = []
    for _ in range(runs + 3):
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=True)
        samples.append(time.perf_counter() - t0)
    return median_ms(samples[3:])


def _q(s: str) -> str:
    if all(c.isalnum() or c in "-_./=:" for c in s):
        return s
    return "'" + s.replace("'", "'\\''") + "'"


def time_each(cmd_for: list[list[str]], cwd: Path, env: dict[str, str]) -> float:
    """Median of running a different command line each time (create/claim/close)."""
    samples = []
    for cmd in cmd_for:
        t0 = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=True)
        samples.append(time.perf_counter() - t0)
    return median_ms(samples[2:])


def build(n: int, e: int, where: Path) -> Ledger:
    where.mkdir(parents=True, exist_ok=True)
    jsonl = where / "graph.jsonl"
    with jsonl.open("w") as fh:
        for bead in generate(n, e):
            fh.write(json.dumps(bead, separators=(",", ":")) + "\n")
    led = Ledger.init(str(where), prefix="bench", actor="bench")
    import_jsonl(led, str(jsonl))
    with led.store.write() as tx:
        tx.execute("ANALYZE")  # what a long-lived ledger would have; harmless either way
    return led


def _claimer(path: str, start: float, q: mp.Queue) -> None:  # type: ignore[type-arg]
    led = Ledger.open(path, actor=f"w{os.getpid()}")
    got: list[str] = []
    while time.time() < start:
        time.sleep(0.0005)
    t0 = time.perf_counter()
    while True:
        bead = led.claim_next(Filter())
        if bead is None:
            break
        got.append(bead["id"])
    q.put((got, time.perf_counter() - t0))


def claims_per_second(where: Path, beads: int = 6000, procs: int = 16) -> dict[str, float]:
    where.mkdir(parents=True, exist_ok=True)
    led = Ledger.init(str(where), prefix="clm", actor="bench")
    with led.transaction() as t:
        for i in range(beads):
            t.create(f"claimable {i}")
    db = str(where / ".beads" / "beads.db")
    q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    start = time.time() + 1.0
    workers = [mp.Process(target=_claimer, args=(db, start, q)) for _ in range(procs)]
    for w in workers:
        w.start()
    results = [q.get(timeout=600) for _ in workers]
    for w in workers:
        w.join()
    ids = [i for got, _ in results for i in got]
    wall = max(t for _, t in results)
    return {"claims": len(ids), "unique": len(set(ids)), "seconds": round(wall, 3),
            "per_second": round(len(ids) / wall), "double_claims": len(ids) - len(set(ids))}


def real_import(where: Path, target: int = 5000) -> dict[str, float]:
    lines = []
    for f in sorted(SHARED.glob("*.jsonl")):
        lines += [ln for ln in f.read_text().splitlines() if ln.strip()]
    beads = []
    rep = 0
    while len(beads) < target:
        for ln in lines:
            obj = json.loads(ln)
            if obj.get("status") == "tombstone":
                continue
            suffix = f"r{rep}"
            obj["id"] = f"{obj['id']}{suffix}"
            for d in obj.get("dependencies") or []:
                d["issue_id"] = obj["id"]
                d["depends_on_id"] = f"{d['depends_on_id']}{suffix}"
            for c in obj.get("comments") or []:
                c["issue_id"] = obj["id"]
            beads.append(obj)
            if len(beads) == target:
                break
        rep += 1
    where.mkdir(parents=True, exist_ok=True)
    src = where / "real.jsonl"
    src.write_text("".join(json.dumps(b) + "\n" for b in beads))
    samples = []
    for i in range(5):
        d = where / f"imp{i}"
        d.mkdir()
        led = Ledger.init(str(d), prefix="imp", actor="bench")
        t0 = time.perf_counter()
        report = import_jsonl(led, str(src))
        samples.append(time.perf_counter() - t0)
        led.close()
    return {"beads": report.created, "median_ms": median_ms(samples)}


def taskwarrior(where: Path, n: int, e: int) -> float | None:
    """Median ms of ``task +READY export`` on the same graph (None when not installed)."""
    task = shutil.which("task")
    if not task:
        return None
    import uuid

    home = where / "tw"
    (home / "data").mkdir(parents=True, exist_ok=True)
    rc = home / "taskrc"
    rc.write_text(f"data.location={home / 'data'}\nconfirmation=no\nverbose=nothing\n"
                  "hooks=off\nrecurrence=off\ngc=off\n")
    env = dict(os.environ, TASKRC=str(rc), TASKDATA=str(home / "data"))
    beads = generate(n, e)
    ids = {b["id"]: str(uuid.uuid5(uuid.NAMESPACE_URL, str(b["id"]))) for b in beads}
    tasks = []
    for b in beads:
        t: dict[str, object] = {
            "uuid": ids[str(b["id"])], "description": b["title"], "entry": "20260101T000000Z",
            "status": "completed" if b["status"] == "closed" else "pending",
            "priority": {0: "H", 1: "H", 2: "M", 3: "L", 4: "L"}[int(str(b["priority"]))]}
        if b["status"] == "closed":
            t["end"] = "20260102T000000Z"
        deps = b.get("dependencies") or []
        if deps:
            t["depends"] = ",".join(ids[str(d["depends_on_id"])] for d in deps)  # type: ignore
        tasks.append(t)
    src = home / "tasks.json"
    src.write_text(json.dumps(tasks))
    subprocess.run([task, "import", str(src)], env=env, capture_output=True, check=True,
                   timeout=3600)
    samples = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([task, "+READY", "export"], env=env, capture_output=True, check=True,
                       timeout=600)
        samples.append(time.perf_counter() - t0)
    return median_ms(samples)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer runs")
    ap.add_argument("--skip-100k", action="store_true")
    ap.add_argument("--skip-taskwarrior", action="store_true")
    ap.add_argument("--out", default=str(HERE / "results" / "ledger.json"))
    args = ap.parse_args()
    runs = 10 if args.quick else 30
    work = Path(tempfile.mkdtemp(prefix="gt-bench-"))
    env = dict(os.environ, BD_ACTOR="bench")
    env.pop("BD_DB", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src")],
                   capture_output=True)
    res: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"), "load_before": os.getloadavg()[0]}
    try:
        res["python_pass_ms"] = time_command([sys.executable, "-c", "pass"], work, runs, env)
        res["import_sqlite_json_ms"] = time_command(
            [sys.executable, "-c", "import sqlite3, json"], work, runs, env)
        d10 = work / "g10k"
        led = build(10_000, 15_000, d10)
        res["ready_count_10k"] = len(led.ready())
        res["ready_json_10k_ms"] = time_command([BD, "ready", "--json"], d10, runs, env)
        res["ready_json_all_10k_ms"] = time_command([BD, "ready", "--json", "-n", "0"], d10,
                                                    runs, env)
        some = [b["id"] for b in led.ready()][:60]
        res["show_10k_ms"] = time_command([BD, "show", some[0], "--json"], d10, runs, env)
        res["create_10k_ms"] = time_each([[BD, "q", f"new bead {i}"] for i in range(runs)],
                                         d10, env)
        res["claim_10k_ms"] = time_each([[BD, "update", b, "--claim"] for b in some[:runs]],
                                        d10, env)
        res["close_10k_ms"] = time_each([[BD, "close", b] for b in some[:runs]], d10, env)
        led.close()
        if not args.skip_100k:
            d100 = work / "g100k"
            led = build(100_000, 200_000, d100)
            res["ready_count_100k"] = len(led.ready())
            led.close()
            res["ready_json_100k_ms"] = time_command([BD, "ready", "--json"], d100, runs, env)
            res["ready_json_all_100k_ms"] = time_command([BD, "ready", "--json", "-n", "0"],
                                                         d100, max(5, runs // 3), env)
        res["claims_16_procs"] = claims_per_second(work / "claims")
        res["import_5000_real"] = real_import(work / "import")
        if not args.skip_taskwarrior:
            tw = taskwarrior(work / "tw", 10_000, 15_000)
            res["taskwarrior_ready_10k_ms"] = tw
    finally:
        shutil.rmtree(work, ignore_errors=True)
    res["load_after"] = os.getloadavg()[0]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
