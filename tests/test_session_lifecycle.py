"""Sessions start and stop for real, on both providers.

A session that dies within its first seconds is reported as such (its status and
last line), not as started; stopping a session stops every process it made --
also children that ignore SIGHUP and SIGTERM and a daemon that left its session
-- and the town's tmux server goes with its last session.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from agents.townkit import add_agent, gt, sleeper, wait_for
from gastown.town.core import Town
from gastown.town.providers import TmuxProvider
from gastown.town.providers.proctree import alive
from gastown.town.rigs import ensure_worktree
from gastown.town.sessions import Sessions

pytest_plugins = ("agents.fixtures",)

PROVIDERS = ["tmux", "subprocess"]

#: an agent program that will not go quietly: it and a child ignore SIGHUP and
#: SIGTERM, and a grandchild daemonises (own session, re-parented to init)
STUBBORN = r'''
import os, signal, sys, time

def stubborn():
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

def forever():
    while True:
        time.sleep(1)

out = sys.argv[1]
pids = []
child = os.fork()
if child == 0:
    stubborn()
    forever()
pids.append(child)
r, w = os.pipe()
middle = os.fork()
if middle == 0:
    os.setsid()
    if os.fork() == 0:
        stubborn()
        os.write(w, b"%d\n" % os.getpid())
        forever()
    os._exit(0)
os.waitpid(middle, 0)
pids.append(int(os.read(r, 64).split()[0]))
stubborn()
pids.append(os.getpid())
with open(out + ".tmp", "w") as fh:
    fh.write(" ".join(map(str, pids)))
os.replace(out + ".tmp", out)
print("stubborn and ready", flush=True)
forever()
'''


def _start(town: Town, name: str) -> None:
    ensure_worktree(town, town.agent(name), f"{name}/work")
    Sessions(town).start(town.agent(name), actor="tester")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_session_that_dies_at_once_is_reported_with_its_last_line(
        town: Town, provider: str) -> None:
    add_agent(town, "dud", [sys.executable, "-c",
                            "print('starting'); print('error: no API key configured'); "
                            "raise SystemExit(4)"], provider=provider)
    proc = gt(town, "session", "start", "dud", check=False)
    assert proc.returncode == 9, proc.stdout + proc.stderr
    assert "Started" not in proc.stdout
    err = proc.stderr.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert "dud" in err and "exited at once (status 4)" in err, err
    assert err.endswith("error: no API key configured"), err


@pytest.mark.parametrize("provider", PROVIDERS)
def test_sling_to_an_agent_whose_session_dies_at_once_fails_clearly(
        town: Town, provider: str) -> None:
    add_agent(town, "dud", [sys.executable, "-c",
                            "import sys; sys.exit('fatal: cannot reach the model')"],
              provider=provider)
    bead = town.ledger().create("doomed")
    proc = gt(town, "sling", bead["id"], "dud", check=False)
    assert proc.returncode == 9, proc.stdout + proc.stderr
    err = proc.stderr.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert "exited at once (status 1): fatal: cannot reach the model" in err, err


def test_a_clean_quick_exit_is_not_a_failure(town: Town) -> None:
    add_agent(town, "quick", [sys.executable, "-c", "print('all done')"])
    proc = gt(town, "session", "start", "quick")
    assert "Started quick" in proc.stdout


def _pids(path: Path) -> list[int]:
    text: str = wait_for(lambda: path.exists() and path.read_text(), 15,
                         what="the stubborn program to start")
    return [int(p) for p in text.split()]


def _kill_all(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.mark.parametrize("provider", PROVIDERS)
def test_session_stop_stops_the_whole_process_tree(town: Town, tmp_path: Path,
                                                   provider: str) -> None:
    script = tmp_path / "stubborn.py"
    script.write_text(STUBBORN)
    pid_file = tmp_path / "pids"
    add_agent(town, "mule", [sys.executable, str(script), str(pid_file)], provider=provider)
    _start(town, "mule")
    pids = _pids(pid_file)
    try:
        assert len(pids) == 3 and all(alive(p) for p in pids)
        proc = gt(town, "session", "stop", "mule")
        assert "Stopped mule" in proc.stdout
        wait_for(lambda: not any(alive(p) for p in pids), 15,
                 what="every process of the session to be gone")
        assert not Sessions(town).is_alive(town.agent("mule"))
    finally:
        _kill_all(pids)


def test_the_tmux_server_exits_with_the_last_session(town: Town, tmp_path: Path) -> None:
    add_agent(town, "s1", sleeper())
    add_agent(town, "s2", sleeper())
    _start(town, "s1")
    _start(town, "s2")
    tmux = TmuxProvider(town.gt_dir)
    server = int(subprocess.run(tmux._argv(["display-message", "-p", "#{pid}"]),  # noqa: SLF001
                                capture_output=True, text=True, check=True).stdout)
    gt(town, "session", "stop", "s1")
    assert tmux.sessions() == ["s2"] and alive(server), "one left: the server stays"
    gt(town, "session", "stop", "s2")
    wait_for(lambda: not alive(server), 10, what="the tmux server to exit")
    assert tmux.sessions() == []


def test_down_with_sessions_stops_every_process_and_the_server(town: Town,
                                                                 tmp_path: Path) -> None:
    script = tmp_path / "stubborn.py"
    script.write_text(STUBBORN)
    pid_file = tmp_path / "pids"
    add_agent(town, "mule", [sys.executable, str(script), str(pid_file)])
    add_agent(town, "gone", [sys.executable, "-c", "raise SystemExit(2)"])
    _start(town, "mule")
    _start(town, "gone")
    wait_for(lambda: Sessions(town).info(town.agent("gone")).state == "exited", 10,
             what="the short-lived agent to exit")
    pids = _pids(pid_file)
    tmux = TmuxProvider(town.gt_dir)
    server = int(subprocess.run(tmux._argv(["display-message", "-p", "#{pid}"]),  # noqa: SLF001
                                capture_output=True, text=True, check=True).stdout)
    try:
        out = json.loads(gt(town, "down", "--sessions", "--json").stdout)
        assert out["sessions_stopped"] == ["mule"]
        wait_for(lambda: not any(alive(p) for p in pids), 15,
                 what="every process of the session to be gone")
        wait_for(lambda: not alive(server), 10, what="the tmux server to exit")
    finally:
        _kill_all(pids)
