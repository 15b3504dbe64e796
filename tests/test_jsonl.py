"""Conformance: JSONL import/export (DESIGN §3.1, §3.3, §8), on both backends.

The real beads exports in ``../shared/ledgers/`` are read from there (never copied).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gastown import Ledger
from gastown.errors import ImportFormatError, NotFoundError
from gastown.ledger import jsonl
from gastown.ledger.model import EXPORT_ORDER
from helpers.ledgertools import (
    event_count,
    ready_ids,
    reference_held,
    reference_ready_ids,
    reset,
    snapshot,
)

SHARED_LEDGERS = Path(__file__).resolve().parents[2] / "shared" / "ledgers"
LEDGER_FILES = sorted(p.name for p in SHARED_LEDGERS.glob("*.jsonl")) or ["(none)"]


def shared_file(shared_dir: Path, name: str) -> Path:
    path = shared_dir / "ledgers" / name
    if not path.is_file():
        pytest.skip(f"no shared ledger {name}")
    return path


def read_objects(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def write_lines(path: Path, objs: list[Any]) -> Path:
    path.write_text("".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs),
                    encoding="utf-8")
    return path


def bead(id_: str, **kw: Any) -> dict[str, Any]:
    base = {"id": id_, "title": f"title {id_}", "status": "open", "priority": 2,
            "issue_type": "task", "created_at": "2025-01-01T00:00:00Z",
            "updated_at": "2025-01-01T00:00:00Z"}
    base.update(kw)
    return base


def export_text(ledger: Ledger, path: Path, **kw: Any) -> str:
    jsonl.export_jsonl(ledger, str(path), **kw)
    return path.read_text(encoding="utf-8")


# --------------------------------------------------------------- the shared ledgers


@pytest.mark.parametrize("name", LEDGER_FILES)
def test_import_shared_ledger_counts(ledger: Ledger, shared_dir: Path, name: str) -> None:
    path = shared_file(shared_dir, name)
    objs = read_objects(path)
    live = [o for o in objs if o.get("status") != "tombstone"]
    seq = ledger.last_event_seq()
    report = jsonl.import_jsonl(ledger, str(path), adopt_prefix=True)
    assert report.tombstones == len(objs) - len(live)
    assert report.created == len({o["id"] for o in live})
    assert report.updated == 0 and report.unchanged == 0
    assert report.lines == len(path.read_text(encoding="utf-8").splitlines())
    assert report.dependencies == sum(len(o.get("dependencies") or []) for o in live)
    assert report.comments == sum(len(o.get("comments") or []) for o in live)
    assert report.labels == sum(len(set(o.get("labels") or [])) for o in live)
    with ledger.store.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM issues") == report.created
        assert tx.scalar("SELECT COUNT(*) FROM dependencies") == report.dependencies
        assert tx.scalar("SELECT COUNT(*) FROM comments") == report.comments
        types = {r[0] for r in tx.query("SELECT DISTINCT type FROM dependencies")}
    assert not any("_" in t for t in types), types  # parent_child & co normalised
    tomb = {o["id"] for o in objs if o.get("status") == "tombstone"} - {o["id"] for o in live}
    assert not any(ledger.exists(t) for t in tomb)
    # asked to, the ledger adopts the most common prefix of the imported ids
    prefix = Counter(o["id"].rsplit("-", 1)[0] for o in live).most_common(1)[0][0]
    assert report.prefix_adopted == prefix and ledger.prefix == prefix
    # one import event, by the actor
    events = ledger.events(since_seq=seq)
    assert [(e["type"], e["actor"]) for e in events] == [("ledger.imported", "tester")]
    # the ready set is the rule applied to the imported data
    assert ready_ids(ledger) == reference_ready_ids(ledger)
    assert ledger.recompute_ready_state() == 0
    held = reference_held(ledger)
    assert {b["id"] for b in ledger.blocked()} == {
        o["id"] for o in live if held[o["id"]] and o["status"] in ("open", "blocked", "deferred")
        and o.get("issue_type", "task") not in ("gate", "molecule", "merge-request", "message",
                                                  "agent", "role", "rig", "convoy", "event")}
    # closed_at exactly when closed
    for b in ledger.list():
        assert ("closed_at" in b) == (b["status"] == "closed"), b["id"]


@pytest.mark.parametrize("name", LEDGER_FILES)
def test_shared_ledger_export_keeps_every_field(ledger: Ledger, shared_dir: Path, name: str,
                                                tmp_path: Path) -> None:
    """Unknown fields (compaction_level, source_repo, dependency thread_id …) survive."""
    path = shared_file(shared_dir, name)
    jsonl.import_jsonl(ledger, str(path))
    exported = {json.loads(line)["id"]: json.loads(line)
                for line in export_text(ledger, tmp_path / "out.jsonl").splitlines()}
    originals = {o["id"]: o for o in read_objects(path) if o.get("status") != "tombstone"}
    assert set(exported) == set(originals)
    for bead_id, orig in originals.items():
        # dependency types too come back as they were spelt (parent_child stays parent_child)
        assert exported[bead_id] == orig, bead_id


@pytest.mark.parametrize("name", LEDGER_FILES)
def test_round_trip_is_byte_identical(ledger: Ledger, shared_dir: Path, name: str,
                                      tmp_path: Path) -> None:
    path = shared_file(shared_dir, name)
    jsonl.import_jsonl(ledger, str(path))
    first = export_text(ledger, tmp_path / "first.jsonl")
    ready_before = ready_ids(ledger)
    reset(ledger)  # a fresh, empty ledger on the same backend
    assert ledger.count() == 0
    report = jsonl.import_jsonl(ledger, str(tmp_path / "first.jsonl"))
    assert report.created == len(first.splitlines())
    second = export_text(ledger, tmp_path / "second.jsonl")
    assert second == first
    assert ready_ids(ledger) == ready_before
    # re-importing the same file changes nothing
    again = jsonl.import_jsonl(ledger, str(tmp_path / "second.jsonl"))
    assert (again.created, again.updated, again.unchanged) == (0, 0, report.created)
    assert export_text(ledger, tmp_path / "third.jsonl") == first


# ----------------------------------------------------------------------- format eras


def test_timestamps_nanoseconds_and_offsets(ledger: Ledger, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "ts.jsonl", [
        bead("t-ns", created_at="2025-03-04T05:06:07.123456789Z",
             updated_at="2025-03-04T05:06:08.1Z"),
        bead("t-off", created_at="2025-03-04T07:06:07.5+02:00",
             updated_at="2025-03-04T01:06:07-04:00", due_at="2025-03-05T00:30:00+01:30",
             status="closed", closed_at="2025-03-04T10:00:00+00:00"),
    ])
    jsonl.import_jsonl(ledger, str(path))
    ns = ledger.get("t-ns")
    assert ns["created_at"] == "2025-03-04T05:06:07.123456789Z"
    assert ns["updated_at"] == "2025-03-04T05:06:08.1Z"
    off = ledger.get("t-off")
    assert off["created_at"] == "2025-03-04T05:06:07.5Z"
    assert off["updated_at"] == "2025-03-04T05:06:07Z"
    assert off["due_at"] == "2025-03-04T23:00:00Z"
    assert off["closed_at"] == "2025-03-04T10:00:00Z"
    out = export_text(ledger, tmp_path / "out.jsonl")
    assert '"created_at":"2025-03-04T05:06:07.123456789Z"' in out


def test_comment_ids_integer_and_uuid(ledger: Ledger, tmp_path: Path) -> None:
    uuid = "3f2c9a7e-1b2d-4c5e-8f90-a1b2c3d4e5f6"
    path = write_lines(tmp_path / "c.jsonl", [
        bead("t-c1", comments=[
            {"id": 7, "issue_id": "t-c1", "author": "al", "text": "int id",
             "created_at": "2025-01-02T00:00:00Z"},
            {"id": uuid, "issue_id": "t-c1", "author": "bo", "text": "uuid id",
             "created_at": "2025-01-03T02:00:00+02:00", "reactions": ["+1"]},
        ]),
    ])
    report = jsonl.import_jsonl(ledger, str(path))
    assert report.comments == 2
    comments = ledger.comments("t-c1")
    assert [(c["id"], c["text"]) for c in comments] == [(7, "int id"), (uuid, "uuid id")]
    assert comments[1]["created_at"] == "2025-01-03T00:00:00Z"
    exported = json.loads(export_text(ledger, tmp_path / "out.jsonl"))
    assert [c["id"] for c in exported["comments"]] == [7, uuid]
    assert exported["comments"][1]["reactions"] == ["+1"]  # unknown comment field kept
    # a new comment continues after the largest integer id
    assert ledger.add_comment("t-c1", "new")["id"] == 8


def test_unknown_fields_kept_and_reexported(ledger: Ledger, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "u.jsonl", [
        bead("t-u1", compaction_level=2, source_repo=".", future_field={"nested": [1, None]},
             dependencies=[{"issue_id": "t-u1", "depends_on_id": "t-u2", "type": "blocks",
                            "created_at": "2025-01-01T00:00:00Z", "thread_id": "th-9",
                            "metadata": {"why": "x"}}]),
        bead("t-u2"),
    ])
    jsonl.import_jsonl(ledger, str(path))
    # unknown fields ride along on reads too
    assert ledger.get("t-u1")["compaction_level"] == 2
    ledger.update("t-u1", title="renamed")  # an update keeps them
    lines = export_text(ledger, tmp_path / "out.jsonl").splitlines()
    obj = json.loads(lines[0])
    assert obj["title"] == "renamed"
    assert obj["compaction_level"] == 2 and obj["source_repo"] == "."
    assert obj["future_field"] == {"nested": [1, None]}
    dep = obj["dependencies"][0]
    assert dep["thread_id"] == "th-9" and dep["metadata"] == {"why": "x"}
    # known keys first, in beads' order; unknown keys after them
    keys = list(obj)
    known = [k for k in keys if k in EXPORT_ORDER]
    assert known == [k for k in EXPORT_ORDER if k in obj]
    assert keys.index("future_field") > max(keys.index(k) for k in known)


def test_odd_dependency_names_normalised_on_import(ledger: Ledger, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "d.jsonl", [
        bead("t-p"),
        bead("t-k", dependencies=[
            {"issue_id": "t-k", "depends_on_id": "t-p", "type": "parent_child"},
            {"issue_id": "t-k", "depends_on_id": "t-x", "type": "Discovered_From"},
            {"issue_id": "t-k", "depends_on_id": "t-y", "type": "waits_for"},
            {"issue_id": "t-k", "depends_on_id": "t-z", "type": "my_custom"},
            {"issue_id": "t-k", "depends_on_id": "t-w"},  # no type: blocks
        ]),
    ])
    jsonl.import_jsonl(ledger, str(path))
    types = {d["depends_on_id"]: d["type"] for d in ledger.deps("t-k")}
    assert types == {"t-p": "parent-child", "t-x": "discovered-from", "t-y": "waits-for",
                     "t-z": "my_custom", "t-w": "blocks"}


def test_closed_at_invariant_on_import(ledger: Ledger, tmp_path: Path) -> None:
    path = write_lines(tmp_path / "ca.jsonl", [
        bead("t-a", status="closed", updated_at="2025-02-02T00:00:00Z"),
        bead("t-b", status="open", closed_at="2025-02-03T00:00:00Z"),
    ])
    jsonl.import_jsonl(ledger, str(path))
    assert ledger.get("t-a")["closed_at"] == "2025-02-02T00:00:00Z"
    with ledger.store.read() as tx:
        assert tx.scalar("SELECT closed_at FROM issues WHERE id = 't-b'") is None
    # the stale value is not lost: it is written back on export
    out = {json.loads(x)["id"]: json.loads(x)
           for x in export_text(ledger, tmp_path / "o.jsonl").splitlines()}
    assert out["t-b"]["closed_at"] == "2025-02-03T00:00:00Z"


def test_import_upserts_and_later_line_wins(ledger: Ledger, tmp_path: Path) -> None:
    first = write_lines(tmp_path / "1.jsonl", [bead("t-a"), bead("t-b"),
                                               bead("t-a", title="second a")])
    r1 = jsonl.import_jsonl(ledger, str(first))
    assert (r1.created, r1.updated) == (2, 0)
    assert ledger.get("t-a")["title"] == "second a"
    second = write_lines(tmp_path / "2.jsonl", [
        bead("t-a", title="third a", updated_at="2025-06-01T00:00:00Z", labels=["x"]),
        bead("t-b"), bead("t-c")])
    r2 = jsonl.import_jsonl(ledger, str(second))
    assert (r2.created, r2.updated, r2.unchanged) == (1, 1, 1)
    assert ledger.get("t-a")["labels"] == ["x"]


def test_import_into_non_empty_ledger_keeps_prefix(ledger: Ledger, tmp_path: Path) -> None:
    ledger.create("mine")
    report = jsonl.import_jsonl(ledger, str(write_lines(tmp_path / "x.jsonl", [bead("zz-1")])))
    assert report.prefix_adopted is None
    assert ledger.prefix == "t"


# ----------------------------------------------------------------------------- export


def test_export_sorted_and_excludes_wisps_and_templates(ledger: Ledger, tmp_path: Path) -> None:
    made = [ledger.create(f"b{i}").id for i in range(8)]
    wisp = ledger.create("wisp", ephemeral=True)
    tmpl = ledger.create("template", is_template=True)
    lines = export_text(ledger, tmp_path / "o.jsonl").splitlines()
    ids = [json.loads(x)["id"] for x in lines]
    assert ids == sorted(made)
    assert jsonl.export_jsonl(ledger, str(tmp_path / "all.jsonl"), include_all=True) == 10
    all_ids = [json.loads(x)["id"] for x in (tmp_path / "all.jsonl").read_text().splitlines()]
    assert all_ids == sorted([*made, wisp.id, tmpl.id])
    # stable output: exporting twice gives the same bytes
    assert export_text(ledger, tmp_path / "again.jsonl") == "\n".join(lines) + "\n"


def test_export_default_path_and_atomic_write(ledger: Ledger, tmp_path: Path) -> None:
    for i in range(3):
        ledger.create(f"b{i}")
    assert ledger.beads_dir is not None
    n = jsonl.export_jsonl(ledger)
    target = Path(ledger.beads_dir) / "issues.jsonl"
    assert n == 3 and len(target.read_text().splitlines()) == 3
    listing = sorted(os.listdir(ledger.beads_dir))
    assert not [f for f in listing if f.endswith(".tmp") or f.startswith(".issues-")]
    # a failing export leaves the previous file untouched and no temp file behind
    old = target.read_text()
    with ledger.transaction() as t:
        for i in range(600):
            t.create(f"more {i}")

    def boom(done: int, total: int) -> None:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        jsonl.export_jsonl(ledger, str(target), progress=boom)
    assert target.read_text() == old
    assert sorted(os.listdir(ledger.beads_dir)) == listing
    jsonl.export_jsonl(ledger, str(target))
    assert len(target.read_text().splitlines()) == 603
    assert sorted(os.listdir(ledger.beads_dir)) == listing


def test_export_writes_no_event_and_changes_nothing(ledger: Ledger, tmp_path: Path) -> None:
    ledger.create("x")
    before = snapshot(ledger)
    jsonl.export_jsonl(ledger, str(tmp_path / "o.jsonl"))
    assert snapshot(ledger) == before


# ----------------------------------------------------------------- dry run and errors


@pytest.mark.parametrize("name", LEDGER_FILES[:1])
def test_dry_run_changes_nothing(ledger: Ledger, shared_dir: Path, name: str) -> None:
    ledger.create("existing")
    before = snapshot(ledger)
    dry = jsonl.import_jsonl(ledger, str(shared_file(shared_dir, name)), dry_run=True)
    assert dry.dry_run is True and dry.created > 0
    assert snapshot(ledger) == before
    real = jsonl.import_jsonl(ledger, str(shared_file(shared_dir, name)))
    assert (real.created, real.updated, real.dependencies, real.tombstones) == \
        (dry.created, dry.updated, dry.dependencies, dry.tombstones)


MALFORMED = {
    "bad-json": ('{"id": "t-bad", "title": ', "invalid JSON"),
    "bad-priority": (bead("t-bad", priority=5), "priority"),
    "string-priority": (bead("t-bad", priority="high"), "priority"),
    "missing-id": ({"title": "no id", "status": "open"}, "id"),
    "empty-id": (bead(""), "id"),
    "bad-status": (bead("t-bad", status="wip"), "status"),
    "bad-timestamp": (bead("t-bad", created_at="yesterday"), "created_at"),
    "labels-not-list": (bead("t-bad", labels="a,b"), "labels"),
    "not-an-object": ("[1, 2, 3]", "object"),
    "dep-without-target": (bead("t-bad", dependencies=[{"type": "blocks"}]), "depends_on_id"),
    "comment-without-text": (bead("t-bad", comments=[{"id": 1}]), "text"),
    "bad-estimate": (bead("t-bad", estimated_minutes="ten"), "estimated_minutes"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_line_names_file_and_line_and_changes_nothing(
        ledger: Ledger, tmp_path: Path, case: str) -> None:
    ledger.create("existing")
    bad, word = MALFORMED[case]
    path = write_lines(tmp_path / "bad.jsonl", [bead("t-ok1"), "", bead("t-ok2"), bad,
                                                bead("t-ok3")])
    before = snapshot(ledger)
    with pytest.raises(ImportFormatError) as err:
        jsonl.import_jsonl(ledger, str(path))
    msg = str(err.value)
    assert msg.startswith(f"{path}:4:"), msg
    assert word in msg
    assert "\n" not in msg
    assert snapshot(ledger) == before
    with pytest.raises(ImportFormatError):
        jsonl.import_jsonl(ledger, str(path), dry_run=True)
    assert snapshot(ledger) == before


def test_import_missing_file_and_binary(ledger: Ledger, tmp_path: Path) -> None:
    before = snapshot(ledger)
    with pytest.raises(NotFoundError, match="no such file"):
        jsonl.import_jsonl(ledger, str(tmp_path / "nope.jsonl"))
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage\n")
    with pytest.raises(ImportFormatError, match="UTF-8"):
        jsonl.import_jsonl(ledger, str(binary))
    assert snapshot(ledger) == before
    assert event_count(ledger) == 1  # only ledger.init


def test_ready_after_import_matches_reference(ledger: Ledger, tmp_path: Path) -> None:
    """A synthetic graph exercising every clause, imported in one go."""
    future, past = "2099-01-01T00:00:00Z", "2001-01-01T00:00:00Z"

    def dep(src: str, dst: str, typ: str) -> dict[str, str]:
        return {"issue_id": src, "depends_on_id": dst, "type": typ}

    objs = [
        bead("t-open"),
        bead("t-closed", status="closed"),
        bead("t-pinned", status="pinned"),
        bead("t-b1", dependencies=[dep("t-b1", "t-open", "blocks")]),
        bead("t-b2", dependencies=[dep("t-b2", "t-closed", "blocks")]),
        bead("t-b3", dependencies=[dep("t-b3", "t-pinned", "conditional-blocks")]),
        bead("t-b4", dependencies=[dep("t-b4", "t-ghost", "blocks")]),
        bead("t-gate", status="closed"),
        bead("t-gate.1", dependencies=[dep("t-gate.1", "t-gate", "parent_child")]),
        bead("t-w", dependencies=[dep("t-w", "t-gate", "waits-for")]),
        bead("t-def", defer_until=future),
        bead("t-def.1", dependencies=[dep("t-def.1", "t-def", "parent-child")]),
        bead("t-def.1.1", dependencies=[dep("t-def.1.1", "t-def.1", "parent-child")]),
        bead("t-old", defer_until=past),
        bead("t-st", status="blocked"),
        bead("t-st.1", dependencies=[dep("t-st.1", "t-st", "parent-child")]),
        bead("t-rel", dependencies=[dep("t-rel", "t-open", "related"),
                                    dep("t-rel", "t-open", "tracks")]),
        bead("t-infra", issue_type="convoy"),
        bead("t-wisp", ephemeral=True),
        bead("t-tmpl", is_template=True),
        bead("t-pin", pinned=True),
    ]
    jsonl.import_jsonl(ledger, str(write_lines(tmp_path / "g.jsonl", objs)))
    got = ready_ids(ledger)
    assert got == reference_ready_ids(ledger)
    assert set(got) == {"t-open", "t-b2", "t-b3", "t-b4", "t-gate.1", "t-old", "t-rel"}
    assert ledger.recompute_ready_state() == 0
    ledger.close_bead("t-gate.1")
    assert "t-w" in ready_ids(ledger)


def test_order_is_codepoint_order_on_every_backend(ledger: Ledger, tmp_path: Path) -> None:
    """Export order and the ready tie-break by id never depend on a server collation."""
    ids = ["t-b", "t-B", "t-a_b", "t-a.1", "t-a-c", "t-ab", "t-a1", "t-A2", "t-a.10", "t-a.2",
           "t-Zz", "t-é1"]
    jsonl.import_jsonl(ledger, str(write_lines(tmp_path / "o.jsonl", [bead(i) for i in ids])))
    exported = [json.loads(x)["id"] for x in export_text(ledger, tmp_path / "e.jsonl")
                .splitlines()]
    assert exported == sorted(ids)
    assert ready_ids(ledger) == sorted(ids)  # same priority and created_at: by id
    assert [b["id"] for b in json.loads(ledger.ready_json())] == sorted(ids)


def test_child_ids_continue_after_imported_children(ledger: Ledger, tmp_path: Path) -> None:
    def child(id_: str, parent: str) -> dict[str, Any]:
        return bead(id_, dependencies=[{"issue_id": id_, "depends_on_id": parent,
                                        "type": "parent-child"}])

    jsonl.import_jsonl(ledger, str(write_lines(tmp_path / "k.jsonl", [
        bead("t-p"), child("t-p.1", "t-p"), child("t-p.2", "t-p"), child("t-p.2.1", "t-p.2")])))
    assert ledger.create("next", parent="t-p").id == "t-p.3"
    assert ledger.create("next", parent="t-p.2").id == "t-p.2.2"
