"""Checks specific to the PostgreSQL backend (the shared behaviour is the conformance suite).

Everything here runs against the real server ``pg_server`` starts, except the
pure-text checks of placeholder translation and URL redaction.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from gastown import Ledger
from gastown.errors import ConflictError, StorageError
from gastown.ledger import Filter, open_store
from gastown.ledger.postgres import PostgresStore, safe_url, translate_placeholders

# ------------------------------------------------------------ pure text checks


@pytest.mark.parametrize(("sql", "want"), [
    ("SELECT ? , ?", "SELECT %s , %s"),
    ("SELECT '?' , ?", "SELECT '?' , %s"),
    ("SELECT 'it''s ?', ?", "SELECT 'it''s ?', %s"),
    ("SELECT x LIKE ? ESCAPE '\\'", "SELECT x LIKE %s ESCAPE '\\'"),
    ("SELECT '%' || ?", "SELECT '%%' || %s"),
    ("SELECT 5 % 2, ?", "SELECT 5 %% 2, %s"),
    ('SELECT "odd?col" FROM t WHERE a = ?', 'SELECT "odd?col" FROM t WHERE a = %s'),
    ("SELECT 1 -- why?\nWHERE a = ?", "SELECT 1 -- why?\nWHERE a = %s"),
])
def test_postgres_placeholder_translation(sql: str, want: str) -> None:
    assert translate_placeholders(sql) == want


def test_postgres_safe_url_never_shows_the_password() -> None:
    assert safe_url("postgresql://bob:s3cret@db.example:6543/town") == \
        "postgresql://bob@db.example:6543/town"
    assert safe_url("postgres://bob:s3cret@db.example/town") == \
        "postgresql://bob@db.example:5432/town"
    assert safe_url("postgresql://db.example/town") == "postgresql://db.example:5432/town"
    assert "s3cret" not in safe_url("postgresql://bob:s3cret@h:5/db?sslmode=bogus&x")


# ----------------------------------------------------------- connection errors


def _closed_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens there once closed


def test_postgres_dead_server_is_one_line_without_password() -> None:
    port = _closed_port()
    with pytest.raises(StorageError) as err:
        open_store(f"postgresql://agent:hunter2@127.0.0.1:{port}/town")
    msg = str(err.value)
    assert msg.startswith(f"cannot connect to postgresql://agent@127.0.0.1:{port}/town: ")
    assert "refused" in msg.lower()
    assert "\n" not in msg and "hunter2" not in msg


def test_postgres_unknown_database_and_bad_url(pg_server: Any) -> None:
    with pytest.raises(StorageError) as err:
        open_store(pg_server.url("no_such_db").replace("postgres@", "postgres:pw@"))
    msg = str(err.value)
    assert msg.startswith(
        f"cannot connect to postgresql://postgres@127.0.0.1:{pg_server.port}/no_such_db")
    assert "no_such_db" in msg and "\n" not in msg and ":pw" not in msg
    with pytest.raises(StorageError) as err:
        open_store("postgresql://u:topsecret@127.0.0.1:notaport/db")
    assert "\n" not in str(err.value) and "topsecret" not in str(err.value)


def test_postgres_bd_cli_dead_server_exits_with_one_line(bd_env: dict[str, str],
                                                         tmp_path: Path) -> None:
    port = _closed_port()
    proc = subprocess.run(
        [sys.executable, "-m", "gastown.cli.bd", "--db",
         f"postgresql://agent:hunter2@127.0.0.1:{port}/town", "ready"],
        cwd=tmp_path, env=bd_env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == StorageError.exit_code, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "cannot connect to postgresql://agent@127.0.0.1" in lines[0]
    assert "hunter2" not in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr


# ----------------------------------------------------------- store behaviour


def test_postgres_store_url_and_repr_hide_password(pg_server: Any, pg_database: str) -> None:
    url = pg_database.replace("postgres@", "postgres:ignored-by-trust@")
    store = open_store(url)
    try:
        assert isinstance(store, PostgresStore)
        assert store.dialect == "postgresql"
        assert "ignored-by-trust" not in store.url + repr(store)
        assert store.url == f"postgresql://postgres@127.0.0.1:{pg_server.port}/" + \
            url.rsplit("/", 1)[1]
        again = open_store(store.url)  # the shown URL still opens the same database
        again.close()
    finally:
        store.close()


def test_postgres_schema_created_once_by_concurrent_openers(pg_database: str) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def opener() -> None:
        try:
            barrier.wait()
            open_store(pg_database).close()
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    store = open_store(pg_database)
    try:
        with store.read() as tx:
            assert tx.query("SELECT key, value FROM meta") == [("schema_version", "1")]
    finally:
        store.close()


def test_postgres_nested_read_joins_nested_write_is_refused(pg_database: str) -> None:
    store = open_store(pg_database)
    try:
        with store.write() as tx:
            tx.execute("INSERT INTO kv (key, value) VALUES (?, ?)", ("a", "1"))
            with store.read() as inner:  # joins: sees the uncommitted row
                assert inner.scalar("SELECT value FROM kv WHERE key = ?", ("a",)) == "1"
            with pytest.raises(StorageError, match="already open"), store.write():
                pass
        with store.read() as tx:  # the outer transaction committed normally
            assert tx.scalar("SELECT value FROM kv WHERE key = ?", ("a",)) == "1"
    finally:
        store.close()


def test_postgres_sql_error_rolls_back_and_is_one_line(pg_database: str) -> None:
    store = open_store(pg_database)
    try:
        with pytest.raises(StorageError) as err, store.write() as tx:
            tx.execute("INSERT INTO kv (key, value) VALUES (?, ?)", ("a", "1"))
            tx.execute("INSERT INTO kv (key, value) VALUES (?, ?)", ("a", "2"))
        assert "\n" not in str(err.value)
        with store.read() as tx:
            assert tx.query("SELECT * FROM kv") == []
        with store.write() as tx:  # the connection is usable again
            tx.execute("INSERT INTO kv (key, value) VALUES (?, ?)", ("b", "%?'"))
        with store.read() as tx:
            assert tx.scalar("SELECT value FROM kv WHERE key = ?", ("b",)) == "%?'"
    finally:
        store.close()


def test_postgres_killed_session_is_reported_then_reconnects(pg_server: Any,
                                                             pg_database: str) -> None:
    led = Ledger.open(pg_database, actor="tester")
    try:
        with led.store.read() as tx:
            pid = tx.scalar("SELECT pg_backend_pid()")
        pg_server.admin(f"SELECT pg_terminate_backend({int(pid)})")
        with pytest.raises(StorageError) as err, led.store.read() as tx:
            tx.query("SELECT 1")
        assert "\n" not in str(err.value)
        assert str(err.value).startswith(("lost connection to postgresql://",
                                          "postgresql://"))
        with led.store.read() as tx:  # a fresh connection for the next transaction
            assert tx.scalar("SELECT 1") == 1
    finally:
        led.close()


def test_postgres_text_sorts_by_code_point_whatever_the_server_collation(
        ledger: Ledger) -> None:
    # the test server's default collation is ICU en-US where available: without
    # the C collation on columns, "a" would sort before "B" here
    for title in ("b", "B", "a", "_x", "Z"):
        ledger.create(title)
    assert [b["title"] for b in ledger.list(sort="title")] == sorted(["b", "B", "a", "_x", "Z"])


def test_postgres_closed_sort_puts_open_beads_last_on_every_backend(ledger: Ledger) -> None:
    a = ledger.create("a")
    b = ledger.create("b")
    c = ledger.create("c")
    ledger.close_bead(a.id)
    ledger.close_bead(c.id)
    got = [x["id"] for x in ledger.list(sort="closed")]
    assert got == [c.id, a.id, b.id]
    assert [x["id"] for x in ledger.list(sort="closed", reverse=True)] == [b.id, a.id, c.id]


def test_postgres_ready_json_equals_ready_objects(ledger: Ledger) -> None:
    parent = ledger.create("epic", issue_type="epic", labels=["z", "A"])
    ledger.create("child", parent=parent.id, metadata={"k": None, "n": [1, 2.5]},
                  pinned=False, labels=["één"], description="multi\nline\t\"tab\"")
    ledger.create("unicode ✓ 'q' \\", priority=0, estimated_minutes=0)
    blocker = ledger.create("blocker", priority=4)
    ledger.create("held", deps=[("blocks", blocker.id)])
    ledger.claim(blocker.id, "someone")
    for f in (Filter(), Filter(labels_any=["A", "één"]), Filter(priority_max=1)):
        got = json.loads(ledger.ready_json(f))
        assert got == [dict(b) for b in ledger.ready(f)]
    assert json.loads(ledger.ready_json(Filter(labels_all=["nope"]))) == []


# --------------------------------------------------------------- concurrency


def _fill(led: Ledger, n: int) -> list[str]:
    with led.transaction() as t:
        return [t.create(f"job {i}", priority=i % 5).id for i in range(n)]


def test_postgres_threads_sharing_one_ledger_never_double_claim(pg_database: str,
                                                                tmp_path: Path) -> None:
    led = Ledger.init(str(tmp_path), prefix="t", db=pg_database, actor="boss")
    try:
        ids = _fill(led, 120)
        won: dict[str, list[str]] = {}
        errors: list[BaseException] = []

        def worker(name: str) -> None:
            mine: list[str] = []
            try:
                while (bead := led.claim_next(assignee=name)) is not None:
                    mine.append(bead["id"])
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)
            won[name] = mine

        threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        claimed = [b for mine in won.values() for b in mine]
        assert sorted(claimed) == sorted(ids)  # each bead exactly once
        assert len([w for w, mine in won.items() if mine]) > 1  # really concurrent
        for name, mine in won.items():
            for bead_id in mine:
                assert led.get(bead_id)["assignee"] == name
        assert led.ready() == []
    finally:
        led.close()


def _claim_all(url: str, name: str, queue: Any) -> None:
    led = Ledger.open(url, actor=name)
    mine: list[str] = []
    try:
        while (bead := led.claim_next()) is not None:
            mine.append(bead["id"])
        queue.put((name, mine, None))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        queue.put((name, mine, f"{type(exc).__name__}: {exc}"))
    finally:
        led.close()


def test_postgres_processes_never_double_claim(pg_database: str, tmp_path: Path) -> None:
    led = Ledger.init(str(tmp_path), prefix="t", db=pg_database, actor="boss")
    try:
        ids = _fill(led, 200)
        ctx = multiprocessing.get_context("fork" if hasattr(os, "fork") else "spawn")
        queue = ctx.Queue()
        procs = [ctx.Process(target=_claim_all, args=(pg_database, f"p{i}", queue))
                 for i in range(6)]
        for p in procs:
            p.start()
        results = [queue.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert [r[2] for r in results if r[2]] == []
        claimed = Counter(b for _, mine, _ in results for b in mine)
        assert sorted(claimed) == sorted(ids)
        assert max(claimed.values()) == 1
        for name, mine, _ in results:
            for bead_id in mine:
                assert led.get(bead_id)["assignee"] == name
        # the parent's own connection survived the children (fork-inherited sockets)
        assert led.count() == 200
        events = [e for e in led.events() if e["type"] == "bead.claimed"]
        assert len(events) == 200
    finally:
        led.close()


def test_postgres_contested_claim_by_id_has_one_winner(pg_database: str,
                                                       tmp_path: Path) -> None:
    led = Ledger.init(str(tmp_path), prefix="t", db=pg_database, actor="boss")
    try:
        bead_ids = _fill(led, 20)
        def grab(name: str, target: str, barrier: threading.Barrier, wins: list[str],
                 losses: list[str]) -> None:
            barrier.wait()
            try:
                led.claim(target, name)
                wins.append(name)
            except ConflictError:
                losses.append(name)

        for bead_id in bead_ids:
            wins: list[str] = []
            losses: list[str] = []
            barrier = threading.Barrier(6)
            threads = [threading.Thread(target=grab, args=(f"a{i}", bead_id, barrier, wins,
                                                           losses)) for i in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(wins) == 1 and len(losses) == 5
            assert led.get(bead_id)["assignee"] == wins[0]
    finally:
        led.close()


def test_postgres_concurrent_writers_keep_ready_state_exact(pg_database: str,
                                                            tmp_path: Path) -> None:
    led = Ledger.init(str(tmp_path), prefix="t", db=pg_database, actor="boss")
    try:
        roots = _fill(led, 10)
        errors: list[BaseException] = []

        def writer(k: int) -> None:
            other = Ledger.open(pg_database, actor=f"w{k}")
            try:
                for i in range(15):
                    p = (k + i) % len(roots)
                    b = other.create(f"w{k}-{i}", parent=roots[p])
                    # never its own parent: that edge is refused as a deadlock
                    d = (k * 3 + i) % len(roots)
                    other.add_dep(b.id, roots[d if d != p else (d + 1) % len(roots)], "blocks")
                    if i % 4 == 0:
                        other.close_bead(roots[(k + i) % len(roots)], force=True)
                    if i % 5 == 0:
                        other.update(roots[(k + 2 * i) % len(roots)], status="open")
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)
            finally:
                other.close()

        threads = [threading.Thread(target=writer, args=(k,)) for k in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        # the incrementally kept state equals a rebuild from scratch
        assert led.recompute_ready_state() == 0
        assert led.integrity_problems() == []
    finally:
        led.close()


def test_postgres_claims_and_writers_on_the_same_beads_never_deadlock(
        pg_database: str, tmp_path: Path) -> None:
    led = Ledger.init(str(tmp_path), prefix="t", db=pg_database, actor="boss")
    try:
        ids = _fill(led, 150)
        errors: list[BaseException] = []
        won: list[str] = []
        stop = threading.Event()

        def claimer(name: str) -> None:
            other = Ledger.open(pg_database, actor=name)
            try:
                while (bead := other.claim_next()) is not None:
                    won.append(bead["id"])
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)
            finally:
                other.close()

        def meddler(k: int) -> None:
            other = Ledger.open(pg_database, actor=f"m{k}")
            try:
                i = 0
                while not stop.is_set():
                    target = ids[(i * 7 + k) % len(ids)]
                    other.update(target, notes=f"touched {i}")
                    other.add_label(target, f"l{k}")
                    i += 1
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)
            finally:
                other.close()

        meddlers = [threading.Thread(target=meddler, args=(k,)) for k in range(2)]
        claimers = [threading.Thread(target=claimer, args=(f"c{i}",)) for i in range(4)]
        for t in meddlers + claimers:
            t.start()
        for t in claimers:
            t.join()
        stop.set()
        for t in meddlers:
            t.join()
        assert errors == []
        assert sorted(won) == sorted(ids)
        assert led.recompute_ready_state() == 0
    finally:
        led.close()


def test_postgres_forked_child_reconnects_and_leaves_parent_session_alone(
        pg_database: str, tmp_path: Path) -> None:
    led = Ledger.init(str(tmp_path), prefix="t", db=pg_database, actor="boss")
    try:
        led.create("before fork")
        with led.store.read() as tx:
            parent_pid = tx.scalar("SELECT pg_backend_pid()")
        pid = os.fork()
        if pid == 0:  # the child uses the inherited ledger object, then exits
            code = 1
            try:
                with led.store.read() as tx:
                    child_pid = tx.scalar("SELECT pg_backend_pid()")
                led.create("from child")
                led.close()
                code = 0 if child_pid != parent_pid else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        with led.store.read() as tx:
            assert tx.scalar("SELECT pg_backend_pid()") == parent_pid
        assert sorted(b["title"] for b in led.list()) == ["before fork", "from child"]
    finally:
        led.close()


# ------------------------------------------------------------------- filters, CLI


def test_postgres_claim_next_with_filters_locks_one_row(ledger: Ledger) -> None:
    root = ledger.create("mol root", issue_type="molecule")
    step = ledger.create("step", parent=root.id, labels=["x"])
    other = ledger.create("other", priority=0, labels=["x"])
    got = ledger.claim_next(Filter(mol=root.id), assignee="m")
    assert got is not None and got["id"] == step.id
    got = ledger.claim_next(Filter(labels_all=["x"]), assignee="m")
    assert got is not None and got["id"] == other.id
    assert ledger.claim_next(Filter(labels_all=["x"])) is None


def test_postgres_bd_command_line_round_trip(pg_database: str, bd_env: dict[str, str],
                                             tmp_path: Path) -> None:
    bd = str(Path(sys.executable).parent / "bd")

    def run(*args: str) -> str:
        proc = subprocess.run([bd, *args], cwd=tmp_path, env=bd_env, capture_output=True,
                              text=True, timeout=60, check=False)
        assert proc.returncode == 0, f"bd {' '.join(args)}: {proc.stderr}"
        return proc.stdout

    run("init", "--prefix", "pg", "--db", pg_database)
    first = run("q", "first task", "-p", "1").strip()
    second = run("q", "second task", "-p", "0").strip()
    run("dep", "add", first, second)
    ready = json.loads(run("ready", "--json"))
    assert [r["id"] for r in ready] == [second]
    claimed = json.loads(run("ready", "--claim", "--json", "--actor", "w1"))
    assert claimed[0]["id"] == second and claimed[0]["assignee"] == "w1"
    run("close", second)
    assert [r["id"] for r in json.loads(run("ready", "--json"))] == [first]
    assert json.loads(run("doctor", "--json"))["ok"] is True
    run("export", "-o", str(tmp_path / "out.jsonl"))
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == sorted([first, second])
