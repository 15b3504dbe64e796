"""Trust from held events and the double-entry credit ledger, on each backend."""

from __future__ import annotations

import time
from typing import Any

import pytest

pytest.importorskip("coincurve")

from gastown.errors import ConflictError  # noqa: E402
from gastown.ledger.core import Ledger  # noqa: E402
from gastown.mesh import credit, events, keys, kinds, store, trust, work  # noqa: E402
from gastown.mesh.ingest import ingest  # noqa: E402
from gastown.mesh.manifest import build  # noqa: E402


def _towns(ledger: Ledger, n: int) -> list[dict[str, Any]]:
    out = []
    now = int(time.time()) - 100
    for i in range(n):
        seed = bytes([i + 1]) * 32
        sk, pk = keys.entity_secret(seed, "town")
        uri = f"gt://t{i}.example/c{i}"
        store.add_peer(ledger, f"t{i}", uri, pk)
        out.append({"sk": sk, "pk": pk, "uri": uri})
    res = ingest(ledger, [build(t["sk"], t["uri"], [], [], None, now).as_dict() for t in out],
                 "setup")
    assert res["accepted"] == n
    return out


def _follow(t: dict[str, Any], *others: dict[str, Any], at: int | None = None) -> dict[str, Any]:
    return events.sign(t["sk"], kinds.FOLLOWS, "", [["gt", t["uri"]],
                                                    *(["p", o["pk"]] for o in others)],
                       at).as_dict()


def test_trust_from_the_follow_graph_is_local_and_deterministic(ledger: Ledger) -> None:
    o, a, b, c, d = _towns(ledger, 5)
    # o follows a and b; a and b follow c; c follows d
    assert ingest(ledger, [_follow(o, a, b), _follow(a, c), _follow(b, c), _follow(c, d)],
                  "r")["accepted"] == 4
    s = {name: trust.compute(ledger, o["pk"], t["pk"])
         for name, t in (("a", a), ("c", c), ("d", d))}
    assert (s["a"]["distance"], s["c"]["distance"], s["d"]["distance"]) == (1, 2, 3)
    assert s["a"]["trust"] == pytest.approx(0.35)
    # c: distance 2 and two mutual follows next to the observer
    assert s["c"]["mutual_follows"] == 2
    assert s["c"]["trust"] == pytest.approx(0.35 * 0.5 + 0.15 * 2 / 4)
    assert s["d"]["trust"] == pytest.approx(0.35 * 0.25)
    # a stranger with no history: 0; the observer itself: 1
    stranger = "ab" * 32
    assert trust.compute(ledger, o["pk"], stranger)["trust"] == 0
    assert trust.compute(ledger, o["pk"], o["pk"])["trust"] == 1
    # deterministic: the same events give the same numbers
    assert trust.compute(ledger, o["pk"], c["pk"]) == s["c"]
    # follows far from the observer cannot buy mutual credit: d's followers are not o's
    assert s["d"]["mutual_follows"] == 0


def test_a_newer_follow_list_replaces_the_old_one(ledger: Ledger) -> None:
    o, a, _b = _towns(ledger, 3)
    now = int(time.time())
    ingest(ledger, [_follow(o, a, at=now - 10)], "r")
    assert trust.compute(ledger, o["pk"], a["pk"])["distance"] == 1
    ingest(ledger, [_follow(o, at=now)], "r")  # unfollowed everyone
    assert trust.compute(ledger, o["pk"], a["pk"])["distance"] is None
    # the old list delivered again is stale: refused
    assert ingest(ledger, [_follow(o, a, at=now - 5)], "r")["refused"] == 1


def test_trust_cache_has_a_time_to_live(ledger: Ledger) -> None:
    o, a = _towns(ledger, 2)
    t0 = 1_000_000.0
    assert trust.score(ledger, o["pk"], a["pk"], now=t0)["trust"] == 0
    ingest(ledger, [_follow(o, a)], "r")
    assert trust.score(ledger, o["pk"], a["pk"], now=t0 + 10)["cached"] is True
    fresh = trust.score(ledger, o["pk"], a["pk"], now=t0 + trust.TTL + 1)
    assert fresh["cached"] is False and fresh["trust"] == pytest.approx(0.35)


def test_limit_formula() -> None:
    assert credit.limit_for(0, 10, 110) == 10
    assert credit.limit_for(1, 10, 110) == 110
    assert credit.limit_for(0.5, 10, 110) == 35
    assert credit.limit_for(7, 0, 100) == 100  # clamped


def _delegation(ledger: Ledger, req: dict[str, Any], prov: dict[str, Any], bid: int
                ) -> tuple[events.Event, events.Event, events.Event]:
    off = credit.offer(req["sk"], req["uri"], prov["pk"], f"{req['uri']}/_/x", bid)
    res = credit.result(prov["sk"], prov["uri"], off, True)
    acc = credit.accept(req["sk"], req["uri"], off, res)
    assert ingest(ledger, [e.as_dict() for e in (off, res, acc)], "r")["accepted"] == 3
    return off, res, acc


def test_acceptance_makes_one_balanced_debt_and_settlement_nets_it(ledger: Ledger) -> None:
    me, peer = _towns(ledger, 2)
    # peer asks me for work twice; I ask peer once
    _delegation(ledger, peer, me, 30)
    _delegation(ledger, peer, me, 20)
    _delegation(ledger, me, peer, 15)
    assert credit.apply(ledger, me["pk"]) == 3
    assert credit.apply(ledger, me["pk"]) == 0  # idempotent: keyed by the acceptance
    assert credit.balance_with(ledger, peer["pk"]) == 30 + 20 - 15
    assert sum(credit.balances(ledger).values()) == 0
    for t in credit.history(ledger):
        assert sum(a for _n, a in t["postings"]) == 0
    # the debtor (peer) settles the net: a signed receipt, then my books are square
    sim = credit.SimulatedSettlement()
    # seen from peer's side the balance is negative: settle from a ledger of its own view
    assert credit.settle(ledger, me["pk"], me["sk"], me["uri"], peer["pk"], sim) is None
    receipt = events.sign(peer["sk"], kinds.RECEIPT, "{}",
                          [["gt", peer["uri"]], ["p", me["pk"]], ["amount", "35"],
                           ["on_time", "1"]])
    ingest(ledger, [receipt.as_dict()], "r")
    assert credit.apply_receipts(ledger, me["pk"]) == 1
    assert credit.balance_with(ledger, peer["pk"]) == 0
    assert trust.compute(ledger, me["pk"], peer["pk"])["on_time"] == 1


def test_decide_refuses_past_the_limit(ledger: Ledger) -> None:
    me, peer = _towns(ledger, 2)
    _delegation(ledger, peer, me, 40)
    credit.apply(ledger, me["pk"])
    nxt = credit.offer(peer["sk"], peer["uri"], me["pk"], f"{peer['uri']}/_/y", 30)
    ok, why = credit.decide(ledger, me["pk"], nxt, trust=0.5, lo=0, hi=200)  # limit 50
    assert not ok and "owes 40 and bids 30" in why and "is 50" in why
    assert credit.decide(ledger, me["pk"], nxt, trust=1.0, lo=0, hi=200)[0]
    assert not credit.decide(ledger, me["pk"], nxt, trust=0.0)[0]  # a stranger: no credit


def test_a_debtor_settles_through_the_backend_and_a_failing_backend_changes_nothing(
        ledger: Ledger) -> None:
    me, peer = _towns(ledger, 2)
    _delegation(ledger, me, peer, 25)  # I owe peer 25
    credit.apply(ledger, me["pk"])
    before = credit.history(ledger)
    with pytest.raises(ConflictError):
        credit.settle(ledger, me["pk"], me["sk"], me["uri"], peer["pk"],
                      credit.SimulatedSettlement(fail=True))
    assert credit.history(ledger) == before
    sim = credit.SimulatedSettlement()
    rec = credit.settle(ledger, me["pk"], me["sk"], me["uri"], peer["pk"], sim)
    assert rec is not None and rec.tag("amount") == "25" and sim.payments[0]["amount"] == 25
    assert credit.balance_with(ledger, peer["pk"]) == 0


def test_only_the_offers_town_can_accept(ledger: Ledger) -> None:
    me, peer, third = _towns(ledger, 3)
    off = credit.offer(peer["sk"], peer["uri"], me["pk"], f"{peer['uri']}/_/z", 10)
    res = credit.result(me["sk"], me["uri"], off, True)
    fake = credit.accept(third["sk"], third["uri"], off, res)  # a third town "accepts"
    ingest(ledger, [e.as_dict() for e in (off, res, fake)], "r")
    assert credit.apply(ledger, me["pk"]) == 0
    assert credit.balance_with(ledger, peer["pk"]) == 0


def test_item_events_form_a_chain_per_author(ledger: Ledger, tmp_path: Any) -> None:
    from gastown.mesh.identity import MeshIdentity, MeshSettings

    me = MeshIdentity(seed=b"\x05" * 32, uri="gt://me.example/mine", settings=MeshSettings(),
                      rigs=["web"], agents=["ann"])
    store.add_peer(ledger, "me", me.uri, me.public)
    ingest(ledger, [me.manifest(int(time.time()) - 5).as_dict()], "r")
    target = "gt://other.example/o/_/o-1"
    evs = [work.item_event(ledger, me, target, op, {"n": i}, agent="ann")
           for i, op in enumerate(("claim", "comment", "status"))]
    assert [e.tag("prev") for e in evs] == ["", evs[0].id, evs[1].id]
    pk = me.key("agent", "ann")[1]
    # delivered out of order with the middle one missing: the gap is visible
    ingest(ledger, [evs[2].as_dict(), evs[0].as_dict()], "r")
    assert work.chain_gaps(ledger, pk) == {"missing": [evs[1].id], "forks": []}
    ingest(ledger, [evs[1].as_dict()], "r")
    assert work.chain_gaps(ledger, pk) == {"missing": [], "forks": []}


def test_trust_weighted_merge_order_has_no_starvation() -> None:
    from datetime import UTC, datetime

    from gastown.mesh.priority import order_key

    now = 1_800_000_000.0

    def at(secs_ago: float) -> str:
        return datetime.fromtimestamp(now - secs_ago, UTC).isoformat()

    trusted, stranger = "gt://good.example/g", "gt://new.example/n"
    trust = {trusted: 1.0, stranger: 0.0}
    mrs = [
        {"id": "m-1", "priority": 2, "created_at": at(10), "metadata": {"town": stranger}},
        {"id": "m-2", "priority": 2, "created_at": at(10),
         "metadata": {"delegated_from": f"{trusted}/web/x-1"}},
        {"id": "m-3", "priority": 2, "created_at": at(10), "labels": ["urgent"],
         "metadata": {"town": stranger}},
        {"id": "m-4", "priority": 2, "created_at": at(10)},  # local: trust 1
    ]
    key = order_key(trust.__getitem__, aging=3600, now=now)
    assert [m["id"] for m in sorted(mrs, key=key)] == ["m-2", "m-4", "m-3", "m-1"]
    # a stranger's request that waited (priority + 3) agings beats a trusted newcomer
    old = {"id": "m-9", "priority": 4, "created_at": at(7 * 3600 + 1),
           "metadata": {"town": stranger}}
    fresh = {"id": "m-0", "priority": 0, "created_at": at(0), "labels": ["urgent"],
             "metadata": {"town": trusted}}
    assert [m["id"] for m in sorted([fresh, old], key=key)] == ["m-9", "m-0"]


def test_a_retracted_work_item_is_no_longer_listed(ledger: Ledger) -> None:
    (t,) = _towns(ledger, 1)
    item = events.sign(t["sk"], kinds.WORK_ITEM, '{"id": "w-1", "bead": {}}',
                       [["d", "c0/_/w-1"], ["gt", f"{t['uri']}/_/w-1"]])
    ingest(ledger, [item.as_dict()], "r")
    assert [w["event"] for w in work.work_items(ledger, t["uri"])] == [item.id]
    gone = events.sign(t["sk"], kinds.RETRACTION, "", [["gt", t["uri"]], ["e", item.id]])
    ingest(ledger, [gone.as_dict()], "r")
    assert work.work_items(ledger, t["uri"]) == []
    # delivered again later (another relay): refused, it stays retracted
    assert ingest(ledger, [item.as_dict()], "late relay")["duplicates"] == 1
    assert work.work_items(ledger, t["uri"]) == []
