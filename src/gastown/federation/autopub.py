"""``[federation] auto_publish = true``: pending records go out without a manual ``gt publish``.

Design (why it keeps ``bd create/update/close`` fast): a write never publishes
in its own process.  Signing loads ``cryptography`` and pushing runs git, tens to
hundreds of milliseconds, so a command that changed the ledger only *kicks*
(:func:`kick`, well under a millisecond plus one process spawn): it leaves a
``pending`` mark in ``.gt/federation/`` and, unless a publisher is already
running, starts one detached (``gt publish --auto``).  The publisher
(:func:`run_worker`) holds ``autopublish.lock``, waits a short debounce so a
burst of writes costs one publish, publishes, and goes round again while new
marks arrived.  Who kicks:

* every ``bd``/``gt`` command that changed rows of a SQLite town ledger (the
  same place upstream's auto-export runs, see ``cli/_app.py``);
* the controller, from the events it already follows (:class:`Follower`), which
  covers its own writes, agents' writes and a PostgreSQL ledger; it also
  retries a failed publish (backoff :data:`RETRY_AFTER` seconds).

A failed publish (a remote gone) never fails the write that caused it: the error
is kept in ``autopublish.json`` and one line of ``autopublish.log``, shown by
``gt identity``, and retried on the next kick.  Records are appended to the
town's own log before any target is written, so a retry pushes what was missed.
Standard library only (the command line imports it after every write).
"""

from __future__ import annotations

import json
import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only: bd's writes load this module
    from collections.abc import Callable
    from typing import Any

__all__ = ["enabled", "kick", "after_write", "run_worker", "record_failure", "status",
           "Follower",
           "RETRY_AFTER", "DEBOUNCE"]

#: seconds the publisher waits after a kick, so a burst of writes is one publish
DEBOUNCE = 0.2
#: seconds the controller waits before retrying a failed publish
RETRY_AFTER = 30.0
_PENDING, _LOCK, _STATUS, _LOG = ("autopublish.pending", "autopublish.lock",
                                  "autopublish.json", "autopublish.log")
#: the publisher's log is cut to its newer half past this size
_LOG_MAX = 64 * 1024


def _fed(gt_dir: str) -> str:
    return os.path.join(gt_dir, "federation")


def enabled(root: str) -> bool:
    """Is ``auto_publish = true`` in ``[federation]`` of ``root/town.toml``?

    Cheap when it is not: the file is read and parsed only if it mentions the key.
    A malformed file answers False here; ``gt`` commands report it.
    """
    try:
        with open(os.path.join(root, "town.toml"), "rb") as fh:
            raw = fh.read(1024 * 1024)
    except OSError:
        return False
    if b"auto_publish" not in raw:
        return False
    quick = _scan(raw)
    if quick is not None:
        return quick
    import tomllib  # an unusual spelling (dotted key, inline table): parse it all

    try:
        fed = tomllib.loads(raw.decode("utf-8")).get("federation")
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(fed, dict) and fed.get("auto_publish") is True


def _scan(raw: bytes) -> bool | None:
    """``auto_publish = true|false`` as a plain line of the ``[federation]`` table, read
    without importing ``tomllib`` (milliseconds on every write); None: not that simple."""
    table, found = b"", None
    for line in raw.splitlines():
        text = line.split(b"#", 1)[0].strip()
        if text.startswith(b"["):
            table = text
        elif b"auto_publish" in text:
            key, sep, value = text.partition(b"=")
            if (table != b"[federation]" or not sep or key.strip() != b"auto_publish"
                    or value.strip() not in (b"true", b"false") or found is not None):
                return None
            found = value.strip() == b"true"
    return found if found is not None else False


def _try_lock(path: str) -> int | None:
    """An fd holding an exclusive flock on ``path``, or None if another holds it."""
    import fcntl

    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _unlock(fd: int) -> None:
    import fcntl

    fcntl.flock(fd, fcntl.LOCK_UN)
    os.close(fd)


def _mark(fdir: str) -> None:
    fd = os.open(os.path.join(fdir, _PENDING), os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)


def kick(root: str, gt_dir: str | None = None, *,
         spawn: Callable[[str], int | None] | None = None) -> int | None:
    """Mark a publish as due and start a publisher unless one runs; its pid or None.

    The mark is left *before* the lock is tried, and a publisher looks for marks
    *after* it lets the lock go, so no kick is ever lost between the two.
    """
    gt_dir = gt_dir or os.path.join(root, ".gt")
    fdir = _fed(gt_dir)
    os.makedirs(fdir, mode=0o700, exist_ok=True)
    _mark(fdir)
    fd = _try_lock(os.path.join(fdir, _LOCK))
    if fd is None:
        return None  # a publisher is running; it sees the mark
    _unlock(fd)
    return (spawn or _spawn)(root)


def _spawn(root: str) -> int:
    """``gt publish --auto --town ROOT``, detached (own session, no terminal)."""
    args = [sys.executable, "-m", "gastown.cli.gt", "publish", "--auto", "--town", root]
    null = os.devnull
    actions = [(os.POSIX_SPAWN_OPEN, 0, null, os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, null, os.O_WRONLY, 0),
               (os.POSIX_SPAWN_OPEN, 2, null, os.O_WRONLY, 0)]
    return os.posix_spawn(sys.executable, args, os.environ, file_actions=actions,
                          setsid=True)


def after_write(db_path: Any) -> int | None:
    """After a command changed the SQLite ledger at ``db_path``: kick when that is a
    town's ledger (``TOWN/.beads/…``) with ``auto_publish = true``.  Never raises
    (the write is committed; a problem is one warning line)."""
    if not isinstance(db_path, str):
        return None
    root = os.path.dirname(os.path.dirname(os.path.abspath(db_path)))
    try:
        if not enabled(root):
            return None
        return kick(root)
    except OSError as exc:
        sys.stderr.write(f"Warning: auto-publish not started: {exc}\n")
        return None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def status(gt_dir: str) -> dict[str, Any]:
    """What the publisher last did: ``last_ok_at``, ``records``, ``last_error``,
    ``failed_at``, ``failures`` (in a row), ``pending`` (a publish is due)."""
    fdir = _fed(gt_dir)
    try:
        with open(os.path.join(fdir, _STATUS), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        data = {}
    out: dict[str, Any] = data if isinstance(data, dict) else {}
    out["pending"] = os.path.exists(os.path.join(fdir, _PENDING))
    return out


def _record(fdir: str, st: dict[str, Any], line: str) -> None:
    st.pop("pending", None)
    # 0600: an error line may quote a target's URL (which may carry a user name)
    tmp = os.path.join(fdir, f".{_STATUS}.tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w",
              encoding="utf-8") as fh:
        json.dump(st, fh, sort_keys=True)
    os.replace(tmp, os.path.join(fdir, _STATUS))
    log = os.path.join(fdir, _LOG)
    try:
        if os.path.getsize(log) > _LOG_MAX:
            with open(log, "rb") as fh:
                fh.seek(-_LOG_MAX // 2, os.SEEK_END)
                keep = fh.read().split(b"\n", 1)[-1]
            with open(log, "wb") as fh:
                fh.write(keep)
    except OSError:
        pass
    with open(os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a",
              encoding="utf-8") as fh:
        fh.write(f"{_now()} {line}\n")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return "".join(ch if ch.isprintable() else "?" for ch in text)[:500]


def record_failure(gt_dir: str, exc: BaseException) -> dict[str, Any]:
    """Keep a publisher's failure that happened before it could publish (a town.toml
    that no longer loads): the mark stays, so the next kick or retry tries again."""
    fdir = _fed(gt_dir)
    os.makedirs(fdir, mode=0o700, exist_ok=True)
    _mark(fdir)
    st = status(gt_dir)
    st.update(last_error=_one_line(exc), failed_at=_now(),
              failures=int(st.get("failures", 0)) + 1)
    _record(fdir, st, f"failed: {st['last_error']}")
    return status(gt_dir)


def run_worker(gt_dir: str, publish: Callable[[], dict[str, Any]],
               debounce: float = DEBOUNCE) -> dict[str, Any]:
    """Publish while marks are pending (the body of ``gt publish --auto``); its status.

    Returns at once when another publisher holds the lock.  A failure is recorded
    and ends the run (the mark stays: the next kick retries); it never raises.
    """
    fdir = _fed(gt_dir)
    os.makedirs(fdir, mode=0o700, exist_ok=True)
    pending, lock = os.path.join(fdir, _PENDING), os.path.join(fdir, _LOCK)
    while True:
        fd = _try_lock(lock)
        if fd is None:
            return status(gt_dir)
        ok = True
        try:
            while os.path.exists(pending):
                time.sleep(debounce)
                try:
                    os.unlink(pending)
                except FileNotFoundError:
                    pass
                st = status(gt_dir)
                try:
                    res = publish()
                except Exception as exc:  # noqa: BLE001 - reported and retried, never raised
                    _mark(fdir)  # still due
                    st.update(last_error=_one_line(exc), failed_at=_now(),
                              failures=int(st.get("failures", 0)) + 1)
                    _record(fdir, st, f"failed: {st['last_error']}")
                    ok = False
                    break
                st.update(last_ok_at=_now(), records=int(res.get("records", 0)),
                          targets=list(res.get("targets", [])), failures=0)
                st.pop("last_error", None)
                st.pop("failed_at", None)
                _record(fdir, st, f"published {st['records']} record(s) to "
                                  f"{', '.join(st['targets']) or 'the local log'}")
        finally:
            _unlock(fd)
        # a kick that came while the lock was held left its mark and went away
        if not ok or not os.path.exists(pending):
            return status(gt_dir)


class Follower:
    """The controller's side: kick after events, retry a failed publish.

    ``seen()`` is called for each event the controller follows; ``poll()`` after
    each batch (and each tick).  The first poll kicks once whatever happened:
    writes made while no controller ran are published when one starts.
    Publishers it starts are reaped here.
    """

    def __init__(self, root: str, gt_dir: str, *,
                 spawn: Callable[[str], int | None] | None = None) -> None:
        self.root, self.gt_dir = root, gt_dir
        self._spawn = spawn
        # a controller that starts publishes what was written while none ran
        self._dirty = True
        self._children: list[int] = []
        self._checked: tuple[float, bool] = (-1.0, False)
        self._last_retry = 0.0

    def _enabled(self) -> bool:
        try:
            mtime = os.stat(os.path.join(self.root, "town.toml")).st_mtime
        except OSError:
            return False
        if mtime != self._checked[0]:  # re-read only after town.toml changed
            self._checked = (mtime, enabled(self.root))
        return self._checked[1]

    def seen(self, event: dict[str, Any]) -> None:
        """An event was read: a publish is due at the next :meth:`poll` when it is about
        a bead (only those make records; the controller's own heartbeats do not)."""
        if event.get("bead_id"):
            self._dirty = True

    def poll(self, now: float | None = None) -> int | None:
        """Kick when events arrived, or a failed publish is due a retry; a pid or None."""
        self._reap()
        if not self._enabled():
            self._dirty = False
            return None
        now = time.monotonic() if now is None else now
        retry = False
        if not self._dirty and now - self._last_retry >= RETRY_AFTER:
            st = status(self.gt_dir)
            retry = bool(st.get("last_error")) and bool(st.get("pending"))
            self._last_retry = now
        if not (self._dirty or retry):
            return None
        self._dirty = False
        try:
            pid = kick(self.root, self.gt_dir, spawn=self._spawn)
        except OSError:
            return None
        if pid:
            self._children.append(pid)
        return pid

    def _reap(self) -> None:
        alive = []
        for pid in self._children:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                continue
            if not done:
                alive.append(pid)
        self._children = alive
