"""Convoys: a bead that tracks a batch of related beads and lands when all are done.

A convoy is a bead of type ``convoy`` with a ``tracks`` edge to every bead it
follows (``tracks`` never blocks anything).  It *lands* -- closes, with a
``convoy.landed`` event and a mail to whoever it notifies, all in one
transaction -- once every tracked bead is closed.  A tracked bead that could be
worked on but that nobody holds is *stranded*: the controller reports it and
slings it to the convoy's target (a pool, a rig or an agent) when a worker is
free.  ``gt sling A B C TARGET`` makes a convoy for its batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, UsageError
from ..ledger.query import Filter

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from ..ledger.model import Bead
    from ..ledger.ops import Txn
    from ..town.core import Town

__all__ = ["create_convoy", "create_convoy_in", "add_to_convoy", "convoy_status",
           "list_convoys", "land_ready", "stranded", "sling_batch", "tracked"]


def _get_convoy(led: Ledger, convoy_id: str) -> Bead:
    bead = led.get(led.resolve_id(convoy_id))
    if bead.get("issue_type") != "convoy":
        raise NotFoundError(f"{bead['id']} is not a convoy")
    return bead


def create_convoy(led: Ledger, title: str, beads: list[str] | None = None, *,
                  target: str | None = None, notify: str | None = None) -> Bead:
    """A new convoy tracking ``beads`` (one transaction with its event)."""
    ids = [led.resolve_id(b) for b in beads or []]
    with led.transaction() as t:
        return create_convoy_in(t, title, ids, target=target, notify=notify)


def create_convoy_in(t: Txn, title: str, ids: list[str], *, target: str | None = None,
                     notify: str | None = None) -> Bead:
    """:func:`create_convoy` inside a caller's transaction (``ids`` are full bead ids)."""
    meta: dict[str, Any] = {}
    if target:
        meta["target"] = target
    if notify:
        meta["notify"] = notify
    convoy = t.create(title, issue_type="convoy", metadata=meta or None,
                      deps=[("tracks", b) for b in dict.fromkeys(ids)])
    t.emit("convoy.created", convoy["id"], {"title": title, "beads": ids, "target": target})
    return convoy


def add_to_convoy(led: Ledger, convoy_id: str, beads: list[str]) -> Bead:
    """Track more beads; a convoy that had landed is open again."""
    convoy = _get_convoy(led, convoy_id)
    ids = [led.resolve_id(b) for b in beads]
    if not ids:
        raise UsageError("name at least one bead to add")
    with led.transaction() as t:
        if convoy["status"] == "closed":
            t.reopen(convoy["id"], reason="more work added")
        for bead_id in ids:
            t.add_dep(convoy["id"], bead_id, "tracks")
        t.emit("convoy.added", convoy["id"], {"beads": ids})
        return t.get(convoy["id"])


def tracked(led: Ledger, convoy_id: str) -> list[dict[str, Any]]:
    """The beads a convoy tracks: id, title, status, assignee, type, held."""
    with led.snapshot() as r:
        return r.tracked_beads(convoy_id)


def _is_stranded(bead: dict[str, Any]) -> bool:
    """Open, nobody holds it, nothing holds it back: work waiting for a worker."""
    return bead["status"] == "open" and not bead["assignee"] and not bead["held"]


def convoy_status(led: Ledger, convoy_id: str) -> dict[str, Any]:
    """A convoy with its tracked beads, progress and stranded work."""
    convoy = _get_convoy(led, convoy_id)
    beads = tracked(led, convoy["id"])
    closed = sum(1 for b in beads if b["status"] == "closed")
    meta = convoy.get("metadata") or {}
    return {"id": convoy["id"], "title": convoy["title"], "status": convoy["status"],
            "landed": convoy["status"] == "closed", "target": meta.get("target"),
            "total": len(beads), "closed": closed, "beads": beads,
            "stranded": [b["id"] for b in beads if _is_stranded(b)],
            "created_at": convoy.get("created_at"), "closed_at": convoy.get("closed_at")}


def list_convoys(led: Ledger, include_closed: bool = False) -> list[dict[str, Any]]:
    """Convoys, newest first, with their progress."""
    beads = led.list(Filter(issue_type=["convoy"], include_closed=include_closed),
                     sort="created", reverse=True)
    out = []
    for c in beads:
        status = convoy_status(led, c["id"])
        status.pop("beads")
        out.append(status)
    return out


def land_ready(town: Town, led: Ledger) -> list[str]:
    """Land every open convoy whose tracked beads are all closed; returns their ids.

    Landing is one transaction: the close, the ``convoy.landed`` event and the
    mail commit together, and a convoy already closed is skipped, so a
    controller restarted mid-way lands each convoy exactly once.
    """
    from ..town.mail import send_txn

    landed = []
    for convoy in led.list(Filter(issue_type=["convoy"], status=["open", "in_progress"])):
        beads = tracked(led, convoy["id"])
        if not beads or any(b["status"] != "closed" for b in beads):
            continue
        meta = convoy.get("metadata") or {}
        notify = str(meta.get("notify") or convoy.get("created_by") or "")
        with led.transaction() as t:
            if t.status_of(convoy["id"]) == "closed":
                continue  # landed by someone else meanwhile
            t.close(convoy["id"], reason="landed: every tracked bead is closed", force=True)
            t.emit("convoy.landed", convoy["id"], {"title": convoy["title"],
                                                   "beads": [b["id"] for b in beads]})
            if notify and not any(ch.isspace() for ch in notify):
                lines = [f"- {b['id']} {b['title']}" for b in beads]
                send_txn(town, t, notify, f"Convoy {convoy['id']} landed: {convoy['title']}",
                         "Every bead it tracked is closed:\n" + "\n".join(lines))
        landed.append(convoy["id"])
    return landed


def stranded(led: Ledger) -> list[tuple[Bead, dict[str, Any]]]:
    """``(convoy, bead)`` for every tracked bead waiting for a worker."""
    out = []
    for convoy in led.list(Filter(issue_type=["convoy"], status=["open", "in_progress"])):
        for bead in tracked(led, convoy["id"]):
            if _is_stranded(bead):
                out.append((convoy, bead))
    return out


def sling_batch(town: Town, items: list[str], target: str | None, *,
                vars: dict[str, str] | None = None, actor: str | None = None,
                nudge: bool = True, title: str | None = None, start: bool = True,
                pause: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Sling several beads (or formulas) to one target and track them in a new convoy.

    One transaction (:func:`~gastown.town.slinging.sling_many`): every pour, pin
    and sling record, and the convoy, or nothing.  When a pool has fewer free
    workers than the batch has items, the rest wait in the convoy; the
    controller slings them as workers free up.
    """
    from ..town.slinging import resolve_target, sling_many

    if len(items) < 2:
        raise UsageError("a batch needs at least two beads or formulas")
    kind, _ = resolve_target(town, target)  # refuse a bad target before anything else

    def track(t: Txn, ids: list[str]) -> str:
        name = title or f"Batch of {len(ids)} to {target or 'me'}"
        return str(create_convoy_in(t, name, ids, target=target if kind != "self" else None
                                    )["id"])

    out = sling_many(town, items, target, vars, nudge=nudge, actor=actor, start=start,
                     pause=pause, track=track)
    return {"convoy": out.tracked, "beads": out.ids,
            "slung": [r.to_json() for r in out.slung], "waiting": out.waiting}
