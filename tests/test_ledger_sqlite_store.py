"""The SQLite backend's own guarantees (DESIGN §3.3): waiting instead of failing
when another process holds the file, and one transaction per thread."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from gastown.ledger.sqlite import SqliteStore


def test_schema_creation_waits_for_a_locked_new_file(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process holding the write lock while a fresh ledger file gets its
    schema: the store keeps retrying (no "database is locked", no crash)."""
    monkeypatch.setenv("BD_LOCK_TIMEOUT", "20")  # a bounded wait, far longer than needed
    path = tmp_path / "new.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE other_app (x)")
    holder.execute("BEGIN IMMEDIATE")  # readers may read, nobody else may write
    holder.execute("INSERT INTO other_app VALUES (1)")
    release = threading.Timer(0.5, lambda: holder.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    try:
        store = SqliteStore(str(path))
    finally:
        release.join()
        holder.close()
    assert time.monotonic() - started >= 0.4  # it really had to wait
    with store.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM issues") == 0
        assert tx.scalar("PRAGMA journal_mode") == "wal"
    store.close()


def test_each_thread_gets_its_own_transaction(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "t.db"))
    inside = threading.Event()
    done = threading.Event()
    seen: list[object] = []

    def other_thread() -> None:
        inside.wait(10)
        try:
            with store.read() as tx:  # must not join the main thread's open write
                seen.append(tx.scalar("SELECT COUNT(*) FROM kv"))
        except BaseException as exc:
            seen.append(exc)
        done.set()

    th = threading.Thread(target=other_thread)
    th.start()
    with store.write() as tx:
        tx.execute("INSERT INTO kv (key, value) VALUES ('a', '1')")
        inside.set()
        assert done.wait(10)
    th.join()
    assert seen == [0]  # a snapshot without the uncommitted row, and no error
    with store.read() as tx:
        assert tx.scalar("SELECT COUNT(*) FROM kv") == 1
    store.close()
