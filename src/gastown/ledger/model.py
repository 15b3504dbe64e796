"""The ledger's vocabulary: fields, statuses, types and dependency types.

Field names are beads' JSON names (DESIGN §3.1) so that exports interoperate with
the Go and Rust ``bd``.  Which dependency types *block* is part of the ready-work
rule and lives in :mod:`gastown.ledger.ready`.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only: the hot path skips it
    from typing import Any


__all__ = [
    "STATUSES",
    "ISSUE_TYPES",
    "INFRA_TYPES",
    "DEP_TYPES",
    "TEXT_FIELDS",
    "EXPORT_ORDER",
    "Bead",
    "normalize_dep_type",
    "MAX_JSON_DEPTH",
    "json_depth",
]

STATUSES = ("open", "in_progress", "blocked", "deferred", "closed", "pinned", "hooked")

ISSUE_TYPES = (
    "task", "bug", "feature", "epic", "chore", "decision", "spike", "story", "milestone",
    "message", "molecule", "gate", "merge-request", "convoy", "agent", "role", "rig", "event",
)

#: types that are machinery, never offered as ready work (DESIGN §3.4)
INFRA_TYPES = (
    "merge-request", "gate", "molecule", "message", "agent", "role", "rig", "convoy", "event",
)

#: the dependency types beads knows; any other non-empty name is accepted as custom
DEP_TYPES = (
    "blocks", "parent-child", "conditional-blocks", "waits-for", "related", "relates-to",
    "discovered-from", "replies-to", "duplicates", "supersedes", "tracks", "until",
    "caused-by", "validates", "authored-by", "assigned-to", "approved-by", "attests",
    "delegated-from",
)

#: plain text columns, stored NOT NULL with '' for empty
TEXT_FIELDS = ("description", "design", "acceptance_criteria", "notes")

#: nullable string columns
OPTIONAL_FIELDS = (
    "assignee", "owner", "created_by", "started_at", "closed_at", "close_reason", "due_at",
    "defer_until", "external_ref", "source_formula",
)

#: the order keys are written in JSONL and ``--json`` (beads' struct order, then ours)
EXPORT_ORDER = (
    "id", "title", "description", "design", "acceptance_criteria", "notes", "status",
    "priority", "issue_type", "assignee", "owner", "estimated_minutes", "created_at",
    "created_by", "updated_at", "started_at", "closed_at", "close_reason", "due_at",
    "defer_until", "external_ref", "source_formula", "pinned", "ephemeral", "is_template",
    "labels", "metadata",
)

#: the columns of the ``issues`` table that hold bead fields, in table order
COLUMNS = (
    "id", "title", "description", "design", "acceptance_criteria", "notes", "status",
    "priority", "issue_type", "assignee", "owner", "created_by", "created_at", "updated_at",
    "started_at", "closed_at", "close_reason", "due_at", "defer_until", "external_ref",
    "metadata", "pinned", "ephemeral", "is_template", "source_formula", "estimated_minutes",
    "extra",
)

#: JSON values (metadata, import lines) may nest at most this deep: deeper values
#: cannot be printed, indexed or read back by every backend's JSON functions
MAX_JSON_DEPTH = 64


def json_depth(value: Any, limit: int = MAX_JSON_DEPTH) -> int:
    """How deeply ``value`` nests (a scalar is 0), counted without recursion.

    Counting stops once ``limit`` is passed, so the answer is at most ``limit + 1``.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children: Any = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        depth += 1
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth) for child in children)
    return deepest


_DEP_ALIASES = {d.replace("-", "_"): d for d in DEP_TYPES}
_DEP_ALIASES.update({"blocked-by": "blocks", "blocked_by": "blocks", "blockedby": "blocks",
                     "parent": "parent-child", "child": "parent-child",
                     "parentchild": "parent-child", "discoveredfrom": "discovered-from"})


def normalize_dep_type(name: str) -> str:
    """Map the spellings found in older exports (``parent_child``) to beads' names.

    Unknown names are custom types and are kept as they are (stripped).
    """
    name = name.strip()
    lowered = name.lower()
    if lowered in DEP_TYPES:
        return lowered
    return _DEP_ALIASES.get(lowered, _DEP_ALIASES.get(lowered.replace("-", "_"), name))


if TYPE_CHECKING:
    _BeadBase = dict[str, Any]
else:
    _BeadBase = dict


class Bead(_BeadBase):
    """A bead as a plain dict with beads' field names, plus attribute access.

    It *is* the JSON object ``bd show --json`` prints, so it can be dumped as is.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            if name in COLUMNS or name in ("labels", "dependencies", "comments", "dependents"):
                return None
            raise AttributeError(name) from None

    @property
    def is_closed(self) -> bool:
        """True when the bead is closed."""
        return self.get("status") == "closed"
