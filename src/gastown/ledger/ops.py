"""Every change to the ledger, as operations inside one open transaction.

A :class:`Txn` wraps one backend transaction.  Each method validates, changes
rows, writes its event, and refreshes the ready state (:mod:`.ready`) before
returning, so a caller can group many operations (a whole molecule pour) into
one atomic unit with :meth:`gastown.ledger.Ledger.transaction`.
"""

from __future__ import annotations

from ..errors import (
    ConflictError,
    CycleError,
    NotFoundError,
    NotInitializedError,
    UsageError,
    ValidationError,
)
from . import ids as _ids
from . import ready as _ready
from . import timefmt
from .model import ISSUE_TYPES, STATUSES, TEXT_FIELDS, Bead, normalize_dep_type
from .queries import Writes
from .rows import SELECT_COLUMNS, bead_from_row, dump_json
from .store import Tx

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only: the hot path skips it
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any

__all__ = ["Txn"]

_UPDATABLE = {
    "title", "description", "design", "acceptance_criteria", "notes", "status", "priority",
    "issue_type", "assignee", "owner", "due_at", "defer_until", "external_ref", "metadata",
    "estimated_minutes", "pinned", "ephemeral", "is_template", "source_formula", "close_reason",
    "created_by",
}
_TIME_FIELDS = ("due_at", "defer_until")


def check_priority(value: Any) -> int:
    """Priorities are integers 0 (critical) … 4 (backlog); ``P1`` is accepted too."""
    if isinstance(value, str):
        v = value.strip().upper().removeprefix("P")
        if not (v.isascii() and v.isdigit()) or len(v) > 2:
            raise ValidationError(f"invalid priority {value[:40]!r}: use 0-4 (or P0-P4)")
        value = int(v)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 4:
        raise ValidationError(f"invalid priority {value!r}: use 0-4 (or P0-P4)")
    return value


def check_status(value: str) -> str:
    """A known status, or a one-line error listing them."""
    v = value.strip().lower().replace("-", "_")
    if v not in STATUSES:
        raise ValidationError(f"invalid status {value!r}: use one of {', '.join(STATUSES)}")
    return v


def check_type(value: str) -> str:
    """A known issue type, or a one-line error listing them."""
    v = value.strip().lower()
    if v == "mr":
        v = "merge-request"
    if v not in ISSUE_TYPES:
        raise ValidationError(f"invalid issue type {value!r}: use one of {', '.join(ISSUE_TYPES)}")
    return v


def check_when(value: str, key: str) -> str:
    """A user-given time (RFC 3339, date or relative), or a one-line ValidationError."""
    try:
        return timefmt.parse_when(value)
    except ValueError as exc:
        raise ValidationError(f"invalid {key}: {exc}") from None


def check_dep_type(value: str) -> str:
    """A dependency type: beads' 19 names (odd spellings normalised) or a custom one."""
    v = normalize_dep_type(value)
    if not v or any(ch.isspace() for ch in v):
        raise ValidationError(f"invalid dependency type {value!r}")
    return v


class Txn(Writes):
    """The ledger's operations bound to one open transaction (the named queries of
    :class:`~.queries.Writes` included)."""

    def __init__(self, tx: Tx, actor: str, prefix: str) -> None:
        self.tx = tx
        self.actor = actor
        self.prefix = prefix
        #: set when the ledger has no ``issue_prefix``: a new hash id is then refused
        #: rather than given a made-up prefix
        self.prefix_missing = False
        self._now = timefmt.now()
        #: ``(type, bead id, payload, actor)`` of each event so far, for the
        #: transaction hook (:mod:`.txhook`) that runs before commit
        self.emitted: list[tuple[str, str | None, Mapping[str, Any] | None, str]] = []

    # ----------------------------------------------------------------- events
    def emit(self, type_: str, bead_id: str | None, payload: Mapping[str, Any] | None = None,
             actor: str | None = None) -> int:
        """Append one event in this transaction; returns its ``seq``."""
        self.emitted.append((type_, bead_id, payload, actor or self.actor))
        return self.tx.insert_event_returning_seq(
            "INSERT INTO events (ts, type, actor, bead_id, payload) VALUES (?, ?, ?, ?, ?)",
            (self._now, type_, actor or self.actor, bead_id,
             dump_json(payload) if payload else None))

    # ------------------------------------------------------------------ reads
    def get(self, bead_id: str) -> Bead:
        """The bead with ``bead_id`` (labels included), or :class:`NotFoundError`."""
        row = self.tx.one(f"SELECT {SELECT_COLUMNS} FROM issues WHERE id = ?", (bead_id,))
        if row is None:
            raise NotFoundError(f"no issue found matching {bead_id!r}")
        labels = [r[0] for r in self.tx.query(
            "SELECT label FROM labels WHERE issue_id = ? ORDER BY label", (bead_id,))]
        return bead_from_row(row, labels)

    def exists(self, bead_id: str) -> bool:
        """True when a bead with this id exists."""
        return self.tx.one("SELECT 1 FROM issues WHERE id = ?", (bead_id,)) is not None

    def status_of(self, bead_id: str) -> str:
        """The status of ``bead_id`` or :class:`NotFoundError`."""
        row = self.tx.one("SELECT status FROM issues WHERE id = ?", (bead_id,))
        if row is None:
            raise NotFoundError(f"no issue found matching {bead_id!r}")
        return str(row[0])

    def children_of(self, bead_id: str) -> list[str]:
        """Ids of the direct ``parent-child`` children of ``bead_id``."""
        return [r[0] for r in self.tx.query(
            "SELECT issue_id FROM dependencies WHERE depends_on_id = ? AND type = 'parent-child' "
            "ORDER BY issue_id", (bead_id,))]

    def parents_of(self, bead_id: str) -> list[str]:
        """Ids of the ``parent-child`` parents of ``bead_id``."""
        return [r[0] for r in self.tx.query(
            "SELECT depends_on_id FROM dependencies WHERE issue_id = ? AND type = 'parent-child'",
            (bead_id,))]

    # ------------------------------------------------------------------ ids
    def _new_id(self, seed: str) -> str:
        if self.prefix_missing:
            raise NotInitializedError(
                "this ledger has no issue prefix (left by an interrupted 'bd init'?): set one "
                "with 'bd config set issue_prefix PREFIX' (or run 'bd init' again while it "
                "holds no beads)")
        count = int(self.tx.scalar(self.tx.approx_count_sql) or 0)
        length = _ids.id_length_for(count + 1)
        for nonce in range(40):
            candidate = _ids.hash_id(self.prefix, f"{seed}\0{self._now}", length, nonce)
            if not self._id_taken(candidate):
                return candidate
            if nonce % 10 == 9 and length < _ids.MAX_LEN:
                length += 1  # repeated clashes: this length is crowded
        raise ConflictError("could not find a free id after 40 tries")  # pragma: no cover

    def _id_taken(self, bead_id: str) -> bool:
        return self.tx.one("SELECT 1 FROM issues WHERE id = ? UNION ALL "
                           "SELECT 1 FROM retired_ids WHERE id = ?", (bead_id, bead_id)) is not None

    def _next_child_id(self, parent_id: str) -> str:
        if _ids.child_depth(parent_id) >= _ids.MAX_CHILD_DEPTH:
            raise ValidationError(
                f"cannot add a child to {parent_id}: children nest at most "
                f"{_ids.MAX_CHILD_DEPTH} levels deep")
        last = self.tx.scalar("SELECT last FROM child_counters WHERE parent_id = ?", (parent_id,))
        n = int(last or 0)
        while True:
            n += 1
            candidate = _ids.child_id(parent_id, n)
            if not self._id_taken(candidate):
                break
        if last is None:
            self.tx.execute("INSERT INTO child_counters (parent_id, last) VALUES (?, ?)",
                            (parent_id, n))
        else:
            self.tx.execute("UPDATE child_counters SET last = ? WHERE parent_id = ?",
                            (n, parent_id))
        return candidate

    # --------------------------------------------------------------- create
    def create(self, title: str, *, issue_type: str = "task", priority: Any = 2,
               description: str = "", design: str = "", acceptance_criteria: str = "",
               notes: str = "", labels: Iterable[str] = (), parent: str | None = None,
               deps: Iterable[tuple[str, str]] = (), id: str | None = None,
               assignee: str | None = None, owner: str | None = None,
               defer_until: str | None = None, due_at: str | None = None,
               ephemeral: bool = False, pinned: bool = False, is_template: bool = False,
               metadata: Mapping[str, Any] | None = None, estimated_minutes: int | None = None,
               external_ref: str | None = None, status: str = "open",
               source_formula: str | None = None, created_by: str | None = None) -> Bead:
        """Create one bead and return it.

        ``deps`` are ``(type, target_id)`` pairs: the new bead depends on each target.
        ``parent`` makes the bead a child (id ``PARENT.N`` and a parent-child edge).
        """
        title = (title or "").strip()
        if not title:
            raise ValidationError("title is required")
        if "\n" in title:
            raise ValidationError("title must be one line")
        issue_type = check_type(issue_type)
        priority = check_priority(priority)
        status = check_status(status)
        defer_until = check_when(defer_until, "defer_until") if defer_until else None
        due_at = check_when(due_at, "due_at") if due_at else None
        if estimated_minutes is not None and (not isinstance(estimated_minutes, int)
                                              or estimated_minutes < 0):
            raise ValidationError(f"invalid estimate {estimated_minutes!r}: minutes >= 0")
        if parent is not None and not self.exists(parent):
            raise NotFoundError(f"parent {parent!r} not found")
        dep_list = [(check_dep_type(t), target) for t, target in deps]
        for dep_type, target in dep_list:
            if not self.exists(target):
                raise NotFoundError(f"dependency target {target!r} not found")
            if (parent is not None and dep_type in _ready.BLOCKING_DEP_TYPES
                    and (target == parent or target in self.ancestors(parent))):
                raise CycleError(f"refusing a {dep_type} edge to {target}: it is an ancestor of "
                                 "the new bead, which it would wait for (deadlock)")
        if id is not None:
            if len(id) > 200:
                raise ValidationError(f"invalid id {id[:40]!r}… ({len(id)} characters): "
                                      "ids are at most 200 characters")
            if not (_ids.is_valid_id(id) or (is_template and _ids.is_valid_template_id(id))):
                raise ValidationError(f"invalid id {id!r}: expected PREFIX-HASH or PARENT.N")
            if self._id_taken(id):
                raise ConflictError(f"issue {id} already exists")
            bead_id = id
        elif parent is not None:
            bead_id = self._next_child_id(parent)
        else:
            bead_id = self._new_id(title)
        now = self._now
        closed_at = now if status == "closed" else None
        self.tx.execute(
            "INSERT INTO issues (id, title, description, design, acceptance_criteria, notes, "
            "status, priority, issue_type, assignee, owner, created_by, created_at, updated_at, "
            "closed_at, due_at, defer_until, external_ref, metadata, pinned, ephemeral, "
            "is_template, source_formula, estimated_minutes, hold_until) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (bead_id, title, description or "", design or "", acceptance_criteria or "",
             notes or "", status, priority, issue_type, assignee or None, owner or None,
             created_by or self.actor, now, now, closed_at, due_at, defer_until,
             external_ref or None, dump_json(metadata) if metadata else None, int(pinned),
             int(ephemeral), int(is_template), source_formula, estimated_minutes, defer_until))
        for label in dict.fromkeys(labels):
            self._insert_label(bead_id, label)
        edges = ([("parent-child", parent)] if parent else []) + dep_list
        for dep_type, target in edges:
            self.tx.execute(
                "INSERT INTO dependencies (issue_id, depends_on_id, type, created_at, created_by) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (bead_id, target, dep_type, now, self.actor))
        payload = {"title": title, "issue_type": issue_type, "priority": priority}
        if parent:
            payload["parent"] = parent
        self.emit("bead.created", bead_id, payload)
        seeds = _ready.seeds_for_existence_change(self.tx, bead_id, status, created=True)
        _ready.refresh(self.tx, seeds, [bead_id])
        return self.get(bead_id)

    # --------------------------------------------------------------- update
    def update(self, bead_id: str, **changes: Any) -> Bead:
        """Set fields of a bead (beads' field names).  ``status='closed'`` closes it."""
        current = self.get(bead_id)
        unknown = set(changes) - _UPDATABLE
        if unknown:
            raise UsageError(f"cannot update field(s): {', '.join(sorted(unknown))}")
        if changes.get("status") is not None:
            status = check_status(changes["status"])
            if status == "closed" and current["status"] != "closed":
                rest = {k: v for k, v in changes.items() if k not in ("status", "close_reason")}
                if rest:
                    self.update(bead_id, **rest)
                return self.close(bead_id, reason=changes.get("close_reason"), force=True)
            if current["status"] == "closed" and status != "closed":
                # reopen first, then go on from the reopened row (not the stale closed one)
                current = self.reopen(bead_id)
            changes["status"] = status
        sets: dict[str, Any] = {}
        for key, value in changes.items():
            if key == "title":
                value = (value or "").strip()
                if not value or "\n" in value:
                    raise ValidationError("title must be one non-empty line")
            elif key == "priority":
                value = check_priority(value)
            elif key == "issue_type":
                value = check_type(value)
            elif key in TEXT_FIELDS:
                value = value or ""
            elif key in _TIME_FIELDS:
                value = check_when(value, key) if value else None
            elif key == "metadata":
                value = dump_json(value) if value else None
            elif key in ("pinned", "ephemeral", "is_template"):
                value = int(bool(value))
            elif key == "estimated_minutes" and value is not None:
                if not isinstance(value, int) or value < 0:
                    raise ValidationError(f"invalid estimate {value!r}: minutes >= 0")
            elif isinstance(value, str):
                value = value or None
            old = current.get(key)
            if key in ("pinned", "ephemeral", "is_template"):
                old = int(bool(old))
            elif key == "metadata":
                old = dump_json(old) if old else None
            elif key in TEXT_FIELDS:
                old = old or ""
            if old != value:
                sets[key] = value
        if not sets:
            return current
        sets["updated_at"] = self._now
        if sets.get("status") == "in_progress" and not current.get("started_at"):
            sets["started_at"] = self._now
        assignments = ", ".join(f"{k} = ?" for k in sets)
        self.tx.execute(f"UPDATE issues SET {assignments} WHERE id = ?", (*sets.values(), bead_id))
        shown = {k: v for k, v in sets.items() if k not in ("updated_at", "started_at")}
        if "status" in sets:
            self.emit("bead.status", bead_id, {"from": current["status"], "to": sets["status"]})
        self.emit("bead.updated", bead_id, {"fields": sorted(shown)})
        self_seeds: set[str] = set()
        tree_seeds: list[str] = []
        if "status" in sets:
            self_seeds |= _ready.seeds_for_status_change(
                self.tx, bead_id, current["status"], sets["status"])
        if "defer_until" in sets:
            tree_seeds.append(bead_id)
        if self_seeds or tree_seeds:
            _ready.refresh(self.tx, self_seeds, tree_seeds)
        return self.get(bead_id)

    # ---------------------------------------------------------------- claim
    def claim(self, bead_id: str, assignee: str | None = None) -> Bead:
        """Atomically give an open, unassigned bead to ``assignee`` (default: the actor).

        The compare-and-set is one UPDATE whose WHERE clause is the claim rule, so
        two actors can never both win, whatever the backend.
        """
        who = assignee or self.actor
        n = self.tx.execute(
            "UPDATE issues SET status = 'in_progress', assignee = ?, updated_at = ?, "
            "started_at = COALESCE(started_at, ?) WHERE id = ? AND status = 'open' "
            "AND (assignee IS NULL OR assignee = '' OR assignee = ?)",
            (who, self._now, self._now, bead_id, who))
        if n != 1:
            row = self.tx.one("SELECT status, assignee FROM issues WHERE id = ?", (bead_id,))
            if row is None:
                raise NotFoundError(f"no issue found matching {bead_id!r}")
            status, holder = row
            if holder and holder != who:
                raise ConflictError(f"issue {bead_id} already claimed by {holder}")
            raise ConflictError(f"issue {bead_id} cannot be claimed: status is {status}")
        self.emit("bead.claimed", bead_id, {"assignee": who})
        return self.get(bead_id)

    def claim_next(self, ready_from_sql: str, params: Sequence[Any],
                   assignee: str | None = None) -> Bead | None:
        """Claim the first ready bead; None if there is none.

        ``ready_from_sql`` is :func:`.query.ready_sql` (FROM … WHERE … ORDER BY) for
        the wanted filter; its first parameter (now) is supplied here.
        """
        for _ in range(100):
            row = self.tx.one(f"SELECT id {ready_from_sql} LIMIT 1{self._skip_locked()}",
                              (timefmt.now(), *params))
            if row is None:
                return None
            try:
                return self.claim(row[0], assignee)
            except ConflictError:
                continue  # lost a race on a backend without a global claim lock
        return None

    def _skip_locked(self) -> str:
        return self.tx.skip_locked_clause

    # ------------------------------------------------------------ close/open
    def open_children(self, bead_id: str) -> list[str]:
        """Children of ``bead_id`` that are not closed."""
        return [r[0] for r in self.tx.query(
            "SELECT c.issue_id FROM dependencies c JOIN issues k ON k.id = c.issue_id "
            "WHERE c.depends_on_id = ? AND c.type = 'parent-child' AND k.status <> 'closed' "
            "ORDER BY c.issue_id", (bead_id,))]

    def has_open_child(self, bead_id: str) -> bool:
        """True when some child of ``bead_id`` is not closed (stops at the first one)."""
        return self.tx.one(
            "SELECT 1 FROM dependencies c JOIN issues k ON k.id = c.issue_id "
            "WHERE c.depends_on_id = ? AND c.type = 'parent-child' AND k.status <> 'closed' "
            "LIMIT 1", (bead_id,)) is not None

    def close(self, bead_id: str, reason: str | None = None, force: bool = False) -> Bead:
        """Close a bead.  Refused while it has open blockers or open children, unless forced.

        Closing the last open step of a molecule closes the molecule's root too,
        in this same transaction.
        """
        status = self.status_of(bead_id)
        if status == "closed":
            return self.get(bead_id)  # idempotent: a re-run step that closed stays closed
        if not force:
            blockers = self.open_blockers(bead_id)
            if blockers:
                raise ConflictError(
                    f"cannot close {bead_id}: blocked by open issue(s) {', '.join(blockers)} "
                    "(use --force to override)")
            kids = self.open_children(bead_id)
            if kids:
                more = f" and {len(kids) - 5} more" if len(kids) > 5 else ""
                raise ConflictError(
                    f"cannot close {bead_id}: it has open children {', '.join(kids[:5])}{more} "
                    "(use --force to override)")
        self.tx.execute(
            "UPDATE issues SET status = 'closed', closed_at = ?, close_reason = ?, updated_at = ? "
            "WHERE id = ?", (self._now, reason or None, self._now, bead_id))
        self.emit("bead.closed", bead_id, {"reason": reason} if reason else None)
        _ready.refresh(self.tx, _ready.seeds_for_status_change(self.tx, bead_id, status, "closed"))
        closed = self.get(bead_id)
        for parent in self.parents_of(bead_id):
            row = self.tx.one("SELECT issue_type, status FROM issues WHERE id = ?", (parent,))
            if (row and row[0] == "molecule" and row[1] != "closed"
                    and not self.has_open_child(parent)):
                self.close(parent, reason="all steps closed", force=True)
                # completion hooks, e.g. a formula's [squash] trigger = "on_complete"
                # squashes it now (a wisp's steps, this one included, are gone
                # afterwards: ``closed`` is returned); see ledger/completion.py
                from .completion import run_hooks

                run_hooks(self, parent)
        return closed

    def reopen(self, bead_id: str, reason: str | None = None) -> Bead:
        """Reopen a closed bead (status ``open``, ``closed_at`` cleared)."""
        status = self.status_of(bead_id)
        if status != "closed":
            raise ConflictError(f"cannot reopen {bead_id}: it is {status}, not closed")
        self.tx.execute(
            "UPDATE issues SET status = 'open', closed_at = NULL, close_reason = NULL, "
            "updated_at = ? WHERE id = ?", (self._now, bead_id))
        self.emit("bead.reopened", bead_id, {"reason": reason} if reason else None)
        _ready.refresh(self.tx, _ready.seeds_for_status_change(self.tx, bead_id, "closed", "open"))
        return self.get(bead_id)

    def delete(self, bead_id: str, cascade: bool = False) -> list[str]:
        """Delete a bead (and with ``cascade`` its descendants); ids are retired, never reused."""
        status = self.status_of(bead_id)
        kids = self.children_of(bead_id)
        if kids and not cascade:
            raise ConflictError(f"cannot delete {bead_id}: it has children (use --cascade)")
        deleted: list[str] = []
        for kid in kids:
            deleted += self.delete(kid, cascade=True)
        self_seeds = _ready.seeds_for_existence_change(self.tx, bead_id, status, created=False)
        parents = self.parents_of(bead_id)
        for sql in ("DELETE FROM issues WHERE id = ?", "DELETE FROM labels WHERE issue_id = ?",
                    "DELETE FROM comments WHERE issue_id = ?",
                    "DELETE FROM dependencies WHERE issue_id = ?",
                    "DELETE FROM child_counters WHERE parent_id = ?"):
            self.tx.execute(sql, (bead_id,))
        self.tx.execute("INSERT INTO retired_ids (id) VALUES (?) ON CONFLICT DO NOTHING",
                        (bead_id,))
        self.emit("bead.deleted", bead_id)
        self_seeds.discard(bead_id)
        self_seeds.update(w for p in parents for w in self._waiters(p))
        _ready.refresh(self.tx, self_seeds, [])
        return deleted + [bead_id]

    def _waiters(self, target: str) -> list[str]:
        return [r[0] for r in self.tx.query(
            "SELECT issue_id FROM dependencies WHERE depends_on_id = ? AND type = 'waits-for'",
            (target,))]

    # ----------------------------------------------------------- dependencies
    def add_dep(self, issue_id: str, depends_on_id: str, dep_type: str = "blocks",
                metadata: Mapping[str, Any] | None = None) -> bool:
        """``issue_id`` depends on ``depends_on_id``.  Returns False if the edge existed.

        A ``blocks``-like or ``parent-child`` edge that would close a cycle is refused.
        """
        dep_type = check_dep_type(dep_type)
        if issue_id == depends_on_id:
            raise CycleError(f"{issue_id} cannot depend on itself")
        remote = depends_on_id.startswith("gt://")  # another town's bead (federation)
        if remote and dep_type == "parent-child":
            raise UsageError(f"{depends_on_id}: another town's bead cannot be a parent")
        for bid in (issue_id, depends_on_id):
            if not (remote and bid == depends_on_id) and not self.exists(bid):
                raise NotFoundError(f"no issue found matching {bid!r}")
        if dep_type in _ready.BLOCKING_DEP_TYPES or dep_type == "parent-child":
            path = self.path_between(depends_on_id, issue_id, dep_type)
            if path:
                raise CycleError(
                    f"adding {issue_id} -> {depends_on_id} ({dep_type}) would create a cycle: "
                    + " -> ".join([issue_id, *path]))
        if dep_type in _ready.BLOCKING_DEP_TYPES:
            self._refuse_family_deadlock(issue_id, depends_on_id, dep_type)
        n = self.tx.execute(
            "INSERT INTO dependencies (issue_id, depends_on_id, type, created_at, created_by, "
            "metadata) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (issue_id, depends_on_id, dep_type, self._now, self.actor,
             dump_json(metadata) if metadata else None))
        if n == 0:
            return False
        self.emit("dep.added", issue_id, {"depends_on_id": depends_on_id, "type": dep_type})
        self._refresh_for_edge(issue_id, depends_on_id, dep_type)
        return True

    def remove_dep(self, issue_id: str, depends_on_id: str, dep_type: str | None = None) -> int:
        """Remove the edge(s) from ``issue_id`` to ``depends_on_id``; returns how many."""
        rows = self.tx.query(
            "SELECT type FROM dependencies WHERE issue_id = ? AND depends_on_id = ?",
            (issue_id, depends_on_id))
        types = [r[0] for r in rows if dep_type is None or r[0] == check_dep_type(dep_type)]
        if not types:
            raise NotFoundError(f"no dependency from {issue_id} to {depends_on_id}")
        for t in types:
            self.tx.execute("DELETE FROM dependencies WHERE issue_id = ? AND depends_on_id = ? "
                            "AND type = ?", (issue_id, depends_on_id, t))
            self.emit("dep.removed", issue_id, {"depends_on_id": depends_on_id, "type": t})
            self._refresh_for_edge(issue_id, depends_on_id, t)
        return len(types)

    def _refresh_for_edge(self, issue_id: str, target: str, dep_type: str) -> None:
        if dep_type in _ready.BLOCKING_DEP_TYPES:
            _ready.refresh(self.tx, [issue_id])
        elif dep_type == "parent-child":
            # the child's ancestry changed, and the parent's set of children changed
            _ready.refresh(self.tx, self._waiters(target), [issue_id])

    def ancestors(self, bead_id: str) -> list[str]:
        """Every ``parent-child`` ancestor of ``bead_id``, nearest first."""
        seen: list[str] = []
        frontier = [bead_id]
        while frontier:
            nxt = []
            for node in frontier:
                for parent in self.parents_of(node):
                    if parent not in seen and parent != bead_id:
                        seen.append(parent)
                        nxt.append(parent)
            frontier = nxt
        return seen

    def _refuse_family_deadlock(self, issue_id: str, target: str, dep_type: str) -> None:
        """A blocking edge between a bead and its own ancestor can never be released.

        A held ancestor holds its descendants (DESIGN §3.4) and a parent cannot
        close before its children, so either direction waits for ever.
        """
        if target in self.ancestors(issue_id):
            raise CycleError(
                f"refusing {issue_id} -> {target} ({dep_type}): {target} is an ancestor of "
                f"{issue_id}, which cannot finish before its own children (deadlock)")
        if issue_id in self.ancestors(target):
            raise CycleError(
                f"refusing {issue_id} -> {target} ({dep_type}): {issue_id} is an ancestor of "
                f"{target}, and a held parent holds its children (deadlock); children already "
                "finish before their parent closes")

    def path_between(self, start: str, goal: str, dep_type: str) -> list[str]:
        """A path start → … → goal over edges of the same family, or [] if none.

        Blocking types form one family (any mix of them can deadlock); parent-child
        is its own.
        """
        family = (_ready.BLOCKING_DEP_TYPES if dep_type in _ready.BLOCKING_DEP_TYPES
                  else ("parent-child",))
        marks = ", ".join("?" * len(family))
        prev: dict[str, str | None] = {start: None}
        frontier = [start]
        while frontier:
            nxt: list[str] = []
            for part in range(0, len(frontier), 400):
                chunk = frontier[part:part + 400]
                rows = self.tx.query(
                    f"SELECT issue_id, depends_on_id FROM dependencies WHERE issue_id IN "
                    f"({', '.join('?' * len(chunk))}) AND type IN ({marks})", (*chunk, *family))
                for src, dst in rows:
                    if dst in prev:
                        continue
                    prev[dst] = src
                    if dst == goal:
                        path = [dst]
                        node: str | None = src
                        while node is not None:
                            path.append(node)
                            node = prev[node]
                        return list(reversed(path))
                    nxt.append(dst)
            frontier = nxt
        return []

    # --------------------------------------------------------------- labels
    def _insert_label(self, bead_id: str, label: str) -> bool:
        label = label.strip()
        if not label or any(ch.isspace() for ch in label) or "," in label:
            raise ValidationError(f"invalid label {label!r}: no spaces or commas")
        return self.tx.execute("INSERT INTO labels (issue_id, label) VALUES (?, ?) "
                               "ON CONFLICT DO NOTHING", (bead_id, label)) == 1

    def add_label(self, bead_id: str, label: str) -> bool:
        """Add a label; False if it was already there."""
        self.status_of(bead_id)
        added = self._insert_label(bead_id, label)
        if added:
            self._touch(bead_id)
            self.emit("label.added", bead_id, {"label": label.strip()})
        return added

    def remove_label(self, bead_id: str, label: str) -> bool:
        """Remove a label; False if it was not there."""
        self.status_of(bead_id)
        removed = self.tx.execute("DELETE FROM labels WHERE issue_id = ? AND label = ?",
                                  (bead_id, label)) == 1
        if removed:
            self._touch(bead_id)
            self.emit("label.removed", bead_id, {"label": label})
        return removed

    def _touch(self, bead_id: str) -> None:
        self.tx.execute("UPDATE issues SET updated_at = ? WHERE id = ?", (self._now, bead_id))

    # -------------------------------------------------------------- comments
    def add_comment(self, bead_id: str, text: str, author: str | None = None) -> dict[str, Any]:
        """Append a comment to a bead and return it (beads' comment fields)."""
        self.status_of(bead_id)
        if not text.strip():
            raise ValidationError("comment text is empty")
        # integer comment ids are ledger-wide, as in beads; the last one is kept in
        # config so a comment costs one lookup, not a scan (import clears the key)
        last = self.tx.scalar("SELECT value FROM config WHERE key = 'last_comment_id'")
        if last is None:
            numeric = [int(r[0]) for r in self.tx.query("SELECT id FROM comments")
                       if str(r[0]).isdigit()]
            last = max(numeric, default=0)
        cid = str(int(last) + 1)
        self.kv_set("last_comment_id", cid, table="config")
        who = author or self.actor
        self.tx.execute("INSERT INTO comments (id, issue_id, author, text, created_at) "
                        "VALUES (?, ?, ?, ?, ?)", (cid, bead_id, who, text, self._now))
        self._touch(bead_id)
        self.emit("comment.added", bead_id, {"comment_id": int(cid)})
        return {"id": int(cid), "issue_id": bead_id, "author": who, "text": text,
                "created_at": self._now}

    # ------------------------------------------------------------- kv/config
    def kv_set(self, key: str, value: str, table: str = "kv") -> None:
        """Set a key in the key/value store (``table='config'`` for ledger config)."""
        if not key:
            raise ValidationError("key is empty")
        self.tx.execute(f"INSERT INTO {table} (key, value) VALUES (?, ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))
        if table == "kv":
            self.emit("kv.set", None, {"key": key})

    def kv_clear(self, key: str, table: str = "kv") -> bool:
        """Remove a key; False if it did not exist."""
        n = self.tx.execute(f"DELETE FROM {table} WHERE key = ?", (key,))
        if n and table == "kv":
            self.emit("kv.cleared", None, {"key": key})
        return n == 1

