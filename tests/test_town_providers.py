"""The agent protocol on both providers: real tmux (private socket) and real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.townkit import ECHO, add_agent, clean_env, gt, sleeper, wait_for
from gastown import Ledger
from gastown.town.core import Town
from gastown.town.launch import main as launch_main
from gastown.town.launch import read_status
from gastown.town.providers import SessionSpec, SubprocessProvider, TmuxProvider
from gastown.town.providers.tmux import socket_path
from gastown.town.rigs import ensure_worktree
from gastown.town.sessions import Sessions
from gastown.town.slinging import sling

DUMP_ENV = ("import json, os; json.dump({k: v for k, v in os.environ.items()}, "
            "open('env.json', 'w')); print('env written', flush=True); "
            "import time; time.sleep(300)")

pytest_plugins = ("agents.fixtures",)


def _path_without_tmux(tmp_path: Path) -> str:
    """A PATH with git (rigs need it) and nothing else: no tmux on it."""
    import shutil

    bin_dir = tmp_path / "bin-without-tmux"
    bin_dir.mkdir(exist_ok=True)
    git = shutil.which("git")
    assert git
    if not (bin_dir / "git").exists():
        (bin_dir / "git").symlink_to(git)
    return str(bin_dir)


@pytest.mark.parametrize("provider", ["tmux", "subprocess"])
def test_session_gets_identity_worktree_and_ledger(town: Town, provider: str) -> None:
    add_agent(town, "env1", [sys.executable, "-c", DUMP_ENV], provider=provider)
    bead = town.ledger().create("look around")
    result = sling(town, bead["id"], "env1", actor="tester")
    assert result.session == "started"
    wt = Path(town.workdir(town.agent("env1")))
    env_file = wt / "env.json"
    wait_for(env_file.exists, 15, what="the agent to write env.json")
    env = __import__("json").loads(wait_for(env_file.read_text, 5))
    assert env["GT_TOWN"] == town.root and env["GT_AGENT"] == "env1"
    assert env["GT_RIG"] == "app" and env["BD_ACTOR"] == "app/worker/env1"
    assert env["BD_DB"] == os.path.join(town.root, ".beads", "beads.db")
    assert env["GIT_AUTHOR_NAME"] == env["GIT_COMMITTER_NAME"] == "app/worker/env1"
    assert env["GIT_AUTHOR_EMAIL"] == "agents@town.example"
    assert env["PATH"].split(os.pathsep)[0] == os.path.join(town.root, ".gt", "bin")
    if provider == "tmux":  # tmux tells its panes their server: the town's private one
        assert env["TMUX"].split(",")[0] == TmuxProvider(town.gt_dir).socket
    else:
        assert "TMUX" not in env
    info = Sessions(town).info(town.agent("env1"))
    assert info.state == "running" and info.provider == provider and info.pid
    assert "env written" in wait_for(
        lambda: gt(town, "peek", "env1").stdout.count("env written") and
        gt(town, "peek", "env1").stdout, 10, what="peek to show output")


def test_tmux_uses_only_the_towns_private_server(town: Town, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # if anything fell back to the user's default server, it would appear here
    user_tmp = tmp_path / "user-tmux"
    user_tmp.mkdir()
    monkeypatch.setenv("TMUX_TMPDIR", str(user_tmp))
    monkeypatch.setenv("TMUX", f"{user_tmp}/default,1,0")  # as if gt ran inside tmux
    add_agent(town, "s1", sleeper())
    ensure_worktree(town, town.agent("s1"), "s1/work")
    Sessions(town).start(town.agent("s1"), actor="tester")
    tmux = TmuxProvider(town.gt_dir)
    assert tmux.socket == os.path.join(town.gt_dir, "tmux.sock") and os.path.exists(tmux.socket)
    assert tmux.sessions() == ["s1"]
    assert list(user_tmp.iterdir()) == [], "the user's tmux server was touched"
    argv = tmux.attach_argv("s1")
    assert argv[:5] == ["tmux", "-f", "/dev/null", "-S", tmux.socket]


def test_long_town_paths_get_a_short_socket(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60) / ".gt"
    path = socket_path(str(deep))
    assert len(path.encode()) < 100 and path.endswith(".sock")
    assert socket_path(str(deep)) == path, "stable: every gt call finds the same server"


def test_tmux_session_lifecycle_and_exit_status(tmp_path: Path) -> None:
    prov = TmuxProvider(str(tmp_path / ".gt"))
    os.makedirs(tmp_path / ".gt")
    status = str(tmp_path / "quick.exit")
    launch = [sys.executable, "-m", "gastown.town.launch", status, "--"]
    try:
        prov.start(SessionSpec("quick", [*launch, sys.executable, "-c",
                                         "print('bye'); raise SystemExit(7)"], str(tmp_path)))
        wait_for(lambda: prov.exists("quick") and not prov.is_alive("quick"), 10,
                 what="the program to exit")
        assert read_status(status) == 7, "the launcher records how the program ended"
        assert "bye" in prov.peek("quick"), "the pane is kept after exit"
        os.remove(status)  # (Sessions.start does this before every start)
        # the program says when its interpreter is up: a Ctrl-C that lands while
        # Python is still starting ends it with status 1, not by the signal
        waiter = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(300)"]
        prov.start(SessionSpec("quick", [*launch, *waiter], str(tmp_path)))
        assert prov.is_alive("quick") and prov.pid("quick") and read_status(status) is None
        assert prov.last_activity("quick") is not None
        launcher = prov.pid("quick")
        assert launcher
        wait_for(lambda: len(_children(launcher)) == 1, 10, what="the program to start")
        wait_for(lambda: "up" in prov.peek("quick").split(), 20, what="the program to be up")
        prov.interrupt("quick")  # Ctrl-C reaches the program, not just the launcher
        wait_for(lambda: not prov.is_alive("quick"), 10, what="Ctrl-C to stop the program")
        assert read_status(status) == -signal.SIGINT
        assert prov.stop("quick") and not prov.exists("quick") and not prov.stop("quick")
    finally:
        prov.kill_server()


def test_launcher_reports_missing_programs_and_passes_signals_on(tmp_path: Path) -> None:
    status = str(tmp_path / "st")
    assert launch_main([status, "--", str(tmp_path / "no-such-program")]) == 127
    assert read_status(status) == 127
    assert launch_main(["just-one-arg"]) == 2
    proc = subprocess.Popen([sys.executable, "-m", "gastown.town.launch", status, "--",
                             *sleeper()])
    wait_for(lambda: len(_children(proc.pid)) == 1, 10, what="the program to start")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 128 + signal.SIGTERM
    assert read_status(status) == -signal.SIGTERM


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
            return [int(x) for x in fh.read().split()]
    except OSError:
        return []


def test_subprocess_session_lifecycle(tmp_path: Path) -> None:
    gt_dir = tmp_path / ".gt"
    prov = SubprocessProvider(str(gt_dir))
    reader = ("import sys\nfor line in sys.stdin:\n    print('got', line.strip(), flush=True)\n")
    prov.start(SessionSpec("head", [sys.executable, "-u", "-c", reader], str(tmp_path),
                           env={"GT_AGENT": "head"}))
    try:
        assert prov.is_alive("head") and prov.sessions() == ["head"]
        result = prov.nudge("head", "hello $(whoami); `id`")
        assert result.delivered and result.verified
        wait_for(lambda: "got hello $(whoami); `id`" in prov.peek("head"), 10,
                 what="the nudge to reach stdin")

        def refuse() -> None:
            raise OSError("the sender could not record its intent")

        fifo = os.path.realpath(gt_dir / "sessions" / "head.in")
        with pytest.raises(OSError, match="record its intent"):
            prov.nudge("head", "never sent", refuse)
        held = [fd for fd in os.listdir("/proc/self/fd")
                if os.path.realpath(f"/proc/self/fd/{fd}") == fifo]
        assert held == [], "a failed before_submit leaves the session's input open"
        log = gt_dir / "logs" / "head.log"
        assert log.exists() and prov.last_activity("head") == pytest.approx(
            log.stat().st_mtime)
        assert prov.stop("head", grace=2) and not prov.is_alive("head")
        assert prov.exit_status("head") == -signal.SIGHUP, "SIGHUP first, as a terminal"
        assert not prov.nudge("head", "anyone?").delivered
    finally:
        prov.stop("head", grace=0.5)


def test_subprocess_snapshot_answers_as_the_single_questions_do(tmp_path: Path) -> None:
    """The patrol's per-tick snapshot reads each session once and says what is_alive,
    pid and last_activity say one at a time: live, exited and reused-pid sessions."""
    prov = SubprocessProvider(str(tmp_path / ".gt"))
    reader = "import sys\nfor line in sys.stdin:\n    print(line, flush=True)\n"
    prov.start(SessionSpec("live", [sys.executable, "-u", "-c", reader], str(tmp_path)))
    prov.start(SessionSpec("gone", [sys.executable, "-c", "pass"], str(tmp_path)))
    try:
        wait_for(lambda: not prov.is_alive("gone"), 10, what="exit")
        snap = prov.snapshot()
        assert set(snap) == {"live", "gone"}
        for name, st in snap.items():
            assert (st.alive, st.pid, st.last_activity) == (
                prov.is_alive(name), prov.pid(name), prov.last_activity(name)), name
        assert snap["live"].alive and snap["live"].pid and not snap["gone"].alive
    finally:
        prov.stop("live", grace=0.5)
    assert not prov.snapshot()["live"].alive


def test_subprocess_pid_reuse_is_not_mistaken_for_the_session(tmp_path: Path) -> None:
    prov = SubprocessProvider(str(tmp_path / ".gt"))
    prov.start(SessionSpec("x", [sys.executable, "-c", "pass"], str(tmp_path)))
    wait_for(lambda: not prov.is_alive("x"), 10, what="exit")
    state = Path(tmp_path / ".gt" / "sessions" / "x.json")
    data = __import__("json").loads(state.read_text())
    data.update(pid=os.getpid(), ticks="1", exit=None)  # a live pid, but not ours
    state.write_text(__import__("json").dumps(data))
    assert not prov.is_alive("x")


def test_missing_tmux_is_a_clear_error_naming_subprocess(town: Town, tmp_path: Path
                                                         ) -> None:
    add_agent(town, "t1", sleeper())
    with Ledger.open(os.path.join(town.root, ".beads", "beads.db")) as led:
        bead = led.create("needs a session")
        before = led.last_event_seq()
    proc = gt(town, "sling", bead["id"], "t1", check=False,
              env=clean_env(PATH=_path_without_tmux(tmp_path)))
    assert proc.returncode == 10, proc.stderr
    assert "tmux is not installed" in proc.stderr and "subprocess" in proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    with Ledger.open(os.path.join(town.root, ".beads", "beads.db")) as led:
        assert led.get(bead["id"])["status"] == "open", "nothing was pinned"
        assert led.last_event_seq() == before, "the ledger is as it was"


def test_headless_agents_run_without_tmux(town: Town, tmp_path: Path) -> None:
    add_agent(town, "h1", [sys.executable, str(ECHO), str(tmp_path / "heard.txt")],
              provider="subprocess")
    bead = town.ledger().create("headless")
    env = clean_env(PATH=_path_without_tmux(tmp_path))
    out = __import__("json").loads(gt(town, "sling", bead["id"], "h1", "--json",
                                      env=env).stdout)
    assert out["session"] == "started"
    gt(town, "nudge", "h1", "are you there?", env=env)
    wait_for(lambda: (tmp_path / "heard.txt").exists() and
             (tmp_path / "heard.txt").read_text() == "are you there?\n", 10, what="stdin")
    started = time.monotonic()
    gt(town, "session", "stop", "h1", env=env)
    assert time.monotonic() - started < 10
    assert Sessions(town).info(town.agent("h1")).state == "exited"
