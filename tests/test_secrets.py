"""Secrets never leak: a PostgreSQL password stays out of committable files and argv.

The session's server normally trusts every local connection; here one role gets a
password that the server really checks (``scram-sha-256`` in ``pg_hba.conf``), so
"the ledger still connects" proves the password reached libpq another way.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.townkit import EMAIL, LEAKY, clean_env, make_repo, teardown_town, wait_for
from gastown import Ledger
from gastown.errors import ConflictError
from gastown.ledger.postgres import pgpass_entry, split_password, toml_string
from gastown.town.config import append_table
from gastown.town.core import init_town
from gastown.town.rigs import add_rig, ensure_worktree
from gastown.town.sessions import Sessions

pytest_plugins = ("agents.fixtures",)

ROLE = "gt_pw_user"
SECRET = "s3cret-Pa55:w@rd"
BD = str(Path(sys.executable).parent / "bd")


@pytest.fixture
def pw_url(pg_server: Any) -> Iterator[str]:
    """A fresh database owned by a role whose password the server checks; URL with it."""
    import psycopg

    hba = pg_server.data_dir / "pg_hba.conf"
    rule = f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n"
    text = hba.read_text()
    if rule not in text:
        hba.write_text(rule + text)  # first match wins: only this role needs a password
        pg_server.admin("SELECT pg_reload_conf()")
    pg_server.admin(f"DO $$ BEGIN CREATE ROLE {ROLE} LOGIN; EXCEPTION WHEN duplicate_object "
                    f"THEN NULL; END $$")
    pg_server.admin(f"ALTER ROLE {ROLE} PASSWORD '{SECRET}'")
    name = pg_server.new_database()
    pg_server.admin(f'ALTER DATABASE "{name}" OWNER TO {ROLE}')
    bare = f"postgresql://{ROLE}@{pg_server.host}:{pg_server.port}/{name}"

    def refused() -> bool:
        try:
            psycopg.connect(bare, connect_timeout=5, passfile="/nonexistent").close()
        except psycopg.OperationalError as exc:
            return "password" in str(exc)
        return False

    wait_for(refused, 15, what="the server to ask this role for its password")
    try:
        yield f"postgresql://{ROLE}:{SECRET.replace(':', '%3A').replace('@', '%40')}" \
              f"@{pg_server.host}:{pg_server.port}/{name}"
    finally:
        pg_server.drop_database(name)


def _env(tmp_path: Path) -> dict[str, str]:
    env = clean_env()
    env["HOME"] = str(tmp_path / "home")  # no ~/.pgpass of the machine can help
    env.pop("PGPASSWORD", None)
    env.pop("PGPASSFILE", None)
    return env


def _bd(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([BD, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True,
                          env={k: v for k, v in os.environ.items() if k not in LEAKY}).stdout


def test_init_keeps_the_password_out_of_committable_files(pw_url: str, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    _git(project, "init", "-q")
    env = _env(tmp_path)
    init = _bd(project, env, "init", "--db", pw_url, "--prefix", "sx")
    assert init.returncode == 0, init.stderr
    assert SECRET not in init.stdout + init.stderr
    beads = project / ".beads"
    config = (beads / "config.toml").read_text()
    assert SECRET not in config and "s3cret" not in config
    assert tomllib.loads(config)["database"] == split_password(pw_url)[0]
    passfile = beads / "pgpass"
    assert stat.S_IMODE(passfile.stat().st_mode) == 0o600
    # what `git add -A` would stage holds no trace of the password
    _git(project, "add", "-A")
    staged = _git(project, "ls-files", "--cached").split()
    assert ".beads/config.toml" in staged and ".beads/pgpass" not in staged
    for name in staged:
        assert "s3cret" not in (project / name).read_text(errors="replace"), name
    # and the ledger still connects, from any command, through the passfile
    created = _bd(project, env, "create", "first", "-q")
    assert created.returncode == 0, created.stderr
    listed = _bd(project, env, "list", "--json")
    assert listed.returncode == 0 and created.stdout.strip() in listed.stdout


def _cmdlines() -> dict[int, str]:
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                raw = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            out[int(entry)] = raw.replace(b"\0", b" ").decode(errors="replace")
    return out


AGENT = ("import os, subprocess, sys, time; "
         "p = subprocess.run(['bd', 'list', '--json'], capture_output=True, text=True); "
         "open('bd-result.txt', 'w').write(f'{p.returncode}\\n{p.stdout}{p.stderr}"
         "token={os.environ.get(\"API_TOKEN\")}\\n'); "
         "time.sleep(300)")


def test_agent_sessions_reach_the_ledger_with_no_secret_on_a_command_line(
        pw_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (*LEAKY, "PGPASSWORD", "PGPASSFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BD_ACTOR", "tester")
    root = tmp_path / "town"
    root.mkdir()
    Ledger.init(str(root), prefix="tw", db=pw_url, actor="tester").close()
    town = init_town(str(root), email=EMAIL, actor="tester")
    try:
        assert "s3cret" not in (root / ".beads" / "config.toml").read_text()
        add_rig(town, "app", str(make_repo(tmp_path / "src")), actor="tester")
        # an agent's own variables in town.toml may be secrets too (an API key)
        append_table(town.config_path, "agents.pw1",
                     {"rig": "app", "role": "worker", "preset": "command",
                      "command": [sys.executable, "-c", AGENT],
                      "env": {"API_TOKEN": "s3cret-token"}})
        town.reload()
        agent = town.agent("pw1")
        ensure_worktree(town, agent, "pw1/work")
        with town.ledger() as led:
            bead = led.create("visible to the agent")
        Sessions(town).start(agent, actor="tester")
        result = Path(town.workdir(agent)) / "bd-result.txt"
        text = wait_for(lambda: result.exists() and result.read_text(), 30,
                        what="the agent's bd list")
        assert text.startswith("0\n") and bead["id"] in text, text
        assert "token=s3cret-token" in text, text
        env_file = Path(town.gt_dir) / "sessions" / "pw1.env"
        assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
        # the tmux server (forked from the first client: its argv is that client's),
        # the launcher and the program: no command line holds the password
        leaks = {pid: cmd for pid, cmd in _cmdlines().items() if "s3cret" in cmd}
        assert not leaks, leaks
    finally:
        teardown_town(town)


def test_init_over_an_existing_postgres_ledger_is_refused(pg_database: str,
                                                          tmp_path: Path) -> None:
    first = tmp_path / "first"
    first.mkdir()
    led = Ledger.init(str(first), prefix="shared", db=pg_database, actor="tester")
    bead = led.create("shared work")
    led.close()
    second = tmp_path / "second"
    second.mkdir()
    env = _env(tmp_path)
    proc = _bd(second, env, "init", "--db", pg_database, "--prefix", "other")
    assert proc.returncode == ConflictError.exit_code, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "--attach" in proc.stderr
    assert not (second / ".beads" / "config.toml").exists()
    with Ledger.open(pg_database) as shared:
        assert shared.prefix == "shared" and shared.count() == 1
    # --attach points the directory at the ledger and changes nothing in it
    attach = _bd(second, env, "init", "--attach", "--db", pg_database)
    assert attach.returncode == 0, attach.stderr
    listed = _bd(second, env, "list", "--json")
    assert listed.returncode == 0 and bead["id"] in listed.stdout
    with Ledger.open(pg_database) as shared:
        assert shared.prefix == "shared" and shared.count() == 1
    # attaching to a database without a ledger is one line, not a new ledger
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = _bd(empty, env, "init", "--attach", "--db", pg_database.rsplit("/", 1)[0]
                  + "/postgres")
    assert missing.returncode == 3 and len(missing.stderr.strip().splitlines()) == 1


def test_config_toml_strings_are_escaped(pg_database: str, tmp_path: Path) -> None:
    encoded = pg_database + "?application_name=a%22b&options=-c%20search_path%3Dpublic"
    raw = pg_database + '?application_name=q"uo\\te'
    for n, url in enumerate((encoded, raw)):
        project = tmp_path / f"p{n}"
        project.mkdir()
        again = ["--destroy-existing"] if n else []  # the same database, made anew
        proc = _bd(project, _env(tmp_path), "init", *again, "--db", url, "--prefix", f"e{n}")
        assert proc.returncode == 0, proc.stderr
        config = tomllib.loads((project / ".beads" / "config.toml").read_text())
        assert config["database"] == url
        ready = _bd(project, _env(tmp_path), "ready", "--json")
        assert ready.returncode == 0, ready.stderr


@pytest.mark.parametrize("text", ['plain', 'q"uote', "back\\slash", "new\nline\ttab\r",
                                  "del\x7fnul\x00", "ünïcode ✓"])
def test_toml_string_round_trips(text: str) -> None:
    assert tomllib.loads(f"v = {toml_string(text)}\n")["v"] == text


def test_split_password_and_passfile_entry() -> None:
    assert split_password("postgresql://u:p%40ss@h:5/db?sslmode=require") == \
        ("postgresql://u@h:5/db?sslmode=require", "p@ss")
    assert split_password("postgresql://h/db?password=x&sslmode=disable") == \
        ("postgresql://h/db?sslmode=disable", "x")
    assert split_password("postgresql://u@h/db") == ("postgresql://u@h/db", None)
    assert pgpass_entry("postgresql://u@h:5/db", "a:b\\c") == "h:5:db:u:a\\:b\\\\c\n"
    assert pgpass_entry("postgresql:///db", "x") == "*:*:db:*:x\n"


# ------------------------------------------------- who is acting, without $USER


def test_actor_falls_back_to_the_login_name_everywhere(tmp_path: Path, town: Any,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import pwd

    from agents.townkit import add_agent, clean_env, gt, sleeper

    login = pwd.getpwuid(os.getuid()).pw_name
    env = {k: v for k, v in _env(tmp_path).items()
           if k not in ("USER", "LOGNAME", "BD_ACTOR", "BEADS_ACTOR")}
    project = tmp_path / "project"
    project.mkdir()
    assert _bd(project, env, "init", "-q").returncode == 0
    created = _bd(project, env, "create", "who made me", "--json")
    assert created.returncode == 0, created.stderr
    assert __import__("json").loads(created.stdout)["created_by"] == login
    # a nudge's sender follows the same rule
    for var in ("USER", "LOGNAME", "BD_ACTOR", "BEADS_ACTOR"):
        monkeypatch.delenv(var, raising=False)
    add_agent(town, "n1", sleeper())
    # the command line resolves the sender at the edge; the library takes it as given
    gt(town, "nudge", "n1", "hello", "--mode", "queue",
       env={k: v for k, v in clean_env().items()
            if k not in ("USER", "LOGNAME", "BD_ACTOR", "BEADS_ACTOR")})
    with town.ledger() as led:
        (event,) = led.events(types=["nudge"])
    assert event["actor"] == login
