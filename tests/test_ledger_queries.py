"""Conformance: the named queries the town, the controller and chemistry ask
(:mod:`gastown.ledger.queries`), and the capabilities ``Store``/``Tx`` declare
(``durable``, ``skip_locked_clause``, ``changed_rows``).  Both backends.
"""

from __future__ import annotations

from pathlib import Path

from gastown import Ledger
from gastown.ledger.store import Store, Tx


def test_edges_from_lists_every_edge_sorted_and_filters_types(ledger: Ledger) -> None:
    a, b, c = (ledger.create(n).id for n in "abc")
    ledger.add_dep(a, c, "blocks")
    ledger.add_dep(a, b, "related")
    ledger.add_dep(b, c, "parent-child")
    with ledger.snapshot() as r:
        assert r.edges_from([b, a]) == sorted([(a, c, "blocks"), (a, b, "related"),
                                               (b, c, "parent-child")])
        assert r.edges_from([a, b], ("parent-child",)) == [(b, c, "parent-child")]
        assert r.edges_from([a], ()) == []
        assert r.edges_from([]) == []


def test_edges_from_reads_more_ids_than_one_in_list_holds(ledger: Ledger) -> None:
    hub = ledger.create("hub").id
    with ledger.transaction() as t:
        ids = [t.create(f"b{i}").id for i in range(450)]
        for i in ids:
            t.add_dep(i, hub, "related")
    with ledger.snapshot() as r:
        assert len(r.edges_from(ids)) == 450


def test_open_blockers_of_skips_done_targets(ledger: Ledger) -> None:
    a, b, c, d = (ledger.create(n).id for n in "abcd")
    ledger.add_dep(a, b, "blocks")
    ledger.add_dep(a, c, "blocks")
    ledger.add_dep(a, d, "related")  # not a blocking type
    ledger.close_bead(c)
    with ledger.snapshot() as r:
        assert r.open_blockers_of([a, b]) == {a: [b]}
        assert r.open_blockers(a) == [b]


def test_tracked_beads(ledger: Ledger) -> None:
    convoy = ledger.create("convoy", issue_type="convoy").id
    x = ledger.create("x", priority=1, assignee="ann").id
    ledger.add_dep(convoy, x, "tracks")
    with ledger.snapshot() as r:
        assert r.tracked_beads(convoy) == [
            {"id": x, "title": "x", "status": "open", "assignee": "ann", "issue_type": "task",
             "held": False, "priority": 1}]
        assert r.tracked_beads(x) == []


def test_hooked_ids_and_hooked_work(ledger: Ledger) -> None:
    first = ledger.create("first").id
    second = ledger.create("second").id
    ledger.create("loose")
    ledger.update(second, status="hooked", assignee="ann")
    ledger.update(first, status="hooked", assignee="bob")
    with ledger.snapshot() as r:
        assert r.hooked_ids("ann") == [second]
        assert r.hooked_ids("nobody") == []
        assert r.hooked_work() == [("bob", first), ("ann", second)]


def test_retired_ids_and_unretire(ledger: Ledger) -> None:
    gone = ledger.create("gone").id
    ledger.delete(gone)
    with ledger.snapshot() as r:
        assert r.is_retired(gone) and not r.is_retired("t-nothing")
    with ledger.transaction() as t:
        t.unretire([gone])
    with ledger.snapshot() as r:
        assert not r.is_retired(gone)


def test_event_queries(ledger: Ledger) -> None:
    bead = ledger.create("b").id
    ledger.emit("hook.pinned", bead, {"from": "open"})
    ledger.emit("hook.pinned", bead, {"from": "in_progress"})
    with ledger.snapshot() as r:
        assert r.last_payload(bead, "hook.pinned") == {"from": "in_progress"}
        assert r.last_payload(bead, "hook.unpinned") is None
        assert r.first_actor("ledger.init") == "tester"
        assert r.first_actor("town.init") is None


def test_event_type_filters_match_exactly_or_by_prefix(ledger: Ledger) -> None:
    seqs = {t: ledger.emit(t, None) for t in ("mol_x.done", "molAx.done", "mol_x.more")}
    with ledger.snapshot() as r:
        assert r.nth_newest_seq(["mol_x.*"], 1) == seqs["mol_x.more"]
        assert r.nth_newest_seq(["mol_x.*"], 2) == seqs["mol_x.done"]
        assert r.nth_newest_seq(["mol_x.*"], 3) is None  # '_' is no wildcard
        assert r.nth_newest_seq(["MOL_X.*"], 1) is None  # nor is case folded
        assert r.nth_newest_seq(["mol_x.done", "molAx.*"], 2) == seqs["mol_x.done"]
        assert r.nth_newest_seq(["mol_x.*"], 0) is None
        assert r.nth_newest_seq(["molAx.done"], 1) == seqs["molAx.done"]
        assert r.nth_newest_seq(["molax.done"], 1) is None
    # the event log's own filter (bd events --type, gt status) agrees
    assert [e["type"] for e in ledger.events(types=["mol_x.*"])] == ["mol_x.done", "mol_x.more"]
    assert ledger.events(types=["MOL_X.*"]) == [] == ledger.events(types=["mol%"])


def test_kv_with_prefix_is_an_exact_prefix(ledger: Ledger) -> None:
    for key in ("gt.work.ann", "gt.work.bob", "GT.WORK.eve", "gt.workers", "gt_work.x"):
        ledger.kv_set(key, key.upper())
    with ledger.snapshot() as r:
        assert r.kv_with_prefix("gt.work.") == [("gt.work.ann", "GT.WORK.ANN"),
                                                ("gt.work.bob", "GT.WORK.BOB")]
        assert r.kv_with_prefix("gt_work") == [("gt_work.x", "GT_WORK.X")]
        assert r.kv_with_prefix("none.") == []


def test_kv_put_and_drop_write_no_event(ledger: Ledger) -> None:
    seq = ledger.last_event_seq()
    with ledger.transaction() as t:
        t.kv_put("cursor", "1")
        t.kv_put("cursor", "2")
        t.kv_put("other", "x")
    assert ledger.kv_get("cursor") == "2"
    with ledger.transaction() as t:
        assert t.kv_drop("cursor", "other", "missing") == 2
    assert ledger.kv_get("cursor") is None and ledger.kv_get("other") is None
    assert ledger.events(since_seq=seq) == []


def test_a_durable_transaction_commits_like_a_write(ledger: Ledger) -> None:
    with ledger.transaction("mq", durable=True) as t:
        bead = t.create("landed")
        if ledger.store.dialect == "sqlite":  # synchronous=FULL while it is open
            assert ledger.store._con.execute(  # type: ignore[attr-defined]
                "PRAGMA synchronous").fetchone()[0] == 2
    assert ledger.get(bead.id)["created_by"] == "mq"
    if ledger.store.dialect == "sqlite":  # and back to NORMAL after
        assert ledger.store._con.execute(  # type: ignore[attr-defined]
            "PRAGMA synchronous").fetchone()[0] == 1


def test_skip_locked_is_declared_on_every_transaction(ledger: Ledger) -> None:
    assert Tx.skip_locked_clause == ""
    with ledger.store.claim() as tx:
        claim_clause = tx.skip_locked_clause
    with ledger.store.write() as tx:
        write_clause = tx.skip_locked_clause
    assert write_clause == ""
    if ledger.store.dialect == "postgresql":
        assert "SKIP LOCKED" in claim_clause
    else:
        assert claim_clause == ""


def test_changed_rows_after_a_write(ledger: Ledger, tmp_path: Path) -> None:
    sqlite = ledger.store.dialect == "sqlite"
    reopened = Ledger.open(cwd=str(tmp_path)) if sqlite else Ledger(ledger.store)
    assert reopened.store.changed_rows() is False
    reopened.create("x")
    # SQLite counts its connection's changes for free; PostgreSQL would need a round trip
    assert reopened.store.changed_rows() is sqlite
    if sqlite:
        reopened.close()


def test_a_store_gets_durable_from_write_by_default() -> None:
    calls: list[str] = []

    class Minimal(Store):
        def write(self) -> object:
            calls.append("write")
            return "w"

        def claim(self) -> object:
            return "c"

        def read(self) -> object:
            return "r"

        def json_quote_sql(self, expr: str) -> str:
            return expr

        def json_array_agg_sql(self, text_expr: str) -> str:
            return text_expr

        def json_labels_fragment_sql(self, id_expr: str) -> str:
            return id_expr

        def close(self) -> None:
            pass

    store = Minimal()
    assert store.durable() == "w" and calls == ["write"]
    assert store.changed_rows() is False
