"""The official beads MCP server (beads-mcp 1.3.2 from PyPI, unmodified) on our ``bd``.

beads-mcp is installed into its own cached virtual environment together with the
official ``mcp`` client; a driver script (tests/helpers/beads_mcp_driver.py) runs
there, starts the server over stdio with our ``bd`` first on ``PATH`` and calls
every tool and reads every resource.  The test is skipped only when PyPI cannot
be reached to build that environment.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BD = str(Path(sys.executable).parent / "bd")
DRIVER = ROOT / "tests" / "helpers" / "beads_mcp_driver.py"
BEADS_MCP = "1.3.2"
CACHE = Path(os.environ.get("GASTOWN_TEST_CACHE") or Path.home() / ".cache" / "gastown-test")
VENV = CACHE / "beads-mcp-venv"
_NETWORK_SIGNS = ("Could not find a version", "No matching distribution",
                  "Failed to establish a new connection", "Temporary failure in name resolution",
                  "Network is unreachable", "ConnectionError", "Max retries exceeded")


def _venv_ok(python: Path) -> bool:
    if not python.exists():
        return False
    probe = ("import importlib.metadata as m, mcp, beads_mcp; "
             f"assert m.version('beads-mcp') == {BEADS_MCP!r}")
    return subprocess.run([str(python), "-c", probe], capture_output=True,
                          timeout=120).returncode == 0


def beads_mcp_python() -> Path:
    """The Python of a virtual environment with beads-mcp==1.3.2 and mcp (built once)."""
    python = VENV / "bin" / "python"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "beads-mcp-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time
        if _venv_ok(python):
            return python
        build = CACHE / f"beads-mcp-venv.build-{os.getpid()}"
        shutil.rmtree(build, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(build)], check=True, timeout=300)
        pip = subprocess.run([str(build / "bin" / "python"), "-m", "pip", "install", "-q",
                              "--disable-pip-version-check", f"beads-mcp=={BEADS_MCP}", "mcp"],
                             capture_output=True, text=True, timeout=900)
        if pip.returncode != 0:
            shutil.rmtree(build, ignore_errors=True)
            if any(sign in pip.stderr for sign in _NETWORK_SIGNS):
                pytest.skip(f"PyPI cannot be reached to install beads-mcp=={BEADS_MCP}: "
                            f"{pip.stderr.strip().splitlines()[-1]}")
            raise AssertionError(f"installing beads-mcp failed: {pip.stderr}")
        shutil.rmtree(VENV, ignore_errors=True)
        os.replace(build, VENV)
    assert _venv_ok(python)
    return python


@pytest.fixture(scope="module")
def mcp_python() -> Path:
    return beads_mcp_python()


def bd(cwd: Path, *args: str) -> str:
    env = {**os.environ, "BD_ACTOR": "tester"}
    for key in ("BD_DB", "BEADS_DB", "BEADS_DIR"):
        env.pop(key, None)
    proc = subprocess.run([BD, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, (args, proc.stderr)
    return proc.stdout


def drive(python: Path, ws: Path, ws2: Path, calls: list[list[Any]] | None = None,
          tmp: Path | None = None) -> dict[str, Any]:
    """Run the driver in the beads-mcp environment and return its report."""
    args = [str(python), str(DRIVER), str(ws), BD]
    if calls is not None:
        assert tmp is not None
        (tmp / "calls.json").write_text(json.dumps(calls))
        args.append(str(tmp / "calls.json"))
    env = {**os.environ, "BEADS_DRIVER_WS2": str(ws2)}
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def res(call: dict[str, Any]) -> Any:
    """A call's result, unwrapped from FastMCP's ``{"result": …}`` envelope."""
    r = call["result"]
    return r["result"] if isinstance(r, dict) and set(r) == {"result"} else r


def _workspaces(tmp_path: Path) -> tuple[Path, Path]:
    ws, ws2 = tmp_path / "ws", tmp_path / "ws2"
    for d in (ws, ws2):
        d.mkdir()
        subprocess.run(["git", "init", "-q", str(d)], check=True)
    bd(ws, "init", "--prefix", "mcp", "-q")
    return ws, ws2


def test_every_beads_mcp_tool_and_resource_works(mcp_python: Path, tmp_path: Path) -> None:
    ws, ws2 = _workspaces(tmp_path)
    report = drive(mcp_python, ws, ws2)
    failed = [c for c in report["calls"] if not c["ok"]]
    assert not failed, json.dumps(failed, indent=1)[:4000]
    # every tool and resource the server offers was called
    called = {c["tool"] for c in report["calls"]}
    assert set(report["tools"]) <= called, set(report["tools"]) - called
    assert report["resources"] == ["beads://quickstart"]
    by: dict[str, list[Any]] = {}
    for c in report["calls"]:
        by.setdefault(c["tool"], []).append(c)
    assert "bd ready" in by["resource:beads://quickstart"][0]["result"]
    ids = [res(c)["id"] for c in by["create"]]
    design, build, idea, scratch = ids[:4]

    # ready: the three policies agree on the one unblocked P1 bead coming first
    for call in by["ready"]:
        assert res(call)[0]["id"] == design, call
    # show: dependencies come back as linked issues
    shown = res(by["show"][0])
    assert [d["id"] for d in shown["dependencies"]] == [design]
    assert shown["dependencies"][0]["dependency_type"] == "blocks"
    # blocked: the blocked bead, not the deferred one
    assert [b["id"] for b in res(by["blocked"][0])] == [build]
    # comments: string ids; note: appended to the notes
    comments = res(by["comments"][0])
    assert comments[0]["text"] == "Started on the form" and isinstance(comments[0]["id"], str)
    notes = json.loads(bd(ws, "show", design, "--json"))[0]["notes"]
    assert notes == "first notes\nremember the a11y labels"
    # stats: upstream's shape with the right counts
    summary = res(by["stats"][0])["summary"]
    assert (summary["total_issues"], summary["in_progress_issues"], summary["deferred_issues"],
            summary["blocked_issues"]) == (4, 1, 1, 1)
    assert res(by["stats"][1])["summary"]["closed_issues"] == 1
    assert "average_lead_time_hours" in summary
    # admin: validate, repair, schema, migration, pollution (found, then cleaned)
    admin = [res(c) for c in by["admin"]]
    assert admin[0]["overall_ok"] is False  # the test-like bead is reported
    assert admin[2] == {"orphans_found": 0, "orphans": []}
    assert admin[4]["schema"]["detected_prefix"] == "mcp"
    assert admin[6]["current_state"]["db_exists"] is True
    assert [p["id"] for p in admin[7]["issues"]] == [scratch]
    assert admin[8]["deleted"] == 1
    assert not any(b["id"] == scratch for b in json.loads(bd(ws, "list", "--all", "--json")))
    assert (ws / ".beads" / "pollution-backup.jsonl").read_text().count(scratch) == 1
    # context init made a second ledger, and create went there
    assert idea and (ws2 / ".beads" / "beads.db").exists()
    assert res(by["create"][-1])["id"].startswith("nw-")


def test_beads_mcp_reports_bd_errors_as_tool_errors(mcp_python: Path, tmp_path: Path) -> None:
    ws, ws2 = _workspaces(tmp_path)
    report = drive(mcp_python, ws, ws2, [["show", {"issue_id": "mcp-nope"}],
                                         ["close", {"issue_id": "mcp-nope"}],
                                         ["ready", {}]], tmp_path)
    show, close, ready = report["calls"][1:]
    assert not show["ok"] and "no issue found matching" in str(show["error"])
    assert not close["ok"] and "no issue found matching" in str(close["error"])
    assert ready["ok"] and res(ready) == []
