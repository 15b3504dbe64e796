"""Another town's text is stored defanged: terminal controls never reach a reader."""

from __future__ import annotations

import json

from gastown import Ledger
from gastown.federation import remotes
from gastown.federation.remotes import merge, remote_beads

ESC, BIDI = "\x1b", "\u202e"


def _record(seq: int, title: str, description: str) -> dict:
    bead = {"id": "x-1", "title": title, "status": "open", "priority": 2, "issue_type": "task",
            "description": description, "labels": [f"l{ESC}[2J"],
            "comments": [{"text": f"hi{ESC}]0;owned{chr(7)}"}]}
    return {"seq": seq, "kind": "bead", "at": "2026-11-29T00:00:00Z",
            "body": {"id": "x-1", "bead": bead, "uri": "gt://a/b/_/x-1"}}


def test_merge_keeps_text_and_line_breaks_but_no_controls() -> None:
    state: dict = {}
    changed = merge(state, [_record(1, f"red {ESC}[31mtitle{BIDI}", "line one\n\tline two\r")])
    bead = changed["bead.x-1"]["body"]["bead"]
    assert bead["title"] == "red [31mtitle"
    assert bead["description"] == "line one\n\tline two"
    assert bead["labels"] == ["l[2J"] and bead["comments"] == [{"text": "hi]0;owned"}]
    # the same record again, or an older one, changes nothing (order-free merge kept)
    assert merge(state, [_record(1, "other", "")]) == {}


def test_readers_get_the_defanged_copy(ledger: Ledger) -> None:
    changed = merge({}, [_record(3, f"t{ESC}[1m", "d")])
    ledger.kv_set(f"{remotes._R}r", '{"name": "r", "uri": "gt://a/b", "url": "/nowhere"}')
    ledger.kv_set("fed.bead.r.x-1", json.dumps(changed["bead.x-1"]))
    (bead,) = remote_beads(ledger, "r")
    assert ESC not in repr(bead) and bead["title"] == "t[1m"
