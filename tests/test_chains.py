"""Entity chains on the ledger (SQLite and PostgreSQL) and the town's Merkle log.

The proofs are checked against an independent RFC 6962 implementation written
here from the RFC's recursive definitions (MTH, PATH, PROOF/SUBPROOF, §2.1).
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest

from gastown import Ledger
from gastown.chains import about, entities, flags, records
from gastown.chains.entity import Keyring, entity_of, town_entity
from gastown.chains.log import check_proof, checkpoint, consistency, prove
from gastown.chains.merkle import Tree, leaf_hash, verify_consistency, verify_inclusion
from gastown.chains.read import find
from gastown.chains.setup import enable
from gastown.chains.verify import verify_ledger
from gastown.errors import ValidationError
from gastown.federation.log import canonical

AGENT, PERSON = "rig1/polecat/toast", "alice"


# ------------------------------------------------- RFC 6962 §2.1, written independently
def _h(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    if not d:
        return _h(b"")
    if len(d) == 1:
        return _h(b"\x00" + d[0])
    k = _k(len(d))
    return _h(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return path(m, d[:k]) + [mth(d[k:])]
    return path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m: int, d: list[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = _k(n)
    if m <= k:
        return subproof(m, d[:k], b) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


def proof(m: int, d: list[bytes]) -> list[bytes]:
    return subproof(m, d, True)


@pytest.mark.parametrize("seed", range(6))
def test_roots_and_proofs_match_an_independent_rfc6962(seed: int) -> None:
    rnd = random.Random(seed)
    n = rnd.randint(1, 70) if seed else 1
    data = [rnd.randbytes(rnd.randint(0, 40)) for _ in range(n)]
    tree = Tree([leaf_hash(x) for x in data])
    for size in range(1, n + 1):
        assert tree.root(size) == mth(data[:size])
    for _ in range(25):
        size = rnd.randint(1, n)
        i = rnd.randrange(size)
        p = tree.inclusion_proof(i, size)
        assert p == path(i, data[:size])
        assert verify_inclusion(leaf_hash(data[i]), i, size, p, mth(data[:size]))
        old = rnd.randint(1, size)
        c = tree.consistency_proof(old, size)
        assert c == proof(old, data[:size])
        assert verify_consistency(old, size, mth(data[:old]), mth(data[:size]), c)
        # a wrong leaf, index, root or path element fails
        assert not verify_inclusion(leaf_hash(data[i] + b"x"), i, size, p, mth(data[:size]))
        if size > 1:
            assert not verify_inclusion(leaf_hash(data[i]), (i + 1) % size, size, p,
                                        mth(data[:size]))
            bad = list(p)
            bad[rnd.randrange(len(bad))] = _h(b"evil")
            assert not verify_inclusion(leaf_hash(data[i]), i, size, bad, mth(data[:size]))
        if old < size:
            assert not verify_consistency(old, size, _h(b"other"), mth(data[:size]), c)
            assert not verify_consistency(old, size, mth(data[:old]), _h(b"x"), c)
    assert tree.root(0) == mth([])


# --------------------------------------------------------------------- on the ledger
@pytest.fixture
def chained(ledger: Ledger, tmp_path: Path) -> tuple[Ledger, Keyring]:
    gt_dir = tmp_path / ".gt"
    gt_dir.mkdir()
    keys = enable(ledger, str(gt_dir), "acme", "gt://me@x.org/acme", [AGENT, PERSON])
    return ledger, keys


def _work(led: Ledger) -> dict[str, str]:
    """alice files two beads; toast claims and completes one; alice reopens it, toast
    completes it again; toast files and completes its own."""
    a = Ledger(led.store, actor=PERSON)
    t = Ledger(led.store, actor=AGENT)
    one = a.create("Parse dates", issue_type="feature", labels=["parser"], priority=1)
    two = a.create("Docs", issue_type="task")
    t.claim(one["id"])
    t.close_bead(one["id"])
    a.reopen(one["id"], reason="edge case")
    t.close_bead(one["id"])
    own = t.create("Refactor lexer", labels=["lexer"])
    t.close_bead(own["id"])
    return {"one": one["id"], "two": two["id"], "own": own["id"]}


def test_each_change_writes_its_record_in_the_same_transaction(
        chained: tuple[Ledger, Keyring]) -> None:
    led, keys = chained
    ids = _work(led)
    agent, person = entity_of(AGENT, "acme"), entity_of(PERSON, "acme")
    mine = records(led, AGENT)
    assert [(r["kind"], r["bead"]) for r in mine] == [
        ("claimed", ids["one"]), ("completed", ids["one"]), ("completed", ids["one"]),
        ("created", ids["own"]), ("completed", ids["own"])]
    assert [r["seq"] for r in mine] == [1, 2, 3, 4, 5]
    assert mine[0]["prev"] == "" and all(
        r["prev"] == hashlib.sha256(canonical(p)).hexdigest()
        for p, r in zip(mine, mine[1:], strict=False))
    assert mine[0]["signer"] == agent and mine[0]["on_behalf"] is False
    assert mine[2]["quality"]["revisions"] == 1 and mine[1]["quality"]["revisions"] == 0
    assert mine[0]["work"]["labels"] == ["parser"] and mine[0]["work"]["priority"] == 1
    assert mine[0]["uri"] == f"gt://me@x.org/acme/_/{ids['one']}"
    theirs = records(led, person)
    assert [r["kind"] for r in theirs] == ["created", "created", "reopened"]
    assert theirs[2]["subject"] == agent
    assert [r["kind"] for r in about(led, AGENT)] == ["reopened"]
    assert {e["entity"]: e["length"] for e in entities(led)} == {agent: 5, person: 3}
    assert verify_ledger(led)["records"] == 8
    assert town_entity("acme") == keys.town


def test_a_failed_change_leaves_no_record_and_a_broken_hook_refuses_the_change(
        chained: tuple[Ledger, Keyring]) -> None:
    led, _ = chained
    bead = led.create("x")
    with pytest.raises(RuntimeError), led.transaction() as t:
        t.close(bead["id"])
        raise RuntimeError("boom")
    assert [r["kind"] for r in records(led)] == ["created"]
    led.set_config("chains.hook", "gastown.chains.nowhere:record")
    with pytest.raises(ValidationError, match="chains.hook"):
        led.close_bead(bead["id"])
    assert led.get(bead["id"])["status"] == "open", "nothing half-written"


def test_a_worker_without_a_key_is_signed_for_by_the_town(
        chained: tuple[Ledger, Keyring]) -> None:
    led, keys = chained
    worker = Ledger(led.store, actor="rig1/polecat/pool-3")
    bead = worker.create("One job")
    [rec] = records(led, "rig1/polecat/pool-3")
    assert rec["signer"] == keys.town and rec["on_behalf"] is True and rec["bead"] == bead["id"]
    assert verify_ledger(led, "rig1/polecat/pool-3")["records"] == 1


def test_a_review_of_ones_own_work_is_refused(chained: tuple[Ledger, Keyring]) -> None:
    led, _ = chained
    bead = Ledger(led.store, actor=AGENT).create("Mine")
    me = Ledger(led.store, actor=AGENT)
    with pytest.raises(ValidationError, match="cannot validate its own work"):
        me.emit("review.verdict", bead["id"], {"verdict": "approved", "author": AGENT})
    Ledger(led.store, actor=PERSON).emit("review.verdict", bead["id"],
                                         {"verdict": "approved", "author": AGENT,
                                          "activity": 2})
    [v] = about(led, AGENT)
    assert v["kind"] == "validated" and v["entity"] == entity_of(PERSON, "acme")
    assert v["quality"] == {"verdict": "approved", "review_activity": 2}


def test_rubber_stamps_and_reciprocal_loops_are_flagged(
        chained: tuple[Ledger, Keyring]) -> None:
    led, _ = chained
    a, b, c = (Ledger(led.store, actor=x) for x in ("a/w/one", "a/w/two", "a/w/three"))
    x, y, z = a.create("x"), b.create("y"), c.create("z")
    b.emit("review.verdict", x["id"], {"verdict": "approved", "author": "a/w/one",
                                       "activity": 0})
    a.emit("review.verdict", y["id"], {"verdict": "approved", "author": "a/w/two",
                                       "activity": 3})
    a.emit("review.verdict", z["id"], {"verdict": "approved", "author": "a/w/three",
                                       "activity": 1})
    found = flags(records(led))
    stamps = [f for f in found if f["flag"] == "rubber-stamp"]
    assert [(f["validator"], f["subject"]) for f in stamps] == [
        (entity_of("a/w/two", "acme"), entity_of("a/w/one", "acme"))]
    assert [f["entities"] for f in found if f["flag"] == "reciprocal"] == [
        sorted([entity_of("a/w/one", "acme"), entity_of("a/w/two", "acme")])]


def test_proofs_from_the_ledger_check_offline(chained: tuple[Ledger, Keyring]) -> None:
    led, keys = chained
    _work(led)
    cp = checkpoint(led)
    assert cp["size"] == 8 and cp["signer"] == keys.town
    idx, rec = find(led, f"{AGENT}:3")
    doc = json.loads(json.dumps(prove(led, idx, rec)))
    assert "included" in check_proof(doc, keys.public_keys()[keys.town])
    doc["record"]["quality"]["revisions"] = 0
    with pytest.raises(ValidationError, match="does not hash"):
        check_proof(doc)
    Ledger(led.store, actor=PERSON).create("later")
    cons = consistency(led, 8)
    assert cons["new"]["size"] == 9 and "prefix" in check_proof(cons)
    cons["old"]["root"] = "00" * 32
    with pytest.raises(ValidationError, match="NOT a prefix"):
        check_proof(cons)


def test_merges_digests_and_delegations_become_records(
        chained: tuple[Ledger, Keyring]) -> None:
    led, _ = chained
    author, refinery = Ledger(led.store, actor=AGENT), Ledger(led.store, actor="acme/controller")
    work = author.create("Feature", labels=["web"])
    mr = author.create("Merge it", issue_type="merge-request",
                       metadata={"author": AGENT, "source_bead": work["id"]})
    refinery.emit("merge.sent_back", mr["id"], {"why": "conflict", "author": AGENT,
                                                "files": ["a.py"]})
    refinery.emit("merge.sent_back", mr["id"], {"why": "push-refused", "author": AGENT})
    refinery.emit("merge.landed", mr["id"], {"checked": False, "files": ["a.py", "b.py"]})
    own = author.create("Own merge", issue_type="merge-request",
                        metadata={"author": "acme/controller"})
    refinery.emit("merge.landed", own["id"], {"checked": True})  # self: not a validation
    judged = about(led, AGENT)
    assert [(r["kind"], r["quality"]["verdict"], r["bead"], r["mr"]) for r in judged] == [
        ("rejected", "conflict", work["id"], mr["id"]),
        ("validated", "merged", work["id"], mr["id"])]
    assert judged[1]["work"]["files"] == ["a.py", "b.py"]
    assert [f["flag"] for f in flags(judged)] == ["rubber-stamp"], "merged without a check"
    author.emit("mol.squashed", work["id"], {"steps": 3, "closed": 3})
    led.kv_set("fed.dlgout.dlg-1", json.dumps({"local": work["id"], "to": "gt://b@y/z"}))
    kinds = [(r["kind"], r.get("to")) for r in records(led)][-2:]
    assert kinds == [("digest", None), ("delegated", "gt://b@y/z")]
    assert verify_ledger(led)["ok"]


def test_keys_are_read_without_cryptographys_serialization_package(
        chained: tuple[Ledger, Keyring], tmp_path: Path) -> None:
    """The federation helper writes PKCS#8 PEM; the chains read it directly, the same key."""
    import subprocess
    import sys

    from gastown.chains.entity import _load_fast, key_path
    from gastown.federation.keys import load_or_create_at, public_b64

    _, keys = chained
    path = key_path(keys.dir, entity_of(AGENT, "acme"))
    assert public_b64(_load_fast(path)) == public_b64(load_or_create_at(path))
    code = ("import sys\nfrom gastown.chains.entity import _load_fast\n"
            f"_load_fast({path!r}).sign(b'x')\n"
            "print('cryptography.hazmat.primitives.serialization' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_concurrent_claims_and_closes_keep_one_gapless_log(
        chained: tuple[Ledger, Keyring]) -> None:
    """Claims on PostgreSQL skip the global writer lock; the log's head row orders them."""
    import threading

    from helpers.ledgertools import open_again

    led, _ = chained
    with led.transaction() as t:
        for i in range(24):
            t.create(f"work {i}")
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker(n: int) -> None:
        try:
            with open_again(led, f"rig1/polecat/w{n}") as mine:
                barrier.wait()
                while (bead := mine.claim_next()) is not None:
                    mine.close_bead(bead["id"])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    res = verify_ledger(led)
    assert res["records"] == 24 + 2 * 24  # created, then a claim and a completion each
    assert sorted(r["kind"] for r in records(led) if r["kind"] != "created") == \
        ["claimed"] * 24 + ["completed"] * 24


def test_a_ledger_names_only_gastown_hooks(tmp_path: Path) -> None:
    """The hook is named by a row of the ledger file: data, which must never make a
    ``bd`` command import an arbitrary module (importing runs its code)."""
    import sys

    from gastown import Ledger
    from gastown.errors import ValidationError

    led = Ledger.init(str(tmp_path), prefix="hk")
    led.set_config("chains.hook", "this:x")
    with pytest.raises(ValidationError, match="only a gastown module"):
        led.create("refused: nothing is imported")
    assert "this" not in sys.modules
    assert led.list() == [], "the refused write left nothing"
    led.set_config("chains.hook", "")
    assert led.create("fine again")["title"] == "fine again"
