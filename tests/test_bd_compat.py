"""Upstream ``bd`` scripts run against our ``bd``: its commands, lines, JSON and errors.

Each test is a short script as a user of the Go ``bd`` would type it, run with
real processes on a real ledger (and real git where git is involved).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

BD = str(Path(sys.executable).parent / "bd")


def run(cwd: Path, *args: str, env: dict[str, str] | None = None, code: int = 0,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([BD, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, input=stdin)
    assert proc.returncode == code, (args, proc.returncode, proc.stdout, proc.stderr)
    return proc


def js(cwd: Path, *args: str, env: dict[str, str] | None = None) -> Any:
    return json.loads(run(cwd, *args, "--json", env=env).stdout)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k not in ("BD_DB", "BEADS_DB", "BEADS_DIR")}
    e["BD_ACTOR"] = "tester"
    e["PATH"] = str(Path(sys.executable).parent) + os.pathsep + e.get("PATH", "")
    return e


@pytest.fixture
def repo(tmp_path: Path, env: dict[str, str]) -> Path:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    run(tmp_path, "init", "--prefix", "up", "-q", env=env)
    return tmp_path


def q(repo: Path, env: dict[str, str], *args: str) -> str:
    return run(repo, "q", *args, env=env).stdout.strip()


# ------------------------------------------------------------- the core loop
def test_upstream_session_create_ready_update_close_export(repo: Path,
                                                           env: dict[str, str]) -> None:
    out = run(repo, "create", "Fix login", "-p", "1", "-t", "bug", env=env).stdout
    m = re.search(r"✓ Created issue: (up-\S+)", out)
    assert m, out
    a = m.group(1)
    b = js(repo, "create", "Write tests", "-d", "Unit tests", "--deps", a, env=env)["id"]
    assert [x["id"] for x in js(repo, "ready", env=env)] == [a]
    assert run(repo, "update", a, "--priority", "0", env=env).stdout == \
        f"✓ Updated issue: {a} — Fix login\n"
    assert run(repo, "update", a, "--claim", env=env).stdout == f"✓ Claimed issue: {a}\n"
    comment = js(repo, "comment", a, "looking", env=env)
    assert comment["text"] == "looking" and comment["id"] == "1"  # string ids, as beads 1.0
    assert run(repo, "note", a, "found", "the", "cause", env=env).stdout == \
        f"✓ Note added to {a} — Fix login\n"
    assert js(repo, "show", a, env=env)[0]["notes"] == "found the cause"
    run(repo, "note", a, "--stdin", env=env, stdin="and the fix\n")
    assert js(repo, "show", a, env=env)[0]["notes"] == "found the cause\nand the fix"
    assert "not both" in run(repo, "note", a, "x", "--stdin", env=env, code=2,
                             stdin="y\n").stderr
    assert "cannot read" in run(repo, "note", a, "--file", "nope.txt", env=env, code=2).stderr
    assert run(repo, "close", a, "--reason", "fixed", env=env).stdout.startswith(f"✓ Closed {a}")
    assert [x["id"] for x in js(repo, "ready", env=env)] == [b]
    run(repo, "export", env=env)
    lines = [json.loads(x) for x in (repo / ".beads" / "issues.jsonl").read_text().splitlines()]
    assert {x["id"]: x["status"] for x in lines} == {a: "closed", b: "open"}


def test_upstream_error_wording_and_codes(repo: Path, env: dict[str, str]) -> None:
    assert "title required" in run(repo, "create", env=env, code=2).stderr
    assert "no issue ID provided" in run(repo, "update", "-p", "1", env=env, code=2).stderr
    for args in (["show", "up-zzz"], ["update", "up-zzz", "-p", "1"], ["close", "up-zzz"],
                 ["note", "up-zzz", "x"], ["children", "up-zzz"]):
        err = run(repo, *args, env=env, code=3).stderr
        assert err.startswith("Error: no issue found matching 'up-zzz'"), (args, err)
    for cmd in ("ready", "stale"):  # refused, not an empty list
        assert "invalid count '-3'" in run(repo, cmd, "--limit", "-3", env=env, code=2).stderr
    assert "invalid status 'bogus'" in run(repo, "list", "--status", "bogus", env=env,
                                           code=5).stderr
    assert "invalid status 'bogus'" in run(repo, "count", "-s", "bogus", env=env,
                                           code=5).stderr
    err = json.loads(run(repo, "show", "up-zzz", "--json", env=env, code=3).stderr)
    assert err["code"] == "not_found" and "no issue found matching" in err["error"]


def test_version_help_quickstart_onboard(repo: Path, env: dict[str, str]) -> None:
    out = run(repo, "version", env=env).stdout
    m = re.match(r"bd version (\d+)\.(\d+)\.(\d+) \(gastown \S+\)$", out.strip())
    assert m and tuple(map(int, m.groups())) >= (0, 9, 0), out
    v = js(repo, "version", env=env)
    assert v["version"] == ".".join(m.groups()) and v["build"] == "gastown"
    assert "usage: bd ready" in run(repo, "help", "ready", env=env).stdout
    assert "COMMAND" in run(repo, "help", env=env).stdout
    assert "bd ready" in run(repo, "quickstart", env=env).stdout
    assert "bd prime" in run(repo, "onboard", env=env).stdout
    # outside any ledger too: they need none
    assert run(repo.parent, "version", env=env).stdout == out


# ------------------------------------------------------------------ views
def test_status_stats_shape_and_deferred_is_not_blocked(repo: Path,
                                                        env: dict[str, str]) -> None:
    a, b, c = q(repo, env, "a"), q(repo, env, "b"), q(repo, env, "c")
    run(repo, "dep", "add", b, a, env=env)
    assert run(repo, "defer", c, "--until", "+2d", env=env).stdout == f"* Deferred {c}\n"
    run(repo, "close", a, env=env)
    run(repo, "reopen", a, env=env)
    run(repo, "close", a, env=env)
    s = js(repo, "stats", env=env)
    assert s["summary"] == {
        "total_issues": 3, "open_issues": 1, "in_progress_issues": 0, "closed_issues": 1,
        "blocked_issues": 0, "deferred_issues": 1, "ready_issues": 1, "pinned_issues": 0,
        "epics_eligible_for_closure": 0,
        "average_lead_time_hours": s["summary"]["average_lead_time_hours"]}
    assert s["recent_activity"]["issues_created"] == 3
    assert s["recent_activity"]["issues_reopened"] == 1
    assert s["total_issues"] == 3  # our earlier flat keys are still there
    assert js(repo, "status", "--no-activity", env=env).get("recent_activity") is None
    assert "Ready to Work:          1" in run(repo, "status", env=env).stdout
    # blocked lists open work only: the deferred bead is on ice, not blocked
    d = q(repo, env, "d")
    run(repo, "dep", "add", d, b, env=env)
    assert [x["id"] for x in js(repo, "blocked", env=env)] == [d]
    assert run(repo, "undefer", c, env=env).stdout == f"* Undeferred {c} (now open)\n"
    assert js(repo, "show", c, env=env)[0]["status"] == "open"


def test_count_stale_children_epic_graph(repo: Path, env: dict[str, str]) -> None:
    epic = js(repo, "create", "Epic", "-t", "epic", env=env)["id"]
    k1 = js(repo, "create", "kid one", "--parent", epic, "-a", "ann", env=env)["id"]
    k2 = js(repo, "create", "kid two", "--parent", epic, "-l", "x", env=env)["id"]
    assert run(repo, "count", env=env).stdout == "3\n"
    assert js(repo, "count", "--by-type", env=env) == {
        "total": 3, "groups": [{"group": "epic", "count": 1}, {"group": "task", "count": 2}]}
    assert run(repo, "count", "--by-assignee", env=env).stdout == \
        "Total: 3\n\n(unassigned): 2\nann: 1\n"
    assert js(repo, "count", "--by-label", env=env)["groups"] == [{"group": "x", "count": 1}]
    assert [k["id"] for k in js(repo, "children", epic, env=env)] == [k1, k2]
    assert js(repo, "epic", "status", "--eligible-only", env=env) == []
    assert js(repo, "status", env=env)["summary"]["epics_eligible_for_closure"] == 0
    run(repo, "close", k1, env=env)
    assert js(repo, "status", env=env)["summary"]["epics_eligible_for_closure"] == 0
    run(repo, "close", k2, env=env)
    assert js(repo, "status", env=env)["summary"]["epics_eligible_for_closure"] == 1
    rows = js(repo, "epic", "status", env=env)
    assert rows[0]["eligible_for_close"] and rows[0]["closed_children"] == 2
    assert js(repo, "epic", "close-eligible", env=env)["closed"] == [epic]
    g = js(repo, "graph", epic, "--all", env=env)
    assert g["layers"] == [sorted([k1, k2]), [epic]]
    whole = js(repo, "graph", "--all", env=env)  # every bead: the same graph here
    assert whole == g and whole["nodes"][0]["title"] in ("Epic", "kid one", "kid two")
    assert js(repo, "graph", env=env)["nodes"] == []  # all closed
    # stale: a bead last touched long ago, imported as such
    old = {"id": "up-old", "title": "old", "status": "open", "priority": 2,
           "issue_type": "task", "created_at": "2020-01-01T00:00:00Z",
           "updated_at": "2020-01-02T00:00:00Z"}
    run(repo, "import", "-", env=env, stdin=json.dumps(old) + "\n")
    stale = js(repo, "stale", "-d", "30", env=env)
    assert [b["id"] for b in stale] == ["up-old"] and stale[0]["days_stale"] > 300
    assert "1. [P2] up-old: old" in run(repo, "stale", env=env).stdout
    assert "--days must be at least 1" in run(repo, "stale", "-d", "0", env=env,
                                              code=5).stderr


def test_ready_sort_policies(repo: Path, env: dict[str, str]) -> None:
    old = [{"id": f"up-o{n}", "title": f"old {n}", "status": "open", "priority": p,
            "issue_type": "task", "created_at": f"2020-01-0{n}T00:00:00Z",
            "updated_at": f"2020-01-0{n}T00:00:00Z"} for n, p in ((1, 3), (2, 0))]
    run(repo, "import", "-", env=env, stdin="".join(json.dumps(o) + "\n" for o in old))
    n1, n2 = q(repo, env, "new 1", "-p", "2"), q(repo, env, "new 2", "-p", "1")

    def order(policy: str) -> list[str]:
        return [b["id"] for b in js(repo, "ready", "--sort", policy, env=env)]

    assert order("oldest") == ["up-o1", "up-o2", n1, n2]
    assert order("priority") == ["up-o2", n2, n1, "up-o1"]
    # hybrid: the last 48 hours by priority, then older work by age (nothing starves)
    assert order("hybrid") == [n2, n1, "up-o1", "up-o2"]
    assert [b["id"] for b in js(repo, "ready", "--sort", "oldest", "-n", "1",
                                env=env)] == ["up-o1"]


def test_parse_time_reads_stored_and_imported_timestamps() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from gastown.ledger.compat import parse_time

    t = datetime(2026, 1, 1, 0, 0, 0, 411793, tzinfo=UTC)
    assert parse_time("2026-01-01T00:00:00.411793076Z") == t  # nanoseconds, as beads writes
    assert parse_time("2026-01-01T00:00:00.411793z") == t
    assert parse_time("2026-01-01T02:00:00.411793+02:00") == t
    assert parse_time("2026-01-01T00:00:00") == t.replace(microsecond=0)  # naive: UTC
    assert parse_time("2026-01-01T00:00:00+02:00").tzinfo == timezone(timedelta(hours=2))
    assert parse_time("yesterday") is None and parse_time("") is None and parse_time(None) is None


def test_info_where_migrate_lint_prime_full(repo: Path, env: dict[str, str]) -> None:
    a = q(repo, env, "a bug", "-t", "bug")
    info = js(repo, "info", "--schema", env=env)
    assert info["issue_count"] == 1 and info["schema"]["detected_prefix"] == "up"
    assert info["schema"]["sample_issue_ids"] == [a] and "schema" not in js(repo, "info",
                                                                             env=env)
    where = js(repo, "where", env=env)
    assert where["path"] == str(repo / ".beads") and where["prefix"] == "up"
    m = js(repo, "migrate", "--inspect", env=env)
    assert m["current_state"]["db_exists"] and m["warnings"] == []
    lint = js(repo, "lint", env=env)
    assert lint["results"][0]["id"] == a and "Steps to Reproduce" in lint["results"][0]["missing"]
    run(repo, "lint", a, env=env, code=1)
    assert js(repo, "lint", "-s", "all", env=env)["total"] == 1
    assert "invalid status 'bogus'" in run(repo, "lint", "-s", "bogus", env=env, code=5).stderr
    assert "### Doing work" in run(repo, "prime", "--full", env=env).stdout
    assert "### Doing work" not in run(repo, "prime", env=env).stdout


# ---------------------------------------------------------- changed commands
def test_delete_previews_without_force(repo: Path, env: dict[str, str]) -> None:
    a, b = q(repo, env, "a"), q(repo, env, "b")
    run(repo, "dep", "add", b, a, env=env)
    out = run(repo, "delete", a, env=env).stdout
    assert "DELETE PREVIEW" in out and f"To proceed, run: bd delete {a} --force" in out
    assert f"{b} → {a} (blocks)" in out
    assert js(repo, "show", a, env=env)[0]["id"] == a  # nothing changed
    assert js(repo, "delete", a, "--dry-run", "--force", env=env)["would_delete"] == [a]
    assert run(repo, "delete", a, "--force", env=env).stdout == f"✓ Deleted {a}\n"
    run(repo, "show", a, env=env, code=3)


def test_config_unset_and_doctor_checks(repo: Path, env: dict[str, str]) -> None:
    run(repo, "config", "set", "jira.url", "https://x", env=env)
    assert run(repo, "config", "unset", "jira.url", env=env).stdout == "Unset jira.url\n"
    assert "jira.url" not in js(repo, "config", "list", env=env)
    assert "cannot be unset" in run(repo, "config", "unset", "issue_prefix", env=env,
                                    code=5).stderr
    good = q(repo, env, "Real work", "-d", "a description long enough to count")
    lines = [{"id": f"up-t{n}", "title": f"test issue {n}", "status": "open", "priority": 2,
              "issue_type": "task", "created_at": "2026-01-01T00:00:00Z",
              "updated_at": "2026-01-01T00:00:00Z",
              "dependencies": [{"issue_id": f"up-t{n}", "depends_on_id": "up-gone",
                                "type": "blocks", "created_at": "2026-01-01T00:00:00Z"}]}
             for n in (1, 2)]
    run(repo, "import", "-", env=env, stdin="".join(json.dumps(x) + "\n" for x in lines))
    v = js(repo, "doctor", "--check=validate", env=env)
    by = {c["name"]: c for c in v["checks"]}
    assert not v["overall_ok"] and by["Orphaned Dependencies"]["status"] == "warning"
    assert by["Ledger Integrity"]["status"] == "ok"
    repair = js(repo, "repair-deps", env=env)
    assert repair["orphans_found"] == 2 and repair["orphans"][0]["depends_on_id"] == "up-gone"
    js(repo, "doctor", "--check=validate", "--fix", "--yes", env=env)
    assert js(repo, "repair-deps", env=env)["orphans_found"] == 0
    p = js(repo, "doctor", "--check=pollution", env=env)
    assert sorted(i["id"] for i in p["issues"]) == ["up-t1", "up-t2"]
    err = run(repo, "doctor", "--check=pollution", "--clean", env=env, code=2).stderr
    assert "--yes" in err and len(js(repo, "list", env=env)) == 3
    out = run(repo, "doctor", "--check=pollution", "--clean", "--yes", env=env).stdout
    assert "✓ Deleted 2 test issues" in out
    assert [b["id"] for b in js(repo, "list", env=env)] == [good]
    assert (repo / ".beads" / "pollution-backup.jsonl").read_text().count('"id":"up-t') == 2


def test_dependency_type_spellings_round_trip(repo: Path, env: dict[str, str]) -> None:
    stamp = "2026-01-01T00:00:00Z"

    def bead(i: str, deps: list[tuple[str, str]]) -> dict[str, Any]:
        obj: dict[str, Any] = {"id": i, "title": i, "status": "open", "priority": 2,
                               "issue_type": "task", "created_at": stamp, "updated_at": stamp}
        if deps:
            obj["dependencies"] = [{"issue_id": i, "depends_on_id": t, "type": k,
                                    "created_at": stamp} for k, t in deps]
        return obj

    objs = [bead("up-a", []), bead("up-b", [("blocked-by", "up-a")]),
            bead("up-c", [("parent_child", "up-a")]), bead("up-d", [("Blocks", "up-c")])]
    src = "".join(json.dumps(o, separators=(",", ":")) + "\n" for o in objs)
    (repo / "in.jsonl").write_text(src)
    run(repo, "import", "in.jsonl", env=env)
    # read as what they stand for: b and d are blocked, c is a's child
    assert [b["id"] for b in js(repo, "ready", env=env)] == ["up-a", "up-c"]
    assert [k["id"] for k in js(repo, "children", "up-a", env=env)] == ["up-c"]
    # and written back as they came in
    run(repo, "export", "-o", "out.jsonl", env=env)
    back = [json.loads(x) for x in (repo / "out.jsonl").read_text().splitlines()]
    assert [[d["type"] for d in o.get("dependencies", [])] for o in back] == \
        [[], ["blocked-by"], ["parent_child"], ["Blocks"]]


# ------------------------------------------------------------------ upkeep
def test_rename_prefix_rewrites_ids_edges_and_text(repo: Path, env: dict[str, str]) -> None:
    a = q(repo, env, "a")
    b = js(repo, "create", "b", "-d", f"follows {a}.", "--deps", a, env=env)["id"]
    run(repo, "comment", b, "see", a, env=env)
    dry = js(repo, "rename-prefix", "web", "--dry-run", env=env)
    assert dry["renamed"] == 2 and js(repo, "show", a, env=env)[0]["id"] == a
    out = run(repo, "rename-prefix", "web", env=env).stdout
    assert "✓ Successfully renamed prefix from up to web" in out
    na, nb = "web" + a[2:], "web" + b[2:]
    shown = js(repo, "show", nb, env=env)[0]
    assert shown["description"] == f"follows {na}."
    assert [d["depends_on_id"] for d in shown["dependencies"]] == [na]
    assert len(shown["comments"]) == 1
    assert q(repo, env, "new").startswith("web-")
    run(repo, "show", a, env=env, code=3)
    assert "invalid prefix" in run(repo, "rename-prefix", "bad prefix", env=env, code=5).stderr


def test_rename_prefix_is_all_or_nothing(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A failure at the last write (the event) leaves the ids and the prefix as they were."""
    from gastown import Ledger
    from gastown.ledger import compat
    from gastown.ledger.ops import Txn

    led = Ledger.init(str(tmp_path), prefix="old")
    a = led.create("a")["id"]
    emit = Txn.emit

    def failing(self: Txn, type_: str, *args: object, **kw: object) -> int:
        if type_ == "ledger.prefix_renamed":
            raise OSError("disk full")
        return emit(self, type_, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Txn, "emit", failing)
    with pytest.raises(OSError):
        compat.rename_prefix(led, "new")
    monkeypatch.setattr(Txn, "emit", emit)
    led.close()
    with Ledger.open(str(tmp_path / ".beads" / "beads.db")) as again:
        assert again.prefix == "old" and again.get(a)["id"] == a
        assert compat.rename_prefix(again, "new") == [(a, "new" + a[3:])]
        assert again.prefix == "new" and again.get("new" + a[3:])["title"] == "a"


def test_duplicates_compact_restore(repo: Path, env: dict[str, str]) -> None:
    first = q(repo, env, "Same thing", "-d", "same words")
    second = q(repo, env, "Same thing", "-d", "same words")
    third = q(repo, env, "same thing ", "-d", "same words")
    dups = js(repo, "duplicates", env=env)
    assert dups["duplicate_groups"] == 1 and [b["id"] for b in dups["groups"][0]] == \
        [first, second, third]
    assert js(repo, "duplicates", "--auto-merge", env=env)["merged"] == [
        {"source": second, "target": first}, {"source": third, "target": first}]
    for dup in (second, third):
        shown = js(repo, "show", dup, env=env)[0]
        assert shown["status"] == "closed" and shown["dependencies"][0]["type"] == "duplicates"
        assert shown["close_reason"] == f"Duplicate of {first}"
    assert js(repo, "show", first, env=env)[0]["status"] == "open"
    (repo / "summary.txt").write_text("Short summary\n")
    run(repo, "compact", "--apply", "--id", first, "--summary", "summary.txt", env=env,
        code=5)  # not closed
    run(repo, "close", first, env=env)
    dry = js(repo, "compact", "--apply", "--dry-run", "--id", first, "--summary", "summary.txt",
             env=env)
    assert dry["dry_run"] and not dry["compacted"]
    assert js(repo, "show", first, env=env)[0]["description"] == "same words"
    run(repo, "restore", first, env=env, code=3)  # nothing was saved either
    run(repo, "compact", "--apply", "--id", first, "--summary", "summary.txt", env=env)
    assert js(repo, "show", first, env=env)[0]["description"] == "Short summary"
    assert js(repo, "restore", first, env=env)["description"] == "same words"
    run(repo, "restore", first, "--apply", env=env)
    assert js(repo, "show", first, env=env)[0]["description"] == "same words"
    run(repo, "restore", first, env=env, code=3)
    assert js(repo, "compact", "--stats", env=env)["candidates"] == 0
    # beads closed long ago are candidates until compacted
    stamp = "2020-01-01T00:00:00Z"
    old = [{"id": f"up-old{n}", "title": f"old {n}", "description": "long enough text",
            "status": "closed", "priority": 2, "issue_type": "task", "created_at": stamp,
            "updated_at": stamp, "closed_at": stamp} for n in (1, 2)]
    run(repo, "import", "-", env=env, stdin="".join(json.dumps(o) + "\n" for o in old))
    assert js(repo, "compact", "--stats", env=env)["candidates"] == 2
    run(repo, "compact", "--apply", "--id", "up-old1", "--summary", "summary.txt", env=env)
    (repo / "shorter.txt").write_text("Shorter\n")
    run(repo, "compact", "--apply", "--tier", "2", "--id", "up-old1", "--summary",
        "shorter.txt", env=env)
    assert js(repo, "show", "up-old1", env=env)[0]["description"] == "Shorter"
    assert js(repo, "restore", "up-old1", env=env)["description"] == "long enough text"
    assert [r["id"] for r in js(repo, "compact", "--analyze", env=env)] == ["up-old2"]
    assert js(repo, "compact", "--analyze", "--limit", "0", env=env)[0]["id"] == "up-old2"
    assert "invalid count" in run(repo, "compact", "--analyze", "--limit", "-1", env=env,
                                  code=2).stderr


def test_edit_uses_the_editor(repo: Path, env: dict[str, str]) -> None:
    a = q(repo, env, "a", "-d", "old text")
    script = repo / "ed.sh"
    script.write_text('#!/bin/sh\nsed -i "s/old/new/" "$1"\n')
    script.chmod(0o755)
    env = {**env, "EDITOR": str(script)}
    env.pop("VISUAL", None)
    assert run(repo, "edit", a, env=env).stdout == f"✓ Updated description of {a}\n"
    assert js(repo, "show", a, env=env)[0]["description"] == "new text"
    assert "No changes" in run(repo, "edit", a, "--design", env=env).stdout
    bad = {**env, "EDITOR": "false"}
    assert "exited with status 1" in run(repo, "edit", a, env=bad, code=2).stderr


def test_merge_driver_and_git_hooks(repo: Path, env: dict[str, str]) -> None:
    def line(i: str, title: str, updated: str, **kw: Any) -> str:
        return json.dumps({"id": i, "title": title, "status": "open", "priority": 2,
                           "issue_type": "task", "created_at": "2026-01-01T00:00:00Z",
                           "updated_at": updated, **kw}) + "\n"

    base = line("up-a", "A", "2026-01-01T00:00:00Z") + line("up-b", "B", "2026-01-01T00:00:00Z")
    left = line("up-a", "A left", "2026-01-02T00:00:00Z") + line("up-b", "B",
                                                                  "2026-01-01T00:00:00Z")
    right = (line("up-a", "A", "2026-01-03T00:00:00Z", priority=0)
             + line("up-c", "C", "2026-01-03T00:00:00Z"))
    for name, text in (("base", base), ("left", left), ("right", right)):
        (repo / name).write_text(text)
    run(repo, "merge", "out", "base", "left", "right", env=env)
    merged = {o["id"]: o for o in map(json.loads, (repo / "out").read_text().splitlines())}
    # a: both sides' changes; b: deleted on the right, untouched on the left; c: added
    assert sorted(merged) == ["up-a", "up-c"]
    assert (merged["up-a"]["title"], merged["up-a"]["priority"]) == ("A left", 0)
    assert "nope: no such file" in run(repo, "merge", "out2", "base", "nope", "right", env=env,
                                       code=3).stderr
    assert not (repo / "out2").exists()
    # hooks: pre-commit exports and stages the JSONL
    assert "✓ Installed 3 git hooks" in run(repo, "hooks", "install", env=env).stdout
    assert all(h["installed"] for h in js(repo, "hooks", "list", env=env))
    a = q(repo, env, "hooked")
    git = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "x"], cwd=repo, env=env,
                   check=True)
    staged = subprocess.run(["git", "show", "HEAD:.beads/issues.jsonl"], cwd=repo,
                            capture_output=True, text=True, check=True).stdout
    assert a in staged
    run(repo, "hooks", "uninstall", env=env)
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()


def test_new_commands_stay_off_the_hot_path(repo: Path, env: dict[str, str]) -> None:
    bead = q(repo, env, "probe")
    probe = ("import sys\nfrom gastown.cli.bd import main\nmain(sys.argv[1:])\n"
             "bad = [m for m in sys.modules if m in ('gastown.cli.bd_compat', "
             "'gastown.cli.bd_upkeep', 'gastown.cli.bd_guide', 'gastown.ledger.compat')]\n"
             "print('LOADED', sorted(bad), file=sys.stderr)\n")
    for args in (["ready", "--json"], ["show", bead, "--json"], ["update", bead, "-p", "1"],
                 ["close", bead], ["create", "x", "--json"]):
        proc = subprocess.run([sys.executable, "-c", probe, *args], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=60)
        assert "LOADED []" in proc.stderr, (args, proc.stderr)


def test_metadata_json_and_auto_export(repo: Path, env: dict[str, str]) -> None:
    meta = json.loads((repo / ".beads" / "metadata.json").read_text())
    assert meta == {"database": "beads.db", "jsonl_export": "issues.jsonl", "backend": "sqlite"}
    jsonl = repo / ".beads" / "issues.jsonl"
    a = q(repo, env, "before")
    assert not jsonl.exists()  # off by default, as upstream
    run(repo, "config", "set", "export.auto", "true", env=env)
    b = q(repo, env, "after")
    assert [json.loads(x)["id"] for x in jsonl.read_text().splitlines()] == sorted([a, b])
    run(repo, "close", a, env=env)
    assert json.loads(jsonl.read_text().splitlines()[sorted([a, b]).index(a)])["status"] == \
        "closed"
    before = jsonl.read_text()
    q(repo, env, "skipped", "--no-auto-flush")
    q(repo, {**env, "BEADS_NO_AUTO_FLUSH": "1"}, "skipped too")
    js(repo, "list", env=env)
    assert jsonl.read_text() == before
    run(repo, "config", "set", "export.git-add", "true", env=env)
    q(repo, env, "staged")
    staged = subprocess.run(["git", "diff", "--cached", "--name-only"], cwd=repo,
                            capture_output=True, text=True, check=True).stdout
    assert ".beads/issues.jsonl" in staged


def test_beads_dir_environment_names_the_ledger(repo: Path, env: dict[str, str],
                                                tmp_path_factory: pytest.TempPathFactory) -> None:
    a = q(repo, env, "found through BEADS_DIR")
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    with_dir = {**env, "BEADS_DIR": str(repo / ".beads")}
    assert [b["id"] for b in js(elsewhere, "ready", env=with_dir)] == [a]
    assert js(elsewhere, "where", env=with_dir)["path"] == str(repo / ".beads")
    err = run(elsewhere, "ready", env={**env, "BEADS_DIR": str(elsewhere / "nope")},
              code=7).stderr
    assert "BEADS_DIR=" in err and "is not a directory" in err
