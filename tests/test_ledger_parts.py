"""The Ledger is put together from small modules, and every public name still works."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gastown
from gastown.ledger import core

LEDGER_DIR = Path(core.__file__).parent
PARTS = ("core.py", "base.py", "reads.py", "writes.py", "graph.py", "bootstrap.py")

#: the public methods the command lines and the upper layers call
PUBLIC = (
    "open", "init", "close", "transaction", "snapshot", "prefix", "create", "update", "claim",
    "claim_next", "close_beads", "close_bead", "reopen", "delete", "add_dep", "remove_dep",
    "add_label", "remove_label", "add_comment", "kv_set", "kv_clear", "set_config", "get",
    "exists", "resolve_id", "show", "comments", "list", "ready", "ready_json", "ready_count",
    "blocked", "blocked_count", "count", "deps", "dependents", "dep_tree", "find_cycles",
    "search", "labels_all", "kv_get", "kv_list", "config", "stats", "events", "last_event_seq",
    "emit", "recompute_ready_state", "integrity_problems",
)


def test_the_ledger_modules_stay_small() -> None:
    sizes = {name: len((LEDGER_DIR / name).read_text(encoding="utf-8").splitlines())
             for name in PARTS}
    assert all(n <= 400 for n in sizes.values()), sizes


def test_every_public_name_is_where_it_was() -> None:
    assert gastown.Ledger is core.Ledger
    assert core.Filter is gastown.Filter
    missing = [name for name in PUBLIC if not hasattr(core.Ledger, name)]
    assert missing == []
    assert set(core.__all__) == {"Ledger", "Filter"}


def test_a_ledger_made_and_opened_through_the_parts(tmp_path: Path) -> None:
    led = core.Ledger.init(str(tmp_path), prefix="pt")
    try:
        a = led.create("first")
        b = led.create("second", deps=[("blocks", a["id"])])
        assert [x["id"] for x in led.blocked()] == [b["id"]]
        assert led.dep_tree(b["id"])[1]["id"] == a["id"]
        assert led.integrity_problems() == []
    finally:
        led.close()
    with core.Ledger.open(cwd=str(tmp_path)) as again:
        assert again.prefix == "pt" and again.count() == 2


def test_doctor_agrees_with_the_stored_state_of_a_remote_edge(ledger: Any) -> None:
    """A bead freed by a sync (its ``gt://`` blocker closed over there) is not stale."""
    remote = "gt://alice@example.com/atown/_/at-1"
    bead = ledger.create("needs alice's work")["id"]
    ledger.add_dep(bead, remote, "blocks")
    assert ledger.integrity_problems() == []
    ledger.kv_set_many([], remote_closed={remote: True})
    assert [b["id"] for b in ledger.ready()] == [bead]
    assert ledger.integrity_problems() == []
    ledger.kv_set_many([], remote_closed={remote: False})
    assert ledger.ready() == []
    assert ledger.integrity_problems() == []
