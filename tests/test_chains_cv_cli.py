"""``gt cv`` and ``gt match`` end to end: a real town, real ``bd`` processes, real records.

Work is done by agents' own ``bd`` processes (the ledger's hook writes the signed
records); people review it with ``gt chain review``; the two commands read it back.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.townkit import run_as

TOAST, NUX, ALICE = "rig1/polecat/toast", "rig1/polecat/nux", "alice"
E_TOAST = "entity://gt/alpha/rig1/polecat/toast"
E_NUX = "entity://gt/alpha/rig1/polecat/nux"


run = run_as


def create(root: Path, title: str, label: str) -> str:
    out = run(root, "bd", "create", title, "-l", label, "--json", actor=ALICE)
    return str(json.loads(out.stdout)["id"])


def work(root: Path, who: str, title: str, label: str) -> str:
    bead = create(root, title, label)
    run(root, "bd", "update", bead, "--claim", actor=who)
    run(root, "bd", "close", bead, actor=who)
    return bead


@pytest.fixture(scope="module")
def town(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """toast does frontend work (one piece rejected), nux database work (approved)."""
    base = tmp_path_factory.mktemp("cvtown")
    run(base, "gt", "init", "town", "--name", "alpha")
    root = base / "town"
    beads = {
        "navbar": work(root, TOAST, "Add navbar component", "frontend"),
        "modal": work(root, TOAST, "Fix modal css on mobile", "frontend"),
        "index": work(root, NUX, "Add index migration for orders", "database"),
        "schema": work(root, NUX, "Schema migration for invoices", "database"),
    }
    run(root, "gt", "chain", "review", beads["navbar"], "approve", "--note", "looks right",
        actor=ALICE)
    run(root, "gt", "chain", "review", beads["modal"], "reject", "--note", "breaks ios",
        actor=ALICE)
    for key in ("index", "schema"):
        run(root, "gt", "chain", "review", beads[key], "approve", "--note", "ok", actor=ALICE)
    return root, beads


def test_gt_cv_shows_work_quality_skills_and_reputation(
        town: tuple[Path, dict[str, str]]) -> None:
    root, beads = town
    cv = json.loads(run(root, "gt", "cv", TOAST, "--json").stdout)
    assert cv["entity"] == E_TOAST
    assert cv["counts"] == {"claimed": 2, "completed": 2}
    assert cv["judged"] == {"validated": 1, "rejected": 1, "reopened": 0}
    q = cv["quality"]
    assert (q["submitted"], q["accepted"], q["acceptance_rate"]) == (2, 1, 0.5)
    assert q["revisions_per_completion"] == 0.5
    assert q["review_outcomes"] == {"approved": 1, "rejected": 1}
    assert {w["bead"]: w["outcome"] for w in cv["work"]} == {
        beads["navbar"]: "validated", beads["modal"]: "rejected"}
    top = cv["skills"][0]
    assert top["term"] == "label:frontend"
    assert {e["bead"] for e in top["evidence"]} == {beads["navbar"], beads["modal"]}
    rep = cv["reputation"]
    assert [h["why"].split(":")[0] for h in rep["history"]][-2:] == [
        f"{beads['navbar']} validated by entity", f"{beads['modal']} rejected by entity"]
    # 1 + 1 - 2, the penalty barely faded yet: about 0
    assert [h["value"] for h in rep["history"]][-2] == 2.0 and rep["value"] < 0.01
    # the same CV addressed by its entity URI, as text
    text = run(root, "gt", "cv", E_TOAST, "--history", "1").stdout
    assert f"CV of {E_TOAST}" in text and "acceptance:  50% (1 of 2 submitted" in text
    assert "label:frontend" in text and text.count("rejected by") == 1


def test_gt_match_ranks_the_one_who_did_such_work_first(
        town: tuple[Path, dict[str, str]]) -> None:
    root, beads = town
    front = create(root, "Navbar dropdown on mobile", "frontend")
    data = json.loads(run(root, "gt", "match", front, "--json").stdout)
    assert data["bead"] == front and data["work"]["title"] == "Navbar dropdown on mobile"
    ranked = data["candidates"]
    assert [r["entity"] for r in ranked][:2] == [E_TOAST, E_NUX]
    evidence = {b["bead"] for e in ranked[0]["evidence"] for b in e["beads"]}
    assert beads["navbar"] in evidence
    db = create(root, "Migration: partition the orders table", "database")
    ranked = json.loads(run(root, "gt", "match", db, "--json", "--top", "1").stdout)
    assert [r["entity"] for r in ranked["candidates"]] == [E_NUX]
    text = run(root, "gt", "match", db).stdout
    assert text.splitlines()[1].startswith(f"  1. {E_NUX}  score")


def test_mistakes_get_one_line_and_a_stable_exit(town: tuple[Path, dict[str, str]]) -> None:
    root, _ = town
    cases = [(("gt", "cv", "rig1/polecat/nobody"), 3, "no chain records by or about"),
             (("gt", "match", "zzz-nope"), 3, "zzz-nope"),
             (("gt", "match", "x", "--top", "-1"), 2, "invalid count"),
             (("gt", "cv", "entity://gt/alpha/\x1b[2Jx"), 3, "no chain records")]
    for argv, code, text in cases:
        proc = run(root, *argv, check=False)
        assert proc.returncode == code, (argv, proc.stderr)
        assert text in proc.stderr and "Traceback" not in proc.stderr
        assert "\x1b" not in proc.stderr


def test_a_town_without_chains_says_so(tmp_path: Path) -> None:
    run(tmp_path, "gt", "init", "town", "--name", "beta", "--no-chains")
    root = tmp_path / "town"
    for argv in (("gt", "cv", "someone"), ("gt", "match", create(root, "x", "y"))):
        proc = run(root, *argv, check=False)
        assert proc.returncode == 5 and "Traceback" not in proc.stderr
        assert proc.stderr.strip().endswith("enable them with 'gt chain enable'")


def test_an_exported_cv_reads_the_same_in_an_empty_directory(
        town: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    root, _ = town
    home = json.loads(run(root, "gt", "cv", TOAST, "--json").stdout)
    path = tmp_path / "toast.cv.json"
    run(root, "gt", "chain", "export", TOAST, "-o", str(path))
    away = tmp_path / "elsewhere"
    away.mkdir()
    cv = json.loads(run(away, "gt", "cv", "--file", str(path), "--json").stdout)
    assert cv["verified"]["ok"] and cv["verified"]["judgements"] == 2
    for key in ("entity", "counts", "judged", "quality", "work"):
        assert cv[key] == home[key], key
    assert [h["why"] for h in cv["reputation"]["history"]] == \
        [h["why"] for h in home["reputation"]["history"]]
    text = run(away, "gt", "cv", "--file", str(path)).stdout
    assert "verified: 4 records and 2 judgements" in text
    # altered: refused before anything is summarized; another entity named: refused
    path.write_text(path.read_text().replace("Fix modal css", "Fix modal CSS"))
    proc = run(away, "gt", "cv", "--file", str(path), check=False)
    assert proc.returncode == 5 and "not in the town's signed log" in proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    run(root, "gt", "chain", "export", TOAST, "-o", str(path))
    proc = run(away, "gt", "cv", NUX, "--file", str(path), check=False)
    assert proc.returncode == 5 and "not of 'rig1/polecat/nux'" in proc.stderr
    proc = run(away, "gt", "cv", check=False)
    assert proc.returncode == 2 and "name an ENTITY" in proc.stderr


def test_the_text_form_shows_the_last_twenty_history_entries() -> None:
    from cv_history import agent, specialised
    from gastown.chains.cv import summarize
    from gastown.cli.gt_cv import TEXT_HISTORY, _cv_text

    cv = summarize(specialised(seed=3, per_agent=15).records, agent("sql"))
    total = len(cv["reputation"]["history"])
    assert total > TEXT_HISTORY
    text = _cv_text(cv)
    assert f"(the last {TEXT_HISTORY}; {total - TEXT_HISTORY} earlier in --json)" in text
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("  reputation history:"))
    assert len([ln for ln in lines[start + 1:] if ln.startswith("    20")]) == TEXT_HISTORY
