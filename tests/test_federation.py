"""Federation: three towns in their own folders, driven through the real ``gt``/``bd``.

Identity and ``gt://`` addresses, a signed log published to a bare git repository
and to a directory, verified sync, cross-town reads, tampering refused, shuffled
and repeated delivery converging, and a remote that goes away.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.townkit import BIN, clean_env

pytest.importorskip("cryptography")

from gastown.federation import keys  # noqa: E402
from gastown.federation.log import canonical, make_record, record_hash  # noqa: E402
from gastown.federation.remotes import merge  # noqa: E402
from gastown.federation.uris import BeadURI, parse  # noqa: E402
from helpers.fedtowns import bead, js, make_town, one_line_error, run  # noqa: E402


# ---------------------------------------------------------------- identity and URIs
def test_identity_key_and_bead_addresses(tmp_path: Path) -> None:
    town = make_town(tmp_path, "main-town", "alice@example.com",
                     'public_name = "alice-gastown"\nmember_of = ["acme.com"]')
    at_init = json.loads((town / ".town.json").read_text())  # gt init --owner wrote it
    assert at_init["uri"] == "gt://alice@example.com/main-town" and at_init["public_key"]
    ident = js(town, "gt", "identity")
    assert (ident["owner"], ident["name"], ident["public_name"]) == \
        ("alice@example.com", "main-town", "alice-gastown")
    assert ident["uri"] == "gt://alice@example.com/main-town"
    assert ident["member_of"] == ["acme.com"] and ident["publishes"] == "none"
    published = json.loads((town / ".town.json").read_text())
    assert published["public_key"] == ident["public_key"] and len(ident["public_key"]) == 44
    key_file = town / ".gt" / "federation" / "signing-key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "PRIVATE" not in (town / "town.toml").read_text() + (town / ".town.json").read_text()
    plain = bead(town, "no rig")
    web = bead(town, "on web", "--labels", "rig:web")
    assert js(town, "bd", "show", plain)[0]["uri"] == f"gt://alice@example.com/main-town/_/{plain}"
    assert js(town, "bd", "show", web)[0]["uri"] == f"gt://alice@example.com/main-town/web/{web}"


def test_uri_forms() -> None:
    here = BeadURI("alice@example.com", "main-town")
    assert parse("gt://steve@example.com/main-town/gastown/gt-xyz") == \
        BeadURI("steve@example.com", "main-town", "gastown", "gt-xyz")
    assert parse("hop://acme.com/eng/ac-123") == BeadURI("acme.com", "eng", "_", "ac-123")
    assert parse("gt-xyz", town=here) == BeadURI("alice@example.com", "main-town", None, "gt-xyz")
    assert parse("gastown/gt-xyz", town=here).rig == "gastown"
    assert str(parse("gt://acme.com/eng")) == "gt://acme.com/eng"
    from gastown.errors import UsageError

    for bad in ("gt://", "gt://a", "gt://a/b/c/d/e", "gt://a b/c", "x/y/z"):
        with pytest.raises(UsageError):
            parse(bad, town=here)


def test_bad_input_is_one_line_with_the_stable_codes(tmp_path: Path) -> None:
    proc = run(tmp_path, "gt", "init", "x", "--owner", "a/b", rc=2)
    assert "--owner" in one_line_error(proc)
    town = make_town(tmp_path, "t", "t@example.com", 'publish = "some"')
    assert "publish" in one_line_error(run(town, "gt", "publish", rc=5))
    (town / "town.toml").write_text((town / "town.toml").read_text()
                                    .replace('publish = "some"', 'publish = ["rig:a"]'))
    (town / ".gt" / "federation").mkdir(parents=True, exist_ok=True)
    (town / ".gt" / "federation" / "signing-key.pem").write_text("not a key")
    assert "not a private key" in one_line_error(run(town, "gt", "identity", rc=5))
    (town / ".gt" / "federation" / "signing-key.pem").unlink()
    run(town, "gt", "remote", "add", "r", "gt://a.com/c", "--url", str(tmp_path / "nowhere"))
    assert "exists" in one_line_error(run(town, "gt", "remote", "add", "r", "gt://a.com/c",
                                          "--url", "x", rc=4))
    assert "gt://" in one_line_error(run(town, "gt", "remote", "add", "s", "acme", "--url", "x",
                                         rc=2))
    assert "no remote" in one_line_error(run(town, "gt", "remote", "sync", "nope", rc=3))
    assert "no remote" in one_line_error(run(town, "bd", "show", "gt://b.com/c/_/c-1", rc=3))


# ------------------------------------------------------ three towns, git and a path
@pytest.fixture
def three(tmp_path: Path) -> dict[str, Path]:
    hub = tmp_path / "alice.git"
    subprocess.run(["git", "init", "-q", "--bare", str(hub)], check=True)
    a = make_town(tmp_path, "atown", "alice@example.com",
                  f'publish = "all"\npublish_to = ["{hub}"]\nmember_of = ["acme.com"]')
    b = make_town(tmp_path, "btown", "bob@example.com",
                  f'publish = ["label:public"]\npublish_to = ["{tmp_path / "bob-log"}"]')
    c = make_town(tmp_path, "ctown", "carol@example.com")
    return {"a": a, "b": b, "c": c, "hub": hub, "bdir": tmp_path / "bob-log"}


def test_publish_sync_over_git_and_a_path_and_read_across_towns(three: dict[str, Path]) -> None:
    a, b, c = three["a"], three["b"], three["c"]
    a1 = bead(a, "alice's first")
    a2 = bead(a, "alice's web work", "--labels", "rig:web")
    b1 = bead(b, "bob public", "--labels", "public")
    b2 = bead(b, "bob private")
    assert js(a, "gt", "publish")["records"] == 4  # town, employment, two beads
    assert js(b, "gt", "publish")["records"] == 2  # town, the public bead only
    assert js(a, "gt", "publish")["records"] == 0  # nothing pending
    run(c, "gt", "remote", "add", "alice", "gt://alice@example.com/atown",
        "--url", str(three["hub"]))
    run(c, "gt", "remote", "add", "bob", "gt://bob@example.com/btown", "--url", str(three["bdir"]))
    synced = {r["remote"]: r for r in js(c, "gt", "remote", "sync")}
    assert (synced["alice"]["new"], synced["bob"]["new"]) == (4, 2)

    shown = js(c, "bd", "show", f"gt://alice@example.com/atown/web/{a2}")[0]
    assert shown["title"] == "alice's web work" and shown["remote"] == "alice"
    assert shown["uri"] == f"gt://alice@example.com/atown/web/{a2}"
    text = run(c, "bd", "show", f"hop://alice@example.com/atown/_/{a1}").stdout
    assert "alice's first" in text and "as of sync" in text
    assert [x["id"] for x in js(c, "bd", "list", "--remote=bob")] == [b1]
    assert "not known" in one_line_error(
        run(c, "bd", "show", f"gt://bob@example.com/btown/_/{b2}", rc=3))
    assert [x["id"] for x in js(c, "bd", "list", "--remote", "alice", "--label", "rig:web")] \
        == [a2]
    assert c / ".beads" != a / ".beads" and not js(c, "bd", "list")  # nothing copied locally

    # a change flows: close in A, publish, sync in C (again: nothing new, same state)
    run(a, "bd", "close", a1)
    assert js(a, "gt", "publish")["records"] == 1
    assert js(c, "bd", "list", "--remote=alice") and len(js(c, "bd", "list", "--remote=alice")) == 2
    refreshed = js(c, "bd", "show", "--refresh", f"gt://alice@example.com/atown/_/{a1}")[0]
    assert refreshed["status"] == "closed"
    assert [x["id"] for x in js(c, "bd", "list", "--remote=alice")] == [a2]
    again = js(c, "gt", "remote", "sync", "alice")[0]
    assert (again["new"], again["applied"], again["count"]) == (0, 0, 5)
    listed = {r["name"]: r for r in js(c, "gt", "remote", "list")}
    assert listed["alice"]["count"] == 5 and listed["alice"]["synced_at"]
    assert listed["alice"]["member_of"] == ["acme.com"] and listed["bob"]["member_of"] == []
    run(c, "gt", "remote", "remove", "bob")
    assert "no remote" in one_line_error(run(c, "bd", "list", "--remote=bob", rc=3))


# -------------------------------------------------------------------------- tampering
def _lines(path: Path) -> list[bytes]:
    return [ln for ln in path.read_bytes().split(b"\n") if ln]


def _forge(line: bytes, key: object, **changes: Any) -> bytes:
    rec = json.loads(line)
    rec.update(changes)
    rec.pop("sig")
    return canonical(make_record(key, **{k: rec[k] for k in
                                         ("seq", "prev", "town", "kind", "at", "body")}))


def test_tampered_logs_are_refused_naming_the_record(tmp_path: Path) -> None:
    a = make_town(tmp_path, "atown", "alice@example.com",
                  f'publish = "all"\npublish_to = ["{tmp_path / "pub"}"]')
    c = make_town(tmp_path, "ctown", "carol@example.com")
    first = bead(a, "first")
    run(a, "gt", "publish")  # town record + first
    served = tmp_path / "served"
    shutil.copytree(tmp_path / "pub", served)
    run(c, "gt", "remote", "add", "alice", "gt://alice@example.com/atown", "--url", str(served))
    assert js(c, "gt", "remote", "sync")[0]["count"] == 2
    run(a, "bd", "update", first, "--title", "first, renamed")
    bead(a, "second")
    bead(a, "third")
    run(a, "gt", "publish")  # records 3, 4, 5
    honest = _lines(tmp_path / "pub" / "log.jsonl")
    assert len(honest) == 5
    other = keys.load_or_create(str(tmp_path / "mallory"))
    own = keys.load_or_create(str(a / ".gt"))

    def with_byte_changed(lines: list[bytes]) -> list[bytes]:
        out = list(lines)
        out[3] = out[3].replace(b'"second"', b'"secone"')
        return out

    cases: dict[str, tuple[list[bytes], str]] = {
        "one byte changed": (with_byte_changed(honest), "record #4"),
        "a record dropped": (honest[:2] + honest[3:], "record #3"),
        "an old record dropped": (honest[1:], "record #1"),
        "two reordered": (honest[:2] + [honest[3], honest[2], honest[4]], "record #3"),
        "an old one replayed": (honest + [honest[1]], "record #6"),
        "the tail dropped": (honest[:1], "record #2"),
        "signed with another key": (honest[:4] + [_forge(honest[4], other)], "record #5"),
        "malformed, yet signed": (honest[:4] + [_forge(honest[4], own, body=["x"])],
                                  "record #5"),
        "nested too deeply": (honest[:4] + [b"[" * 200_000], "record #5"),
    }
    for case, (lines, names) in cases.items():
        (served / "log.jsonl").write_bytes(b"".join(ln + b"\n" for ln in lines))
        proc = run(c, "gt", "remote", "sync", "alice", rc=5)
        line = one_line_error(proc)
        assert names in line and "remote alice" in line, (case, line)
        state = js(c, "gt", "remote", "list")[0]
        assert state["count"] == 2, case  # nothing applied
        assert [x["title"] for x in js(c, "bd", "list", "--remote=alice")] == ["first"], case

    # a whole log re-signed by another key behind a swapped public key
    town_doc = json.loads((served / "town.json").read_text())
    town_doc["public_key"] = keys.public_b64(other)
    (served / "town.json").write_text(json.dumps(town_doc))
    forged, prev = [], ""
    for ln in honest:
        raw = _forge(ln, other, prev=prev)
        forged.append(raw)
        prev = record_hash(json.loads(raw))
    (served / "log.jsonl").write_bytes(b"".join(ln + b"\n" for ln in forged))
    assert "public key changed" in one_line_error(run(c, "gt", "remote", "sync", rc=5))

    shutil.rmtree(served)
    shutil.copytree(tmp_path / "pub", served)  # the honest log is accepted
    assert js(c, "gt", "remote", "sync")[0]["new"] == 3
    assert sorted(x["title"] for x in js(c, "bd", "list", "--remote=alice")) == \
        ["first, renamed", "second", "third"]


def test_signed_records_of_the_wrong_shape_are_kept_unapplied(tmp_path: Path) -> None:
    a = make_town(tmp_path, "atown", "alice@example.com",
                  f'publish = "all"\npublish_to = ["{tmp_path / "pub"}"]')
    c = make_town(tmp_path, "ctown", "carol@example.com")
    bead(a, "first")
    run(a, "gt", "publish")
    log = tmp_path / "pub" / "log.jsonl"
    lines = _lines(log)
    own = keys.load_or_create(str(a / ".gt"))
    me = "alice@example.com"
    for kind, body in (("bead", {"id": "x-9"}), ("bead", {"id": ["x"], "bead": {}}),
                       ("bead", {"id": "x-8", "bead": "not a snapshot"}),
                       ("bead", {"id": "x-7", "bead": {"id": "x-7", "title": "t",
                                                       "status": "open", "priority": "high",
                                                       "issue_type": "task"}}),
                       ("bead", {"id": "x-6", "bead": {"id": "x-6", "title": ["t"],
                                                       "status": "open", "priority": 1,
                                                       "issue_type": "task"}}),
                       ("employment", {"entity": me, "organization": 5}),
                       ("employment", {"entity": me, "organization": "acme.com"})):
        last = json.loads(lines[-1])
        lines.append(_forge(lines[-1], own, seq=last["seq"] + 1, prev=record_hash(last),
                            kind=kind, body=body))
    log.write_bytes(b"".join(ln + b"\n" for ln in lines))
    run(c, "gt", "remote", "add", "alice", "gt://alice@example.com/atown",
        "--url", str(tmp_path / "pub"))
    assert js(c, "gt", "remote", "sync")[0]["count"] == len(lines)
    assert js(c, "gt", "remote", "list")[0]["member_of"] == ["acme.com"]
    assert [x["title"] for x in js(c, "bd", "list", "--remote=alice")] == ["first"]


def test_a_remote_log_or_town_document_over_the_bound_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gastown.errors import ValidationError
    from gastown.federation import transport

    town = {"owner": "alice@example.com", "name": "atown", "pad": "x" * 200}
    log = b"".join(b'{"seq": %d}\n' % i for i in range(50))
    transport.write_dir(str(tmp_path / "pub"), log, town)
    bare = tmp_path / "pub.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    transport.push_git(str(bare), str(tmp_path / "cache.git"), log, town)
    readers = {"dir": lambda: transport.read(str(tmp_path / "pub"), "", "a"),
               "git": lambda: transport.read(str(bare), str(tmp_path / "fetch.git"), "a")}
    for how, read in readers.items():
        assert read() == (town, log), how  # within the bounds: read whole
        monkeypatch.setattr(transport, "MAX_LOG_BYTES", len(log) - 1)
        with pytest.raises(ValidationError, match=f"log.jsonl is larger than {len(log) - 1}"):
            read()
        monkeypatch.setattr(transport, "MAX_LOG_BYTES", len(log))
        monkeypatch.setattr(transport, "MAX_TOWN_BYTES", 100)
        with pytest.raises(ValidationError, match="town.json is larger than 100"):
            read()
        monkeypatch.undo()


def test_a_target_that_looks_like_a_git_option_runs_nothing(tmp_path: Path) -> None:
    from gastown.federation import transport

    for verb, option in (("fetch", "--upload-pack"), ("push", "--receive-pack")):
        marker = tmp_path / f"ran-{verb}"
        url = f"{option}=touch {marker};.git"
        assert transport.is_git(url)
        with pytest.raises(transport.TransportError):
            if verb == "fetch":
                transport.read(url, str(tmp_path / "fetch.git"), "r")
            else:
                transport.write(url, str(tmp_path / "push.git"), b"", {"name": "t"})
        assert not marker.exists(), verb


# ------------------------------------------------------------------ delivery converges
_KEY = None


def _key() -> object:
    global _KEY
    if _KEY is None:
        from cryptography.hazmat.primitives.asymmetric import ed25519

        _KEY = ed25519.Ed25519PrivateKey.generate()
    return _KEY


@given(ops=st.lists(st.tuples(st.sampled_from(["x-1", "x-2", "x-3"]),
                              st.sampled_from(["open", "closed", None])), min_size=1,
                    max_size=12),
       seed=st.integers(0, 2**32 - 1), dupes=st.integers(0, 12))
@settings(max_examples=60, deadline=None)
def test_shuffled_repeated_delivery_converges(ops: list[tuple[str, str | None]], seed: int,
                                             dupes: int) -> None:
    records, prev = [], ""
    for i, (bead_id, status) in enumerate(ops, 1):
        kind, body = (("bead.withdrawn", {"id": bead_id}) if status is None else
                      ("bead", {"id": bead_id, "bead": {"id": bead_id, "status": status,
                                                        "title": "t", "priority": 2,
                                                        "issue_type": "task"}}))
        rec = make_record(_key(), seq=i, prev=prev, town="gt://a.com/t", kind=kind,
                          at="2026-01-01T00:00:00Z", body=body)
        prev = record_hash(rec)
        records.append(rec)
    in_order: dict[str, dict[str, Any]] = {}
    merge(in_order, records)
    assert set(in_order) == {f"bead.{bead_id}" for bead_id, _ in ops}  # every record applies
    rng = random.Random(seed)
    delivery = records + [rng.choice(records) for _ in range(dupes)]
    rng.shuffle(delivery)
    shuffled: dict[str, dict[str, Any]] = {}
    half = len(delivery) // 2  # in two batches, as two syncs would
    merge(shuffled, delivery[:half])
    merge(shuffled, delivery[half:])
    assert shuffled == in_order
    merge(shuffled, records)
    assert shuffled == in_order  # and again: nothing changes


# ------------------------------------------------------------------ a remote goes away
def test_a_remote_that_goes_away(three: dict[str, Path]) -> None:
    a, b, c = three["a"], three["b"], three["c"]
    a1 = bead(a, "known before")
    run(a, "gt", "publish")
    run(c, "gt", "remote", "add", "alice", "gt://alice@example.com/atown",
        "--url", str(three["hub"]))
    run(c, "gt", "remote", "add", "bob", "gt://bob@example.com/btown", "--url", str(three["bdir"]))
    run(b, "gt", "publish")
    run(c, "gt", "remote", "sync")
    shutil.rmtree(three["hub"])
    b1 = bead(b, "bob, later", "--labels", "public")
    run(b, "gt", "publish")
    both = run(c, "gt", "remote", "sync", rc=3)  # alice is gone; bob still syncs
    assert "remote alice:" in one_line_error(both) and "Synced bob: 1 new" in both.stdout
    assert js(c, "bd", "show", f"gt://bob@example.com/btown/_/{b1}")[0]["title"] == "bob, later"
    line = one_line_error(run(c, "gt", "remote", "sync", "alice", rc=3))
    assert line.startswith("Error: remote alice:") or "remote alice:" in line
    assert "3 records known, last synced" in line
    local = bead(c, "local work continues")
    assert js(c, "bd", "show", local)[0]["title"] == "local work continues"
    state = {r["name"]: r for r in js(c, "gt", "remote", "list")}["alice"]
    assert state["count"] == 3 and state["age"].endswith("ago") and state["last_error"]
    assert "synced" in run(c, "gt", "remote", "list").stdout
    shown = js(c, "bd", "show", f"gt://alice@example.com/atown/_/{a1}")[0]
    assert shown["title"] == "known before" and shown["age"].endswith("ago")
    assert os.path.isdir(c / ".beads")


# ------------------------------------------------------- the ledger's bulk key/value calls
def test_bulk_kv_calls_on_each_backend(ledger: Any) -> None:
    before = ledger.last_event_seq()
    ledger.kv_set_many([("fed.bead.a.x-1", "1"), ("fed.bead.a.x-2", "2"), ("fed.bead.ab.x", "3"),
                        ("other", "4")], "federation.synced", {"remote": "a"})
    events = ledger.events(since_seq=before)
    assert [e["type"] for e in events] == ["federation.synced"]
    assert events[0]["payload"] == {"count": 4, "remote": "a"}
    assert ledger.kv_scan("fed.bead.a.") == [("fed.bead.a.x-1", "1"), ("fed.bead.a.x-2", "2")]
    ledger.kv_set_many([("fed.bead.a.x-1", "9")])
    assert ledger.kv_get("fed.bead.a.x-1") == "9"
    assert ledger.kv_scan("fed.bead.a%") == []  # a prefix, not a pattern
    assert ledger.kv_clear_prefix("fed.bead.a.") == 2
    assert ledger.kv_scan("fed.bead.") == [("fed.bead.ab.x", "3")]
    assert ledger.kv_get("other") == "4"


def test_bd_show_of_a_local_id_loads_no_federation_code(tmp_path: Path) -> None:
    town = make_town(tmp_path, "t", "t@example.com")
    local = bead(town, "here")  # no gt identity needed: gt init --owner wrote .town.json
    probe = ("import sys\nfrom gastown.cli.bd import main\nmain(sys.argv[1:])\n"
             "print('FED', [m for m in sys.modules if 'federation' in m or 'cryptography' in m],"
             " file=sys.stderr)\n")
    proc = subprocess.run([str(BIN / "python"), "-c", probe, "show", local, "--json"], cwd=town,
                          env=clean_env(), capture_output=True, text=True, timeout=60)
    assert "FED []" in proc.stderr, proc.stderr
    assert json.loads(proc.stdout)[0]["uri"] == f"gt://t@example.com/t/_/{local}"
