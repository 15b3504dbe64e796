"""``bd update``'s logic: field changes, label diffs, appended notes, a claim.

One :class:`BeadUpdate` applies to one bead inside a caller's transaction
(:func:`apply_update`), or to several beads in one transaction
(:func:`update_beads`): an unknown id or a refused change leaves every bead as
it was.
"""

from __future__ import annotations

from ..errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only: `bd update` is a hot path
    from collections.abc import Iterable, Sequence
    from typing import Any

    from .core import Ledger
    from .model import Bead
    from .ops import Txn

__all__ = ["BeadUpdate", "apply_update", "update_beads", "diff_labels", "appended"]


class BeadUpdate:
    """What to change on a bead (beads' field names in ``fields``).

    ``append_notes`` is a line added to the notes (after ``fields["notes"]`` when
    both are given); ``claim`` claims the bead first; ``set_labels`` is the whole
    label set afterwards (None: labels as they are), then ``add_labels`` and
    ``remove_labels`` apply.
    """

    def __init__(self, fields: dict[str, Any] | None = None, *,
                 append_notes: str | None = None, claim: bool = False,
                 set_labels: Sequence[str] | None = None, add_labels: Sequence[str] = (),
                 remove_labels: Sequence[str] = ()) -> None:
        self.fields = dict(fields or {})
        self.append_notes = append_notes
        self.claim = claim
        self.set_labels = set_labels
        self.add_labels = add_labels
        self.remove_labels = remove_labels

    def check(self) -> None:
        """Refuse contradictory changes before anything is written."""
        if self.claim and "status" in self.fields:
            raise UsageError("--claim sets the status itself; drop --status")


def diff_labels(current: Iterable[str], wanted: Iterable[str]) -> tuple[list[str], list[str]]:
    """``(to remove, to add)``, each sorted, to turn ``current`` into ``wanted``."""
    have, want = set(current), set(wanted)
    return sorted(have - want), sorted(want - have)


def appended(notes: str | None, line: str) -> str:
    """``notes`` with ``line`` added on a line of its own."""
    return (notes + "\n" if notes else "") + line


def apply_update(t: Txn, bead_id: str, upd: BeadUpdate) -> Bead:
    """Apply ``upd`` to one bead inside the transaction ``t``; returns the bead after."""
    changes = dict(upd.fields)
    if upd.append_notes:
        base = changes["notes"] if "notes" in changes else t.get(bead_id).get("notes")
        changes["notes"] = appended(base, upd.append_notes)
    if upd.claim:
        t.claim(bead_id)
    if upd.set_labels is not None:
        remove, add = diff_labels(t.get(bead_id).get("labels") or [], upd.set_labels)
        for label in remove:
            t.remove_label(bead_id, label)
        for label in add:
            t.add_label(bead_id, label)
    for label in upd.add_labels:
        t.add_label(bead_id, label)
    for label in upd.remove_labels:
        t.remove_label(bead_id, label)
    return t.update(bead_id, **changes) if changes else t.get(bead_id)


def update_beads(ledger: Ledger, bead_ids: Sequence[str], upd: BeadUpdate) -> list[Bead]:
    """Apply ``upd`` to every bead (duplicates once) in one transaction."""
    upd.check()
    with ledger.transaction() as t:
        return [apply_update(t, b, upd) for b in dict.fromkeys(bead_ids)]
