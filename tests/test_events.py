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


def test_bd_events_follow_prints_a_commit_at_once(ledger: Ledger) -> None:
    """``bd events --follow`` in its own process wakes on the commit, not on a 0.2 s poll."""
    import json
    import os
    import statistics
    import subprocess
    import sys

    from helpers.ledgertools import ledger_dir

    bd = os.path.join(os.path.dirname(sys.executable), "bd")
    proc = subprocess.Popen([bd, "-C", ledger_dir(ledger), "events", "--follow", "--json",
                             "--type", "probe.*", "--timeout", "60"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ledger.emit("probe.first")  # printed once the follower is up: our start signal
        assert json.loads(proc.stdout.readline())["type"] == "probe.first"
        latencies = []
        for i in range(10):
            seq = ledger.emit("probe.tick", None, {"i": i})
            written = time.monotonic()
            line = json.loads(proc.stdout.readline())
            latencies.append(time.monotonic() - written)
            assert line["seq"] == seq
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait()
    # the default --interval is 0.2 s: a poll would take 0.1 s on average
    assert statistics.median(latencies) < 0.05, sorted(latencies)


def test_followers_can_share_one_bus(ledger: Ledger) -> None:
    from gastown.ledger.bus import EventBus

    base = ledger.last_event_seq()
    with EventBus(ledger) as bus:
        a = ledger.create("one")
        first = list(ev.follow(ledger, base, timeout=0.3, types=["bead.created"], bus=bus))
        second = list(ev.follow(ledger, base, timeout=0.3, types=["bead.created"], bus=bus))
        assert not bus.closed  # a follower that ends leaves a shared bus open
        assert [e["bead_id"] for e in first] == [e["bead_id"] for e in second] == [a["id"]]
        assert bus._thread is not None and bus._thread.is_alive()  # noqa: SLF001 - one waiter
