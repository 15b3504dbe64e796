"""``bd`` never applies partway, never accepts what breaks the ledger, never fails inside.

Found by an adversarial run (tracker issue 9): commands over several ids that
changed the first beads before failing, imports that let in beads the other
commands refuse, internal errors (exit 70) on odd input, a ``bd init`` that a
kill left without its prefix, symbolic links followed out of ``.beads/``.
Most cases run ``bd`` in-process (:func:`bd_main`) on a real SQLite ledger; the
ones about processes (kill -9, file-size limits, ``/dev/full``) run the real
console script.
"""

from __future__ import annotations

import json
import os
import random
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gastown.errors import ValidationError
from gastown.town.config import check_name
from helpers.bd_inprocess import bd_main
from helpers.robustness_report import report

BD = str(Path(sys.executable).parent / "bd")


def ok(cwd: Path, *args: str, stdin: str = "") -> str:
    code, out, err = bd_main(cwd, *args, stdin=stdin)
    assert code == 0, f"bd {' '.join(args)} -> {code}: {err}"
    return out


def fails(cwd: Path, code: int, *args: str, stdin: str = "", says: str = "") -> str:
    """``bd ARGS`` must exit ``code`` with exactly one line on stderr (containing ``says``)."""
    got, _out, err = bd_main(cwd, *args, stdin=stdin)
    assert got == code, f"bd {' '.join(a[:40] for a in args)} -> {got} (wanted {code}): {err}"
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    assert says in err, err
    return err


def snapshot(cwd: Path) -> str:
    """Everything a change could touch, as text: the export with wisps, and the events."""
    return ok(cwd, "export", "--all", "-o", "-") + ok(cwd, "events", "--json")


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BD_ACTOR", "tester")
    monkeypatch.delenv("BD_DB", raising=False)
    monkeypatch.delenv("BEADS_DB", raising=False)
    ok(tmp_path, "init", "--prefix", "rb", "-q")
    return tmp_path


def new(repo: Path, title: str, *extra: str) -> str:
    return ok(repo, "q", title, *extra).strip()


def bd_proc(cwd: Path, *args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, BD_ACTOR="tester")
    env.pop("BD_DB", None)
    env.pop("BEADS_DB", None)
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    return subprocess.run([BD, *args], cwd=cwd, env=env, text=True,
                          timeout=60, **kw)  # type: ignore[call-overload]


# ------------------------------------------------------------ all or nothing (item 3)


@pytest.mark.parametrize("args", [
    ("update", "{a}", "{b}", "rb-nope", "-p", "0"),
    ("update", "{a}", "rb-nope", "--add-label", "x"),
    ("update", "{a}", "{b}", "rb-nope", "--claim"),
    ("delete", "{a}", "{b}", "rb-nope", "--force"),
    ("label", "add", "{a}", "{b}", "rb-nope", "urgent"),
    ("label", "remove", "{a}", "{b}", "rb-nope", "keep"),
])
def test_several_ids_with_an_unknown_one_change_nothing(repo: Path, args: tuple[str, ...]
                                                        ) -> None:
    a, b = new(repo, "first", "-l", "keep"), new(repo, "second", "-l", "keep")
    before = snapshot(repo)
    fails(repo, 3, *(x.format(a=a, b=b) for x in args), says="rb-nope")
    assert snapshot(repo) == before


def test_several_ids_refused_late_change_nothing(repo: Path) -> None:
    # the second bead is already claimed: the first must not be claimed either
    a, b = new(repo, "first"), new(repo, "second")
    ok(repo, "update", b, "--claim", "--actor", "someone-else")
    before = snapshot(repo)
    fails(repo, 4, "update", a, b, "--claim")
    assert snapshot(repo) == before
    # a delete without --cascade refused on the second id keeps the first
    parent = new(repo, "parent")
    new(repo, "child", "--parent", parent)
    before = snapshot(repo)
    fails(repo, 4, "delete", a, parent, "--force", says="children")
    assert snapshot(repo) == before


def test_pollution_clean_refused_late_changes_nothing(repo: Path) -> None:
    # two leaked test beads, the second with a real child (so deleting it is refused):
    # the first must not be deleted either
    stamp = {"created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
    beads = [line("rb-t1", title="test issue one", **stamp),
             line("rb-t2", title="test issue two", **stamp),
             line("rb-kid", title="Real work", description="a description long enough to count",
                  dependencies=[dep("rb-t2", "parent-child")], **stamp)]
    ok(repo, "import", "-", stdin="\n".join(beads) + "\n")
    found = json.loads(ok(repo, "doctor", "--check=pollution", "--json"))
    assert sorted(p["id"] for p in found["issues"]) == ["rb-t1", "rb-t2"]
    before = snapshot(repo)
    fails(repo, 4, "doctor", "--check=pollution", "--clean", "--yes", says="children")
    assert snapshot(repo) == before


def test_several_ids_apply_together(repo: Path) -> None:
    a, b = new(repo, "first"), new(repo, "second")
    ok(repo, "label", "add", a, b, "x")
    ok(repo, "update", a, b, "-p", "0")
    beads = json.loads(ok(repo, "list", "--json"))
    assert [(x["priority"], x["labels"]) for x in beads] == [(0, ["x"]), (0, ["x"])]
    assert ok(repo, "defer", a, b, a) == f"* Deferred {a}\n* Deferred {b}\n"
    assert ok(repo, "undefer", b, a) == \
        f"* Undeferred {b} (now open)\n* Undeferred {a} (now open)\n"
    parent = new(repo, "parent")
    child = new(repo, "child", "--parent", parent)
    deleted = json.loads(ok(repo, "delete", parent, child, a, "--force", "--cascade", "--json"))
    assert sorted(deleted["deleted"]) == sorted([parent, child, a])


def test_notes_and_append_notes_keep_both(repo: Path) -> None:
    a = new(repo, "first", "--notes", "old")
    ok(repo, "update", a, "--notes", "fresh", "--append-notes", "more")
    assert json.loads(ok(repo, "show", a, "--json"))[0]["notes"] == "fresh\nmore"
    ok(repo, "update", a, "--append-notes", "again")
    assert json.loads(ok(repo, "show", a, "--json"))[0]["notes"] == "fresh\nmore\nagain"


# ------------------------------------------------- import keeps the invariants (item 6)


def line(id_: str, **kw: object) -> str:
    obj: dict[str, object] = {"id": id_, "title": f"title {id_}", "status": "open",
                              "priority": 2, "issue_type": "task"}
    obj.update(kw)
    return json.dumps(obj)


def dep(target: str, type_: str = "blocks") -> dict[str, str]:
    return {"depends_on_id": target, "type": type_}


@pytest.mark.parametrize("lines, where, says", [
    ([line("rb-a1"), line("rb-a2", title="")], 2, "title"),
    ([line("rb-a1", title="  ")], 1, "title"),
    ([line("rb-a1", title="two\nlines")], 1, "one line"),
    ([line("rb-a1", issue_type="nonsense")], 1, "issue type"),
    ([line("rb-a1", labels=["has space"])], 1, "label"),
    ([line("rb-a1", estimated_minutes=-5)], 1, "estimated_minutes"),
    ([line("rb-a1", dependencies=[dep("rb-a1")])], 1, "itself"),
    ([line("rb-a1", dependencies=[dep("rb-a2")]), line("rb-a2", dependencies=[dep("rb-a1")])],
     2, "cycle"),
    ([line("rb-a1", dependencies=[dep("rb-a2", "waits-for")]),
      line("rb-a2", dependencies=[dep("rb-a3", "conditional-blocks")]),
      line("rb-a3", dependencies=[dep("rb-a1")])], 3, "cycle"),
    ([line("rb-a1", dependencies=[dep("rb-a2", "parent-child")]),
      line("rb-a2", dependencies=[dep("rb-a1", "parent_child")])], 2, "cycle"),
    # a child blocked by its own parent, and a parent blocked by its child: deadlocks
    ([line("rb-p"), line("rb-p.1", dependencies=[dep("rb-p", "parent-child"), dep("rb-p")])],
     2, "ancestor"),
    ([line("rb-p", dependencies=[dep("rb-p.1")]),
      line("rb-p.1", dependencies=[dep("rb-p", "parent-child")])], 1, "ancestor"),
    (["[" * 100000 + "]" * 100000], 1, "nested"),
    ([line("rb-a1", metadata={"n": [[[0]]]}),
      line("rb-a2", metadata={"x": json.loads("[" * 70 + "]" * 70)})], 2, "nested"),
    ([line("rb-a1"), '{"id": "rb-a2", "title": "t", "priority": ' + "9" * 5000 + "}"],
     2, "digits"),
    ([line("rb-a1", metadata={"v": "\ud800"})], 1, "surrogate"),
    ([line("x" * 50000)], 1, "longer than"),
    ([line("rb-a 1")], 1, "spaces"),
])
def test_import_refuses_what_breaks_the_ledger(repo: Path, lines: list[str], where: int,
                                               says: str) -> None:
    new(repo, "existing")
    bad = repo / "bad.jsonl"
    bad.write_text("".join(x + "\n" for x in lines), encoding="utf-8", errors="surrogatepass")
    before = snapshot(repo)
    err = fails(repo, 5, "import", str(bad), says=f"{bad}:{where}:")
    assert says in err
    assert len(err) < 1200
    assert snapshot(repo) == before
    # and the ledger still works for every reader
    ok(repo, "list")
    ok(repo, "prime")


def test_import_refuses_a_cycle_through_existing_edges(repo: Path) -> None:
    a, b = new(repo, "first"), new(repo, "second")
    ok(repo, "dep", "add", b, a)  # b waits for a
    bad = repo / "bad.jsonl"
    bad.write_text(line(a, title="first", dependencies=[dep(b)]) + "\n", encoding="utf-8")
    before = snapshot(repo)
    fails(repo, 5, "import", str(bad), says=f"{bad}:1: blocking dependency cycle")
    assert snapshot(repo) == before
    # replacing b's own edges in the same file removes the cycle: accepted
    bad.write_text(line(a, title="first", dependencies=[dep(b)]) + "\n"
                   + line(b, title="second") + "\n", encoding="utf-8")
    ok(repo, "import", str(bad))
    assert [d["depends_on_id"] for d in json.loads(ok(repo, "show", a, "--json"))[0]
            ["dependencies"]] == [b]


# --------------------------------------------------------- prefix on import (issue 8)


def test_import_keeps_the_prefix_chosen_at_init(repo: Path) -> None:
    src = repo / "other.jsonl"
    src.write_text(line("zz-a1") + "\n" + line("zz-a2") + "\n", encoding="utf-8")
    out = ok(repo, "import", str(src))
    assert "keeping issue prefix rb" in out and "--set-prefix" in out
    assert new(repo, "mine").startswith("rb-")
    report = json.loads(ok(repo, "import", str(src), "--set-prefix", "--json"))
    assert report["prefix_adopted"] == "zz"
    assert new(repo, "theirs").startswith("zz-")
    # bd init in a clone takes the prefix of its issues.jsonl, unless --prefix says otherwise
    for flags, wanted in (([], "zz-"), (["--prefix", "mine"], "mine-")):
        clone = repo / f"clone{len(flags)}"
        (clone / ".beads").mkdir(parents=True)
        (clone / ".beads" / "issues.jsonl").write_text(line("zz-a1") + "\n", encoding="utf-8")
        ok(clone, "init", "-q", *flags)
        assert new(clone, "next").startswith(wanted)


# ------------------------------------------- no internal errors on odd input (item 7)


@pytest.mark.parametrize("args, code, says", [
    (("create", "t", "--metadata", "[" * 100000 + "]" * 100000), 5, "--metadata"),
    (("create", "t", "--metadata", '{"a":' + "[" * 80 + "]" * 80 + "}"), 5, "--metadata"),
    (("create", "t", "--metadata", '{"a":' + "7" * 5000 + "}"), 5, "--metadata"),
    (("create", "t", "--metadata", '{"a":"\\ud800"}'), 5, "surrogate"),
    (("create", "t", "-p", "9" * 5000), 5, "priority"),
    (("create", "t", "-p", "²"), 5, "priority"),
    (("create", "t", "-e", "9" * 19), 2, "-e"),
    (("list", "-p", "9" * 5000), 5, "priority"),
    (("ready", "-n", "9" * 20), 2, "count"),
    (("events", "--since-seq", "9" * 20), 2, "count"),
    (("create", "t\udcff"), 2, "UTF-8"),
    (("show", "rb-\udc80"), 2, "UTF-8"),
    (("create", "t", "--body-file", "a\x00b"), 2, "NUL"),
    (("export", "-o", "out\x00.jsonl"), 2, "NUL"),
    (("show", "x" * 50000), 3, "50000"),
    (("update", "y" * 50000, "-p", "1"), 3, "50000"),
    (("create", "t", "--id", "rb-" + "z" * 50000), 5, "200"),
    (("dep", "add", "q" * 50001, "r" * 50001), 3, "50001"),
])
def test_odd_arguments_get_one_line(repo: Path, args: tuple[str, ...], code: int,
                                    says: str) -> None:
    before = snapshot(repo)
    fails(repo, code, *args, says=says)
    assert snapshot(repo) == before


def test_full_disk_during_export_keeps_the_old_file(repo: Path) -> None:
    for i in range(40):
        new(repo, f"bead number {i}", "-d", "padding " * 400)  # an export of ~130 KB
    target = repo / ".beads" / "issues.jsonl"
    target.write_text(line("rb-old") + "\n", encoding="utf-8")
    old = target.read_text(encoding="utf-8")

    def small_files() -> None:
        # room for SQLite's 32 KB shared-memory file, not for the export
        resource.setrlimit(resource.RLIMIT_FSIZE, (65536, 65536))

    proc = bd_proc(repo, "export", preexec_fn=small_files)
    assert proc.returncode == 6, proc.stderr
    assert proc.stderr.count("\n") == 1 and "issues.jsonl" in proc.stderr, proc.stderr
    assert "left unchanged" in proc.stderr
    assert target.read_text(encoding="utf-8") == old
    assert not [p for p in target.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_export_to_a_full_stdout_is_one_line(repo: Path) -> None:
    new(repo, "something")
    with open("/dev/full", "w") as full:
        proc = bd_proc(repo, "export", "-o", "-", stdout=full)
    assert proc.returncode == 6, proc.stderr
    assert proc.stderr.count("\n") == 1 and "No space left" in proc.stderr, proc.stderr


def test_init_checks_a_clones_export_before_creating_anything(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BD_ACTOR", "tester")
    export = tmp_path / ".beads" / "issues.jsonl"
    export.parent.mkdir()
    export.write_text(line("zz-a1") + "\n" + line("zz-a2", dependencies=[dep("zz-a2")]) + "\n",
                      encoding="utf-8")
    fails(tmp_path, 5, "init", says=":2: zz-a2 cannot depend on itself")
    assert sorted(p.name for p in export.parent.iterdir()) == ["issues.jsonl"]
    export.write_text(line("zz-a1") + "\n", encoding="utf-8")
    ok(tmp_path, "init", "-q")  # fixed: init runs as if the first try never happened
    assert [b["id"] for b in json.loads(ok(tmp_path, "list", "--json"))] == ["zz-a1"]


# ------------------------------------------------------- export -o refuses (issue 8)


def test_export_refuses_to_replace_what_is_not_an_export(repo: Path) -> None:
    new(repo, "something")
    precious = repo / "passwd"
    precious.write_text("root:x:0:0:root:/root:/bin/bash\n", encoding="utf-8")
    fails(repo, 4, "export", "-o", str(precious), says="not a beads JSONL export")
    assert precious.read_text(encoding="utf-8").startswith("root:")
    ok(repo, "export", "-o", str(precious), "--force")
    assert json.loads(precious.read_text(encoding="utf-8").splitlines()[0])["title"] \
        == "something"
    # an earlier export is replaced without --force
    ok(repo, "export", "-o", str(precious))
    fails(repo, 2, "export", "-o", "/dev/null", says="not a regular file")


# ----------------------------------------------------------- symlinks (item 9)


@pytest.mark.parametrize("name", ["beads.db", ".gitignore", "config.toml", "beads.db-wal"])
def test_init_refuses_symlinks_in_beads(tmp_path: Path, name: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BD_ACTOR", "tester")
    outside = tmp_path / "outside"
    outside.write_text("do not touch\n", encoding="utf-8")
    proj = tmp_path / "proj"
    (proj / ".beads").mkdir(parents=True)
    (proj / ".beads" / name).symlink_to(outside)
    fails(proj, 4, "init", says="symbolic link")
    fails(proj, 4, "init", "--destroy-existing", says="symbolic link")
    assert outside.read_text(encoding="utf-8") == "do not touch\n"


def test_export_refuses_a_symlinked_issues_jsonl(repo: Path, tmp_path: Path) -> None:
    new(repo, "something")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    outside.write_text("do not touch\n", encoding="utf-8")
    link = repo / ".beads" / "issues.jsonl"
    link.symlink_to(outside)
    fails(repo, 4, "export", says="symbolic link")
    assert outside.read_text(encoding="utf-8") == "do not touch\n"
    ok(repo, "export", "--force")  # replaces the link itself, never its target
    assert outside.read_text(encoding="utf-8") == "do not touch\n"
    assert not link.is_symlink() and "something" in link.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["beads.db-wal", "beads.db-shm", "beads.db"])
def test_commands_refuse_a_symlinked_database_file(repo: Path, tmp_path: Path,
                                                   name: str) -> None:
    new(repo, "something")
    outside = tmp_path.parent / f"{tmp_path.name}-{name}.txt"
    outside.write_text("do not touch\n", encoding="utf-8")
    path = repo / ".beads" / name
    if path.exists():
        outside.write_bytes(path.read_bytes() + b"do not touch\n")
        path.unlink()
    before = outside.read_bytes()
    path.symlink_to(outside)
    fails(repo, 4, "q", "more", says="symbolic link")
    fails(repo, 4, "list", says="symbolic link")
    assert outside.read_bytes() == before


# ----------------------------------------------------------- names (item 10)


@pytest.mark.parametrize("kind, name", [("rig", "web\n"), ("agent", "a1\n")])
def test_names_ending_in_a_newline_are_refused(kind: str, name: str) -> None:
    with pytest.raises(ValidationError, match=f"invalid {kind} name"):
        check_name(kind, name)


def test_town_toml_keys_ending_in_a_newline() -> None:
    import tomllib

    from gastown.config.values import env
    from gastown.town import config

    with pytest.raises(ValidationError, match="env"):
        env({"env": {"PATH\n": "/bin"}}, "town.toml: agents.a")
    # a key that is not bare is written quoted, so the file stays valid TOML
    text = "x = " + config.toml_value({"a\n": 1, "b": 2})
    assert tomllib.loads(text) == {"x": {"a\n": 1, "b": 2}}


# ----------------------------------------------------------------- -q (item 12)


def test_quiet_init_and_claim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BD_ACTOR", "tester")
    assert ok(tmp_path, "init", "-q", "--prefix", "qq") == ""
    assert ok(tmp_path, "ready", "--claim", "-q") == ""
    a = new(tmp_path, "work")
    assert ok(tmp_path, "ready", "--claim", "-q") == a + "\n"


# --------------------------------------------------- kill -9 during init (item 8)


def _prefix_of(db: Path) -> str | None:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = con.execute("SELECT value FROM config WHERE key = 'issue_prefix'").fetchone()
        return None if row is None else str(row[0])
    finally:
        con.close()


def test_kill_during_init_never_leaves_a_ledger_without_prefix(tmp_path: Path) -> None:
    # GASTOWN_INIT_KILLS / GASTOWN_INIT_SEED: a longer run (benchmarks/robustness.py)
    rng = random.Random(int(os.environ.get("GASTOWN_INIT_SEED", "9")))
    env = dict(os.environ, BD_ACTOR="tester")
    killed_early = rounds = acked = lost = internal = 0
    try:
        for n in range(int(os.environ.get("GASTOWN_INIT_KILLS", "25"))):
            proj = tmp_path / f"p{n}"
            proj.mkdir()
            proc = subprocess.Popen([BD, "init", "--prefix", "kk", "-q"], cwd=proj, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 0.05 + rng.random() * 0.35
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                killed_early += 1
            finished = proc.wait(timeout=30) == 0
            rounds += 1
            db = proj / ".beads" / "beads.db"
            acked += finished
            lost += finished and not (db.exists() and _prefix_of(db) == "kk")
            if db.exists():
                # whatever moment the kill came, a database in place is a whole one
                assert _prefix_of(db) == "kk", f"kill #{n}: ledger without prefix"
            else:
                # nothing usable was left: init runs again (a stale temp file is no obstacle)
                done = bd_proc(proj, "init", "--prefix", "kk", "-q")
                internal += done.returncode == 70
                assert done.returncode == 0, done.stderr
            created = bd_proc(proj, "q", "after the kill")
            internal += created.returncode == 70
            assert created.returncode == 0 and created.stdout.startswith("kk-"), created
    finally:
        report("init-kill9", cases=rounds, kills=killed_early, acked=acked, lost=lost,
               internal=internal, partial=_unprefixed(tmp_path))
    assert killed_early > 0


def _unprefixed(tmp_path: Path) -> int:
    """Ledgers under ``tmp_path/p*`` whose database has no prefix (what a torn init left)."""
    return sum(1 for db in tmp_path.glob("p*/.beads/beads.db") if _prefix_of(db) != "kk")


def test_init_repairs_a_half_initialised_ledger(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # what a kill left behind before init was atomic: the schema, but no prefix
    monkeypatch.setenv("BD_ACTOR", "tester")
    ok(tmp_path, "init", "--prefix", "hh", "-q")
    db = tmp_path / ".beads" / "beads.db"
    con = sqlite3.connect(db)
    con.execute("DELETE FROM config")
    con.commit()
    con.close()
    ok(tmp_path, "init", "--prefix", "hh", "-q")
    assert new(tmp_path, "works").startswith("hh-")
    # a ledger with beads is never taken for a half-made one
    fails(tmp_path, 4, "init", says="already exists")


def test_a_ledger_without_prefix_refuses_new_ids(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # beads but no prefix (an old half-made ledger that then got an import): no bd-… ids
    monkeypatch.setenv("BD_ACTOR", "tester")
    ok(tmp_path, "init", "--prefix", "np", "-q")
    kept = new(tmp_path, "kept")
    con = sqlite3.connect(tmp_path / ".beads" / "beads.db")
    con.execute("DELETE FROM config WHERE key = 'issue_prefix'")
    con.commit()
    con.close()
    before = snapshot(tmp_path)
    fails(tmp_path, 7, "q", "new work", says="bd config set issue_prefix")
    assert snapshot(tmp_path) == before
    ok(tmp_path, "update", kept, "-p", "1")  # everything else still works
    new(tmp_path, "child", "--parent", kept)  # child ids need no prefix
    ok(tmp_path, "config", "set", "issue_prefix", "np")
    assert new(tmp_path, "now fine").startswith("np-")
