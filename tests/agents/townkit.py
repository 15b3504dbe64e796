"""The town test kit: a real git repository, a town over it, the ``gt`` command line.

Every town made here runs its tmux sessions on its own private socket;
:func:`teardown_town` kills that server and every headless session.  The
fixtures built on this are in :mod:`agents.fixtures` (a pytest plugin).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gastown.town.config import append_table
from gastown.town.core import Town
from gastown.town.providers import SubprocessProvider, TmuxProvider

AGENTS = Path(__file__).resolve().parent
DISCIPLINED = AGENTS / "disciplined_agent.py"
ECHO = AGENTS / "echo_agent.py"
BIN = Path(sys.executable).parent
#: variables a test process must not pass on: they would point commands elsewhere
LEAKY = ("GT_TOWN", "GT_AGENT", "GT_RIG", "GT_ROLE", "GT_POOL", "BD_DB", "BEADS_DB",
          "BD_ACTOR", "TMUX", "TMUX_PANE", "GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME",
          "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL", "GIT_DIR", "GIT_WORK_TREE")
EMAIL = "agents@town.example"


def git(cwd: Path | str, *args: str) -> str:
    """Run git in ``cwd`` with a fixed identity; return its stdout."""
    env = {k: v for k, v in os.environ.items() if k not in LEAKY}
    env.update(GIT_AUTHOR_NAME="Tester", GIT_AUTHOR_EMAIL="t@example.com",
               GIT_COMMITTER_NAME="Tester", GIT_COMMITTER_EMAIL="t@example.com")
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True,
                          text=True).stdout


def make_repo(path: Path, branch: str = "main") -> Path:
    """A small git repository with one commit on ``branch``."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", branch)
    (path / "README.md").write_text("# app\n")
    git(path, "add", "README.md")
    git(path, "commit", "-q", "-m", "initial commit")
    return path


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for ``gt``/``bd`` run by a test: no session identity, venv first."""
    env = {k: v for k, v in os.environ.items() if k not in LEAKY}
    env["PATH"] = str(BIN) + os.pathsep + env.get("PATH", "")
    env["BD_ACTOR"] = "tester"
    env.update(extra)
    return env


def gt(town: Town | Path | str, *args: str, check: bool = True, env: dict[str, str] | None = None,
       timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the ``gt`` console script against a town (``--town``)."""
    root = town.root if isinstance(town, Town) else str(town)
    # options right after the command name, so a trailing `-- TEXT` stays text
    argv = [str(BIN / "gt"), *args[:1], "--town", root, *args[1:]]
    proc = subprocess.run(argv, capture_output=True,
                          text=True, env=env or clean_env(), timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"gt {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def run_as(cwd: Path, *argv: str, actor: str = "tester", check: bool = True
           ) -> subprocess.CompletedProcess[str]:
    """Run one of our console scripts (``argv[0]``: ``gt``, ``bd``) in ``cwd`` as ``actor``."""
    proc = subprocess.run([str(BIN / argv[0]), *argv[1:]], cwd=cwd, capture_output=True,
                          text=True, env=clean_env(BD_ACTOR=actor), timeout=60, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{argv} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def gt_json(town: Town | Path | str, *args: str) -> Any:
    """``gt ARGS --json``, parsed."""
    return json.loads(gt(town, *args[:1], "--json", *args[1:]).stdout)


def add_agent(town: Town, name: str, command: list[str], *, provider: str | None = None,
              rig: str | None = "app", role: str = "worker", preset: str = "command") -> None:
    """Add ``[agents.NAME]`` to the town's configuration."""
    append_table(town.config_path, f"agents.{name}",
                 {"rig": rig, "role": role, "preset": preset, "command": command,
                  "provider": provider})
    town.reload()


def sleeper() -> list[str]:
    """An agent program that stays alive and does nothing (for hook/session tests)."""
    return [sys.executable, "-c", "import time; time.sleep(300)"]


def wait_for(pred: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1,
             what: str = "condition") -> Any:
    """Poll ``pred`` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def teardown_town(town: Town) -> None:
    """Kill the town's tmux server and every headless session it started."""
    TmuxProvider(town.gt_dir).kill_server()
    sub = SubprocessProvider(town.gt_dir)
    for name in sub.sessions():
        sub.stop(name, grace=0.5)
