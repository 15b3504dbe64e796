"""The event bus: subscribers wake the moment an event commits in another process,
never lose or repeat one under concurrent writers, resume from their cursor, and
cost next to nothing while idle.  Both backends, real writer processes.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest

from gastown import Ledger
from gastown.ledger.bus import EventBus, Subscription

# a writer process: N events, each carrying the wall-clock time just before its commit
_WRITER = textwrap.dedent("""
    import json, sys, time
    from gastown import Ledger
    url, count, gap, tag = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
    led = Ledger.open(url, actor="writer-" + tag)
    print("ready", flush=True)
    sys.stdin.readline()  # go
    for i in range(count):
        if tag.startswith("rollback") and i % 5 == 0:
            try:  # a transaction that takes a seq and rolls back: a hole for ever
                with led.transaction() as t:
                    t.emit("doomed", None, {"i": i})
                    raise RuntimeError("roll back")
            except RuntimeError:
                pass
        led.emit("bus.test", None, {"tag": tag, "i": i, "t": time.time()})
        if gap:
            time.sleep(gap)
    led.close()
""")


def _url(ledger: Ledger) -> str:
    store: Any = ledger.store
    return str(getattr(store, "_conninfo", None) or store.path)


def _writers(ledger: Ledger, tags: list[str], count: int,
             gap: float) -> list[subprocess.Popen[str]]:
    """Start writer processes, wait until each has its ledger open, then let them go."""
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, _url(ledger), str(count), str(gap),
                               tag], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for tag in tags]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    return procs


def _collect(sub: Subscription, want: int, deadline_s: float) -> list[dict[str, Any]]:
    """Events of type ``bus.test`` until ``want`` arrived (or the deadline)."""
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + deadline_s
    while len(got) < want and time.monotonic() < deadline:
        ev = sub.get(timeout=max(0.0, deadline - time.monotonic()))
        if ev is not None and ev["type"] == "bus.test":
            got.append(ev)
    return got


def test_a_subscriber_wakes_at_once_for_a_commit_in_another_process(ledger: Ledger) -> None:
    with EventBus(ledger) as bus:
        sub = bus.subscribe(types=["bus.*"])
        procs = _writers(ledger, ["one"], count=20, gap=0.03)
        latencies = []
        for _ in range(20):
            ev = sub.get(timeout=10)
            assert ev is not None, "an event was not delivered within 10 s"
            latencies.append(time.time() - ev["payload"]["t"])
        for p in procs:
            assert p.wait(timeout=30) == 0
    # a poll every 0.1 s (the old follower) waits 50 ms on average; NOTIFY and the
    # WAL-file signal wake within a few
    assert statistics.median(latencies) < 0.03, sorted(latencies)


def test_concurrent_writers_lose_and_repeat_nothing(ledger: Ledger, backend: str) -> None:
    base = ledger.last_event_seq()
    tags = ["a", "b", "rollback-c", "d"]
    count = 40
    with EventBus(ledger) as bus:
        subs = [bus.subscribe(base), bus.subscribe(base, types=["bus.test"]), bus.subscribe(base)]
        results: list[list[dict[str, Any]]] = [[] for _ in subs]

        def consume(i: int) -> None:
            results[i] = _collect(subs[i], len(tags) * count, 60)

        threads = [threading.Thread(target=consume, args=(i,)) for i in range(len(subs))]
        for t in threads:
            t.start()
        procs = _writers(ledger, tags, count, gap=0.0)
        for p in procs:
            assert p.wait(timeout=60) == 0
        for t in threads:
            t.join(timeout=90)
    logged = [e["seq"] for e in ledger.events(base, types=["bus.test"])]
    assert len(logged) == len(tags) * count
    assert ledger.events(base, types=["doomed"]) == []  # rolled back: never in the log
    for got in results:
        seqs = [e["seq"] for e in got]
        assert len(seqs) == len(set(seqs)), "an event was delivered twice"
        assert sorted(seqs) == logged, "delivered events differ from the log"
    # per writer, in the order it wrote them
    for tag in tags:
        mine = [e["payload"]["i"] for e in results[0] if e["payload"]["tag"] == tag]
        assert mine == list(range(count))


def test_a_restarted_subscriber_resumes_from_its_cursor(ledger: Ledger) -> None:
    base = ledger.last_event_seq()
    seen: list[int] = []
    with EventBus(ledger) as bus:
        sub = bus.subscribe(base, types=["bus.test"])
        procs = _writers(ledger, ["first"], count=10, gap=0.0)
        seen += [e["seq"] for e in _collect(sub, 10, 30)]
        cursor = sub.cursor
        sub.close()
        assert sub.get(timeout=0) is None  # closed: nothing more
        assert procs[0].wait(timeout=30) == 0
    # written while no one listens
    procs = _writers(ledger, ["second"], count=10, gap=0.0)
    assert procs[0].wait(timeout=30) == 0
    with EventBus(ledger) as bus:
        again = bus.subscribe(cursor, types=["bus.test"])
        seen += [e["seq"] for e in _collect(again, 10, 30)]
    logged = [e["seq"] for e in ledger.events(base, types=["bus.test"])]
    assert len(logged) == 20
    assert sorted(seen) == logged and len(set(seen)) == len(seen)


def test_an_idle_subscriber_does_not_spin(ledger: Ledger) -> None:
    with EventBus(ledger) as bus:
        sub = bus.subscribe()
        assert sub.get(timeout=0.2) is None  # warm up: connections open, threads running
        before = resource.getrusage(resource.RUSAGE_SELF)
        started = time.monotonic()
        assert sub.get(timeout=3.0) is None
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert wall >= 2.9
    assert cpu < 0.02 * wall, f"{cpu:.3f} s of CPU in {wall:.1f} s idle"


def test_publish_reaches_every_subscriber_of_a_bus(ledger: Ledger) -> None:
    with EventBus(ledger) as bus:
        subs = [bus.subscribe(types=["hello"]) for _ in range(5)]
        seq = bus.publish("hello", None, {"n": 1})
        for sub in subs:
            ev = sub.get(timeout=5)
            assert ev is not None and ev["seq"] == seq and ev["payload"] == {"n": 1}
            assert sub.cursor == seq
    assert json.loads(json.dumps(ledger.events(seq - 1)))[0]["type"] == "hello"


def test_a_closed_bus_ends_iteration(ledger: Ledger) -> None:
    bus = EventBus(ledger)
    sub = bus.subscribe()
    got: list[dict[str, Any]] = []
    t = threading.Thread(target=lambda: got.extend(sub))
    t.start()
    bus.publish("before.close")
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    bus.close()
    t.join(timeout=10)
    assert not t.is_alive()
    assert [e["type"] for e in got] == ["before.close"]


@pytest.mark.parametrize("backend", ["postgres"])
def test_postgres_commit_sends_one_notify(ledger: Ledger) -> None:
    """The NOTIFY travels with the commit: none for a rollback, one per transaction."""
    store: Any = ledger.store
    signal = store.change_signal()
    try:
        try:
            with ledger.transaction() as t:
                t.emit("doomed", None)
                raise RuntimeError
        except RuntimeError:
            pass
        assert signal.wait(0.3) is False
        with ledger.transaction() as t:
            t.emit("x.one", None)
            t.emit("x.two", None)
        assert signal.wait(5) is True
        assert signal.wait(0.3) is False  # the two events' notifies collapsed into one
    finally:
        signal.close()
        signal.wait(0)


def test_without_inotify_the_stat_signal_still_wakes_at_once(
        tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where inotify is missing (or its limits are met) SQLite falls back to ``stat``."""
    from gastown.ledger import signals

    def no_inotify(paths: Any) -> Any:
        raise OSError(24, "inotify_init1")

    monkeypatch.setattr(signals, "InotifySignal", no_inotify)
    led = Ledger.init(str(tmp_path), prefix="t", actor="tester")
    try:
        assert isinstance(led.store.change_signal(), signals.FileSignal)
        test_a_subscriber_wakes_at_once_for_a_commit_in_another_process(led)
    finally:
        led.close()


def test_sqlite_uses_inotify_on_linux(tmp_path: Any) -> None:
    from gastown.ledger import signals

    if not sys.platform.startswith("linux"):
        pytest.skip("inotify is Linux only")
    led = Ledger.init(str(tmp_path), prefix="t", actor="tester")
    signal = led.store.change_signal()
    try:
        assert isinstance(signal, signals.InotifySignal)
        assert signal.wait(0.05) is False
        led.emit("x.one")
        assert signal.wait(5) is True
        (tmp_path / ".beads" / "unrelated.txt").write_text("x")  # other files: no wake
        assert signal.wait(0.2) is False
    finally:
        signal.close()
        signal.wait(0)
        led.close()
