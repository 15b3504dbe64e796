"""Named queries the layers above the ledger ask, so no SQL lives outside it.

:class:`Reads` answers questions inside one open backend transaction; a
read-only snapshot (:meth:`gastown.ledger.Ledger.snapshot`) hands out a bare
``Reads``, and every :class:`~.ops.Txn` is one too.  :class:`Writes` adds the
few bookkeeping writes the town and the controller make without an event.
Every statement is portable: it runs unchanged on SQLite and PostgreSQL.
"""

from __future__ import annotations

from .ready import BLOCKING_DEP_TYPES, DONE_STATUSES, REMOTE_CLOSED_PREFIX
from .rows import load_json

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only: the hot path skips it
    from collections.abc import Iterable, Sequence
    from typing import Any

    from .store import Tx

__all__ = ["Reads", "Writes", "type_filter_sql"]

#: ids per ``IN (…)`` list: well under every backend's limit on parameters
_CHUNK = 400


def type_filter_sql(types: Iterable[str], column: str = "type") -> tuple[str, list[Any]]:
    """SQL condition (with its parameters) matching an event type against ``types``.

    A type ending in ``*`` matches by prefix, any other exactly, with case kept
    (as :func:`.events.matches`); no other character is a wildcard.  Empty
    ``types`` give ``("", [])``: no condition.
    """
    parts: list[str] = []
    params: list[Any] = []
    for t in types:
        if t.endswith("*"):
            parts.append(f"substr({column}, 1, ?) = ?")
            params += [len(t) - 1, t[:-1]]
        else:
            parts.append(f"{column} = ?")
            params.append(t)
    return (f"({' OR '.join(parts)})" if parts else ""), params


def _marks(n: int) -> str:
    return ", ".join("?" * n)


class Reads:
    """Read-only questions asked inside one open transaction."""

    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    # ------------------------------------------------------------------ edges
    def edges_from(self, bead_ids: Sequence[str], types: Iterable[str] | None = None
                   ) -> list[tuple[str, str, str]]:
        """``(issue_id, depends_on_id, type)`` of every edge leaving one of ``bead_ids``.

        ``types`` keeps only those dependency types.  Sorted by source, target, type.
        """
        kinds = list(types) if types is not None else None
        if kinds == []:
            return []
        where = f" AND type IN ({_marks(len(kinds))})" if kinds else ""
        out: list[tuple[str, str, str]] = []
        ids = list(bead_ids)
        for start in range(0, len(ids), _CHUNK):
            part = ids[start:start + _CHUNK]
            out.extend((str(a), str(b), str(c)) for a, b, c in self.tx.query(
                "SELECT issue_id, depends_on_id, type FROM dependencies "
                f"WHERE issue_id IN ({_marks(len(part))}){where}", [*part, *(kinds or ())]))
        out.sort()
        return out

    def open_blockers(self, bead_id: str) -> list[str]:
        """Targets of ``bead_id``'s edges that block it right now."""
        rows = self.tx.query(
            "SELECT d.depends_on_id, d.type, t.status FROM dependencies d "
            "LEFT JOIN issues t ON t.id = d.depends_on_id WHERE d.issue_id = ? AND d.type IN "
            f"({', '.join(repr(t) for t in BLOCKING_DEP_TYPES)})", (bead_id,))
        out = [r[0] for r in rows if r[2] is not None and r[2] not in DONE_STATUSES]
        for target, typ, status in rows:
            if status is not None and typ == "waits-for" and target not in out:
                if self.tx.one("SELECT 1 FROM dependencies c JOIN issues k ON k.id = c.issue_id "
                               "WHERE c.depends_on_id = ? AND c.type = 'parent-child' "
                               "AND k.status <> 'closed'", (target,)):
                    out.append(target)
        # other towns' beads (no row here) hold until the last sync saw them closed
        remote = [r[0] for r in rows if r[2] is None and str(r[0]).startswith("gt://")]
        if remote:
            closed = {str(r[0]) for r in self.tx.query(
                f"SELECT key FROM kv WHERE key IN ({_marks(len(remote))})",
                [REMOTE_CLOSED_PREFIX + t for t in remote])}
            out += [t for t in remote if REMOTE_CLOSED_PREFIX + t not in closed]
        return sorted(out)

    def open_blockers_of(self, bead_ids: Sequence[str]) -> dict[str, list[str]]:
        """``id -> targets`` of the blocking edges (blocks, conditional-blocks, waits-for)
        of each of ``bead_ids`` whose target is not done yet, targets sorted."""
        kinds, done = list(BLOCKING_DEP_TYPES), list(DONE_STATUSES)
        out: dict[str, list[str]] = {}
        ids = list(bead_ids)
        for start in range(0, len(ids), _CHUNK):
            part = ids[start:start + _CHUNK]
            for src, dst in self.tx.query(
                    "SELECT d.issue_id, d.depends_on_id FROM dependencies d "
                    "JOIN issues t ON t.id = d.depends_on_id "
                    f"WHERE d.type IN ({_marks(len(kinds))}) "
                    f"AND t.status NOT IN ({_marks(len(done))}) "
                    f"AND d.issue_id IN ({_marks(len(part))}) "
                    "ORDER BY d.issue_id, d.depends_on_id", [*kinds, *done, *part]):
                out.setdefault(str(src), []).append(str(dst))
        return out

    def tracked_beads(self, tracker_id: str) -> list[dict[str, Any]]:
        """The beads ``tracker_id`` has ``tracks`` edges to, by id: id, title, status,
        assignee, issue_type, held, priority."""
        rows = self.tx.query(
            "SELECT i.id, i.title, i.status, i.assignee, i.issue_type, i.held, i.priority "
            "FROM dependencies d JOIN issues i ON i.id = d.depends_on_id "
            "WHERE d.issue_id = ? AND d.type = 'tracks' ORDER BY i.id", (tracker_id,))
        return [{"id": r[0], "title": r[1], "status": r[2], "assignee": r[3],
                 "issue_type": r[4], "held": bool(int(r[5] or 0)), "priority": int(r[6])}
                for r in rows]

    # ------------------------------------------------------------------ beads
    def hooked_ids(self, assignee: str) -> list[str]:
        """Ids of the beads on ``assignee``'s hook (status ``hooked``), sorted."""
        return [str(r[0]) for r in self.tx.query(
            "SELECT id FROM issues WHERE status = 'hooked' AND assignee = ? ORDER BY id",
            (assignee,))]

    def hooked_work(self) -> list[tuple[str, str]]:
        """``(assignee, id)`` of every hooked bead, oldest first."""
        return [(str(a), str(b)) for a, b in self.tx.query(
            "SELECT assignee, id FROM issues WHERE status = 'hooked' ORDER BY created_at, id")]

    def is_retired(self, bead_id: str) -> bool:
        """True when ``bead_id`` belonged to a bead that was deleted (its id is retired)."""
        return self.tx.one("SELECT 1 FROM retired_ids WHERE id = ?", (bead_id,)) is not None

    # ----------------------------------------------------------------- events
    def last_payload(self, bead_id: str, type_: str) -> dict[str, Any] | None:
        """The payload of ``bead_id``'s newest event of ``type_`` (None: no such event,
        or one without a payload object)."""
        row = self.tx.one("SELECT payload FROM events WHERE bead_id = ? AND type = ? "
                          "ORDER BY seq DESC LIMIT 1", (bead_id, type_))
        value = load_json(row[0]) if row and row[0] else None
        return value if isinstance(value, dict) else None

    def first_actor(self, type_: str) -> str | None:
        """The actor of the oldest event of ``type_`` (e.g. who ran ``town.init``), or None."""
        value = self.tx.scalar(
            "SELECT actor FROM events WHERE type = ? ORDER BY seq LIMIT 1", (type_,))
        return str(value) if value else None

    def nth_newest_seq(self, types: Sequence[str], n: int) -> int | None:
        """The seq of the ``n``-th newest event whose type is one of ``types`` (a trailing
        ``*`` matches by prefix: :func:`type_filter_sql`), or None when there are fewer."""
        where, params = type_filter_sql(types)
        if n <= 0 or not where:
            return None
        value = self.tx.scalar(
            f"SELECT seq FROM events WHERE {where} ORDER BY seq DESC LIMIT 1 OFFSET ?",
            [*params, int(n) - 1])
        return int(value) if value is not None else None

    # --------------------------------------------------------------------- kv
    def kv_with_prefix(self, prefix: str) -> list[tuple[str, str]]:
        """``(key, value)`` of every kv entry whose key starts with ``prefix``, by key.

        An exact prefix (no wildcards, case kept) on every backend.
        """
        return [(str(k), str(v or "")) for k, v in self.tx.query(
            "SELECT key, value FROM kv WHERE substr(key, 1, ?) = ? ORDER BY key",
            (len(prefix), prefix))]


class Writes(Reads):
    """Bookkeeping writes without an event, inside one write transaction."""

    def kv_put(self, key: str, value: str) -> None:
        """Set ``key`` in the kv table with no ``kv.set`` event (a controller's cursor or
        intent: an event there would be one more thing to follow)."""
        self.tx.execute("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) "
                        "DO UPDATE SET value = excluded.value", (key, value))

    def kv_drop(self, *keys: str) -> int:
        """Remove kv ``keys`` with no ``kv.cleared`` event; returns how many existed."""
        return sum(self.tx.execute("DELETE FROM kv WHERE key = ?", (key,)) for key in keys)

    def unretire(self, bead_ids: Iterable[str]) -> None:
        """Let these deleted ids be taken again (a proto cooked anew reuses its names)."""
        for bead_id in bead_ids:
            self.tx.execute("DELETE FROM retired_ids WHERE id = ?", (bead_id,))
