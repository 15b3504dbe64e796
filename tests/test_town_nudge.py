"""Nudge safety (DESIGN §5): literal, chunked, cleaned, verified; nothing ever executes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from agents.townkit import ECHO, add_agent, gt, gt_json, wait_for
from gastown.town.core import Town
from gastown.town.rigs import ensure_worktree
from gastown.town.sessions import Sessions
from gastown.town.text import CHUNK_SIZE, chunks, sanitize, tmux_arg

pytest_plugins = ("agents.fixtures",)


def test_sanitize_strips_controls_and_keeps_everything_else() -> None:
    text = "a\x1b[31mred\x1b[0m\x03\x04\x7f\x08b\r\nc\td \u202eevil\u202c é ✓ $(x) `y` ;"
    assert sanitize(text) == "a[31mred[0mb  c d evil é ✓ $(x) `y` ;"
    assert sanitize("\x00\x1b\x9b") == "" and sanitize("  pad  ") == "pad"


def test_chunks_cover_the_text_exactly() -> None:
    text = "x" * (CHUNK_SIZE * 2 + 7)
    parts = chunks(text)
    assert len(parts) == 3 and "".join(parts) == text and max(map(len, parts)) == CHUNK_SIZE
    assert chunks("") == []


@pytest.mark.parametrize("piece, escaped", [
    ("plain", "plain"), ("ends;", "ends\\;"), (";", "\\;"), ("x\\;", "x\\\\;"),
    ("a;b", "a;b"), ("\\", "\\"),
])
def test_tmux_arg_escapes_only_a_trailing_separator(piece: str, escaped: str) -> None:
    assert tmux_arg(piece) == escaped


def _echo_agent(town: Town, name: str, heard: Path, provider: str = "tmux") -> None:
    add_agent(town, name, [sys.executable, str(ECHO), str(heard)], provider=provider)
    ensure_worktree(town, town.agent(name), f"{name}/work")
    Sessions(town).start(town.agent(name), actor="tester")
    wait_for(lambda: "ready>" in gt(town, "peek", name).stdout, 10, what="the echo agent")


def _heard(path: Path, n: int) -> list[str]:
    return wait_for(lambda: path.exists() and len(path.read_text().splitlines()) >= n
                    and path.read_text().splitlines(), 15, what=f"{n} line(s) heard")


NASTY = [
    "$(touch {canary}) `touch {canary}` ; touch {canary} && rm -rf {canary}",
    "; touch {canary} ;",
    "\\; kill-server ; run-shell 'touch {canary}' ;",
    "#{{pane_pid}} #(touch {canary}) %% ~ {{}} \"quoted\" 'single' -t =x",
    "-l -- Enter C-c C-d Escape",
    "\x1b[2J\x1b]0;title\x07 escape \x03\x04\x1a sequences\rnew\nline\ttab",
    "ends with a backslash \\",
    "ends with semicolons;;",
]


def test_metacharacters_reach_the_session_verbatim_and_execute_nothing(
        town: Town, tmp_path: Path) -> None:
    canary = tmp_path / "pwned"
    heard = tmp_path / "heard.txt"
    _echo_agent(town, "ears", heard)
    texts = [t.format(canary=canary) for t in NASTY]
    for i, text in enumerate(texts, start=1):
        out = gt_json(town, "nudge", "ears", "--", text)
        assert out["delivered"] and out["verified"], out
        _heard(heard, i)
    got = heard.read_text().splitlines()
    assert got == [sanitize(t) for t in texts]
    assert not canary.exists(), "a nudge executed something"
    assert Sessions(town).is_alive(town.agent("ears")), "C-c/C-d typed as text, not as keys"
    assert TmuxServerAlive(town)


@pytest.mark.parametrize("key", ["C-c", "Enter", "Escape", "C-d", "C-u"])
def test_a_nudge_of_a_key_name_is_typed_as_text(town: Town, tmp_path: Path, key: str) -> None:
    # a whole chunk that is a key name is where literal mode (send-keys -l) matters:
    # without it, tmux would press the key (C-c would kill the agent, Enter add a line)
    heard = tmp_path / "heard.txt"
    _echo_agent(town, "keys", heard)
    out = gt_json(town, "nudge", "keys", "--", key)
    assert out["delivered"] and out["verified"], out
    assert _heard(heard, 1) == [key]
    gt_json(town, "nudge", "keys", "still there?")
    assert _heard(heard, 2) == [key, "still there?"]
    assert Sessions(town).is_alive(town.agent("keys")), f"{key} was pressed, not typed"


def test_a_nudge_torn_by_a_killed_sender_is_cleared_before_the_next(
        town: Town, tmp_path: Path) -> None:
    # the sender dies after typing, before Enter: the text sits in the agent's input
    import os
    import signal
    import subprocess

    from gastown.town.providers.tmux import PAUSE_VAR

    heard = tmp_path / "heard.txt"
    _echo_agent(town, "torn", heard)
    env = {**os.environ, PAUSE_VAR: "typed:60"}
    sender = subprocess.Popen(
        [sys.executable, "-c", "import sys; from gastown.town.providers import TmuxProvider; "
         "TmuxProvider(sys.argv[1]).nudge('torn', 'half of a nudge')", town.gt_dir],
        env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert sender.stderr is not None
        assert "pausing" in sender.stderr.readline()
        wait_for(lambda: "half of a nudge" in gt(town, "peek", "torn").stdout, 10,
                 what="the torn text in the pane")
    finally:
        sender.send_signal(signal.SIGKILL)
        sender.wait()
    out = gt_json(town, "nudge", "torn", "the whole nudge")
    assert out["delivered"] and out["verified"], out
    assert _heard(heard, 1) == ["the whole nudge"], "the torn text was glued to it"


def TmuxServerAlive(town: Town) -> bool:  # noqa: N802 - reads as a sentence in the assert
    from gastown.town.providers import TmuxProvider

    return TmuxProvider(town.gt_dir).sessions() == ["ears"]


def test_long_text_goes_in_chunks_and_arrives_whole(town: Town, tmp_path: Path
                                                    ) -> None:
    heard = tmp_path / "heard.txt"
    _echo_agent(town, "big", heard)
    text = " ".join(f"w{i:04d};" for i in range(400))  # ~3.2k chars, ';' at chunk edges
    out = gt_json(town, "nudge", "big", text)
    assert out["chunks"] == len(chunks(text)) > 5 and out["verified"]
    assert _heard(heard, 1) == [text]


def test_queue_mode_delivers_at_the_next_prime_or_mail_check(town: Town,
                                                              tmp_path: Path) -> None:
    add_agent(town, "q1", [sys.executable, "-c", "pass"])
    out = gt_json(town, "nudge", "q1", "--mode", "queue", "check the $(weather)")
    assert out["delivered_as"] == "queue" and out["delivered"]
    env_agent = {"GT_AGENT": "q1"}
    from agents.townkit import clean_env

    block = gt(town, "mail", "check", "--inject", env=clean_env(**env_agent)).stdout
    assert "check the $(weather)" in block and block.startswith("<gastown-mail>")
    again = gt(town, "mail", "check", "--inject", env=clean_env(**env_agent)).stdout
    assert again == "", "a queued nudge is delivered once"
    gt(town, "nudge", "q1", "--mode", "queue", "second")
    primed = json.loads(gt(town, "prime", "--hook", "--json",
                           env=clean_env(**env_agent)).stdout)
    assert [n["text"] for n in primed["nudges"]] == ["second"]
    events = [e for e in gt_json(town, "events") if e["type"] == "nudge"]
    assert len(events) == 2 and events[0]["actor"] == "tester"
    assert events[0]["payload"]["delivered_as"] == "queue"


def test_immediate_nudge_to_a_stopped_session_fails_clearly(town: Town) -> None:
    add_agent(town, "off", [sys.executable, "-c", "pass"])
    proc = gt(town, "nudge", "off", "hello", check=False)
    assert proc.returncode == 9 and "no running session" in proc.stderr
    assert "--mode queue" in proc.stderr


def test_wait_idle_types_once_the_session_is_quiet(town: Town, tmp_path: Path
                                                  ) -> None:
    heard = tmp_path / "heard.txt"
    _echo_agent(town, "calm", heard, provider="subprocess")
    out = gt_json(town, "nudge", "calm", "--mode", "wait-idle", "--timeout", "10", "psst")
    assert out["delivered_as"] == "immediate" and out["delivered"]
    assert _heard(heard, 1) == ["psst"]
