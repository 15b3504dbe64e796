"""Which rig a bead belongs to, for its ``gt://`` address (standard library only:
an agent's ``bd close`` reads it when it writes a chain record)."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only: the hot path skips it
    from collections.abc import Mapping
    from typing import Any

__all__ = ["NO_RIG", "rig_of"]

#: the rig segment of a bead that belongs to no rig
NO_RIG = "_"


def rig_of(bead: Mapping[str, Any]) -> str:
    """The rig a bead belongs to: ``metadata.rig``, else a ``rig:NAME`` label, else ``_``."""
    meta = bead.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("rig"), str) and meta["rig"]:
        return str(meta["rig"])
    for label in bead.get("labels") or ():
        if isinstance(label, str) and label.startswith("rig:") and len(label) > 4:
            return label[4:]
    return NO_RIG
