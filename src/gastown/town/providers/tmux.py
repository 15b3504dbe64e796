"""The ``tmux`` provider: attachable sessions on a private tmux server.

Every call names the town's own socket (``tmux -S <town>/.gt/tmux.sock``) and
ignores the user's tmux configuration (``-f /dev/null``); ``$TMUX`` is removed
from tmux's environment, so the user's own server is never contacted, even
when ``gt`` runs inside it.  Every call is an argument vector; the only text
tmux itself parses is escaped with :func:`gastown.town.text.tmux_arg`.

The frequent calls -- a nudge's typing, screen reads and Enter, the liveness
and activity looks -- travel over one persistent control-mode connection
(:mod:`.tmuxctl`, ``[providers.tmux] control = true``, the default) instead of
one ``tmux`` process each; there every argument is single-quoted for tmux's
command language.  Whenever that connection is down or cannot carry a text,
the call falls back to a one-shot client as above, and the next call opens a
new connection.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from ...config.values import boolean, integer, known
from ...errors import ProviderError
from ..text import chunks, tmux_arg
from .base import NudgeResult, Provider, SessionSpec, SessionState
from .proctree import marker_of, session_pids, stop_tree
from .tmuxctl import ControlClient, ControlError, Reply, quote

__all__ = ["TmuxProvider", "socket_path"]

_MISSING = ("tmux is not installed or not on PATH; install it, or run agents headless with "
            'the subprocess provider (provider = "subprocess" in town.toml, for the town or '
            "one agent)")


#: typed before every nudge: the terminal's line-kill key (``stty kill``), which line
#: editors (readline, prompt_toolkit, the agents' own input boxes) also bind to
#: "delete to the start of the line"
CLEAR_KEY = "C-u"
#: a test hook, ``PHASE:SECONDS``: nudges pause there, so that a test can kill the
#: sender at a known instant.  PHASE: ``before`` typing, ``typed`` (before the check
#: and Enter), ``submitting`` (after the sender's ``before_submit``, before Enter),
#: ``entered`` (after Enter)
PAUSE_VAR = "GT_TEST_NUDGE_PAUSE"


def _test_pause(phase: str, name: str) -> None:
    spec = os.environ.get(PAUSE_VAR, "")
    want, _, seconds = spec.partition(":")
    if want != phase:
        return
    try:
        delay = float(seconds)
    except ValueError:
        return
    sys.stderr.write(f"gt: {PAUSE_VAR}: pausing {delay:g}s in a nudge of {name} ({phase})\n")
    sys.stderr.flush()
    time.sleep(delay)


#: the control connections of this process, one per town server (by socket path): every
#: provider object of a town shares it -- code that makes a provider per operation (a
#: sling, a status look) must not leave a ``tmux -C`` process behind each time
_CONNECTIONS: dict[str, ControlClient] = {}
_CONNECTIONS_LOCK = threading.Lock()


def socket_path(gt_dir: str) -> str:
    """The private socket: ``.gt/tmux.sock``, or a short path when that is too long.

    Unix socket paths are limited to about 108 bytes; a deep town gets a socket
    under ``/tmp/gt-<uid>/`` named by a hash of the town's path instead.
    """
    path = os.path.join(os.path.abspath(gt_dir), "tmux.sock")
    if len(path.encode()) < 100:
        return path
    digest = hashlib.sha1(path.encode()).hexdigest()[:16]
    short_dir = os.path.join("/tmp", f"gt-{os.getuid()}")
    os.makedirs(short_dir, mode=0o700, exist_ok=True)
    return os.path.join(short_dir, f"{digest}.sock")


class TmuxProvider(Provider):
    """Sessions on the town's private tmux server, one window each."""

    kind = "tmux"

    @classmethod
    def parse_options(cls, options: dict[str, Any], where: str) -> dict[str, Any]:
        """``[providers.tmux]``: ``width`` and ``height`` of new sessions' windows, and
        ``control`` (a persistent control-mode connection; default true)."""
        known(options, {"width", "height", "control"}, where)
        return {"width": integer(options, "width", where, 220, 20, 2000),
                "height": integer(options, "height", where, 50, 5, 1000),
                "control": boolean(options, "control", where, True)}

    def __init__(self, gt_dir: str, width: int = 220, height: int = 50,
                 control: bool = True) -> None:
        self.socket = socket_path(gt_dir)
        self.width = width
        self.height = height
        self.control = control
        #: how many control connections were opened (tests and benchmarks read it)
        self.control_opened = 0

    # ------------------------------------------------------------ plumbing
    def _env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}

    def _argv(self, args: list[str]) -> list[str]:
        return ["tmux", "-f", "/dev/null", "-S", self.socket, *args]

    def _run(self, args: list[str], check: bool = True,
             timeout: float = 15) -> subprocess.CompletedProcess[str]:
        try:
            proc = subprocess.run(self._argv(args), env=self._env(), capture_output=True,
                                  text=True, timeout=timeout, check=False,
                                  stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise ProviderError(_MISSING) from None
        except subprocess.TimeoutExpired:
            raise ProviderError(f"tmux {args[0]} timed out after {timeout:.0f}s") from None
        if check and proc.returncode != 0:
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            detail = lines[-1] if lines else f"exit status {proc.returncode}"
            raise ProviderError(f"tmux {args[0]} failed: {detail}")
        return proc

    # ------------------------------------------------------ control mode
    def _connection(self, session: str, open_new: bool = True) -> ControlClient | None:
        """The live control connection, opened (attached to ``session``) when needed
        and ``open_new``."""
        if not self.control:
            return None
        with _CONNECTIONS_LOCK:
            ctl = _CONNECTIONS.get(self.socket)
            if ctl is not None and ctl.alive:
                return ctl
            if not open_new:
                return None
            if ctl is not None:
                ctl.close()  # its session was killed, or the server went away
                del _CONNECTIONS[self.socket]
            if not os.path.exists(self.socket):
                return None
            try:
                ctl = ControlClient(self._argv([]), self._env(), f"={session}")
            except ControlError:
                return None  # no such session, or tmux refused: one-shot clients instead
            _CONNECTIONS[self.socket] = ctl
            self.control_opened += 1
            return ctl

    def _ctl_run(self, session: str, commands: list[list[str]],
                 open_new: bool = True) -> list[Reply] | None:
        """Run ``commands`` (argument lists) over the control connection, in order.

        None when the connection is not available (not open and not ``open_new``)
        or died before answering all of them: the caller then does the same with
        one-shot clients.  Only calls made often open a connection (a nudge, a
        screen read): a single look from a short-lived ``gt`` command is cheaper
        as one process.
        """
        ctl = self._connection(session, open_new)
        if ctl is None:
            return None
        try:
            lines = [" ".join(quote(a) for a in cmd) for cmd in commands]
        except ControlError:
            return None  # a control character: only argv can carry it
        try:
            return ctl.run(lines)
        except ControlError:
            return None

    @property
    def connection(self) -> ControlClient | None:
        """The town server's control connection in this process, if one is open."""
        with _CONNECTIONS_LOCK:
            return _CONNECTIONS.get(self.socket)

    def close_control(self) -> None:
        """Close the town server's control connection (a new one opens on the next call)."""
        with _CONNECTIONS_LOCK:
            ctl = _CONNECTIONS.pop(self.socket, None)
        if ctl is not None:
            ctl.close()

    @staticmethod
    def _target(name: str) -> str:
        # '=' asks for an exact session name: 'ab' never matches a session 'abc'
        return f"={name}:"

    def _fmt(self, name: str, fmt: str) -> str | None:
        replies = self._ctl_run(name, [["display-message", "-p", "-t", self._target(name),
                                        fmt]], open_new=False)
        if replies is not None:
            # over control mode a missing target prints nothing instead of failing
            return replies[0].text.strip() or None if replies[0].ok else None
        proc = self._run(["display-message", "-p", "-t", self._target(name), fmt], check=False)
        return proc.stdout.strip() if proc.returncode == 0 else None

    # ------------------------------------------------------------ protocol
    def available(self) -> None:
        """Raise ProviderError naming the subprocess provider when tmux is missing."""
        if shutil.which("tmux") is None:
            raise ProviderError(_MISSING)

    def start(self, spec: SessionSpec) -> None:
        """A detached session running ``spec.argv`` directly (no shell), kept after exit."""
        self.available()
        if self.exists(spec.name):
            self._run(["kill-session", "-t", self._target(spec.name)], check=False)
        env_args: list[str] = []
        for key, value in spec.env.items():
            env_args += ["-e", tmux_arg(f"{key}={value}")]
        # tmux hands a single word to `sh -c`; with two or more it calls execvp
        # itself. `env` in front guarantees the second form (no shell, ever) and
        # sets the variables for the program: tmux takes PATH from its client,
        # not from -e, so -e alone cannot give the session its PATH.
        argv = ["env", *[f"{k}={v}" for k, v in spec.env.items()], *spec.argv]
        cmd = ["new-session", "-d", "-s", spec.name, "-x", str(self.width),
               "-y", str(self.height), "-c", tmux_arg(spec.cwd), *env_args, "--",
               *[tmux_arg(a) for a in argv],
               # chained in the same server call, before the program can exit:
               # keep the pane after exit, so its status and last output stay readable
               ";", "set-option", "-w", "-t", self._target(spec.name), "remain-on-exit", "on"]
        for attempt in range(20):
            proc = self._run(cmd, check=False)
            if proc.returncode == 0:
                break
            # killing the last session makes the server exit; a client that connects
            # while it is going down sees this, and the next try starts a fresh one
            if "server exited" not in proc.stderr or attempt == 19:
                lines = proc.stderr.strip().splitlines()
                raise ProviderError(f"tmux new-session failed: "
                                    f"{lines[-1] if lines else proc.returncode}")
            time.sleep(0.05)
        if spec.log_path:
            os.makedirs(os.path.dirname(spec.log_path), exist_ok=True)
            # the only shell string: a fixed command and the town's own log path, quoted
            self._run(["pipe-pane", "-t", self._target(spec.name),
                       tmux_arg(f"exec cat >> {shlex.quote(spec.log_path)}")], check=False)

    def stop(self, name: str, grace: float = 3.0) -> bool:
        """Stop every process of the session, then the session; True when there was one.

        The pane's processes, their session and every process carrying the
        session's ``GT_TOWN``/``GT_AGENT`` (a daemonised helper) get SIGHUP, then
        SIGTERM, then SIGKILL after ``grace`` seconds (see :mod:`.proctree`).
        The town's server exits with its last session.
        """
        if not self.exists(name):
            return False
        info = self._fmt(name, "#{pane_dead}\t#{pane_pid}\t#{pid}") or ""
        dead, pane_pid, server = ([*info.split("\t"), "", "", ""])[:3]
        roots = [int(pane_pid)] if dead == "0" and pane_pid.isdigit() else []
        protect = [int(server)] if server.isdigit() else []
        marker = marker_of(self._session_env(name))
        # taken before the pane goes: afterwards its processes are re-parented
        members = session_pids(roots, marker, protect)
        self._run(["kill-session", "-t", self._target(name)], check=False)
        stop_tree([*roots, *members], marker, grace, protect)
        if not self.sessions():
            self.kill_server()
        return True

    def _session_env(self, name: str) -> dict[str, str]:
        """The variables the session was started with (``new-session -e``)."""
        proc = self._run(["show-environment", "-t", self._target(name)], check=False)
        env: dict[str, str] = {}
        for line in proc.stdout.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                env[key] = value
        return env

    def interrupt(self, name: str) -> None:
        """Send Ctrl-C to the session (a key name we choose, not user text)."""
        self._run(["send-keys", "-t", self._target(name), "C-c"])

    def exists(self, name: str) -> bool:
        """True when the session exists on the private server (alive or exited)."""
        if not os.path.exists(self.socket):
            return False
        return self._run(["has-session", "-t", self._target(name)], check=False).returncode == 0

    def is_alive(self, name: str) -> bool:
        """True when the session exists and its program has not exited."""
        if not os.path.exists(self.socket):
            return False
        return self._fmt(name, "#{pane_dead}") == "0"

    def exit_status(self, name: str) -> int | None:
        """The exit status of an exited program whose pane was kept.

        tmux can miss the status of a program that exits within a few
        milliseconds of starting; then this is None, and the session is still
        reported as exited.
        """
        if not os.path.exists(self.socket):
            return None
        deadline = time.monotonic() + 1.0
        while True:
            out = self._fmt(name, "#{pane_dead}:#{pane_dead_status}")
            if out and out.startswith("1:") and out[2:].lstrip("-").isdigit():
                return int(out[2:])
            # a pane is marked dead when its terminal closes, its status a moment
            # later when tmux reaps the process: wait that moment, not longer
            if out != "1:" or time.monotonic() > deadline:
                return None
            time.sleep(0.02)

    def pid(self, name: str) -> int | None:
        """The pane's process id while it runs."""
        if not self.is_alive(name):
            return None
        out = self._fmt(name, "#{pane_pid}")
        return int(out) if out and out.isdigit() else None

    def last_activity(self, name: str) -> float | None:
        """When the window last had output (tmux's own clock, whole seconds)."""
        if not os.path.exists(self.socket):
            return None
        out = self._fmt(name, "#{window_activity}")
        return float(out) if out and out.isdigit() else None

    def peek(self, name: str, lines: int = 40) -> str:
        """The last ``lines`` lines of the pane (wrapped lines joined)."""
        if not os.path.exists(self.socket):
            return ""
        # no separate has-session call: capture-pane fails on a missing session,
        # and a nudge's verification polls this
        cmd = ["capture-pane", "-p", "-J", "-t", self._target(name), "-S", f"-{max(1, lines)}"]
        replies = self._ctl_run(name, [cmd], open_new=False)  # a nudge opens it
        if replies is not None:
            screen = replies[0].text if replies[0].ok else ""
        else:
            screen = self._run(cmd, check=False).stdout
        out: list[str] = []
        for line in screen.splitlines():
            line = line.rstrip()
            if line or (out and out[-1]):  # a screen is mostly padding: one blank is enough
                out.append(line)
        while out and not out[-1]:
            out.pop()
        return "\n".join(out[-lines:])

    def nudge(self, name: str, text: str, before_submit: Callable[[], None] | None = None,
              verify_s: float = 3.0) -> NudgeResult:
        """Type ``text`` literally in chunks, check it arrived, then press Enter."""
        if not os.path.exists(self.socket):
            return NudgeResult(False, False, text=text, detail="session is not running")
        pieces = chunks(text)
        if not pieces:
            return NudgeResult(False, False, text=text, detail="nothing to type")
        _test_pause("before", name)
        if not self._type(name, pieces):
            return NudgeResult(False, False, text=text, detail="session is not running")
        _test_pause("typed", name)
        verified = self._wait_for(name, text, verify_s)
        # a pause lets programs that treat fast input as a paste settle first
        time.sleep(0.1)
        if before_submit is not None:
            before_submit()
        _test_pause("submitting", name)
        enter = ["send-keys", "-t", self._target(name), "Enter"]
        replies = self._ctl_run(name, [enter], open_new=False)
        if replies is None:
            # the connection died (or never was): pressing Enter through a one-shot
            # client can at worst add an empty line after a submitted one; not
            # pressing it could leave a verified nudge unsent
            self._run(enter)
        elif not replies[0].ok:
            raise ProviderError(f"tmux send-keys failed: {replies[0].text}")
        _test_pause("entered", name)
        return NudgeResult(True, verified, chunks=len(pieces), text=text,
                           detail="" if verified else "text not seen in the pane before Enter")

    def _type(self, name: str, pieces: list[str]) -> bool:
        """Check the pane is alive, clear its input line, type ``pieces``; False when dead.

        Keys sent to a dead pane go nowhere, so typing the first piece before the
        answer is harmless, and it saves a round trip.  The line-kill key comes
        first: a nudge torn by a killed sender (typed, never submitted) is
        cleared, not glued to this one -- and so is a half-typed text of this
        nudge when the control connection died under it and the one-shot path
        types it all again.
        """
        target = self._target(name)
        head = [["display-message", "-p", "-t", target, "#{pane_dead}"],
                ["send-keys", "-t", target, CLEAR_KEY],
                ["send-keys", "-t", target, "-l", "--", pieces[0]]]
        replies = self._ctl_run(name, head)
        if replies is not None:
            if replies[0].text.strip() != "0" or not all(r.ok for r in replies):
                return False
            rest = [["send-keys", "-t", target, "-l", "--", p] for p in pieces[1:]]
            more = self._ctl_run(name, rest, open_new=False) if rest else []
            if more is not None:
                if not all(r.ok for r in more):
                    raise ProviderError(f"tmux send-keys failed: "
                                        f"{next(r.text for r in more if not r.ok)}")
                return True
        # one tmux process both checks the pane and types the first chunk (a burst of
        # nudges over one-shot clients is bound by how many processes it starts)
        first = self._run(["display-message", "-p", "-t", target, "#{pane_dead}", ";",
                           "send-keys", "-t", target, CLEAR_KEY, ";",
                           "send-keys", "-t", target, "-l", "--", tmux_arg(pieces[0])],
                          check=False)
        if first.returncode != 0 or first.stdout.strip() != "0":
            return False
        for piece in pieces[1:]:
            self._run(["send-keys", "-t", target, "-l", "--", tmux_arg(piece)])
        return True

    def _wait_for(self, name: str, text: str, within: float) -> bool:
        """Whether the end of ``text`` shows up in the pane within ``within`` seconds."""
        # compare without whitespace: terminals wrap and pad lines
        tail = re.sub(r"\s+", "", text)[-24:]
        if not tail:
            return True
        deadline = time.monotonic() + within
        time.sleep(0.02)  # let the pane draw the text: the first look then usually hits
        while True:
            screen = re.sub(r"\s+", "", self.peek(name, self.height * 4))
            if tail in screen:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def attach_argv(self, name: str) -> list[str]:
        """``tmux -S <sock> attach -t =NAME`` (run with $TMUX removed)."""
        return self._argv(["attach-session", "-t", self._target(name)])

    def sessions(self) -> list[str]:
        """Session names on the private server."""
        if not os.path.exists(self.socket):
            return []
        proc = self._run(["list-sessions", "-F", "#{session_name}"], check=False)
        return proc.stdout.split() if proc.returncode == 0 else []

    def snapshot(self) -> dict[str, SessionState]:
        """Every session's state from one ``list-panes -a`` call (a controller's tick)."""
        if not os.path.exists(self.socket):
            return {}
        cmd = ["list-panes", "-a", "-F",
               "#{session_name}\t#{pane_dead}\t#{pane_pid}\t#{window_activity}"]
        out: dict[str, SessionState] = {}
        replies = self._ctl_run("", [cmd], open_new=False)
        if replies is not None:
            listing = replies[0].text if replies[0].ok else ""
        else:
            proc = self._run(cmd, check=False)
            if proc.returncode != 0:
                return out  # no server: no sessions
            listing = proc.stdout
        for line in listing.splitlines():
            parts = line.split("\t")
            if len(parts) != 4 or parts[0] in out:
                continue  # one pane per session; a person's extra pane is not ours
            name, dead, pid, activity = parts
            alive = dead == "0"
            out[name] = SessionState(
                name, alive, int(pid) if alive and pid.isdigit() else None,
                float(activity) if activity.isdigit() else None)
        return out

    def kill_server(self) -> None:
        """Stop the town's private server (tests, and a controller shutting down)."""
        self.close_control()
        if os.path.exists(self.socket):
            self._run(["kill-server"], check=False)
