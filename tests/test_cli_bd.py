"""The ``bd`` command line, driven as a user would: real processes on a real ledger."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gastown.cli.bd import COMMANDS as BD_COMMANDS
from gastown.cli.gt import COMMANDS as GT_COMMANDS

ROOT = Path(__file__).resolve().parent.parent
BD = str(Path(sys.executable).parent / "bd")


def bd(cwd: Path, *args: str, env: dict[str, str] | None = None, ok: bool = True,
       stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([BD, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          input=stdin, timeout=60)
    if ok and proc.returncode != 0:
        raise AssertionError(f"bd {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


@pytest.fixture
def repo(tmp_path: Path, bd_env: dict[str, str]) -> Path:
    bd(tmp_path, "init", "--prefix", "cli", env=bd_env)
    return tmp_path


def test_init_refuses_to_touch_an_existing_ledger(repo: Path, bd_env: dict[str, str]) -> None:
    first = bd(repo, "q", "keep me", env=bd_env).stdout.strip()
    again = bd(repo, "init", env=bd_env, ok=False)
    assert again.returncode == 4
    assert again.stderr.count("\n") == 1 and "--destroy-existing" in again.stderr
    assert bd(repo, "show", first, "--json", env=bd_env).returncode == 0
    bd(repo, "init", "--destroy-existing", "--prefix", "new", env=bd_env)
    assert bd(repo, "list", "--json", env=bd_env).stdout.strip() == "[]"


def test_create_show_update_close_round(repo: Path, bd_env: dict[str, str]) -> None:
    out = bd(repo, "create", "Design it", "-p", "1", "-t", "feature", "-l", "ui,web",
             "-d", "the description", "--json", env=bd_env).stdout
    a = json.loads(out)
    assert a["priority"] == 1 and a["issue_type"] == "feature" and a["labels"] == ["ui", "web"]
    b = bd(repo, "q", "Build it", "--deps", a["id"], env=bd_env).stdout.strip()
    assert re.fullmatch(r"cli-[0-9a-z]{3,8}", b)
    human = bd(repo, "create", "Test it", "--deps", f"blocks:{b}", env=bd_env).stdout
    assert human.startswith("✓ Created issue: cli-")
    ready = json.loads(bd(repo, "ready", "--json", env=bd_env).stdout)
    assert [r["id"] for r in ready] == [a["id"]]
    shown = json.loads(bd(repo, "show", b, "--json", env=bd_env).stdout)
    assert isinstance(shown, list) and shown[0]["dependencies"][0]["depends_on_id"] == a["id"]
    text = bd(repo, "show", b, env=bd_env).stdout
    assert "Depends on (1):" in text and a["id"] in text
    claimed = bd(repo, "update", a["id"], "--claim", "--actor", "alice", env=bd_env)
    assert claimed.stdout.strip() == f"✓ Claimed issue: {a['id']}"
    other = bd(repo, "update", a["id"], "--claim", "--actor", "bob", env=bd_env, ok=False)
    assert other.returncode == 4 and "already claimed by alice" in other.stderr
    closed = bd(repo, "close", a["id"], "-r", "designed", env=bd_env).stdout.strip()
    assert closed == f"✓ Closed {a['id']}: designed"
    ready = json.loads(bd(repo, "ready", "--json", env=bd_env).stdout)
    assert [r["id"] for r in ready] == [b]


def test_close_refuses_open_blockers_unless_forced(repo: Path, bd_env: dict[str, str]) -> None:
    a = bd(repo, "q", "first", env=bd_env).stdout.strip()
    b = bd(repo, "q", "second", "--deps", a, env=bd_env).stdout.strip()
    refused = bd(repo, "close", b, env=bd_env, ok=False)
    assert refused.returncode == 4 and a in refused.stderr and "--force" in refused.stderr
    assert json.loads(bd(repo, "show", b, "--json", env=bd_env).stdout)[0]["status"] == "open"
    bd(repo, "close", b, "--force", env=bd_env)
    assert json.loads(bd(repo, "show", b, "--json", env=bd_env).stdout)[0]["status"] == "closed"


@pytest.mark.parametrize("args, code, fragment", [
    (["show", "cli-nope"], 3, "no issue found matching 'cli-nope'"),
    (["create", "x", "-p", "9"], 5, "invalid priority 9"),
    (["create", "x", "-t", "saga"], 5, "invalid issue type 'saga'"),
    (["update", "cli-nope", "--status", "open"], 3, "cli-nope"),
    (["list", "--sort", "mood"], 5, "invalid sort key"),
    (["ready", "--bogus"], 2, "unrecognized arguments: --bogus"),
    (["frobnicate"], 2, "frobnicate"),
    (["import", "/nonexistent.jsonl"], 3, "/nonexistent.jsonl"),
    (["create", "x", "--metadata", "{bad"], 5, "--metadata is not valid JSON"),
    (["import", "/"], 5, "/: cannot read"),
    (["--db", "sqlite:///tmp/gt-no-such-ledger.db", "ready"], 6,
     "no ledger database at /tmp/gt-no-such-ledger.db"),
    (["export", "-o", "/nonexistent-dir/x.jsonl"], 6, "cannot write /nonexistent-dir/x.jsonl"),
])
def test_user_mistakes_are_one_line(repo: Path, bd_env: dict[str, str], args: list[str],
                                    code: int, fragment: str) -> None:
    proc = bd(repo, *args, env=bd_env, ok=False)
    assert proc.returncode == code, proc.stderr
    assert fragment in proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_json_errors_are_json_on_stderr(repo: Path, bd_env: dict[str, str]) -> None:
    proc = bd(repo, "show", "cli-zzz", "--json", env=bd_env, ok=False)
    err = json.loads(proc.stderr)
    assert err["code"] == "not_found" and err["exit_code"] == 3 == proc.returncode


def test_no_ledger_is_a_clear_error(tmp_path: Path, bd_env: dict[str, str]) -> None:
    proc = bd(tmp_path, "ready", env=bd_env, ok=False)
    assert proc.returncode == 7 and "bd init" in proc.stderr


def test_discovery_walks_up_and_dash_c(repo: Path, bd_env: dict[str, str]) -> None:
    bead = bd(repo, "q", "found from below", env=bd_env).stdout.strip()
    deep = repo / "src" / "pkg"
    deep.mkdir(parents=True)
    assert bead in bd(deep, "list", "--json", env=bd_env).stdout
    assert bead in bd(Path("/"), "-C", str(deep), "list", "--json", env=bd_env).stdout


def test_actor_attribution_from_env_and_flag(repo: Path, bd_env: dict[str, str]) -> None:
    env = dict(bd_env, BD_ACTOR="rig/worker/ace")
    bead = bd(repo, "q", "attributed", env=env).stdout.strip()
    bd(repo, "close", bead, "--actor", "rig/reviewer/bo", env=env)
    events = json.loads(bd(repo, "events", "--bead", bead, "--json", env=env).stdout)
    assert [(e["type"], e["actor"]) for e in events] == [
        ("bead.created", "rig/worker/ace"), ("bead.closed", "rig/reviewer/bo")]


def test_ready_claim_and_limits(repo: Path, bd_env: dict[str, str]) -> None:
    ids = [bd(repo, "q", f"task {i}", "-p", str(i % 3), env=bd_env).stdout.strip()
           for i in range(12)]
    assert len(json.loads(bd(repo, "ready", "--json", env=bd_env).stdout)) == 10
    everything = json.loads(bd(repo, "ready", "--json", "-n", "0", env=bd_env).stdout)
    assert sorted(r["id"] for r in everything) == sorted(ids)
    assert [r["priority"] for r in everything] == sorted(r["priority"] for r in everything)
    got = json.loads(bd(repo, "ready", "--claim", "--json", "--actor", "w1", env=bd_env).stdout)
    assert len(got) == 1 and got[0]["assignee"] == "w1" and got[0]["status"] == "in_progress"
    assert got[0]["id"] == everything[0]["id"]


def test_labels_comments_deps_and_tree(repo: Path, bd_env: dict[str, str]) -> None:
    a = bd(repo, "q", "alpha", env=bd_env).stdout.strip()
    b = bd(repo, "q", "beta", env=bd_env).stdout.strip()
    assert "✓ Added label 'ui' to" in bd(repo, "label", "add", a, "ui", env=bd_env).stdout
    assert json.loads(bd(repo, "label", "list", a, "--json", env=bd_env).stdout) == ["ui"]
    assert bd(repo, "comment", a, "looks", "good", env=bd_env).stdout.strip() == \
        f"Comment added to {a}"
    comments = json.loads(bd(repo, "comments", a, "--json", env=bd_env).stdout)
    assert comments[0]["text"] == "looks good" and comments[0]["id"] == "1"  # beads >= 1.0
    out = bd(repo, "dep", "add", b, a, env=bd_env).stdout.strip()
    assert out == f"✓ Added dependency: {b} depends on {a} (blocks)"
    cycle = bd(repo, "dep", "add", a, b, env=bd_env, ok=False)
    assert cycle.returncode == 5 and "cycle" in cycle.stderr
    tree = json.loads(bd(repo, "dep", "tree", b, "--json", env=bd_env).stdout)
    assert [n["id"] for n in tree] == [b, a]
    bd(repo, "dep", "remove", b, a, env=bd_env)
    assert len(json.loads(bd(repo, "ready", "--json", env=bd_env).stdout)) == 2


def test_export_import_round_trip_through_cli(repo: Path, bd_env: dict[str, str],
                                              tmp_path_factory: pytest.TempPathFactory) -> None:
    a = bd(repo, "q", "one", "-l", "x", env=bd_env).stdout.strip()
    bd(repo, "q", "two", "--deps", a, env=bd_env)
    bd(repo, "q", "wisp", "--ephemeral", env=bd_env)
    bd(repo, "export", env=bd_env)
    first = (repo / ".beads" / "issues.jsonl").read_text()
    assert len(first.splitlines()) == 2 and "wisp" not in first
    other = tmp_path_factory.mktemp("other")
    bd(other, "init", env=bd_env)
    report = json.loads(bd(other, "import", str(repo / ".beads" / "issues.jsonl"), "--json",
                           env=bd_env).stdout)
    assert report["created"] == 2
    second = bd(other, "export", "-o", "-", env=bd_env).stdout
    assert second == first


def test_import_rejects_bad_line_and_changes_nothing(repo: Path, bd_env: dict[str, str]) -> None:
    bd(repo, "q", "existing", env=bd_env)
    bad = repo / "bad.jsonl"
    bad.write_text('{"id":"cli-aaa","title":"ok","status":"open","priority":1}\n{"id": oops}\n')
    proc = bd(repo, "import", str(bad), env=bd_env, ok=False)
    assert proc.returncode == 5 and f"{bad}:2:" in proc.stderr
    titles = [b["title"] for b in json.loads(bd(repo, "list", "--json", env=bd_env).stdout)]
    assert titles == ["existing"]


def test_kv_config_stats_doctor(repo: Path, bd_env: dict[str, str]) -> None:
    bd(repo, "kv", "set", "deploy.target", "prod", env=bd_env)
    assert bd(repo, "kv", "get", "deploy.target", env=bd_env).stdout.strip() == "prod"
    missing = bd(repo, "kv", "get", "nope", env=bd_env, ok=False)
    assert missing.returncode == 3
    assert json.loads(bd(repo, "kv", "list", "--json", env=bd_env).stdout) == {
        "deploy.target": "prod"}
    bd(repo, "kv", "clear", "deploy.target", env=bd_env)
    assert json.loads(bd(repo, "kv", "list", "--json", env=bd_env).stdout) == {}
    assert bd(repo, "config", "get", "issue_prefix", env=bd_env).stdout.strip() == "cli"
    bd(repo, "q", "one", env=bd_env)
    stats = json.loads(bd(repo, "stats", "--json", env=bd_env).stdout)
    assert stats["total_issues"] == 1 and stats["ready_issues"] == 1
    doc = json.loads(bd(repo, "doctor", "--json", env=bd_env).stdout)
    assert doc["ok"] is True
    # corrupt the maintained ready state behind the ledger's back: doctor must notice
    con = sqlite3.connect(repo / ".beads" / "beads.db")
    con.execute("UPDATE issues SET held = 1")
    con.commit()
    con.close()
    broken = bd(repo, "doctor", env=bd_env, ok=False)
    assert broken.returncode == 1 and "stale" in broken.stdout
    assert bd(repo, "doctor", "--fix", env=bd_env).returncode == 0


def test_events_follow_sees_new_events(repo: Path, bd_env: dict[str, str]) -> None:
    follower = subprocess.Popen([BD, "events", "--follow", "--json", "--timeout", "3",
                                 "--interval", "0.05"], cwd=repo, env=bd_env,
                                stdout=subprocess.PIPE, text=True)
    bead = bd(repo, "q", "watched", env=bd_env).stdout.strip()
    out, _ = follower.communicate(timeout=30)
    events = [json.loads(line) for line in out.splitlines()]
    assert any(e["type"] == "bead.created" and e["bead_id"] == bead for e in events)


def test_completion_scripts_name_every_command(repo: Path, bd_env: dict[str, str]) -> None:
    for shell in ("bash", "zsh", "fish"):
        script = bd(repo, "completion", shell, env=bd_env).stdout
        for name in BD_COMMANDS:
            assert name in script


def test_output_piped_has_no_escape_codes(repo: Path, bd_env: dict[str, str]) -> None:
    bd(repo, "q", "plain", env=bd_env)
    for args in (["list"], ["ready"], ["show", bd(repo, "q", "p2", env=bd_env).stdout.strip()]):
        assert "\x1b[" not in bd(repo, *args, env=bd_env).stdout


def test_every_command_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    for prog, commands in (("bd", BD_COMMANDS), ("gt", GT_COMMANDS)):
        for name in commands:
            assert f"`{prog} {name}" in readme, f"{prog} {name} is not documented in README.md"


def test_every_command_has_help(bd_env: dict[str, str], tmp_path: Path) -> None:
    for name in BD_COMMANDS:
        proc = subprocess.run([BD, name, "--help"], capture_output=True, text=True,
                              env=bd_env, cwd=tmp_path, timeout=60)
        assert proc.returncode == 0 and f"bd {name}" in proc.stdout, (name, proc.stderr)


def test_hot_commands_import_no_heavy_modules(repo: Path, bd_env: dict[str, str]) -> None:
    """``bd ready/show/create/update/close`` load only the stdlib and the ledger."""
    bead = bd(repo, "q", "probe", env=bd_env).stdout.strip()
    probe = (
        "import sys, runpy\n"
        "from gastown.cli.bd import main\n"
        "rc = main(sys.argv[1:])\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('typing', 'dataclasses', 'rich', 'click', 'psycopg', 'tomllib', 'shutil', 'inspect')"
        " or m.startswith(('gastown.chemistry', 'gastown.town'))]\n"
        "print('HEAVY', sorted(bad), file=sys.stderr)\n"
    )
    for args in (["ready", "--json"], ["show", bead, "--json"], ["update", bead, "--claim"],
                 ["close", bead], ["create", "x", "--json"]):
        proc = subprocess.run([sys.executable, "-c", probe, *args], cwd=repo, env=bd_env,
                              capture_output=True, text=True, timeout=60)
        assert "HEAVY []" in proc.stderr, (args, proc.stderr)


def test_python_dash_m_entry_points(repo: Path, bd_env: dict[str, str]) -> None:
    proc = subprocess.run([sys.executable, "-m", "gastown.cli.bd", "ready", "--json"], cwd=repo,
                          env=bd_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and json.loads(proc.stdout) == []
    assert os.path.exists(BD)
