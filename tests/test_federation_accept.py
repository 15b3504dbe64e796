"""``gt delegation accept``: the bead made and the answer published are one unit.

The bead and the town's answer commit in one ledger transaction; the signed
``delegation.answer`` record is appended after it and re-derived by every
publish.  Forced failures between and inside the steps leave neither a bead
without an answer nor an answer without a bead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("cryptography")

from gastown.config import load_config  # noqa: E402
from gastown.federation import delegation, publish  # noqa: E402
from gastown.ledger.core import Ledger  # noqa: E402
from gastown.ledger.ops import Txn  # noqa: E402
from helpers.fedtowns import js, run  # noqa: E402
from helpers.fedtowns import publishing_town as town  # noqa: E402

PRIME, SUB = "gt://prime.com/prime", "gt://sub.com/sub"


class Crash(Exception):
    """Stands for the process dying at that point."""


@pytest.fixture
def pair(tmp_path: Path) -> dict[str, Any]:
    p, s = town(tmp_path, "prime"), town(tmp_path, "sub")
    for t in (p, s):
        run(t, "gt", "publish")
    run(p, "gt", "remote", "add", "sub", SUB, "--url", str(tmp_path / "sub-log"))
    run(s, "gt", "remote", "add", "prime", PRIME, "--url", str(tmp_path / "prime-log"))
    job = run(p, "bd", "q", "the job").stdout.strip()
    did = js(p, "gt", "delegate", job, SUB)["id"]
    run(s, "gt", "remote", "sync", "prime")
    return {"prime": p, "sub": s, "job": job, "id": did, "root": tmp_path}


def answers_in_log(t: Path) -> list[dict[str, Any]]:
    lines = (t / ".gt" / "federation" / "log.jsonl").read_bytes().split(b"\n")
    return [json.loads(x)["body"] for x in lines
            if x and json.loads(x)["kind"] == "delegation.answer"]


def made_for(t: Path, did: str) -> list[dict[str, Any]]:
    """The beads of town ``t`` made for delegation ``did`` (read in process: one open)."""
    from gastown.ledger.query import Filter

    f = Filter()
    f.include_closed = True
    led = Ledger.open(str(t / ".beads" / "beads.db"))
    try:
        return [dict(b) for b in led.list(f, limit=0)
                if (led.get(b["id"]).get("metadata") or {}).get("delegation") == did]
    finally:
        led.close()


def accept_in_process(s: Path, did: str) -> None:
    led = Ledger.open(str(s / ".beads" / "beads.db"), actor="sub/crew/sam")
    try:
        delegation.answer(led, str(s / ".gt"), load_config(str(s / "town.toml")), [did], True)
    finally:
        led.close()


def test_a_crash_after_the_transaction_is_healed_by_the_next_publish(
        pair: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    p, s, did = pair["prime"], pair["sub"], pair["id"]

    def crash(*_a: Any, **_k: Any) -> Any:
        raise Crash

    monkeypatch.setattr(publish, "append", crash)
    with pytest.raises(Crash):
        accept_in_process(s, did)
    monkeypatch.undo()
    (made,) = made_for(s, did)  # the bead and the answer committed together
    (mine,) = js(s, "gt", "delegation", "list")["incoming"]
    assert (mine["status"], mine["bead"]) == ("accepted", f"{SUB}/_/{made['id']}")
    assert answers_in_log(s) == []  # the record had not gone out
    run(s, "gt", "publish")  # re-derived from the ledger
    (ans,) = answers_in_log(s)
    assert (ans["id"], ans["answer"], ans["bead"], ans["by"]) == \
        (did, "accepted", f"{SUB}/_/{made['id']}", "sub/crew/sam")
    run(s, "gt", "publish")
    assert len(answers_in_log(s)) == 1  # idempotent
    assert "already accepted" in run(s, "gt", "delegation", "accept", did, rc=4).stderr
    assert len(made_for(s, did)) == 1
    run(p, "gt", "remote", "sync", "sub")
    (out,) = js(p, "gt", "delegation", "list")["outgoing"]
    assert (out["status"], out["delegatee_bead"]) == ("accepted", f"{SUB}/_/{made['id']}")


def test_a_failure_inside_the_transaction_leaves_no_bead_and_no_answer(
        pair: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    s, did = pair["sub"], pair["id"]
    real = Txn.kv_set

    def failing(self: Txn, key: str, value: str, table: str = "kv") -> None:
        if key.startswith("fed.dlgin."):
            raise Crash
        real(self, key, value, table)

    monkeypatch.setattr(Txn, "kv_set", failing)
    with pytest.raises(Crash):
        accept_in_process(s, did)
    monkeypatch.undo()
    assert made_for(s, did) == [] and js(s, "bd", "list", "--all") == []  # rolled back
    (mine,) = js(s, "gt", "delegation", "list")["incoming"]
    assert mine["status"] == "pending"
    run(s, "gt", "publish")
    assert answers_in_log(s) == []
    taken = js(s, "gt", "delegation", "accept", did)[0]
    assert len(made_for(s, did)) == 1 and len(answers_in_log(s)) == 1
    assert answers_in_log(s)[0]["bead"] == taken["bead"]


def test_a_torn_append_or_an_unsaved_state_does_not_stop_the_log(pair: dict[str, Any]) -> None:
    p, s, did = pair["prime"], pair["sub"], pair["id"]
    fed = s / ".gt" / "federation"
    before = (fed / "state.json").read_text()
    run(s, "gt", "delegation", "accept", did)
    (fed / "state.json").write_text(before)  # as if the process died before saving it
    with open(fed / "log.jsonl", "ab") as fh:
        fh.write(b'{"v":1,"seq":')  # and a later append was cut mid-line
    run(s, "bd", "q", "more work")
    run(s, "gt", "publish")
    assert len(answers_in_log(s)) == 1
    run(p, "gt", "remote", "sync", "sub")  # every record verifies, in order
    (out,) = js(p, "gt", "delegation", "list")["outgoing"]
    assert out["status"] == "accepted"


def test_a_crash_after_gt_delegate_wrote_its_intent_is_healed_too(
        pair: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    p, s = pair["prime"], pair["sub"]
    job = run(p, "bd", "q", "second job").stdout.strip()

    def crash(*_a: Any, **_k: Any) -> Any:
        raise Crash

    monkeypatch.setattr(publish, "append", crash)
    led = Ledger.open(str(p / ".beads" / "beads.db"), actor="prime/crew/pat")
    try:
        with pytest.raises(Crash):
            delegation.delegate(led, str(p / ".gt"), load_config(str(p / "town.toml")), job,
                                SUB, {"portion": "all"})
    finally:
        led.close()
    monkeypatch.undo()
    (out,) = [d for d in js(p, "gt", "delegation", "list")["outgoing"] if d["local"] == job]
    assert out["status"] == "pending"
    assert "already delegated" in run(p, "gt", "delegate", job, SUB, rc=4).stderr
    run(p, "gt", "publish")  # re-derived from the ledger, once
    run(p, "gt", "publish")
    lines = (p / ".gt" / "federation" / "log.jsonl").read_bytes().split(b"\n")
    ids = [json.loads(x)["body"]["id"] for x in lines
           if x and json.loads(x)["kind"] == "delegation"]
    assert sorted(ids) == sorted([pair["id"], out["id"]])
    run(s, "gt", "remote", "sync", "prime")
    got = {d["id"]: d for d in js(s, "gt", "delegation", "list")["incoming"]}
    assert got[out["id"]]["terms"] == {"portion": "all"} and "local" not in got[out["id"]]
