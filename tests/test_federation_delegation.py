"""Delegation across three towns (prime -> sub -> contractor) with the real ``gt``/``bd``.

Each town publishes its signed log to a directory; the others sync it.  The
contractor's close flows up: sub's bead completes on sync, then prime's.  A
rejected delegation is reported back; a forged delegation record is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("cryptography")

from gastown.federation import keys  # noqa: E402
from gastown.federation.log import canonical, make_record, record_hash  # noqa: E402
from helpers.fedtowns import js, run  # noqa: E402
from helpers.fedtowns import publishing_town as town  # noqa: E402

PRIME, SUB, CON = ("gt://prime.com/prime", "gt://sub.com/sub", "gt://con.com/con")


def status(t: Path, bead_id: str) -> str:
    return str(js(t, "bd", "show", bead_id)[0]["status"])


@pytest.fixture
def towns(tmp_path: Path) -> dict[str, Path]:
    p, s, c = town(tmp_path, "prime"), town(tmp_path, "sub"), town(tmp_path, "con")
    for t in (p, s, c):
        run(t, "gt", "publish")
    run(p, "gt", "remote", "add", "sub", SUB, "--url", str(tmp_path / "sub-log"))
    run(s, "gt", "remote", "add", "prime", PRIME, "--url", str(tmp_path / "prime-log"))
    run(s, "gt", "remote", "add", "con", CON, "--url", str(tmp_path / "con-log"))
    run(c, "gt", "remote", "add", "sub", SUB, "--url", str(tmp_path / "sub-log"),
        "--accept-delegations")
    return {"prime": p, "sub": s, "con": c, "root": tmp_path}


def test_completion_cascades_prime_sub_contractor(towns: dict[str, Path]) -> None:
    p, s, c = towns["prime"], towns["sub"], towns["con"]
    job = run(p, "bd", "q", "build the bridge").stdout.strip()
    d1 = js(p, "gt", "delegate", job, f"{SUB}/backend", "--terms",
            "portion=backend,deadline=2025-02-01")
    assert d1["to"] == SUB and d1["terms"] == {"portion": "backend", "deadline": "2025-02-01"}
    run(s, "gt", "remote", "sync", "prime")
    pending = js(s, "gt", "delegation", "list")["incoming"]
    assert [(d["id"], d["status"], d["from"]) for d in pending] == \
        [(d1["id"], "pending", f"{PRIME}/_/{job}")]
    taken = js(s, "gt", "delegation", "accept", d1["id"], "--actor", "sub/crew/sam")[0]
    sub_id = taken["bead"].rsplit("/", 1)[1]
    assert taken["bead"] == f"{SUB}/backend/{sub_id}"
    meta = js(s, "bd", "show", sub_id)[0]["metadata"]
    assert meta["delegated_from"] == f"{PRIME}/_/{job}" and meta["accepted_by"] == "sub/crew/sam"
    child = run(s, "bd", "q", "local part", "--parent", sub_id).stdout.strip()
    d2 = js(s, "gt", "delegate", sub_id, CON)
    run(c, "gt", "remote", "sync")  # auto-accepted (--accept-delegations)
    (got,) = js(c, "gt", "delegation", "list")["incoming"]
    assert got["status"] == "accepted" and got["id"] == d2["id"]
    con_id = got["bead"].rsplit("/", 1)[1]
    run(c, "gt", "publish")
    run(p, "gt", "remote", "sync")
    out = js(p, "gt", "delegation", "list")["outgoing"]
    assert [(d["status"], d["answered_by"]) for d in out] == [("accepted", "sub/crew/sam")]
    run(s, "gt", "remote", "sync")
    assert status(s, sub_id) != "closed"  # nothing done yet
    run(c, "bd", "close", con_id, "--actor", "con/crew/cat")
    run(c, "gt", "publish")
    run(s, "gt", "remote", "sync")
    assert status(s, sub_id) != "closed"  # the local child is still open
    run(s, "bd", "close", child)
    run(s, "gt", "remote", "sync")
    assert status(s, sub_id) == "closed"
    run(s, "gt", "publish")
    assert status(p, job) != "closed"
    run(p, "gt", "remote", "sync")
    assert status(p, job) == "closed"
    reason = js(p, "bd", "show", job)[0]["close_reason"]  # who took the part, and where
    assert f"{SUB}/backend/{sub_id} (accepted by sub/crew/sam)" in reason
    (done,) = js(p, "gt", "delegation", "list")["outgoing"]
    assert done["status"] == "done" and done["part_status"] == "closed"


def test_ready_policy_rejection_and_forgery(towns: dict[str, Path]) -> None:
    p, s, root = towns["prime"], towns["sub"], towns["root"]
    with open(p / "town.toml", "a", encoding="utf-8") as fh:
        fh.write('on_delegated_done = "ready"\n')
    a = run(p, "bd", "q", "first").stdout.strip()
    b = run(p, "bd", "q", "second").stdout.strip()
    da = js(p, "gt", "delegate", a, SUB)
    db = js(p, "gt", "delegate", b, SUB)
    run(s, "gt", "remote", "sync")
    taken = js(s, "gt", "delegation", "accept", "--all")
    assert sorted(t["id"] for t in taken) == sorted([da["id"], db["id"]])
    bead_of = {t["id"]: t["bead"].rsplit("/", 1)[1] for t in taken}
    assert "already accepted" in run(s, "gt", "delegation", "reject", da["id"],
                                     rc=4).stderr
    run(s, "bd", "close", bead_of[da["id"]])
    run(s, "gt", "publish")
    run(p, "gt", "remote", "sync")
    shown = js(p, "bd", "show", a)[0]
    assert shown["status"] != "closed" and "delegation:ready" in shown["labels"]
    # rejection is reported back
    c = run(p, "bd", "q", "third").stdout.strip()
    dc = js(p, "gt", "delegate", c, SUB)
    run(s, "gt", "remote", "sync")
    run(s, "gt", "delegation", "reject", dc["id"], "-r", "no capacity")
    run(s, "gt", "publish")
    run(p, "gt", "remote", "sync")
    out = {d["id"]: d for d in js(p, "gt", "delegation", "list")["outgoing"]}
    assert (out[dc["id"]]["status"], out[dc["id"]]["reason"]) == ("rejected", "no capacity")
    assert status(p, c) == "open"
    # a forged delegation (signed with another key) is refused; nothing applied
    log = root / "prime-log" / "log.jsonl"
    lines = [ln for ln in log.read_bytes().split(b"\n") if ln]
    last = json.loads(lines[-1])
    mallory = keys.load_or_create(str(root / "mallory"))
    forged = make_record(mallory, seq=last["seq"] + 1, prev=record_hash(last), town=PRIME,
                         kind="delegation", at=last["at"],
                         body={**da, "id": "dlg-forged0000", "title": "forged"})
    log.write_bytes(b"".join(ln + b"\n" for ln in lines) + canonical(forged) + b"\n")
    proc = run(s, "gt", "remote", "sync", "prime", rc=5)
    assert "bad signature" in proc.stderr and "Traceback" not in proc.stderr
    ids = [d["id"] for d in js(s, "gt", "delegation", "list")["incoming"]]
    assert "dlg-forged0000" not in ids


def test_bad_input_is_one_line(towns: dict[str, Path]) -> None:
    p = towns["prime"]
    job = run(p, "bd", "q", "x").stdout.strip()
    for args, code in ((("delegate", job, "sub.com"), 2),
                       (("delegate", job, SUB, "--terms", "nokey"), 2),
                       (("delegate", job, PRIME), 2),
                       (("delegation", "accept", "dlg-none"), 3),
                       (("delegation", "accept"), 2)):
        proc = run(p, "gt", *args, rc=code)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr


def _append_signed(t: Path, log: Path, records: list[tuple[str, dict[str, object]]]) -> None:
    """Append records signed with town ``t``'s own key to its published ``log``."""
    own = keys.load_or_create(str(t / ".gt"))
    lines = [ln for ln in log.read_bytes().split(b"\n") if ln]
    last = json.loads(lines[-1])
    for kind, body in records:
        rec = make_record(own, seq=last["seq"] + 1, prev=record_hash(last), town=last["town"],
                          kind=kind, at=last["at"], body=body)
        lines.append(canonical(rec))
        last = rec
    log.write_bytes(b"".join(ln + b"\n" for ln in lines))


def test_ill_formed_delegation_records_are_kept_unapplied(towns: dict[str, Path]) -> None:
    p, s, root = towns["prime"], towns["sub"], towns["root"]
    job = run(p, "bd", "q", "job").stdout.strip()
    dj = js(p, "gt", "delegate", job, SUB)
    good = {"from": f"{PRIME}/_/{job}", "to": SUB, "rig": None, "terms": {}, "title": "t",
            "description": "", "by": "x"}
    _append_signed(p, root / "prime-log" / "log.jsonl", [
        ("delegation", {**good, "id": "dlg-bad1", "from": "not an address"}),
        ("delegation", {**good, "id": "dlg-bad2", "from": "gt://other.com/o/_/o-1"}),
        ("delegation", {**good, "id": "dlg-bad3", "title": {"not": "text"}}),
        ("delegation", {**good, "id": "dlg.bad4"}),
        ("delegation", {**good, "id": "dlg-fine", "title": "fine \x1b]0;owned\x07\x1b[2J"})])
    run(s, "gt", "remote", "sync", "prime")
    shown = run(s, "gt", "delegation", "list").stdout  # another town's text, on a terminal
    assert "dlg-fine" in shown and "fine" in shown and "\x1b" not in shown and "\x07" not in shown
    assert sorted(d["id"] for d in js(s, "gt", "delegation", "list")["incoming"]) == \
        sorted([dj["id"], "dlg-fine"])
    taken = js(s, "gt", "delegation", "accept", "--all")
    assert sorted(t["id"] for t in taken) == sorted([dj["id"], "dlg-fine"])
    run(s, "gt", "publish")
    # an answer naming no bead address of the answering town is not applied either
    _append_signed(s, root / "sub-log" / "log.jsonl", [
        ("delegation.answer", {"id": dj["id"], "delegator": PRIME, "answer": "accepted",
                               "reason": None, "bead": "garbage", "by": "x"})])
    run(p, "gt", "remote", "sync", "sub")
    (out,) = js(p, "gt", "delegation", "list")["outgoing"]
    assert out["status"] == "accepted"
    assert out["delegatee_bead"] == next(t["bead"] for t in taken if t["id"] == dj["id"])
