"""The ``subprocess`` provider: headless sessions, output in ``.gt/logs/``.

Each session is a process in its own process group, started detached so that
it outlives the ``gt`` that started it.  Its state is a small JSON file in
``.gt/sessions/`` holding the pid and the process's start time (so a reused pid
is never mistaken for it).  Its standard input is a FIFO: a nudge is a line
written there, so a headless agent can still be told things.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

from ...errors import ProviderError
from .base import NudgeResult, Provider, SessionSpec, SessionState
from .proctree import marker_of, stat_fields, stop_tree

__all__ = ["SubprocessProvider"]


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks (field 22 of /proc/PID/stat), if readable."""
    fields = stat_fields(pid)
    # fields[0] is the state; start time is field 22 overall = index 19 here
    if fields is not None and len(fields) > 19 and fields[0] not in ("Z", "X"):
        return fields[19]
    return None


class SubprocessProvider(Provider):
    """Headless sessions: detached process groups with logs and a FIFO for input."""

    kind = "subprocess"

    def __init__(self, gt_dir: str) -> None:
        self.state_dir = os.path.join(gt_dir, "sessions")
        self.log_dir = os.path.join(gt_dir, "logs")

    # ------------------------------------------------------------ state
    def _state_path(self, name: str) -> str:
        return os.path.join(self.state_dir, f"{name}.json")

    def _fifo(self, name: str) -> str:
        return os.path.join(self.state_dir, f"{name}.in")

    def _log(self, name: str) -> str:
        return os.path.join(self.log_dir, f"{name}.log")

    def _state(self, name: str) -> dict[str, Any] | None:
        try:
            with open(self._state_path(name), encoding="utf-8") as fh:
                data: dict[str, Any] = json.load(fh)
                return data
        except (OSError, ValueError):
            return None

    def _reap(self, pid: int) -> int | None:
        """Collect our own child's exit status (when this process started it)."""
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if done == pid:
            return os.waitstatus_to_exitcode(status)
        return None

    # ------------------------------------------------------------ protocol
    def available(self) -> None:
        """Always available: it needs nothing but the operating system."""

    def start(self, spec: SessionSpec) -> None:
        """Start ``spec.argv`` detached, output appended to the session's log."""
        os.makedirs(self.state_dir, exist_ok=True)
        os.makedirs(self.log_dir, exist_ok=True)
        log_path = spec.log_path or self._log(spec.name)
        fifo = self._fifo(spec.name)
        try:
            os.remove(fifo)
        except FileNotFoundError:
            pass
        os.mkfifo(fifo, 0o600)
        # O_RDWR: the child holds a writer too, so its stdin never sees EOF
        stdin_fd = os.open(fifo, os.O_RDWR)
        env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
        env.update(spec.env)
        try:
            with open(log_path, "ab") as log:
                proc = subprocess.Popen(spec.argv, cwd=spec.cwd, env=env, stdin=stdin_fd,
                                        stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True, close_fds=True)
        except FileNotFoundError:
            raise ProviderError(f"cannot start {spec.name}: program {spec.argv[0]!r} "
                                "not found") from None
        except OSError as exc:
            raise ProviderError(f"cannot start {spec.name}: {exc.strerror}") from None
        finally:
            os.close(stdin_fd)
        state = {"pid": proc.pid, "ticks": _start_ticks(proc.pid), "argv": spec.argv,
                 "cwd": spec.cwd, "log": log_path, "fifo": fifo, "started_at": time.time(),
                 "marker": marker_of(spec.env)}
        tmp = self._state_path(spec.name) + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(state, fh)
        os.replace(tmp, self._state_path(spec.name))

    def _running_pid(self, name: str) -> int | None:
        state = self._state(name)
        return self._pid_of(name, state) if state else None

    def _pid_of(self, name: str, state: dict[str, Any]) -> int | None:
        """The running pid of a session whose state file was read as ``state``."""
        pid = int(state["pid"])
        code = self._reap(pid)
        if code is not None:
            self._record_exit(name, state, code)
            return None
        if state.get("exit") is not None:
            return None
        ticks = _start_ticks(pid)
        if os.path.isdir("/proc"):
            return pid if ticks is not None and ticks == state.get("ticks") else None
        try:  # no /proc: the best we can do is ask whether the pid exists
            os.kill(pid, 0)
        except OSError:
            return None
        return pid

    def _record_exit(self, name: str, state: dict[str, Any], code: int) -> None:
        state["exit"] = code
        tmp = self._state_path(name) + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(state, fh)
        os.replace(tmp, self._state_path(name))

    def stop(self, name: str, grace: float = 3.0) -> bool:
        """Stop every process of the session: SIGHUP, SIGTERM, SIGKILL after ``grace`` s.

        Its process tree, its kernel session and processes carrying its marker
        (daemonised helpers) all go, also when the first process had exited
        already (see :mod:`.proctree`).  True when the session was known.
        """
        state = self._state(name)
        if state is None:
            return False
        pid = self._running_pid(name)
        marker = state.get("marker") or {}
        first = int(state["pid"])
        # the session id is the first pid (a new session at start), and members keep
        # it after the first process exits -- unless that pid is someone else's now
        ticks = _start_ticks(first)
        sids = [first] if ticks is None or ticks == state.get("ticks") else []
        stop_tree([pid] if pid else [], marker, grace, sids=sids,
                  reap=lambda: self._running_pid(name))
        self._running_pid(name)  # record the exit status when it was our child
        return True

    def interrupt(self, name: str) -> None:
        """SIGINT the session's process group."""
        pid = self._running_pid(name)
        if pid is None:
            raise ProviderError(f"session {name} is not running")
        os.killpg(pid, signal.SIGINT)

    def exists(self, name: str) -> bool:
        """True when a state file records the session."""
        return self._state(name) is not None

    def is_alive(self, name: str) -> bool:
        """True when the recorded process is still the one started, and running."""
        return self._running_pid(name) is not None

    def exit_status(self, name: str) -> int | None:
        """The exit status, when this process reaped it or it was recorded."""
        self._running_pid(name)
        state = self._state(name)
        return None if not state or state.get("exit") is None else int(state["exit"])

    def pid(self, name: str) -> int | None:
        """The process id while running."""
        return self._running_pid(name)

    def last_activity(self, name: str) -> float | None:
        """When the log was last written."""
        state = self._state(name)
        try:
            return os.path.getmtime(state["log"] if state else self._log(name))
        except OSError:
            return None

    def peek(self, name: str, lines: int = 40) -> str:
        """The last ``lines`` lines of the log."""
        state = self._state(name)
        path = state["log"] if state else self._log(name)
        try:
            with open(path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 64 * 1024))
                data = fh.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(data.rstrip("\n").splitlines()[-lines:])

    def nudge(self, name: str, text: str,
              before_submit: Callable[[], None] | None = None) -> NudgeResult:
        """Write ``text`` and a newline to the session's standard input."""
        if self._running_pid(name) is None:
            return NudgeResult(False, False, text=text, detail="session is not running")
        try:
            fd = os.open(self._fifo(name), os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno in (errno.ENXIO, errno.ENOENT):
                return NudgeResult(False, False, text=text, detail="no reader on stdin")
            raise
        data = (text + "\n").encode()
        written = 0
        try:
            if before_submit is not None:  # inside: what it raises still closes the FIFO
                before_submit()
            while written < len(data):
                written += os.write(fd, data[written:])
        except BlockingIOError:
            pass
        finally:
            os.close(fd)
        ok = written == len(data)
        return NudgeResult(ok, ok, chunks=1, text=text,
                           detail="" if ok else "the session's input is full")

    def attach_argv(self, name: str) -> list[str]:
        """Follow the session's log (a headless session has no terminal to attach)."""
        state = self._state(name)
        return ["tail", "-n", "50", "-F", state["log"] if state else self._log(name)]

    def snapshot(self) -> dict[str, SessionState]:
        """Every session at once, each state file and ``/proc`` entry read once (the
        controller's patrol asks for this every tick: with a thousand live sessions
        the per-question reads were most of an idle controller's CPU)."""
        out: dict[str, SessionState] = {}
        for name in self.sessions():
            state = self._state(name)
            if state is None:  # removed since the listing
                out[name] = SessionState(name, False)
                continue
            try:
                pid = self._pid_of(name, state)
            except (KeyError, TypeError, ValueError):
                pid = None
            try:
                activity: float | None = os.path.getmtime(state.get("log") or self._log(name))
            except (OSError, TypeError):
                activity = None
            out[name] = SessionState(name, pid is not None, pid, activity)
        return out

    def sessions(self) -> list[str]:
        """Names of recorded sessions."""
        try:
            names = os.listdir(self.state_dir)
        except FileNotFoundError:
            return []
        return sorted(n[:-5] for n in names if n.endswith(".json"))
