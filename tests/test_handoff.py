"""``gt handoff`` for real: an agent in a tmux session hands its work over and a
fresh session of it starts, whose ``gt prime`` shows the notes and the step.

The agent is a small script (the ``command`` preset): each session runs ``gt
prime`` and keeps what it printed; the first may run ``gt handoff`` itself, from
inside its own session (the restart then runs detached, outside the session).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from agents.townkit import add_agent, gt, gt_json, wait_for
from gastown.errors import UsageError, ValidationError
from gastown.town.core import Town
from gastown.town.handoff import HANDOFF_KEY, MAX_NOTES
from gastown.town.rigs import ensure_worktree
from gastown.town.sessions import Sessions
from gastown.town.slinging import sling

pytest_plugins = ("agents.fixtures",)

AGENT = r'''
import pathlib, subprocess, sys, time
out = pathlib.Path(sys.argv[1])
n = len(list(out.glob("prime-*"))) + 1
prime = subprocess.run(["gt", "prime"], capture_output=True, text=True)
(out / f"prime-{n}.tmp").write_text(prime.stdout + prime.stderr)
(out / f"prime-{n}.tmp").rename(out / f"prime-{n}")
print(f"session {n}: reproduced the bug in test_parse", flush=True)
if n == 1 and len(sys.argv) > 2:
    said = subprocess.run(["gt", "handoff", "-m", sys.argv[2]], capture_output=True,
                          text=True)
    (out / "handoff-said").write_text(f"{said.returncode}\n{said.stdout}{said.stderr}")
time.sleep(300)
'''


def agent_files(tmp_path: Path) -> tuple[Path, Path]:
    script = tmp_path / "agent.py"
    script.write_text(AGENT)
    out = tmp_path / "out"
    out.mkdir()
    return script, out


def sessions_started(town: Town, name: str) -> int:
    with town.ledger("tester") as led:
        return sum(1 for e in led.events(types=["session.started"])
                   if e["payload"].get("agent") == name)


def test_handoff_from_outside_restarts_the_session_with_the_notes(
        town: Town, tmp_path: Path) -> None:
    script, out = agent_files(tmp_path)
    add_agent(town, "w", [sys.executable, str(script), str(out)])
    result = sling(town, "mol-quick-fix", "w", {"issue": "t-1"}, nudge=False, actor="tester")
    wait_for(lambda: (out / "prime-1").exists(), 20, what="session 1 primed")
    first = (out / "prime-1").read_text()
    assert "Handoff from" not in first
    with town.ledger("tester") as led:  # the first step is under way
        step = [s for s in led.list() if s["id"].startswith(result.id + ".")][0]
        led.claim(step["id"], "tester")
    data = gt_json(town, "handoff", "--agent", "w", "-m",
                   "Tried the parser fix\nnext: run tests/test_parse.py \x1b[31mfirst")
    assert data["restart"] == "done" and data["session"] == 1
    assert data["hook"] == result.id and data["step"] == step["id"]
    assert "\x1b" not in data["notes"] and "\n" in data["notes"]
    wait_for(lambda: (out / "prime-2").exists(), 20, what="session 2 primed")
    second = (out / "prime-2").read_text()
    assert "## Handoff from your session 1" in second
    assert "next: run tests/test_parse.py" in second and "Tried the parser fix" in second
    assert f"You were on {step['id']}" in second
    assert f"## Current step: {step['id']}" in second
    assert sessions_started(town, "w") == 2
    with town.ledger("tester") as led:
        (ev,) = led.events(types=["handoff"])
        assert ev["bead_id"] == result.id and ev["payload"]["session"] == 1
        assert json.loads(led.kv_get(HANDOFF_KEY + "w") or "{}")["notes"] == data["notes"]
        stops = led.events(types=["session.stopped"])
        assert [e["payload"]["agent"] for e in stops] == ["w"]
    # the handoff is shown to the session after it, not forever
    Sessions(town).stop(town.agent("w"), actor="tester")
    ensure_worktree(town, town.agent("w"), f"w/{result.id}")
    Sessions(town).start(town.agent("w"), actor="tester")
    wait_for(lambda: (out / "prime-3").exists(), 20, what="session 3 primed")
    assert "Handoff from" not in (out / "prime-3").read_text()


@pytest.mark.parametrize("provider", ["tmux", "subprocess"])
def test_handoff_from_inside_the_agents_own_session(town: Town, tmp_path: Path,
                                                    provider: str) -> None:
    script, out = agent_files(tmp_path)
    add_agent(town, "w", [sys.executable, str(script), str(out), "left off at the lexer"],
              provider=provider)
    with town.ledger("tester") as led:
        bead = led.create("fix the lexer")
    sling(town, bead["id"], "w", nudge=False, actor="tester")
    wait_for(lambda: (out / "prime-2").exists(), 30, what="the session after the handoff")
    said = (out / "handoff-said").read_text()
    assert said.startswith("0\n") and "a fresh session starts in a moment" in said
    second = (out / "prime-2").read_text()
    assert "## Handoff from your session 1" in second and "left off at the lexer" in second
    assert f"{bead['id']} [hooked] fix the lexer" in second
    wait_for(lambda: Sessions(town).is_alive(town.agent("w")), 10, what="session 2 running")
    assert sessions_started(town, "w") == 2
    log = Path(town.gt_dir, "logs", "handoff.log")
    wait_for(lambda: log.exists() and "w: session restarted after its handoff"
             in log.read_text(), 10, what="the restarter's log line")


def test_bad_handoffs_are_one_line_and_write_nothing(town: Town, tmp_path: Path) -> None:
    add_agent(town, "w", [sys.executable, "-c", "import time; time.sleep(60)"])
    notes = tmp_path / "notes.txt"
    notes.write_text("x" * (MAX_NOTES + 1))
    for args, code, words in (
            (("--agent", "w", "--file", str(notes)), ValidationError.exit_code, "at most"),
            (("--agent", "w", "--file", str(tmp_path / "nope")), UsageError.exit_code, "--file"),
            (("--agent", "w", "-m", "a", "--file", str(notes)), UsageError.exit_code, "once"),
            (("-m", "who am i"), UsageError.exit_code, "--agent"),
            (("--agent", "nobody", "-m", "x"), 3, "nobody")):
        proc = gt(town, "handoff", *args, check=False)
        assert proc.returncode == code, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr
    with town.ledger("tester") as led:
        assert led.events(types=["handoff"]) == [] and led.kv_get(HANDOFF_KEY + "w") is None
    # --no-restart only records; standard input works as the notes
    proc = gt(town, "handoff", "--agent", "w", "--no-restart", "--file", "-", check=False)
    assert proc.returncode == 0, proc.stderr
    assert "left running" in proc.stdout
    assert sessions_started(town, "w") == 0


@pytest.mark.parametrize("preset", ["claude", "codex", "gemini", "opencode", "aider"])
def test_every_preset_restarts_the_same_way(town: Town, preset: str) -> None:
    """Nothing in a handoff depends on the preset: the fresh session gets the preset's own
    first prompt (the beacon that tells it to run gt prime) like any start does."""
    from gastown.town.agents import agent_argv, beacon

    add_agent(town, "w", ["true"], preset=preset)
    s = Sessions(town)
    agent = town.agent("w")
    argv = s.program(agent)
    assert argv == agent_argv(s.preset(agent), agent.command, agent.args,
                              beacon(town.actor_of(agent), "w"))
    prompt_mode = s.preset(agent).prompt
    assert prompt_mode == "nudge" or any("gt prime" in a for a in argv), (preset, argv)
