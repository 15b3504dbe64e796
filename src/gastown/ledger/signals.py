"""Wake-up signals: "the event log may have grown", without reading it.

A signal is only a hint.  The event log stays the truth: a subscriber woken by a
signal reads the log, and one that is never woken still reads it now and then
(:class:`ChangeSignal` waits time out).  So a lost or spurious signal costs
latency or one query, never an event.

* :class:`TimerSignal` -- no hint at all: every wait times out (plain polling).
* :class:`InotifySignal` -- SQLite on Linux: a commit writes the ``-wal`` file
  (or, in another journal mode, the database file); the kernel reports the
  write to an ``inotify`` watch on the directory, so an idle wait costs nothing.
* :class:`FileSignal` -- SQLite elsewhere (no ``inotify``, or its limits met):
  the same files' size, mtime and inode, looked at every few milliseconds.
* PostgreSQL's ``LISTEN`` signal lives in :mod:`.postgres` (it needs a connection).
"""

from __future__ import annotations

import os
import select
import struct
import sys
import threading
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only
    from collections.abc import Sequence

__all__ = ["ChangeSignal", "TimerSignal", "FileSignal", "InotifySignal", "FILE_POLL_S",
           "file_signal"]

#: how often :class:`FileSignal` looks at the files (seconds)
FILE_POLL_S = 0.005


class ChangeSignal:
    """Base class: :meth:`wait` blocks until the log may have changed, or a timeout.

    One thread waits on a signal at a time (the event bus runs one waiter per
    ledger and fans the wake-ups out).  :meth:`close` may be called from any
    thread and ends a wait in progress soon.
    """

    def __init__(self) -> None:
        self._closed = threading.Event()

    def wait(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds; True when something may have changed."""
        self._closed.wait(timeout)
        return False

    @property
    def closed(self) -> bool:
        """Has :meth:`close` been called?"""
        return self._closed.is_set()

    def close(self) -> None:
        """Stop: a wait in progress returns soon, later waits return at once."""
        self._closed.set()


class TimerSignal(ChangeSignal):
    """No wake-up source: subscribers fall back to reading the log on a timer."""


class FileSignal(ChangeSignal):
    """Changes of a few files' size, mtime or inode, looked at every ``interval`` s."""

    def __init__(self, paths: Sequence[str], interval: float = FILE_POLL_S) -> None:
        super().__init__()
        self._paths = list(paths)
        self._interval = interval
        self._last = self._look()

    def _look(self) -> tuple[tuple[int, int, int] | None, ...]:
        seen: list[tuple[int, int, int] | None] = []
        for path in self._paths:
            try:
                st = os.stat(path)
            except OSError:
                seen.append(None)
            else:
                seen.append((st.st_ino, st.st_size, st.st_mtime_ns))
        return tuple(seen)

    def wait(self, timeout: float) -> bool:
        """Look at the files until one changed (True) or ``timeout`` passed (False)."""
        deadline = time.monotonic() + timeout
        while True:
            now = self._look()
            if now != self._last:
                self._last = now
                return True
            left = deadline - time.monotonic()
            if left <= 0 or self._closed.wait(min(self._interval, left)):
                return False


# inotify(7): the event masks used here, and the fixed part of one event record
_IN_MODIFY, _IN_CLOSE_WRITE, _IN_MOVED_TO, _IN_CREATE = 0x2, 0x8, 0x80, 0x100
_IN_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (then the name, NUL padded)
#: the longest one ``select`` sleeps (so that closing the signal is noticed)
_SLICE_S = 0.5


class InotifySignal(ChangeSignal):
    """Linux ``inotify``: wakes when one of ``paths`` (all in one directory) is written."""

    def __init__(self, paths: Sequence[str]) -> None:
        super().__init__()
        import ctypes

        directory = os.path.dirname(os.path.abspath(paths[0]))
        self._names = {os.path.basename(p).encode() for p in paths}
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        mask = _IN_MODIFY | _IN_CLOSE_WRITE | _IN_MOVED_TO | _IN_CREATE
        if libc.inotify_add_watch(fd, os.fsencode(directory), mask) < 0:
            errno = ctypes.get_errno()
            os.close(fd)
            raise OSError(errno, f"inotify_add_watch {directory}")
        self._fd = fd

    def _ours(self) -> bool:
        """Read the pending records; True when one names a watched file."""
        found = False
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return found
            if not data:
                return found
            pos = 0
            while pos + _IN_EVENT.size <= len(data):
                _wd, _mask, _cookie, size = _IN_EVENT.unpack_from(data, pos)
                name = data[pos + _IN_EVENT.size:pos + _IN_EVENT.size + size].rstrip(b"\0")
                found = found or name in self._names
                pos += _IN_EVENT.size + size

    def wait(self, timeout: float) -> bool:
        """Block until a watched file is written (True), ``timeout`` or :meth:`close`."""
        deadline = time.monotonic() + timeout
        while self._fd >= 0 and not self._closed.is_set():
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._fd], [], [], max(0.0, min(left, _SLICE_S)))
            if ready and self._ours():
                return True
            if time.monotonic() >= deadline:
                return False
        self._release()
        return False

    def _release(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)


def file_signal(paths: Sequence[str]) -> ChangeSignal:
    """The cheapest working signal for changes of ``paths``: inotify, else ``stat`` polling."""
    if sys.platform.startswith("linux"):
        try:
            return InotifySignal(paths)
        except (OSError, AttributeError):
            pass  # no inotify here, or the per-user instance limit is reached
    return FileSignal(paths)
