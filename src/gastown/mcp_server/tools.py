"""The MCP tool set as plain library code: one open ledger, identity passed per call.

:class:`LedgerTools` holds one :class:`~gastown.ledger.core.Ledger` (opened
once, its connection reused by every call) and, optionally, the town it
belongs to.  Each method is one tool: it takes typed arguments, returns a
JSON-ready ``dict`` and raises a :class:`~gastown.errors.GastownError` for a
caller's mistake.  Who is acting is an argument of every call that needs it
(the server fills in its configured identity), never read from a global.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, UsageError, ValidationError
from ..ledger.core import Filter

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from ..ledger.model import Bead
    from ..town.core import Town

__all__ = ["BRIEF_FIELDS", "MAX_PAGE", "LedgerTools", "brief"]

#: the fields of a brief result (``full`` gives the whole bead)
BRIEF_FIELDS = ("id", "title", "status", "priority", "assignee")
#: the largest page ``list`` and ``ready`` hand out
MAX_PAGE = 200
_UPDATABLE = ("title", "description", "notes", "design", "acceptance_criteria", "status",
              "priority", "assignee", "issue_type")


def brief(bead: Bead | dict[str, Any]) -> dict[str, Any]:
    """A bead reduced to :data:`BRIEF_FIELDS` (assignee ``None`` when unassigned)."""
    out = {k: bead.get(k) for k in BRIEF_FIELDS}
    out["assignee"] = out["assignee"] or None
    return out


def _shape(bead: Bead | dict[str, Any], full: bool) -> dict[str, Any]:
    return dict(bead) if full else brief(bead)


def _page(limit: int, offset: int) -> tuple[int, int]:
    if not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit {limit!r}: expected 1 to {MAX_PAGE}")
    if not isinstance(offset, int) or offset < 0:
        raise ValidationError(f"offset {offset!r}: expected 0 or more")
    return limit, offset


def _paged(items: list[Bead], total: int, offset: int, full: bool) -> dict[str, Any]:
    end = offset + len(items)
    return {"total": total, "offset": offset, "count": len(items),
            "next_offset": end if end < total else None,
            "items": [_shape(b, full) for b in items]}


class LedgerTools:
    """The tools of ``gt mcp`` over one open ledger (and its town, when there is one)."""

    def __init__(self, ledger: Ledger, actor: str, town: Town | None = None) -> None:
        self.ledger = ledger
        self.actor = actor
        self.town = town

    def shutdown(self) -> None:
        """Close the ledger (the server is done)."""
        self.ledger.close()

    def _who(self, actor: str | None) -> str:
        who = (actor or "").strip() or self.actor
        if "\n" in who:
            raise ValidationError("actor must be one line")
        return who

    def _id(self, partial: str) -> str:
        if not isinstance(partial, str) or not partial.strip():
            raise ValidationError("id is required")
        return self.ledger.resolve_id(partial.strip())

    # ------------------------------------------------------------- reads
    def prime(self, actor: str | None = None, full: bool = False) -> dict[str, Any]:
        """Who you are, the work you hold, what is ready and what to do next."""
        who = self._who(actor)
        agent = self.town.agent_by_address(who) if self.town is not None else None
        if self.town is not None and agent is not None:
            from ..town.prime import prime_data

            data = prime_data(self.town, self.ledger, agent)
            if not full:
                data = {"agent": data["agent"], "actor": data["actor"], "role": data["role"],
                        "hook": brief(data["hook"]) if data["hook"] else None,
                        "step": brief(data["step"]) if data["step"] else None,
                        "mail": len(data["mail"]), "instruction": data["instruction"]}
            return data
        mine = self.ledger.list(Filter(status=["in_progress", "hooked"], assignee=who))
        ready = self.ledger.ready(limit=5)
        if mine:
            todo = (f"You hold {mine[0]['id']}: finish it, then close it "
                    "(`close`); `update` records notes on the way.")
        elif ready:
            todo = (f"Nothing held. Pick from `ready` (top: {ready[0]['id']}), `claim` it, "
                    "do it, then `close` it.")
        else:
            todo = "Nothing held and nothing ready: `create` work or check `list`."
        return {"actor": who, "holding": [_shape(b, full) for b in mine],
                "ready_top": [_shape(b, full) for b in ready], "instruction": todo}

    def ready(self, limit: int = 20, offset: int = 0, assignee: str | None = None,
              unassigned: bool = False, full: bool = False) -> dict[str, Any]:
        """Open beads with nothing blocking them, in ready order, one page at a time."""
        limit, offset = _page(limit, offset)
        f = Filter(assignee=assignee or None, unassigned=unassigned)
        total = self.ledger.ready_count(f)
        beads = self.ledger.ready(f, limit=offset + limit)[offset:] if offset < total else []
        return _paged(beads, total, offset, full)

    def list(self, status: str | None = None, assignee: str | None = None,
             label: str | None = None, query: str | None = None, issue_type: str | None = None,
             limit: int = 50, offset: int = 0, full: bool = False) -> dict[str, Any]:
        """Beads matching a filter (closed ones only when asked for), one page at a time."""
        from ..ledger.model import STATUSES

        limit, offset = _page(limit, offset)
        if status not in (None, "", "all") and status not in STATUSES:
            raise ValidationError(f"status {status!r}: expected one of "
                                  f"{', '.join(STATUSES)} or all")
        f = Filter(status=[status] if status and status != "all" else None,
                   include_closed=status == "all", assignee=assignee or None,
                   labels_all=[label] if label else None, text=query or None,
                   issue_type=[issue_type] if issue_type else None)
        total = self.ledger.count(f)
        beads = self.ledger.list(f, limit=offset + limit)[offset:] if offset < total else []
        return _paged(beads, total, offset, full)

    def show(self, id: str, full: bool = False) -> dict[str, Any]:
        """One bead; ``full`` adds every field, its dependencies, dependents and comments."""
        bead_id = self._id(id)
        if full:
            return dict(self.ledger.show(bead_id))
        return brief(self.ledger.get(bead_id))

    # ------------------------------------------------------------ writes
    def create(self, title: str, description: str = "", priority: int = 2,
               issue_type: str = "task", labels: builtins.list[str] | None = None,
               parent: str | None = None, actor: str | None = None,
               full: bool = False) -> dict[str, Any]:
        """Create a bead (a child of ``parent`` when given)."""
        who = self._who(actor)
        parent_id = self._id(parent) if parent else None
        with self.ledger.transaction(who) as t:
            bead = t.create(title, description=description or "", priority=priority,
                            issue_type=issue_type, labels=labels or (), parent=parent_id,
                            created_by=who)
        return _shape(bead, full)

    def claim(self, id: str, actor: str | None = None, full: bool = False) -> dict[str, Any]:
        """Atomically take an open, unassigned bead: in_progress, assigned to you."""
        who = self._who(actor)
        bead_id = self._id(id)
        with self.ledger.transaction(who) as t:
            bead = t.claim(bead_id, who)
        return _shape(bead, full)

    def update(self, id: str, changes: dict[str, Any], actor: str | None = None,
               full: bool = False) -> dict[str, Any]:
        """Set fields of a bead (only :data:`_UPDATABLE` ones); ``notes`` are replaced."""
        unknown = sorted(set(changes) - set(_UPDATABLE))
        if unknown:
            raise UsageError(f"cannot update {', '.join(unknown)}: allowed are "
                             f"{', '.join(_UPDATABLE)}")
        if not changes:
            raise UsageError("nothing to update: pass at least one field")
        if changes.get("status") == "closed":
            raise UsageError("update cannot close a bead: use close (it checks blockers)")
        bead_id = self._id(id)
        with self.ledger.transaction(self._who(actor)) as t:
            bead = t.update(bead_id, **changes)
        return _shape(bead, full)

    def close(self, id: str, reason: str | None = None, actor: str | None = None,
              full: bool = False) -> dict[str, Any]:
        """Close a bead (refused while it has open blockers or open children)."""
        bead_id = self._id(id)
        with self.ledger.transaction(self._who(actor)) as t:
            bead = t.close(bead_id, reason=reason or None)
        return _shape(bead, full)

    def dep(self, action: str, issue_id: str, depends_on_id: str, dep_type: str = "blocks",
            actor: str | None = None) -> dict[str, Any]:
        """Add or remove the edge ``issue_id`` depends on ``depends_on_id``."""
        if action not in ("add", "remove"):
            raise ValidationError(f"action {action!r}: expected add or remove")
        a, b = self._id(issue_id), self._id(depends_on_id)
        with self.ledger.transaction(self._who(actor)) as t:
            if action == "add":
                changed = bool(t.add_dep(a, b, dep_type))
            else:
                removed = t.remove_dep(a, b, dep_type or None)
                if not removed:
                    raise NotFoundError(f"no {dep_type} edge from {a} to {b}")
                changed = True
        return {"action": action, "issue_id": a, "depends_on_id": b, "type": dep_type,
                "changed": changed}
