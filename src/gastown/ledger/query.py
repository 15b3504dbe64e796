"""Building the read queries: filters for ``list``/``ready``/``blocked``/``search``.

A :class:`Filter` becomes a WHERE fragment with ``?`` parameters; the same
fragment drives both the Python-object path and the JSON-in-SQL hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError
from . import ready as _ready
from .model import TEXT_FIELDS
from .store import Store

__all__ = ["Filter", "where_sql", "json_objects_sql", "SORT_KEYS"]

SORT_KEYS = {
    "priority": "priority, created_at, id",
    "created": "created_at, id",
    "updated": "updated_at DESC, id",
    "id": "id",
    "title": "title, id",
    "status": "status, priority, id",
    "closed": "closed_at DESC, id",
}


@dataclass
class Filter:
    """What to select.  Every field is optional; empty means "any"."""

    status: list[str] = field(default_factory=list)
    issue_type: list[str] = field(default_factory=list)
    assignee: str | None = None
    unassigned: bool = False
    labels_all: list[str] = field(default_factory=list)
    labels_any: list[str] = field(default_factory=list)
    priority_min: int | None = None
    priority_max: int | None = None
    parent: str | None = None
    mol: str | None = None
    text: str | None = None
    ids: list[str] = field(default_factory=list)
    include_closed: bool = True
    include_ephemeral: bool = False
    include_templates: bool = False


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
            "id IN (WITH RECURSIVE sub(id) AS (SELECT CAST(? AS TEXT) UNION "
            "SELECT d.issue_id FROM dependencies d JOIN sub ON d.depends_on_id = sub.id "
            "WHERE d.type = 'parent-child') SELECT id FROM sub)")
        params.append(f.mol)
    if f.text:
        like = "%" + f.text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
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


def json_objects_sql(store: Store) -> str:
    """The ``'key', expr`` pairs that build one bead object in SQL (labels included)."""
    pairs = ["'id', id", "'title', title"]
    for name in TEXT_FIELDS:
        pairs.append(f"'{name}', NULLIF({name}, '')")
    pairs += ["'status', status", "'priority', priority", "'issue_type', issue_type"]
    for name in ("assignee", "owner", "estimated_minutes", "created_at", "created_by",
                 "updated_at", "started_at", "closed_at", "close_reason", "due_at",
                 "defer_until", "external_ref", "source_formula"):
        pairs.append(f"'{name}', {name}")
    for name in ("pinned", "ephemeral", "is_template"):
        pairs.append(f"'{name}', CASE WHEN {name} = 1 THEN {store.json_true_sql} END")
    pairs.append(f"'labels', {store.json_labels_sql('issues.id')}")
    return ", ".join(pairs)


def ready_sql(extra_where: str, include_ephemeral: bool) -> str:
    """FROM/WHERE/ORDER for the ready set; the first parameter is now."""
    where = _ready.READY_WHERE
    if include_ephemeral:
        where = where.replace("ephemeral = 0 AND ", "")
    return f"FROM issues WHERE {where}{extra_where} ORDER BY {_ready.READY_ORDER}"
