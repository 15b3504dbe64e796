"""The embedded backend: one SQLite file, many concurrent agent processes.

Settings and why:

* WAL journal: readers never block the writer and the writer never blocks readers.
* ``synchronous=NORMAL``: in WAL mode a crash can lose at most the last commits
  not yet checkpointed by the OS, never corrupt the file; FULL is used where a
  caller asks for durability (merge-queue records) via :meth:`SqliteStore.durable`.
* ``busy_timeout`` plus our own retry loop: a writer waiting for another writer
  sleeps instead of failing.  The wait is bounded (``BD_LOCK_TIMEOUT``, 30 s):
  a writer holding the lock records who it is in ``beads.db-holder`` while it
  holds it, so a writer that gives up says who holds the lock and for how long
  ("ledger … is locked by pid N (bd update) for 31 s"), never just "database is
  locked".  A holder that dies releases its lock with its process (SQLite's locks
  are the kernel's); the waiter then simply proceeds.
* every write is ``BEGIN IMMEDIATE``: the write lock is taken up front, so two
  read-then-write transactions can never deadlock on lock upgrade.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from _thread import _local  # threading.local itself; importing threading costs ms
from contextlib import contextmanager

from ..errors import StorageError
from . import schema
from .store import LOCK_TIMEOUT, Store, Tx, seconds_setting

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only: the hot path skips it
    from collections.abc import Iterator, Sequence
    from typing import Any

__all__ = ["SqliteStore"]

#: the file beside the database naming the writer that holds the lock right now
HOLDER_SUFFIX = "-holder"


def lock_timeout() -> float:
    """``BD_LOCK_TIMEOUT`` in seconds (default 30); a bad value is one clear line."""
    return seconds_setting("BD_LOCK_TIMEOUT", os.environ.get("BD_LOCK_TIMEOUT"), LOCK_TIMEOUT)


def _holder_line() -> bytes:
    """``pid<TAB>since<TAB>command`` for the holder file (the command without its arguments)."""
    words = [os.path.basename(sys.argv[0] or "python"), *sys.argv[1:3]]
    command = " ".join(w for w in words if w).replace("\n", " ").replace("\t", " ")[:120]
    return f"{os.getpid()}\t{time.time():.3f}\t{command}\n".encode()


def _describe_holder(path: str) -> str:
    """Who holds the write lock of the ledger at ``path``, from its holder file."""
    try:
        with open(path + HOLDER_SUFFIX, encoding="utf-8", errors="replace") as fh:
            pid_text, since, command = fh.read().rstrip("\n").split("\t", 2)
        pid = int(pid_text)
        os.kill(pid, 0)
    except (OSError, ValueError):  # no file, an empty one, or a holder that has exited
        return "locked by another process"
    held = max(0.0, time.time() - float(since))
    text = f"locked by pid {pid} ({command}) for {held:.0f} s"
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            state = fh.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        state = ""
    if state in ("T", "t"):
        text += f"; that process is stopped (resume it with kill -CONT {pid}, or end it)"
    return text


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    msg = str(exc).lower()
    return "locked" in msg or "busy" in msg


class _SqliteTx(Tx):
    __slots__ = ("_con",)

    # rowids only grow, so the largest is an upper bound of the count that costs
    # one index probe instead of a scan of every row
    approx_count_sql = "SELECT MAX(rowid) FROM issues"

    def __init__(self, con: sqlite3.Connection) -> None:
        self._con = con

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._con.execute(sql, params).rowcount

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._con.executemany(sql, rows)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._con.execute(sql, params).fetchall()

    def insert_event_returning_seq(self, sql: str, params: Sequence[Any]) -> int:
        cur = self._con.execute(sql, params)
        return int(cur.lastrowid or 0)


class SqliteStore(Store):
    """A ledger in one SQLite file."""

    dialect = "sqlite"
    autoincrement_pk = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def __init__(self, path: str) -> None:
        self.path = path
        self.url = "sqlite:///" + path.lstrip("/") if path.startswith("/") else "sqlite:" + path
        # one connection per thread (as the PostgreSQL store does): a store shared by
        # threads must never run one thread's statements inside another's transaction
        self._local = _local()
        self._all: list[sqlite3.Connection] = []
        self._lock_timeout = lock_timeout()
        self._holder_fd = -1
        try:
            version = self._con.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise StorageError(f"cannot open ledger {path}: {exc}") from None
        if version == 0:
            self._create_schema()
        elif version > schema.SCHEMA_VERSION:
            raise StorageError(
                f"ledger {path} has schema version {version}; this gastown understands "
                f"up to {schema.SCHEMA_VERSION}: upgrade gastown")

    @property
    def _con(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use."""
        con = getattr(self._local, "con", None)
        if con is None:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so every
            # transaction boundary is visible in this file.
            con = sqlite3.connect(self.path, timeout=self._lock_timeout, isolation_level=None,
                                  check_same_thread=False)
            con.execute(f"PRAGMA busy_timeout = {int(self._lock_timeout * 1000)}")
            con.execute("PRAGMA synchronous = NORMAL")
            self._local.con = con
            self._all.append(con)
        return con

    def _create_schema(self) -> None:
        # a retry loop, not a context manager: a generator cannot yield a second time
        deadline = time.monotonic() + self._lock_timeout
        delay = 0.002
        while True:
            try:
                self._create_schema_once()
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise StorageError(f"ledger {self.path}: {exc}") from None
                if time.monotonic() > deadline:
                    raise self._locked_error() from None
            time.sleep(delay * (1.5 - (time.perf_counter_ns() % 1000) / 1000))
            delay = min(delay * 2, 0.05)

    def _create_schema_once(self) -> None:
        # WAL must be switched on outside a transaction; it persists in the file.
        self._con.execute("PRAGMA journal_mode = WAL")
        self._con.execute("BEGIN IMMEDIATE")
        try:
            if self._con.execute("PRAGMA user_version").fetchone()[0] == 0:
                for stmt in schema.statements(self.autoincrement_pk):
                    self._con.execute(stmt)
                self._con.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION}")
            self._con.execute("COMMIT")
        except BaseException:
            if self._con.in_transaction:
                self._con.execute("ROLLBACK")
            raise

    def _locked_error(self) -> StorageError:
        return StorageError(
            f"ledger {self.path} is {_describe_holder(self.path)}: gave up after "
            f"{self._lock_timeout:g} s, nothing was changed (BD_LOCK_TIMEOUT sets the wait)")

    def _record_holder(self) -> None:
        """Say in the holder file that this process holds the write lock (just taken)."""
        try:
            if self._holder_fd < 0:
                self._holder_fd = os.open(self.path + HOLDER_SUFFIX,
                                          os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            line = _holder_line()
            os.pwrite(self._holder_fd, line, 0)
            os.ftruncate(self._holder_fd, len(line))
        except OSError:
            pass  # a read-only directory: the lock works, only the report is vaguer

    def _clear_holder(self) -> None:
        if self._holder_fd >= 0:
            try:
                os.ftruncate(self._holder_fd, 0)  # still holding the lock: no one else wrote
            except OSError:
                pass

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[Tx]:
        con = self._con
        deadline = time.monotonic() + self._lock_timeout
        delay = 0.002
        while True:
            try:
                con.execute(begin)
                break
            except sqlite3.OperationalError as exc:
                # busy_timeout already waited; keep waiting rather than failing
                if not _is_busy(exc):
                    raise StorageError(f"ledger {self.path}: {exc}") from None
                if time.monotonic() > deadline:
                    raise self._locked_error() from None
                time.sleep(delay * (1.5 - (time.perf_counter_ns() % 1000) / 1000))
                delay = min(delay * 2, 0.05)
        writer = begin != "BEGIN"
        if writer:
            self._record_holder()
        try:
            yield _SqliteTx(con)
        except BaseException:
            if writer:
                self._clear_holder()
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        if writer:
            self._clear_holder()
        try:
            con.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise StorageError(f"ledger {self.path}: commit failed: {exc}") from None

    def write(self) -> Any:
        return self._transaction("BEGIN IMMEDIATE")

    def claim(self) -> Any:
        return self._transaction("BEGIN IMMEDIATE")

    def read(self) -> Any:
        # a deferred transaction gives a consistent WAL snapshot for several queries;
        # a read nested in an open transaction simply joins it
        if self._con.in_transaction:
            return self._joined()
        return self._transaction("BEGIN")

    @contextmanager
    def _joined(self) -> Iterator[Tx]:
        yield _SqliteTx(self._con)

    @contextmanager
    def durable(self) -> Iterator[Tx]:
        """A write transaction committed with ``synchronous=FULL`` (merge-queue records)."""
        self._con.execute("PRAGMA synchronous = FULL")
        try:
            with self._transaction("BEGIN IMMEDIATE") as tx:
                yield tx
        finally:
            self._con.execute("PRAGMA synchronous = NORMAL")

    def changed_rows(self) -> bool:
        con = getattr(self._local, "con", None)
        return con is not None and con.total_changes > 0

    def json_quote_sql(self, expr: str) -> str:
        return f"json_quote({expr})"

    def concat_sql(self, parts: Sequence[str]) -> str:
        # one printf builds the string in a single pass; a chain of || copies the
        # growing prefix once per part (measured 16 % faster for a bead's ~30 parts)
        if len(parts) > 100:  # SQLite's default limit on function arguments is 127
            return super().concat_sql(parts)
        return f"printf('{'%s' * len(parts)}', {', '.join(parts)})"

    def json_array_agg_sql(self, text_expr: str) -> str:
        return f"'[' || coalesce(group_concat({text_expr}, ','), '') || ']'"

    def json_labels_fragment_sql(self, id_expr: str) -> str:
        return (f"coalesce((SELECT ',\"labels\":[' || group_concat(json_quote(label), ',') "
                f"|| ']' FROM (SELECT label FROM labels WHERE issue_id = {id_expr} "
                f"ORDER BY label)), '')")

    # without statistics the planner may prefer the status index and sort; the
    # partial ready index yields rows already in ready order and stops at LIMIT
    ready_index_hint = "INDEXED BY idx_issues_ready"

    def change_signal(self) -> Any:
        """Wakes when a commit writes the ``-wal`` file (or the database file)."""
        from .signals import file_signal

        return file_signal([self.path + "-wal", self.path])

    def close(self) -> None:
        for con in self._all:
            try:
                con.close()
            except sqlite3.Error:
                pass
        self._all.clear()
        self._local = _local()
        if self._holder_fd >= 0:
            try:
                os.close(self._holder_fd)
            except OSError:
                pass
            self._holder_fd = -1
