"""Cross-town dependencies count in ready (issue 13, item 5).

A local bead that depends on another town's bead (``gt://…``) is held until that
bead is closed as of the last sync; the sync's own transaction frees it.  On each
backend through the ledger, then end to end with real towns, ``gt`` and ``bd``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gastown.ledger import ready as ready_rule

REMOTE = "gt://alice@example.com/atown/_/at-1"


def _ids(beads: list[Any]) -> list[str]:
    return [b["id"] for b in beads]


# ------------------------------------------------------------------ the ledger, each backend
def test_remote_edge_holds_until_the_sync_says_closed(ledger: Any) -> None:
    local = ledger.create("needs alice's work")["id"]
    other = ledger.create("free")["id"]
    assert ledger.add_dep(local, REMOTE, "blocks")
    assert _ids(ledger.ready()) == [other]
    blocked = {b["id"]: b for b in ledger.blocked()}
    assert blocked[local]["blocked_by"] == [REMOTE]
    assert ledger.recompute_ready_state() == 0  # incremental state == from scratch

    # the sync's write commits the closed state and the refreshed hold together
    before = ledger.last_event_seq()
    ledger.kv_set_many([("fed.bead.alice.at-1", "{}")], "federation.synced", {"remote": "alice"},
                       remote_closed={REMOTE: True})
    assert [e["type"] for e in ledger.events(since_seq=before)] == ["federation.synced"]
    assert set(_ids(ledger.ready())) == {local, other}
    assert ledger.recompute_ready_state() == 0

    # reopened over there: held again; an unrelated remote bead changes nothing
    ledger.kv_set_many([], remote_closed={REMOTE: False, REMOTE + "x": True})
    assert _ids(ledger.ready()) == [other]
    assert ledger.recompute_ready_state() == 0

    # removing the edge frees it; doctor does not call such an edge dangling
    ledger.add_dep(other, "gt://bob@example.com/btown/_/bt-9", "waits-for")
    assert not any("unknown issues" in p for p in ledger.integrity_problems())
    assert ledger.remove_dep(local, REMOTE) == 1
    assert _ids(ledger.ready()) == [local]


def test_reference_rule_agrees() -> None:
    beads = {"x-1": {"status": "open", "created_at": "1"}, "x-2": {"status": "open",
                                                                  "created_at": "2"}}
    deps = [("x-1", REMOTE, "blocks"), ("x-2", REMOTE, "related")]
    assert ready_rule.reference_ready(beads, deps, "3") == ["x-2"]
    assert ready_rule.reference_held(beads, deps, "3", remote_closed=[REMOTE]) == \
        {"x-1": False, "x-2": False}


# ------------------------------------------------------------------ three towns, end to end
pytest.importorskip("cryptography")

from helpers.fedtowns import bead, js, make_town, one_line_error, run  # noqa: E402


def test_cross_town_dependency_through_sync(tmp_path: Path) -> None:
    hub = tmp_path / "alice-log"
    a = make_town(tmp_path, "atown", "alice@example.com",
                  f'publish = "all"\npublish_to = ["{hub}"]')
    c = make_town(tmp_path, "ctown", "carol@example.com")
    a1 = bead(a, "alice's api")
    run(a, "gt", "publish")
    run(c, "gt", "remote", "add", "alice", "gt://alice@example.com/atown", "--url", str(hub))
    run(c, "gt", "remote", "sync")
    c1 = bead(c, "carol's client")
    c2 = bead(c, "carol's other work")
    # any rig segment and hop:// name the same bead; stored rig-less
    added = js(c, "bd", "dep", "add", c1, f"hop://alice@example.com/atown/web/{a1}")
    target = f"gt://alice@example.com/atown/_/{a1}"
    assert added["depends_on_id"] == target
    run(c, "bd", "dep", "add", c2, "gt://alice@example.com/atown/_/nope-1", "-t", "waits-for")
    assert _ids(js(c, "bd", "ready")) == []
    text = run(c, "bd", "blocked").stdout
    assert f"waiting on {target} (open as of sync" in text
    assert "nope-1 (unknown remote bead" in text
    shown = js(c, "bd", "show", c1)[0]
    assert shown["dependencies"][0]["remote_reason"].startswith(f"waiting on {target} (open")
    assert "waiting on" in run(c, "bd", "show", c1).stdout

    # doctor --fix keeps both edges
    run(c, "bd", "doctor", "--fix")
    assert len(js(c, "bd", "show", c2)[0]["dependencies"]) == 1

    # alice closes; carol's sync frees c1 (and only c1)
    run(a, "bd", "close", a1)
    run(a, "gt", "publish")
    run(c, "gt", "remote", "sync", "alice")
    assert _ids(js(c, "bd", "ready")) == [c1]
    assert "nope-1" in run(c, "bd", "blocked").stdout
    # removing the edge to the unknown bead frees c2
    run(c, "bd", "dep", "remove", c2, "gt://alice@example.com/atown/_/nope-1")
    assert sorted(_ids(js(c, "bd", "ready"))) == sorted([c1, c2])
    # a town address is not a bead: one line, usage error
    line = one_line_error(run(c, "bd", "dep", "add", c1, "gt://alice@example.com/atown", rc=2))
    assert "bead" in line
    assert json.loads(run(c, "bd", "dep", "list", c1, "--json").stdout)["dependencies"]
