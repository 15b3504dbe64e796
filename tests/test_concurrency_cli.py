"""Concurrency through the real ``bd`` command line on one SQLite file (DESIGN §3.3, §8).

16 OS processes claim from the same ready beads with ``bd ready --claim --json``
and ``bd ready --json`` + ``bd update ID --claim`` loops: no bead is ever claimed
twice, and no process ever sees "database is locked" or a storage error.
``GASTOWN_CLAIM_BEADS`` sets how many ready beads the 16 processes drain (default
64) for a longer run; the counts go to :func:`helpers.robustness_report.report`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from gastown import Ledger
from helpers.ledgertools import ready_ids, reference_ready_ids
from helpers.robustness_report import report

LOOP = Path(__file__).parent / "helpers" / "bd_claim_loop.py"
DRAIN = int(os.environ.get("GASTOWN_CLAIM_BEADS", "64"))


def _bd_available(env: dict[str, str]) -> None:
    if not shutil.which("bd", path=env["PATH"]):
        pytest.skip("the bd console script is not installed in the venv")
    proc = subprocess.run(["bd", "--help"], env=env, capture_output=True, text=True,
                          timeout=60)
    if proc.returncode != 0 or "ready" not in proc.stdout:
        pytest.skip(f"bd is not usable yet: {proc.stderr.strip()[:200]}")


def _make_ready(directory: Path, n: int) -> list[str]:
    with Ledger.init(str(directory), prefix="c", actor="setup") as led:
        with led.transaction() as t:
            ids = [t.create(f"work {i}", priority=i % 5)["id"] for i in range(n)]
        assert len(led.ready()) == n
    return ids


def _run_workers(directory: Path, env: dict[str, str],
                 plan: list[tuple[str, str, int]]) -> dict[str, dict]:
    procs = {actor: subprocess.Popen([sys.executable, str(LOOP), str(directory), actor, mode,
                                      str(limit)], env=env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
             for actor, mode, limit in plan}
    results = {}
    for actor, proc in procs.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        results[actor] = json.loads(out)
    return results


def _check(directory: Path, results: dict[str, dict], all_ids: list[str],
           harness: str) -> Counter[str]:
    claims = Counter(b for r in results.values() for b in r["claimed"])
    doubles = [b for b, n in claims.items() if n > 1]
    with Ledger.open(cwd=str(directory), actor="checker") as led:
        recorded = {e["bead_id"] for e in led.events(types=["bead.claimed"])}
    report(harness, cases=sum(r["calls"] for r in results.values()),
           acked=sum(len(r["claimed"]) for r in results.values()),
           lost=len(set(claims) - recorded), doubled=len(doubles),
           internal=sum(len(r["failures"]) for r in results.values()))
    for actor, r in results.items():
        assert r["failures"] == [], (actor, r["failures"])
    assert not doubles, f"claimed twice: {doubles[:10]}"
    with Ledger.open(cwd=str(directory), actor="checker") as led:
        beads = {b["id"]: b for b in led.list()}
        for actor, r in results.items():
            for bead_id in r["claimed"]:
                assert beads[bead_id]["assignee"] == actor
                assert beads[bead_id]["status"] == "in_progress"
        unclaimed = [b for b in all_ids if b not in claims]
        assert all(beads[b]["status"] == "open" and "assignee" not in beads[b]
                   for b in unclaimed)
        assert sum(1 for e in led.events(types=["bead.claimed"])) == len(claims)
        assert ready_ids(led) == reference_ready_ids(led)
        assert sorted(ready_ids(led)) == sorted(unclaimed)
    return claims


@pytest.mark.slow
def test_16_processes_claim_from_1000_ready_beads(tmp_path: Path,
                                                  bd_env: dict[str, str]) -> None:
    _bd_available(bd_env)
    all_ids = _make_ready(tmp_path, 1000)
    plan = [(f"agent-{i:02d}", "ready", 12) for i in range(12)]
    plan += [(f"agent-{i:02d}", "update", 8) for i in range(12, 16)]
    results = _run_workers(tmp_path, bd_env, plan)
    claims = _check(tmp_path, results, all_ids, "claims-16-processes")
    assert len(claims) == 12 * 12 + 4 * 8
    # nobody starved: every process got its share while racing for the same head
    for actor, r in results.items():
        assert len(r["claimed"]) == (12 if actor < "agent-12" else 8), actor


@pytest.mark.slow
def test_16_processes_drain_the_ready_queue(tmp_path: Path, bd_env: dict[str, str]) -> None:
    _bd_available(bd_env)
    all_ids = _make_ready(tmp_path, DRAIN)
    plan = [(f"agent-{i:02d}", "ready" if i % 4 else "update", 0) for i in range(16)]
    results = _run_workers(tmp_path, bd_env, plan)
    claims = _check(tmp_path, results, all_ids, "claims-drain")
    assert sorted(claims) == sorted(all_ids)  # everything was claimed, exactly once
