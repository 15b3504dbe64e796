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

from agents.townkit import BIN, clean_env
from gastown.federation.log import canonical

AGENT, PERSON = "rig1/polecat/toast", "alice"
ENTITY = "entity://gt/alpha/rig1/polecat/toast"


def run(cwd: Path, *argv: str, actor: str = "tester", check: bool = True
        ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(BIN / argv[0]), *argv[1:]], cwd=cwd, capture_output=True,
                          text=True, env=clean_env(BD_ACTOR=actor), timeout=60, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"{argv} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


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
