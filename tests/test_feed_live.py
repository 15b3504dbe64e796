"""``gt feed`` on a terminal: a live view redrawn in place, at once when an event lands."""

from __future__ import annotations

import os
import pty
import select
import signal
import subprocess
import time

from agents.townkit import BIN, clean_env
from gastown.town.core import Town
from test_status_view import _on_a_terminal

pytest_plugins = ("agents.fixtures",)


class Terminal:
    """``gt ARGS`` on a pseudo-terminal, its output collected as it comes."""

    def __init__(self, town: Town, *args: str, **env: str) -> None:
        self.main, sub = pty.openpty()
        self.proc = subprocess.Popen([str(BIN / "gt"), *args[:1], "--town", town.root,
                                      *args[1:]], stdin=subprocess.DEVNULL, stdout=sub,
                                     stderr=sub, env=clean_env(TERM="xterm", **env))
        os.close(sub)
        self.seen = b""

    def wait_for(self, needle: bytes, timeout: float, start: int = 0) -> int:
        """Read until ``needle`` shows up after offset ``start``; where it starts."""
        deadline = time.monotonic() + timeout
        while (at := self.seen.find(needle, start)) < 0:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{needle!r} not on the screen after {timeout}s:\n"
                                     f"{self.seen[-2000:]!r}")
            ready, _, _ = select.select([self.main], [], [], min(left, 0.2))
            if ready:
                try:
                    self.seen += os.read(self.main, 65536)
                except OSError:
                    pass
        return at

    def finish(self) -> int:
        """Read what is left until the program exits; its exit status."""
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.main], [], [], 0.2)
            if ready:
                try:
                    data = os.read(self.main, 65536)
                except OSError:
                    break
                if not data:
                    break
                self.seen += data
            elif self.proc.poll() is not None:
                break
        code = self.proc.wait(timeout=10)
        os.close(self.main)
        return code


def test_the_feed_redraws_in_place_when_an_event_lands(town: Town) -> None:
    led = town.ledger("tester")
    first = led.create("already closed")["id"]
    led.close_bead(first)
    # a long interval: a redraw within seconds comes from the event, not the clock
    term = Terminal(town, "feed", "--interval", "60", COLUMNS="100", LINES="30")
    try:
        term.wait_for(b"\x1b[?1049h", 30)             # the alternate screen, cursor hidden
        frame1 = term.wait_for(first.encode(), 30)
        assert b"Ready: 0  Blocked: 0" in term.seen
        bead = led.create("closed while the feed is open")["id"]
        led.close_bead(bead)
        landed = time.monotonic()
        term.wait_for(bead.encode(), 5, frame1)
        assert time.monotonic() - landed < 5
    finally:
        led.close()
        term.proc.send_signal(signal.SIGINT)
        code = term.finish()
    screen = term.seen.decode(errors="replace")
    assert code == 0, screen[-500:]
    assert screen.count("\x1b[H") >= 2, "each frame starts at home"
    assert "\x1b[2J" not in screen, "frames overwrite in place; the screen is never blanked"
    assert "\x1b[K" in screen and "\x1b[J" in screen
    assert screen.endswith("\x1b[?25h\x1b[?1049l"), "the terminal is given back as it was"
    assert "interrupted" not in screen


def test_feed_once_on_a_terminal_draws_one_screen_without_the_alternate_screen(
        town: Town) -> None:
    screen = _on_a_terminal(town, "feed", "--once", COLUMNS="80", LINES="24")
    assert "\x1b[?1049h" not in screen and "Ready: 0  Blocked: 0" in screen
    assert "Events (last" in screen
