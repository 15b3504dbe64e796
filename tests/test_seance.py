"""``gt seance``: what an earlier session of an agent did -- its events, its last
output (kept when it ended, or read from the screen of the one running) and its
handoff notes -- with real tmux and headless sessions."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from agents.townkit import add_agent, gt, gt_json, wait_for
from gastown.errors import UsageError
from gastown.town.core import Town
from gastown.town.rigs import ensure_worktree
from gastown.town.seance import output_path
from gastown.town.sessions import Sessions

pytest_plugins = ("agents.fixtures",)

#: each session prints what it does, files a bead as the agent, then waits (or exits)
AGENT = r'''
import pathlib, subprocess, sys, time
out = pathlib.Path(sys.argv[1])
n = len(list(out.glob("run-*"))) + 1
(out / f"run-{n}").write_text("")
print(f"session {n}: \x1b[1mreading\x1b[0m src/lexer.py", flush=True)
subprocess.run(["bd", "create", f"found in session {n}"], capture_output=True)
print(f"session {n}: filed a bead, secret-free", flush=True)
(out / f"done-{n}").write_text("")
if sys.argv[2] == "exit":
    sys.exit(3)
time.sleep(300)
'''


def setup_agent(town: Town, tmp_path: Path, name: str, mode: str,
                provider: str | None = None) -> Path:
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    out = tmp_path / "out"
    out.mkdir()
    add_agent(town, name, [sys.executable, str(script), str(out), mode], provider=provider)
    ensure_worktree(town, town.agent(name), f"{name}/work")
    return out


def start(town: Town, name: str) -> None:
    Sessions(town).start(town.agent(name), actor="tester")


def test_seance_shows_an_ended_sessions_events_output_and_handoff(
        town: Town, tmp_path: Path) -> None:
    out = setup_agent(town, tmp_path, "w", "stay")
    start(town, "w")
    wait_for(lambda: (out / "done-1").exists(), 20, what="session 1's work")
    wait_for(lambda: "filed a bead" in gt(town, "peek", "w").stdout, 10, what="its screen")
    gt(town, "handoff", "--agent", "w", "-m", "lexer half done; see TODO in lexer.py")
    wait_for(lambda: (out / "done-2").exists(), 20, what="session 2's work")

    one = gt_json(town, "seance", "w")  # default: the session before the latest
    assert (one["session"], one["sessions"], one["how"]) == (1, 2, "stopped")
    assert one["output_from"] == output_path(town, "w", 1)
    assert "session 1: reading src/lexer.py" in one["output"]  # kept, escapes removed
    assert "\x1b" not in one["output"] and "session 2" not in one["output"]
    assert [h["notes"] for h in one["handoffs"]] == ["lexer half done; see TODO in lexer.py"]
    kinds = [e["type"] for e in one["events"]]
    assert kinds[0] == "session.started" and "handoff" in kinds and kinds[-1] == "session.stopped"
    titles = [e["payload"].get("title") for e in one["events"] if e["type"] == "bead.created"]
    assert titles == ["found in session 1"]
    path = Path(output_path(town, "w", 1))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

    two = gt_json(town, "seance", "w", "--session", "2")  # still running: its screen
    assert (two["how"], two["output_from"], two["ended"]) == ("running", "screen", None)
    assert "session 2: filed a bead" in two["output"] and two["handoffs"] == []
    assert [e["payload"].get("title") for e in two["events"]
            if e["type"] == "bead.created"] == ["found in session 2"]

    text = gt(town, "seance", "w", "--session", "1", "--ask", "what was left to do?").stdout
    assert text.startswith("You are asked about an earlier session")
    assert "Question: what was left to do?" in text
    assert "## Handoff notes" in text and "lexer half done" in text
    assert "## Last output" in text and "session 1: reading src/lexer.py" in text


@pytest.mark.parametrize("provider", ["tmux", "subprocess"])
def test_a_session_that_ended_on_its_own_keeps_its_output(
        town: Town, tmp_path: Path, provider: str) -> None:
    out = setup_agent(town, tmp_path, "w", "exit", provider=provider)
    start(town, "w")
    wait_for(lambda: not Sessions(town).is_alive(town.agent("w")), 20, what="session 1 ended")
    start(town, "w")  # started again: the dead session's screen is kept first
    wait_for(lambda: (out / "done-2").exists(), 20, what="session 2's work")
    one = gt_json(town, "seance", "w", "--session", "1")
    assert "session 1: filed a bead" in one["output"], one
    assert one["how"] == "started again"
    assert os.path.exists(output_path(town, "w", 1))


def test_bad_seance_requests_are_one_line(town: Town, tmp_path: Path) -> None:
    add_agent(town, "w", [sys.executable, "-c", "import time; time.sleep(60)"])
    for args, code, words in ((("w",), 3, "never had a session"),
                              (("nobody",), 3, "nobody")):
        proc = gt(town, "seance", *args, check=False)
        assert proc.returncode == code and words in proc.stderr, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1
    ensure_worktree(town, town.agent("w"), "w/work")
    start(town, "w")
    for n in ("0", "2"):
        proc = gt(town, "seance", "w", "--session", n, check=False)
        assert proc.returncode == UsageError.exit_code
        assert "sessions 1 to 1" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
