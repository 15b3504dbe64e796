"""Conformance: claims are one compare-and-set (DESIGN §3.5), on both backends.

``open`` and unassigned (or assigned to the caller) → ``in_progress`` + assignee +
``started_at``; anything else is a :class:`ConflictError`.  Threads and OS
processes racing for the same beads never both win.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from gastown import Filter, Ledger
from gastown.errors import ConflictError, GastownError, NotFoundError
from helpers.ledgertools import ledger_dir, open_again, snapshot

WORKER = Path(__file__).parent / "helpers" / "claim_worker.py"


def test_claim_open_unassigned_wins(ledger: Ledger) -> None:
    b = ledger.create("x")
    seq = ledger.last_event_seq()
    got = ledger.claim(b.id)
    assert got["status"] == "in_progress"
    assert got["assignee"] == "tester"
    assert got["started_at"] >= b["created_at"]
    assert [e["type"] for e in ledger.events(since_seq=seq)] == ["bead.claimed"]
    assert ledger.get(b.id) == got


def test_claim_for_another_assignee(ledger: Ledger) -> None:
    b = ledger.create("x")
    assert ledger.claim(b.id, assignee="worker-7")["assignee"] == "worker-7"


def test_claim_by_other_actor_conflicts(ledger: Ledger) -> None:
    b = ledger.create("x")
    ledger.claim(b.id, assignee="alice")
    before = snapshot(ledger)
    with pytest.raises(ConflictError, match="already claimed by alice"):
        ledger.claim(b.id, assignee="bob")
    assert snapshot(ledger) == before


def test_claim_assigned_to_caller_wins_assigned_to_other_loses(ledger: Ledger) -> None:
    mine = ledger.create("mine", assignee="tester")
    theirs = ledger.create("theirs", assignee="carol")
    assert ledger.claim(mine.id)["status"] == "in_progress"
    with pytest.raises(ConflictError, match="carol"):
        ledger.claim(theirs.id)
    assert ledger.get(theirs.id)["status"] == "open"
    # empty-string assignee counts as unassigned
    blank = ledger.create("blank")
    ledger.update(blank.id, assignee="")
    assert ledger.claim(blank.id, assignee="dan")["assignee"] == "dan"


def test_claim_refused_unless_open(ledger: Ledger) -> None:
    for status in ("closed", "in_progress", "blocked", "deferred", "pinned", "hooked"):
        b = ledger.create("x")
        ledger.update(b.id, status=status)
        before = snapshot(ledger)
        with pytest.raises(ConflictError, match=f"status is {status}"):
            ledger.claim(b.id)
        assert snapshot(ledger) == before


def test_claim_unknown(ledger: Ledger) -> None:
    with pytest.raises(NotFoundError, match="t-nope"):
        ledger.claim("t-nope")


def test_claim_keeps_first_started_at(ledger: Ledger) -> None:
    b = ledger.create("x")
    first = ledger.claim(b.id)["started_at"]
    ledger.update(b.id, status="open", assignee="")
    assert ledger.claim(b.id, assignee="other")["started_at"] == first


def test_claim_next_gives_different_beads_in_ready_order(ledger: Ledger) -> None:
    low = ledger.create("low", priority=3)
    top = ledger.create("top", priority=0)
    mid = ledger.create("mid", priority=1)
    ledger.create("held", priority=0, deps=[("blocks", low.id)])
    ledger.create("infra", priority=0, issue_type="gate")
    a = ledger.claim_next(assignee="a")
    b = ledger.claim_next(assignee="b")
    c = ledger.claim_next(assignee="c")
    assert (a["id"], b["id"], c["id"]) == (top.id, mid.id, low.id)
    assert (a["assignee"], b["assignee"], c["assignee"]) == ("a", "b", "c")
    assert ledger.claim_next(assignee="d") is None
    assert ledger.ready() == []


def test_claim_next_with_filter(ledger: Ledger) -> None:
    ledger.create("task", priority=0)
    bug = ledger.create("bug", issue_type="bug", priority=4, labels=["backend"])
    got = ledger.claim_next(Filter(labels_all=["backend"]), assignee="z")
    assert got is not None and got["id"] == bug.id
    assert ledger.claim_next(Filter(issue_type=["bug"])) is None


def test_threads_never_double_claim(ledger: Ledger) -> None:
    n_beads, n_threads = 60, 6
    with ledger.transaction() as t:
        for i in range(n_beads):
            t.create(f"work {i}", priority=i % 5)
    results: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(n_threads)

    def worker(name: str) -> None:
        mine: list[str] = []
        try:
            with open_again(ledger, name) as led:
                barrier.wait()
                while (bead := led.claim_next()) is not None:
                    assert bead["assignee"] == name
                    mine.append(bead["id"])
        except BaseException as exc:  # reported below
            errors.append(exc)
        results[name] = mine

    threads = [threading.Thread(target=worker, args=(f"agent-{i}",)) for i in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    claimed = [b for ids in results.values() for b in ids]
    assert len(claimed) == n_beads
    assert len(set(claimed)) == n_beads
    owners = {b["id"]: b["assignee"] for b in ledger.list()}
    for name, ids in results.items():
        assert all(owners[i] == name for i in ids)
    with ledger.store.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM events WHERE type = 'bead.claimed'") == n_beads


def test_threads_sharing_one_ledger_handle(ledger: Ledger) -> None:
    """One Ledger object used by several threads at once (a controller's threads):
    each thread's transaction is its own, no claim is doubled or lost."""
    n_beads, n_threads = 40, 4
    with ledger.transaction() as t:
        for i in range(n_beads):
            t.create(f"work {i}")
    results: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(n_threads)

    def worker(name: str) -> None:
        mine: list[str] = []
        try:
            barrier.wait()
            while (bead := ledger.claim_next(assignee=name)) is not None:
                mine.append(bead["id"])
                ledger.add_comment(bead["id"], f"taken by {name}")
        except BaseException as exc:  # reported below
            errors.append(exc)
        results[name] = mine

    threads = [threading.Thread(target=worker, args=(f"agent-{i}",)) for i in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    claimed = [b for ids in results.values() for b in ids]
    assert sorted(claimed) == sorted(b["id"] for b in ledger.list())
    for name, ids in results.items():
        for bead_id in ids:
            assert ledger.get(bead_id)["assignee"] == name
            assert [c["text"] for c in ledger.comments(bead_id)] == [f"taken by {name}"]


def test_threads_racing_for_one_bead_one_winner(ledger: Ledger) -> None:
    b = ledger.create("contested")
    n = 8
    barrier = threading.Barrier(n)
    outcome: list[str] = []

    def worker(name: str) -> None:
        with open_again(ledger, name) as led:
            barrier.wait()
            try:
                led.claim(b.id)
                outcome.append("won:" + name)
            except ConflictError:
                outcome.append("lost")
            except GastownError as exc:
                outcome.append(f"error:{exc}")

    threads = [threading.Thread(target=worker, args=(f"agent-{i}",)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=60)
    winners = [o for o in outcome if o.startswith("won:")]
    assert len(winners) == 1, outcome
    assert outcome.count("lost") == n - 1, outcome
    assert ledger.get(b.id)["assignee"] == winners[0][4:]


@pytest.mark.parametrize("mode", ["next", "race"])
def test_processes_never_double_claim(ledger: Ledger, mode: str) -> None:
    n_beads, n_procs = 80, 4
    with ledger.transaction() as t:
        for i in range(n_beads):
            t.create(f"work {i}", priority=i % 5)
    start = str(time.time() + 1.0)
    procs = [subprocess.Popen([sys.executable, str(WORKER), ledger_dir(ledger), f"proc-{i}",
                               mode, start],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(n_procs)]
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert "database is locked" not in err
        outs.append(json.loads(out))
    for o in outs:
        assert o["errors"] == []
    claimed = Counter(i for o in outs for i in o["claimed"])
    assert all(n == 1 for n in claimed.values()), [i for i, n in claimed.items() if n > 1]
    owners = {b["id"]: b["assignee"] for b in ledger.list()}
    for i, o in enumerate(outs):
        assert all(owners[b] == f"proc-{i}" for b in o["claimed"])
    if mode == "next":
        assert len(claimed) == n_beads
    else:
        # every try either won or lost the CAS; each bead has exactly one winner
        assert len(claimed) == n_beads
        for o in outs:
            assert len(o["claimed"]) + o["conflicts"] == o["tried"]
        assert sum(o["conflicts"] for o in outs) > 0  # the processes really collided
    assert ledger.ready() == []
