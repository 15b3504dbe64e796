"""The event log follower: every committed event exactly once, holes waited for."""

from __future__ import annotations

import threading
import time

from gastown import Ledger
from gastown.ledger import events as ev


def _insert(led: Ledger, seq: int, type_: str) -> None:
    with led.store.write() as tx:
        tx.execute("INSERT INTO events (seq, ts, type, actor, bead_id, payload) "
                   "VALUES (?, '2026-01-01T00:00:00Z', ?, 'x', NULL, NULL)", (seq, type_))


def test_follow_yields_late_commits_below_the_high_water_mark(ledger: Ledger) -> None:
    base = ledger.last_event_seq()
    _insert(ledger, base + 2, "late.second")   # seq base+1 is still "in flight"
    seen: list[str] = []

    def fill() -> None:
        time.sleep(0.3)
        _insert(ledger, base + 1, "late.first")

    t = threading.Thread(target=fill)
    t.start()
    for e in ev.follow(ledger, base, interval=0.05, timeout=1.5):
        seen.append(e["type"])
    t.join()
    assert seen == ["late.second", "late.first"]


def test_follow_filters_and_never_repeats(ledger: Ledger) -> None:
    base = ledger.last_event_seq()
    a = ledger.create("one")
    ledger.create("two")
    ledger.close_bead(a["id"])
    got = list(ev.follow(ledger, base, interval=0.01, timeout=0.2, types=["bead.c*"],
                         bead_id=a["id"]))
    assert [(e["type"], e["bead_id"]) for e in got] == [
        ("bead.created", a["id"]), ("bead.closed", a["id"])]
    assert len({e["seq"] for e in got}) == len(got)


def test_matches() -> None:
    e = {"type": "mail.sent", "bead_id": "x-1"}
    assert ev.matches(e, ["mail.*"]) and ev.matches(e, ["mail.sent"], "x-1")
    assert not ev.matches(e, ["mail"]) and not ev.matches(e, [], "x-2")
