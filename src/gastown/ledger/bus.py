"""The event bus: publish events, subscribe to them, wake up the moment one commits.

The event log is the truth.  A :class:`Subscription` reads the log itself (by
``seq``, with the hole rule of :mod:`.events`), so it never skips or repeats an
event, and a subscriber that restarts from its :attr:`Subscription.cursor`
misses nothing.  What the bus adds is the *wake-up*: one waiter thread per bus
blocks on the store's change signal (``LISTEN`` on PostgreSQL, a look at the
WAL file on SQLite, see :mod:`.signals`) and wakes every subscription at once,
so many in-process subscribers (the controller, a dashboard, an MCP server)
share one connection and one waiter.  Signals are hints: a subscription also
reads the log every ``fallback`` seconds, and every ``hole_poll`` seconds while
a PostgreSQL sequence hole is open.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from .events import HOLE_PATIENCE_S, matches

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from typing import Any

    from .core import Ledger
    from .signals import ChangeSignal

__all__ = ["EventBus", "Subscription"]

#: seconds between reads of the log when no signal came (signals are hints)
FALLBACK_S = 2.0
#: seconds between reads while a sequence hole waits to be filled
HOLE_POLL_S = 0.05


class EventBus:
    """Publish/subscribe over one ledger's event log (one waiter thread, many subscribers)."""

    def __init__(self, ledger: Ledger, *, fallback: float = FALLBACK_S,
                 hole_poll: float = HOLE_POLL_S) -> None:
        self.ledger = ledger
        self.fallback = fallback
        self.hole_poll = hole_poll
        self._cond = threading.Condition()
        self._generation = 0
        self._signal: ChangeSignal | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    # ------------------------------------------------------------- publish
    def publish(self, type_: str, bead_id: str | None = None,
                payload: Mapping[str, Any] | None = None) -> int:
        """Append an event to the log (its own transaction); returns its ``seq``.

        Events written by any ledger operation, in any process, reach the
        subscribers the same way: publishing is only writing to the log.
        """
        return self.ledger.emit(type_, bead_id, payload)

    # ----------------------------------------------------------- subscribe
    def subscribe(self, after_seq: int | None = None, types: Iterable[str] = (),
                  bead_id: str | None = None) -> Subscription:
        """Events after ``after_seq`` (``None``: from now on), in ``seq`` order.

        ``types`` filters by type (``prefix*`` allowed), ``bead_id`` by bead.
        The waiter starts listening before the first read, so nothing committed
        in between is slept through.
        """
        self._start()
        if after_seq is None:
            after_seq = self.ledger.last_event_seq()
        return Subscription(self, after_seq, types, bead_id)

    def close(self) -> None:
        """Stop the waiter and release its connection; subscriptions end."""
        with self._cond:
            self._closed = True
            self._generation += 1
            self._cond.notify_all()
        if self._signal is not None:
            self._signal.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def wake(self) -> None:
        """Wake every waiting subscription now, without a commit (one being closed
        ends its wait at once instead of at its next timeout)."""
        with self._cond:  # a re-entrant lock: safe from a signal handler on any thread
            self._generation += 1
            self._cond.notify_all()

    def __enter__(self) -> EventBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """Has :meth:`close` been called?"""
        return self._closed

    # ------------------------------------------------------------ internal
    def _start(self) -> None:
        with self._cond:
            if self._thread is not None or self._closed:
                return
            self._signal = self.ledger.store.change_signal()
            self._thread = threading.Thread(target=self._wait_loop, name="event-bus",
                                            daemon=True)
            self._thread.start()

    def _wait_loop(self) -> None:
        signal = self._signal
        assert signal is not None
        while not self._closed:
            try:
                woke = signal.wait(self.fallback)
            except Exception:  # noqa: BLE001 - a broken signal degrades to polling
                woke = False
                time.sleep(min(self.fallback, 1.0))
            if woke:
                with self._cond:
                    self._generation += 1
                    self._cond.notify_all()
        signal.wait(0)  # a closed signal releases its connection or descriptor here

    def generation(self) -> int:
        """A number that grows at every wake-up (compare before and after a read)."""
        with self._cond:
            return self._generation

    def wait(self, generation: int, timeout: float) -> bool:
        """Block until the generation passes ``generation`` (True) or ``timeout`` (False)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._generation != generation or self._closed,
                                       timeout=max(0.0, timeout))


class Subscription:
    """One subscriber's position in the log; iterate it or call :meth:`get`.

    :attr:`cursor` is the resume point: every event at or below it has been
    yielded (or is a sequence number no commit will ever fill).  A subscriber
    that saves it and later subscribes ``after_seq=cursor`` loses nothing; it
    may see again events above the cursor that were yielded ahead of a hole.
    """

    def __init__(self, bus: EventBus, after_seq: int, types: Iterable[str] = (),
                 bead_id: str | None = None) -> None:
        self.bus = bus
        self.types = list(types)
        self.bead_id = bead_id
        #: the highest ``seq`` read from the log
        self.last_seq = after_seq
        self._holes: dict[int, float] = {}
        self._pending: deque[dict[str, Any]] = deque()
        self._next_read = 0.0  # monotonic time of the next fallback read
        self._seen = -1  # the bus generation of the last read
        self._closed = False

    @property
    def cursor(self) -> int:
        """Where to resume: below the oldest open hole, else the last ``seq`` read."""
        return (min(self._holes) - 1) if self._holes else self.last_seq

    def close(self) -> None:
        """End this subscription (the bus and other subscriptions go on)."""
        self._closed = True

    def _read(self) -> None:
        """Read the log after the cursor; queue what is new and passes the filters."""
        batch = self.bus.ledger.events(self.cursor)
        now = time.monotonic()
        for event in batch:
            seq = event["seq"]
            if seq > self.last_seq:
                self._holes.update((missing, now) for missing in range(self.last_seq + 1, seq))
                self.last_seq = seq
            elif seq in self._holes:
                del self._holes[seq]
            else:
                continue  # yielded already
            if matches(event, self.types, self.bead_id):
                self._pending.append(event)
        for seq, since in list(self._holes.items()):
            if now - since > HOLE_PATIENCE_S:
                del self._holes[seq]  # a rolled-back transaction's number
        self._next_read = now + (self.bus.hole_poll if self._holes else self.bus.fallback)

    def get(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next event, waiting up to ``timeout`` seconds (None: forever).

        Returns None when the time is up or the subscription or bus is closed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._pending:
            if self._closed or self.bus.closed:
                return None
            generation = self.bus.generation()
            if generation != self._seen or time.monotonic() >= self._next_read:
                # read after taking the generation: a commit from now on wakes the wait
                self._seen = generation
                self._read()
                if self._pending:
                    break
            now = time.monotonic()
            wait = self._next_read - now
            if deadline is not None:
                if now >= deadline:
                    return None
                wait = min(wait, deadline - now)
            self.bus.wait(generation, wait)
        return self._pending.popleft()

    def batches(self, *, timeout: float | None = None, check_every: float = 1.0,
                stop: Callable[[], bool] | None = None) -> Iterator[list[dict[str, Any]]]:
        """Yield lists of new events as they commit (an empty list every ``check_every`` s).

        Ends after ``timeout`` seconds, when ``stop()`` (asked after each list)
        returns True, or when the subscription or bus is closed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (self._closed or self.bus.closed):
            wait = check_every if deadline is None else \
                min(check_every, max(0.0, deadline - time.monotonic()))
            first = self.get(wait)
            batch = [] if first is None else [first, *self._pending]
            self._pending.clear()
            yield batch
            if stop is not None and stop():
                return
            if deadline is not None and time.monotonic() >= deadline:
                return

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            event = self.get()
            if event is None:
                return
            yield event
