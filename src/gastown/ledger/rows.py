"""Turning table rows into beads-shaped objects, and back.

Empty values are left out of objects, as beads' Go structs do with
``omitempty``; unknown fields kept from an import (``extra``) follow the known
ones in the order they came.
"""

from __future__ import annotations

import json

from .model import COLUMNS, EXPORT_ORDER, Bead

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only: the hot path skips it
    from typing import Any

__all__ = ["SELECT_COLUMNS", "bead_from_row", "dump_json", "load_json"]

SELECT_COLUMNS = ", ".join(COLUMNS)
_INDEX = {name: i for i, name in enumerate(COLUMNS)}
_BOOLS = ("pinned", "ephemeral", "is_template")


def dump_json(value: Any) -> str:
    """Compact JSON text with key order kept (how metadata and payloads are stored)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def load_json(text: str | None) -> Any:
    """Parse stored JSON text; None stays None."""
    return None if text is None else json.loads(text)


def bead_from_row(row: tuple[Any, ...], labels: list[str] | None = None) -> Bead:
    """A :class:`Bead` from a row selected with :data:`SELECT_COLUMNS`."""
    bead = Bead()
    for key in EXPORT_ORDER:
        if key == "labels":
            if labels:
                bead["labels"] = list(labels)
            continue
        value = row[_INDEX[key]]
        if key in _BOOLS:
            if value:
                bead[key] = True
        elif key == "metadata":
            if value:
                bead["metadata"] = json.loads(value)
        elif key == "priority":
            bead[key] = int(value)
        elif value is not None and value != "":
            bead[key] = value
    extra = row[_INDEX["extra"]]
    if extra:
        for key, value in json.loads(extra).items():
            bead.setdefault(key, value)
    return bead
