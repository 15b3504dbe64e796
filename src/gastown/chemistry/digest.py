"""Squash (mol or wisp → digest) and burn (wisp → nothing), one transaction each.

Squash is idempotent: the digest is the molecule's own root bead, marked with
the ``digest`` label and a ``metadata.digest`` record, so squashing twice leaves
one digest.  For a wisp the steps vanish (their ids are retired, never reused)
and the root turns permanent — the wisp's id lives on as the digest's id, so a
reference made to the wisp still resolves.  For a mol every step is kept.

Burn deletes a wisp and everything under it; its ids stay retired.  Burning an
id that is already gone is a no-op.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ..errors import ConflictError, NotFoundError, UsageError
from ..ledger.core import Ledger
from ..ledger.model import INFRA_TYPES, Bead
from ..ledger.ops import Txn

__all__ = ["squash", "squash_in", "auto_squash", "burn", "burn_in", "DIGEST_LABEL"]

DIGEST_LABEL = "digest"
#: a wisp's digest keeps at most this many step records (the rest are counted)
_MAX_RECORDS = 200


def _descendants(t: Txn, root_id: str) -> list[Bead]:
    out: list[Bead] = []
    frontier = [root_id]
    while frontier:
        nxt: list[str] = []
        for bid in frontier:
            for kid in t.children_of(bid):
                out.append(t.get(kid))
                nxt.append(kid)
        frontier = nxt
    return out


def _top_root(t: Txn, bead_id: str, verb: str) -> Bead:
    if not t.exists(bead_id):
        raise NotFoundError(f"no issue found matching {bead_id!r}")
    bead = t.get(bead_id)
    if bead.get("is_template"):
        raise UsageError(f"{bead_id} is a proto; only molecules and wisps can be {verb}ed")
    parents = t.parents_of(bead_id)
    if parents:
        raise UsageError(f"{bead_id} is part of {parents[0]}; {verb} the molecule's root")
    return bead


def _summary(root: Bead, work: list[Bead]) -> str:
    closed = [s for s in work if s["status"] == "closed"]
    text = f"{root['title']}: {len(closed)}/{len(work)} steps closed"
    undone = [s["id"] for s in work if s["status"] != "closed"]
    if undone:
        text += f"; not done: {', '.join(undone[:10])}" + (" …" if len(undone) > 10 else "")
    if closed:
        names = "; ".join(s["title"] for s in closed[:20])
        text += f". Done: {names}" + (" …" if len(closed) > 20 else "")
    return text


def squash(ledger: Ledger, mol_id: str, summary: str | None = None, *, force: bool = False,
           actor: str | None = None) -> Bead:
    """Condense a mol or wisp into its digest and return the digest bead.

    A mol with unfinished steps is refused unless ``force`` (which closes them
    with reason ``squashed``); a wisp is squashed whatever its steps' states.
    """
    with ledger.transaction(actor) as t:
        return squash_in(t, mol_id, summary, force=force)


def auto_squash(t: Txn, root_id: str) -> bool:
    """Squash a molecule that just closed itself, if its formula says ``[squash]
    trigger = "on_complete"``; True when it did.  Runs in the closing transaction."""
    if not t.exists(root_id):
        return False  # squashed away with its wisp a moment ago
    bead = t.get(root_id)
    squash_spec = (bead.get("metadata") or {}).get("squash")
    if not isinstance(squash_spec, dict) or squash_spec.get("trigger") != "on_complete":
        return False
    if bead.get("is_template") or t.parents_of(root_id):
        return False  # a container step, or a bonded sub-molecule: the top root decides
    if DIGEST_LABEL in (bead.get("labels") or []):
        return False
    squash_in(t, root_id, None, force=True, auto=True)
    return True


def _metrics(root: Bead, work: list[Bead]) -> dict[str, Any]:
    def parse(ts: str) -> datetime:
        return datetime.fromisoformat(ts.replace("Z", "+00:00"))

    def seconds(b: Bead) -> float | None:
        if not b.get("closed_at") or not b.get("created_at"):
            return None
        return round((parse(b["closed_at"]) - parse(b["created_at"])).total_seconds(), 3)

    durations = [d for d in (seconds(b) for b in work) if d is not None]
    return {"steps": len(work), "closed": sum(1 for b in work if b["status"] == "closed"),
            "step_seconds_total": round(sum(durations), 3),
            "step_seconds_max": max(durations, default=0.0),
            "assignees": sorted({str(b["assignee"]) for b in work if b.get("assignee")})}


def squash_in(t: Txn, mol_id: str, summary: str | None = None, *, force: bool = False,
              auto: bool = False) -> Bead:
    """:func:`squash` inside an open transaction."""
    root = _top_root(t, mol_id, "squash")
    if DIGEST_LABEL in (root.get("labels") or []):
        return root  # squashing twice leaves one digest
    descendants = _descendants(t, mol_id)
    work = [b for b in descendants if b.get("issue_type") not in INFRA_TYPES]
    vapor = bool(root.get("ephemeral"))
    open_steps = [b["id"] for b in work if b["status"] != "closed"]
    if open_steps and not vapor and not force:
        raise ConflictError(
            f"cannot squash {mol_id}: {len(open_steps)} step(s) still open "
            f"({', '.join(open_steps[:5])}{' …' if len(open_steps) > 5 else ''}); "
            "finish them or use --force")
    text = (summary or "").strip() or _summary(root, work)
    record: dict[str, Any] = {
        "summary": text, "phase": "vapor" if vapor else "liquid",
        "total": len(work), "closed": sum(1 for b in work if b["status"] == "closed"),
        "squashed_by": t.actor,
    }
    spec = (root.get("metadata") or {}).get("squash")
    if isinstance(spec, dict):
        if spec.get("template_type"):
            record["template_type"] = spec["template_type"]
        if spec.get("include_metrics"):
            record["metrics"] = _metrics(root, work)
    if auto:
        record["trigger"] = "on_complete"
    if vapor:
        record["steps"] = [
            {k: b[k] for k in ("id", "title", "status", "assignee", "close_reason",
                               "closed_at") if b.get(k)}
            | {"step": (b.get("metadata") or {}).get("step")} for b in work[:_MAX_RECORDS]]
        if len(work) > _MAX_RECORDS:
            record["steps_omitted"] = len(work) - _MAX_RECORDS
        for kid in t.children_of(mol_id):
            t.delete(kid, cascade=True)
    else:
        # deepest first, gates and containers included, so nothing is left open
        for b in reversed(descendants):
            if t.status_of(b["id"]) != "closed":
                t.close(b["id"], reason="squashed", force=True)
    meta = dict(root.get("metadata") or {})
    meta["digest"] = record
    t.update(mol_id, ephemeral=False, notes=text, metadata=meta)
    t.add_label(mol_id, DIGEST_LABEL)
    if t.status_of(mol_id) != "closed":
        t.close(mol_id, reason="squashed", force=True)
    t.emit("mol.squashed", mol_id, {"phase": record["phase"], "steps": len(work),
                                    "closed": record["closed"]})
    return t.get(mol_id)


def burn(ledger: Ledger, wisp_id: str, *, actor: str | None = None) -> list[str]:
    """Discard a wisp without a digest; returns the ids deleted (empty if already gone)."""
    with ledger.transaction(actor) as t:
        return burn_in(t, wisp_id)


def burn_in(t: Txn, wisp_id: str) -> list[str]:
    """:func:`burn` inside an open transaction."""
    if not t.exists(wisp_id):
        if t.is_retired(wisp_id):
            return []  # burned before: nothing left to do
        raise NotFoundError(f"no issue found matching {wisp_id!r}")
    root = _top_root(t, wisp_id, "burn")
    if not root.get("ephemeral"):
        raise ConflictError(f"{wisp_id} is a persistent molecule, not a wisp: burn only "
                            "discards wisps (squash it, or 'bd delete --cascade')")
    deleted = t.delete(wisp_id, cascade=True)
    t.emit("mol.burned", wisp_id, {"deleted": len(deleted)})
    return deleted
