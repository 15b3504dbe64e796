"""The chemistry operators on a real ledger, on every storage backend.

cook / pour / wisp / bond / squash / burn / distill, step states and recovery,
gates, conditions, containers and hooks.  Each test takes the parametrised
``ledger`` fixture, so it runs unchanged on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from gastown import Filter, Ledger
from gastown.chemistry import (
    bond,
    burn,
    cook,
    current_step,
    distill,
    pour,
    pour_with_steps,
    progress,
    squash,
    tree,
    work_steps,
)
from gastown.errors import ConflictError, FormulaError, NotFoundError
from gastown.hook import hooked, pin, unpin
from gastown.ledger.jsonl import export_jsonl


@pytest.fixture
def fdir(tmp_path: Path) -> Path:
    """A formula folder with a few small formulas used below."""
    d = tmp_path / "formulas"
    d.mkdir()
    (d / "chain.formula.toml").write_text("""
formula = "chain"
[vars.thing]
required = true
[[steps]]
id = "one"
title = "One {{thing}}"
[[steps]]
id = "two"
title = "Two {{thing}}"
needs = ["one"]
[[steps]]
id = "three"
title = "Three"
needs = ["two"]
""")
    (d / "fan.formula.toml").write_text("""
formula = "fan"
[[steps]]
id = "a"
title = "A"
[[steps]]
id = "b"
title = "B"
[[steps]]
id = "join"
title = "Join"
needs = ["a", "b"]
""")
    (d / "gated.formula.toml").write_text("""
formula = "gated"
[vars.extra]
default = "no"
[[steps]]
id = "prep"
title = "Prep"
[[steps]]
id = "optional"
title = "Optional"
needs = ["prep"]
condition = "{{extra}} == yes"
[[steps]]
id = "ship"
title = "Ship"
needs = ["optional"]
gate = { type = "human", id = "release-ok" }
[[steps]]
id = "group"
title = "Group"
needs = ["ship"]
[[steps.children]]
id = "g1"
title = "G1"
[[steps.children]]
id = "g2"
title = "G2"
needs = ["g1"]
""")
    return d


def paths(fdir: Path) -> list[str]:
    return [str(fdir)]


def ready_ids(ledger: Ledger, root: str) -> list[str]:
    return sorted(b["id"] for b in ledger.ready(Filter(mol=root)))


def work(ledger: Ledger, root: str) -> None:
    """Claim and close every step, in whatever order the ready rule allows."""
    while True:
        step = current_step(ledger, root)
        if step is None:
            return
        if step["status"] == "open":
            ledger.claim(step["id"], "worker")
        ledger.close_bead(step["id"])


# ------------------------------------------------------------------ cook
def test_cook_stores_template_beads_idempotently(ledger: Ledger, fdir: Path) -> None:
    view = cook(ledger, "chain", search_paths=paths(fdir))
    assert view["action"] == "created"
    assert [(s["id"], s["needs"]) for s in view["steps"]] == [
        ("chain.one", []), ("chain.two", ["chain.one"]), ("chain.three", ["chain.two"])]
    root = ledger.get("chain")
    assert root["is_template"] and "template" in root["labels"]
    two = ledger.show("chain.two")
    assert two["is_template"] and two["title"] == "Two {{thing}}"
    assert {(d["depends_on_id"], d["type"]) for d in two["dependencies"]} == {
        ("chain", "parent-child"), ("chain.one", "blocks")}
    assert ledger.ready() == []  # templates are never work
    events = ledger.last_event_seq()
    assert cook(ledger, "chain", search_paths=paths(fdir))["action"] == "unchanged"
    assert ledger.last_event_seq() == events  # a no-op writes nothing
    # a changed formula replaces the proto, reusing the names
    (fdir / "chain.formula.toml").write_text(
        (fdir / "chain.formula.toml").read_text().replace('title = "Three"', 'title = "3"'))
    assert cook(ledger, "chain", search_paths=paths(fdir))["action"] == "replaced"
    assert ledger.get("chain.three")["title"] == "3"


def test_cook_with_vars_bakes_them_in(ledger: Ledger, fdir: Path) -> None:
    view = cook(ledger, "chain", {"thing": "bolt"}, search_paths=paths(fdir))
    assert view["steps"][0]["title"] == "One bolt"
    root = pour(ledger, "chain")  # from the proto: the baked var is no longer required
    assert [s["title"] for s in work_steps(ledger, root["id"])] == ["One bolt", "Two bolt",
                                                                    "Three"]


def test_cook_refuses_a_taken_non_template_id(ledger: Ledger, fdir: Path) -> None:
    ledger.create("squatter", id="t-fan")
    (fdir / "t-fan.formula.toml").write_text(
        (fdir / "fan.formula.toml").read_text().replace('"fan"', '"t-fan"'))
    with pytest.raises(FormulaError, match="not a proto"):
        cook(ledger, "t-fan", search_paths=paths(fdir))


# ------------------------------------------------------------------ pour
def test_pour_creates_root_children_and_edges(ledger: Ledger, fdir: Path) -> None:
    root, ids = pour_with_steps(ledger, "chain", {"thing": "x"}, search_paths=paths(fdir))
    rid = root["id"]
    assert root["issue_type"] == "molecule" and root["source_formula"] == "chain"
    assert ids == {"one": f"{rid}.1", "two": f"{rid}.2", "three": f"{rid}.3"}
    assert root["metadata"]["steps"] == ids and root["metadata"]["vars"] == {"thing": "x"}
    two = ledger.show(f"{rid}.2")
    assert two["title"] == "Two x"
    assert {(d["depends_on_id"], d["type"]) for d in two["dependencies"]} == {
        (rid, "parent-child"), (f"{rid}.1", "blocks")}
    assert ready_ids(ledger, rid) == [f"{rid}.1"]
    # the same rule without --mol: the root itself is infrastructure, never ready
    assert [b["id"] for b in ledger.ready()] == [f"{rid}.1"]


def test_closing_a_step_readies_dependents_in_the_same_transaction(
        ledger: Ledger, fdir: Path) -> None:
    root = pour(ledger, "fan", search_paths=paths(fdir))["id"]
    assert ready_ids(ledger, root) == [f"{root}.1", f"{root}.2"]
    ledger.close_bead(f"{root}.1")
    assert ready_ids(ledger, root) == [f"{root}.2"]
    seq = ledger.last_event_seq()
    with ledger.transaction() as t:
        t.claim(f"{root}.2")
        t.close(f"{root}.2")
        # inside the transaction that closed it, the join is already ready
        assert t.tx.one("SELECT held FROM issues WHERE id = ?", (f"{root}.3",)) == (0,)
    assert ready_ids(ledger, root) == [f"{root}.3"]
    types = [e["type"] for e in ledger.events(since_seq=seq)]
    assert types.index("bead.claimed") < types.index("bead.closed")


def test_root_closes_with_its_last_step_and_recovery_resumes(ledger: Ledger,
                                                            fdir: Path) -> None:
    root = pour(ledger, "chain", {"thing": "x"}, search_paths=paths(fdir))["id"]
    ledger.claim(f"{root}.1", "w1")
    ledger.close_bead(f"{root}.1")
    ledger.claim(f"{root}.2", "w1")
    # w1 crashes here; any other worker resumes at the first unfinished step
    cur = current_step(ledger, root)
    assert cur is not None and cur["id"] == f"{root}.2" and cur["status"] == "in_progress"
    ledger.close_bead(f"{root}.1")  # a re-run of a closed step stays closed (no error)
    assert ledger.get(f"{root}.1")["status"] == "closed"
    ledger.close_bead(f"{root}.2")
    assert progress(ledger, root)["closed"] == 2
    assert ledger.get(root)["status"] == "open"
    ledger.close_bead(f"{root}.3")
    assert ledger.get(root)["status"] == "closed"
    assert current_step(ledger, root) is None
    assert progress(ledger, root)["complete"] is True


def test_gates_conditions_and_containers(ledger: Ledger, fdir: Path) -> None:
    root, ids = pour_with_steps(ledger, "gated", search_paths=paths(fdir))
    rid = root["id"]
    assert "optional" not in ids  # condition false: dropped, ship inherits its needs
    assert ids == {"prep": f"{rid}.1", "ship": f"{rid}.2", "group": f"{rid}.3",
                   "g1": f"{rid}.3.1", "g2": f"{rid}.3.2"}
    gate_id = root["metadata"]["gates"]["ship"]
    gate = ledger.get(gate_id)
    assert gate["issue_type"] == "gate" and gate["metadata"]["await_id"] == "release-ok"
    ledger.close_bead(f"{rid}.1")
    assert ready_ids(ledger, rid) == []  # ship waits on the gate
    with ledger.transaction() as t:
        t.close(gate_id, reason="approved")
    assert ready_ids(ledger, rid) == [f"{rid}.2"]
    ledger.close_bead(f"{rid}.2")
    # the container is machinery: only its children are work
    assert ready_ids(ledger, rid) == [f"{rid}.3.1"]
    assert ledger.get(f"{rid}.3")["issue_type"] == "molecule"
    ledger.close_bead(f"{rid}.3.1")
    ledger.close_bead(f"{rid}.3.2")
    assert ledger.get(f"{rid}.3")["status"] == "closed"
    assert ledger.get(rid)["status"] == "closed"
    with_extra = pour_with_steps(ledger, "gated", {"extra": "yes"}, search_paths=paths(fdir))[1]
    assert "optional" in with_extra


def test_pour_errors_leave_nothing(ledger: Ledger, fdir: Path) -> None:
    before = ledger.count(Filter(include_ephemeral=True, include_templates=True))
    with pytest.raises(FormulaError, match="missing variable"):
        pour(ledger, "chain", search_paths=paths(fdir))
    with pytest.raises(NotFoundError):
        pour(ledger, "no-such-formula", search_paths=paths(fdir))
    assert ledger.count(Filter(include_ephemeral=True, include_templates=True)) == before


# ------------------------------------------------------------------ wisps, squash, burn
def test_wisp_is_ephemeral_unexported_and_squashes_to_same_id(
        ledger: Ledger, fdir: Path, tmp_path: Path) -> None:
    wisp = pour(ledger, "fan", wisp=True, search_paths=paths(fdir))
    wid = wisp["id"]
    assert wisp["ephemeral"] and ledger.get(f"{wid}.1")["ephemeral"]
    assert ledger.ready() == []  # not in the global ready list …
    assert ready_ids(ledger, wid) == [f"{wid}.1", f"{wid}.2"]  # … but in --mol
    out = tmp_path / "out.jsonl"
    export_jsonl(ledger, str(out))
    assert wid not in out.read_text()
    persistent = ledger.create("keeps a reference")
    ledger.add_dep(persistent["id"], wid, "related")
    ledger.close_bead(f"{wid}.1")
    digest = squash(ledger, wid, "patrol quiet")
    assert digest["id"] == wid and "digest" in digest["labels"]
    assert not digest.get("ephemeral") and digest["status"] == "closed"
    assert digest["metadata"]["digest"]["summary"] == "patrol quiet"
    assert [s["status"] for s in digest["metadata"]["digest"]["steps"]] == [
        "closed", "open", "open"]
    assert not ledger.exists(f"{wid}.1")  # the steps evaporated
    with pytest.raises(ConflictError):
        ledger.create("reuse", id=f"{wid}.1")  # … and their ids are never reused
    dep = [d for d in ledger.deps(persistent["id"]) if d["depends_on_id"] == wid]
    assert dep and dep[0]["title"] == digest["title"]  # the reference now reaches the digest
    assert squash(ledger, wid)["metadata"] == digest["metadata"]  # idempotent
    export_jsonl(ledger, str(out))
    assert wid in out.read_text()  # the digest is permanent


def test_squash_mol_keeps_steps_and_refuses_unfinished(ledger: Ledger, fdir: Path) -> None:
    rid = pour(ledger, "fan", search_paths=paths(fdir))["id"]
    with pytest.raises(ConflictError, match="still open"):
        squash(ledger, rid)
    ledger.close_bead(f"{rid}.1")
    digest = squash(ledger, rid, force=True)
    assert digest["metadata"]["digest"]["closed"] == 1
    assert "1/3 steps closed" in digest["metadata"]["digest"]["summary"]
    assert ledger.get(f"{rid}.2")["close_reason"] == "squashed"
    assert len(work_steps(ledger, rid)) == 3


def test_burn(ledger: Ledger, fdir: Path) -> None:
    wid = pour(ledger, "fan", wisp=True, search_paths=paths(fdir))["id"]
    mol = pour(ledger, "fan", search_paths=paths(fdir))["id"]
    deleted = burn(ledger, wid)
    assert sorted(deleted) == sorted([wid, f"{wid}.1", f"{wid}.2", f"{wid}.3"])
    assert not ledger.exists(wid)
    assert burn(ledger, wid) == []  # burning again is a no-op
    with pytest.raises(ConflictError, match="not a wisp"):
        burn(ledger, mol)
    with pytest.raises(NotFoundError):
        burn(ledger, "t-nothing")
    with pytest.raises(ConflictError):
        ledger.create("reuse", id=wid)


# ------------------------------------------------------------------ bond
def test_bond_proto_proto_compound_and_polymer(ledger: Ledger, fdir: Path) -> None:
    cook(ledger, "fan", search_paths=paths(fdir))
    r = bond(ledger, "fan", "chain", name="Fan then Chain", search_paths=paths(fdir))
    assert r["result_type"] == "compound_proto" and r["result_id"] == "mol-fan-then-chain"
    view = {s["id"] for s in tree(ledger, r["result_id"])["steps"]}
    assert view == {"mol-fan-then-chain.a", "mol-fan-then-chain.b",
                         "mol-fan-then-chain.join", "mol-fan-then-chain.one",
                         "mol-fan-then-chain.two", "mol-fan-then-chain.three"}
    # a polymer: bond the compound again, in parallel this time
    r2 = bond(ledger, "mol-fan-then-chain", "fan", name="mol-poly", bond_type="parallel",
              search_paths=paths(fdir))
    root, ids = pour_with_steps(ledger, "mol-poly", {"thing": "q"})
    rid = root["id"]
    assert r2["steps"] == 9 and len(ids) == 9
    # phase relationships survive: chain's first step waits for fan's join …
    one = ledger.show(ids["one"])
    assert (ids["join"], "blocks") in {(d["depends_on_id"], d["type"])
                                       for d in one["dependencies"]}
    # … and the parallel copy of fan (renamed) starts at once
    assert ready_ids(ledger, rid) == sorted([ids["a"], ids["b"], ids["fan.a"], ids["fan.b"]])
    work(ledger, rid)
    assert ledger.get(rid)["status"] == "closed"


def test_bond_proto_into_mol_follows_phase_and_sequence(ledger: Ledger, fdir: Path) -> None:
    rid = pour(ledger, "fan", search_paths=paths(fdir))["id"]
    r = bond(ledger, "chain", rid, vars={"thing": "z"}, search_paths=paths(fdir))
    assert r["result_type"] == "compound_molecule" and r["result_id"] == rid
    sub = r["attached"]
    assert sub == f"{rid}.4" and not ledger.get(sub).get("ephemeral")
    assert r["id_mapping"]["one"] == f"{sub}.1"
    # sequential: the attached part waits for the mol's last step (join)
    assert (f"{rid}.3", "blocks") in {(d["depends_on_id"], d["type"])
                                      for d in ledger.show(sub)["dependencies"]}
    assert f"{sub}.1" not in ready_ids(ledger, rid)
    work(ledger, rid)
    assert all(ledger.get(x)["status"] == "closed" for x in (sub, f"{sub}.3", rid))


def test_bond_proto_into_wisp_and_phase_overrides(ledger: Ledger, fdir: Path) -> None:
    wid = pour(ledger, "fan", wisp=True, search_paths=paths(fdir))["id"]
    r = bond(ledger, "fan", wid, bond_type="parallel", search_paths=paths(fdir))
    assert r["result_type"] == "compound_wisp" and ledger.get(r["attached"])["ephemeral"]
    assert f"{r['attached']}.1" in ready_ids(ledger, wid)  # parallel: ready at once
    # --pour on a wisp: a separate persistent mol linked by reference only
    r2 = bond(ledger, "fan", wid, phase="liquid", search_paths=paths(fdir))
    assert r2["result_type"] == "reference_link"
    new = ledger.show(r2["result_id"])
    assert not new.get("ephemeral")
    assert [(d["depends_on_id"], d["type"]) for d in new["dependencies"]] == [(wid, "related")]
    # --wisp on a mol: a separate wisp
    mid = pour(ledger, "fan", search_paths=paths(fdir))["id"]
    r3 = bond(ledger, mid, "fan", phase="vapor", search_paths=paths(fdir))
    assert ledger.get(r3["result_id"])["ephemeral"] and r3["result_type"] == "reference_link"


def test_bond_mol_mol_wisp_wisp_and_cross_phase(ledger: Ledger, fdir: Path) -> None:
    a = pour(ledger, "fan", search_paths=paths(fdir))["id"]
    b = pour(ledger, "fan", search_paths=paths(fdir))["id"]
    r = bond(ledger, a, b)
    assert r["result_type"] == "compound_molecule" and r["edge"] == "blocks"
    assert ready_ids(ledger, b) == []  # b waits for a to finish
    work(ledger, a)
    assert ready_ids(ledger, b) == [f"{b}.1", f"{b}.2"]
    w1 = pour(ledger, "fan", wisp=True, search_paths=paths(fdir))["id"]
    w2 = pour(ledger, "fan", wisp=True, search_paths=paths(fdir))["id"]
    assert bond(ledger, w1, w2, bond_type="parallel")["result_type"] == "compound_wisp"
    assert ready_ids(ledger, w2) == [f"{w2}.1", f"{w2}.2"]
    link = bond(ledger, b, w1)
    assert link["result_type"] == "reference_link"
    assert ready_ids(ledger, w1) == [f"{w1}.1", f"{w1}.2"]  # nothing blocks across phases
    burn(ledger, w1)
    assert ledger.exists(b)  # the mol outlives the evaporated wisp


def test_bond_conditional(ledger: Ledger, fdir: Path) -> None:
    cook(ledger, "fan", search_paths=paths(fdir))
    bond(ledger, "fan", "chain", name="mol-fan-else", bond_type="conditional",
         search_paths=paths(fdir))
    root, ids = pour_with_steps(ledger, "mol-fan-else", {"thing": "q"})
    deps = {(d["depends_on_id"], d["type"]) for d in ledger.show(ids["one"])["dependencies"]}
    assert (ids["join"], "conditional-blocks") in deps


# ------------------------------------------------------------------ distill
def test_distill_round_trip_reproduces_the_step_graph(ledger: Ledger, fdir: Path,
                                                      tmp_path: Path) -> None:
    original = cook(ledger, "gated", {"extra": "yes"}, search_paths=paths(fdir))
    root = pour(ledger, "gated", {"extra": "yes"})["id"]
    name, text, info = distill(ledger, root, name="Gated Again", vars={})
    assert name == "mol-gated-again" and info["steps"] == 6
    out = tmp_path / "again" / f"{name}.formula.toml"
    out.parent.mkdir()
    out.write_text(text)
    data = tomllib.loads(text)
    ship = next(s for s in data["steps"] if s["id"] == "ship")
    assert ship["gate"]["type"] == "human"
    again = cook(ledger, str(out))

    def shape(view: dict, prefix: str) -> set[tuple[str, tuple[str, ...], str | None]]:
        cut = len(prefix) + 1
        return {(s["id"][cut:], tuple(sorted(n[cut:] for n in s["needs"])),
                 s.get("parent", "")[cut:] or None) for s in view["steps"]}

    assert shape(again, name) == shape(original, "gated")


def test_distill_epic_with_var_placeholders(ledger: Ledger) -> None:
    epic = ledger.create("Release 2.0", issue_type="epic")
    for title in ("Tag 2.0", "Build 2.0 artifacts", "Announce 2.0"):
        ledger.create(title, parent=epic["id"])
    name, text, info = distill(ledger, epic["id"], name="Release Workflow",
                               vars={"version": "2.0"})
    data = tomllib.loads(text)
    assert name == "mol-release-workflow"
    assert [s["title"] for s in data["steps"]] == ["Tag {{version}}",
                                                  "Build {{version}} artifacts",
                                                  "Announce {{version}}"]
    assert all("needs" not in s for s in data["steps"])  # an epic is a flat list
    assert data["vars"]["version"]["required"] is True
    assert info["vars"] == ["version"]


# ------------------------------------------------------------------ hooks
def test_pin_unpin_hooked(ledger: Ledger, fdir: Path) -> None:
    rid = pour(ledger, "fan", search_paths=paths(fdir))["id"]
    bead = pin(ledger, rid, "polecat-ace")
    assert bead["status"] == "hooked" and bead["assignee"] == "polecat-ace"
    seq = ledger.last_event_seq()
    assert pin(ledger, rid, "polecat-ace")["status"] == "hooked"  # idempotent
    assert ledger.last_event_seq() == seq
    with pytest.raises(ConflictError, match="already on polecat-ace's hook"):
        pin(ledger, rid, "other")
    assert [b["id"] for b in hooked(ledger, "polecat-ace")] == [rid]
    assert ready_ids(ledger, rid) == [f"{rid}.1", f"{rid}.2"]  # hooked holds nothing
    task = ledger.create("a task")
    ledger.claim(task["id"], "polecat-ace")
    pin(ledger, task["id"], "polecat-ace")
    assert unpin(ledger, "polecat-ace", task["id"]) == [task["id"]]
    assert ledger.get(task["id"])["status"] == "in_progress"
    assert unpin(ledger, "polecat-ace") == [rid]
    after = ledger.get(rid)
    assert after["status"] == "open" and not after.get("assignee")
    assert hooked(ledger, "polecat-ace") == []
    kinds = [e["type"] for e in ledger.events(bead_id=rid)]
    assert kinds.count("hook.pinned") == 1 and kinds.count("hook.unpinned") == 1


def test_events_record_each_operator(ledger: Ledger, fdir: Path) -> None:
    cook(ledger, "fan", search_paths=paths(fdir))
    wid = pour(ledger, "fan", wisp=True)["id"]
    squash(ledger, wid, "s")
    types = {e["type"] for e in ledger.events()}
    assert {"mol.cooked", "mol.poured", "mol.squashed"} <= types
    poured = [e for e in ledger.events(types=["mol.poured"])]
    assert poured[0]["payload"] == {"formula": "fan", "steps": 3, "wisp": True, "parent": None}
    assert json.dumps(poured)  # payloads are plain JSON


def test_waits_for_children_bonded_at_run_time(ledger: Ledger, tmp_path: Path) -> None:
    """The fan-out pattern: arms are bonded onto a step, a later step waits for them all."""
    d = tmp_path / "fanout"
    d.mkdir()
    (d / "survey.formula.toml").write_text("""
formula = "survey"
[[steps]]
id = "survey"
title = "Survey workers"
[[steps]]
id = "aggregate"
title = "Aggregate"
needs = ["survey"]
waits_for = "all-children"
""")
    (d / "arm.formula.toml").write_text('formula = "arm"\n[[steps]]\nid = "check"\n'
                                        'title = "Check {{name}}"\n')
    root, ids = pour_with_steps(ledger, "survey", search_paths=[str(d)])
    rid = root["id"]
    deps = {(x["depends_on_id"], x["type"]) for x in ledger.show(ids["aggregate"])["dependencies"]}
    assert (ids["survey"], "waits-for") in deps
    arms = [bond(ledger, "arm", ids["survey"], bond_type="parallel", vars={"name": n},
                 search_paths=[str(d)])["attached"] for n in ("ace", "nux")]
    assert arms == [f"{ids['survey']}.1", f"{ids['survey']}.2"]
    ledger.close_bead(ids["survey"], force=True)  # the spawner is done; its arms run on
    assert ready_ids(ledger, rid) == [f"{arms[0]}.1", f"{arms[1]}.1"]
    ledger.close_bead(f"{arms[0]}.1")
    assert ids["aggregate"] not in ready_ids(ledger, rid)  # one arm still open
    ledger.close_bead(f"{arms[1]}.1")
    assert ready_ids(ledger, rid) == [ids["aggregate"]]


def test_pour_false_keeps_steps_inline(ledger: Ledger, tmp_path: Path) -> None:
    d = tmp_path / "inline"
    d.mkdir()
    (d / "check.formula.toml").write_text('formula = "check"\npour = false\n[[steps]]\n'
                                          'id = "a"\ntitle = "A {{x}}"\n[[steps]]\nid = "b"\n'
                                          'title = "B"\nneeds = ["a"]\n')
    root, ids = pour_with_steps(ledger, "check", {"x": "1"}, search_paths=[str(d)])
    assert ids == {} and work_steps(ledger, root["id"]) == []
    assert [s["title"] for s in root["metadata"]["inline_steps"]] == ["A 1", "B"]


def test_protos_and_wisps_are_not_exported(ledger: Ledger, fdir: Path, tmp_path: Path) -> None:
    cook(ledger, "fan", search_paths=paths(fdir))
    mol = pour(ledger, "fan")["id"]
    wid = pour(ledger, "fan", wisp=True)["id"]
    out = tmp_path / "x.jsonl"
    export_jsonl(ledger, str(out))
    ids = {json.loads(line)["id"] for line in out.read_text().splitlines()}
    assert mol in ids and f"{mol}.1" in ids
    assert not any(i == "fan" or i.startswith("fan.") or i.startswith(wid) for i in ids)
