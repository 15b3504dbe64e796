"""Aggregation across towns (issue 13, item 7): ``bd list --org`` and ``bd audit``.

Three real towns: alice's and bob's publish; alice and carol are members of
acme.com, bob is not; carol's town syncs both and asks.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from agents.townkit import BIN, clean_env

pytest.importorskip("cryptography")

from helpers.fedtowns import js, make_town, one_line_error, publishing_town, run  # noqa: E402


def as_actor(town: Path, actor: str, *args: str) -> str:
    env = {**clean_env(), "BD_ACTOR": actor}
    proc = subprocess.run([str(BIN / "bd"), *args], cwd=town, env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc.stdout.strip()


@pytest.fixture
def towns(tmp_path: Path) -> dict[str, Any]:
    a = make_town(tmp_path, "atown", "alice@example.com",
                  f'publish = "all"\npublish_to = ["{tmp_path / "alog"}"]\n'
                  'member_of = ["acme.com"]')
    b = make_town(tmp_path, "btown", "bob@example.com",
                  f'publish = "all"\npublish_to = ["{tmp_path / "blog"}"]')
    c = make_town(tmp_path, "ctown", "carol@example.com", 'member_of = ["acme.com"]')
    run(c, "gt", "identity")  # writes .town.json with member_of
    ids = {
        "a1": as_actor(a, "web/polecats/nux", "q", "alice's api"),
        "a2": as_actor(a, "tester", "q", "alice's docs"),
        "b1": as_actor(b, "web/polecats/nux", "q", "bob's thing"),
        "c1": as_actor(c, "web/polecats/nux", "q", "carol's client"),
    }
    as_actor(a, "web/polecats/nux", "comment", ids["a1"], "started on it")
    run(a, "gt", "publish")
    run(b, "gt", "publish")
    run(c, "gt", "remote", "add", "alice", "gt://alice@example.com/atown",
        "--url", str(tmp_path / "alog"))
    run(c, "gt", "remote", "add", "bob", "gt://bob@example.com/btown",
        "--url", str(tmp_path / "blog"))
    run(c, "gt", "remote", "sync")
    return {"a": a, "b": b, "c": c, **ids}


def test_list_org_spans_members_here_and_in_synced_towns(towns: dict[str, Any]) -> None:
    c = towns["c"]
    got = {b["uri"]: b["town"] for b in js(c, "bd", "list", "--org=acme.com")}
    assert got == {f"gt://alice@example.com/atown/_/{towns['a1']}": "alice",
                   f"gt://alice@example.com/atown/_/{towns['a2']}": "alice",
                   f"gt://carol@example.com/ctown/_/{towns['c1']}": "(here)"}
    assert js(c, "bd", "list", "--org=other.org") == []
    assert "alice's api" in run(c, "bd", "list", "--org", "acme.com").stdout
    assert js(c, "bd", "list") and all("uri" not in b for b in js(c, "bd", "list"))


def test_audit_an_actor_here_and_in_synced_towns(towns: dict[str, Any]) -> None:
    c = towns["c"]
    rows = js(c, "bd", "audit", "--actor=web/polecats/nux")
    where = [(r["where"], r["action"]) for r in rows]
    assert ("(here)", "bead.created") in where  # here: the event log's own types
    assert ("alice", "created") in where and ("alice", "commented") in where
    assert ("bob", "created") in where
    assert [r["at"] for r in rows] == sorted(r["at"] for r in rows)  # time order
    beads = {r["bead"] for r in rows}
    assert towns["c1"] in beads
    assert f"gt://alice@example.com/atown/_/{towns['a1']}" in beads
    assert f"gt://alice@example.com/atown/_/{towns['a2']}" not in beads  # by someone else
    text = run(c, "bd", "audit", "--actor", "web/polecats/nux").stdout
    assert "alice" in text and "bob" in text and towns["c1"] in text
    assert json.loads(run(c, "bd", "audit", "--actor=nobody", "--json").stdout) == []
    assert "--actor" in one_line_error(run(c, "bd", "audit", rc=2))


def test_list_project_with_its_delegated_parts(tmp_path: Path) -> None:
    p, s = publishing_town(tmp_path, "prime"), publishing_town(tmp_path, "sub")
    for t in (p, s):
        run(t, "gt", "publish")
    run(p, "gt", "remote", "add", "sub", "gt://sub.com/sub", "--url", str(tmp_path / "sub-log"))
    run(s, "gt", "remote", "add", "prime", "gt://prime.com/prime",
        "--url", str(tmp_path / "prime-log"))
    job = run(p, "bd", "q", "build the bridge").stdout.strip()
    child = run(p, "bd", "q", "paint it", "--parent", job).stdout.strip()
    run(p, "bd", "q", "unrelated")
    run(p, "gt", "delegate", child, "gt://sub.com/sub/backend")
    run(s, "gt", "remote", "sync")
    (taken,) = js(s, "gt", "delegation", "accept", "--all")
    run(s, "gt", "publish")
    run(p, "gt", "remote", "sync")

    assert [b["id"] for b in js(p, "bd", "list", f"--project={job}")] == [job, child]
    got = js(p, "bd", "list", f"--project={job}", "--include-delegated")
    assert [b["id"] for b in got[:2]] == [job, child]
    (part,) = got[2:]
    assert (part["uri"], part["town"], part["status"], part["delegated_from"]) == \
        (taken["bead"], "sub", "open", f"gt://prime.com/prime/_/{child}")
    assert "--project" in one_line_error(run(p, "bd", "list", "--include-delegated", rc=2))
