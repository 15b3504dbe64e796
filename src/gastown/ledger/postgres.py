"""The server backend: one PostgreSQL database shared by agents on many machines.

Selected by a ``postgresql://`` (or ``postgres://``) URL.  All ledger logic is the
same portable SQL the SQLite backend runs; this module only supplies
connections, transaction boundaries and the JSON-building expressions of the hot
``ready`` path.

Transactions and why:

* **write** — ``READ COMMITTED`` plus a transaction-scoped advisory lock taken
  first.  The lock serialises writers exactly as SQLite's ``BEGIN IMMEDIATE``
  does: the ready/blocked columns are maintained incrementally from what a
  writer reads, so two writers must never compute them from views that miss
  each other's changes (write skew).  ``READ COMMITTED`` (not ``REPEATABLE
  READ``) because every statement after the lock must see every earlier
  writer's commit, and because a concurrent claim touching the same row must
  make the writer wait, not fail with a serialisation error.
* **claim** — ``READ COMMITTED`` *without* the global lock.  A claim moves one
  bead between two active statuses, which changes no one else's readiness; the
  compare-and-set ``UPDATE … WHERE status = 'open'`` is re-checked by the server
  against the newest row version when two claims meet, and ``claim_next`` picks
  its candidate ``FOR UPDATE SKIP LOCKED`` so concurrent claimers spread over
  different beads instead of queueing on the first one.
* **read** — ``REPEATABLE READ READ ONLY``: one snapshot for all the queries of
  a ``show`` or ``export``; read-only snapshots never fail with serialisation
  errors and take no locks.

Every failure of the server or the network becomes a :class:`StorageError` with
one line of text that names the database without its password.

Connections are per thread (a :class:`PostgresStore` may be shared by the
threads of a controller) and are never used across a ``fork``: a child process
that inherits a store opens its own connection and silently detaches the
inherited ones, so it can never disturb its parent's session.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import select
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any
from urllib.parse import quote

from ..errors import StorageError, ValidationError
from . import schema
from .signals import ChangeSignal
from .store import LOCK_TIMEOUT, Store, Tx, seconds_setting

__all__ = ["PostgresStore", "safe_url", "split_password", "translate_placeholders",
           "pgpass_entry", "timeouts", "toml_string", "write_config"]

#: advisory-lock keys (advisory locks are per database, so constants are enough);
#: the bytes spell "gastown" plus a role byte, which keeps them clear of other apps
WRITER_LOCK = 0x676173746F776E01
SCHEMA_LOCK = 0x676173746F776E02
#: the ``LISTEN``/``NOTIFY`` channel a commit that wrote events notifies (per database)
EVENTS_CHANNEL = "gastown_events"
#: the longest a listener sleeps in one ``select`` (so that closing it is noticed)
_LISTEN_SLICE_S = 0.5

#: :data:`.store.LOCK_TIMEOUT`: seconds any statement may wait for a lock (the writer
#: lock included) before the transaction fails with a clear error instead of hanging
#: forever behind a stopped process, as on SQLite.  ``BD_LOCK_TIMEOUT``.
#: seconds the server may take over one statement (server-side ``statement_timeout``);
#: the client gives a frozen server a few seconds more, then gives up.  ``BD_DB_TIMEOUT``.
DB_TIMEOUT = 60.0
_CONNECT_TIMEOUT = 10
#: how much longer than ``statement_timeout`` the client waits for any answer: a
#: live server always answers first, so only a frozen one meets the client's limit
_CLIENT_GRACE = 5.0

_BEGIN_WRITE = ("BEGIN ISOLATION LEVEL READ COMMITTED; "
                f"SELECT pg_advisory_xact_lock({WRITER_LOCK})")
_BEGIN_CLAIM = "BEGIN ISOLATION LEVEL READ COMMITTED"
_BEGIN_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

_SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"

# SQLSTATE codes that mean "the transaction lost a race and was rolled back"
_RETRYABLE = {"40001": "serialization failure", "40P01": "deadlock detected"}
_LOCK_NOT_AVAILABLE = "55P03"
_QUERY_CANCELED = "57014"

_TEXT_TYPE = re.compile(r"\bTEXT\b")
_CONNECTION_CLASS: Any = None


def _wait_timeout(pg: ModuleType) -> Any:
    """The exception psycopg raises when a wait runs past its timeout (or a never-raised one)."""
    return getattr(pg.errors, "_WaitTimeout", _NeverRaised)


class _NeverRaised(Exception):
    pass


def _connection_class(pg: ModuleType) -> Any:
    """``psycopg.Connection`` whose every wait for the server ends after ``gt_timeout``.

    libpq has no client-side timeout for a statement: against a frozen server
    (stopped, or a dead network path that still acknowledges packets) a query
    waits forever.  psycopg ≥ 3.3 can bound each wait; older versions keep the
    server-side ``statement_timeout`` only.
    """
    global _CONNECTION_CLASS
    if _CONNECTION_CLASS is not None:
        return _CONNECTION_CLASS
    base = pg.Connection
    code = base.wait.__code__
    if "timeout" not in code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]:
        _CONNECTION_CLASS = base
        return base

    class _BoundedConnection(base):  # type: ignore[misc, valid-type]
        gt_timeout: float | None = None

        def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
            return super().wait(gen, interval, timeout if timeout is not None else self.gt_timeout)

    _CONNECTION_CLASS = _BoundedConnection
    return _BoundedConnection


def _psycopg() -> ModuleType:
    """psycopg, imported only when a PostgreSQL URL is actually opened."""
    try:
        import psycopg
    except ImportError:
        raise StorageError("PostgreSQL support needs psycopg 3: "
                           "pip install 'gastown[postgres]'") from None
    return psycopg


# ------------------------------------------------------------------ SQL text


@functools.lru_cache(maxsize=2048)
def translate_placeholders(sql: str) -> str:
    """Portable ``?`` placeholders → psycopg's ``%s``.

    psycopg treats every ``%`` as the start of a placeholder, even inside string
    literals, so each literal ``%`` is doubled first.  A ``?`` inside a quoted
    literal or identifier, or in a ``--`` comment, is text and stays as it is.
    """
    if "'" not in sql and '"' not in sql and "--" not in sql:
        return sql.replace("%", "%%").replace("?", "%s")
    out: list[str] = []
    quote_char = ""
    in_comment = False
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch == "%":
            out.append("%%")
        elif in_comment:
            out.append(ch)
            in_comment = ch != "\n"
        elif quote_char:
            out.append(ch)
            if ch == quote_char:  # a doubled quote just closes and reopens
                quote_char = ""
        elif ch in ("'", '"'):
            quote_char = ch
            out.append(ch)
        elif ch == "-" and sql.startswith("--", i):
            in_comment = True
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _ddl(statement: str) -> str:
    """A schema statement for PostgreSQL.

    Text columns get the ``"C"`` collation: ids, timestamps and titles must sort
    by code point, exactly as SQLite's BINARY collation and Python's ``sorted``
    do, whatever natural-language collation the server was created with (with
    ``en_US`` rules ``t-B`` and ``t-a`` would swap places in ``ready`` order).
    """
    return _TEXT_TYPE.sub('TEXT COLLATE "C"', statement)


# ---------------------------------------------------------- URLs and errors


def timeouts() -> tuple[float, float]:
    """``(lock_timeout, db_timeout)`` in seconds: ``BD_LOCK_TIMEOUT``, ``BD_DB_TIMEOUT``.

    A value that is not a positive number is one clear line, not a traceback.
    """
    return (seconds_setting("BD_LOCK_TIMEOUT", os.environ.get("BD_LOCK_TIMEOUT"), LOCK_TIMEOUT),
            seconds_setting("BD_DB_TIMEOUT", os.environ.get("BD_DB_TIMEOUT"), DB_TIMEOUT))


def split_password(url: str) -> tuple[str, str | None]:
    """``(url without its password, the password or None)``.

    The password may sit in the user part (``user:pw@host``) or in the query
    (``?password=pw``); everything else in the URL is kept exactly as written.
    """
    from urllib.parse import unquote

    scheme, sep, rest = url.partition("://")
    if not sep:
        return url, None
    cut = len(rest)
    for ch in "/?":
        found = rest.find(ch)
        if found != -1:
            cut = min(cut, found)
    netloc, tail = rest[:cut], rest[cut:]
    password: str | None = None
    at = netloc.rfind("@")
    if at != -1:
        user, colon, secret = netloc[:at].partition(":")
        if colon:
            password = unquote(secret)
            netloc = f"{user}@{netloc[at + 1:]}" if user else netloc[at + 1:]
    path, question, query = tail.partition("?")
    if question:
        kept = []
        for part in query.split("&"):
            key, _eq, value = part.partition("=")
            if unquote(key) == "password":
                password = unquote(value)
            else:
                kept.append(part)
        tail = path + ("?" + "&".join(kept) if kept else "")
    return f"{scheme}://{netloc}{tail}", password or None


def _pgpass_field(value: object) -> str:
    text = str(value)
    if "\n" in text or "\r" in text:
        raise ValidationError("a database user, host or password with a line break cannot be "
                              "kept in a password file: use PGPASSWORD instead")
    return text.replace("\\", "\\\\").replace(":", "\\:")


def pgpass_entry(url: str, password: str) -> str:
    """The passfile line (``host:port:db:user:password``) that gives ``url`` its password.

    A part the URL leaves to libpq's defaults (or lists several of) matches any
    value (``*``); the named ones match exactly, so the password is never offered
    to another server.
    """
    params = _parse_conninfo(url)
    if params is None:
        raise ValidationError(f"invalid database URL {safe_url(url)}")

    def part(*keys: str) -> str:
        for key in keys:
            value = params.get(key)
            if value:
                return "*" if "," in str(value) else _pgpass_field(value)
        return "*"

    return ":".join([part("host", "hostaddr"), part("port"), part("dbname"), part("user"),
                     _pgpass_field(password)]) + "\n"



def _parse_conninfo(conninfo: str) -> dict[str, Any] | None:
    """The connection parameters of a URL, or None when it cannot be parsed."""
    pg = _psycopg()
    try:
        return dict(pg.conninfo.conninfo_to_dict(conninfo))
    except pg.Error:
        return None


def safe_url(conninfo: str) -> str:
    """``postgresql://user@host:port/db`` for messages and reopening: never the password."""
    params = _parse_conninfo(conninfo)
    if params is None:  # unparsable: redact the password by hand
        return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", conninfo.split("?", 1)[0])
    host = str(params.get("host") or params.get("hostaddr") or "localhost")
    port = str(params.get("port") or "5432")
    dbname = str(params.get("dbname") or params.get("user") or "")
    if host.startswith("/"):  # a unix-socket directory
        host = quote(host, safe="")
    # the user name stays (the URL must still open the same database); only the
    # password is left out
    user = params.get("user")
    who = f"{quote(str(user), safe='')}@" if user else ""
    return f"postgresql://{who}{host}:{port}/{dbname}"


def _application_name() -> str:
    """``gastown: bd update (pid 123)``: the command, never its arguments (they may be private)."""
    import sys

    words = [os.path.basename(sys.argv[0] or "python")] + sys.argv[1:2]
    command = " ".join(w for w in words if w and not w.startswith("-"))
    name = f"gastown: {command} (pid {os.getpid()})"
    return name.encode("ascii", "replace").decode()[:63]


def _one_line(text: str, secret: str | None) -> str:
    line = " ".join(str(text).split())
    if secret:
        line = line.replace(secret, "***")
    return line


def toml_string(text: str) -> str:
    """``text`` as a TOML basic string, every character TOML requires escaped."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif code < 0x20 or code == 0x7F:
            out.append({"\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(ch, f"\\u{code:04X}"))
        elif 0xD800 <= code <= 0xDFFF:  # a lone surrogate: bytes that were not UTF-8
            raise ValidationError("the database URL is not valid UTF-8")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _write_private(path: str, text: str, mode: int) -> None:
    """Replace ``path`` with ``text`` atomically; the file never exists with a wider mode."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # O_CREAT's mode is narrowed by the umask, never widened
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    os.replace(tmp, path)


def write_config(beads_dir: str, url: str) -> str:
    """Point ``beads_dir`` at the PostgreSQL ledger ``url``; return the URL as written.

    ``config.toml`` gets the URL *without* its password (it may be committed);
    the password goes to ``pgpass`` beside it, mode 0600, in libpq's passfile
    format, and ``pgpass`` is listed in ``.beads/.gitignore``.  A URL without a
    password writes no passfile (libpq's ``~/.pgpass``/``PGPASSFILE`` apply).
    """
    from .discovery import CONFIG_FILE, PASS_FILE

    public, password = split_password(url)
    config = os.path.join(beads_dir, CONFIG_FILE)
    passfile = os.path.join(beads_dir, PASS_FILE)
    entry = pgpass_entry(public, password) if password else None
    text = ("# written by bd init; the password (if any) is in pgpass, never here\n"
            f"database = {toml_string(public)}\n")
    if entry is not None:
        _write_private(passfile, entry, 0o600)
        ignore = os.path.join(beads_dir, ".gitignore")
        if os.path.exists(ignore):
            with open(ignore, encoding="utf-8") as fh:
                listed = PASS_FILE in fh.read().split()
            if not listed:
                with open(ignore, "a", encoding="utf-8") as fh:
                    fh.write(f"# the database password, never committed\n{PASS_FILE}\n")
    elif os.path.exists(passfile):
        os.remove(passfile)  # a password for a database this ledger no longer uses
    _write_private(config, text, 0o644)
    return public


# ------------------------------------------------------------- transactions


class _PgTx(Tx):
    """One open PostgreSQL transaction behind the portable :class:`Tx` interface."""

    __slots__ = ("_cur", "_store", "skip_locked_clause")

    def __init__(self, cur: Any, store: PostgresStore, skip_locked: bool) -> None:
        self._cur = cur
        self._store = store
        #: appended by ``Txn.claim_next`` to its candidate query; only claim
        #: transactions lock rows (a read-only snapshot may not, and writers
        #: already hold the global writer lock)
        self.skip_locked_clause = _SKIP_LOCKED if skip_locked else ""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; return the number of rows it changed."""
        try:
            self._cur.execute(translate_placeholders(sql), tuple(params))
        except self._store._pg.Error as exc:
            raise self._store._error(exc) from exc
        return max(int(self._cur.rowcount), 0)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for each parameter row (pipelined by psycopg)."""
        if not rows:
            return
        try:
            self._cur.executemany(translate_placeholders(sql), [tuple(r) for r in rows])
        except self._store._pg.Error as exc:
            raise self._store._error(exc) from exc

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a query and return all rows as tuples."""
        try:
            self._cur.execute(translate_placeholders(sql), tuple(params))
            if self._cur.description is None:
                return []
            return list(self._cur.fetchall())
        except self._store._pg.Error as exc:
            raise self._store._error(exc) from exc

    def insert_event_returning_seq(self, sql: str, params: Sequence[Any]) -> int:
        """Insert one event row and return its ``seq`` (via ``RETURNING``).

        The same statement queues a ``NOTIFY`` on :data:`EVENTS_CHANNEL`, which the
        server delivers to listeners when (and only if) this transaction commits;
        equal payloads collapse, so a transaction sends one however many events
        it writes.  Still one round trip.
        """
        if "RETURNING" not in sql.upper():
            sql = sql.rstrip().rstrip(";") + " RETURNING seq"
        sql = (f"WITH ev AS ({sql}) "
               f"SELECT seq, pg_notify('{EVENTS_CHANNEL}', '') IS NULL FROM ev")
        rows = self.query(sql, params)
        return int(rows[0][0]) if rows else 0


# ------------------------------------------------------------------- store

_STORES: weakref.WeakSet[PostgresStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # The child shares its parent's sockets.  Closing an inherited connection
    # normally would send the server a Terminate message and end the *parent's*
    # session, so the socket is first pointed at /dev/null, then closed.
    for store in list(_STORES):
        store._detach_inherited()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class PostgresStore(Store):
    """A ledger in one PostgreSQL database (``postgresql://user@host:port/db``).

    The password, if the URL has one, is used to connect and never appears in
    :attr:`url` or in any error message.
    """

    dialect = "postgresql"
    autoincrement_pk = "BIGSERIAL PRIMARY KEY"

    def ddl(self, statement: str) -> str:
        """Text columns with the ``"C"`` collation (see :func:`_ddl`)."""
        return _ddl(statement)

    def __init__(self, url: str, passfile: str | None = None) -> None:
        self._pg = _psycopg()
        self._conninfo = url
        #: the URL without password, for display
        self.url = safe_url(url)
        self._secret = self._password(url)
        #: a libpq password file (``.beads/pgpass``) for a URL without a password
        self._passfile = passfile
        self._lock_timeout, self._db_timeout = timeouts()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._conns: list[Any] = []
        self._pid = os.getpid()
        _STORES.add(self)
        # connect now, so that a dead server or a bad URL fails at open time
        # with one line rather than at the first query
        self._connection()
        self._ensure_schema()

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r})"

    # ------------------------------------------------------------ connections
    @staticmethod
    def _password(url: str) -> str | None:
        value = (_parse_conninfo(url) or {}).get("password")
        return str(value) if value else None

    def _connect(self) -> Any:
        pg = self._pg
        try:
            params = pg.conninfo.conninfo_to_dict(self._conninfo)
        except pg.Error as exc:
            raise StorageError(f"cannot connect to {self.url}: invalid connection URL: "
                               f"{_one_line(str(exc), self._secret)}") from None
        extra: dict[str, Any] = {}
        if "connect_timeout" not in params and "PGCONNECT_TIMEOUT" not in os.environ:
            extra["connect_timeout"] = max(2, min(_CONNECT_TIMEOUT, int(self._db_timeout + 0.99)))
        if "application_name" not in params:
            # who holds a lock is visible to the writers waiting for it
            extra["application_name"] = _application_name()
        if self._passfile and "passfile" not in params and not self._secret:
            extra["passfile"] = self._passfile
        # the timeouts travel in the startup packet: no extra round trip per process
        extra["options"] = " ".join(filter(None, [
            str(params.get("options") or ""),
            f"-c lock_timeout={int(self._lock_timeout * 1000)}",
            f"-c statement_timeout={int(self._db_timeout * 1000)}"]))
        try:
            # autocommit: we issue BEGIN/COMMIT ourselves, so every transaction
            # boundary (and the lock each one takes) is visible in this file
            conn = _connection_class(pg).connect(self._conninfo, autocommit=True, **extra)
        except pg.Error as exc:
            reason = _one_line(str(exc), self._secret).removeprefix("connection failed: ")
            if isinstance(exc, pg.errors.ConnectionTimeout):
                reason = (f"no answer within {extra.get('connect_timeout', 'connect_timeout')} s "
                          "(is the server stopped, overloaded or unreachable?)")
            raise StorageError(f"cannot connect to {self.url}: {reason}") from None
        # a frozen server never answers: give up a little after statement_timeout
        with contextlib.suppress(AttributeError):  # a psycopg without bounded waits
            conn.gt_timeout = self._db_timeout + _CLIENT_GRACE
        return conn

    def _connection(self) -> Any:
        """This thread's connection, (re)connecting when there is none or it broke."""
        pid = os.getpid()
        held = getattr(self._local, "conn", None)
        if held is not None:
            conn_pid, conn = held
            if conn_pid == pid and not conn.closed and not conn.broken:
                return conn
            if conn_pid == pid:
                self._forget(conn)
        conn = self._connect()
        with self._lock:
            self._conns.append(conn)
        self._local.conn = (pid, conn)
        return conn

    def _forget(self, conn: Any) -> None:
        with self._lock:
            if conn in self._conns:
                self._conns.remove(conn)
        with contextlib.suppress(self._pg.Error, OSError):  # already broken: fine
            conn.close()

    def _detach_inherited(self) -> None:
        """In a forked child: drop the parent's connections without touching them."""
        if os.getpid() == self._pid:
            return
        with self._lock:
            inherited, self._conns = self._conns, []
        self._pid = os.getpid()
        for conn in inherited:
            with contextlib.suppress(self._pg.Error, OSError):
                fd = conn.pgconn.socket
                devnull = os.open(os.devnull, os.O_RDWR)
                try:
                    os.dup2(devnull, fd)
                finally:
                    os.close(devnull)
                conn.close()  # its goodbye goes to /dev/null, not the parent's server

    # ----------------------------------------------------------------- errors
    def _error(self, exc: Exception) -> StorageError:
        """One clear line for a psycopg error (the password scrubbed)."""
        sqlstate = getattr(exc, "sqlstate", None)
        if isinstance(exc, _wait_timeout(self._pg)):
            return StorageError(
                f"{self.url}: the server did not answer within "
                f"{self._db_timeout + _CLIENT_GRACE:g} s (is it stopped or overloaded?); "
                "the transaction was abandoned (BD_DB_TIMEOUT sets the limit)")
        if sqlstate:
            primary = getattr(getattr(exc, "diag", None), "message_primary", None)
            reason = _one_line(primary or str(exc).splitlines()[0], self._secret)
        else:
            reason = _one_line(str(exc), self._secret)
        if sqlstate in _RETRYABLE:
            return StorageError(f"{self.url}: {reason}: the transaction was rolled back, "
                                "nothing was changed; run the command again")
        if sqlstate == _LOCK_NOT_AVAILABLE:
            return StorageError(f"{self.url}: gave up after waiting {self._lock_timeout:g} s for "
                                f"a lock held by another ledger writer{self._lock_holder()}; "
                                "nothing was changed (BD_LOCK_TIMEOUT sets the wait)")
        if sqlstate == _QUERY_CANCELED:
            return StorageError(f"{self.url}: a statement ran longer than {self._db_timeout:g} s "
                                "and was cancelled; nothing was changed (BD_DB_TIMEOUT sets "
                                "the limit)")
        if isinstance(exc, self._pg.OperationalError) and not sqlstate:
            return StorageError(f"lost connection to {self.url}: {reason}")
        return StorageError(f"{self.url}: {reason}")

    def _lock_holder(self) -> str:
        """`` (held by gastown: bd update (pid 7) on 10.0.0.2 for 31 s)``, or ``''``."""
        held = getattr(self._local, "conn", None)
        if held is None:
            return ""
        conn = held[1]
        try:
            if conn.closed or conn.broken or \
                    conn.info.transaction_status != self._pg.pq.TransactionStatus.IDLE:
                return ""
            row = conn.execute(
                "SELECT a.application_name, a.pid, host(a.client_addr), "
                "extract(epoch FROM now() - a.xact_start) FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' "
                "AND l.granted AND l.classid::bigint = %s AND l.objid::bigint = %s "
                "AND l.database = (SELECT oid FROM pg_database WHERE datname = "
                "current_database()) LIMIT 1",
                (WRITER_LOCK >> 32, WRITER_LOCK & 0xFFFFFFFF)).fetchone()
        except (self._pg.Error, OSError):
            return ""
        if row is None:
            return ""
        app, pid, addr, secs = row
        where = f" on {addr}" if addr else ""
        return (f" (held by {app or 'a client'}, server pid {pid}{where}, "
                f"for {float(secs or 0):.0f} s)")

    # ----------------------------------------------------------------- schema
    def _ensure_schema(self) -> None:
        conn = self._connection()
        try:
            # the common case (schema present) costs one round trip
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except self._pg.errors.UndefinedTable:
            row = None
        except self._pg.Error as exc:
            raise self._error(exc) from None
        version = int(row[0]) if row else 0
        if version == 0:
            self._create_schema()
        elif version > schema.SCHEMA_VERSION:
            raise StorageError(
                f"ledger {self.url} has schema version {version}; this gastown understands "
                f"up to {schema.SCHEMA_VERSION}: upgrade gastown")

    def _create_schema(self) -> None:
        """Create the tables once, even when several processes open a fresh database.

        The advisory lock makes concurrent creators queue; the one that comes
        second finds the version row (READ COMMITTED sees the first one's commit)
        and creates nothing.  Without it, two ``CREATE TABLE IF NOT EXISTS`` can
        still collide on the catalog's unique indexes.
        """
        conn = self._connection()
        cur = conn.cursor()
        try:
            cur.execute(f"BEGIN ISOLATION LEVEL READ COMMITTED; "
                        f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")
            cur.execute("CREATE TABLE IF NOT EXISTS meta "
                        "(key TEXT COLLATE \"C\" PRIMARY KEY, value TEXT NOT NULL)")
            cur.execute("SELECT value FROM meta WHERE key = 'schema_version'")
            if cur.fetchone() is None:
                for stmt in schema.statements(self.autoincrement_pk):
                    cur.execute(_ddl(stmt))
                cur.execute("INSERT INTO meta (key, value) VALUES ('schema_version', %s)",
                            (str(schema.SCHEMA_VERSION),))
            cur.execute("COMMIT")
        except self._pg.Error as exc:
            self._rollback(conn)
            raise self._error(exc) from None

    # ----------------------------------------------------------- transactions
    def _rollback(self, conn: Any) -> None:
        # a statement still in flight (the client gave up waiting for a frozen
        # server) leaves nothing to roll back on this connection: drop it
        if not conn.closed and not conn.broken and \
                conn.info.transaction_status != self._pg.pq.TransactionStatus.ACTIVE:
            try:
                conn.execute("ROLLBACK")
                return
            except (self._pg.Error, OSError):
                pass  # the connection is unusable: drop it, the server rolls back
        self._forget(conn)

    @contextmanager
    def _transaction(self, begin: str, *, skip_locked: bool = False) -> Iterator[Tx]:
        conn = self._connection()
        pg = self._pg
        if conn.info.transaction_status != pg.pq.TransactionStatus.IDLE:
            # as on SQLite: one connection per thread, one transaction at a time
            raise StorageError(f"{self.url}: a ledger transaction is already open in this "
                               "thread (nested transactions are not supported)")
        cur = conn.cursor()
        try:
            cur.execute(begin)
        except pg.Error as exc:
            self._rollback(conn)
            raise self._error(exc) from None
        try:
            yield _PgTx(cur, self, skip_locked)
        except BaseException:
            self._rollback(conn)
            raise
        try:
            cur.execute("COMMIT")
        except pg.Error as exc:
            broken = conn.broken or isinstance(exc, _wait_timeout(pg))
            self._rollback(conn)
            if broken:
                raise StorageError(f"lost connection to {self.url} while committing: "
                                   "the change may or may not have been saved") from None
            raise self._error(exc) from None

    def write(self) -> Any:
        """A serialised write transaction (global advisory lock, READ COMMITTED)."""
        return self._transaction(_BEGIN_WRITE)

    def durable(self) -> Any:
        """A write transaction whose commit is on disk before it returns.

        PostgreSQL commits are synchronous unless the server is configured
        otherwise, so this is :meth:`write` (SQLite needs ``synchronous=FULL``).
        """
        return self._transaction(_BEGIN_WRITE)

    def claim(self) -> Any:
        """A claim transaction: row-level compare-and-set, no global lock."""
        return self._transaction(_BEGIN_CLAIM, skip_locked=True)

    def read(self) -> Any:
        """A read-only snapshot (REPEATABLE READ READ ONLY).

        A read nested in a transaction already open in this thread joins it (it
        sees that transaction's own uncommitted changes), as on SQLite.
        """
        conn = self._connection()
        if conn.info.transaction_status != self._pg.pq.TransactionStatus.IDLE:
            return self._joined(conn)
        return self._transaction(_BEGIN_READ)

    @contextmanager
    def _joined(self, conn: Any) -> Iterator[Tx]:
        # no BEGIN/COMMIT of its own: the enclosing transaction decides both
        yield _PgTx(conn.cursor(), self, skip_locked=False)

    # -------------------------------------------------------------------- JSON
    def json_quote_sql(self, expr: str) -> str:
        """``to_json(text)`` quotes and escapes a string as JSON."""
        return f"to_json(CAST({expr} AS TEXT))::text"

    def json_array_agg_sql(self, text_expr: str) -> str:
        """Concatenate JSON texts in the order the (ordered) subquery yields them.

        An ungrouped aggregate over a sorted subquery consumes its rows in order
        (PostgreSQL does not flatten a subquery with ORDER BY/LIMIT).
        """
        return f"'[' || coalesce(string_agg({text_expr}, ','), '') || ']'"

    def json_labels_fragment_sql(self, id_expr: str) -> str:
        """``,"labels":[…]`` sorted, or ``''`` when the bead has none."""
        return (f"coalesce((SELECT ',\"labels\":[' || string_agg(to_json(l.label)::text, ',' "
                f"ORDER BY l.label) || ']' FROM labels l WHERE l.issue_id = {id_expr}), '')")

    def change_signal(self) -> Any:
        """A ``LISTEN`` on its own connection: wakes when a commit wrote events."""
        return _ListenSignal(self)

    def close(self) -> None:
        """Close every connection this store opened (in this process)."""
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(self._pg.Error, OSError):
                conn.close()
        self._local = threading.local()


# ------------------------------------------------------------------ LISTEN


class _ListenSignal(ChangeSignal):
    """Wakes when a ``NOTIFY`` on :data:`EVENTS_CHANNEL` arrives (its own connection).

    The connection is opened at once, so that a subscriber which reads the log
    after creating the signal cannot miss a commit in between.  A lost
    connection is opened again, and the wait then reports a change (events may
    have been committed while nobody listened).
    """

    def __init__(self, store: PostgresStore) -> None:
        super().__init__()
        self._store = store
        self._conn: Any = None
        self._listen()

    def _listen(self) -> None:
        conn = self._store._connect()
        try:
            conn.execute(f"LISTEN {EVENTS_CHANNEL}")
        except self._store._pg.Error as exc:
            with contextlib.suppress(self._store._pg.Error, OSError):
                conn.close()
            raise self._store._error(exc) from None
        self._conn = conn

    def _drain(self) -> bool:
        """Read what the socket holds; True when a notification was among it."""
        pgconn = self._conn.pgconn
        pgconn.consume_input()
        got = False
        while pgconn.notifies() is not None:
            got = True
        return got

    def wait(self, timeout: float) -> bool:
        """Block until a notification (True), ``timeout`` or :meth:`close` (False)."""
        deadline = time.monotonic() + timeout
        while not self._closed.is_set():
            if self._conn is None:
                try:
                    self._listen()
                    return True
                except StorageError:
                    self._closed.wait(min(1.0, max(0.0, deadline - time.monotonic())))
                    if time.monotonic() >= deadline:
                        return False
                    continue
            left = deadline - time.monotonic()
            try:
                ready, _, _ = select.select([self._conn.pgconn.socket], [], [],
                                            max(0.0, min(left, _LISTEN_SLICE_S)))
                if ready and self._drain():
                    return True
            except (self._store._pg.Error, OSError, ValueError):
                self._drop()
                continue
            if time.monotonic() >= deadline:
                return False
        self._drop()
        return False

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(self._store._pg.Error, OSError):
                conn.close()
