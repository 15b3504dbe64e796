"""``gt up`` / ``gt down`` / the controller line of ``gt status``.

Whether a controller runs is decided by its lock, never by a pid file alone: the
lock is free exactly when no controller process is alive.  ``up`` starts the
daemon in its own session (it outlives the terminal and the ``gt`` that started
it) and waits until it holds the lock; ``down`` sends SIGTERM and waits for the
lock to be released (SIGKILL only when it does not stop in time).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

from ..errors import TownError
from .daemon import LOCK_NAME, Controller, read_state
from .policies import Policies

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..town.core import Town

__all__ = ["is_running", "controller_info", "up", "down", "run_foreground",
           "stop_town_sessions", "LOG_NAME", "ConfigWatch", "CONFIG_STATE"]

LOG_NAME = "controller.log"
#: what the running controller loaded of town.toml (mtime, error, what needs a restart)
CONFIG_STATE = "controller-config.json"
#: variables of an agent session that a controller started from inside one must not keep
_SESSION_VARS = ("GT_AGENT", "GT_RIG", "GT_ROLE", "GT_POOL", "BD_ACTOR", "TMUX", "TMUX_PANE",
                 "GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME", "GIT_AUTHOR_EMAIL",
                 "GIT_COMMITTER_EMAIL", "GIT_DIR", "GIT_WORK_TREE")


def is_running(town: Town) -> bool:
    """True while some process holds the town's controller lock."""
    return lock_held(os.path.join(town.gt_dir, LOCK_NAME))


def lock_held(path: str) -> bool:
    """True while some process holds the ``flock`` on ``path`` (the controller's or
    the watchdog's lock file)."""
    if not os.path.exists(path):
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)  # held for microseconds; a starter retries
        return False
    finally:
        os.close(fd)


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime_ns / 1e9
    except OSError:
        return None


class ConfigWatch:
    """Reload ``town.toml`` when it changes: the controller checks once per tick.

    Rigs, agents, pools and the ``[patrol]``/``[merge]`` policies take effect at
    once; ``[controller]`` (tick, poll, nudge workers) only at the next start,
    which ``gt status`` says.  A file with a mistake is not loaded: the
    controller keeps what it had, and ``gt status`` shows the error.
    """

    def __init__(self, town: Town, policies: Policies,
                 log: Callable[[str], None] = lambda _m: None) -> None:
        self.town = town
        self.policies = policies
        self.log = log
        self._loaded = policies
        self.mtime: float | None = None
        # the town was read before this controller held its lock: an edit made since
        # (right after `gt up`) must not go unseen, so read it again now
        self._fresh = self._load(quiet=True)

    def check(self) -> Policies | None:
        """New policies when ``town.toml`` changed and loads cleanly (the town reloaded)."""
        if self._fresh:
            self._fresh = False
            return self.policies
        if _mtime(self.town.config_path) == self.mtime:
            return None
        return self.policies if self._load() else None

    def _load(self, quiet: bool = False) -> bool:
        """Read town.toml (the mtime first: a later edit is seen); True when it loaded."""
        from ..errors import GastownError
        from ..town.config import load_config

        self.mtime = _mtime(self.town.config_path)
        try:
            cfg = load_config(self.town.config_path)
        except GastownError as exc:
            self.log(f"town.toml changed but does not load; keeping the old one: {exc}")
            self._write(str(exc))
            return False
        self.town.config = cfg
        self.policies = cfg.policies
        self._write(None)
        if not quiet:
            self.log("town.toml changed: reloaded")
        return True

    def _write(self, error: str | None) -> None:
        stale = self.policies.controller != self._loaded.controller
        state = {"mtime": self.mtime, "error": error, "restart_needed": stale}
        path = self.town.runtime(CONFIG_STATE)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(state, fh)
        os.replace(tmp, path)


def config_note(town: Town, running: bool) -> str | None:
    """What ``gt status`` says about ``town.toml`` versus what the controller runs with."""
    if not running:
        return None
    try:
        with open(os.path.join(town.gt_dir, CONFIG_STATE), encoding="utf-8") as fh:
            state = json.load(fh)
    except (OSError, ValueError):
        return ("town.toml: this controller does not reload it; "
                "run gt down && gt up after editing it")
    if state.get("error"):
        return (f"town.toml has an error, so the controller keeps its previous "
                f"configuration: {state['error']}")
    if state.get("mtime") != _mtime(town.config_path):
        return "town.toml changed: the controller reloads it at its next pass"
    if state.get("restart_needed"):
        return "town.toml's [controller] table changed: run gt down && gt up to apply it"
    return None


def controller_info(town: Town) -> dict[str, Any]:
    """Running or not, its pid, uptime and last tick (no ledger access: cheap)."""
    state = read_state(town)
    running = is_running(town)
    last = state.get("last_tick")
    return {"running": running, "pid": state.get("pid") if running else None,
            "started_at": state.get("started_at") if running else None,
            "last_tick": last if running else None, "ticks": state.get("ticks"),
            "tick_s": state.get("tick_s"), "log": os.path.join(town.gt_dir, "logs", LOG_NAME),
            "node": state.get("node") if running else None,
            "config": config_note(town, running)}


def check_node(town: Town, node: str | None) -> None:
    """Refuse ``--node`` where nodes cannot work (one clear line): a bad name, or a
    ledger that is not on a PostgreSQL server every node can reach."""
    if node is None:
        return
    from ..config.values import check_name
    from ..errors import UsageError

    check_name("node", node, "--node")
    url = town.db_url()
    if not url.startswith(("postgresql://", "postgres://")):
        raise UsageError(f"gt up --node needs a PostgreSQL ledger that every node shares; "
                         f"this town's ledger is the SQLite file {url} (a SQLite town is "
                         "one implicit node: run gt up without --node)")


def run_foreground(town: Town, node: str | None = None, capacity: int | None = None) -> int:
    """Run the controller in this process until SIGTERM or Ctrl-C."""
    check_node(town, node)
    ctl = Controller(town, log_file=sys.stderr, node=node, capacity=capacity)

    def on_signal(_signum: int, _frame: Any) -> None:
        ctl.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return ctl.run()


def up(town: Town, wait: float = 20.0, node: str | None = None,
       capacity: int | None = None) -> dict[str, Any]:
    """Start the town's controller daemon unless one runs; returns its info.

    ``node``: run as that node of a town on a shared PostgreSQL ledger
    (:mod:`.nodes`); ``capacity``: how many agents it runs (default ``[nodes]``).
    """
    check_node(town, node)
    if is_running(town):
        return {**controller_info(town), "started": False}
    extra = ["--node", node] if node else []
    if capacity is not None:
        extra += ["--capacity", str(int(capacity))]
    log_path = town.runtime("logs", LOG_NAME)
    env = {k: v for k, v in os.environ.items() if k not in _SESSION_VARS}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gastown.controller.daemon", "--town", town.root, *extra],
            cwd=town.root, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True, close_fds=True)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        code = proc.poll()
        if code is not None:
            if is_running(town):  # another `gt up` won the race: that one is ours too
                return {**controller_info(town), "started": False}
            raise TownError(f"the controller exited at once (status {code}): "
                            f"{_tail(log_path)}")
        state = read_state(town)
        if is_running(town) and state.get("pid") == proc.pid and (
                node is None or state.get("node_up")):
            return {**controller_info(town), "started": True}
        time.sleep(0.05)
    raise TownError(f"the controller did not start within {wait:g}s; see {log_path}")


def down(town: Town, timeout: float = 30.0, sessions: bool = False) -> dict[str, Any]:
    """Stop the controller (SIGTERM, then SIGKILL after ``timeout``); optionally sessions."""
    out: dict[str, Any] = {"was_running": False, "stopped": False, "killed": False}
    from .watchdog import stop_watchdog

    # a watchdog would start the controller again: it goes first (and stops it itself)
    pid_before = read_state(town).get("pid") if is_running(town) else None
    out["watchdog"] = stop_watchdog(town, timeout)
    if out["watchdog"]["was_running"] and pid_before and not is_running(town):
        out.update(was_running=True, stopped=True, pid=pid_before)
    if is_running(town):
        pid = read_state(town).get("pid")
        out["was_running"] = True
        out["pid"] = pid
        if isinstance(pid, int) and pid > 0:
            _signal(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while is_running(town) and time.monotonic() < deadline:
                time.sleep(0.05)
            if is_running(town):
                _signal(pid, signal.SIGKILL)
                out["killed"] = True
                while is_running(town) and time.monotonic() < deadline + 5:
                    time.sleep(0.05)
        out["stopped"] = not is_running(town)
    if sessions:
        out["sessions_stopped"] = stop_town_sessions(town)
    return out


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def stop_town_sessions(town: Town) -> list[str]:
    """Stop every running agent session the town itself started (by recorded pid)."""
    from ..town.sessions import Sessions

    sessions = Sessions(town)
    started: dict[str, Any] = {}
    with town.ledger() as led:
        for ev in led.events(types=["session.started"]):
            started[str((ev["payload"] or {}).get("agent"))] = (ev["payload"] or {}).get("pid")
    stopped = []
    for agent in town.config.all_agents():
        provider = sessions.provider_for(agent)
        pid = provider.pid(sessions.session_name(agent))
        if pid is not None and started.get(agent.name) == pid:
            sessions.stop(agent)
            stopped.append(agent.name)
        elif pid is None and provider.exists(sessions.session_name(agent)):
            # an exited session's kept pane (and any helper it left behind) goes too:
            # the town's tmux server exits with its last session
            provider.stop(sessions.session_name(agent))
    return stopped


def _tail(path: str, lines: int = 5) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return " | ".join(fh.read().strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"
