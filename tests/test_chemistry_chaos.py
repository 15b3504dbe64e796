"""Chaos and concurrency: kill -9 during a pour, and a 1,000-step polymer run by workers.

Both use real processes against the parametrised backend: the child processes
find the ledger the way ``bd`` does, from the directory holding ``.beads/``.
``GASTOWN_POUR_KILLS`` sets the kills during pours (default 6) and
``GASTOWN_POUR_SEED`` their seed for a longer run; the counts go to
:func:`helpers.robustness_report.report`.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from gastown import Filter, Ledger
from gastown.chemistry import bond, cook, pour_with_steps, work_steps
from helpers.robustness_report import report

POUR_KILLS = int(os.environ.get("GASTOWN_POUR_KILLS", "6"))
POUR_SEED = int(os.environ.get("GASTOWN_POUR_SEED", "7"))
SRC = str(Path(__file__).resolve().parent.parent / "src")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("BD_DB", None)
    env.pop("BEADS_DB", None)
    return env


def _ledger_dir(ledger: Ledger) -> str:
    assert ledger.beads_dir
    return os.path.dirname(ledger.beads_dir)


POUR_CHILD = textwrap.dedent("""
    import sys
    from gastown import Ledger
    from gastown.chemistry import pour
    led = Ledger.open(cwd=sys.argv[1], actor="chaos")
    while True:
        print("begin", flush=True)
        root = pour(led, sys.argv[2], {"x": "1"})
        print("done", root["id"], flush=True)
""")


@pytest.mark.slow
def test_kill_9_during_pour_leaves_whole_mol_or_nothing(ledger: Ledger, tmp_path: Path) -> None:
    steps = 1500
    formula = tmp_path / "big.formula.toml"
    formula.write_text(textwrap.dedent(f"""
        formula = "big"
        [[steps]]
        id = "start"
        title = "Start {{{{x}}}}"
        [[steps]]
        id = "work"
        needs = ["start"]
        loop = {{ count = {steps // 2}, body = [ {{ id = "a", title = "A" }},
                 {{ id = "b", title = "B", needs = ["a"] }} ] }}
    """))
    rng = random.Random(POUR_SEED)
    interrupted = 0
    poured: set[str] = set()  # molecules the child said were poured (a whole line)
    for kill in range(POUR_KILLS):
        proc = subprocess.Popen([sys.executable, "-c", POUR_CHILD, _ledger_dir(ledger),
                                 str(formula)], stdout=subprocess.PIPE, text=True, env=_env())
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "begin"
        seen = ""
        if kill % 3 == 2:  # let a pour finish first: an acknowledged molecule must stay
            while (line := proc.stdout.readline()) and not line.startswith("done "):
                seen += line
            seen += line
        time.sleep(rng.uniform(0.05, 0.6))
        os.kill(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        out = "begin\n" + seen + out
        if out.rstrip().splitlines()[-1:] == ["begin"] or not out.strip():
            interrupted += 1  # killed inside a pour's transaction
        poured.update(ln.split()[1] for ln in out.split("\n")[:-1] if ln.startswith("done "))
    led = Ledger.open(cwd=_ledger_dir(ledger))
    try:
        roots = led.list(Filter(issue_type=["molecule"]))
        sizes = {r["id"]: sum(1 for b in led.list(Filter(mol=r["id"])) if b["id"] != r["id"])
                 for r in roots}
        torn = sum(1 for n in sizes.values() if n != steps + 1)
        strays = sum(1 for b in led.list(Filter()) if b.get("issue_type") != "molecule") \
            - sum(sizes.values())
        report(f"pour-kill9-{ledger.store.dialect}", cases=POUR_KILLS, kills=POUR_KILLS,
               acked=len(poured), lost=len(poured - {r["id"] for r in roots}),
               partial=torn + max(0, strays))
        assert interrupted >= 1  # at least one kill landed mid-pour
        assert poured <= {r["id"] for r in roots}, "an acknowledged molecule was lost"
        for root in roots:
            beads = [b for b in led.list(Filter(mol=root["id"])) if b["id"] != root["id"]]
            assert len(beads) == steps + 1, root["id"]  # whole mol …
            assert len(root["metadata"]["steps"]) == steps + 1
        # … or nothing: no step exists without its molecule
        orphans = [b for b in led.list(Filter()) if b.get("issue_type") != "molecule"]
        assert len(orphans) == len(roots) * (steps + 1)
        assert led.integrity_problems() == []
    finally:
        led.close()


WORKER = textwrap.dedent("""
    import sys, time
    from gastown import Filter, Ledger
    led = Ledger.open(cwd=sys.argv[1], actor=sys.argv[3])
    root, me, done = sys.argv[2], sys.argv[3], 0
    while True:
        bead = led.claim_next(Filter(mol=root), assignee=me)
        if bead is None:
            if led.get(root)["status"] == "closed":
                break
            time.sleep(0.002)
            continue
        led.close_bead(bead["id"])
        done += 1
    print(done)
""")


@pytest.mark.slow
def test_1000_step_polymer_run_by_concurrent_workers(ledger: Ledger, tmp_path: Path) -> None:
    fdir = tmp_path / "formulas"
    fdir.mkdir()
    # one segment: 10 rounds of fan-out/fan-in (x → p1..p8 → y) = 100 steps
    (fdir / "seg.formula.toml").write_text(textwrap.dedent("""
        formula = "seg"
        [[steps]]
        id = "round"
        loop = { count = 10, body = [
          { id = "x", title = "X" },
          { id = "p1", title = "P1", needs = ["x"] }, { id = "p2", title = "P2", needs = ["x"] },
          { id = "p3", title = "P3", needs = ["x"] }, { id = "p4", title = "P4", needs = ["x"] },
          { id = "p5", title = "P5", needs = ["x"] }, { id = "p6", title = "P6", needs = ["x"] },
          { id = "p7", title = "P7", needs = ["x"] }, { id = "p8", title = "P8", needs = ["x"] },
          { id = "y", title = "Y", needs = ["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"] } ] }
    """))
    paths = [str(fdir)]
    cook(ledger, "seg", search_paths=paths)
    # polymers of polymers: 100 → 200 → 400 → 800 → 1000 steps
    bond(ledger, "seg", "seg", name="mol-p2", search_paths=paths)
    bond(ledger, "mol-p2", "mol-p2", name="mol-p4")
    bond(ledger, "mol-p4", "mol-p4", name="mol-p8")
    assert bond(ledger, "mol-p8", "mol-p2", name="mol-p10")["steps"] == 1000
    root, ids = pour_with_steps(ledger, "mol-p10")
    rid = root["id"]
    assert len(ids) == 1000
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, _ledger_dir(ledger), rid,
                                 f"w{n}"], stdout=subprocess.PIPE, text=True, env=_env())
               for n in range(4)]
    counts = []
    for w in workers:
        out, _ = w.communicate(timeout=600)
        assert w.returncode == 0
        counts.append(int(out.strip()))
    assert sum(counts) == 1000
    assert sum(1 for c in counts if c > 0) >= 2  # the work really was shared
    steps = work_steps(ledger, rid)
    assert len(steps) == 1000 and all(s["status"] == "closed" for s in steps)
    assert ledger.get(rid)["status"] == "closed"
    events = ledger.events(types=["bead.claimed", "bead.closed"])
    claimed = Counter(e["bead_id"] for e in events if e["type"] == "bead.claimed")
    closed = Counter(e["bead_id"] for e in events if e["type"] == "bead.closed")
    step_ids = {s["id"] for s in steps}
    report(f"polymer-workers-{ledger.store.dialect}", cases=len(step_ids), acked=sum(counts),
           lost=sum(1 for s in step_ids if closed[s] == 0),
           doubled=sum(1 for s in step_ids if claimed[s] > 1 or closed[s] > 1))
    assert {k: v for k, v in claimed.items() if k in step_ids} == dict.fromkeys(step_ids, 1)
    assert {k: v for k, v in closed.items() if k in step_ids} == dict.fromkeys(step_ids, 1)
    # no step was claimed before everything it needs had closed
    seq_closed = {e["bead_id"]: e["seq"] for e in events if e["type"] == "bead.closed"}
    seq_claimed = {e["bead_id"]: e["seq"] for e in events if e["type"] == "bead.claimed"}
    with ledger.store.read() as tx:
        edges = tx.query("SELECT issue_id, depends_on_id FROM dependencies WHERE type = "
                         "'blocks' AND issue_id LIKE ?", (rid + ".%",))
    assert len(edges) > 1000
    for step, needed in edges:
        if step in seq_claimed and needed in seq_closed:
            assert seq_closed[needed] < seq_claimed[step], (step, needed)
