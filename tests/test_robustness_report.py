"""``benchmarks/robustness.py`` and the counts the harnesses report to it.

A stand-in harness (a real test module run by a real pytest) reports counts: the
script must sum them into its table and JSON, and exit 1 as soon as anything is
lost, doubled, internal or partial, or a test failed -- never print a clean table
over a bad run.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from helpers.robustness_report import report

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "robustness.py"

STAND_IN = '''
import os
from helpers.robustness_report import report

def test_one():
    report("stand-in", cases=int(os.environ["N"]), kills=2, acked=5,
           lost=int(os.environ.get("LOST", "0")))

def test_two():
    report("stand-in", cases=1, doubled=0)
    assert os.environ.get("FAIL") != "1"
'''


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("robustness_script", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
         **env: str) -> tuple[int, str, dict]:
    mod = _script()
    test_file = tmp_path / "test_stand_in.py"
    test_file.write_text(STAND_IN)
    env = {"PYTHONPATH": str(Path(__file__).parent), **env}
    monkeypatch.setattr(mod, "HARNESSES", [mod.Harness(
        "stand-in", [str(test_file)], {"N": "40", **env}, quick_env={"N": "3", **env},
        repeat=1)])
    out = tmp_path / "r.json"
    code = mod.main(["--out", str(out)])
    return code, capsys.readouterr().out, json.loads(out.read_text())


def test_clean_run_sums_the_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    code, out, data = _run(tmp_path, monkeypatch, capsys)
    assert code == 0, out
    assert "| stand-in | 41 | 2 | 5 | 0 | 0 | 0 | 0 | 2 / 0 |" in out
    row = data["rows"][0]
    assert row["counts"]["cases"] == 41 and row["passed"] == 2 and len(row["runs"]) == 2


def test_a_lost_write_fails_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, data = _run(tmp_path, monkeypatch, capsys, LOST="3")
    assert code == 1
    assert "| stand-in | 41 | 2 | 5 | 3 |" in out
    assert data["rows"][0]["counts"]["lost"] == 3


def test_a_failed_test_fails_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(tmp_path, monkeypatch, capsys, FAIL="1")
    assert code == 1
    assert "| 1 / 1 |" in out  # the counts reported before the assertion still show


def test_report_appends_json_lines_and_refuses_unknown_counts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "counts.jsonl"
    monkeypatch.setenv("GASTOWN_ROBUSTNESS_REPORT", str(path))
    report("a", cases=3, lost=0)
    report("b", kills=1)
    assert [json.loads(ln) for ln in path.read_text().splitlines()] == [
        {"harness": "a", "cases": 3, "lost": 0}, {"harness": "b", "kills": 1}]
    assert "robustness a: cases=3 lost=0" in capsys.readouterr().out
    with pytest.raises(ValueError, match="losts"):
        report("c", losts=1)
