"""The watchdog: ``gt up --watch`` keeps the town's controller running.

A small supervisor process (``python -m gastown.controller.watchdog --town DIR``)
that holds ``.gt/watchdog.lock`` for its life (one per town; the kernel frees the
lock when it dies) and starts the controller as its child.  When the controller
dies -- a crash, an OOM kill, ``kill -9`` -- it is noticed within 0.1 s and
started again at once, and ``controller.restarted`` is written to the event log.
A controller that dies before it is up (it never held the lock) is restarted
with a growing delay (up to a minute), so a broken configuration does not spin.
A controller someone else started is only watched, never doubled: the
controller's own lock decides.

``gt down`` stops the watchdog first (SIGTERM: it stops its controller and
exits).  A systemd unit can take this role instead (``docs/systemd.md``).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError, TownError

if TYPE_CHECKING:
    from ..town.core import Town

__all__ = ["Watchdog", "watchdog_info", "start_watchdog", "stop_watchdog", "main",
           "WATCH_LOCK", "WATCH_STATE", "WATCH_LOG"]

WATCH_LOCK = "watchdog.lock"
WATCH_STATE = "watchdog.json"
WATCH_LOG = "watchdog.log"
_MAX_DELAY = 60.0


def _lock_held(path: str) -> bool:
    from .service import lock_held

    return lock_held(path)


def _read(town: Town) -> dict[str, Any]:
    try:
        with open(os.path.join(town.gt_dir, WATCH_STATE), encoding="utf-8") as fh:
            data: dict[str, Any] = json.load(fh)
            return data
    except (OSError, ValueError):
        return {}


def watchdog_info(town: Town) -> dict[str, Any]:
    """Whether a watchdog runs for the town, its pid and how often it restarted."""
    running = _lock_held(os.path.join(town.gt_dir, WATCH_LOCK))
    state = _read(town)
    return {"running": running, "pid": state.get("pid") if running else None,
            "restarts": state.get("restarts", 0), "started_at": state.get("started_at"),
            "log": os.path.join(town.gt_dir, "logs", WATCH_LOG)}


class Watchdog:
    """The supervisor loop of one town."""

    def __init__(self, town: Town, log_file: Any = None) -> None:
        self.town = town
        self.stop_event = threading.Event()
        self._log_file = log_file or sys.stderr
        self._fd: int | None = None
        self.child: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.started_at = time.time()

    def log(self, message: str) -> None:
        """One timestamped line in the watchdog's log."""
        try:
            self._log_file.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")
            self._log_file.flush()
        except (OSError, ValueError):
            pass

    def acquire(self) -> None:
        """Take ``.gt/watchdog.lock`` or raise ConflictError (one watchdog per town)."""
        fd = os.open(self.town.runtime(WATCH_LOCK), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ConflictError(f"a watchdog already runs for this town (pid "
                                f"{_read(self.town).get('pid', '?')})") from None
        self._fd = fd
        self._write()

    def _write(self) -> None:
        path = self.town.runtime(WATCH_STATE)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump({"pid": os.getpid(), "started_at": self.started_at,
                       "restarts": self.restarts,
                       "child": self.child.pid if self.child else None}, fh)
        os.replace(tmp, path)

    def stop(self) -> None:
        """Ask the loop to end (safe from a signal handler)."""
        self.stop_event.set()

    def _spawn(self) -> subprocess.Popen[bytes]:
        from .service import _SESSION_VARS, LOG_NAME

        env = {k: v for k, v in os.environ.items() if k not in _SESSION_VARS}
        with open(self.town.runtime("logs", LOG_NAME), "ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "gastown.controller.daemon", "--town", self.town.root],
                cwd=self.town.root, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=log, close_fds=True)

    def _record(self, pid: int | None, code: int | None) -> None:
        """``controller.restarted`` in the event log (best effort: the log says it too)."""
        try:
            with self.town.ledger("gt-watchdog") as led:
                led.emit("controller.restarted", None,
                         {"by": "watchdog", "previous_pid": pid, "exit": code,
                          "restarts": self.restarts, "watchdog_pid": os.getpid()})
        except Exception as exc:  # noqa: BLE001 - a restart must not wait on the ledger
            self.log(f"could not record the restart: {exc}")

    def run(self) -> int:
        """Supervise until :meth:`stop`; the controller is stopped on the way out."""
        from .daemon import read_state
        from .service import is_running

        self.acquire()
        self.log(f"watchdog up for {self.town.root} (pid {os.getpid()})")
        delay, first = 0.5, True
        dead_pid: int | None = None
        dead_code: int | None = None
        try:
            while not self.stop_event.is_set():
                if self.child is not None:
                    code = self.child.poll()
                    if code is None:
                        self.stop_event.wait(0.1)
                        continue
                    dead_pid, dead_code = self.child.pid, code
                    # it was up if it took the lock: the state file then names its pid
                    healthy = read_state(self.town).get("pid") == dead_pid
                    self.log(f"controller (pid {self.child.pid}) exited with {code}")
                    self.child = None
                    # one that ran is started again at once; one that died before it was
                    # up (a broken town.toml, a dead database) waits longer each time
                    delay = 0.5 if healthy else min(delay * 2, _MAX_DELAY)
                    if not healthy and not is_running(self.town):
                        self.log(f"it died before it was up; next start in {delay:g}s")
                        self.stop_event.wait(delay)
                    continue
                if is_running(self.town):
                    self.stop_event.wait(1.0)  # someone else's controller: watch it
                    continue
                self.child = self._spawn()
                if not first:
                    self.restarts += 1
                    self._record(dead_pid, dead_code)
                first, dead_pid, dead_code = False, None, None
                self.log(f"controller started (pid {self.child.pid})")
                self._write()
        finally:
            self._stop_child()
            self._release()
        return 0

    def _stop_child(self) -> None:
        if self.child is None or self.child.poll() is not None:
            return
        self.child.send_signal(signal.SIGTERM)
        try:
            self.child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait(timeout=5)
        self.log(f"controller (pid {self.child.pid}) stopped")

    def _release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        self.log("watchdog down")


def start_watchdog(town: Town, wait: float = 20.0) -> dict[str, Any]:
    """Start the town's watchdog (which starts the controller) unless one runs."""
    from .daemon import read_state
    from .service import _SESSION_VARS, is_running

    if watchdog_info(town)["running"]:
        return {**watchdog_info(town), "started": False}
    log_path = town.runtime("logs", WATCH_LOG)
    env = {k: v for k, v in os.environ.items() if k not in _SESSION_VARS}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gastown.controller.watchdog", "--town", town.root],
            cwd=town.root, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True, close_fds=True)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None and not watchdog_info(town)["running"]:
            raise TownError(f"the watchdog exited at once (status {code}); see {log_path}")
        info = watchdog_info(town)
        if info["running"] and is_running(town) and read_state(town).get("pid"):
            return {**info, "started": code is None and info["pid"] == proc.pid}
        time.sleep(0.05)
    raise TownError(f"the watchdog did not bring the controller up within {wait:g}s; "
                    f"see {log_path}")


def stop_watchdog(town: Town, timeout: float = 30.0) -> dict[str, Any]:
    """SIGTERM the watchdog and wait for it (it stops its controller first)."""
    info = watchdog_info(town)
    if not info["running"] or not isinstance(info["pid"], int):
        return {"was_running": False, "stopped": False}
    try:
        os.kill(info["pid"], signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while watchdog_info(town)["running"] and time.monotonic() < deadline:
        time.sleep(0.05)
    return {"was_running": True, "stopped": not watchdog_info(town)["running"],
            "pid": info["pid"]}


def main(argv: list[str] | None = None) -> int:
    """``python -m gastown.controller.watchdog --town DIR``: supervise in this process."""
    from ..town.core import Town
    from .daemon import serve

    parser = argparse.ArgumentParser(prog="gastown.controller.watchdog")
    parser.add_argument("--town", required=True)
    args = parser.parse_args(argv)
    return serve("watchdog", lambda: Watchdog(Town.find(args.town), log_file=sys.stderr))


if __name__ == "__main__":
    sys.exit(main())
