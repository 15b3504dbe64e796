"""Real towns for the federation tests, driven through the installed ``gt``/``bd``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from agents.townkit import BIN, clean_env


def run(cwd: Path, prog: str, *args: str, rc: int = 0) -> subprocess.CompletedProcess[str]:
    """Run ``gt``/``bd`` in ``cwd``; check its exit status."""
    proc = subprocess.run([str(BIN / prog), *args], cwd=cwd, env=clean_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == rc, (prog, args, proc.returncode, proc.stdout, proc.stderr)
    return proc


def js(cwd: Path, prog: str, *args: str) -> Any:
    """``run`` with ``--json``; the parsed output."""
    return json.loads(run(cwd, prog, *args, "--json").stdout)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed command (no traceback)."""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def make_town(root: Path, name: str, owner: str, federation: str = "") -> Path:
    """``gt init NAME --owner OWNER`` under ``root``; ``federation`` goes in ``[federation]``."""
    run(root, "gt", "init", name, "--owner", owner, "--name", name, "--provider", "subprocess",
        "--email", f"agents@{name}.test")
    town = root / name
    if federation:
        with open(town / "town.toml", "a", encoding="utf-8") as fh:
            fh.write(f"\n[federation]\n{federation}\n")
    return town


def publishing_town(root: Path, name: str, extra: str = "") -> Path:
    """Town ``NAME`` owned by ``NAME.com``, publishing everything to ``root/NAME-log``."""
    return make_town(root, name, f"{name}.com",
                     f'publish = "all"\npublish_to = ["{root / (name + "-log")}"]\n{extra}')


def bead(town: Path, title: str, *extra: str) -> str:
    """``bd q TITLE``: the new bead's id."""
    return run(town, "bd", "q", title, *extra).stdout.strip()
