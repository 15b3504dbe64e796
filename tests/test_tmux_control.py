"""The tmux provider's control-mode connection (``tmux -C``): exact text, failure, reopen.

Real tmux, a real echo agent in each session (it appends every line typed into it
to a file); the one-shot path is counted by wrapping the provider's ``_run``
(each call there is one ``tmux`` process).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agents.townkit import ECHO, wait_for
from gastown.errors import ValidationError
from gastown.town.providers.base import SessionSpec
from gastown.town.providers.tmux import TmuxProvider
from gastown.town.providers.tmuxctl import ControlClient, ControlError, quote
from gastown.town.text import CHUNK_SIZE, sanitize

pytestmark = pytest.mark.skipif(not __import__("shutil").which("tmux"), reason="needs tmux")

NASTY = [
    "$(touch {canary}) `touch {canary}` ; touch {canary} && rm -rf {canary}",
    "'; run-shell 'touch {canary}' ; '",
    "\\; kill-server ; run-shell \"touch {canary}\" ;",
    "#{{pane_pid}} #(touch {canary}) %% ~ ~root $HOME ${{HOME}} {{}} \"quoted\" -t =x",
    "%begin 1 2 1 %end 1 2 1 %error %exit",
    "it's 'single' '' ''' \\' \\\\ end'",
    "ends with semicolons;;",
    "é ✓ 日本語 " + "long " * (CHUNK_SIZE // 3),
]


class Counted(TmuxProvider):
    """The provider, counting its one-shot tmux client processes."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.one_shot: list[str] = []

    def _run(self, args: list[str], check: bool = True,
             timeout: float = 15) -> Any:
        self.one_shot.append(args[0])
        return super()._run(args, check, timeout)


def _echo(prov: TmuxProvider, name: str, tmp_path: Path) -> Path:
    heard = tmp_path / f"{name}.heard"
    prov.start(SessionSpec(name, [sys.executable, str(ECHO), str(heard)], str(tmp_path)))
    wait_for(lambda: "ready>" in prov.peek(name), 15, what=f"{name} to be ready")
    return heard


def _lines(path: Path, n: int) -> list[str]:
    return list(wait_for(lambda: path.exists() and len(path.read_text().splitlines()) >= n
                         and path.read_text().splitlines(), 15, what=f"{n} line(s) heard"))


@pytest.fixture
def prov(tmp_path: Path) -> Any:
    os.makedirs(tmp_path / ".gt")
    p = Counted(str(tmp_path / ".gt"))
    yield p
    p.kill_server()


def test_nudges_travel_over_one_connection_verbatim(prov: Counted, tmp_path: Path) -> None:
    canary = tmp_path / "pwned"
    heard = _echo(prov, "ears", tmp_path)
    texts = [sanitize(t.format(canary=canary)) for t in NASTY]
    prov.one_shot.clear()
    for i, text in enumerate(texts, start=1):
        result = prov.nudge("ears", text)
        assert result.delivered and result.verified, result
        _lines(heard, i)
    assert heard.read_text().splitlines() == texts, "every text arrives exactly as sent"
    assert not canary.exists(), "tmux's command language executed something"
    assert prov.control_opened == 1, "one connection carried every nudge"
    assert prov.one_shot == [], f"one-shot tmux clients were used: {prov.one_shot}"
    assert prov.is_alive("ears") and prov.exists("ears")
    prov.one_shot.clear()
    state = prov.snapshot()["ears"]  # a format with tabs travels too
    assert state.alive and state.pid == prov.pid("ears") and prov.one_shot == []


def test_a_killed_connection_is_reopened_and_the_text_still_arrives_once(
        prov: Counted, tmp_path: Path) -> None:
    heard = _echo(prov, "ears", tmp_path)
    assert prov.nudge("ears", "first").verified
    ctl = prov.connection
    assert ctl is not None and ctl.alive
    os.kill(ctl.proc.pid, signal.SIGKILL)
    wait_for(lambda: not ctl.alive, 10, what="the connection to be seen dead")
    result = prov.nudge("ears", "second")
    assert result.delivered and result.verified, result
    assert _lines(heard, 2) == ["first", "second"]
    ctl2 = prov.connection
    assert ctl2 is not None
    assert prov.control_opened == 2 and prov.connection is not ctl and ctl2.alive


def test_the_connection_of_a_killed_session_gives_way_to_a_new_one(
        prov: Counted, tmp_path: Path) -> None:
    first = _echo(prov, "one", tmp_path)
    second = _echo(prov, "two", tmp_path)
    assert prov.nudge("one", "to one").verified  # the connection is attached to "one"
    assert prov.stop("one")  # ... which ends it (tmux detaches a destroyed session's clients)
    result = prov.nudge("two", "to two")
    assert result.delivered and result.verified, result
    assert _lines(second, 1) == ["to two"] and _lines(first, 1) == ["to one"]
    assert prov.control_opened == 2
    assert prov.snapshot().keys() == {"two"}


def test_a_dead_session_is_reported_not_typed_into(prov: Counted, tmp_path: Path) -> None:
    _echo(prov, "ears", tmp_path)
    assert prov.nudge("ears", "hello").verified
    result = prov.nudge("nobody", "hello")
    assert not result.delivered and result.detail == "session is not running"
    assert prov.peek("nobody") == "" and prov.is_alive("ears")


def test_a_stuck_connection_times_out_and_is_not_used_again(prov: Counted,
                                                             tmp_path: Path) -> None:
    _echo(prov, "ears", tmp_path)
    ctl = ControlClient(prov._argv([]), prov._env(), "=ears")
    try:
        assert ctl.run(["display-message -p -t '=ears:' '#{pane_dead}'"])[0].text == "0"
        bad = ctl.run(["no-such-command"])[0]
        assert not bad.ok and "no-such-command" in bad.text, "an %error block is one reply"
        server = int(ctl.run(["display-message -p '#{pid}'"])[0].text)
        os.kill(server, signal.SIGSTOP)  # the server reads our pipe itself: stop it
        try:
            started = time.monotonic()
            with pytest.raises(ControlError, match="no reply within"):
                ctl.run(["display-message -p x"], timeout=0.5)
            assert time.monotonic() - started < 5
        finally:
            os.kill(server, signal.SIGCONT)
        assert not ctl.alive, "a late reply must not be taken for the next caller's"
        ctl.close()
        # a server that reads nothing: the pipe fills, and the writer gives up in time
        ctl = ControlClient(prov._argv([]), prov._env(), "=ears")
        os.kill(server, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(ControlError):
                ctl.run(["display-message -p " + "x" * 1000] * 300, timeout=1.0)
            assert time.monotonic() - started < 5
        finally:
            os.kill(server, signal.SIGCONT)
        with pytest.raises(ControlError, match="closed"):
            ctl.run(["display-message -p x"])
    finally:
        ctl.close()


def test_providers_of_one_town_share_its_connection(prov: Counted, tmp_path: Path) -> None:
    heard = _echo(prov, "ears", tmp_path)
    others = [TmuxProvider(str(tmp_path / ".gt")) for _ in range(5)]
    for i, other in enumerate(others):
        assert other.nudge("ears", f"from {i}").verified
    assert _lines(heard, 5) == [f"from {i}" for i in range(5)]
    assert sum(o.control_opened for o in others) == 1, "one tmux -C process per town"
    assert all(o.connection is others[0].connection for o in others)


def test_quote_refuses_what_a_command_line_cannot_carry() -> None:
    assert quote("it's") == "'it'\\''s'"
    assert quote("a\tb") == "'a\tb'"
    for bad in ("a\nb", "a\rb", "\x1b[2J", "nul\x00", "del\x7f"):
        with pytest.raises(ControlError):
            quote(bad)


def test_unsanitised_text_falls_back_to_one_shot_clients(prov: Counted,
                                                         tmp_path: Path) -> None:
    heard = _echo(prov, "ears", tmp_path)
    prov.one_shot.clear()
    result = prov.nudge("ears", "bell\x07here")  # a caller that skipped sanitize()
    assert result.delivered, result  # (the terminal echoes ^G: not seen as typed)
    assert _lines(heard, 1) == ["bell\x07here"], "typed exactly, through argv"
    assert "send-keys" in prov.one_shot or "display-message" in prov.one_shot


def test_control_can_be_switched_off_and_is_validated(tmp_path: Path) -> None:
    assert TmuxProvider.parse_options({"control": False}, "providers.tmux")["control"] is False
    assert TmuxProvider.parse_options({}, "providers.tmux")["control"] is True
    with pytest.raises(ValidationError, match="control"):
        TmuxProvider.parse_options({"control": "yes"}, "town.toml: providers.tmux")
    os.makedirs(tmp_path / ".gt")
    prov = Counted(str(tmp_path / ".gt"), control=False)
    try:
        heard = _echo(prov, "ears", tmp_path)
        assert prov.nudge("ears", "plain").verified
        assert _lines(heard, 1) == ["plain"]
        assert prov.control_opened == 0 and "send-keys" in prov.one_shot
    finally:
        prov.kill_server()
