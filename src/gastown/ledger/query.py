"""Building the read queries: filters for ``list``/``ready``/``blocked``/``search``.

A :class:`Filter` becomes a WHERE fragment with ``?`` parameters; the same
fragment drives both the Python-object path and the JSON-in-SQL hot path.
"""

from __future__ import annotations

from ..errors import ValidationError
from . import ready as _ready
from .model import TEXT_FIELDS
from .store import Store

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only: the hot path skips it
    from typing import Any

__all__ = ["Filter", "where_sql", "json_object_sql", "ready_sql", "order_sql", "SORT_KEYS"]

SORT_KEYS = {
    "priority": "priority, created_at, id",
    "created": "created_at, id",
    "updated": "updated_at DESC, id",
    "id": "id",
    "title": "title, id",
    "status": "status, priority, id",
    # NULLs sort first on PostgreSQL and last on SQLite; say where they go
    "closed": "closed_at IS NULL, closed_at DESC, id",
}


class Filter:
    """What to select.  Every field is optional; empty means "any".

    A plain class rather than a dataclass: ``dataclasses`` costs milliseconds
    of import time on the hot ``bd ready`` path.
    """

    __slots__ = ("status", "issue_type", "assignee", "unassigned", "labels_all", "labels_any",
                 "priority_min", "priority_max", "parent", "mol", "text", "ids",
                 "include_closed", "include_ephemeral", "include_templates")

    def __init__(self, *, status: list[str] | None = None, issue_type: list[str] | None = None,
                 assignee: str | None = None, unassigned: bool = False,
                 labels_all: list[str] | None = None, labels_any: list[str] | None = None,
                 priority_min: int | None = None, priority_max: int | None = None,
                 parent: str | None = None, mol: str | None = None, text: str | None = None,
                 ids: list[str] | None = None, include_closed: bool = True,
                 include_ephemeral: bool = False, include_templates: bool = False) -> None:
        self.status: list[str] = list(status or [])
        self.issue_type: list[str] = list(issue_type or [])
        self.assignee = assignee
        self.unassigned = unassigned
        self.labels_all: list[str] = list(labels_all or [])
        self.labels_any: list[str] = list(labels_any or [])
        self.priority_min = priority_min
        self.priority_max = priority_max
        self.parent = parent
        self.mol = mol
        self.text = text
        self.ids: list[str] = list(ids or [])
        self.include_closed = include_closed
        self.include_ephemeral = include_ephemeral
        self.include_templates = include_templates

    def __repr__(self) -> str:
        set_fields = {k: getattr(self, k) for k in self.__slots__ if getattr(self, k)}
        return f"Filter({set_fields})"


def where_sql(f: Filter) -> tuple[str, list[Any]]:
    """``(" AND …", params)`` for a filter, to append to a WHERE clause."""
    parts: list[str] = []
    params: list[Any] = []
    if f.status:
        parts.append(f"status IN ({', '.join('?' * len(f.status))})")
        params += f.status
    elif not f.include_closed:
        parts.append("status <> 'closed'")
    if f.issue_type:
        parts.append(f"issue_type IN ({', '.join('?' * len(f.issue_type))})")
        params += f.issue_type
    if f.assignee:
        parts.append("assignee = ?")
        params.append(f.assignee)
    if f.unassigned:
        parts.append("(assignee IS NULL OR assignee = '')")
    for label in f.labels_all:
        parts.append("EXISTS (SELECT 1 FROM labels l WHERE l.issue_id = issues.id AND l.label = ?)")
        params.append(label)
    if f.labels_any:
        parts.append("EXISTS (SELECT 1 FROM labels l WHERE l.issue_id = issues.id AND l.label IN "
                     f"({', '.join('?' * len(f.labels_any))}))")
        params += f.labels_any
    if f.priority_min is not None:
        parts.append("priority >= ?")
        params.append(f.priority_min)
    if f.priority_max is not None:
        parts.append("priority <= ?")
        params.append(f.priority_max)
    if f.parent:
        parts.append("id IN (SELECT issue_id FROM dependencies WHERE depends_on_id = ? "
                     "AND type = 'parent-child')")
        params.append(f.parent)
    if f.mol:
        parts.append(
            # the seed row comes from a column, not a bare parameter, so on PostgreSQL
            # both terms of the recursion share the column's collation
            "id IN (WITH RECURSIVE sub(id) AS (SELECT id FROM issues WHERE id = ? UNION "
            "SELECT d.issue_id FROM dependencies d JOIN sub ON d.depends_on_id = sub.id "
            "WHERE d.type = 'parent-child') SELECT id FROM sub)")
        params.append(f.mol)
    if f.text:
        escaped = f.text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        like = "%" + escaped + "%"
        cols = ("id", "title", *TEXT_FIELDS)
        parts.append("(" + " OR ".join(f"LOWER({c}) LIKE ? ESCAPE '\\'" for c in cols) + ")")
        params += [like] * len(cols)
    if f.ids:
        parts.append(f"id IN ({', '.join('?' * len(f.ids))})")
        params += f.ids
    if not f.include_ephemeral and not f.mol:
        parts.append("ephemeral = 0")
    if not f.include_templates and not f.mol:
        parts.append("is_template = 0")
    return "".join(" AND " + p for p in parts), params


def order_sql(sort: str | None, reverse: bool = False) -> str:
    """The ORDER BY list for a ``--sort`` key."""
    key = sort or "priority"
    if key not in SORT_KEYS:
        raise ValidationError(f"invalid sort key {sort!r}: use one of {', '.join(SORT_KEYS)}")
    order = SORT_KEYS[key]
    if reverse:
        order = ", ".join(c[:-5] if c.endswith(" DESC") else c + " DESC" for c in order.split(", "))
    return order


def json_object_sql(store: Store) -> str:
    """SQL text expression: one bead as a JSON object, omit-empty, labels and metadata included.

    Built by concatenating quoted values (no JSON parsing per row); key order
    matches :data:`~.model.EXPORT_ORDER` so it equals what the Python path prints.
    """
    q = store.json_quote_sql

    def opt(name: str, value_sql: str, cond: str) -> str:
        return f"CASE WHEN {cond} THEN ',\"{name}\":' || {value_sql} ELSE '' END"

    parts = [f"'{{\"id\":' || {q('id')}", f"',\"title\":' || {q('title')}"]
    for name in TEXT_FIELDS:
        parts.append(opt(name, q(name), f"{name} <> ''"))
    parts += [f"',\"status\":' || {q('status')}",
              "',\"priority\":' || CAST(priority AS TEXT)",
              f"',\"issue_type\":' || {q('issue_type')}"]
    for name in ("assignee", "owner"):
        parts.append(opt(name, q(name), f"{name} IS NOT NULL"))
    parts.append(opt("estimated_minutes", "CAST(estimated_minutes AS TEXT)",
                     "estimated_minutes IS NOT NULL"))
    for name in ("created_at", "created_by", "updated_at", "started_at", "closed_at",
                 "close_reason", "due_at", "defer_until", "external_ref", "source_formula"):
        parts.append(opt(name, q(name), f"{name} IS NOT NULL"))
    for name in ("pinned", "ephemeral", "is_template"):
        parts.append(f"CASE WHEN {name} = 1 THEN ',\"{name}\":true' ELSE '' END")
    parts.append(store.json_labels_fragment_sql("issues.id"))
    parts.append(opt("metadata", "metadata", "metadata IS NOT NULL"))
    parts.append("'}'")
    return store.concat_sql(parts)


def ready_sql(extra_where: str, include_ephemeral: bool, index_hint: str = "") -> str:
    """FROM/WHERE/ORDER for the ready set; the first parameter is now."""
    where = _ready.READY_WHERE
    if include_ephemeral:
        where = where.replace("ephemeral = 0 AND ", "")
        index_hint = ""  # the partial index excludes wisps
    return f"FROM issues {index_hint} WHERE {where}{extra_where} ORDER BY {_ready.READY_ORDER}"
