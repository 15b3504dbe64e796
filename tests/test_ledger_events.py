"""Conformance: every change writes its event, with its actor, in the same
transaction (DESIGN §2.4, §3.6); a refused change writes none.  Both backends.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gastown import Ledger
from gastown.errors import GastownError
from helpers.ledgertools import snapshot


def events_of(ledger: Ledger, fn: Callable[[], Any]) -> list[dict[str, Any]]:
    seq = ledger.last_event_seq()
    fn()
    return ledger.events(since_seq=seq)


def types_of(ledger: Ledger, fn: Callable[[], Any]) -> list[str]:
    return [e["type"] for e in events_of(ledger, fn)]


def test_init_writes_an_event(ledger: Ledger) -> None:
    events = ledger.events()
    assert [e["type"] for e in events] == ["ledger.init"]
    assert events[0]["payload"] == {"prefix": "t"}
    assert events[0]["actor"] == "tester"


def test_each_operation_writes_its_events(ledger: Ledger) -> None:
    a = ledger.create("a")
    b = ledger.create("b")
    cases: list[tuple[Callable[[], Any], list[str]]] = [
        (lambda: ledger.create("c"), ["bead.created"]),
        (lambda: ledger.update(a.id, title="renamed"), ["bead.updated"]),
        (lambda: ledger.update(a.id, title="renamed"), []),  # no change, no event
        (lambda: ledger.update(a.id, status="in_progress"), ["bead.status", "bead.updated"]),
        (lambda: ledger.update(a.id, status="open", assignee=""), ["bead.status",
                                                                    "bead.updated"]),
        (lambda: ledger.claim(a.id), ["bead.claimed"]),
        (lambda: ledger.add_dep(b.id, a.id, "blocks"), ["dep.added"]),
        (lambda: ledger.add_dep(b.id, a.id, "blocks"), []),  # already there
        (lambda: ledger.remove_dep(b.id, a.id), ["dep.removed"]),
        (lambda: ledger.add_label(a.id, "x"), ["label.added"]),
        (lambda: ledger.add_label(a.id, "x"), []),
        (lambda: ledger.remove_label(a.id, "x"), ["label.removed"]),
        (lambda: ledger.remove_label(a.id, "x"), []),
        (lambda: ledger.add_comment(a.id, "hello"), ["comment.added"]),
        (lambda: ledger.close_bead(a.id, reason="done"), ["bead.closed"]),
        (lambda: ledger.close_bead(a.id), []),  # already closed: idempotent
        (lambda: ledger.reopen(a.id), ["bead.reopened"]),
        (lambda: ledger.kv_set("k", "v"), ["kv.set"]),
        (lambda: ledger.kv_clear("k"), ["kv.cleared"]),
        (lambda: ledger.kv_clear("k"), []),
        (lambda: ledger.set_config("some.key", "v"), ["config.set"]),
        (lambda: ledger.delete(b.id), ["bead.deleted"]),
        (lambda: ledger.emit("patrol.tick", None, {"n": 1}), ["patrol.tick"]),
    ]
    for n, (fn, expected) in enumerate(cases):
        events = events_of(ledger, fn)
        assert [e["type"] for e in events] == expected, n
        assert all(e["actor"] == "tester" for e in events), n


def test_event_payloads_name_the_change(ledger: Ledger) -> None:
    a = ledger.create("a", priority=1)
    b = ledger.create("b")
    created = ledger.events(bead_id=a.id)[0]
    assert created["type"] == "bead.created"
    assert created["payload"]["title"] == "a" and created["payload"]["priority"] == 1
    [status, updated] = events_of(ledger, lambda: ledger.update(a.id, status="blocked"))
    assert status["payload"] == {"from": "open", "to": "blocked"}
    assert updated["payload"] == {"fields": ["status"]}
    [dep] = events_of(ledger, lambda: ledger.add_dep(b.id, a.id, "waits_for"))
    assert dep["bead_id"] == b.id
    assert dep["payload"] == {"depends_on_id": a.id, "type": "waits-for"}
    [claim] = events_of(ledger, lambda: ledger.claim(b.id, assignee="zoe"))
    assert claim["payload"] == {"assignee": "zoe"}
    seqs = [e["seq"] for e in ledger.events()]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_cascade_delete_and_molecule_autoclose_events(ledger: Ledger) -> None:
    p = ledger.create("p")
    ledger.create("c1", parent=p.id)
    ledger.create("c2", parent=p.id)
    assert types_of(ledger, lambda: ledger.delete(p.id, cascade=True)) == ["bead.deleted"] * 3
    mol = ledger.create("mol", issue_type="molecule")
    step = ledger.create("step", parent=mol.id)
    events = events_of(ledger, lambda: ledger.close_bead(step.id))
    assert [(e["type"], e["bead_id"]) for e in events] == [("bead.closed", step.id),
                                                           ("bead.closed", mol.id)]
    assert ledger.get(mol.id)["status"] == "closed"


def test_actor_of_each_ledger_handle_and_transaction(ledger: Ledger) -> None:
    other = Ledger(ledger.store, actor="rig/role/name")
    b = other.create("x")
    assert ledger.events(bead_id=b.id)[-1]["actor"] == "rig/role/name"
    assert ledger.get(b.id)["created_by"] == "rig/role/name"
    with ledger.transaction(actor="someone-else") as t:
        t.update(b.id, title="y")
    assert {e["actor"] for e in ledger.events(bead_id=b.id)[1:]} == {"someone-else"}


def _refused_operations(ledger: Ledger) -> list[Callable[[], Any]]:
    a = ledger.create("a")
    b = ledger.create("b", deps=[("blocks", a.id)])
    p = ledger.create("p")
    ledger.create("kid", parent=p.id)
    claimed = ledger.create("claimed")
    ledger.claim(claimed.id, assignee="alice")
    return [
        lambda: ledger.create("x", priority=9),
        lambda: ledger.create("", issue_type="task"),
        lambda: ledger.create("x", id=a.id),
        lambda: ledger.create("x", deps=[("blocks", "t-nope")]),
        lambda: ledger.update(a.id, status="nope"),
        lambda: ledger.update(a.id, title="ok", priority=7),
        lambda: ledger.update("t-nope", title="x"),
        lambda: ledger.close_bead(b.id),                  # open blocker
        lambda: ledger.close_bead(p.id),                  # open child
        lambda: ledger.close_beads([a.id, p.id]),          # second fails: first rolled back
        lambda: ledger.reopen(a.id),                      # not closed
        lambda: ledger.delete(p.id),                      # has children
        lambda: ledger.add_dep(a.id, b.id, "blocks"),     # cycle
        lambda: ledger.add_dep(a.id, a.id, "related"),    # self
        lambda: ledger.add_dep(a.id, b.id, "two words"),
        lambda: ledger.remove_dep(a.id, b.id),
        lambda: ledger.add_label(a.id, "bad label"),
        lambda: ledger.add_comment(a.id, "  "),
        lambda: ledger.claim(claimed.id, assignee="bob"),
        lambda: ledger.kv_set("", "v"),
    ]


def test_refused_operation_writes_no_event_and_changes_nothing(ledger: Ledger) -> None:
    for n, op in enumerate(_refused_operations(ledger)):
        before = snapshot(ledger)
        with pytest.raises(GastownError):
            op()
        assert snapshot(ledger) == before, n


def test_exception_in_transaction_rolls_back_events(ledger: Ledger) -> None:
    before = snapshot(ledger)
    with pytest.raises(KeyError), ledger.transaction() as t:
        b = t.create("x")
        t.add_label(b["id"], "l")
        t.emit("custom", b["id"])
        raise KeyError("abort")
    assert snapshot(ledger) == before


def test_events_filters(ledger: Ledger) -> None:
    a = ledger.create("a")
    ledger.create("b")
    ledger.add_label(a.id, "x")
    assert [e["type"] for e in ledger.events(bead_id=a.id)] == ["bead.created", "label.added"]
    assert [e["type"] for e in ledger.events(types=["label.*"])] == ["label.added"]
    assert len(ledger.events(limit=2)) == 2
    last = ledger.last_event_seq()
    assert ledger.events(since_seq=last) == []
    assert ledger.events()[-1]["seq"] == last
