"""The ready-work rule (DESIGN §3.4), in one place.

Definitions
-----------
* An edge **blocks** when its type is in :data:`BLOCKING_DEP_TYPES` and its target
  exists and is *active* (status not in :data:`DONE_STATUSES`).  A ``waits-for``
  edge also blocks while any child of its target is not closed.  Edges to unknown
  or deleted targets never block; other edge types never block.
* A blocking edge to **another town's bead** (a target starting with ``gt://``,
  stored in the canonical rig-less form ``gt://E/C/_/ID``) blocks until that bead
  is known *closed as of the last sync*: the sync keeps the key
  ``fed.closed.<target>`` in ``kv`` (:data:`REMOTE_CLOSED_PREFIX`) and calls
  :func:`set_remote_closed` in its own transaction.  Unknown remote beads hold.
* A bead is **self-held** if it has a blocking edge, or its status is in
  :data:`HOLDING_STATUSES`.  A bead is **held** if it or any ``parent-child``
  ancestor is self-held.  Its **hold_until** is the latest ``defer_until`` of it and
  its ancestors: while that lies in the future the bead is held too.
* A bead is **ready** when its status is ``open``, it is not pinned, ephemeral or a
  template, its type is not infrastructure, it is not held and ``hold_until`` has
  passed.  Order: priority, then ``created_at`` (oldest first), then id.

How it is kept
--------------
The ``self_held``, ``held`` and ``hold_until`` columns are updated by
:func:`refresh` inside the same transaction as the change that can alter them,
so ``ready`` is one indexed query with no recursion and nothing to go stale.
:func:`recompute_all` rebuilds them from scratch (after a bulk import, or by
``bd doctor --fix``), and :func:`reference_ready` is an independent pure-Python
statement of the rule that tests compare both against.
"""

from __future__ import annotations

from .model import INFRA_TYPES
from .store import Tx

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only: the hot path skips it
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any

__all__ = [
    "BLOCKING_DEP_TYPES",
    "DONE_STATUSES",
    "HOLDING_STATUSES",
    "READY_WHERE",
    "BLOCKED_WHERE",
    "refresh",
    "recompute_all",
    "seeds_for_status_change",
    "seeds_for_existence_change",
    "reference_ready",
    "reference_held",
    "REMOTE_CLOSED_PREFIX",
    "set_remote_closed",
]

BLOCKING_DEP_TYPES = ("blocks", "conditional-blocks", "waits-for")
#: a target in one of these statuses no longer blocks anything
DONE_STATUSES = ("closed", "pinned")
#: statuses that hold a bead (and its descendants) by themselves
HOLDING_STATUSES = ("blocked", "deferred")

#: kv key prefix the sync keeps for each remote bead closed as of the last sync
REMOTE_CLOSED_PREFIX = "fed.closed."

_q = ", ".join
_BLOCKING = _q(f"'{t}'" for t in BLOCKING_DEP_TYPES)
_DONE = _q(f"'{s}'" for s in DONE_STATUSES)
_HOLDING = _q(f"'{s}'" for s in HOLDING_STATUSES)
_INFRA = _q(f"'{t}'" for t in INFRA_TYPES)

#: is the bead aliased ``i`` self-held?  (one boolean SQL expression)
SELF_HELD_SQL = f"""(
    i.status IN ({_HOLDING})
    OR EXISTS (SELECT 1 FROM dependencies d JOIN issues t ON t.id = d.depends_on_id
               WHERE d.issue_id = i.id AND d.type IN ({_BLOCKING})
                 AND t.status NOT IN ({_DONE}))
    OR EXISTS (SELECT 1 FROM dependencies d
               JOIN dependencies c ON c.depends_on_id = d.depends_on_id AND c.type = 'parent-child'
               JOIN issues k ON k.id = c.issue_id
               WHERE d.issue_id = i.id AND d.type = 'waits-for' AND k.status <> 'closed'
                 AND EXISTS (SELECT 1 FROM issues t WHERE t.id = d.depends_on_id))
    OR EXISTS (SELECT 1 FROM dependencies d
               WHERE d.issue_id = i.id AND d.type IN ({_BLOCKING})
                 AND substr(d.depends_on_id, 1, 5) = 'gt://'
                 AND NOT EXISTS (SELECT 1 FROM kv r
                                 WHERE r.key = '{REMOTE_CLOSED_PREFIX}' || d.depends_on_id))
)"""

#: the ready rule as a WHERE clause over ``issues``; one parameter: now (RFC 3339)
READY_WHERE = (
    "status = 'open' AND held = 0 AND pinned = 0 AND ephemeral = 0 AND is_template = 0 "
    f"AND issue_type NOT IN ({_INFRA}) AND (hold_until IS NULL OR hold_until <= ?)"
)

#: open-ish, non-infrastructure beads that are not ready only because they are held;
#: one parameter: now
# a deferred bead is on ice, not blocked: it is counted apart (as upstream does)
BLOCKED_WHERE = (
    "status IN ('open', 'blocked') AND pinned = 0 AND ephemeral = 0 "
    f"AND is_template = 0 AND issue_type NOT IN ({_INFRA}) "
    "AND (held = 1 OR (hold_until IS NOT NULL AND hold_until > ?))"
)

READY_ORDER = "priority, created_at, id"


def _chunks(ids: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def _in(n: int) -> str:
    return "(" + ",".join("?" * n) + ")"


def seeds_for_status_change(tx: Tx, bead_id: str, old: str | None, new: str | None) -> set[str]:
    """Beads whose self-held flag may change when ``bead_id`` goes from ``old`` to ``new``.

    ``None`` stands for "does not exist" (creation and deletion).
    """
    seeds = {bead_id} if new is not None else set()
    old_active = old is not None and old not in DONE_STATUSES
    new_active = new is not None and new not in DONE_STATUSES
    if old_active != new_active or (old is None) != (new is None):
        seeds.update(r[0] for r in tx.query(
            f"SELECT issue_id FROM dependencies WHERE depends_on_id = ? AND type IN ({_BLOCKING})",
            (bead_id,)))
    if (old == "closed") != (new == "closed") or (old is None) != (new is None):
        # a child's closedness opens or shuts its parents' waits-for gates
        seeds.update(r[0] for r in tx.query(
            "SELECT w.issue_id FROM dependencies pc JOIN dependencies w "
            "ON w.depends_on_id = pc.depends_on_id AND w.type = 'waits-for' "
            "WHERE pc.issue_id = ? AND pc.type = 'parent-child'", (bead_id,)))
    return seeds


def set_remote_closed(tx: Tx, target: str, closed: bool) -> int:
    """Record whether remote bead ``target`` (canonical ``gt://E/C/_/ID``) is closed,
    and refresh the holds of the beads that depend on it, in ``tx``; beads re-checked."""
    key = REMOTE_CLOSED_PREFIX + target
    was = tx.one("SELECT 1 FROM kv WHERE key = ?", (key,)) is not None
    if was == closed:
        return 0
    if closed:
        tx.execute("INSERT INTO kv (key, value) VALUES (?, '1')", (key,))
    else:
        tx.execute("DELETE FROM kv WHERE key = ?", (key,))
    seeds = [r[0] for r in tx.query(
        f"SELECT issue_id FROM dependencies WHERE depends_on_id = ? AND type IN ({_BLOCKING})",
        (target,))]
    if seeds:
        refresh(tx, seeds)
    return len(seeds)


def seeds_for_existence_change(tx: Tx, bead_id: str, status: str | None,
                               created: bool) -> set[str]:
    """Self-held seeds when ``bead_id`` (with ``status``) is created or deleted."""
    if created:
        return seeds_for_status_change(tx, bead_id, None, status)
    return seeds_for_status_change(tx, bead_id, status, None)


def _recompute_self(tx: Tx, ids: Sequence[str]) -> list[str]:
    changed: list[str] = []
    for part in _chunks(sorted(set(ids))):
        rows = tx.query(
            f"SELECT i.id, i.self_held, CASE WHEN {SELF_HELD_SQL} THEN 1 ELSE 0 END "
            f"FROM issues i WHERE i.id IN {_in(len(part))}", part)
        for bead_id, old, new in rows:
            if int(old) != int(new):
                tx.execute("UPDATE issues SET self_held = ? WHERE id = ?", (new, bead_id))
                changed.append(bead_id)
    return changed


def _propagate(tx: Tx, ids: Iterable[str]) -> None:
    """Recompute ``held``/``hold_until`` for ``ids`` and, where they change, their subtrees."""
    work = list(dict.fromkeys(ids))
    # a parent-child cycle can only come from a hand-edited import; the budget
    # guarantees termination even then
    budget = 64 + 8 * len(work)
    while work and budget > 0:
        budget -= 1
        bead_id = work.pop()
        row = tx.one(
            "SELECT i.self_held, i.defer_until, i.held, i.hold_until, "
            " (SELECT MAX(p.held) FROM dependencies d JOIN issues p ON p.id = d.depends_on_id "
            "   WHERE d.issue_id = i.id AND d.type = 'parent-child'), "
            " (SELECT MAX(p.hold_until) FROM dependencies d "
            "   JOIN issues p ON p.id = d.depends_on_id "
            "   WHERE d.issue_id = i.id AND d.type = 'parent-child') "
            "FROM issues i WHERE i.id = ?", (bead_id,))
        if row is None:
            continue
        self_held, defer_until, held, hold_until, parent_held, parent_until = row
        new_held = 1 if (int(self_held) or int(parent_held or 0)) else 0
        candidates = [v for v in (defer_until, parent_until) if v]
        new_until = max(candidates) if candidates else None
        if new_held == int(held) and new_until == hold_until:
            continue
        tx.execute("UPDATE issues SET held = ?, hold_until = ? WHERE id = ?",
                   (new_held, new_until, bead_id))
        children = tx.query("SELECT issue_id FROM dependencies "
                            "WHERE depends_on_id = ? AND type = 'parent-child'", (bead_id,))
        work.extend(c[0] for c in children)
        budget += len(children)


def refresh(tx: Tx, self_seeds: Iterable[str] = (), tree_seeds: Iterable[str] = ()) -> None:
    """Bring the ready state up to date after a change, inside the change's transaction.

    ``self_seeds``: beads whose own blocking edges or status may have changed.
    ``tree_seeds``: beads whose ancestry or ``defer_until`` may have changed.
    """
    changed = _recompute_self(tx, list(self_seeds))
    targets = list(dict.fromkeys([*changed, *tree_seeds]))
    if targets:
        _propagate(tx, targets)


def recompute_all(tx: Tx) -> int:
    """Rebuild the ready state of every bead from scratch; returns beads changed.

    Used after bulk imports and by ``bd doctor --fix``; also the oracle that the
    property tests compare the incremental path with.
    """
    before = tx.query("SELECT id, self_held, held, hold_until FROM issues")
    tx.execute(f"UPDATE issues SET self_held = CASE WHEN {SELF_HELD_SQL.replace('i.', 'issues.')} "
               "THEN 1 ELSE 0 END")
    tx.execute("UPDATE issues SET held = self_held, hold_until = defer_until")
    # push holds down one generation per pass; depth is small, so few passes
    for _ in range(10_000):
        n = tx.execute(
            "UPDATE issues SET held = 1 WHERE held = 0 AND EXISTS ("
            " SELECT 1 FROM dependencies d JOIN issues p ON p.id = d.depends_on_id"
            " WHERE d.issue_id = issues.id AND d.type = 'parent-child' AND p.held = 1)")
        if n == 0:
            break
    for _ in range(10_000):
        n = tx.execute(
            "UPDATE issues SET hold_until = ("
            " SELECT MAX(p.hold_until) FROM dependencies d JOIN issues p ON p.id = d.depends_on_id"
            " WHERE d.issue_id = issues.id AND d.type = 'parent-child')"
            " WHERE EXISTS ("
            " SELECT 1 FROM dependencies d JOIN issues p ON p.id = d.depends_on_id"
            " WHERE d.issue_id = issues.id AND d.type = 'parent-child'"
            " AND p.hold_until IS NOT NULL"
            " AND (issues.hold_until IS NULL OR p.hold_until > issues.hold_until))")
        if n == 0:
            break
    after = {r[0]: r[1:] for r in tx.query("SELECT id, self_held, held, hold_until FROM issues")}
    return sum(1 for r in before if after.get(r[0]) != tuple(r[1:]))


# --------------------------------------------------------------------------------------
# The reference statement of the rule: plain Python over plain data, no SQL.


def reference_held(beads: Mapping[str, Mapping[str, Any]],
                   deps: Iterable[tuple[str, str, str]], now: str,
                   remote_closed: Iterable[str] = ()) -> dict[str, bool]:
    """Whether each bead is held, computed from scratch (tests and ``doctor`` use it).

    ``beads`` maps id → fields (``status``, ``defer_until``); ``deps`` are
    ``(issue_id, depends_on_id, type)`` triples; ``remote_closed`` the ``gt://``
    targets known closed as of the last sync.
    """
    closed_remote = set(remote_closed)
    edges = list(deps)
    parents: dict[str, list[str]] = {}
    children: dict[str, list[str]] = {}
    for src, dst, typ in edges:
        if typ == "parent-child":
            parents.setdefault(src, []).append(dst)
            children.setdefault(dst, []).append(src)

    def active(bid: str) -> bool:
        return bid in beads and beads[bid]["status"] not in DONE_STATUSES

    self_held = {bid: b["status"] in HOLDING_STATUSES
                 or bool(b.get("defer_until") and b["defer_until"] > now)
                 for bid, b in beads.items()}
    for src, dst, typ in edges:
        if (src in beads and typ in BLOCKING_DEP_TYPES and dst.startswith("gt://")
                and dst not in closed_remote):
            self_held[src] = True
        if src not in beads or typ not in BLOCKING_DEP_TYPES or dst not in beads:
            continue
        if active(dst):
            self_held[src] = True
        if typ == "waits-for" and any(
                c in beads and beads[c]["status"] != "closed" for c in children.get(dst, ())):
            self_held[src] = True

    memo: dict[str, bool] = {}

    def held(bid: str, seen: frozenset[str] = frozenset()) -> bool:
        if bid in memo:
            return memo[bid]
        result = self_held[bid] or any(
            held(p, seen | {bid}) for p in parents.get(bid, ()) if p in beads and p not in seen)
        memo[bid] = result
        return result

    return {bid: held(bid) for bid in beads}


def reference_ready(beads: Mapping[str, Mapping[str, Any]],
                    deps: Iterable[tuple[str, str, str]], now: str) -> list[str]:
    """The ready ids in ready order, computed from scratch by the rule's definition."""
    held = reference_held(beads, deps, now)
    ready = [bid for bid, b in beads.items()
             if b["status"] == "open" and not b.get("pinned") and not b.get("ephemeral")
             and not b.get("is_template") and b.get("issue_type", "task") not in INFRA_TYPES
             and not held[bid]]
    ready.sort(key=lambda bid: (beads[bid].get("priority", 2), beads[bid]["created_at"], bid))
    return ready
