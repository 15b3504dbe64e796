"""The seed's commands, typed into the real ``bd`` console script.

Each test walks one part of the Molecular Chemistry seed using the commands the
seed shows, and checks the ``--json`` interfaces other tools rely on.  Where each
row of the seed's tables is exercised:

* phases (proto / mol / wisp) and the operators pour, wisp, squash (mol and
  wisp), burn: ``test_phase_table_pour_wisp_squash_burn``
* distill (and "experience crystallizes" back into a pourable proto):
  ``test_distill_round_trip_from_the_cli``
* bond: proto+proto, polymers, proto+mol, proto+wisp, ``--pour``/``--wisp``,
  mol+mol, wisp+wisp: ``test_bond_table_from_the_cli``; mol+wisp (cross-phase,
  reference only) and digest id stability: ``test_digest_id_stability``
* pin / hook / unpin: ``test_hooks_pin_unpin``
* epic → simple proto: ``tests/test_chemistry.py::test_distill_epic_with_var_placeholders``
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

SHARED_FORMULAS = Path(__file__).resolve().parent.parent.parent / "shared" / "formulas"


class Bd:
    """Runs ``bd`` in one directory with one environment."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd = cwd
        self.env = env

    def run(self, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["bd", *args], cwd=self.cwd, env=self.env, capture_output=True,
                              text=True, timeout=60)
        if ok and proc.returncode != 0:
            raise AssertionError(f"bd {' '.join(args)} failed ({proc.returncode}): "
                                 f"{proc.stderr}{proc.stdout}")
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def fail(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = self.run(*args, ok=False)
        assert proc.returncode != 0, proc.stdout
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1, proc.stderr  # one line, never a traceback
        return proc


@pytest.fixture
def bd(tmp_path: Path, bd_env: dict[str, str]) -> Bd:
    env = dict(bd_env)
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")  # no user formulas leak in
    env.pop("GT_TOWN", None)
    env.pop("GT_FORMULA_PATH", None)
    b = Bd(tmp_path, env)
    b.run("init", "--prefix", "bd")
    return b


def ready(bd: Bd, root: str) -> list[str]:
    return sorted(b["id"] for b in bd.json("ready", "--mol", root, "-n", "0"))


def test_cook_json_interface(bd: Bd) -> None:
    view = bd.json("cook", str(SHARED_FORMULAS / "shiny.formula.toml"))
    assert view["id"] == "shiny"
    assert [(s["id"], s["title"], s["needs"]) for s in view["steps"]][:2] == [
        ("shiny.design", "Design {{feature}}", []),
        ("shiny.implement", "Implement {{feature}}", ["shiny.design"])]
    with_var = bd.json("cook", str(SHARED_FORMULAS / "shiny.formula.toml"),
                       "--var", "feature=auth")
    assert with_var["steps"][0]["title"] == "Design auth"
    # a name on the search path works too (the shipped library)
    lib = bd.json("cook", "engineer-in-box")
    assert lib["id"] == "mol-engineer-in-box" and len(lib["steps"]) == 5
    assert lib["steps"][4]["needs"] == ["mol-engineer-in-box.test"]


def test_every_shared_formula_cooks_from_the_cli(bd: Bd) -> None:
    for path in sorted(SHARED_FORMULAS.iterdir()):
        view = bd.json("cook", str(path))
        assert view["steps"] and all(s["id"].startswith(view["id"] + ".") for s in view["steps"])
        out = bd.run("formula", "validate", str(path)).stdout
        assert out.startswith("✓")


def test_phase_table_pour_wisp_squash_burn(bd: Bd) -> None:
    """Proto (solid) → pour → mol (liquid) → squash → digest; proto → wisp (vapor) → burn."""
    bd.run("cook", "mol-engineer-in-box")
    protos = bd.json("mol", "list", "--protos")
    assert any(p["id"] == "mol-engineer-in-box" and p["stored"] for p in protos)
    assert {"mol-quick-fix", "mol-research", "mol-agent-work", "mol-patrol"} <= {
        p["id"] for p in protos}
    # pour: solid → liquid (with --var, the seed's `bd pour mol-feature --var version=1.0`)
    root = bd.json("pour", "mol-engineer-in-box", "--var", "feature=auth")
    rid = root["id"]
    assert root["issue_type"] == "molecule" and root["phase"] == "liquid"
    assert [s["id"] for s in root["steps"]] == [f"{rid}.{n}" for n in range(1, 6)]
    assert ready(bd, rid) == [f"{rid}.1"]
    # the seed's lifecycle: update → close, step by step
    for n in range(1, 6):
        bd.run("update", f"{rid}.{n}", "--status=in_progress")
        bd.run("close", f"{rid}.{n}")
        if n < 5:
            assert ready(bd, rid) == [f"{rid}.{n + 1}"]
    assert bd.json("show", rid)[0]["status"] == "closed"  # the root closed with its last step
    digest = bd.json("mol", "squash", rid, "--summary=Implemented auth feature")
    assert digest["id"] == rid and "digest" in digest["labels"]
    assert bd.json("mol", "squash", rid)["id"] == rid  # twice: still one digest
    # wisp: solid → vapor, then burn: vapor → nothing
    wisp = bd.json("wisp", "mol-patrol")
    wid = wisp["id"]
    assert wisp["ephemeral"] is True and wisp["phase"] == "vapor"
    assert len(ready(bd, wid)) == 3
    assert bd.json("ready", "-n", "0") == []  # vapor never shows up as ordinary work
    bd.run("export")
    jsonl = (bd.cwd / ".beads" / "issues.jsonl").read_text()
    assert wid not in jsonl and rid in jsonl
    burned = bd.json("mol", "burn", wid)
    assert burned["burned"] is True and wid in burned["deleted"]
    assert bd.json("mol", "burn", wid)["burned"] is False  # already gone: no-op
    bd.fail("show", wid)


def test_digest_id_stability(bd: Bd) -> None:
    """Seed: wisp → reference → squash → the reference points to the digest."""
    wid = bd.json("wisp", "mol-patrol")["id"]
    mid = bd.json("pour", "mol-quick-fix", "--var", "issue=bd-1")["id"]
    link = bd.json("mol", "bond", mid, wid)
    assert link["result_type"] == "reference_link"
    digest = bd.json("mol", "squash", wid, "--summary", "Patrol complete, no issues")
    assert digest["id"] == wid and not digest.get("ephemeral")
    edges = bd.json("show", wid)[0]["dependencies"]
    linked = [e for e in edges if e["depends_on_id"] == mid]
    assert linked and linked[0]["type"] == "related"  # the reference survived the squash


def test_bond_table_from_the_cli(bd: Bd) -> None:
    # proto + proto → compound proto, and polymers of compounds
    bd.run("cook", "mol-quick-fix")
    bd.run("cook", "mol-research")
    comp = bd.json("mol", "bond", "mol-quick-fix", "mol-research", "--as", "Fix and Study")
    assert comp["result_type"] == "compound_proto" and comp["result_id"] == "mol-fix-and-study"
    poly = bd.json("mol", "bond", "mol-fix-and-study", "mol-patrol", "--as", "Everything",
                   "--type", "parallel")
    assert poly["steps"] == 4 + 5 + 6
    root = bd.json("pour", "mol-everything", "--var", "issue=bd-9", "--var", "question=why")
    assert len(root["steps"]) == 4 + 5 + 5  # the patrol's deep check is conditional (off)
    # proto + mol → spawn and attach (liquid, follows the target)
    mid = bd.json("pour", "mol-quick-fix", "--var", "issue=bd-2")["id"]
    att = bd.json("mol", "bond", "mol-research", mid, "--var", "question=q", "--var",
                  "issue=bd-2")
    assert att["result_type"] == "compound_molecule" and att["attached"] == f"{mid}.5"
    # proto + wisp → spawn as vapor; --pour forces liquid (reference only)
    wid = bd.json("wisp", "mol-patrol")["id"]
    vap = bd.json("mol", "bond", "mol-quick-fix", wid, "--var", "issue=bd-3")
    assert vap["result_type"] == "compound_wisp" and vap["phase"] == "vapor"
    forced = bd.json("mol", "bond", "mol-quick-fix", wid, "--var", "issue=bd-4", "--pour")
    assert forced["result_type"] == "reference_link" and forced["phase"] == "liquid"
    # mol + mol → compound mol; wisp + wisp → compound wisp
    m2 = bd.json("pour", "mol-quick-fix", "--var", "issue=bd-5")["id"]
    assert bd.json("mol", "bond", mid, m2)["result_type"] == "compound_molecule"
    assert ready(bd, m2) == []
    w2 = bd.json("wisp", "mol-patrol")["id"]
    assert bd.json("mol", "bond", wid, w2)["result_type"] == "compound_wisp"
    bd.fail("mol", "bond", wid, w2, "--pour", "--wisp")


def test_distill_round_trip_from_the_cli(bd: Bd) -> None:
    rid = bd.json("pour", str(SHARED_FORMULAS / "shiny-enterprise.formula.toml"),
                  "--var", "feature=auth")["id"]
    out = bd.cwd / "distilled.formula.toml"
    info = bd.json("mol", "distill", rid, "-o", str(out), "--var", "feature=auth",
                   "--as", "Shiny Again")
    assert info["formula"] == "mol-shiny-again" and info["steps"] == 9
    data = tomllib.loads(out.read_text())
    assert data["steps"][0]["title"] == "Design {{feature}}"
    original = bd.json("cook", str(SHARED_FORMULAS / "shiny-enterprise.formula.toml"))
    again = bd.json("cook", str(out))

    def shape(view: dict[str, Any]) -> list[tuple[str, list[str]]]:
        cut = len(view["id"]) + 1
        return [(s["id"][cut:], [n[cut:] for n in s["needs"]]) for s in view["steps"]]

    assert shape(again) == shape(original)
    assert again["steps"][0]["title"] == original["steps"][0]["title"]
    bd.fail("mol", "distill", rid, "-o", str(out))  # no silent overwrite
    unwritable = bd.fail("mol", "distill", rid, "-o", str(out / "under-a-file.formula.toml"))
    assert unwritable.returncode == 2 and "cannot write" in unwritable.stderr, unwritable.stderr
    # the default destination is on the search path: pour it by name
    bd.run("mol", "distill", rid, "--var", "feature=auth", "--as", "Release Workflow")
    again_root = bd.json("pour", "mol-release-workflow", "--var", "feature=billing")
    assert again_root["steps"][0]["title"] == "Design billing"


def test_progress_current_show_list_and_gates(bd: Bd) -> None:
    rid = bd.json("pour", "mol-research", "--var", "question=why", "--var", "issue=bd-7")["id"]
    prog = bd.json("mol", "progress", rid)
    assert (prog["total"], prog["closed"], prog["current"]["id"]) == (5, 0, f"{rid}.1")
    for n in range(1, 5):
        bd.run("close", f"{rid}.{n}")
    assert bd.json("mol", "current", rid) is None  # publish waits for its gate
    gates = bd.json("gate", "list")
    assert [g["issue_type"] for g in gates] == ["gate"] and gates[0]["id"] == f"{rid}.6"
    assert "gate" in bd.run("mol", "show", rid).stdout
    bd.run("gate", "resolve", gates[0]["id"], "--reason", "looks right")
    assert bd.json("mol", "current", rid)["id"] == f"{rid}.5"
    view = bd.json("mol", "show", f"{rid}.3")  # a step id shows its molecule
    assert view["root"]["id"] == rid and len(view["steps"]) == 6
    listed = bd.json("mol", "list")
    assert [m["id"] for m in listed] == [rid] and listed[0]["closed"] == 4
    text = bd.run("mol", "show", rid).stdout
    assert f"{rid}.5" in text and "✓" in text


def test_hooks_pin_unpin(bd: Bd) -> None:
    rid = bd.json("pour", "mol-quick-fix", "--var", "issue=bd-1")["id"]
    bd.run("pin", rid, "--for", "polecat-ace")
    hook = bd.json("hook", "--agent", "polecat-ace")
    assert [h["id"] for h in hook] == [rid]
    assert hook[0]["current_step"]["id"] == f"{rid}.1"
    assert bd.json("hook") == []  # my own hook (BD_ACTOR=tester) is empty
    assert bd.json("mol", "current", "--for", "polecat-ace")["id"] == f"{rid}.1"
    bd.run("unpin", "--for", "polecat-ace")
    assert bd.json("hook", "--agent", "polecat-ace") == []
    bd.run("pin", rid)
    assert [h["id"] for h in bd.json("hook")] == [rid]


ERRORS = [
    (("pour", "nope-not-a-formula"), "no proto or formula named 'nope-not-a-formula'", 3),
    (("pour", "mol-quick-fix"), "missing variable(s): issue", 8),
    (("pour", "mol-quick-fix", "--var", "noequals"), "invalid --var 'noequals'", 2),
    (("mol", "squash", "bd-zzzz"), "no issue found matching", 3),
    (("mol", "bond", "a", "b", "--type", "sideways"), "invalid choice", 2),
    (("formula", "validate", "missing.formula.toml"), "not found", 3),
    (("gate", "resolve", "bd-zzzz"), "no issue found", 3),
]


@pytest.mark.parametrize("args, message, code", ERRORS, ids=[e[1] for e in ERRORS])
def test_errors_are_one_line(bd: Bd, args: tuple[str, ...], message: str, code: int) -> None:
    proc = bd.fail(*args)
    assert message in proc.stderr
    assert proc.returncode == code


def test_broken_formula_file_error(bd: Bd, tmp_path: Path) -> None:
    bad = tmp_path / "bad.formula.toml"
    bad.write_text('formula = "bad"\n[[steps]]\nid = "a"\ntitle = "A"\nretry = 3\n')
    for args in (("cook", str(bad)), ("pour", str(bad)), ("formula", "validate", str(bad))):
        proc = bd.fail(*args)
        assert "step 'a': key 'retry'" in proc.stderr and str(bad) in proc.stderr
        assert proc.returncode == 8
    before = bd.json("list", "--all", "--include-templates", "-n", "0")
    assert before == []  # nothing was written by the failed commands


def test_formula_list_and_show(bd: Bd) -> None:
    names = {f["name"] for f in bd.json("formula", "list")}
    assert {"mol-engineer-in-box", "mol-patrol"} <= names
    paths = bd.json("formula", "list", "--paths")
    assert paths[0]["path"].endswith(".beads/formulas") and paths[-1]["path"].endswith(
        "data/formulas")
    shown = bd.json("formula", "show", "quick-fix")
    assert shown["id"] == "mol-quick-fix" and shown["stored"] is False
    local = bd.cwd / ".beads" / "formulas"
    local.mkdir()
    (local / "mol-quick-fix.formula.toml").write_text(
        'formula = "mol-quick-fix"\n[[steps]]\nid = "only"\ntitle = "Local override"\n')
    assert bd.json("formula", "show", "mol-quick-fix")["steps"][0]["title"] == "Local override"


def test_cook_without_a_ledger_compiles_only(tmp_path: Path, bd_env: dict[str, str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = subprocess.run(["bd", "cook", "mol-quick-fix", "--json"], cwd=empty, env=bd_env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert json.loads(proc.stdout)["stored"] is False
    assert "not stored" in proc.stderr
