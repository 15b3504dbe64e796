"""The controller: one per town, a loop that follows the event log and ticks.

``gt up`` starts it as a daemon (``python -m gastown.controller.daemon``);
``gt down`` stops it.  It holds an exclusive ``flock`` on ``.gt/controller.lock``
for its whole life -- the kernel releases it when the process dies, even by
SIGKILL, so a stale lock can never keep a new controller out -- and writes its
pid and a heartbeat to ``.gt/controller.json`` and its log to
``.gt/logs/controller.log``.

Threads, each with one job:

* the main thread subscribes to the event log (:class:`gastown.ledger.bus.EventBus`:
  woken the moment an event commits, by ``LISTEN/NOTIFY`` on PostgreSQL or the
  WAL file on SQLite; ``[controller] poll`` is only how often it looks up from
  an idle wait) and hands closed steps to the dispatcher, merge requests to the
  refinery, everything else to the ticker;
* the ticker runs the health patrol, pool feeding and convoy landing every
  ``tick`` seconds, or sooner when an event asks for it;
* one refinery thread per target branch lands merge requests one at a time;
* a small pool delivers nudges.

All state that matters lives in the ledger: the event cursor (kv
``gt.controller.cursor``, never saved past a closed step whose nudge is still
queued or being typed), the intents of nudges being submitted, merge requests,
convoys, hooks, restart counts as events.  A controller killed at any moment and
started again re-reads it and carries on; the work it resumes is idempotent (see
each module).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import sys
import threading
import time
import traceback
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError
from .mergeq import controller_actor, targets
from .policies import Policies

if TYPE_CHECKING:
    from ..ledger.bus import Subscription
    from ..ledger.core import Ledger
    from ..town.core import Town
    from .nodes import NodeRuntime

__all__ = ["Controller", "main", "CURSOR_KEY", "LOCK_NAME", "STATE_FILE"]

CURSOR_KEY = "gt.controller.cursor"
LOCK_NAME = "controller.lock"
STATE_FILE = "controller.json"
#: how far back a starting controller reads the log to rebuild its memory
REPLAY_EVENTS = 20000
#: events that make the ticker run now instead of at the next tick
_WAKE_TICKER = ("done", "sling", "hook.pinned", "hook.unpinned", "hook.cleared",
                "convoy.created", "convoy.added", "merge.sent_back", "session.stopped")


class Controller:
    """The reconcile loop of one town."""

    def __init__(self, town: Town, policies: Policies | None = None,
                 log_file: Any = None, node: str | None = None,
                 capacity: int | None = None) -> None:
        self.town = town
        #: ``gt up --node NAME``: one node of a town on a shared PostgreSQL ledger
        self.node_name = node
        self.node_capacity = capacity
        self.node: NodeRuntime | None = None
        self.policies = policies or town.config.policies
        self.actor = controller_actor(town)
        self.stop_event = threading.Event()
        self._log_file = log_file or sys.stderr
        self._log_lock = threading.Lock()
        self._lock_fd: int | None = None
        self._tick_wake = threading.Event()
        self._refinery_wake: dict[tuple[str, str], threading.Event] = {}
        self._refinery_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.ticks = 0
        self.started_at = time.time()
        self.last_tick: float | None = None
        self._cursor = 0
        self._saved_cursor = 0
        self._last_save = 0.0
        from ..federation.autopub import Follower

        #: [federation] auto_publish: publishes after the events it follows (issue 13)
        self.fed_publish = Follower(town.root, town.gt_dir)
        from ..federation.autosync import AutoSync

        #: [federation] sync_every: other towns' records pulled on a timer (the leader's)
        self.fed_sync = AutoSync(town.gt_dir, self.log)
        from ..mesh.auto import AutoSync as MeshSync

        #: [mesh] relays: publish and sync every [mesh] sync_every, leader only (issue 15)
        self.mesh_sync = MeshSync(self.log)

    # ------------------------------------------------------------- logging
    def log(self, message: str) -> None:
        """One timestamped line in the controller's log."""
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n"
        with self._log_lock:
            try:
                self._log_file.write(line)
                self._log_file.flush()
            except (OSError, ValueError):
                pass

    # ---------------------------------------------------------------- lock
    def acquire(self, wait: float = 1.0) -> None:
        """Take the town's controller lock or raise ConflictError naming the holder."""
        path = self.town.runtime(LOCK_NAME)
        # O_CLOEXEC (Python's default): sessions and tmux servers started from here must
        # not inherit the lock, or it would outlive this process
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                # someone checking whether we run holds it for microseconds: try again
                if time.monotonic() > deadline:
                    os.close(fd)
                    pid = read_state(self.town).get("pid")
                    raise ConflictError(f"a controller already runs for this town "
                                        f"(pid {pid or '?'})") from None
                time.sleep(0.05)
        self._lock_fd = fd
        self._write_state()

    def release(self) -> None:
        """Give the lock back (the state file says we stopped)."""
        if self._lock_fd is not None:
            self._write_state(stopped=True)
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None

    def _write_state(self, stopped: bool = False) -> None:
        state = {"pid": os.getpid(), "started_at": self.started_at, "ticks": self.ticks,
                 "last_tick": self.last_tick, "cursor": self._cursor, "stopped": stopped,
                 "tick_s": self.policies.controller.tick, "poll_s": self.policies.controller.poll,
                 "node": self.node_name, "node_up": self.node is not None}
        path = self.town.runtime(STATE_FILE)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(state, fh)
        os.replace(tmp, path)

    # ---------------------------------------------------------------- run
    def run(self) -> int:
        """Take the lock, run until :meth:`stop`, release; returns an exit status."""
        self.acquire()
        try:
            self._run()
        finally:
            self.release()
        return 0

    def stop(self) -> None:
        """Ask the loop and every thread to finish (safe from a signal handler)."""
        self.stop_event.set()
        self._tick_wake.set()
        # the loop waits on the event bus, not on a short poll: end that wait now
        sub, bus = getattr(self, "_sub", None), getattr(self, "bus", None)
        if sub is not None:
            sub.close()
        if bus is not None:
            bus.wake()
        for ev in list(self._refinery_wake.values()):
            ev.set()

    def setup(self) -> Ledger:
        """Open the ledger and build the parts (the loop calls it; benchmarks too)."""
        from ..town.sessions import Sessions
        from .dispatch import Dispatcher, PoolFeeder
        from .patrol import Memory, Patrol

        led = self.town.ledger(self.actor)
        self.led = led
        if self.node_name:  # before anything acts: a refused node does nothing at all
            from .nodes import NodeRuntime

            self.node = NodeRuntime(self.town, led, self.node_name, self.node_capacity,
                                    self.actor, self.log, self._tick_wake.set)
            self.node.start()
            self._write_state()  # `gt up --node` returns once the node is registered
        sessions = Sessions(self.town)
        pol = self.policies
        self.memory = Memory()
        self.dispatcher = Dispatcher(self.town, led, sessions, self.actor,
                                     pol.controller.nudge_workers, self.log)
        self.feeder = PoolFeeder(self.town, led, sessions, self.actor, self.dispatcher, self.log)
        self.sessions = sessions
        from .budgets import BudgetWatch

        self.budgets = BudgetWatch(self.town, led, self.log)  # pauses what overspent
        self.patrol = Patrol(self.town, led, sessions, pol.patrol, self.actor, self.memory,
                             self.log)
        from .service import ConfigWatch

        self.config_watch = ConfigWatch(self.town, pol, self.log)  # town.toml edits, per tick
        if self.node is not None:  # a node supervises and nudges only its own agents
            self.patrol.owns = self.dispatcher.owns = self.node.owns
        self._cursor = self._load_cursor(led)
        self._saved_cursor = self._cursor
        self._sub: Subscription | None = None
        self._replay(led)
        self.dispatcher.load_intents()
        self.feeder.resume_wakes()
        return led

    def _run(self) -> None:
        from ..ledger.bus import EventBus

        led = self.setup()
        pol = self.policies
        led.emit("controller.started", None, {"pid": os.getpid(), "cursor": self._cursor})
        self.log(f"controller up for {self.town.root} (pid {os.getpid()}, cursor "
                 f"{self._cursor}, tick {pol.controller.tick:g}s, poll {pol.controller.poll:g}s)")
        self._spawn("ticker", self._ticker)
        if self.node is not None:
            self._spawn("node", self.node.loop, self.stop_event)
        self._tick_wake.set()  # the first pass now: resume what a previous run left
        #: the ledger's event bus; in-process subscribers may share it
        self.bus = EventBus(led)
        try:
            sub = self._sub = self.bus.subscribe(self._cursor)
            for batch in sub.batches(check_every=pol.controller.poll, stop=self._between_polls):
                for event in batch:
                    self._on_event(event)
        finally:
            self.bus.close()
            self.stop()
            for t in self._threads:
                t.join(timeout=30)
            self.dispatcher.close()
            self._save_cursor(force=True)
            if self.node is not None:
                self.node.stop()
            # after the cursor: the next controller re-reads it, harmlessly; jumping the
            # cursor past it could skip an agent's event committed in the meantime
            led.emit("controller.stopped", None, {"pid": os.getpid(), "cursor": self._cursor})
            self.log("controller down")
            led.close()

    def _spawn(self, name: str, target: Any, *args: Any) -> None:
        t = threading.Thread(target=self._guarded, args=(name, target, *args), name=name,
                             daemon=True)
        self._threads.append(t)
        t.start()

    def _guarded(self, name: str, target: Any, *args: Any) -> None:
        """Run a thread's loop; an unexpected error is logged and the loop restarted."""
        while not self.stop_event.is_set():
            try:
                target(*args)
                return
            except Exception:  # noqa: BLE001 - a thread of the controller must not just die
                self.log(f"{name}: crashed, restarting in 1s:\n{traceback.format_exc()}")
                self.stop_event.wait(1.0)

    # ------------------------------------------------------------- cursor
    @property
    def cursor_key(self) -> str:
        """Where the cursor is kept: one per node when nodes share the ledger."""
        return f"{CURSOR_KEY}.{self.node_name}" if self.node_name else CURSOR_KEY

    def _load_cursor(self, led: Ledger) -> int:
        value = led.kv_get(self.cursor_key)
        if value and value.isdigit():
            return int(value)
        return led.last_event_seq()  # first run: what happened before is history

    def _save_cursor(self, force: bool = False) -> None:
        """Persist how far the log was handled (at most once a second).

        Handled means handled: never past a closed step whose nudge is still queued
        or being typed (the dispatcher's low water), so a controller killed in
        between leaves it for the next one to read again.  Written without an
        event, directly in the kv table: an event here would be an event to
        follow, and the loop would write again for ever.  Handling is idempotent,
        so a cursor a little behind only means a little re-reading.
        """
        now = time.monotonic()
        low = self.dispatcher.low_water()
        safe = self._cursor if low is None else min(self._cursor, low - 1)
        if self._sub is not None:  # never past a PostgreSQL sequence hole still open
            safe = min(safe, self._sub.cursor)
        if safe == self._saved_cursor or (not force and now - self._last_save < 1.0):
            return
        with self.led.transaction() as t:
            t.kv_put(self.cursor_key, str(safe))
        self._saved_cursor, self._last_save = safe, now

    def _replay(self, led: Ledger) -> None:
        """Rebuild the memory from the last events (restart counts, pids, dispatches)."""
        from .dispatch import epoch

        last = led.last_event_seq()
        for ev in led.events(since_seq=max(0, min(self._cursor, last) - REPLAY_EVENTS)):
            if ev["seq"] > self._cursor:
                break
            ts = epoch(ev["ts"])
            self.memory.learn(ev, ts)
            if ev["type"] == "dispatch":
                self._remember_dispatch(ev)
        # closed steps after the cursor that were dispatched already (we died mid-batch)
        for ev in led.events(since_seq=self._cursor, types=["dispatch"]):
            self._remember_dispatch(ev)

    def _remember_dispatch(self, ev: dict[str, Any]) -> None:
        payload = ev.get("payload") or {}
        for seq in [payload.get("after"), *(payload.get("covers") or [])]:
            if isinstance(seq, int):
                self.dispatcher.remember(seq)

    # ------------------------------------------------------------ events
    def _on_event(self, ev: dict[str, Any]) -> None:
        from .dispatch import epoch

        self._cursor = max(self._cursor, ev["seq"])
        kind = ev["type"]
        self.memory.learn(ev, epoch(ev["ts"]))
        self.fed_publish.seen(ev)
        if kind == "bead.closed":
            if self.node is not None:
                self.node.on_closed(ev, self.dispatcher.pool.submit)
            self.dispatcher.on_closed(ev)
            self._tick_wake.set()  # a tracked bead may have finished a convoy
        elif kind in ("merge.requested", "merge.retry"):
            payload = ev.get("payload") or {}
            self._wake_refinery(None if kind == "merge.retry" else
                                (str(payload.get("rig")), str(payload.get("base") or "")))
        elif kind in _WAKE_TICKER and ev["actor"] != self.actor:
            self._tick_wake.set()
        elif kind.startswith("node.") and self.node is not None:
            if kind == "node.placed":
                self.node.note(ev)
            self._tick_wake.set()  # a placement or a change of leader: act on it now

    def _between_polls(self) -> bool:
        """After each poll's batch: send the nudges it called for, save the cursor."""
        if self.dispatcher._pending:  # noqa: SLF001 - same package
            self.dispatcher.flush()
        self._save_cursor()
        self.fed_publish.poll()
        return self.stop_event.is_set()

    # ------------------------------------------------------------ ticker
    def _ticker(self) -> None:
        tick = self.policies.controller.tick
        next_tick = time.monotonic() + tick  # the first pass comes from the wake in _run
        while not self.stop_event.is_set():
            woken = self._tick_wake.wait(timeout=max(0.0, next_tick - time.monotonic()))
            if self.stop_event.is_set():
                return
            self._tick_wake.clear()
            started = time.monotonic()
            self.tick()
            next_tick = started + tick
            if woken:
                # bursts of events (a whole molecule closing) cost one pass, not one each
                self.stop_event.wait(0.2)

    def tick(self) -> dict[str, Any]:
        """One reconcile pass: patrol, pools and convoys, the merge queue, heartbeat."""
        from .convoy import land_ready

        out: dict[str, Any] = {}
        reloaded = self.config_watch.check()
        if reloaded is not None:
            self.policies = reloaded
            self.patrol.policy = reloaded.patrol
            self.budgets.wake()  # a limit raised or removed resumes at once
        from .upkeep import upkeep

        steps: list[tuple[str, Any]] = [("patrol", self.patrol.run)]
        if self.node is not None:
            node = self.node
            steps[:0] = [("nodes", node.refresh), ("evict", lambda: node.evict(self.sessions))]
        if self.leading():  # the one place for what only the town's leader does
            steps += [("budgets", self.budgets.check), ("pools", self.feeder.feed),
                      ("convoys", lambda: land_ready(self.town, self.led)),
                      ("merge", self._wake_refinery),
                      ("upkeep", lambda: upkeep(self)),  # orders, housekeeping
                      ("federation", lambda: self.fed_sync.tick(self.led, self.town.config)),
                      ("mesh", lambda: self.mesh_sync.step(self.led, self.town.config,
                                                           self.town.gt_dir))]
            if self.node is not None:
                steps.insert(2, ("placement", self.node.place))
        for name, step in steps:
            try:
                out[name] = step()
            except Exception:  # noqa: BLE001 - one failing part must not stop the others
                self.log(f"tick: {name} failed:\n{traceback.format_exc()}")
        if out.get("convoys"):
            self.log(f"convoys landed: {', '.join(out['convoys'])}")
        self.ticks += 1
        self.last_tick = time.time()
        self._write_state()
        return out

    def leading(self) -> bool:
        """True when this controller leads its town: always, unless it is one of several
        nodes (``gt up --node``), where only the holder of the leader's lease does."""
        return self.node is None or self.node.is_leader()

    # ----------------------------------------------------------- refinery
    def _wake_refinery(self, target: tuple[str, str] | None = None) -> None:
        """Make sure a refinery thread serves ``target`` (every queued one when None)."""
        if not self.leading():
            return  # merges happen on the leader only
        wanted = {target} if target and all(target) else targets(self.led)
        # the loop and the ticker both wake refineries: one thread per target, ever
        with self._refinery_lock:
            for key in wanted:
                ev = self._refinery_wake.get(key)
                if ev is None:
                    ev = self._refinery_wake[key] = threading.Event()
                    self._spawn(f"refinery:{key[0]}/{key[1]}", self._refinery_loop, key, ev)
                ev.set()

    def _refinery_loop(self, key: tuple[str, str], wake: threading.Event) -> None:
        from .refinery import Refinery

        stop = self.stop_event
        if self.node is not None:  # a node stops landing the moment it stops leading
            from .nodes import LeaderFence

            stop = LeaderFence(self.stop_event, self.node)
        refinery = Refinery(self.town, self.led, self.policies.merge, self.actor, stop,
                            self.log)
        while not self.stop_event.is_set():
            wake.wait(timeout=self.policies.controller.tick * 6)
            wake.clear()
            if self.stop_event.is_set():
                return
            refinery.policy = self.policies.merge  # town.toml may have changed
            if self.leading():
                refinery.run_target(*key)


# ---------------------------------------------------------------- state
def read_state(town: Town) -> dict[str, Any]:
    """The controller's state file (pid, heartbeat), or {}."""
    try:
        with open(os.path.join(town.gt_dir, STATE_FILE), encoding="utf-8") as fh:
            data: dict[str, Any] = json.load(fh)
            return data
    except (OSError, ValueError):
        return {}


def serve(name: str, make: Any) -> int:
    """Run ``make()``'s ``run()`` in this process until it ends or a signal stops it.

    SIGTERM and SIGINT call its ``stop()``; SIGHUP is ignored (a closed terminal
    is no reason to stop).  A town error -- building it or running it -- is one
    line on stderr and its exit code.  The controller's and the watchdog's
    ``python -m`` entry points.
    """
    from ..errors import GastownError

    try:
        runner = make()
    except GastownError as exc:
        sys.stderr.write(f"{name}: {exc}\n")
        return exc.exit_code

    def on_signal(_signum: int, _frame: Any) -> None:
        runner.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        return int(runner.run())
    except GastownError as exc:
        sys.stderr.write(f"{name}: {exc}\n")
        return exc.exit_code


def main(argv: list[str] | None = None) -> int:
    """``python -m gastown.controller.daemon --town DIR``: run a controller in this process."""
    from ..town.core import Town

    parser = argparse.ArgumentParser(prog="gastown.controller.daemon")
    parser.add_argument("--town", required=True)
    parser.add_argument("--node", default=None)
    parser.add_argument("--capacity", type=int, default=None)
    args = parser.parse_args(argv)
    return serve("controller", lambda: Controller(Town.find(args.town), log_file=sys.stderr,
                                                  node=args.node, capacity=args.capacity))


if __name__ == "__main__":
    sys.exit(main())
