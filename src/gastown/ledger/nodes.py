"""Nodes of one town on a shared PostgreSQL ledger: heartbeats, the leader's lease, placement.

A town may run its controller on several machines (``gt up --node NAME``), all
on one PostgreSQL ledger.  What they agree on lives here, in the database:

* ``gt_nodes`` -- one row per node: its running instance, capacity and the
  server time of its last heartbeat.  A node is *alive* while its heartbeat
  is younger than the lease.  Every time is the **server's** clock (``now()``),
  so nodes on machines whose clocks disagree still agree on who is alive.
* ``gt_leases`` -- the leader's lease: holder, term (raised at every change of
  holder, a fencing number), expiry.  A node leads while it holds the session
  advisory lock :data:`LEADER_LOCK` on its own connection *and* the lease.  The
  lock makes the election exclusive (the server drops it the moment the
  holder's connection dies, even by SIGKILL); the lease bounds how long a
  leader that can no longer reach the server may still believe it leads.  A
  newcomer therefore takes over only once the lease has run out, and a lock
  still held by a session whose lease ran out a whole lease ago (a half-open
  connection) is ended with ``pg_terminate_backend``.
* placement -- which node runs each agent's sessions: kv ``gt.node.place.AGENT``,
  written with a ``node.placed`` event in one transaction (:func:`place`).

These tables are PostgreSQL-only and made on first use (:meth:`NodeBoard.ensure`);
a SQLite ledger has exactly one implicit node, and :func:`read_board` reports
nothing for it.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError, UsageError, ValidationError

if TYPE_CHECKING:
    from .core import Ledger

__all__ = ["LEADER_LOCK", "PLACE_PREFIX", "Lease", "NodeBoard", "read_board", "placements",
           "place", "supports_nodes"]

#: the session advisory lock of the leader ("gastown" + role byte 0x10)
LEADER_LOCK = 0x676173746F776E10
_SCHEMA_LOCK = 0x676173746F776E02  # the ledger's own schema lock (postgres.SCHEMA_LOCK)
PLACE_PREFIX = "gt.node.place."
_LEASE = "leader"

_TABLES = (
    "CREATE TABLE IF NOT EXISTS gt_nodes (name TEXT COLLATE \"C\" PRIMARY KEY, "
    "instance TEXT NOT NULL, capacity INTEGER NOT NULL, info TEXT NOT NULL DEFAULT '{}', "
    "started_at TIMESTAMPTZ NOT NULL, heartbeat TIMESTAMPTZ NOT NULL, "
    "stopped BOOLEAN NOT NULL DEFAULT FALSE)",
    "CREATE TABLE IF NOT EXISTS gt_leases (name TEXT COLLATE \"C\" PRIMARY KEY, "
    "holder TEXT NOT NULL, instance TEXT NOT NULL, term BIGINT NOT NULL, "
    "acquired_at TIMESTAMPTZ NOT NULL, expires_at TIMESTAMPTZ NOT NULL, backend_pid INTEGER)",
)


def supports_nodes(led: Ledger) -> bool:
    """True when the ledger is on PostgreSQL (the only backend nodes can share)."""
    return getattr(led.store, "dialect", "") == "postgresql"


@dataclass
class Lease:
    """The leader's lease as the server sees it."""

    holder: str
    instance: str
    term: int
    expires_in: float  # seconds from the server's now (negative: expired)


class NodeBoard:
    """One node's own connection to the shared tables (the leader lock lives on it).

    Every method answers from the server's clock.  A lost connection raises
    :class:`StorageError`; the next call connects again (and the leader lock,
    which died with the old connection, has to be won again).
    """

    def __init__(self, led: Ledger) -> None:
        if not supports_nodes(led):
            raise UsageError("nodes need a PostgreSQL ledger (this town's ledger is "
                             f"{getattr(led.store, 'dialect', '?')}): several nodes can only "
                             "share a server; run gt up without --node")
        self._store: Any = led.store
        self._conn: Any = None
        self._locked = False

    # ------------------------------------------------------------ plumbing
    def _c(self) -> Any:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._drop()
            self._conn = self._store._connect()  # noqa: SLF001 - same package
        return self._conn

    def _drop(self) -> None:
        conn, self._conn, self._locked = self._conn, None, False
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _q(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """One statement, autocommitted; its rows."""
        pg = self._store._pg  # noqa: SLF001
        conn = self._c()
        try:
            cur = conn.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []
        except pg.Error as exc:
            err = self._store._error(exc)  # noqa: SLF001
            if conn.broken or conn.closed:
                self._drop()
            raise err from None

    def _in_tx(self, *steps: tuple[str, tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Several statements in one transaction; the rows of the last."""
        pg = self._store._pg  # noqa: SLF001
        conn = self._c()
        rows: list[tuple[Any, ...]] = []
        try:
            with conn.transaction():
                for sql, params in steps:
                    cur = conn.execute(sql, params)
                    rows = list(cur.fetchall()) if cur.description else []
        except pg.Error as exc:
            err = self._store._error(exc)  # noqa: SLF001
            if conn.broken or conn.closed:
                self._drop()
            raise err from None
        return rows

    def close(self) -> None:
        """Close the connection (the server releases the leader lock with it)."""
        self._drop()

    def ensure(self) -> None:
        """Create the node tables once (under the ledger's schema lock)."""
        conn = self._c()
        pg = self._store._pg  # noqa: SLF001
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                for stmt in _TABLES:
                    conn.execute(stmt)
        except pg.Error as exc:
            raise self._store._error(exc) from None  # noqa: SLF001

    # --------------------------------------------------------------- nodes
    def register(self, name: str, instance: str, capacity: int, info: dict[str, Any],
                 lease: float) -> None:
        """Claim the node name for this instance; ConflictError when a live one has it."""
        rows = self._q(
            "INSERT INTO gt_nodes (name, instance, capacity, info, started_at, heartbeat) "
            "VALUES (%s, %s, %s, %s, now(), now()) ON CONFLICT (name) DO UPDATE SET "
            "instance = EXCLUDED.instance, capacity = EXCLUDED.capacity, info = EXCLUDED.info, "
            "started_at = now(), heartbeat = now(), stopped = FALSE "
            "WHERE gt_nodes.instance = EXCLUDED.instance OR gt_nodes.stopped "
            "OR gt_nodes.heartbeat < now() - make_interval(secs => %s) RETURNING name",
            (name, instance, capacity, json.dumps(info), lease))
        if not rows:
            other = self._q("SELECT info, extract(epoch FROM now() - heartbeat) FROM gt_nodes "
                            "WHERE name = %s", (name,))
            who = json.loads(other[0][0]) if other else {}
            age = float(other[0][1]) if other else 0.0
            raise ConflictError(f"node {name!r} is already up (pid {who.get('pid', '?')} on "
                                f"{who.get('host', '?')}, heartbeat {age:.1f}s ago); "
                                "pick another --node name or stop that one")

    def beat(self, name: str, instance: str) -> bool:
        """Renew the heartbeat; False when another instance took the name over."""
        return bool(self._q("UPDATE gt_nodes SET heartbeat = now() WHERE name = %s "
                            "AND instance = %s RETURNING 1", (name, instance)))

    def leave(self, name: str, instance: str) -> None:
        """Mark the node stopped (a clean ``gt down``) and resign any lease it holds."""
        self._q("UPDATE gt_nodes SET stopped = TRUE WHERE name = %s AND instance = %s",
                (name, instance))
        self.resign(instance)

    # -------------------------------------------------------------- leader
    def try_lead(self, name: str, instance: str, lease: float) -> Lease | None:
        """Become (or stay) the leader; the lease, or None while another holds it."""
        if not self._locked:
            got = self._q("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,))
            if not (got and got[0][0]):
                self._end_stuck_holder(lease)
                return None
            self._locked = True
        rows = self._in_tx(
            ("INSERT INTO gt_leases (name, holder, instance, term, acquired_at, expires_at) "
             "VALUES (%s, '', '', 0, now(), now()) ON CONFLICT (name) DO NOTHING", (_LEASE,)),
            ("UPDATE gt_leases SET holder = %s, instance = %s, backend_pid = pg_backend_pid(), "
             "term = CASE WHEN instance = %s AND expires_at > now() THEN term ELSE term + 1 END, "
             "acquired_at = CASE WHEN instance = %s AND expires_at > now() THEN acquired_at "
             "ELSE now() END, expires_at = now() + make_interval(secs => %s) "
             "WHERE name = %s AND (instance = %s OR expires_at <= now()) "
             "RETURNING holder, instance, term, extract(epoch FROM expires_at - now())",
             (name, instance, instance, instance, lease, _LEASE, instance)))
        if not rows:
            return None  # the last leader's lease has not run out yet: wait for it
        holder, inst, term, left = rows[0]
        return Lease(str(holder), str(inst), int(term), float(left))

    def renew(self, instance: str, term: int, lease: float) -> Lease | None:
        """Extend our lease; None when it is not ours any more (step down)."""
        if not self._locked:
            return None
        rows = self._q(
            "UPDATE gt_leases SET expires_at = now() + make_interval(secs => %s) "
            "WHERE name = %s AND instance = %s AND term = %s "
            "RETURNING holder, instance, term, extract(epoch FROM expires_at - now())",
            (lease, _LEASE, instance, term))
        if not rows:
            return None
        holder, inst, t, left = rows[0]
        return Lease(str(holder), str(inst), int(t), float(left))

    def resign(self, instance: str) -> None:
        """Give the lease and the lock back at once (a clean stop: no waiting for expiry)."""
        self._q("UPDATE gt_leases SET expires_at = now() WHERE name = %s AND instance = %s",
                (_LEASE, instance))
        if self._locked:
            self._q("SELECT pg_advisory_unlock(%s)", (LEADER_LOCK,))
            self._locked = False

    def _end_stuck_holder(self, lease: float) -> None:
        """The lock's holder let its lease run out a whole lease ago: end its session.

        A leader whose connection is half-open (its machine vanished) keeps the
        lock until TCP gives up, which can take hours; the lease says it stopped
        leading long ago, so its server session is ended and the lock freed.
        """
        self._q(
            "SELECT pg_terminate_backend(l.pid) FROM gt_leases g JOIN pg_locks l "
            "ON l.pid = g.backend_pid AND l.locktype = 'advisory' AND l.granted "
            "AND l.classid::bigint = %s AND l.objid::bigint = %s "
            "WHERE g.name = %s AND g.expires_at < now() - make_interval(secs => %s)",
            (LEADER_LOCK >> 32, LEADER_LOCK & 0xFFFFFFFF, _LEASE, lease))


# ------------------------------------------------------------------- reads
def read_board(led: Ledger, lease: float) -> dict[str, Any]:
    """Nodes (alive or not, heartbeat age) and the leader's lease, from any ledger.

    ``{"nodes": [...], "leader": {...} | None}``; empty on SQLite or before any
    node ever started.
    """
    out: dict[str, Any] = {"nodes": [], "leader": None}
    if not supports_nodes(led):
        return out
    with led.store.read() as tx:
        if tx.scalar("SELECT to_regclass('gt_leases') IS NOT NULL") is not True:
            return out
        for name, capacity, info, age, up_s, stopped in tx.query(
                "SELECT name, capacity, info, extract(epoch FROM now() - heartbeat), "
                "extract(epoch FROM now() - started_at), stopped FROM gt_nodes ORDER BY name"):
            out["nodes"].append({
                "name": name, "capacity": int(capacity), "info": json.loads(info or "{}"),
                "heartbeat_age_s": round(float(age), 2), "up_s": round(float(up_s), 1),
                "alive": not stopped and float(age) < lease,
                "state": "stopped" if stopped else ("alive" if float(age) < lease else "dead")})
        row = tx.one("SELECT holder, term, extract(epoch FROM expires_at - now()) "
                     "FROM gt_leases WHERE name = ? AND holder <> ''", (_LEASE,))
        if row is not None:
            out["leader"] = {"node": row[0], "term": int(row[1]),
                             "expires_in_s": round(float(row[2]), 2),
                             "valid": float(row[2]) > 0}
    return out


def placements(led: Ledger) -> dict[str, dict[str, Any]]:
    """``agent -> {"node", "since", "why"}`` as the leader last placed them."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in led.kv_scan(PLACE_PREFIX):
        try:
            record = json.loads(value)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("node"), str):
            out[key[len(PLACE_PREFIX):]] = record
    return out


def place(led: Ledger, agent: str, node: str, why: str, previous: str | None,
          actor: str | None = None) -> None:
    """Record that ``agent``'s sessions run on ``node`` (one transaction with its event)."""
    if not node:
        raise ValidationError(f"cannot place {agent!r}: the node name is empty")
    record = {"node": node, "since": time.time(), "why": why}
    with led.transaction(actor) as t:
        t.kv_put(PLACE_PREFIX + agent, json.dumps(record))
        t.emit("node.placed", None, {"agent": agent, "node": node, "from": previous,
                                     "why": why})
