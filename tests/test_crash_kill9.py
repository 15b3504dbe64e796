"""Chaos: ``kill -9`` at random moments never loses a committed change and never
corrupts the ledger (DESIGN §8, §9).  SQLite; the writer is a real OS process,
either the library (``helpers/crash_writer.py``) or the ``bd`` command line
(``helpers/crash_writer_cli.sh``), killed with SIGKILL many times.

A writer prints a line (and flushes) only after a change committed; everything
read back from its stdout must therefore be in the ledger afterwards.
``GASTOWN_KILL9_KILLS`` sets the kills per writer for a longer run (default 20
for the library writer, 12 for the command line), ``GASTOWN_KILL9_SEED`` the seed;
the counts go to :func:`helpers.robustness_report.report`.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gastown import Ledger
from helpers.ledgertools import ready_ids, reference_ready_ids
from helpers.robustness_report import report

HELPERS = Path(__file__).parent / "helpers"
KILLS = os.environ.get("GASTOWN_KILL9_KILLS")
SEED = int(os.environ.get("GASTOWN_KILL9_SEED", "20240601"))


def _run_and_kill(argv: list[str], env: dict[str, str], delay: float) -> list[list[str]]:
    """Start a writer, SIGKILL its whole process group after ``delay`` s, return its lines."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            start_new_session=True)
    time.sleep(delay)
    os.killpg(proc.pid, signal.SIGKILL)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL, err.decode(errors="replace")[-2000:]
    lines = out.decode().splitlines()
    if out and not out.endswith(b"\n"):
        lines = lines[:-1]  # a torn last line was never fully reported
    return [line.split() for line in lines if line.strip()]


def _damage(directory: Path, created: set[str], closed: set[str]) -> tuple[int, int]:
    """(acknowledged writes missing, groups left without all their children or edge)."""
    con = sqlite3.connect(directory / ".beads" / "beads.db")
    try:
        rows = dict(con.execute("SELECT id, status FROM issues").fetchall())
        edges = set(con.execute("SELECT issue_id, depends_on_id, type FROM dependencies"))
    finally:
        con.close()
    lost = len(created - set(rows)) + sum(1 for b in closed if rows.get(b) != "closed")
    partial = 0
    for bead_id in rows:
        if bead_id.endswith(".1") and bead_id.count(".") == 1:
            parent = bead_id[:-2]
            kids = [f"{parent}.{n}" for n in (1, 2, 3)]
            if not all((k, parent, "parent-child") in edges for k in kids) \
                    or (kids[1], kids[0], "blocks") not in edges:
                partial += 1
    return lost, partial


def _verify(directory: Path, created: set[str], closed: set[str],
            groups: list[list[str]]) -> None:
    db = directory / ".beads" / "beads.db"
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = dict(con.execute("SELECT id, status FROM issues").fetchall())
        dep_rows = con.execute("SELECT issue_id, depends_on_id, type FROM dependencies").fetchall()
        events = dict(con.execute("SELECT type, COUNT(*) FROM events GROUP BY type").fetchall())
    finally:
        con.close()
    missing = created - set(rows)
    assert not missing, f"committed beads lost: {sorted(missing)[:5]}"
    assert all(rows[b] == "closed" for b in closed), "a committed close was lost"
    for parent, *kids in groups:
        assert parent in rows and all(k in rows for k in kids)
        assert (kids[1], kids[0], "blocks") in dep_rows
    # atomic groups: a parent never exists without all of its children and edges
    edges = {(a, b, t) for a, b, t in dep_rows}
    for bead_id in rows:
        if bead_id.endswith(".1") and bead_id.count(".") == 1:
            parent = bead_id[:-2]
            for n in (1, 2, 3):
                assert (f"{parent}.{n}", parent, "parent-child") in edges
    # every bead has its creation event (change and event commit together)
    assert events.get("bead.created", 0) == len(rows)
    # the ready state the writers maintained incrementally is still exact
    with Ledger.open(cwd=str(directory), actor="checker") as led:
        assert ready_ids(led) == reference_ready_ids(led)
        assert led.integrity_problems() == []
    export = directory / ".beads" / "issues.jsonl"
    if export.exists():  # an interrupted export never leaves a torn file in place
        text = export.read_text()
        assert text == "" or text.endswith("\n")
        for line in text.splitlines():
            json.loads(line)


@pytest.mark.slow
@pytest.mark.parametrize("writer", ["library", "cli"])
def test_kill9_loses_no_committed_write(tmp_path: Path, bd_env: dict[str, str],
                                        writer: str) -> None:
    Ledger.init(str(tmp_path), prefix="k", actor="setup").close()
    if writer == "library":
        argv = [sys.executable, str(HELPERS / "crash_writer.py"), str(tmp_path)]
        kills, delays = 20, (0.15, 0.6)
    else:
        argv = ["bash", str(HELPERS / "crash_writer_cli.sh"), str(tmp_path)]
        kills, delays = 12, (0.1, 0.8)
    if KILLS is not None:
        kills = int(KILLS)
    rng = random.Random(SEED)
    created: set[str] = set()
    closed: set[str] = set()
    groups: list[list[str]] = []
    reported = done = lost = partial = 0
    started = time.monotonic()
    try:
        for _ in range(kills):
            for words in _run_and_kill(argv, bd_env, rng.uniform(*delays)):
                reported += 1
                if words[0] == "created":
                    created.add(words[1])
                elif words[0] == "group":
                    created.update(words[1:])
                    groups.append(words[1:])
                elif words[0] == "closed":
                    closed.add(words[1])
            done += 1
            lost, partial = _damage(tmp_path, created, closed)
            _verify(tmp_path, created, closed, groups)
    finally:
        report(f"kill9-{writer}", cases=done, kills=done, acked=reported, lost=lost,
               partial=partial)
    assert reported > kills  # the writers really got work done between kills
    if KILLS is None:
        assert time.monotonic() - started < 60
