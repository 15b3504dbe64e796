"""NIP-01 events, BIP-32/NIP-06 keys, manifests and the ingest door (forged events)."""

from __future__ import annotations

import hashlib
import json
import time
import unicodedata
from dataclasses import replace
from typing import Any

import pytest

pytest.importorskip("coincurve")

from gastown.ledger.core import Ledger  # noqa: E402
from gastown.mesh import events, keys, kinds, store  # noqa: E402
from gastown.mesh.events import EventError  # noqa: E402
from gastown.mesh.ingest import ingest  # noqa: E402
from gastown.mesh.manifest import KeyEntry, build  # noqa: E402

SEED_A = bytes(range(32))
SEED_B = bytes(range(1, 33))
TOWN_A = "gt://alice.example/alpha"
TOWN_B = "gt://bob.example/beta"


def test_ids_match_an_independent_implementation() -> None:
    nostr = pytest.importorskip("nostr_sdk")
    sk = keys.derive(SEED_A, [keys.HARDENED])
    for content in ["plain", "quote \" back\\slash\nnew\ttab\r\b\f", "é 漢字 \u2028 🙂",
                    "\x01\x1f\x7f ctrl"]:
        ev = events.sign(sk, 4710, content, [["gt", TOWN_A], ["x", "ü\n"]], 1_700_000_000)
        # nostr-sdk (Rust) parses the JSON and verifies the id and signature itself
        theirs = nostr.Event.from_json(ev.to_json())
        theirs.verify()
        assert theirs.id().to_hex() == ev.id
        assert events.parse(ev.to_json()) == ev


def test_nip06_vector_through_our_bip32() -> None:
    # NIP-06's published vector: mnemonic -> BIP-39 seed -> m/44'/1237'/0'/0/0
    words = "leader monkey parrot ring guide accident before fence cannon height naive bean"
    seed = hashlib.pbkdf2_hmac("sha512", unicodedata.normalize("NFKD", words).encode(),
                               b"mnemonic", 2048)
    sk, pub = keys.entity_secret(seed, "town")
    assert sk.hex() == "7f7ff03d123792d6ac594bfa67bf6d0c0ab55b6b1fdb6249303fe861f1ccba9a"
    assert pub == "17162c921dc4d2518f9a101db33695df1afb56ab82f5ff3e5da6eec3ca5cd917"
    # rigs and agents get distinct, stable keys from the same seed
    assert keys.entity_secret(seed, "rig", "web") == keys.entity_secret(seed, "rig", "web")
    assert keys.entity_secret(seed, "rig", "web") != keys.entity_secret(seed, "agent", "web")


def test_secret_is_owner_only(tmp_path: Any) -> None:
    s = keys.load_or_create_secret(str(tmp_path))
    path = tmp_path / "mesh" / "secret"
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "mesh").stat().st_mode & 0o777 == 0o700
    assert keys.load_or_create_secret(str(tmp_path)) == s
    path.chmod(0o644)
    with pytest.raises(Exception, match="readable by others"):
        keys.load_or_create_secret(str(tmp_path))


@pytest.mark.parametrize("raw, why", [
    (b"x" * (events.MAX_EVENT_BYTES + 1), "over the"),
    ("[" * 100_000 + "]" * 100_000, "nested too deep|over the"),
    ("[" * 5000 + "]" * 5000, "nested too deep|not a JSON object"),
    ("{\"id\": 1}", "missing field"),
    ("not json", "not JSON"),
])
def test_bounded_parsing(raw: Any, why: str) -> None:
    with pytest.raises(EventError, match=why):
        events.parse(raw)


def test_too_many_tags_and_lone_surrogates_are_refused() -> None:
    sk = keys.derive(SEED_A, [keys.HARDENED])
    ev = events.sign(sk, 1, "x", [["t", str(i)] for i in range(events.MAX_TAGS + 1)])
    with pytest.raises(EventError, match="tags must be"):
        events.parse(ev.to_json())
    d = events.sign(sk, 1, "x").as_dict()
    text = json.dumps(d).replace('"content": "x"', '"content": "\\ud800"')
    with pytest.raises(EventError, match="surrogate"):
        events.parse(text)


# --- the ingest door ------------------------------------------------------------------


def _town(seed: bytes, uri: str, rigs: tuple[str, ...] = ("web",)) -> dict[str, Any]:
    town_sk, town_pk = keys.entity_secret(seed, "town")
    entries = []
    sub = {}
    for r in rigs:
        sk, pk = keys.entity_secret(seed, "rig", r)
        entries.append(KeyEntry(pk, "rig", r, (r,)))
        sub[r] = sk
    return {"sk": town_sk, "pk": town_pk, "uri": uri, "entries": entries, "rig": sub,
            "chain": uri.rsplit("/", 1)[1]}


def _setup(ledger: Ledger) -> tuple[dict[str, Any], dict[str, Any]]:
    a, b = _town(SEED_A, TOWN_A), _town(SEED_B, TOWN_B)
    store.add_peer(ledger, "alpha", a["uri"], a["pk"])
    store.add_peer(ledger, "beta", b["uri"], b["pk"])
    now = int(time.time())
    res = ingest(ledger, [build(t["sk"], t["uri"], t["entries"], [], None, now - 100).as_dict()
                          for t in (a, b)], "setup")
    assert res["accepted"] == 2, res
    return a, b


def _item(t: dict[str, Any], issue: str, title: str, at: int, sk: bytes | None = None,
          rig: str = "web") -> events.Event:
    return events.sign(sk or t["rig"][rig], kinds.WORK_ITEM, json.dumps({"title": title}),
                       [["d", f"{t['chain']}/{rig}/{issue}"], ["gt", f"{t['uri']}/{rig}/{issue}"]],
                       at)


def test_genuine_events_are_accepted_once(ledger: Ledger) -> None:
    a, _b = _setup(ledger)
    now = int(time.time())
    ev = _item(a, "a-1", "first", now)
    res = ingest(ledger, [ev.as_dict(), ev.to_json(), ev.as_dict()], "relay")
    assert (res["accepted"], res["duplicates"], res["refused"]) == (1, 2, 0)
    assert store.event(ledger, ev.id) == ev
    assert ingest(ledger, [ev.as_dict()], "again")["duplicates"] == 1


def test_forged_events_of_every_shape_are_refused(ledger: Ledger) -> None:
    a, b = _setup(ledger)
    now = int(time.time())
    good = _item(a, "a-1", "genuine", now)
    assert ingest(ledger, [good.as_dict()], "relay")["accepted"] == 1
    stranger_sk = keys.derive(b"\x07" * 32, [keys.HARDENED])
    unlisted_sk, _ = keys.entity_secret(SEED_A, "agent", "not-in-manifest")
    fresh = _item(a, "a-2", "next", now + 1)
    forged: dict[str, Any] = {
        # wrong id: the fields changed, the id kept
        "wrong id": {**fresh.as_dict(), "id": "0" * 64},
        # content swapped, id and signature kept
        "swapped content": {**fresh.as_dict(), "content": json.dumps({"title": "evil"})},
        # tags swapped (scope moved to another rig), id and signature kept
        "swapped tags": {**fresh.as_dict(), "tags": [["d", "alpha/ops/a-2"],
                                                     ["gt", f"{TOWN_A}/ops/a-2"]]},
        # a valid signature by another key than the claimed pubkey
        "wrong key": {**fresh.as_dict(), "pubkey": b["pk"]},
        # a stranger's own, validly signed event claiming alpha's scope
        "stranger": _item(a, "a-3", "x", now, sk=stranger_sk).as_dict(),
        # a sub-key of alpha's seed that alpha's manifest does not list
        "unlisted sub-key": _item(a, "a-4", "x", now, sk=unlisted_sk).as_dict(),
        # beta's rig key acting for alpha
        "other town's key": _item(a, "a-5", "x", now, sk=b["rig"]["web"]).as_dict(),
        # a rig key outside its rig
        "outside its rig": events.sign(a["rig"]["web"], kinds.ITEM_EVENT, "{}",
                                       [["gt", f"{TOWN_A}/ops/a-1"]], now).as_dict(),
        "future timestamp": _item(a, "a-6", "x", now + 3600).as_dict(),
        "stale replacement": _item(a, "a-1", "older", now - 50).as_dict(),
        "manifest by a sub-key": build(a["rig"]["web"], TOWN_A, [], [], None, now).as_dict(),
        "manifest of a town not pinned": build(stranger_sk, "gt://mallory/m", [], [], None,
                                               now).as_dict(),
        "no gt tag": events.sign(a["rig"]["web"], kinds.ITEM_EVENT, "{}", [], now).as_dict(),
        "bad sig": {**fresh.as_dict(), "sig": "ab" * 64},
    }
    # same created_at, higher id than the held one: also stale (NIP-01's tie rule)
    while True:
        tie = _item(a, "a-1", f"tie {time.monotonic_ns()}", now)
        if tie.id > good.id:
            forged["stale tie"] = tie.as_dict()
            break
    before = dict(ledger.kv_scan("mesh."))
    res = ingest(ledger, list(forged.values()), "hostile relay")
    assert res["accepted"] == 0 and res["refused"] == len(forged), res["reasons"]
    after = dict(ledger.kv_scan("mesh."))
    assert {k for k in after if k not in before} == {store.REFUSED}  # nothing else written
    assert store.event(ledger, good.id) == good
    # and each reason is one line naming the event
    assert all("\n" not in r for r in res["reasons"])


def test_replacement_newest_then_lowest_id_in_any_order(tmp_path: Any) -> None:
    import random

    now = int(time.time())
    a = _town(SEED_A, TOWN_A)
    versions = [_item(a, "a-9", f"v{i}", now - 10 + i) for i in range(4)]
    # two versions of one second: the lower id wins the tie
    tied = sorted([_item(a, "a-9", f"tie{i}", now - 2) for i in range(2)], key=lambda e: e.id)
    evs = versions[:2] + tied
    want = tied[0].id
    rng = random.Random(7)
    for n in range(6):  # shuffled, repeated, one event per batch or all in one
        (tmp_path / f"l{n}").mkdir()
        led = Ledger.init(str(tmp_path / f"l{n}"), prefix="t", actor="tester")
        store.add_peer(led, "alpha", a["uri"], a["pk"])
        ingest(led, [build(a["sk"], TOWN_A, a["entries"], [], None, now - 100).as_dict()], "m")
        order = evs + rng.sample(evs, 2)
        rng.shuffle(order)
        if n % 2:
            ingest(led, [e.as_dict() for e in order], "relay")
        else:
            for e in order:
                ingest(led, [e.as_dict()], "relay")
        held = store.held_slot(led, kinds.WORK_ITEM, keys.entity_secret(SEED_A, "rig", "web")[1],
                               "alpha/web/a-9")
        assert held is not None and held["id"] == want, n


def test_only_the_owning_key_updates_a_work_item(ledger: Ledger) -> None:
    a, _ = _setup(ledger)
    now = int(time.time())
    assert ingest(ledger, [_item(a, "a-1", "mine", now).as_dict()], "r")["accepted"] == 1
    other = ingest(ledger, [_item(a, "a-1", "theirs", now + 1, sk=a["sk"]).as_dict()], "r")
    assert other["refused"] == 1 and "belongs to" in other["reasons"][0]


def test_retractions_only_by_the_author_and_kept(ledger: Ledger) -> None:
    a, b = _setup(ledger)
    now = int(time.time())
    mine = events.sign(a["rig"]["web"], kinds.MAIL, "hello", [["gt", TOWN_A]], now)
    theirs = events.sign(b["rig"]["web"], kinds.MAIL, "hi", [["gt", TOWN_B]], now)
    assert ingest(ledger, [mine.as_dict(), theirs.as_dict()], "r")["accepted"] == 2
    retract = events.sign(a["rig"]["web"], kinds.RETRACTION, "",
                          [["gt", TOWN_A], ["e", mine.id], ["e", theirs.id]], now + 1)
    assert ingest(ledger, [retract.as_dict()], "r")["accepted"] == 1
    assert ledger.kv_get(store.GONE + mine.id) is not None
    assert ledger.kv_get(store.GONE + theirs.id) is None  # not alpha's to retract


def test_clock_skew_within_the_bound_is_accepted(ledger: Ledger) -> None:
    a, _ = _setup(ledger)
    now = int(time.time())
    ok = _item(a, "a-1", "slightly ahead", now + 200)
    res = ingest(ledger, [ok.as_dict()], "r", max_skew=300)
    assert res["accepted"] == 1
    late = _item(a, "a-2", "far ahead", now + 200)
    assert ingest(ledger, [late.as_dict()], "r", max_skew=60)["refused"] == 1


def test_expired_sub_key_is_refused(ledger: Ledger) -> None:
    a = _town(SEED_A, TOWN_A)
    store.add_peer(ledger, "alpha", a["uri"], a["pk"])
    now = int(time.time())
    entries = [replace(e, valid_until=now - 10) for e in a["entries"]]
    ingest(ledger, [build(a["sk"], TOWN_A, entries, [], None, now - 5).as_dict()], "r")
    res = ingest(ledger, [_item(a, "a-1", "late", now).as_dict()], "r")
    assert res["refused"] == 1 and "not listed" in res["reasons"][0]


def test_reordered_delivery_converges(ledger: Ledger) -> None:
    a = _town(SEED_A, TOWN_A)
    store.add_peer(ledger, "alpha", a["uri"], a["pk"])
    now = int(time.time())
    man = build(a["sk"], TOWN_A, a["entries"], [], None, now - 100)
    items = [_item(a, f"a-{i}", f"t{i}", now - 50 + i) for i in range(3)]
    # an item before its town's manifest (another relay was faster): refused, not lost --
    # the next catch-up's overlap delivers it again
    first = ingest(ledger, [items[1].as_dict()], "fast relay")
    assert first["refused"] == 1 and "no manifest" in first["reasons"][0]
    # one batch in reverse order, the manifest last: manifests are taken first
    res = ingest(ledger, [e.as_dict() for e in reversed(items)] + [man.as_dict()], "slow relay")
    assert res["accepted"] == 4 and res["refused"] == 0
    assert {e.id for e in store.events(ledger, kinds.WORK_ITEM)} == {e.id for e in items}


def test_relay_write_policy_admits_only_manifest_keys_and_has_a_paid_hook() -> None:
    from gastown.mesh.relay import WritePolicy

    a = _town(SEED_A, TOWN_A)
    now = int(time.time())
    paid: set[str] = set()
    policy = WritePolicy({a["pk"]: TOWN_A},
                         extra=lambda ev: None if ev["pubkey"] in paid else "payment required")
    item = _item(a, "a-1", "x", now).as_dict()
    assert "not in a manifest" in str(policy.decide(item))  # its manifest is not known yet
    man = build(a["sk"], TOWN_A, a["entries"], [], None, now).as_dict()
    assert policy.decide(man) == "payment required"
    paid.update({a["pk"], a["entries"][0].pubkey})
    assert policy.decide(man) is None and policy.decide(item) is None
    stranger = build(keys.derive(b"\x03" * 32, [keys.HARDENED]), "gt://m.example/m", [], [],
                     None, now).as_dict()
    assert "not a town of this relay" in str(policy.decide(stranger))
    assert "not the hash" in str(policy.decide({**item, "content": "swapped"}))
    # a manifest naming another town than its key's
    wrong = build(a["sk"], TOWN_B, [], [], None, now + 1).as_dict()
    assert "another town" in str(policy.decide(wrong))


def test_an_ended_key_cannot_backdate_into_its_window(ledger: Ledger) -> None:
    # the rule (manifest.py): a sub-key whose validity ended (beyond the skew) signs
    # nothing received from then on, however it is dated
    a = _town(SEED_A, TOWN_A)
    store.add_peer(ledger, "alpha", a["uri"], a["pk"])
    now = int(time.time())
    end = now - 1000
    entries = [replace(e, valid_from=now - 5000, valid_until=end) for e in a["entries"]]
    ingest(ledger, [build(a["sk"], TOWN_A, entries, [], None, now - 900).as_dict()], "r")
    in_window = _item(a, "a-1", "dated inside", end - 500)
    # received while the key was still valid (the clock then): accepted
    early = ingest(ledger, [in_window.as_dict()], "r", now=end - 400)
    assert early["accepted"] == 1, early
    # the same key, another backdated event, received after its end: refused
    forged = _item(a, "a-2", "backdated", end - 10)
    res = ingest(ledger, [forged.as_dict()], "r")
    assert res["refused"] == 1 and "ended at" in res["reasons"][0], res
    assert store.event(ledger, forged.id) is None
    # within the skew after the end it still counts as received in time
    late_ok = _item(a, "a-3", "just in time", end - 5)
    assert ingest(ledger, [late_ok.as_dict()], "r", now=end + 200,
                  max_skew=300)["accepted"] == 1
    # the town key itself never ends: it may still sign for the town
    town_ev = _item(a, "a-4", "by the town", end - 10, sk=a["sk"])
    assert ingest(ledger, [town_ev.as_dict()], "r")["accepted"] == 1


def test_relay_refuses_an_ended_keys_backdated_events() -> None:
    from gastown.mesh.relay import WritePolicy

    a = _town(SEED_A, TOWN_A)
    now = int(time.time())
    end = now - 1000
    entries = [replace(e, valid_until=end) for e in a["entries"]]
    policy = WritePolicy({a["pk"]: TOWN_A}, max_skew=300)
    assert policy.decide(build(a["sk"], TOWN_A, entries, [], None, now - 900).as_dict()) is None
    backdated = _item(a, "a-1", "x", end - 10).as_dict()
    assert "ended" in str(policy.decide(backdated))
    policy.now = end - 100  # the same event arriving while the key was valid
    assert policy.decide(backdated) is None
