"""Conformance: the ledger's data model (DESIGN §3.1, §3.2).

Every test takes ``ledger`` and runs unchanged on SQLite and PostgreSQL.
"""

from __future__ import annotations

import math

import pytest

from gastown import Ledger
from gastown.errors import (
    ConflictError,
    CycleError,
    NotFoundError,
    UsageError,
    ValidationError,
)
from gastown.ledger import ids as ids_mod
from gastown.ledger.model import DEP_TYPES, STATUSES
from helpers.ledgertools import snapshot


def hash_part(bead_id: str) -> str:
    return bead_id.rsplit("-", 1)[1].split(".")[0]


# ----------------------------------------------------------------------------- create


def test_create_with_every_field(ledger: Ledger) -> None:
    blocker = ledger.create("blocker")
    other = ledger.create("other")
    parent = ledger.create("parent epic", issue_type="epic")
    bead = ledger.create(
        "  Fix the thing  ",
        issue_type="bug",
        priority=1,
        description="desc text",
        design="design text",
        acceptance_criteria="it works",
        notes="some notes",
        labels=["zeta", "alpha", "alpha"],
        parent=parent.id,
        deps=[("blocks", blocker.id), ("related", other.id)],
        assignee="alice",
        owner="bob",
        defer_until="2099-01-02T03:04:05Z",
        due_at="2099-02-01",
        ephemeral=False,
        metadata={"k": [1, 2], "nested": {"x": None}, "s": "v"},
        estimated_minutes=45,
        external_ref="gh-12",
    )
    got = ledger.show(bead.id)
    assert got["id"] == f"{parent.id}.1"
    assert got["title"] == "Fix the thing"
    assert got["issue_type"] == "bug"
    assert got["priority"] == 1
    assert got["description"] == "desc text"
    assert got["design"] == "design text"
    assert got["acceptance_criteria"] == "it works"
    assert got["notes"] == "some notes"
    assert got["labels"] == ["alpha", "zeta"]
    assert got["assignee"] == "alice"
    assert got["owner"] == "bob"
    assert got["defer_until"] == "2099-01-02T03:04:05Z"
    assert got["due_at"] == "2099-02-01T00:00:00Z"
    assert got["metadata"] == {"k": [1, 2], "nested": {"x": None}, "s": "v"}
    assert got["estimated_minutes"] == 45
    assert got["external_ref"] == "gh-12"
    assert got["status"] == "open"
    assert got["created_by"] == "tester"
    assert got["created_at"] == got["updated_at"]
    assert "closed_at" not in got and "ephemeral" not in got
    edges = {(d["depends_on_id"], d["type"]) for d in got["dependencies"]}
    assert edges == {(parent.id, "parent-child"), (blocker.id, "blocks"), (other.id, "related")}
    assert all(d["created_by"] == "tester" for d in got["dependencies"])
    # the parent lists the child among its dependents
    assert [d["issue_id"] for d in ledger.dependents(parent.id)] == [bead.id]
    assert got == {**ledger.get(bead.id), "dependencies": got["dependencies"],
                   "dependents": [], "comments": []}


def test_create_ephemeral_pinned_template_flags(ledger: Ledger) -> None:
    w = ledger.create("wisp", ephemeral=True)
    p = ledger.create("pinned", pinned=True)
    t = ledger.create("template", is_template=True)
    plain = ledger.create("plain")
    assert ledger.get(w.id)["ephemeral"] is True
    assert ledger.get(p.id)["pinned"] is True
    assert ledger.get(t.id)["is_template"] is True
    assert "ephemeral" not in ledger.get(plain.id)
    # list() leaves wisps and templates out unless asked
    listed = {b.id for b in ledger.list()}
    assert listed == {p.id, plain.id}


def test_defaults(ledger: Ledger) -> None:
    b = ledger.create("x")
    assert (b["priority"], b["issue_type"], b["status"]) == (2, "task", "open")
    assert b.id.startswith("t-")
    assert "labels" not in b and "assignee" not in b


def test_priority_out_of_range_refused(ledger: Ledger) -> None:
    before = snapshot(ledger)
    for bad in (5, -1, "P9", "high", True, 2.5, None):
        with pytest.raises(ValidationError, match="priority"):
            ledger.create("x", priority=bad)
    assert snapshot(ledger) == before


def test_priority_spellings(ledger: Ledger) -> None:
    for given, expect in [(0, 0), (4, 4), ("P1", 1), ("3", 3), ("p0", 0)]:
        assert ledger.create("x", priority=given)["priority"] == expect


def test_field_validation_errors(ledger: Ledger) -> None:
    b = ledger.create("ok")
    before = snapshot(ledger)
    with pytest.raises(ValidationError, match="status 'bogus'"):
        ledger.create("x", status="bogus")
    with pytest.raises(ValidationError, match="issue type 'bogus'"):
        ledger.create("x", issue_type="bogus")
    for title in ("", "   "):
        with pytest.raises(ValidationError, match="title"):
            ledger.create(title)
    with pytest.raises(ValidationError, match="title"):
        ledger.create("two\nlines")
    with pytest.raises(ValidationError, match="estimate"):
        ledger.create("x", estimated_minutes=-3)
    with pytest.raises(ValidationError, match="status"):
        ledger.update(b.id, status="bogus")
    with pytest.raises(ValidationError, match="priority"):
        ledger.update(b.id, priority=7)
    with pytest.raises(ValidationError, match="issue type"):
        ledger.update(b.id, issue_type="nope")
    with pytest.raises(ValidationError, match="title"):
        ledger.update(b.id, title=" ")
    with pytest.raises(ValidationError, match="timestamp"):
        ledger.update(b.id, due_at="next tuesday-ish")
    with pytest.raises(UsageError, match="id"):
        ledger.update(b.id, id="t-other")
    with pytest.raises(ValidationError, match="label"):
        ledger.add_label(b.id, "has space")
    assert snapshot(ledger) == before


def test_unknown_ids_raise_not_found_naming_the_id(ledger: Ledger) -> None:
    b = ledger.create("ok")
    before = snapshot(ledger)
    calls = [
        lambda: ledger.get("t-nope"),
        lambda: ledger.show("t-nope"),
        lambda: ledger.update("t-nope", title="x"),
        lambda: ledger.close_bead("t-nope"),
        lambda: ledger.reopen("t-nope"),
        lambda: ledger.delete("t-nope"),
        lambda: ledger.claim("t-nope"),
        lambda: ledger.add_label("t-nope", "x"),
        lambda: ledger.add_comment("t-nope", "hi"),
        lambda: ledger.comments("t-nope"),
        lambda: ledger.deps("t-nope"),
        lambda: ledger.add_dep(b.id, "t-nope"),
        lambda: ledger.add_dep("t-nope", b.id),
        lambda: ledger.create("x", parent="t-nope"),
        lambda: ledger.create("x", deps=[("blocks", "t-nope")]),
        lambda: ledger.resolve_id("t-nope"),
        lambda: ledger.remove_dep(b.id, "t-nope"),
    ]
    for call in calls:
        with pytest.raises(NotFoundError, match="t-nope"):
            call()
    assert snapshot(ledger) == before


def test_resolve_id_forms(ledger: Ledger) -> None:
    b = ledger.create("x", id="t-abc1")
    ledger.create("y", id="t-abd2")
    assert ledger.resolve_id("t-abc1") == b.id
    assert ledger.resolve_id("abc1") == b.id
    assert ledger.resolve_id("t-abc") == b.id
    with pytest.raises(ConflictError, match="ambiguous"):
        ledger.resolve_id("t-ab")
    # '_' and '%' in what is typed are literal characters, not LIKE wildcards
    u = ledger.create("u", id="my_proj-k7q")
    ledger.create("v", id="myxproj-k7r")
    assert ledger.resolve_id("my_proj-k7") == u.id
    assert ledger.resolve_id("my_proj") == u.id
    with pytest.raises(NotFoundError):
        ledger.resolve_id("my%")


def test_an_empty_id_resolves_to_no_bead(ledger: Ledger) -> None:
    ledger.create("the only bead")  # an empty prefix would match it alone
    for empty in ("", " "):
        with pytest.raises(NotFoundError, match="cannot be empty"):
            ledger.resolve_id(empty)


# -------------------------------------------------------------------------- closed_at


def test_closed_at_set_exactly_when_closed(ledger: Ledger) -> None:
    b = ledger.create("x")
    assert "closed_at" not in ledger.get(b.id)
    closed = ledger.close_bead(b.id, reason="done")
    assert closed["status"] == "closed" and closed["closed_at"] and closed["close_reason"] == "done"
    again = ledger.close_bead(b.id)  # idempotent: still closed, same closed_at
    assert again["closed_at"] == closed["closed_at"]
    reopened = ledger.reopen(b.id)
    assert reopened["status"] == "open"
    assert "closed_at" not in reopened and "close_reason" not in reopened
    with pytest.raises(ConflictError, match="not closed"):
        ledger.reopen(b.id)
    # every status reached through update keeps the invariant
    for status in [*STATUSES, "closed", "open", "closed", "in_progress"]:
        got = ledger.update(b.id, status=status)
        assert got["status"] == status
        assert ("closed_at" in got) == (status == "closed"), status
    created_closed = ledger.create("born closed", status="closed")
    assert created_closed["closed_at"] == created_closed["created_at"]


def test_close_refused_with_open_blockers_or_children_unless_forced(ledger: Ledger) -> None:
    a = ledger.create("a")
    b = ledger.create("b", deps=[("blocks", a.id)])
    with pytest.raises(ConflictError, match=a.id):
        ledger.close_bead(b.id)
    assert ledger.get(b.id)["status"] == "open"
    assert ledger.close_bead(b.id, force=True)["status"] == "closed"
    p = ledger.create("p")
    c = ledger.create("c", parent=p.id)
    with pytest.raises(ConflictError, match="open children"):
        ledger.close_bead(p.id)
    ledger.close_bead(c.id)
    assert ledger.close_bead(p.id)["status"] == "closed"


def test_close_beads_is_all_or_nothing(ledger: Ledger) -> None:
    a = ledger.create("a")
    b = ledger.create("b", deps=[("blocks", ledger.create("blocker").id)])
    with pytest.raises(ConflictError):
        ledger.close_beads([a.id, b.id])
    assert ledger.get(a.id)["status"] == "open"


# ---------------------------------------------------------------------------- update


def test_update_each_field(ledger: Ledger) -> None:
    b = ledger.create("x")
    changes = {
        "title": "new title",
        "description": "d2",
        "design": "des2",
        "acceptance_criteria": "ac2",
        "notes": "n2",
        "priority": 0,
        "issue_type": "feature",
        "assignee": "carol",
        "owner": "dave",
        "due_at": "2030-01-01T00:00:00Z",
        "defer_until": "2001-01-01T00:00:00Z",
        "external_ref": "jira-1",
        "metadata": {"a": 1},
        "estimated_minutes": 90,
        "pinned": True,
        "source_formula": "quick-fix",
        "close_reason": "later",
        "created_by": "someone",
    }
    last_updated = b["updated_at"]
    for key, value in changes.items():
        got = ledger.update(b.id, **{key: value})
        assert got[key] == value, key
        assert got["updated_at"] >= last_updated
        last_updated = got["updated_at"]
    final = ledger.get(b.id)
    for key, value in changes.items():
        assert final[key] == value, key
    # clearing: empty strings and None remove optional values
    cleared = ledger.update(b.id, assignee="", description="", metadata=None, defer_until=None,
                            pinned=False)
    for key in ("assignee", "description", "metadata", "defer_until", "pinned"):
        assert key not in cleared, key
    # offsets are converted to UTC
    assert ledger.update(b.id, due_at="2030-01-01T02:00:00+02:00")["due_at"] == \
        "2030-01-01T00:00:00Z"


def test_update_without_change_is_a_no_op(ledger: Ledger) -> None:
    b = ledger.create("x", priority=1)
    before = snapshot(ledger)
    got = ledger.update(b.id, priority=1, title="x")
    assert got == b
    assert snapshot(ledger) == before


def test_update_status_in_progress_sets_started_at_once(ledger: Ledger) -> None:
    b = ledger.create("x")
    assert "started_at" not in b
    s1 = ledger.update(b.id, status="in_progress")["started_at"]
    ledger.update(b.id, status="open")
    assert ledger.update(b.id, status="in_progress")["started_at"] == s1


# ---------------------------------------------------------------- labels and comments


def test_labels_add_remove(ledger: Ledger) -> None:
    a = ledger.create("a", labels=["x"])
    b = ledger.create("b")
    assert ledger.add_label(a.id, "y") is True
    assert ledger.add_label(a.id, "y") is False
    assert ledger.add_label(b.id, "y") is True
    assert ledger.get(a.id)["labels"] == ["x", "y"]
    assert ledger.labels_all() == [("x", 1), ("y", 2)]
    assert ledger.remove_label(a.id, "x") is True
    assert ledger.remove_label(a.id, "x") is False
    assert ledger.get(a.id)["labels"] == ["y"]
    assert ledger.remove_label(a.id, "y") is True
    assert "labels" not in ledger.get(a.id)
    assert ledger.labels_all() == [("y", 1)]


def test_comments_have_integer_ids(ledger: Ledger) -> None:
    a = ledger.create("a")
    b = ledger.create("b")
    c1 = ledger.add_comment(a.id, "first")
    c2 = ledger.add_comment(b.id, "second", author="zed")
    c3 = ledger.add_comment(a.id, "third")
    assert [c1["id"], c2["id"], c3["id"]] == [1, 2, 3]
    assert all(isinstance(c["id"], int) for c in (c1, c2, c3))
    got = ledger.comments(a.id)
    assert [(c["id"], c["text"], c["author"]) for c in got] == [(1, "first", "tester"),
                                                                 (3, "third", "tester")]
    assert [c["id"] for c in ledger.show(b.id)["comments"]] == [2]
    assert ledger.show(b.id)["comments"][0]["author"] == "zed"
    with pytest.raises(ValidationError, match="empty"):
        ledger.add_comment(a.id, "   ")
    assert len(ledger.comments(a.id)) == 2


# ------------------------------------------------------------------------- kv, config


def test_kv_set_get_list_clear(ledger: Ledger) -> None:
    assert ledger.kv_get("missing") is None
    ledger.kv_set("b", "2")
    ledger.kv_set("a", "1")
    ledger.kv_set("a", "one")
    assert ledger.kv_get("a") == "one"
    assert ledger.kv_list() == [("a", "one"), ("b", "2")]
    assert ledger.kv_clear("a") is True
    assert ledger.kv_clear("a") is False
    assert ledger.kv_get("a") is None
    assert ledger.kv_list() == [("b", "2")]
    with pytest.raises(ValidationError):
        ledger.kv_set("", "x")


def test_config_and_prefix(ledger: Ledger) -> None:
    assert ledger.config()["issue_prefix"] == "t"
    ledger.set_config("some.key", "v")
    assert ledger.config()["some.key"] == "v"
    ledger.set_config("issue_prefix", "zz")
    assert ledger.prefix == "zz"
    assert ledger.create("x").id.startswith("zz-")
    reopened = Ledger(ledger.store, actor="other")  # a second handle reads the stored prefix
    assert reopened.prefix == "zz"


# ------------------------------------------------------------------------------- ids


def test_child_ids_and_depth_limit(ledger: Ledger) -> None:
    root = ledger.create("root", issue_type="epic")
    c1 = ledger.create("c1", parent=root.id)
    c2 = ledger.create("c2", parent=root.id)
    assert (c1.id, c2.id) == (f"{root.id}.1", f"{root.id}.2")
    g = ledger.create("g", parent=c1.id)
    gg = ledger.create("gg", parent=g.id)
    assert g.id == f"{root.id}.1.1" and gg.id == f"{root.id}.1.1.1"
    assert ids_mod.child_depth(gg.id) == 3
    before = snapshot(ledger)
    with pytest.raises(ValidationError, match="3 levels"):
        ledger.create("too deep", parent=gg.id)
    assert snapshot(ledger) == before
    assert {d["depends_on_id"] for d in ledger.deps(g.id)} == {c1.id}
    # numbering continues after a delete; the deleted id is never handed out again
    ledger.delete(c2.id)
    c3 = ledger.create("c3", parent=root.id)
    assert c3.id == f"{root.id}.3"
    # a forced id that takes the next number is skipped
    ledger.create("forced", id=f"{root.id}.4")
    assert ledger.create("c5", parent=root.id).id == f"{root.id}.5"


def test_forced_id_and_duplicates(ledger: Ledger) -> None:
    b = ledger.create("x", id="t-custom1")
    assert b.id == "t-custom1"
    before = snapshot(ledger)
    with pytest.raises(ConflictError, match="t-custom1"):
        ledger.create("again", id="t-custom1")
    with pytest.raises(ValidationError, match="invalid id"):
        ledger.create("bad", id="no spaces allowed")
    assert snapshot(ledger) == before
    other = ledger.create("other prefix", id="ext-zz9")
    assert ledger.get(other.id)["title"] == "other prefix"


def test_ids_never_reused_after_delete(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    a = ledger.create("a")
    deleted = ledger.delete(a.id)
    assert deleted == [a.id]
    assert not ledger.exists(a.id)
    with pytest.raises(ConflictError, match=a.id):
        ledger.create("again", id=a.id)
    # the hash generator proposing the retired id must be answered with another one
    real = ids_mod.hash_id

    def propose(prefix: str, seed: str, length: int, nonce: int = 0) -> str:
        return a.id if nonce == 0 else real(prefix, seed, length, nonce)

    monkeypatch.setattr(ids_mod, "hash_id", propose)
    b = ledger.create("b")
    assert b.id != a.id and b.id.startswith("t-")


def test_delete_cascade(ledger: Ledger) -> None:
    p = ledger.create("p")
    c = ledger.create("c", parent=p.id)
    g = ledger.create("g", parent=c.id)
    ledger.add_label(c.id, "l")
    ledger.add_comment(g.id, "hi")
    before = snapshot(ledger)
    with pytest.raises(ConflictError, match="children"):
        ledger.delete(p.id)
    assert snapshot(ledger) == before
    assert sorted(ledger.delete(p.id, cascade=True)) == sorted([p.id, c.id, g.id])
    assert ledger.count() == 0
    assert ledger.labels_all() == []
    with ledger.store.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM comments") == 0
        assert tx.scalar("SELECT COUNT(*) FROM dependencies") == 0


def test_id_length_for_is_adaptive() -> None:
    lengths = [ids_mod.id_length_for(n) for n in range(0, 200_000, 997)]
    assert lengths == sorted(lengths)
    assert ids_mod.id_length_for(1) == 3
    assert ids_mod.id_length_for(10) == 3
    assert ids_mod.id_length_for(10**9) == 8
    for n in (100, 1000, 10_000, 100_000):
        length = ids_mod.id_length_for(n)
        p = 1 - math.exp(-(n * n) / (2 * 36.0**length))
        assert p < 0.25
        if length > 3:  # one shorter would have been too crowded
            assert 1 - math.exp(-(n * n) / (2 * 36.0 ** (length - 1))) >= 0.25
    assert ids_mod.id_length_for(1000) > ids_mod.id_length_for(100)


def test_created_ids_grow_with_count(ledger: Ledger) -> None:
    made = []
    with ledger.transaction() as t:
        for i in range(170):
            made.append(t.create(f"bead {i}").id)
    for i, bead_id in enumerate(made):
        assert len(hash_part(bead_id)) == ids_mod.id_length_for(i + 1), (i, bead_id)
    assert len(hash_part(made[0])) == 3
    assert len(hash_part(made[-1])) == 4
    assert len(set(made)) == len(made)


# ----------------------------------------------------------------------- dependencies


def test_all_dependency_types_and_a_custom_one(ledger: Ledger) -> None:
    assert len(DEP_TYPES) == 19
    target = ledger.create("target")
    for dep_type in [*DEP_TYPES, "my-custom-kind"]:
        src = ledger.create(f"src {dep_type}")
        assert ledger.add_dep(src.id, target.id, dep_type) is True
        assert ledger.add_dep(src.id, target.id, dep_type) is False  # already there
        assert [(d["depends_on_id"], d["type"]) for d in ledger.deps(src.id)] == \
            [(target.id, dep_type)]
    assert len(ledger.dependents(target.id)) == 20


ODD_NAMES = [
    ("parent_child", "parent-child"), ("Blocks", "blocks"), ("waits_for", "waits-for"),
    ("discovered_from", "discovered-from"), ("CONDITIONAL_BLOCKS", "conditional-blocks"),
    (" related ", "related"), ("relates_to", "relates-to"),
]


def test_odd_dependency_names_normalised(ledger: Ledger) -> None:
    for odd, expect in ODD_NAMES:
        a = ledger.create("a")
        b = ledger.create("b")
        ledger.add_dep(a.id, b.id, odd)
        assert [d["type"] for d in ledger.deps(a.id)] == [expect], odd
        c = ledger.create("c", deps=[(odd, b.id)])
        assert [d["type"] for d in ledger.deps(c.id)] == [expect], odd
        assert ledger.remove_dep(a.id, b.id, odd) == 1
        assert ledger.deps(a.id) == []


def test_invalid_dependency_type_refused(ledger: Ledger) -> None:
    a = ledger.create("a")
    b = ledger.create("b")
    for bad in ("", "   ", "two words"):
        with pytest.raises(ValidationError, match="dependency type"):
            ledger.add_dep(a.id, b.id, bad)
        with pytest.raises(ValidationError, match="dependency type"):
            ledger.create("c", deps=[(bad, b.id)])
    assert ledger.deps(a.id) == []
    assert ledger.count() == 2


def test_remove_dep(ledger: Ledger) -> None:
    a = ledger.create("a")
    b = ledger.create("b")
    ledger.add_dep(a.id, b.id, "blocks")
    ledger.add_dep(a.id, b.id, "related")
    assert ledger.remove_dep(a.id, b.id, "related") == 1
    assert [d["type"] for d in ledger.deps(a.id)] == ["blocks"]
    ledger.add_dep(a.id, b.id, "tracks")
    assert ledger.remove_dep(a.id, b.id) == 2
    assert ledger.deps(a.id) == []
    with pytest.raises(NotFoundError, match="no dependency"):
        ledger.remove_dep(a.id, b.id)


def test_self_dependency_refused(ledger: Ledger) -> None:
    a = ledger.create("a")
    with pytest.raises(CycleError, match="itself"):
        ledger.add_dep(a.id, a.id, "related")


def test_transaction_groups_changes_atomically(ledger: Ledger) -> None:
    before = snapshot(ledger)
    with pytest.raises(RuntimeError), ledger.transaction() as t:
        a = t.create("a")
        t.create("b", parent=a.id)
        t.add_label(a.id, "x")
        raise RuntimeError("boom")
    assert snapshot(ledger) == before
    with ledger.transaction() as t:
        a = t.create("a")
        b = t.create("b", parent=a.id)
    assert ledger.exists(a.id) and ledger.exists(b.id)
