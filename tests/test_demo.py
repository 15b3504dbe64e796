"""``gt demo``, end to end, exactly as ``./run demo`` runs it (a separate process)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agents.townkit import BIN, clean_env, git
from gastown.town.core import Town
from gastown.town.providers import TmuxProvider
from gastown.town.providers.tmux import socket_path


def _demo(*args: str, tmp: Path) -> tuple[subprocess.CompletedProcess[str], dict]:
    env = clean_env(TMPDIR=str(tmp))
    proc = subprocess.run([str(BIN / "gt"), "demo", "--json", *args], capture_output=True,
                          text=True, env=env, timeout=240, check=False, cwd=tmp)
    lines = proc.stdout.strip().splitlines()
    assert lines, f"no output; stderr:\n{proc.stderr[-4000:]}"
    return proc, json.loads(lines[-1])


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_gt_demo_lands_two_features_and_a_fix_with_zero_model_sessions(tmp_path: Path) -> None:
    proc, s = _demo("--keep", tmp=tmp_path)
    try:
        assert proc.returncode == 0, proc.stderr[-4000:]
        assert len(proc.stdout.strip().splitlines()) == 1, "with --json stdout is the summary"
        assert s["ok"] and s["kept"] and s["provider"] == "tmux"
        assert {"town", "sample_repo", "merged", "steps_closed", "agents", "seconds"} <= set(s)
        assert s["merged"] == 3 and s["steps_closed"] == 5 + 5 + 4
        assert s["model_sessions"] == 0 and s["sessions"] >= 3
        assert s["convoys_landed"] == 1 and s["sample_tests"] == "pass"
        lat = s["dispatch_latency_ms"]
        assert lat["n"] == s["steps_closed"] and lat["p95"] < 1000, lat
        assert {a: v["merges"] for a, v in s["agents"].items()} == {"ada": 1, "bo": 1, "cy": 1}
        assert sum(v["steps"] for v in s["agents"].values()) == s["steps_closed"]
        # every agent's chain holds its completed and validated work, and all of it verifies
        assert s["chains"]["ok"] and s["chains"]["records"] > s["steps_closed"], s["chains"]
        for name, v in s["agents"].items():
            assert v["completed"] >= v["steps"] and v["validated"] >= 1, (name, v)
        check = subprocess.run([str(Path(sys.executable).parent / "gt"), "chain", "verify",
                                "--town", s["town"], "--json"], capture_output=True, text=True)
        assert check.returncode == 0 and json.loads(check.stdout)["ok"], check.stderr
        sample = Path(s["sample_repo"])
        files = git(sample, "ls-tree", "-r", "--name-only", "main").split()
        assert {"textkit/slugify.py", "textkit/frequencies.py", "tests/test_title_case.py",
                "tests/test_slugify.py", "tests/test_frequencies.py"} <= set(files)
        fixed = subprocess.run([sys.executable, "-c", "from textkit.words import title_case; "
                                "print(title_case(\"don't stop\"))"], cwd=sample,
                               capture_output=True, text=True, check=True).stdout.strip()
        assert fixed == "Don't Stop", "the quick-fix landed in the sample's checkout"
        authors = set(git(sample, "log", "--format=%an", "main").splitlines())
        assert authors == {"textkit/worker/ada", "textkit/worker/bo", "textkit/worker/cy",
                           "textkit maintainer"}, "every change is attributed to its agent"
        town = Town(s["town"])
        assert Path(town.config_path).exists(), "--keep leaves the town"
        assert not os.path.exists(socket_path(town.gt_dir)) or \
            not TmuxProvider(town.gt_dir).sessions(), "no session left running"
        from gastown.controller.service import is_running

        assert not is_running(town), "the controller is down again"
    finally:
        shutil.rmtree(Path(s["town"]).parent, ignore_errors=True)


def test_gt_demo_headless_cleans_up_after_itself(tmp_path: Path) -> None:
    proc, s = _demo("--provider", "subprocess", tmp=tmp_path)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert s["ok"] and s["merged"] == 3 and s["provider"] == "subprocess"
    assert not Path(s["town"]).exists() and not Path(s["sample_repo"]).exists()
    assert list(tmp_path.iterdir()) == [], "nothing left in the temporary directory"


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_gt_demo_passes_in_a_users_clean_environment(tmp_path: Path) -> None:
    """As a user runs it: no USER, no git identity, bytecode writing on (env -i style)."""
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
           "TMPDIR": str(tmp_path)}
    assert "PYTHONDONTWRITEBYTECODE" not in env
    proc = subprocess.run([str(BIN / "gt"), "demo", "--json", "--keep"], capture_output=True,
                          text=True, env=env, timeout=240, check=False, cwd=tmp_path)
    lines = proc.stdout.strip().splitlines()
    assert lines, proc.stderr[-4000:]
    s = json.loads(lines[-1])
    try:
        assert proc.returncode == 0 and s["ok"], (s, proc.stderr[-4000:])
        assert s["merged"] == 3 and s["sample_tests"] == "pass"
        sample = Path(s["sample_repo"])
        tracked = git(sample, "ls-tree", "-r", "--name-only", "main").split()
        assert not [f for f in tracked if "__pycache__" in f or f.endswith(".pyc")], tracked
        assert any(sample.rglob("*.pyc")), "the tests really wrote bytecode"
    finally:
        shutil.rmtree(Path(s["town"]).parent, ignore_errors=True)


def test_gt_demo_fails_fast_and_names_what_was_sent_back() -> None:
    """Agents whose branches conflict: the demo stops within seconds and says why."""
    from gastown.demo.run import render_summary, run_demo

    said: list[str] = []
    s = run_demo(say=said.append, timeout=200, provider="subprocess",
                 agent_args=["--scribble", "NOTES.txt"])
    assert not s["ok"]
    assert s["merged"] == 1, s
    assert s["seconds"] < 90, f"waited for the timeout instead of stopping: {s['seconds']}s"
    backs = s["sent_back"]
    assert len(backs) == 2 and {b["why"] for b in backs} == {"conflict"}, backs
    assert all("NOTES.txt" in b["files"] for b in backs), backs
    text = render_summary(s)
    assert "FAILED" in text and "sent back" in text and "NOTES.txt" in text
    assert all(b["request"] in text for b in backs)
