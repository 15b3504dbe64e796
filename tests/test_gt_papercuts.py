"""Small things a person meets first: ``gt config show``, ``gt --help``, the README."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from agents.controlkit import make_town, session_env  # noqa: F401 - a fixture
from agents.townkit import BIN, clean_env, gt, gt_json

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.usefixtures("session_env")
def test_config_show_names_each_rigs_test_push_and_land(tmp_path: Path) -> None:
    test = [sys.executable, "-m", "pytest", "-q", "tests dir"]
    town = make_town(tmp_path, test=test, push=True)
    config = Path(town.config_path)
    config.write_text(config.read_text().replace(
        "[rigs.textkit]\n", '[rigs.textkit]\nland = ["make", "land", "BRANCH={branch}"]\n', 1))
    text = gt(town, "config", "show").stdout
    assert f"test: {shlex.join(test)}" in text
    assert "push: yes" in text
    assert "land: make land 'BRANCH={branch}'" in text
    rig = gt_json(town, "config", "show")["rigs"]["textkit"]
    assert rig["test"] == test and rig["push"] is True and rig["land"][0] == "make"


@pytest.mark.usefixtures("session_env")
def test_config_show_says_what_a_rig_without_them_does(tmp_path: Path) -> None:
    town = make_town(tmp_path, test=[], push=False)
    text = gt(town, "config", "show").stdout
    assert "test: (none: lands without testing)" in text
    assert "push: no" in text and "land: (fast-forward)" in text


def test_gt_help_lists_gt_bd_and_gt_bd_takes_the_global_options(tmp_path: Path) -> None:
    env = clean_env()
    help_text = subprocess.run([str(BIN / "gt"), "--help"], capture_output=True, text=True,
                               env=env, check=True).stdout
    assert re.search(r"^\s+bd\s+the ledger commands of bd", help_text, re.MULTILINE), help_text
    subprocess.run([str(BIN / "bd"), "init", "--prefix", "pc"], cwd=tmp_path, env=env,
                   check=True, capture_output=True)
    subprocess.run([str(BIN / "bd"), "create", "from bd"], cwd=tmp_path, env=env, check=True,
                   capture_output=True)
    proc = subprocess.run([str(BIN / "gt"), "--json", "bd", "list"], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert [b["title"] for b in __import__("json").loads(proc.stdout)] == ["from bd"]


def test_gt_bd_reaches_the_ledger_of_the_town_named_by_town(tmp_path: Path) -> None:
    env = clean_env()
    town = tmp_path / "town"
    subprocess.run([str(BIN / "gt"), "init", str(town), "--prefix", "tw"], env=env,
                   check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for argv in (["--town", str(town), "bd", "create", "first"],
                 ["bd", "--town", str(town), "create", "second"],
                 [f"--town={town}", "bd", "create", "third"]):
        proc = subprocess.run([str(BIN / "gt"), *argv], cwd=elsewhere, env=env,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    listed = subprocess.run([str(BIN / "gt"), "--town", str(town), "--json", "bd", "list"],
                            cwd=elsewhere, env=env, capture_output=True, text=True)
    assert sorted(b["title"] for b in __import__("json").loads(listed.stdout)) == [
        "first", "second", "third"]
    assert not (elsewhere / ".beads").exists()


def test_the_readme_says_how_to_put_bd_and_gt_on_path() -> None:
    readme = (ROOT / "README.md").read_text()
    assert 'export PATH="$PWD/.venv/bin:$PATH"' in readme
    assert "source .venv/bin/activate" in readme


def test_documentation_links_only_to_files_inside_the_repository() -> None:
    for doc in (ROOT / "README.md", ROOT / "docs" / "design.md"):
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
            if re.match(r"[a-z]+://|#|mailto:", target):
                continue
            path = (doc.parent / target.split("#")[0]).resolve()
            assert path.is_relative_to(ROOT), f"{doc.name} links outside the repository: {target}"
            assert path.exists(), f"{doc.name} links to a missing file: {target}"
    assert "](docs/design.md)" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize("argv", [
    ["feed", "--once", "--interval", "0"], ["events", "--follow", "--interval", "nan"],
    ["events", "--follow", "--interval", "-1"], ["down", "--timeout", "inf"],
    ["up", "--wait", "1e400"]])
def test_seconds_options_refuse_what_would_spin_or_never_end(tmp_path: Path,
                                                            argv: list[str]) -> None:
    """A 0 interval spins; nan/inf never compare true with a deadline: one line, exit 2."""
    gt(tmp_path, "init", str(tmp_path / "t"))
    proc = gt(tmp_path / "t", *argv, check=False, timeout=20)
    assert proc.returncode == 2, proc
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "invalid seconds" in err[0], proc.stderr
