"""A persistent tmux control-mode connection (``tmux -C``) to the town's server.

One ``tmux`` client process per command costs a fork, an exec and a socket
handshake -- a few milliseconds of CPU each, which a burst of a hundred
nudges (several commands each) turns into seconds on a small machine.  A
control-mode client stays connected: commands are written to its stdin, one
per line, and tmux answers each line with exactly one block::

    %begin TIME NUMBER FLAGS
    ...output lines...
    %end TIME NUMBER FLAGS        (or %error ... when the command failed)

Replies come back in the order the lines were written, so a waiting caller
is simply the oldest one in a queue.  Lines outside a block are notifications
(``%session-changed``, ``%exit`` ...) and are ignored; pane output is switched
off (``refresh-client -f no-output``).  The initial ``attach-session`` answers
with a block whose FLAGS is 0 -- only blocks with FLAGS 1 answer our lines.

Safety: every argument is quoted with :func:`quote` (single quotes, so tmux
expands nothing: no ``$VAR``, ``~`` or ``#{}``), and a line may never contain a
line break or another control character (:class:`ControlError` instead; the
provider then uses a one-shot client with an argument vector).  A connection
that dies (its session was killed, the server exited, the process was killed)
fails every caller waiting on it with :class:`ControlError` and is never used
again; the provider opens a new one on the next call.

A program in a pane could print a line that looks like ``%end``; to desync
the reply stream it would have to guess the server's command number, and any
such program runs as the same user as the server and could use its socket
directly anyway.
"""

from __future__ import annotations

import os
import select
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field

__all__ = ["ControlClient", "ControlError", "Reply", "quote"]

#: how long opening a connection may take before the caller falls back
OPEN_TIMEOUT_S = 5.0


class ControlError(Exception):
    """The control connection cannot carry this command (closed, refused, timed out)."""


@dataclass
class Reply:
    """One command's answer: ``ok`` unless tmux said ``%error``; its output lines."""

    ok: bool
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The output lines joined with line breaks."""
        return "\n".join(self.lines)


class _Waiter:
    """A caller waiting for the reply to one line."""

    __slots__ = ("done", "reply", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.reply: Reply | None = None
        self.error: str | None = None


def quote(arg: str) -> str:
    """``arg`` as one single-quoted word of tmux's command language.

    Raises ControlError for text a command line cannot carry (control
    characters, a line break above all: it would end the command).  A tab is
    only a character inside quotes (the provider's formats use it).
    """
    if any((ord(ch) < 0x20 and ch != "\t") or ord(ch) == 0x7F for ch in arg):
        raise ControlError("a control character cannot travel on a control-mode line")
    return "'" + arg.replace("'", "'\\''") + "'"


class ControlClient:
    """One ``tmux -C attach-session`` process; :meth:`run` sends commands through it."""

    def __init__(self, argv_prefix: list[str], env: dict[str, str], attach_to: str,
                 open_timeout: float = OPEN_TIMEOUT_S) -> None:
        """Start ``argv_prefix -C attach-session -t attach_to`` and wait until it answers.

        ``argv_prefix`` is the provider's ``tmux -f /dev/null -S SOCKET``.
        Raises ControlError when tmux cannot be started or does not answer.
        """
        self._write_lock = threading.Lock()    # one writer at a time: queue order = write order
        self._lock = threading.Lock()          # guards the queue and the closed flag
        self._waiting: deque[_Waiter] = deque()
        self._closed = False
        self._attached = threading.Event()
        self.reason = ""
        argv = [argv_prefix[0], "-C", *argv_prefix[1:], "attach-session", "-t", attach_to]
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.DEVNULL, env=env,
                                         start_new_session=True)
        except OSError as exc:
            raise ControlError(f"cannot start tmux -C: {exc}") from None
        assert self.proc.stdin is not None
        os.set_blocking(self.proc.stdin.fileno(), False)  # writes wait in select, bounded
        self._reader = threading.Thread(target=self._read, name="tmux-control", daemon=True)
        self._reader.start()
        # the first line both proves the connection works and stops pane output
        # from flooding the stream (each keystroke typed would come back)
        deadline = time.monotonic() + open_timeout
        try:
            # a line read before the attach is done finds "no current client": wait for
            # the attach (its session-changed notice), and ask again if it came early
            self._attached.wait(open_timeout)
            while True:
                reply = self.run(["refresh-client -f no-output"],
                                 timeout=max(0.1, deadline - time.monotonic()))[0]
                if reply.ok or "no current client" not in reply.text \
                        or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
        except ControlError:
            self.close()  # e.g. no such session to attach to: reap the client
            raise
        if not reply.ok:
            self.close()
            raise ControlError(f"tmux -C refused refresh-client: {reply.text}")

    @property
    def alive(self) -> bool:
        """False once the connection has ended (or was closed)."""
        return not self._closed and self.proc.poll() is None

    def run(self, lines: list[str], timeout: float = 15.0) -> list[Reply]:
        """Send command ``lines`` (already quoted) in one write; their replies, in order.

        Raises ControlError when the connection is or goes down before every
        reply came, or a reply takes longer than ``timeout`` (then the
        connection is closed: a late reply would be taken for the next caller's).
        """
        for line in lines:
            if "\n" in line or "\r" in line:
                raise ControlError("a line break inside a control-mode command")
        waiters = [_Waiter() for _ in lines]
        data = "".join(f"{line}\n" for line in lines).encode()
        deadline = time.monotonic() + timeout
        # bounded: a server that stops reading must not hold every caller for ever
        if not self._write_lock.acquire(timeout=timeout):
            self._fail(f"no write possible within {timeout:g}s")
            raise ControlError(f"control connection closed{self._why()}")
        try:
            with self._lock:
                if self._closed:
                    raise ControlError(f"control connection closed{self._why()}")
                self._waiting.extend(waiters)
            error = self._write(data, deadline)
        finally:
            self._write_lock.release()
        if error:
            self._fail(error)
        replies: list[Reply] = []
        for waiter in waiters:
            if not waiter.done.wait(max(0.0, deadline - time.monotonic())):
                self._fail(f"no reply within {timeout:g}s")
            if waiter.reply is None:
                raise ControlError(f"control connection closed{self._why(waiter.error)}")
            replies.append(waiter.reply)
        return replies

    def close(self) -> None:
        """End the connection (tmux's client exits when its stdin closes)."""
        self._fail("closed")
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    # ------------------------------------------------------------ internals
    def _write(self, data: bytes, deadline: float) -> str:
        """Write ``data`` to the client's stdin by ``deadline``; an error text, or ''."""
        assert self.proc.stdin is not None
        try:
            fd = self.proc.stdin.fileno()
            while data:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([], [fd], [], left)[1]:
                    return "the control connection takes no more input"
                try:
                    data = data[os.write(fd, data):]
                except BlockingIOError:
                    continue  # less room than PIPE_BUF: wait in select again
        except (OSError, ValueError) as exc:
            return f"write failed: {exc}"
        return ""

    def _why(self, reason: str | None = None) -> str:
        reason = reason or self.reason
        return f" ({reason})" if reason else ""

    def _fail(self, reason: str) -> None:
        """Mark the connection dead and wake every waiting caller with an error."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self.reason = reason
            pending = list(self._waiting)
            self._waiting.clear()
        for waiter in pending:
            waiter.error = reason
            waiter.done.set()
        if self.proc.poll() is None and reason != "closed":
            try:
                self.proc.kill()  # a reply stream we cannot trust is not used again
            except OSError:
                pass

    def _read(self) -> None:
        """The reader thread: hand each block to the oldest waiting caller."""
        assert self.proc.stdout is not None
        stream = self.proc.stdout
        block: list[str] | None = None
        begin: list[str] = []
        try:
            for raw in iter(stream.readline, b""):
                line = raw.decode("utf-8", "replace").rstrip("\n")
                if block is None:
                    if line.startswith(("%session-changed ", "%exit")):
                        self._attached.set()  # attached (or never will be)
                    if line.startswith("%begin "):
                        begin = line.split(" ")[1:]
                        block = []
                    continue  # a notification, or the answer to attach itself
                if line.startswith(("%end ", "%error ")):
                    tag, _, rest = line.partition(" ")
                    if rest.split(" ") == begin:
                        self._deliver(begin, Reply(tag == "%end", block))
                        block = None
                        continue
                block.append(line)
        except (OSError, ValueError):
            pass
        self._attached.set()
        self._fail(f"tmux -C ended (exit status {self.proc.poll()})")

    def _deliver(self, begin: list[str], reply: Reply) -> None:
        if len(begin) != 3 or begin[2] != "1":
            return  # not an answer to one of our lines (the initial attach's own block)
        with self._lock:
            waiter = self._waiting.popleft() if self._waiting else None
        if waiter is not None:
            waiter.reply = reply
            waiter.done.set()

