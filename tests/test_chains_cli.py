"""``gt chain`` end to end: real processes, a real SQLite ledger, tampering detected.

Agents' own ``bd`` processes write the records (the ledger's hook, not ``gt``);
``gt chain verify`` names the first bad record after each kind of tampering;
a CV exported from one town verifies in an empty directory with only the file.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from agents.townkit import clean_env, run_as
from gastown.federation.log import canonical

AGENT, PERSON = "rig1/polecat/toast", "alice"
ENTITY = "entity://gt/alpha/rig1/polecat/toast"


run = run_as


@pytest.fixture
def town(tmp_path: Path) -> Path:
    """A town made by ``gt init`` (chains on) where a person and an agent did work with
    ``bd``, each in its own process."""
    run(tmp_path, "gt", "init", "town", "--name", "alpha")
    root = tmp_path / "town"
    ids = []
    for title in ("Parse dates", "Write docs"):
        out = run(root, "bd", "create", title, "-l", "parser", "--json", actor=PERSON)
        ids.append(json.loads(out.stdout)["id"])
    run(root, "gt", "chain", "keys", AGENT)
    for bead in ids:
        run(root, "bd", "update", bead, "--claim", actor=AGENT)
        run(root, "bd", "close", bead, actor=AGENT)
    return root


def _db(root: Path) -> sqlite3.Connection:
    return sqlite3.connect(root / ".beads" / "beads.db", isolation_level=None)


def test_gt_init_turns_chains_on_and_bd_writes_signed_records(town: Path) -> None:
    listed = json.loads(run(town, "gt", "chain", "list", "--json").stdout)
    assert {r["entity"]: r["length"] for r in listed} == {
        "entity://gt/alpha/alice": 2, ENTITY: 4}
    shown = json.loads(run(town, "gt", "chain", "show", AGENT, "--json").stdout)
    kinds = [r["kind"] for r in shown["records"]]
    assert kinds == ["claimed", "completed", "claimed", "completed"]
    assert all(r["signer"] == ENTITY and not r["on_behalf"] for r in shown["records"])
    ok = run(town, "gt", "chain", "verify")
    assert "ok: 6 records on 2 chain(s)" in ok.stdout
    keys = town / ".gt" / "chains" / "keys"
    assert oct(keys.stat().st_mode & 0o777) == "0o700"
    assert {oct(p.stat().st_mode & 0o777) for p in keys.iterdir()} == {"0o600"}


def _break(town: Path, sql: str, *params: object) -> subprocess.CompletedProcess[str]:
    with _db(town) as con:
        con.execute(sql, params)
    return run(town, "gt", "chain", "verify", check=False)


def test_an_altered_byte_is_named(town: Path) -> None:
    proc = _break(town, "UPDATE chain_log SET record = replace(record, 'Parse dates', "
                        "'Parse dateS') WHERE idx = 2")
    assert proc.returncode == 5
    assert f"{ENTITY} seq 1 (log #2)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_an_altered_record_with_fixed_hashes_fails_its_signature(town: Path) -> None:
    import hashlib

    with _db(town) as con:
        text = con.execute("SELECT record FROM chain_log WHERE idx = 3").fetchone()[0]
        rec = json.loads(text)
        rec["quality"]["revisions"] = 0 if rec["quality"].get("revisions") else 7
        data = canonical(rec)
        con.execute("UPDATE chain_log SET record = ?, hash = ?, leaf = ? WHERE idx = 3",
                    (data.decode(), hashlib.sha256(data).hexdigest(),
                     hashlib.sha256(b"\0" + data).hexdigest()))
    proc = run(town, "gt", "chain", "verify", check=False)
    assert proc.returncode == 5 and "(log #3)" in proc.stderr
    assert "bad signature" in proc.stderr or "prev does not match" in proc.stderr


def test_a_dropped_record_is_named(town: Path) -> None:
    proc = _break(town, "DELETE FROM chain_log WHERE idx = 3")
    assert proc.returncode == 5 and "log #3: missing" in proc.stderr
    proc = run(town, "gt", "chain", "verify", AGENT, check=False)
    assert proc.returncode == 5 and "seq 3 where 2 was expected" in proc.stderr


def test_reordered_records_are_named(town: Path) -> None:
    with _db(town) as con:
        a = con.execute("SELECT record FROM chain_log WHERE idx = 2").fetchone()[0]
        b = con.execute("SELECT record FROM chain_log WHERE idx = 3").fetchone()[0]
        con.execute("UPDATE chain_log SET record = ? WHERE idx = 2", (b,))
        con.execute("UPDATE chain_log SET record = ? WHERE idx = 3", (a,))
    proc = run(town, "gt", "chain", "verify", AGENT, check=False)
    assert proc.returncode == 5
    assert f"{ENTITY} seq 2 (log #2): seq 2 where 1 was expected" in proc.stderr


def test_a_record_re_signed_with_another_key_is_named(town: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ed25519

    other = ed25519.Ed25519PrivateKey.generate()
    with _db(town) as con:
        rec = json.loads(con.execute("SELECT record FROM chain_log WHERE idx = 4").fetchone()[0])
        body = {k: v for k, v in rec.items() if k != "sig"}
        rec["sig"] = base64.b64encode(other.sign(canonical(body))).decode()
        con.execute("UPDATE chain_log SET record = ? WHERE idx = 4",
                    (canonical(rec).decode(),))
    proc = run(town, "gt", "chain", "verify", AGENT, check=False)
    assert proc.returncode == 5
    assert f"{ENTITY} seq 3 (log #4): bad signature" in proc.stderr


def test_a_dropped_tail_is_caught_by_the_head_and_the_signed_checkpoint(town: Path) -> None:
    run(town, "gt", "chain", "checkpoint")
    with _db(town) as con:
        con.execute("DELETE FROM chain_log WHERE idx = 5")
    proc = run(town, "gt", "chain", "verify", check=False)
    assert proc.returncode == 5 and "records dropped" in proc.stderr
    with _db(town) as con:  # hide it from the head too: the checkpoint still knows
        rec = json.loads(con.execute("SELECT record FROM chain_log WHERE idx = 4").fetchone()[0])
        import hashlib
        con.execute("UPDATE chain_heads SET seq = 3, hash = ? WHERE entity = ?",
                    (hashlib.sha256(canonical(rec)).hexdigest(), ENTITY))
    proc = run(town, "gt", "chain", "verify", check=False)
    assert proc.returncode == 5 and "history rewritten" in proc.stderr


def test_a_cv_exported_from_one_town_verifies_elsewhere_with_only_the_file(
        town: Path, tmp_path: Path) -> None:
    cv = tmp_path / "toast-cv.json"
    run(town, "gt", "chain", "export", AGENT, "-o", str(cv))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    moved = elsewhere / "cv.json"
    moved.write_bytes(cv.read_bytes())
    town_key = json.loads(cv.read_text())["town"]["public_key"]
    ok = run(elsewhere, "gt", "chain", "verify", "--file", "cv.json", "--town-key", town_key)
    assert "ok: entity://gt/alpha/rig1/polecat/toast: 4 records" in ok.stdout
    doc = json.loads(moved.read_text())
    doc["records"][1]["record"]["work"]["title"] = "Something grander"
    moved.write_text(json.dumps(doc))
    bad = run(elsewhere, "gt", "chain", "verify", "--file", "cv.json", check=False)
    assert bad.returncode == 5 and "seq 2 (log #3): not in the town's signed log" in bad.stderr
    other = base64.b64encode(b"\1" * 32).decode()
    pinned = run(elsewhere, "gt", "chain", "verify", "--file", str(cv), "--town-key", other,
                 check=False)
    assert pinned.returncode == 5 and "another town key" in pinned.stderr


def test_proofs_are_json_checkable_offline(town: Path, tmp_path: Path) -> None:
    run(town, "gt", "chain", "prove", f"{AGENT}:2", "-o", str(tmp_path / "inc.json"))
    run(town, "bd", "create", "More", actor=PERSON)
    run(town, "gt", "chain", "consistency", "6", "-o", str(tmp_path / "con.json"))
    for name in ("inc.json", "con.json"):
        ok = run(tmp_path, "gt", "chain", "check-proof", name)
        assert ok.stdout.startswith("ok: ")
    doc = json.loads((tmp_path / "inc.json").read_text())
    doc["index"] = 1
    (tmp_path / "inc.json").write_text(json.dumps(doc))
    bad = run(tmp_path, "gt", "chain", "check-proof", "inc.json", check=False)
    assert bad.returncode == 5 and "NOT included" in bad.stderr


def test_a_review_of_ones_own_work_exits_non_zero(town: Path) -> None:
    bead = json.loads(run(town, "bd", "create", "Mine", "--json", actor=AGENT).stdout)["id"]
    proc = run(town, "gt", "chain", "review", bead, "approve", "--author", AGENT, check=False,
               actor=AGENT)
    assert proc.returncode == 5 and "cannot validate its own work" in proc.stderr
    run(town, "gt", "chain", "review", bead, "approve", "--author", AGENT, "--note", "ok",
        actor=PERSON)
    shown = json.loads(run(town, "gt", "chain", "show", AGENT, "--json").stdout)
    assert [(r["kind"], r["quality"]["verdict"]) for r in shown["about"]] == [
        ("validated", "approved")]
    other = json.loads(run(town, "bd", "create", "Yours", "--json", actor=PERSON).stdout)["id"]
    run(town, "gt", "chain", "review", other, "approve", "--author", PERSON, actor=AGENT)
    checked = run(town, "gt", "chain", "verify")
    assert checked.returncode == 0 and "flag: " in checked.stdout and "reciprocal" in \
        checked.stdout, "toast and alice approve each other: flagged, not failed"


def test_a_plain_bd_ledger_has_no_chains_and_never_loads_cryptography(tmp_path: Path) -> None:
    run(tmp_path, "bd", "init", "--prefix", "p")
    code = ("import sys\nfrom gastown import Ledger\n"
            "led = Ledger.open('.beads/beads.db', actor='x')\n"
            "b = led.create('t'); led.claim(b['id']); led.close_bead(b['id'])\n"
            "print('cryptography' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                         text=True, env=clean_env(), timeout=60, check=True)
    assert out.stdout.strip() == "False"
    with sqlite3.connect(tmp_path / ".beads" / "beads.db") as con:
        assert con.execute("SELECT COUNT(*) FROM chain_log").fetchone()[0] == 0
    assert not os.path.exists(tmp_path / ".gt")


def test_a_town_without_chains_says_so_and_enable_adds_them_to_an_old_ledger(
        tmp_path: Path) -> None:
    run(tmp_path, "gt", "init", "town", "--name", "gamma", "--no-chains")
    root = tmp_path / "town"
    with _db(root) as con:  # as a ledger made before the chain tables existed
        for table in ("chain_log", "chain_heads", "chain_checkpoints"):
            con.execute(f"DROP TABLE {table}")
    run(root, "bd", "create", "before", actor=PERSON)
    for argv in (["list"], ["verify"], ["consistency", "1"], ["export", PERSON, "-o", "x"]):
        proc = run(root, "gt", "chain", *argv, check=False)
        assert proc.returncode == 5 and "no entity chains" in proc.stderr, argv
    run(root, "gt", "chain", "enable")
    run(root, "bd", "create", "after", actor=PERSON)
    listed = json.loads(run(root, "gt", "chain", "list", "--json").stdout)
    assert listed == [{"entity": "entity://gt/gamma/alice", "length": 1,
                       "head": listed[0]["head"]}]
    assert "ok: 1 records" in run(root, "gt", "chain", "verify").stdout


def test_a_federated_town_publishes_its_entity_keys_in_town_json(tmp_path: Path) -> None:
    run(tmp_path, "gt", "init", "town", "--name", "delta", "--owner", "me@example.com")
    root = tmp_path / "town"
    run(root, "gt", "chain", "keys", PERSON)
    run(root, "gt", "identity")
    doc = json.loads((root / ".town.json").read_text())
    pubs = json.loads((root / ".gt" / "chains" / "public.json").read_text())
    assert doc["entity_keys"] == pubs
    assert doc["entity_keys"]["entity://gt/delta/@town"] == doc["public_key"]
    assert {"entity://gt/delta/alice", "entity://gt/delta/delta/controller"} <= set(pubs)
    out = json.loads(run(root, "bd", "create", "x", "--json", actor=PERSON).stdout)["id"]
    [rec] = json.loads(run(root, "gt", "chain", "show", PERSON, "--json").stdout)["records"]
    assert rec["uri"] == f"gt://me@example.com/delta/_/{out}"


def test_a_missing_town_key_refuses_the_change_with_one_line(town: Path) -> None:
    key = town / ".gt" / "federation" / "signing-key.pem"
    key.rename(town / "moved.pem")
    bead = json.loads(run(town, "bd", "create", "x", "--json", actor=AGENT).stdout)["id"]
    proc = run(town, "bd", "close", bead, actor="rig1/polecat/pool-2", check=False)
    assert proc.returncode == 5 and "signing key" in proc.stderr and "missing" in proc.stderr
    assert "Traceback" not in proc.stderr and not key.exists(), "no stranger's key minted"
    shown = json.loads(run(town, "bd", "show", bead, "--json").stdout)
    assert (shown[0] if isinstance(shown, list) else shown)["status"] == "open"
    run(town, "bd", "config", "unset", "chains.hook")
    run(town, "bd", "close", bead, actor="rig1/polecat/pool-2")


def test_a_peer_town_cosigns_checkpoints_only_along_one_history(
        town: Path, tmp_path: Path) -> None:
    run(tmp_path, "gt", "init", "peer", "--name", "witness")
    peer = tmp_path / "peer"
    cp1 = json.loads(run(town, "gt", "chain", "checkpoint", "--json").stdout)
    (tmp_path / "cp1.json").write_text(json.dumps(cp1))
    key = cp1["public_key"]
    run(peer, "gt", "chain", "cosign", str(tmp_path / "cp1.json"), "--peer-key", key,
        "-o", str(tmp_path / "co1.json"))
    ok = run(tmp_path, "gt", "chain", "check-proof", "co1.json", "--town-key", key)
    assert "cosigned by 1 cosigner" in ok.stdout
    run(town, "bd", "create", "more", actor=PERSON)
    cp2 = json.loads(run(town, "gt", "chain", "checkpoint", "--json").stdout)
    (tmp_path / "cp2.json").write_text(json.dumps(cp2))
    no_proof = run(peer, "gt", "chain", "cosign", str(tmp_path / "cp2.json"), "--peer-key",
                   key, check=False)
    assert no_proof.returncode == 5 and "consistency proof from size 6 to 7" in no_proof.stderr
    run(town, "gt", "chain", "consistency", "6", "7", "-o", str(tmp_path / "c.json"))
    run(peer, "gt", "chain", "cosign", str(tmp_path / "cp2.json"), "--peer-key", key,
        "--proof", str(tmp_path / "c.json"), "-o", str(tmp_path / "co2.json"))
    # a head altered in transit fails its signature; a fork the town itself signed (same
    # size as the head the witness cosigned, another root) is refused all the same
    (tmp_path / "fork.json").write_text(json.dumps(dict(cp2, root="ab" * 32)))
    bad = run(peer, "gt", "chain", "cosign", str(tmp_path / "fork.json"), "--peer-key", key,
              check=False)
    assert bad.returncode == 5 and "bad signature" in bad.stderr
    from gastown.federation.keys import load_or_create_at, sign

    body = {k: v for k, v in cp2.items() if k != "sig"} | {"root": "ab" * 32}
    body["sig"] = sign(load_or_create_at(str(town / ".gt/federation/signing-key.pem")),
                       canonical(body))
    (tmp_path / "fork.json").write_text(json.dumps(body))
    fork = run(peer, "gt", "chain", "cosign", str(tmp_path / "fork.json"), "--peer-key", key,
               check=False)
    assert fork.returncode == 5 and "(a fork?)" in fork.stderr
    stale = run(peer, "gt", "chain", "cosign", str(tmp_path / "cp1.json"), "--peer-key", key,
                check=False)
    assert stale.returncode == 5 and "does not extend" in stale.stderr
    doc = json.loads((tmp_path / "co2.json").read_text())
    doc["cosignatures"][0]["size"] = 6
    (tmp_path / "co2.json").write_text(json.dumps(doc))
    tampered = run(tmp_path, "gt", "chain", "check-proof", "co2.json", check=False)
    assert tampered.returncode == 5 and "for another checkpoint" in tampered.stderr
