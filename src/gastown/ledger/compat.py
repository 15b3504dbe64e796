"""Reports upstream ``bd`` tools expect: status summary, orphans, pollution, schema, counts.

These back the beads-compatible commands of :mod:`gastown.cli.bd_compat` (and
the beads MCP server that drives them).  Field names follow the Go ``bd``'s JSON
so that its tools read our output unchanged.  Nothing here is on the hot path.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from . import ready as _ready
from . import timefmt
from .query import Filter, where_sql

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .core import Ledger

__all__ = [
    "BEADS_CLI_LEVEL",
    "status_report",
    "orphan_dependencies",
    "remove_orphans",
    "pollution",
    "validate_checks",
    "schema_info",
    "migration_inspection",
    "count_groups",
    "stale",
    "epic_status",
    "duplicate_groups",
    "sort_ready",
    "parse_time",
    "ago",
]

#: the Go ``bd`` command level we implement (``bd version`` reports it first, so
#: tools that parse the first ``X.Y.Z`` in its output accept us)
BEADS_CLI_LEVEL = "1.0.0"


def parse_time(value: str | None) -> datetime | None:
    """A stored timestamp as an aware datetime (None for empty or unreadable)."""
    if not value:
        return None
    try:  # Python >= 3.11 reads a "Z" and nanoseconds (cut to microseconds)
        t = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def ago(**delta: float) -> str:
    """The time ``delta`` (timedelta's keywords) before now, to compare with stored times.

    Stored timestamps are RFC 3339 text in UTC, so text order is time order.
    """
    return (datetime.now(UTC) - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%S")


def _hours(start: str | None, end: str | None) -> float | None:
    a, b = parse_time(start), parse_time(end)
    if a is None or b is None:
        return None
    return (b - a).total_seconds() / 3600.0


def status_report(led: Ledger, hours: int = 24, assignee: str | None = None) -> dict[str, Any]:
    """``bd status --json``: ``{"summary": {...}, "recent_activity": {...}}``.

    The summary has the Go ``bd``'s statistics fields (counts by state, ready,
    average lead time in hours); recent activity counts the event log's changes
    in the last ``hours``.
    """
    now = timefmt.now()
    who = " AND assignee = ?" if assignee else ""
    args: list[Any] = [assignee] if assignee else []
    base = f"ephemeral = 0 AND is_template = 0{who}"
    with led.store.read() as tx:
        by_status = {str(k): int(v) for k, v in tx.query(
            f"SELECT status, COUNT(*) FROM issues WHERE {base} GROUP BY status", args)}
        ready = int(tx.scalar(f"SELECT COUNT(*) FROM issues WHERE {_ready.READY_WHERE}{who}",
                              [now, *args]) or 0)
        blocked = int(tx.scalar(f"SELECT COUNT(*) FROM issues WHERE {_ready.BLOCKED_WHERE}{who}",
                                [now, *args]) or 0)
        closed = tx.query(f"SELECT created_at, closed_at FROM issues WHERE {base} "
                          "AND status = 'closed' AND closed_at IS NOT NULL", args)
        # open epics with children, all of them closed (one query, not one per epic)
        kids = ("SELECT 1 FROM dependencies d JOIN issues t ON t.id = d.issue_id "
                "WHERE d.depends_on_id = issues.id AND d.type = 'parent-child'")
        eligible = int(tx.scalar(
            f"SELECT COUNT(*) FROM issues WHERE {base} AND issue_type = 'epic' "
            f"AND status <> 'closed' AND EXISTS ({kids}) "
            f"AND NOT EXISTS ({kids} AND t.status <> 'closed')", args) or 0)
        recent = {str(k): int(v) for k, v in tx.query(
            "SELECT type, COUNT(*) FROM events WHERE ts >= ? GROUP BY type", (ago(hours=hours),))}
    leads = [h for h in (_hours(a, b) for a, b in closed) if h is not None and h >= 0]
    summary = {
        "total_issues": sum(by_status.values()),
        "open_issues": by_status.get("open", 0),
        "in_progress_issues": by_status.get("in_progress", 0),
        "closed_issues": by_status.get("closed", 0),
        "blocked_issues": blocked,
        "deferred_issues": by_status.get("deferred", 0),
        "ready_issues": ready,
        "pinned_issues": by_status.get("pinned", 0),
        "epics_eligible_for_closure": eligible,
        "average_lead_time_hours": round(sum(leads) / len(leads), 2) if leads else 0.0,
    }
    activity = {
        "hours_tracked": hours,
        "commit_count": 0,
        "issues_created": recent.get("bead.created", 0),
        "issues_closed": recent.get("bead.closed", 0),
        "issues_updated": recent.get("bead.updated", 0) + recent.get("bead.claimed", 0),
        "issues_reopened": recent.get("bead.reopened", 0),
        "total_changes": sum(recent.values()),
    }
    return {"summary": summary, "recent_activity": activity}


def orphan_dependencies(led: Ledger) -> list[dict[str, str]]:
    """Dependencies whose target is not in the ledger (``bd repair-deps``).

    ``related`` edges to other ledgers are kept: upstream never treats them as orphans
    either, since they never block.
    """
    with led.store.read() as tx:
        rows = tx.query("SELECT d.issue_id, d.depends_on_id, d.type FROM dependencies d "
                        "WHERE NOT EXISTS (SELECT 1 FROM issues t WHERE t.id = d.depends_on_id) "
                        "AND d.type <> 'related' ORDER BY d.issue_id, d.depends_on_id")
    return [{"issue_id": r[0], "depends_on_id": r[1], "type": r[2]} for r in rows]


def remove_orphans(led: Ledger, orphans: list[dict[str, str]]) -> int:
    """Remove the given orphaned dependencies (one transaction); returns how many went."""
    with led.transaction() as t:
        return sum(t.remove_dep(o["issue_id"], o["depends_on_id"], o["type"]) for o in orphans)


_TEST_PREFIX = re.compile(r"^(test|benchmark|sample|tmp|temp|debug|dummy)[-_\s]")
_SEQUENTIAL = re.compile(r"^[a-z]+-\d+$")


def pollution(led: Ledger) -> list[dict[str, Any]]:
    """Beads that look like leaked test data, scored as upstream's detector does.

    Signals: a test-like title prefix (0.7), a sequential id with a short
    description (0.4), no (0.2) or a very short (0.1) description, ten or more
    beads created in the same minute (0.3), a generic test title (0.5);
    a score of 0.7 or more is reported.
    """
    beads = led.list(Filter(), sort="id")
    per_minute: dict[str, int] = {}
    for b in beads:
        per_minute[str(b["created_at"])[:16]] = per_minute.get(str(b["created_at"])[:16], 0) + 1
    found = []
    for b in beads:
        title = str(b["title"]).lower()
        desc = str(b.get("description") or "")
        score, reasons = 0.0, []
        if _TEST_PREFIX.match(title):
            score += 0.7
            reasons.append("Title starts with test prefix")
        if _SEQUENTIAL.match(str(b["id"])) and len(desc) < 20:
            score += 0.4
            reasons.append("Sequential ID with minimal description")
        if not desc.strip():
            score += 0.2
            reasons.append("No description")
        elif len(desc) < 20:
            score += 0.1
            reasons.append("Very short description")
        same = per_minute[str(b["created_at"])[:16]]
        if same >= 10:
            score += 0.3
            reasons.append(f"Created with {same - 1} other issues in same minute")
        if any(s in title for s in ("issue for testing", "test issue", "sample issue")):
            score += 0.5
            reasons.append("Generic test title")
        if score >= 0.7:
            found.append({"id": b["id"], "title": b["title"], "score": round(score, 2),
                          "reasons": reasons, "created_at": b["created_at"]})
    return found


def duplicate_groups(led: Ledger, include_closed: bool = False) -> list[list[dict[str, Any]]]:
    """Groups of beads with the same title, description and type (``bd duplicates``)."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for b in led.list(Filter(include_closed=include_closed), sort="created"):
        key = (str(b["title"]).strip().lower(), str(b.get("description") or "").strip(),
               str(b["issue_type"]))
        groups.setdefault(key, []).append(b)
    return [g for g in groups.values() if len(g) > 1]


def validate_checks(led: Ledger) -> list[dict[str, str]]:
    """``bd doctor --check=validate``: duplicates, orphaned deps, pollution, integrity."""
    checks: list[dict[str, str]] = []

    def add(name: str, bad: int, what: str, fix: str = "") -> None:
        check = {"name": name, "status": "warning" if bad else "ok",
                 "message": f"{bad} {what}" if bad else f"No {what}",
                 "category": "Data Integrity"}
        if bad and fix:
            check["fix"] = fix
        checks.append(check)

    dups = duplicate_groups(led)
    add("Duplicate Issues", sum(len(g) - 1 for g in dups), "duplicate issues",
        "Run 'bd duplicates' to review them")
    add("Orphaned Dependencies", len(orphan_dependencies(led)), "orphaned dependencies",
        "Run 'bd repair-deps --fix' (or 'bd doctor --check=validate --fix')")
    add("Test Pollution", len(pollution(led)), "likely test issues",
        "Run 'bd doctor --check=pollution' to review them")
    problems = [p for p in led.integrity_problems() if "unknown issues" not in p]
    checks.append({"name": "Ledger Integrity", "status": "error" if problems else "ok",
                   "message": "; ".join(problems) if problems else "Ready state and edges agree",
                   "category": "Data Integrity",
                   **({"fix": "Run 'bd doctor --fix'"} if problems else {})})
    return checks


def schema_info(led: Ledger) -> dict[str, Any]:
    """``bd info --schema``: the database, issue count, config and schema summary."""
    cfg = led.config()
    beads = led.list(Filter(), sort="id", limit=3)
    with led.store.read() as tx:
        count = int(tx.scalar("SELECT COUNT(*) FROM issues") or 0)
    prefix = cfg.get("issue_prefix") or (str(beads[0]["id"]).rsplit("-", 1)[0] if beads else "")
    return {
        "database_path": led.store.url,
        "mode": "direct",
        "issue_count": count,
        "config": cfg,
        "schema": {
            "tables": ["issues", "dependencies", "labels", "comments", "events", "config",
                       "kv"],
            "schema_version": BEADS_CLI_LEVEL,
            "config": {"issue_prefix": cfg["issue_prefix"]} if cfg.get("issue_prefix") else {},
            "sample_issue_ids": [b["id"] for b in beads],
            "detected_prefix": prefix,
        },
    }


def migration_inspection(led: Ledger) -> dict[str, Any]:
    """``bd migrate --inspect``: the schema is created complete, so nothing is pending."""
    cfg = led.config()
    with led.store.read() as tx:
        count = int(tx.scalar("SELECT COUNT(*) FROM issues") or 0)
    missing = ["issue_prefix"] if count and not cfg.get("issue_prefix") else []
    return {
        "registered_migrations": [],
        "current_state": {"schema_version": BEADS_CLI_LEVEL, "issue_count": count,
                          "config": {k: v for k, v in cfg.items() if k == "issue_prefix"},
                          "missing_config": missing, "db_exists": True},
        "warnings": [f"{k} config not set" for k in missing],
        "invariants_to_check": [],
    }


_GROUP_COLUMNS = {"status": "status", "priority": "priority", "type": "issue_type",
                  "assignee": "assignee"}


def count_groups(led: Ledger, f: Filter, by: str | None) -> dict[str, Any]:
    """``bd count``: ``{"count": N}`` or, grouped, ``{"total": N, "groups": [...]}``."""
    extra, params = where_sql(f)
    with led.store.read() as tx:
        if by is None:
            n = tx.scalar(f"SELECT COUNT(*) FROM issues WHERE 1 = 1{extra}", params)
            return {"count": int(n or 0)}
        if by == "label":
            rows = tx.query("SELECT l.label, COUNT(*) FROM labels l JOIN issues ON "
                            f"issues.id = l.issue_id WHERE 1 = 1{extra} GROUP BY l.label "
                            "ORDER BY l.label", params)
            total = tx.scalar(f"SELECT COUNT(*) FROM issues WHERE 1 = 1{extra}", params)
        else:
            col = _GROUP_COLUMNS[by]
            rows = tx.query(f"SELECT {col}, COUNT(*) FROM issues WHERE 1 = 1{extra} "
                            f"GROUP BY {col} ORDER BY {col}", params)
            total = sum(int(r[1]) for r in rows)
    groups = [{"group": "(unassigned)" if k is None and by == "assignee" else
               (f"P{k}" if by == "priority" else str(k)), "count": int(v)} for k, v in rows]
    return {"total": int(total or 0), "groups": groups}


def stale(led: Ledger, days: int, status: str | None, limit: int) -> list[dict[str, Any]]:
    """Open-ish beads not updated in ``days`` days, oldest first (``bd stale``)."""
    cutoff = ago(days=days)
    statuses = [status] if status else ["open", "in_progress", "blocked", "deferred"]
    beads: list[dict[str, Any]] = [
        b for b in led.list(Filter(status=statuses), sort="updated", reverse=True)
        if str(b["updated_at"]) < cutoff]
    now = datetime.now(UTC)
    for b in beads:
        t = parse_time(b["updated_at"])
        b["days_stale"] = (now - t).days if t else None
    return beads[:limit] if limit else beads


def epic_status(led: Ledger, eligible_only: bool = False) -> list[dict[str, Any]]:
    """Open epics with their children's progress (``bd epic status``)."""
    out = []
    for epic in led.list(Filter(issue_type=["epic"], include_closed=False), sort="priority"):
        kids = led.list(Filter(parent=epic["id"]), sort="id")
        done = sum(1 for k in kids if k["status"] == "closed")
        eligible = bool(kids) and done == len(kids)
        if eligible_only and not eligible:
            continue
        out.append({"epic": epic, "total_children": len(kids), "closed_children": done,
                    "eligible_for_close": eligible})
    return out


def sort_ready(beads: list[dict[str, Any]], policy: str) -> list[dict[str, Any]]:
    """Order ready beads by upstream's ``--sort`` policies.

    ``priority``: priority, then age; ``oldest``: creation time; ``hybrid``
    (upstream's default): beads created in the last 48 hours by priority, then
    older ones by age, so that nothing starves.
    """
    if policy == "oldest":
        return sorted(beads, key=lambda b: (str(b["created_at"]), b["id"]))
    if policy == "priority":
        return sorted(beads, key=lambda b: (b["priority"], str(b["created_at"]), b["id"]))
    cutoff = ago(hours=48)
    recent = [b for b in beads if str(b["created_at"]) >= cutoff]
    older = [b for b in beads if str(b["created_at"]) < cutoff]
    return (sorted(recent, key=lambda b: (b["priority"], str(b["created_at"]), b["id"]))
            + sorted(older, key=lambda b: (str(b["created_at"]), b["id"])))


def rename_prefix(led: Ledger, new: str, dry_run: bool = False) -> list[tuple[str, str]]:
    """Give every ``OLD-…`` id the prefix ``new`` (``bd rename-prefix``), in one transaction.

    Ids are rewritten in every table that names a bead, and whole-word mentions
    in text fields follow; the ledger's ``issue_prefix`` becomes ``new``.
    Returns the ``(old, new)`` id pairs.
    """
    from ..errors import ConflictError, ValidationError
    from .ids import is_valid_prefix

    if not is_valid_prefix(new):
        raise ValidationError(f"invalid prefix {new!r}: letters, digits, '-' and '_'")
    # one transaction: the ids read, rewritten, the prefix set and the event written
    # together (a kill leaves the old ledger or the renamed one, never a mix)
    with led.transaction() as t:
        tx = t.tx
        old = t.prefix
        ids = [r[0] for r in tx.query("SELECT id FROM issues ORDER BY id")]
        pairs = [(i, new + i[len(old):]) for i in ids if i.startswith(old + "-")]
        clash = {n for _, n in pairs} & (set(ids) - {o for o, _ in pairs})
        if clash:
            raise ConflictError(f"cannot rename: {sorted(clash)[0]} already exists")
        if dry_run or not pairs and old == new:
            return pairs
        mapping = dict(pairs)
        word = re.compile(r"(?<![A-Za-z0-9_-])(" + re.escape(old)
                          + r"-[A-Za-z0-9]+(?:\.[A-Za-z0-9]+)*)(?![A-Za-z0-9_-])")
        for table, cols in (("issues", ("id",)), ("dependencies", ("issue_id", "depends_on_id")),
                            ("labels", ("issue_id",)), ("comments", ("issue_id",)),
                            ("events", ("bead_id",)), ("child_counters", ("parent_id",))):
            for col in cols:
                tx.executemany(f"UPDATE {table} SET {col} = ? WHERE {col} = ?",
                               [(n, o) for o, n in pairs])
        rows = tx.query("SELECT id, title, description, design, acceptance_criteria, notes "
                        "FROM issues")
        for row in rows:
            texts = [word.sub(lambda m: mapping.get(m.group(1), m.group(1)), t or "")
                     for t in row[1:]]
            if texts != [t or "" for t in row[1:]]:
                tx.execute("UPDATE issues SET title = ?, description = ?, design = ?, "
                           "acceptance_criteria = ?, notes = ? WHERE id = ?", (*texts, row[0]))
        tx.execute("INSERT INTO retired_ids (id) SELECT id FROM issues WHERE NOT EXISTS "
                   "(SELECT 1 FROM retired_ids r WHERE r.id = issues.id)")
        t.kv_set("issue_prefix", new, table="config")
        t.emit("config.set", None, {"key": "issue_prefix", "value": new})
        t.emit("ledger.prefix_renamed", None, {"from": old, "to": new, "count": len(pairs)})
    led._prefix, led._prefix_missing = new, False  # noqa: SLF001 - the ledger's own cache
    return pairs


def merge_jsonl(base: list[dict[str, Any]], left: list[dict[str, Any]],
                right: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """A three-way merge of JSONL exports by bead id (``bd merge``, git's merge driver).

    A field changed on one side only takes that side's value; changed on both
    sides to different values, the side with the later ``updated_at`` wins (and
    the id is reported).  A bead deleted on one side stays deleted unless the
    other side changed it.  Returns the merged beads sorted by id and the ids
    whose conflicts were settled by recency.
    """
    b = {o["id"]: o for o in base}
    lf = {o["id"]: o for o in left}
    rt = {o["id"]: o for o in right}
    merged: dict[str, dict[str, Any]] = {}
    settled: list[str] = []
    for bead_id in sorted(set(b) | set(lf) | set(rt)):
        o, x, y = b.get(bead_id), lf.get(bead_id), rt.get(bead_id)
        if x is None or y is None:
            kept = x if y is None else y
            if kept is None or (o is not None and kept == o):
                continue  # deleted on one side, untouched on the other (or on both)
            merged[bead_id] = kept
            continue
        if o is None or x == y:
            newer = x if str(x.get("updated_at", "")) >= str(y.get("updated_at", "")) else y
            merged[bead_id] = x if x == y else newer
            if x != y:
                settled.append(bead_id)
            continue
        out: dict[str, Any] = {}
        clash = False
        for key in list(dict.fromkeys([*x, *y])):
            ov, xv, yv = o.get(key), x.get(key), y.get(key)
            if xv == yv:
                value = xv
            elif xv == ov:
                value = yv
            elif yv == ov:
                value = xv
            else:
                clash = True
                later = str(x.get("updated_at", "")) >= str(y.get("updated_at", ""))
                value = xv if later else yv
            if value is not None:
                out[key] = value
        if clash:
            settled.append(bead_id)
        merged[bead_id] = out
    return [merged[k] for k in sorted(merged)], settled


def unset_config(led: Ledger, key: str) -> bool:
    """Remove a configuration key (``bd config unset``); False when it was not set.

    ``issue_prefix`` names every new bead and cannot be removed (use
    ``bd rename-prefix`` to change it).
    """
    from ..errors import ValidationError

    if key == "issue_prefix":
        raise ValidationError("issue_prefix cannot be unset: change it with bd rename-prefix")
    with led.store.write() as tx:
        n = tx.execute("DELETE FROM config WHERE key = ?", (key,))
    if n:
        led.emit("config.unset", None, {"key": key})
    return bool(n)
