"""Run an agent's program and record how it ended: ``python -m gastown.town.launch``.

Usage: ``python -m gastown.town.launch STATUS_FILE [--env-file FILE] -- PROGRAM [ARG...]``.

``--env-file`` names a JSON object of variables (mode 0600) the program gets on
top of the launcher's own environment: values that must not appear in any
argument vector, where every user of the machine can read them (``ps``).

Neither provider can be trusted to know a program's exit status afterwards: a
headless process outlives the ``gt`` that started it (so nobody reaps it), and
tmux loses the status of some panes.  A controller needs it to tell a clean
exit from a crash, so this small parent runs the program (no shell: the argument
vector goes straight to ``execvp``), waits, and writes ``{"exit": N, "ts": T}``
to STATUS_FILE.  It stays out of the way: the program keeps the terminal,
Ctrl-C reaches the program (the launcher ignores it, as ``system()`` does), and
SIGTERM/SIGHUP are passed on.  Standard library only; it starts in milliseconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

__all__ = ["main", "read_status", "write_env_file"]


def _write(path: str, code: int) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"exit": code, "ts": time.time()}, fh)
    os.replace(tmp, path)


def read_status(path: str) -> int | None:
    """The exit status a launcher recorded in ``path`` (None when none is there)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return int(json.load(fh)["exit"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_env_file(path: str, env: dict[str, str]) -> str:
    """Write ``env`` as the JSON a launcher's ``--env-file`` reads, owner-only; return ``path``."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(env, fh)
    os.replace(tmp, path)
    return path


def _read_env_file(path: str) -> dict[str, str]:
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return {str(k): str(v) for k, v in data.items()}


def _default_signals() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the program, record its exit status, exit with it."""
    args = list(sys.argv[1:] if argv is None else argv)
    env: dict[str, str] | None = None
    if len(args) > 2 and args[1] == "--env-file":
        try:
            env = {**os.environ, **_read_env_file(args[2])}
        except (OSError, ValueError) as exc:
            sys.stderr.write(f"gt: cannot read the session environment {args[2]}: {exc}\n")
            _write(args[0], 126)
            return 126
        args = [args[0], *args[3:]]
    if len(args) < 3 or args[1] != "--":
        sys.stderr.write("usage: python -m gastown.town.launch STATUS_FILE [--env-file FILE] "
                         "-- PROGRAM [ARG...]\n")
        return 2
    status_path, cmd = args[0], args[2:]
    # Ctrl-C is for the program; the launcher must outlive it to record its end
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, signal.SIG_IGN)
    try:
        # an ignored signal stays ignored across exec: give the program the defaults back
        proc = subprocess.Popen(cmd, preexec_fn=_default_signals, env=env)  # noqa: PLW1509
    except OSError as exc:
        sys.stderr.write(f"gt: cannot run {cmd[0]!r}: {exc.strerror}\n")
        _write(status_path, 127)
        return 127

    def forward(signum: int, _frame: FrameType | None) -> None:
        try:
            proc.send_signal(signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    code = proc.wait()
    _write(status_path, code)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main())
