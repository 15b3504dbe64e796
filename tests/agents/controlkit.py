"""Helpers of the controller tests: a town over the demo's sample repository.

The agents are :mod:`gastown.demo.agent` (scripted, no model): after every step
they wait for the controller's nudge, so a town makes progress only as fast as
its controller dispatches.  Every town made here is torn down completely: its
controller stopped, its tmux server killed, its headless sessions stopped.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from agents.townkit import EMAIL, LEAKY, teardown_town, wait_for
from gastown import Ledger
from gastown.controller.service import down, up
from gastown.demo.sample import TEST_ARGS, write_sample
from gastown.town.config import append_table
from gastown.town.core import Town, init_town
from gastown.town.rigs import add_rig

RIG = "textkit"


def agent_cmd(*extra: str) -> list[str]:
    """The demo agent's command line (``--once``; extra options appended)."""
    return [sys.executable, "-m", "gastown.demo.agent", "--once", *extra]


def make_town(tmp: Path, *, provider: str = "tmux", agents: dict[str, list[str]] | None = None,
              test: list[str] | None = None, extra_toml: str = "", push: bool = True) -> Town:
    """A town over a fresh sample repository (rig ``textkit``) with the given agents."""
    sample = write_sample(str(tmp / "sample"))
    town = init_town(str(tmp / "town"), name="t", prefix="t", provider=provider, email=EMAIL,
                     actor="tester")
    add_rig(town, RIG, sample, actor="tester")
    test_cmd = test if test is not None else [sys.executable, *TEST_ARGS]
    text = Path(town.config_path).read_text()
    rig_keys = f"push = {'true' if push else 'false'}\n"
    if test_cmd:
        rig_keys += f"test = {json.dumps(shlex.join(test_cmd))}\n"
    text = text.replace(f"[rigs.{RIG}]\n", f"[rigs.{RIG}]\n{rig_keys}", 1)
    Path(town.config_path).write_text(text + "\n" + extra_toml + "\n")
    for name, command in (agents or {}).items():
        append_table(town.config_path, f"agents.{name}",
                     {"rig": RIG, "role": "worker", "preset": "command", "command": command})
    town.reload()
    return town


@pytest.fixture
def session_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No session identity leaks in from the environment; this process acts as ``tester``."""
    for var in LEAKY:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("BD_ACTOR", "tester")


@contextmanager
def running(town: Town) -> Iterator[Town]:
    """The town with its controller up; everything stopped afterwards."""
    try:
        up(town)
        yield town
    finally:
        try:
            down(town, timeout=10)
        finally:
            teardown_town(town)


def ledger(town: Town) -> Ledger:
    """The town ledger, opened as the test."""
    return Ledger.open(town.db_url(), actor="tester")


def events(town: Town, *types: str) -> list[dict[str, Any]]:
    """The town's events (of the given types)."""
    with ledger(town) as led:
        return led.events(types=list(types))


def wait_events(town: Town, kind: str, n: int = 1, timeout: float = 60.0,
                where: Any = None) -> list[dict[str, Any]]:
    """Wait until at least ``n`` events of ``kind`` (matching ``where``) exist."""
    def found() -> list[dict[str, Any]] | None:
        evs = [e for e in events(town, kind) if where is None or where(e)]
        return evs if len(evs) >= n else None

    try:
        result: list[dict[str, Any]] = wait_for(found, timeout, 0.1,
                                                what=f"{n} x {kind} event(s)")
        return result
    except AssertionError:
        raise AssertionError(f"timed out waiting for {n} x {kind}:\n{logs(town)}") from None


def logs(town: Town) -> str:
    """The tails of every log of the town (for failure messages)."""
    out = []
    for path in sorted(Path(town.gt_dir, "logs").glob("*.log")):
        out.append(f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace")
                                                      .splitlines()[-15:]))
    return "\n".join(out)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pause(seconds: float) -> None:
    """Let the controller work (named, so tests read as what they wait for)."""
    time.sleep(seconds)


__all__ = ["RIG", "agent_cmd", "make_town", "running", "ledger", "events", "wait_events",
           "logs", "cpu_seconds", "pause", "teardown_town", "session_env"]
