"""The storage interface every backend implements, and the URL-keyed factory.

A backend supplies connections and transactions; all ledger logic is written
once, in portable SQL with ``?`` placeholders, against :class:`Tx`.  The two
backends differ only in how a write transaction is serialised, how JSON is
built in SQL for the hot ``ready`` path, and a few DDL words.
"""

from __future__ import annotations

import abc
import os

from ..errors import StorageError, UsageError, ValidationError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only: the hot path skips it
    from collections.abc import Sequence
    from typing import Any

__all__ = ["Store", "Tx", "open_store", "seconds_setting"]

#: seconds a writer waits for another writer's lock before it gives up, on every
#: backend (``BD_LOCK_TIMEOUT``)
LOCK_TIMEOUT = 30.0


def seconds_setting(var: str, text: str | None, default: float) -> float:
    """The value of a seconds setting such as ``BD_LOCK_TIMEOUT`` (``text``, as read
    from the environment by the backend), or ``default`` when it is unset or empty.

    A value that is not a positive number is one clear line, not a traceback.
    """
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 10**7:
        raise ValidationError(f"{var}={text!r}: expected a number of seconds above 0")
    return value


class Tx(abc.ABC):
    """One open transaction.  Statements use ``?`` placeholders on every backend."""

    #: a cheap upper bound of the number of beads (sizes new hash ids)
    approx_count_sql = "SELECT COUNT(*) FROM issues"

    #: appended to the candidate query of a claim (``Txn.claim_next``): `` FOR UPDATE
    #: SKIP LOCKED`` in a claim transaction of a backend with row locks, else empty
    skip_locked_clause: str = ""

    @abc.abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the number of rows it changed."""

    @abc.abstractmethod
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each parameter row."""

    @abc.abstractmethod
    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query and return all rows as tuples."""

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        """The first row of a query, or None."""
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row, or None."""
        row = self.one(sql, params)
        return row[0] if row else None

    @abc.abstractmethod
    def insert_event_returning_seq(self, sql: str, params: Sequence[Any]) -> int:
        """Insert one event row and return its ``seq``."""


class Store(abc.ABC):
    """A ledger backend: a database reached by URL."""

    #: ``sqlite`` or ``postgresql``
    dialect: str = ""
    url: str = ""

    @abc.abstractmethod
    def write(self) -> Any:
        """Context manager for a serialised write transaction yielding a :class:`Tx`.

        Writers are serialised so the incrementally maintained ready state can
        never be computed from a stale view (no write skew).
        """

    def durable(self) -> Any:
        """Context manager for a write transaction whose commit is on disk before it
        returns (merge-queue records, DESIGN §3.3).  By default :meth:`write`, for a
        backend whose commits are synchronous anyway."""
        return self.write()

    @abc.abstractmethod
    def claim(self) -> Any:
        """Context manager for a claim transaction.

        Claims only move a bead between two *active* statuses, which changes no
        one else's readiness, so backends with row locks may skip the global
        writer lock here.
        """

    @abc.abstractmethod
    def read(self) -> Any:
        """Context manager for a consistent read-only snapshot yielding a :class:`Tx`."""

    @abc.abstractmethod
    def json_quote_sql(self, expr: str) -> str:
        """SQL expression: ``expr`` (text) as a JSON string literal, e.g. ``"a\\"b"``.

        The hot ``ready --json`` path builds each object by concatenating quoted
        values in the database, so per-row work stays in C and no JSON is parsed.
        """

    @abc.abstractmethod
    def json_array_agg_sql(self, text_expr: str) -> str:
        """SQL aggregate expression joining JSON texts into one JSON array text."""

    @abc.abstractmethod
    def json_labels_fragment_sql(self, id_expr: str) -> str:
        """SQL text expression ``,"labels":[…]`` (sorted), or ``''`` when there are none."""

    def concat_sql(self, parts: Sequence[str]) -> str:
        """SQL expression concatenating text expressions (none of them NULL)."""
        return " || ".join(parts)

    #: text placed after ``FROM issues`` in the ready query (an index hint, or nothing)
    ready_index_hint: str = ""

    def change_signal(self) -> Any:
        """A :class:`~gastown.ledger.signals.ChangeSignal` that wakes on new events.

        The default wakes never (subscribers read the log on a timer); backends
        with a cheap wake-up source override it.
        """
        from .signals import TimerSignal

        return TimerSignal()

    def changed_rows(self) -> bool:
        """True when this thread's connection has changed rows since it was opened.

        A free check after a command (is an export due?); a backend that cannot
        tell without a round trip answers False.
        """
        return False

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

    # DDL words differ slightly between backends
    autoincrement_pk: str = "INTEGER PRIMARY KEY AUTOINCREMENT"

    def ddl(self, statement: str) -> str:
        """A schema statement in this backend's words (a table added after creation)."""
        return statement


def open_store(url: str, create: bool = True, passfile: str | None = None) -> Store:
    """Open the backend a URL names.

    ``sqlite:///abs/path.db``, ``sqlite:relative.db`` or a bare file path select
    SQLite; ``postgresql://…`` (or ``postgres://…``) selects PostgreSQL.  With
    ``create=False`` a SQLite file that does not exist yet is an error instead of
    a new, empty ledger (a typo in ``--db`` must not look like an empty ledger).
    ``passfile`` is a libpq password file for a PostgreSQL URL without a password
    (the ledger's ``.beads/pgpass``).
    """
    if url.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore

        return PostgresStore(url, passfile=passfile)
    if url.startswith("sqlite:"):
        path = url[len("sqlite:"):]
        if path.startswith("///"):
            path = path[2:]
        elif path.startswith("//"):
            raise UsageError(f"unsupported sqlite URL {url!r}: use sqlite:///absolute/path.db")
    elif "://" in url:
        scheme = url.split("://", 1)[0]
        raise UsageError(f"unknown database URL scheme {scheme!r} in {url!r}: "
                         "use sqlite:///path.db or postgresql://…")
    else:
        path = url
    from .sqlite import SqliteStore

    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise StorageError(f"cannot open ledger {path}: directory {directory} does not exist")
    if not create and not os.path.exists(path):
        raise StorageError(f"no ledger database at {path}")
    return SqliteStore(path)
