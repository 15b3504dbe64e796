"""Conformance: the ready rule (DESIGN §3.4), one test per clause, on both backends.

After every scenario the ready set is also compared with the from-scratch
reference statement of the rule, and the stored ready state must survive a full
recompute unchanged (``recompute_ready_state() == 0``).
"""

from __future__ import annotations

import json

import pytest

from gastown import Filter, Ledger
from gastown.errors import CycleError
from gastown.ledger import jsonl
from gastown.ledger.model import DEP_TYPES, INFRA_TYPES
from gastown.ledger.ready import BLOCKING_DEP_TYPES
from helpers.ledgertools import ready_ids, reference_held, reference_ready_ids, snapshot

NON_BLOCKING = [t for t in DEP_TYPES if t not in BLOCKING_DEP_TYPES] + ["my-custom"]
PAST = "2001-01-01T00:00:00Z"
FUTURE = "2099-01-01T00:00:00Z"


def ready(ledger: Ledger) -> set[str]:
    """The ready ids, after checking them against the reference and the stored state."""
    got = ready_ids(ledger)
    assert got == reference_ready_ids(ledger)
    assert ledger.recompute_ready_state() == 0
    return set(got)


def blocked_ids(ledger: Ledger) -> set[str]:
    return {b["id"] for b in ledger.blocked()}


# ------------------------------------------------------------------- blocking edges


@pytest.mark.parametrize("dep_type", BLOCKING_DEP_TYPES)
def test_blocking_edge_to_active_target_holds(ledger: Ledger, dep_type: str) -> None:
    target = ledger.create("target")
    src = ledger.create("src")
    assert src.id in ready(ledger)
    ledger.add_dep(src.id, target.id, dep_type)
    assert src.id not in ready(ledger)
    assert target.id in ready(ledger)
    assert blocked_ids(ledger) == {src.id}
    # every active status of the target keeps blocking
    for status in ("in_progress", "blocked", "deferred", "hooked", "open"):
        ledger.update(target.id, status=status)
        assert src.id not in ready(ledger), status
    ledger.close_bead(target.id)
    assert src.id in ready(ledger)
    ledger.reopen(target.id)
    assert src.id not in ready(ledger)
    ledger.remove_dep(src.id, target.id)
    assert src.id in ready(ledger)


@pytest.mark.parametrize("dep_type", BLOCKING_DEP_TYPES)
@pytest.mark.parametrize("done", ["closed", "pinned"])
def test_closed_or_pinned_target_does_not_block(ledger: Ledger, dep_type: str,
                                                 done: str) -> None:
    target = ledger.create("target")
    ledger.update(target.id, status=done)
    src = ledger.create("src", deps=[(dep_type, target.id)])
    assert src.id in ready(ledger)
    other = ledger.create("other")
    ledger.add_dep(other.id, target.id, dep_type)
    assert other.id in ready(ledger)
    ledger.update(target.id, status="open")  # active again: both held
    assert not {src.id, other.id} & ready(ledger)
    ledger.update(target.id, status=done)
    assert {src.id, other.id} <= ready(ledger)


def test_update_from_closed_to_any_status_refreshes_dependents(ledger: Ledger) -> None:
    """Regression: update(status=X) on a closed bead reopens it first, then moves to X;
    the dependents' state must follow the final status, not the intermediate one."""
    for new_status in ("pinned", "open", "in_progress", "blocked", "deferred", "hooked"):
        target = ledger.create("target")
        src = ledger.create("src", deps=[("blocks", target.id)])
        ledger.close_bead(target.id)
        assert src.id in ready(ledger)
        got = ledger.update(target.id, status=new_status)
        assert got["status"] == new_status and "closed_at" not in got
        assert (src.id in ready(ledger)) == (new_status == "pinned"), new_status


def test_waits_for_blocks_while_any_child_of_target_is_open(ledger: Ledger) -> None:
    gate = ledger.create("gate")
    k1 = ledger.create("k1", parent=gate.id)
    k2 = ledger.create("k2", parent=gate.id)
    waiter = ledger.create("waiter", deps=[("waits-for", gate.id)])
    plain = ledger.create("plain", deps=[("blocks", gate.id)])
    ledger.update(gate.id, status="pinned")  # the target itself no longer blocks
    r = ready(ledger)
    assert plain.id in r  # a plain blocks edge does not care about children
    assert waiter.id not in r
    ledger.close_bead(k1.id)
    assert waiter.id not in ready(ledger)
    ledger.update(k2.id, status="pinned")  # pinned is not closed: still waiting
    assert waiter.id not in ready(ledger)
    ledger.close_bead(k2.id)
    assert waiter.id in ready(ledger)
    ledger.reopen(k2.id)
    assert waiter.id not in ready(ledger)
    ledger.close_bead(k2.id)
    k3 = ledger.create("k3", parent=gate.id)  # a new child re-closes the gate
    assert waiter.id not in ready(ledger)
    ledger.delete(k3.id)  # ...and deleting it opens it again
    assert waiter.id in ready(ledger)
    stray = ledger.create("stray")
    ledger.add_dep(stray.id, gate.id, "parent-child")  # adopting an open child
    assert waiter.id not in ready(ledger)
    ledger.remove_dep(stray.id, gate.id)
    assert waiter.id in ready(ledger)
    ledger.update(gate.id, status="open")  # an active target blocks regardless
    assert waiter.id not in ready(ledger)


def test_waits_for_closed_target_with_open_child_still_waits(ledger: Ledger) -> None:
    gate = ledger.create("gate")
    kid = ledger.create("kid", parent=gate.id)
    waiter = ledger.create("waiter", deps=[("waits-for", gate.id)])
    ledger.close_bead(gate.id, force=True)
    assert waiter.id not in ready(ledger)
    ledger.close_bead(kid.id)
    assert waiter.id in ready(ledger)


def test_edge_to_deleted_target_never_blocks(ledger: Ledger) -> None:
    target = ledger.create("target")
    kids_gate = ledger.create("gate")
    kid = ledger.create("kid", parent=kids_gate.id)
    srcs = {t: ledger.create(f"src {t}", deps=[(t, target.id)]) for t in BLOCKING_DEP_TYPES}
    waiter = ledger.create("waiter", deps=[("waits-for", kids_gate.id)])
    assert not {s.id for s in srcs.values()} & ready(ledger)
    ledger.delete(target.id)
    r = ready(ledger)
    assert {s.id for s in srcs.values()} <= r
    # the dangling edge is still recorded; it just never blocks
    assert [d["depends_on_id"] for d in ledger.deps(srcs["blocks"].id)] == [target.id]
    assert waiter.id not in r
    ledger.delete(kids_gate.id, cascade=True)
    assert waiter.id in ready(ledger)
    assert not ledger.exists(kid.id)


def test_edge_to_unknown_target_never_blocks(ledger: Ledger, tmp_path) -> None:
    path = tmp_path / "in.jsonl"
    lines = [
        {"id": "t-a1", "title": "a", "status": "open", "priority": 2, "issue_type": "task",
         "created_at": "2025-01-01T00:00:00Z", "updated_at": "2025-01-01T00:00:00Z",
         "dependencies": [{"issue_id": "t-a1", "depends_on_id": "t-ghost", "type": t,
                           "created_at": "2025-01-01T00:00:00Z"}
                          for t in BLOCKING_DEP_TYPES]},
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    jsonl.import_jsonl(ledger, str(path))
    assert ready(ledger) == {"t-a1"}
    # once a bead with that id exists (and is active) the same edges do block
    ledger.create("ghost", id="t-ghost")
    assert ready(ledger) == {"t-ghost"}


def test_non_blocking_edge_types_never_block(ledger: Ledger) -> None:
    target = ledger.create("target")
    srcs = {}
    for dep_type in NON_BLOCKING:
        srcs[dep_type] = src = ledger.create(f"src {dep_type}")
        ledger.add_dep(src.id, target.id, dep_type)
    assert {s.id for s in srcs.values()} | {target.id} == ready(ledger)
    assert blocked_ids(ledger) == set()
    ledger.update(target.id, status="in_progress")
    assert {s.id for s in srcs.values()} == ready(ledger)
    ledger.update(target.id, status="blocked")  # a held target: only its children follow
    assert {s.id for t, s in srcs.items() if t != "parent-child"} == ready(ledger)


# ------------------------------------------------------------------- holding statuses


@pytest.mark.parametrize("status", ["blocked", "deferred"])
def test_blocked_and_deferred_status_hold(ledger: Ledger, status: str) -> None:
    b = ledger.create("b")
    kid = ledger.create("kid", parent=b.id)
    ledger.update(b.id, status=status)
    r = ready(ledger)
    assert b.id not in r and kid.id not in r
    # a deferred bead itself is on ice, not blocked (issue 10); its child is held by it
    assert blocked_ids(ledger) == ({kid.id} if status == "deferred" else {b.id, kid.id})
    ledger.update(b.id, status="open")
    assert {b.id, kid.id} <= ready(ledger)
    created = ledger.create("born held", status=status)
    assert created.id not in ready(ledger)


@pytest.mark.parametrize("status", ["in_progress", "hooked", "closed", "pinned"])
def test_other_statuses_are_not_ready_and_not_blocked(ledger: Ledger, status: str) -> None:
    b = ledger.create("b")
    ledger.update(b.id, status=status)
    assert b.id not in ready(ledger)
    assert b.id not in blocked_ids(ledger)


def test_defer_until_future_holds_past_does_not(ledger: Ledger) -> None:
    past = ledger.create("past", defer_until=PAST)
    future = ledger.create("future", defer_until=FUTURE)
    rel = ledger.create("relative", defer_until="+3d")
    r = ready(ledger)
    assert past.id in r and future.id not in r and rel.id not in r
    assert blocked_ids(ledger) == {future.id, rel.id}
    by_id = {b["id"]: b for b in ledger.blocked()}
    assert any("deferred until" in h for h in by_id[future.id]["held_by"])
    ledger.update(future.id, defer_until=PAST)
    assert future.id in ready(ledger)
    ledger.update(past.id, defer_until=FUTURE)
    assert past.id not in ready(ledger)
    ledger.update(past.id, defer_until=None)
    assert past.id in ready(ledger)


# ------------------------------------------------------------------------- ancestors


def _chain(ledger: Ledger) -> list[str]:
    root = ledger.create("root", issue_type="epic")
    c = ledger.create("c", parent=root.id)
    g = ledger.create("g", parent=c.id)
    gg = ledger.create("gg", parent=g.id)
    return [root.id, c.id, g.id, gg.id]


HOLDS = {
    "blocks-edge": (lambda L, b, x: L.add_dep(b, x, "blocks"),
                    lambda L, b, x: L.close_bead(x)),
    "waits-for-edge": (lambda L, b, x: L.add_dep(b, x, "waits-for"),
                       lambda L, b, x: L.remove_dep(b, x)),
    "status-blocked": (lambda L, b, x: L.update(b, status="blocked"),
                       lambda L, b, x: L.update(b, status="open")),
    "status-deferred": (lambda L, b, x: L.update(b, status="deferred"),
                        lambda L, b, x: L.update(b, status="open")),
    "defer-until": (lambda L, b, x: L.update(b, defer_until=FUTURE),
                    lambda L, b, x: L.update(b, defer_until=PAST)),
}


@pytest.mark.parametrize("hold", sorted(HOLDS))
@pytest.mark.parametrize("level", [0, 1])
def test_held_ancestor_holds_all_descendants(ledger: Ledger, hold: str, level: int) -> None:
    chain = _chain(ledger)
    blocker = ledger.create("blocker")
    apply, release = HOLDS[hold]
    assert set(chain[1:]) <= ready(ledger)
    apply(ledger, chain[level], blocker.id)
    r = ready(ledger)
    assert not set(chain[level:]) & r
    assert set(chain[1:level]) <= r  # beads above the held one are untouched
    # the held bead and all below it are blocked -- but a deferred bead itself is on
    # ice, not blocked (issue 10): its descendants are
    held = set(chain[level + 1:] if hold == "status-deferred" else chain[level:])
    assert held <= blocked_ids(ledger)
    assert hold != "status-deferred" or chain[level] not in blocked_ids(ledger)
    by_id = {b["id"]: b for b in ledger.blocked()}
    why = "deferred until" if hold == "defer-until" else "held by an ancestor"
    assert any(why in h for h in by_id[chain[3]]["held_by"])
    release(ledger, chain[level], blocker.id)
    assert set(chain[1:]) <= ready(ledger)


def test_reparenting_moves_the_hold(ledger: Ledger) -> None:
    held_parent = ledger.create("held parent", status="blocked")
    free_parent = ledger.create("free parent")
    sub = ledger.create("sub")
    leaf = ledger.create("leaf", parent=sub.id)
    assert {sub.id, leaf.id} <= ready(ledger)
    ledger.add_dep(sub.id, held_parent.id, "parent-child")
    assert not {sub.id, leaf.id} & ready(ledger)
    ledger.remove_dep(sub.id, held_parent.id, "parent-child")
    ledger.add_dep(sub.id, free_parent.id, "parent-child")
    assert {sub.id, leaf.id} <= ready(ledger)
    # a held ancestor deleted with its subtree kept elsewhere: hold vanishes
    ledger.add_dep(sub.id, held_parent.id, "parent-child")
    assert leaf.id not in ready(ledger)
    ledger.update(held_parent.id, status="open")
    assert {sub.id, leaf.id} <= ready(ledger)


def test_deferred_ancestor_latest_defer_wins(ledger: Ledger) -> None:
    root, c, g, gg = _chain(ledger)
    ledger.update(c, defer_until=PAST)
    ledger.update(g, defer_until="2002-01-01T00:00:00Z")
    assert {c, g, gg} <= ready(ledger)
    ledger.update(root, defer_until=FUTURE)
    assert not {root, c, g, gg} & ready(ledger)
    ledger.update(root, defer_until=None)
    assert {c, g, gg} <= ready(ledger)


# ------------------------------------------------------------------- never ready


@pytest.mark.parametrize("kind", ["pinned", "ephemeral", "is_template"])
def test_pinned_ephemeral_template_never_ready(ledger: Ledger, kind: str) -> None:
    b = ledger.create("b", **{kind: True})
    r = ready(ledger)
    assert b.id not in r
    ledger.add_dep(b.id, ledger.create("blocker").id)
    assert b.id not in blocked_ids(ledger)
    ledger.update(b.id, **{kind: False})
    assert b.id not in ready(ledger)  # now an ordinary bead, held by the blocker
    assert b.id in blocked_ids(ledger)


def test_infrastructure_types_never_ready(ledger: Ledger) -> None:
    t = ledger.create("task")
    infra = [ledger.create(f"machinery {k}", issue_type=k) for k in INFRA_TYPES]
    assert ready(ledger) == {t.id}
    for b in infra:
        ledger.add_dep(b.id, t.id)
    assert blocked_ids(ledger) == set()
    ledger.update(infra[0].id, issue_type="task")
    assert blocked_ids(ledger) == {infra[0].id}
    ledger.close_bead(t.id)
    assert ready(ledger) == {infra[0].id}


def test_infrastructure_parent_does_not_hide_ready_children(ledger: Ledger) -> None:
    mol = ledger.create("mol", issue_type="molecule")
    step = ledger.create("step", parent=mol.id)
    assert ready(ledger) == {step.id}


# ------------------------------------------------------------------------------- order


def test_order_priority_then_created_then_id(ledger: Ledger, tmp_path) -> None:
    rows = [
        ("t-e", 2, "2025-01-01T00:00:03Z"),
        ("t-d", 2, "2025-01-01T00:00:01Z"),
        ("t-c", 2, "2025-01-01T00:00:01Z"),
        ("t-b", 0, "2025-01-01T00:00:09Z"),
        ("t-a", 4, "2025-01-01T00:00:00Z"),
        ("t-f", 1, "2025-01-01T00:00:05.123456789Z"),
        ("t-g", 1, "2025-01-01T00:00:05.2Z"),
    ]
    path = tmp_path / "order.jsonl"
    path.write_text("".join(json.dumps(
        {"id": i, "title": i, "status": "open", "priority": p, "issue_type": "task",
         "created_at": c, "updated_at": c}) + "\n" for i, p, c in rows))
    jsonl.import_jsonl(ledger, str(path))
    expect = ["t-b", "t-f", "t-g", "t-c", "t-d", "t-e", "t-a"]
    assert ready_ids(ledger) == expect
    assert ready_ids(ledger) == reference_ready_ids(ledger)
    assert ready_ids(ledger, limit=3) == expect[:3]
    assert [b["id"] for b in json.loads(ledger.ready_json())] == expect


def test_order_of_created_beads_is_oldest_first(ledger: Ledger) -> None:
    made = [ledger.create(f"b{i}", priority=2).id for i in range(6)]
    urgent = ledger.create("urgent", priority=0)
    assert ready_ids(ledger) == [urgent.id, *made]


# ----------------------------------------------------------------------------- blocked


def test_blocked_lists_exactly_the_held_open_beads(ledger: Ledger) -> None:
    a = ledger.create("a")
    b = ledger.create("b", deps=[("blocks", a.id)])
    c = ledger.create("c", deps=[("blocks", a.id), ("waits-for", b.id)])
    kid = ledger.create("kid", parent=c.id)
    ledger.create("infra", issue_type="gate", deps=[("blocks", a.id)])
    ledger.create("wisp", ephemeral=True, deps=[("blocks", a.id)])
    busy = ledger.create("busy", deps=[("blocks", a.id)])
    ledger.update(busy.id, status="in_progress")
    closed = ledger.create("closed", deps=[("blocks", a.id)])
    ledger.close_bead(closed.id, force=True)
    st = ledger.create("st", status="blocked")
    got = {x["id"]: x for x in ledger.blocked()}
    assert set(got) == {b.id, c.id, kid.id, st.id}
    assert got[b.id]["blocked_by"] == [a.id]
    assert got[c.id]["blocked_by"] == sorted([a.id, b.id])
    assert got[c.id]["blocked_by_count"] == 2
    assert got[kid.id]["blocked_by"] == []
    assert "held by an ancestor" in got[kid.id]["held_by"]
    assert "status blocked" in got[st.id]["held_by"]
    # the reference agrees: blocked = held, open-ish, offered-type beads
    held = reference_held(ledger)
    assert {i for i in got} == {i for i, h in held.items() if h and i in got}
    # ready and blocked never overlap
    assert not set(got) & ready(ledger)
    ledger.close_bead(a.id)
    got = {x["id"] for x in ledger.blocked()}
    assert got == {c.id, kid.id, st.id}


def test_blocked_filters(ledger: Ledger) -> None:
    a = ledger.create("a")
    b = ledger.create("b", issue_type="bug", deps=[("blocks", a.id)])
    ledger.create("c", deps=[("blocks", a.id)])
    assert [x["id"] for x in ledger.blocked(Filter(issue_type=["bug"]))] == [b.id]


# ------------------------------------------------------------------------------ cycles


@pytest.mark.parametrize("closing_type", BLOCKING_DEP_TYPES)
def test_blocking_cycle_refused_and_ledger_unchanged(ledger: Ledger, closing_type: str) -> None:
    a = ledger.create("a")
    b = ledger.create("b", deps=[("blocks", a.id)])
    c = ledger.create("c", deps=[("waits-for", b.id)])
    d = ledger.create("d", deps=[("conditional-blocks", c.id)])
    before = snapshot(ledger)
    with pytest.raises(CycleError) as err:
        ledger.add_dep(a.id, d.id, closing_type)
    msg = str(err.value)
    assert "cycle" in msg and all(x in msg for x in (a.id, b.id, c.id, d.id))
    assert snapshot(ledger) == before
    with pytest.raises(CycleError, match="cycle"):
        ledger.add_dep(a.id, b.id, closing_type)  # the shortest cycle: a <-> b
    assert snapshot(ledger) == before
    # edges that do not close a blocking cycle are fine
    ledger.add_dep(a.id, d.id, "related")
    ledger.add_dep(a.id, d.id, "parent-child")
    assert ledger.find_cycles() == []


def test_parent_child_cycle_refused(ledger: Ledger) -> None:
    root = ledger.create("root")
    c = ledger.create("c", parent=root.id)
    g = ledger.create("g", parent=c.id)
    before = snapshot(ledger)
    with pytest.raises(CycleError, match="cycle"):
        ledger.add_dep(root.id, g.id, "parent-child")
    with pytest.raises(CycleError):
        ledger.add_dep(root.id, c.id, "parent_child")
    assert snapshot(ledger) == before


def test_non_blocking_cycles_allowed(ledger: Ledger) -> None:
    a = ledger.create("a")
    b = ledger.create("b", deps=[("related", a.id)])
    assert ledger.add_dep(a.id, b.id, "related") is True
    assert ledger.add_dep(a.id, b.id, "tracks") is True
    assert {a.id, b.id} <= ready(ledger)


# ----------------------------------------------------------------------------- filters


def test_ready_filters(ledger: Ledger) -> None:
    a = ledger.create("a", assignee="bob", labels=["x", "y"], priority=1)
    b = ledger.create("b", issue_type="bug", labels=["x"], priority=3)
    c = ledger.create("c", assignee="bob", issue_type="bug")
    ledger.create("d", assignee="bob", deps=[("blocks", c.id)])
    assert ready_ids(ledger, f=Filter(assignee="bob")) == [a.id, c.id]
    assert ready_ids(ledger, f=Filter(issue_type=["bug"])) == [c.id, b.id]
    assert ready_ids(ledger, f=Filter(labels_all=["x"])) == [a.id, b.id]
    assert ready_ids(ledger, f=Filter(labels_all=["x", "y"])) == [a.id]
    assert ready_ids(ledger, f=Filter(labels_any=["y", "nope"])) == [a.id]
    assert ready_ids(ledger, f=Filter(unassigned=True)) == [b.id]
    assert ready_ids(ledger, f=Filter(priority_max=2)) == [a.id, c.id]
    assert ready_ids(ledger, limit=2) == [a.id, c.id]
    assert ready_ids(ledger, f=Filter(assignee="bob"), limit=1) == [a.id]
    assert ready_ids(ledger, f=Filter(assignee="nobody")) == []


def test_ready_mol_filter_includes_wisp_steps(ledger: Ledger) -> None:
    root = ledger.create("wisp root", issue_type="molecule", ephemeral=True)
    s1 = ledger.create("s1", parent=root.id, ephemeral=True)
    ledger.create("s2", parent=root.id, ephemeral=True, deps=[("blocks", s1.id)])
    other = ledger.create("other")
    assert ready_ids(ledger) == [other.id]
    assert ready_ids(ledger, f=Filter(mol=root.id)) == [s1.id]


def test_ready_json_matches_ready(ledger: Ledger) -> None:
    assert json.loads(ledger.ready_json()) == []
    blocker = ledger.create("blocker")
    ledger.create("held", deps=[("blocks", blocker.id)])
    ledger.create("rich", issue_type="feature", priority=0, description="d", design="g",
                  acceptance_criteria="ac", notes="n", labels=["b", "a"], assignee="al",
                  owner="ow", due_at="2030-01-01", defer_until=PAST, external_ref="x-1",
                  metadata={"z": None, "a": [1, {"b": True}], "s": "quote\"d ünï"},
                  estimated_minutes=15)
    ledger.create("pinned-status target")
    ledger.create("plain 'quoted' \\ title 100% %s %d", description="tab\there\nnew line\x01")
    got = json.loads(ledger.ready_json())
    want = [dict(b) for b in ledger.ready()]
    assert got == want
    assert [g["id"] for g in got] == ready_ids(ledger)
    assert len(got) == 4
    rich = next(g for g in got if g["title"] == "rich")
    assert rich["metadata"] == {"z": None, "a": [1, {"b": True}], "s": "quote\"d ünï"}
    assert rich["labels"] == ["a", "b"]
    f = Filter(labels_all=["a"])
    assert json.loads(ledger.ready_json(f)) == [dict(b) for b in ledger.ready(f)]
    assert json.loads(ledger.ready_json(limit=2)) == want[:2]


def test_blocking_edges_between_ancestor_and_descendant_are_refused(ledger: Ledger) -> None:
    """Either direction would deadlock under the rule, so it is refused like a cycle."""

    epic = ledger.create("epic", issue_type="epic")
    child = ledger.create("child", parent=epic["id"])
    grandchild = ledger.create("grandchild", parent=child["id"])
    before = ledger.events()
    for a, b in ((epic["id"], grandchild["id"]), (grandchild["id"], epic["id"]),
                 (child["id"], epic["id"])):
        with pytest.raises(CycleError, match="deadlock"):
            ledger.add_dep(a, b, "blocks")
    with pytest.raises(CycleError, match="deadlock"):
        ledger.create("sub", parent=child["id"], deps=[("blocks", epic["id"])])
    assert ledger.events() == before
    # nothing was held by the refused edges
    assert sorted(b["id"] for b in ledger.ready()) == sorted(
        [epic["id"], child["id"], grandchild["id"]])
    ledger.add_dep(epic["id"], grandchild["id"], "related")  # non-blocking edges are fine
