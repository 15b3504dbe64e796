"""Every process of a session, and stopping all of them (Linux ``/proc``).

A session is more than its first process: an agent starts tools, and some of
them leave its process group or session on purpose (a daemonised helper such as
an app server calls ``setsid`` and is re-parented to init).  A session's
processes are found three ways, so that none survives a stop:

* the descendants of its first process (by parent pid);
* every process in its kernel session (a tmux pane and a headless session are
  each a session of their own, and a process group keeps that session id);
* every process whose environment carries the session's marker (``GT_TOWN`` and
  ``GT_AGENT``), which a daemonised child inherits and keeps.

:func:`stop_tree` sends SIGHUP, then SIGTERM, then SIGKILL, each only to the
processes still there, and never to the caller or its ancestors (a ``gt``
inside a session may stop that session) nor to pids the caller protects (the
tmux server).  Without ``/proc`` it falls back to the process group alone.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterable

__all__ = ["session_pids", "stop_tree", "alive", "marker_of", "stat_fields"]

#: the variables that mark a town's session in every process it starts
MARKER_VARS = ("GT_TOWN", "GT_AGENT")


def marker_of(env: dict[str, str]) -> dict[str, str]:
    """The marker of a session with environment ``env`` ({} when it is not a town's)."""
    if all(env.get(k) for k in MARKER_VARS):
        return {k: env[k] for k in MARKER_VARS}
    return {}


def stat_fields(pid: int) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name (the state first), or
    None when the process is gone or there is no ``/proc``."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            data = fh.read()
    except OSError:
        return None
    return data.rsplit(")", 1)[-1].split()


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent pid, session id) of a process, or None when gone."""
    fields = stat_fields(pid)
    if fields is None or len(fields) < 4:
        return None
    return fields[0], int(fields[1]), int(fields[3])


def _has_marker(pid: int, marker: dict[str, str]) -> bool:
    if not marker:
        return False
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            env = fh.read().split(b"\0")
    except OSError:
        return False  # another user's process, or gone
    wanted = {f"{k}={v}".encode() for k, v in marker.items()}
    return wanted <= set(env)


def alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    st = _stat(pid)
    if st is None:
        if os.path.isdir("/proc"):
            return False
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    return st[0] not in ("Z", "X")


def _own_lineage() -> set[int]:
    """This process and its ancestors: never signalled."""
    out = {os.getpid()}
    pid = os.getppid()
    while pid > 1 and pid not in out:
        out.add(pid)
        st = _stat(pid)
        if st is None:
            break
        pid = st[1]
    return out


def session_pids(roots: Iterable[int], marker: dict[str, str] | None = None,
                 protect: Iterable[int] = (), sids: Iterable[int] = ()) -> set[int]:
    """The live processes of a session: ``roots``, their descendants and session
    members, members of the kernel sessions ``sids`` (a session id is never reused
    while a member lives, unlike the pid of a dead root), and processes carrying
    ``marker`` in their environment -- minus the caller's lineage and ``protect``."""
    roots = {r for r in roots if r and r > 1}
    try:
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return {r for r in roots if alive(r)}
    table: dict[int, tuple[str, int, int]] = {}
    for pid in pids:
        st = _stat(pid)
        if st is not None and st[0] not in ("Z", "X"):
            table[pid] = st
    spared = _own_lineage() | set(protect) | {1}
    # never a whole session the caller belongs to (a root that is not a leader)
    sids = ({table[r][2] for r in roots if r in table} | set(sids)) - {os.getsid(0)}
    found = {pid for pid, (_s, _pp, sid) in table.items() if sid in sids}
    found |= {r for r in roots if r in table}
    if marker:
        found |= {pid for pid in table if _has_marker(pid, marker)}
    found -= spared
    children: dict[int, list[int]] = {}
    for pid, (_s, ppid, _sid) in table.items():
        children.setdefault(ppid, []).append(pid)
    todo = list(found)
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found and child not in spared:
                found.add(child)
                todo.append(child)
    return found


def _signal(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _wait_gone(collect: Callable[[], set[int]], left: set[int], within: float) -> set[int]:
    """Wait until ``left`` is gone (a cheap look at those pids), then make sure with one
    full scan that nothing new appeared meanwhile (a child forked on a signal)."""
    deadline = time.monotonic() + within
    while True:
        left = {p for p in left if alive(p)}
        if not left:
            left = collect()
            if not left:
                return left
        if time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def stop_tree(roots: Iterable[int], marker: dict[str, str] | None = None,
              grace: float = 3.0, protect: Iterable[int] = (), sids: Iterable[int] = (),
              reap: Callable[[], object] | None = None) -> set[int]:
    """Stop every process of a session: SIGHUP, SIGTERM after a moment, SIGKILL after
    ``grace`` seconds.  Returns the pids that survived even SIGKILL (normally none).

    ``reap`` (a callable) is called while waiting, so that the caller can collect
    the exit status of its own children (they would linger as zombies otherwise).
    """
    roots = list(roots)
    protected = set(protect)
    sids = list(sids)
    for root in roots:  # taken now: members keep the session id after its leader dies
        st = _stat(root)
        if st is not None:
            sids.append(st[2])

    def collect() -> set[int]:
        if reap is not None:
            reap()
        # roots that die are dropped: their pids may be reused by strangers
        live = [r for r in roots if alive(r)]
        return session_pids(live, marker, protected, sids)

    left = collect()
    if not os.path.isdir("/proc"):  # pragma: no cover - Linux is what we run on
        for root in roots:
            try:
                os.killpg(root, signal.SIGTERM)
            except OSError:
                pass
        return set()
    first = min(1.0, grace / 2)
    for sig, wait in ((signal.SIGHUP, first), (signal.SIGTERM, max(0.1, grace - first)),
                      (signal.SIGKILL, 2.0)):
        if sig != signal.SIGHUP:
            left = collect()  # a full look before each signal: children forked meanwhile
        if not left:
            break
        _signal(left, sig)
        left = _wait_gone(collect, left, wait)
    return left
