"""The :class:`~.core.Ledger`'s reads: beads, lists, the ready and blocked sets, counts.

Each method reads in one snapshot of the store (:meth:`Store.read`); none writes.
The dependency graph's reads are in :mod:`.graph`.
"""

from __future__ import annotations

import builtins

from ..errors import ConflictError, NotFoundError
from . import ready as _ready
from . import timefmt
from .base import LedgerBase
from .model import Bead
from .ops import Txn
from .queries import type_filter_sql
from .query import Filter, json_object_sql, order_sql, ready_sql, where_sql
from .rows import SELECT_COLUMNS, bead_from_row, load_json

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only: the hot path skips it
    from collections.abc import Iterable
    from typing import Any

__all__ = ["LedgerReads"]

#: ids longer than this are never looked up by prefix (SQLite caps LIKE patterns)
_MAX_PARTIAL = 1000


class LedgerReads(LedgerBase):
    """Reads: one bead, lists and searches, ready/blocked, counts, kv, config, events."""

    def get(self, bead_id: str) -> Bead:
        """One bead (labels included) or :class:`NotFoundError`."""
        with self.store.read() as tx:
            return Txn(tx, self.actor, "").get(bead_id)

    def exists(self, bead_id: str) -> bool:
        """True when the bead exists."""
        with self.store.read() as tx:
            return tx.one("SELECT 1 FROM issues WHERE id = ?", (bead_id,)) is not None

    def resolve_id(self, partial: str) -> str:
        """A full id from a full id, an id without prefix, or a unique id prefix.

        An empty id is no id (never the prefix of every id: ``bd close "$ID"`` with
        ``ID`` unset must not close the only bead there is).
        """
        if not partial.strip():
            raise NotFoundError(f"no issue found matching {partial!r}: an id cannot be empty")
        with self.store.read() as tx:
            if tx.one("SELECT 1 FROM issues WHERE id = ?", (partial,)):
                return partial
            if "-" not in partial:
                full = f"{self._prefix_in(tx)}-{partial}"
                if tx.one("SELECT 1 FROM issues WHERE id = ?", (full,)):
                    return full
            if len(partial) > _MAX_PARTIAL:  # no id is that long: no prefix search
                raise NotFoundError(f"no issue found matching {partial[:40]!r}… "
                                    f"({len(partial)} characters)")
            # escape LIKE's wildcards: '_' is common in real prefixes (beads_rust-…)
            like = (partial.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                    + "%")
            rows = tx.query("SELECT id FROM issues WHERE id LIKE ? ESCAPE '\\' "
                            "ORDER BY id LIMIT 6", (like,))
            if len(rows) == 1:
                return str(rows[0][0])
            if len(rows) > 1:
                shown = ", ".join(r[0] for r in rows[:5])
                raise ConflictError(f"ambiguous id {partial!r}: matches {shown}")
        raise NotFoundError(f"no issue found matching {partial!r}")

    def show(self, bead_id: str) -> Bead:
        """A bead with its ``dependencies``, ``dependents`` and ``comments``."""
        with self.store.read() as tx:
            bead = Txn(tx, self.actor, "").get(bead_id)
            bead["dependencies"] = self._edges(tx, "issue_id", bead_id)
            bead["dependents"] = self._edges(tx, "depends_on_id", bead_id)
            bead["comments"] = self._comments(tx, bead_id)
            return bead

    def _edges(self, tx: Any, column: str, bead_id: str) -> builtins.list[dict[str, Any]]:
        other = "depends_on_id" if column == "issue_id" else "issue_id"
        rows = tx.query(
            f"SELECT d.issue_id, d.depends_on_id, d.type, d.created_at, d.created_by, d.metadata, "
            f"t.title, t.status, t.priority, t.issue_type, t.updated_at FROM dependencies d "
            f"LEFT JOIN issues t ON t.id = d.{other} WHERE d.{column} = ? "
            f"ORDER BY d.{other}", (bead_id,))
        out = []
        for r in rows:
            edge: dict[str, Any] = {"issue_id": r[0], "depends_on_id": r[1], "type": r[2],
                                    "created_at": r[3]}
            if r[4]:
                edge["created_by"] = r[4]
            if r[5]:
                edge["metadata"] = load_json(r[5])
            if r[6] is not None:
                # the linked issue's fields too, as upstream's show prints them
                edge.update(id=r[0] if column == "depends_on_id" else r[1], title=r[6],
                            status=r[7], priority=r[8], issue_type=r[9], updated_at=r[10],
                            dependency_type=r[2])
            out.append(edge)
        return out

    def _comments(self, tx: Any, bead_id: str) -> builtins.list[dict[str, Any]]:
        rows = tx.query("SELECT id, issue_id, author, text, created_at FROM comments "
                        "WHERE issue_id = ? ORDER BY created_at, seq", (bead_id,))
        return [{"id": int(r[0]) if str(r[0]).isdigit() else r[0], "issue_id": r[1],
                 "author": r[2], "text": r[3], "created_at": r[4]} for r in rows]

    def comments(self, bead_id: str) -> builtins.list[dict[str, Any]]:
        """The comments on a bead, oldest first."""
        with self.store.read() as tx:
            Txn(tx, self.actor, "").status_of(bead_id)
            return self._comments(tx, bead_id)

    def list(self, f: Filter | None = None, *, sort: str | None = None, reverse: bool = False,
             limit: int = 0) -> builtins.list[Bead]:
        """Beads matching a filter (all when ``f`` is None), sorted; ``limit`` 0 = all."""
        extra, params = where_sql(f or Filter())
        sql = (f"SELECT {SELECT_COLUMNS} FROM issues WHERE 1 = 1{extra} "
               f"ORDER BY {order_sql(sort, reverse)}")
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self.store.read() as tx:
            return self._beads(tx, tx.query(sql, params))

    def _beads(self, tx: Any, rows: builtins.list[tuple[Any, ...]]) -> builtins.list[Bead]:
        if not rows:
            return []
        labels: dict[str, list[str]] = {}
        ids_ = [r[0] for r in rows]
        for start in range(0, len(ids_), 500):
            part = ids_[start:start + 500]
            for issue_id, label in tx.query(
                    f"SELECT issue_id, label FROM labels WHERE issue_id IN "
                    f"({', '.join('?' * len(part))}) ORDER BY label", part):
                labels.setdefault(issue_id, []).append(label)
        return [bead_from_row(r, labels.get(r[0])) for r in rows]

    def ready(self, f: Filter | None = None, limit: int = 0) -> builtins.list[Bead]:
        """The ready beads (DESIGN §3.4) in ready order; ``limit`` 0 = all."""
        f = f or Filter()
        extra, params = where_sql(f)
        from_sql = ready_sql(extra, bool(f.mol), self.store.ready_index_hint)
        sql = f"SELECT {SELECT_COLUMNS} {from_sql}"
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self.store.read() as tx:
            return self._beads(tx, tx.query(sql, [timefmt.now(), *params]))

    def ready_json(self, f: Filter | None = None, limit: int = 0) -> str:
        """The ready set as one JSON array text, built inside the database (hot path)."""
        f = f or Filter()
        extra, params = where_sql(f)
        inner = (f"SELECT {json_object_sql(self.store)} AS o "
                 f"{ready_sql(extra, bool(f.mol), self.store.ready_index_hint)}")
        if limit:
            inner += f" LIMIT {int(limit)}"
        sql = f"SELECT {self.store.json_array_agg_sql('o')} FROM ({inner}) q"
        with self.store.read() as tx:
            return str(tx.scalar(sql, [timefmt.now(), *params]))

    def ready_count(self, f: Filter | None = None) -> int:
        """How many beads are ready (matching ``f``): the total a paged ``ready`` reports."""
        f = f or Filter()
        extra, params = where_sql(f)
        from_sql = ready_sql(extra, bool(f.mol), self.store.ready_index_hint)
        with self.store.read() as tx:
            return int(tx.scalar(f"SELECT COUNT(*) FROM (SELECT 1 AS one {from_sql}) q",
                                 [timefmt.now(), *params]) or 0)

    def blocked(self, f: Filter | None = None, limit: int = 0) -> builtins.list[Bead]:
        """Open beads that are not ready only because they are held, each with ``blocked_by``.

        ``blocked_by`` lists the ids of the blocking targets; a bead held by an
        ancestor, its own status or a deferral says so in ``held_by``.  ``limit``
        (0 = all) keeps the first beads in ready order, and only those pay for
        their ``blocked_by``; :meth:`blocked_count` is the whole number.
        """
        extra, params = where_sql(f or Filter())
        sql = (f"SELECT {SELECT_COLUMNS} FROM issues WHERE {_ready.BLOCKED_WHERE}"
               f"{extra} ORDER BY {_ready.READY_ORDER}")
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self.store.read() as tx:
            rows = tx.query(sql, [timefmt.now(), *params])
            beads = self._beads(tx, rows)
            t = Txn(tx, self.actor, "")
            for bead in beads:
                bead["blocked_by"] = t.open_blockers(bead["id"])
                bead["blocked_by_count"] = len(bead["blocked_by"])
                reasons = []
                if bead["status"] in _ready.HOLDING_STATUSES:
                    reasons.append(f"status {bead['status']}")
                row = tx.one("SELECT self_held, held, hold_until FROM issues WHERE id = ?",
                             (bead["id"],))
                if row and int(row[1]) and not int(row[0]):
                    reasons.append("held by an ancestor")
                if row and row[2] and row[2] > timefmt.now():
                    reasons.append(f"deferred until {row[2]}")
                if reasons:
                    bead["held_by"] = reasons
            return beads

    def blocked_count(self, f: Filter | None = None) -> int:
        """How many beads :meth:`blocked` would list (one COUNT, no ``blocked_by``)."""
        extra, params = where_sql(f or Filter())
        with self.store.read() as tx:
            return int(tx.scalar(f"SELECT COUNT(*) FROM issues WHERE {_ready.BLOCKED_WHERE}"
                                 f"{extra}", [timefmt.now(), *params]) or 0)

    def count(self, f: Filter | None = None) -> int:
        """How many beads match a filter."""
        extra, params = where_sql(f or Filter())
        with self.store.read() as tx:
            return int(tx.scalar(f"SELECT COUNT(*) FROM issues WHERE 1 = 1{extra}", params) or 0)

    def search(self, text: str, f: Filter | None = None, limit: int = 50) -> builtins.list[Bead]:
        """Beads whose id, title or text fields contain ``text`` (case-insensitive)."""
        f = f or Filter()
        f.text = text
        return self.list(f, sort="updated", limit=limit)

    def labels_all(self) -> builtins.list[tuple[str, int]]:
        """Every label with the number of beads carrying it."""
        with self.store.read() as tx:
            return [(r[0], int(r[1])) for r in tx.query(
                "SELECT label, COUNT(*) FROM labels GROUP BY label ORDER BY label")]

    def kv_get(self, key: str) -> str | None:
        """A value from the key/value store, or None."""
        with self.store.read() as tx:
            v = tx.scalar("SELECT value FROM kv WHERE key = ?", (key,))
            return None if v is None else str(v)

    def kv_list(self) -> builtins.list[tuple[str, str]]:
        """All key/value pairs, sorted by key."""
        with self.store.read() as tx:
            return [(r[0], r[1]) for r in tx.query("SELECT key, value FROM kv ORDER BY key")]

    def kv_scan(self, prefix: str) -> builtins.list[tuple[str, str]]:
        """Key/value pairs whose key starts with ``prefix``, sorted by key
        (:meth:`.queries.Reads.kv_with_prefix` in a snapshot of its own)."""
        with self.snapshot() as r:
            return r.kv_with_prefix(prefix)

    def config(self) -> dict[str, str]:
        """The ledger's configuration table."""
        with self.store.read() as tx:
            return {r[0]: r[1] for r in tx.query("SELECT key, value FROM config ORDER BY key")}

    def stats(self) -> dict[str, Any]:
        """Counts by status and type, ready and blocked counts, and lead time."""
        now = timefmt.now()
        with self.store.read() as tx:
            by_status = dict(tx.query(
                "SELECT status, COUNT(*) FROM issues WHERE ephemeral = 0 AND is_template = 0 "
                "GROUP BY status"))
            by_type = dict(tx.query(
                "SELECT issue_type, COUNT(*) FROM issues WHERE ephemeral = 0 AND is_template = 0 "
                "GROUP BY issue_type"))
            ready = tx.scalar(f"SELECT COUNT(*) FROM issues WHERE {_ready.READY_WHERE}", (now,))
            blocked = tx.scalar(f"SELECT COUNT(*) FROM issues WHERE {_ready.BLOCKED_WHERE}",
                                (now,))
            wisps = tx.scalar("SELECT COUNT(*) FROM issues WHERE ephemeral = 1")
            templates = tx.scalar("SELECT COUNT(*) FROM issues WHERE is_template = 1")
            events = tx.scalar("SELECT COUNT(*) FROM events")
        total = sum(int(v) for v in by_status.values())
        return {
            "total_issues": total,
            "open_issues": int(by_status.get("open", 0)),
            "in_progress_issues": int(by_status.get("in_progress", 0)),
            "closed_issues": int(by_status.get("closed", 0)),
            "blocked_issues": int(blocked or 0),
            "ready_issues": int(ready or 0),
            "by_status": {k: int(v) for k, v in sorted(by_status.items())},
            "by_type": {k: int(v) for k, v in sorted(by_type.items())},
            "wisps": int(wisps or 0),
            "templates": int(templates or 0),
            "events": int(events or 0),
        }

    def events(self, since_seq: int = 0, limit: int = 0, bead_id: str | None = None,
               types: Iterable[str] = ()) -> builtins.list[dict[str, Any]]:
        """Events after ``since_seq`` in order (``limit`` 0 = all)."""
        sql = "SELECT seq, ts, type, actor, bead_id, payload FROM events WHERE seq > ?"
        params: builtins.list[Any] = [since_seq]
        if bead_id:
            sql += " AND bead_id = ?"
            params.append(bead_id)
        where, type_params = type_filter_sql(types)
        if where:
            sql += " AND " + where
            params += type_params
        sql += " ORDER BY seq"
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self.store.read() as tx:
            rows = tx.query(sql, params)
        return [{"seq": int(r[0]), "ts": r[1], "type": r[2], "actor": r[3], "bead_id": r[4],
                 "payload": load_json(r[5]) or {}} for r in rows]

    def last_event_seq(self) -> int:
        """The newest event's ``seq`` (0 when there is none)."""
        with self.store.read() as tx:
            return int(tx.scalar("SELECT MAX(seq) FROM events") or 0)
