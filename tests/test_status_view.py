"""``gt status``: what each agent is doing, what is stuck and why -- abnormal first.

Real tmux sessions run small programs that ask a question, keep printing, or
die; the merge queue is fed by the real refinery over real git branches.
"""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agents.controlkit import (
    agent_cmd,
    ledger,
    make_town,
    running,
    session_env,  # noqa: F401 - a fixture
    wait_events,
)
from agents.townkit import BIN, add_agent, clean_env, git, gt, gt_json, wait_for
from gastown import Filter
from gastown.controller.convoy import create_convoy
from gastown.controller.mergeq import controller_actor
from gastown.controller.overview import town_overview
from gastown.controller.policies import MergePolicy
from gastown.controller.refinery import Refinery
from gastown.town.core import Town
from gastown.town.slinging import sling

pytest_plugins = ("agents.fixtures",)


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


ASKER = _py("print('Reading the repository', flush=True)\n"
            "print('Do you trust the files in this folder? [y/n]', flush=True)\n"
            "input()")
BUSY = _py("import itertools, time\n"
           "for i in itertools.count():\n"
           "    print('compiling module', i, flush=True)\n"
           "    time.sleep(0.2)")
DIES = _py("import time\nprint('fatal: no configuration found', flush=True)\ntime.sleep(2)\n"
           "raise SystemExit(2)")
PROMPT = _py("print('Name of the feature: ', end='', flush=True)\ninput()")


def _agent(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(a for a in data["agents"] if a["name"] == name)


def _start(town: Town, *names: str) -> None:
    for name in names:
        gt(town, "session", "start", name)


def test_each_agent_has_a_state_a_last_line_and_the_abnormal_come_first(town: Town) -> None:
    add_agent(town, "busy", BUSY)
    add_agent(town, "asker", ASKER)
    add_agent(town, "dies", DIES)
    add_agent(town, "idle", _py("pass"))
    _start(town, "busy", "asker", "dies")
    job = sling(town, town.ledger().create("keep compiling")["id"], "busy", nudge=False)

    def settled() -> dict[str, Any] | None:
        data = gt_json(town, "status")
        states = {a["name"]: a["state"] for a in data["agents"]}
        return data if states == {"busy": "running", "asker": "waiting for input",
                                  "dies": "exited", "idle": "stopped"} else None

    data = wait_for(settled, 20, 0.2, what="every agent in its state")
    assert [a["name"] for a in data["agents"]] == ["asker", "dies", "busy", "idle"]
    asker, dies, busy = _agent(data, "asker"), _agent(data, "dies"), _agent(data, "busy")
    assert asker["last_line"] == "Do you trust the files in this folder? [y/n]"
    assert "trust" in asker["reason"]
    assert dies["last_line"] == "fatal: no configuration found", "not tmux's own notice"
    assert dies["reason"] == "exit status 2"
    assert busy["last_line"].startswith("compiling module") and busy["reason"] == ""
    assert busy["hook"]["id"] == job.id

    text = gt(town, "status").stdout
    rows = [line.split()[0] for line in text.splitlines()
            if line.split() and line.split()[0] in ("asker", "dies", "busy", "idle")]
    assert rows == ["asker", "dies", "busy", "idle"]
    assert "waiting for input" in text and "Do you trust the files in this folder?" in text
    assert "why: exit status 2" in text and "fatal: no configuration found" in text
    assert "\x1b" not in text, "no colour through a pipe"


def test_a_headless_session_is_read_from_its_log(town: Town) -> None:
    add_agent(town, "bg", ASKER, provider="subprocess")
    _start(town, "bg")
    data = wait_for(lambda: (d := gt_json(town, "status"))
                    and _agent(d, "bg")["state"] == "waiting for input" and d, 20, 0.2,
                    what="the headless agent's question")
    assert _agent(data, "bg")["last_line"] == "Do you trust the files in this folder? [y/n]"
    assert _agent(data, "bg")["session"]["provider"] == "subprocess"


def test_a_prompt_with_no_progress_is_waiting_but_steady_output_is_not(town: Town) -> None:
    add_agent(town, "quiet", PROMPT)
    add_agent(town, "busy", BUSY)
    _start(town, "quiet", "busy")
    led = town.ledger()
    data = wait_for(lambda: (d := town_overview(town, led, quiet_after=1.5))
                    and _agent(d, "quiet")["state"] == "waiting for input" and d, 20, 0.2,
                    what="the silent prompt to count as waiting")
    quiet = _agent(data, "quiet")
    assert quiet["last_line"] == "Name of the feature:"
    assert quiet["reason"].startswith("at a prompt, no output for")
    assert _agent(data, "busy")["state"] == "running", "output keeps coming: not waiting"
    # within the default patience a fresh prompt is still just running
    assert _agent(town_overview(town, led, quiet_after=3600), "quiet")["state"] == "running"


def _branch(town: Town, tmp: Path, name: str, text: str) -> str:
    work = tmp / f"clone-{name.replace('/', '-')}"
    git(tmp, "clone", "-q", town.repo_dir("textkit"), str(work))
    git(work, "switch", "-q", "-c", name)
    (work / "README.md").write_text(text)
    git(work, "commit", "-q", "-am", f"{name}: README")
    git(work, "push", "-q", "origin", name)
    return git(work, "rev-parse", "HEAD").strip()


@pytest.mark.usefixtures("session_env")
def test_the_merge_queue_shows_why_work_was_sent_back_and_convoys_their_progress(
        tmp_path: Path) -> None:
    town = make_town(tmp_path, push=False, test=[])
    commits = {b: _branch(town, tmp_path, b, f"{b}\n") for b in ("ada/one", "bo/two")}
    with town.ledger(controller_actor(town)) as led:
        mrs = {b: led.create(f"Merge {b}", issue_type="merge-request",
                             metadata={"branch": b, "commit": c, "base": "main",
                                       "rig": "textkit", "author": f"textkit/worker/{b[:2]}"})
               for b, c in commits.items()}
        Refinery(town, led, MergePolicy(), controller_actor(town),
                 threading.Event()).run_target("textkit", "main")
        third = led.create("Merge cy/three", issue_type="merge-request",
                           metadata={"branch": "cy/three", "commit": commits["ada/one"],
                                     "base": "main", "rig": "textkit", "author": "cy"})
        beads = [led.create(f"part {n}")["id"] for n in range(3)]
        convoy = create_convoy(led, "three parts", beads)
        led.close_bead(beads[0])
    data = gt_json(town, "status")
    mq = data["merge_queue"]
    assert (mq["queued"], mq["landing"], mq["sent_back"]) == (1, 0, 1)
    back, queued = mq["requests"]
    assert back["id"] == mrs["bo/two"]["id"] and back["state"] == "conflict"
    assert back["reason"] and back["files"] == ["README.md"]
    assert queued["id"] == third["id"] and queued["reason"] == ""
    [cv] = data["convoys"]
    assert (cv["id"], cv["closed"], cv["total"]) == (convoy["id"], 1, 3)
    text = gt(town, "status").stdout
    assert f"{back['id']}" in text and "sent back" in text and f"conflict: {back['reason']}" \
        in text
    assert "1/3 closed" in text and "three parts" in text


def _on_a_terminal(town: Town, *args: str, **env: str) -> str:
    """``gt ARGS`` with its output on a pseudo-terminal, as a person runs it."""
    main, sub = pty.openpty()
    proc = subprocess.Popen([str(BIN / "gt"), *args[:1], "--town", town.root, *args[1:]],
                            stdin=subprocess.DEVNULL, stdout=sub, stderr=sub,
                            env=clean_env(TERM="xterm", **env))
    os.close(sub)
    chunks = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.5)
        if ready:
            try:
                data = os.read(main, 65536)
            except OSError:  # the other end closed: the program is done
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    proc.wait(timeout=10)
    os.close(main)
    assert proc.returncode == 0
    return b"".join(chunks).decode(errors="replace")


def test_failures_are_coloured_on_a_terminal_only(town: Town,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    add_agent(town, "dies", DIES)
    _start(town, "dies")
    wait_for(lambda: _agent(gt_json(town, "status"), "dies")["state"] == "exited", 20,
             what="the agent to die")
    coloured = _on_a_terminal(town, "status")
    assert "\x1b[31mexited" in coloured, coloured
    assert "\x1b[31mwhy: exit status 2" in coloured
    plain = _on_a_terminal(town, "status", NO_COLOR="1")
    assert "\x1b[" not in plain and "exited" in plain
    assert "\x1b[" not in gt(town, "status").stdout


@pytest.mark.usefixtures("session_env")
def test_a_quarantine_mail_quotes_the_last_output_and_status_shows_it_first(
        tmp_path: Path) -> None:
    town = make_town(tmp_path, agents={"bad": agent_cmd("--crash"), "fine": BUSY},
                     extra_toml="[controller]\ntick = 0.3\n"
                                '[patrol]\nmax_restarts = 2\nwindow = 120\nnotify = "owner"\n')
    with ledger(town) as led:
        job = led.create("work for a broken agent")["id"]
    sling(town, job, "bad", nudge=False)
    with running(town):
        gt(town, "session", "start", "fine")
        wait_events(town, "patrol.quarantined", timeout=30)
        with ledger(town) as led:
            [mail] = led.list(Filter(issue_type=["message"], assignee="owner"))
        data = gt_json(town, "status")
        text = gt(town, "status").stdout
    assert "Its last output:" in mail["description"]
    assert "[bad] crashing on purpose" in mail["description"]
    assert [a["name"] for a in data["agents"]][0] == "bad"
    bad = data["agents"][0]
    assert bad["state"] == "quarantined" and bad["hook"]["id"] == job
    assert bad["last_line"] == "[bad] crashing on purpose"
    assert "gt session start bad" in bad["reason"]
    assert text.index("quarantined") < text.index("fine")
