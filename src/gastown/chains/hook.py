"""The ledger's transaction hook: a chain record for each event that is someone's work.

Named in the ledger's config (``chains.hook = "gastown.chains.hook:record"``) by
``gt init`` / ``gt chain enable``; the ledger calls :func:`record` inside the
transaction, before commit (:mod:`gastown.ledger.txhook`), so a record exists
exactly when its change does -- in ``gt`` and in an agent's own ``bd close``.

Which events become which records (``entity`` = whose chain):

====================  ==========  ==============================================
event                 kind        entity, subject
====================  ==========  ==============================================
bead.created          created     the creator (not mail, wisps or templates)
bead.claimed          claimed     the assignee
sling                 claimed     the agent given the work (``by``: who slung it)
bead.closed           completed   the assignee (else the closer); not mail or MRs
bead.reopened         reopened    the one reopening; subject: the assignee
merge.landed          validated   the refinery; subject: the request's author
merge.sent_back       rejected    the refinery; subject: the author (not push-refused)
review.verdict        validated   the reviewer; subject: the author (``gt chain review``)
                      /rejected
mol.squashed          digest      the executor (who squashed)
kv.set fed.dlgout.*   delegated   the one delegating
====================  ==========  ==============================================

``cryptography`` is imported only when one of these events happened.  A
self-validation (author = refinery) is not a validation and is not recorded;
``gt chain review`` of one's own work is refused.
"""

from __future__ import annotations

import json

from ..errors import ValidationError
from ..federation.rig import NO_RIG, rig_of
from ..ledger import chainlog
from .entity import Keyring, entity_of

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing only for type checkers: this runs in every agent's bd close
    from collections.abc import Callable, Iterator, Mapping
    from typing import Any

    from ..ledger.ops import Txn

    Spec = dict[str, Any]

__all__ = ["record", "context", "Context"]

_SKIP_TYPES = ("message", "event", "agent", "role", "rig", "gate", "convoy")


class Context:
    """What a hook call needs from the ledger's ``chains.*`` config rows."""

    def __init__(self, settings: Mapping[str, str]) -> None:
        missing = [k for k in ("chains.dir", "chains.org", "chains.town_key")
                   if not settings.get(k)]
        if missing:
            raise ValidationError(f"chains are enabled but the ledger config lacks "
                                  f"{', '.join(missing)}: run 'gt chain enable' again")
        self.org = settings["chains.org"]
        self.town_uri = settings.get("chains.town", "")
        self.keys = _keyring(settings["chains.dir"], settings["chains.town_key"], self.org)

    def entity(self, actor: str) -> str:
        """The entity of a town actor."""
        return entity_of(actor, self.org)

    def uri(self, bead: Mapping[str, Any] | None, bead_id: str) -> str:
        """The bead's ``gt://`` address (``gt:///_/ID`` style when the town has no owner)."""
        rig = rig_of(bead) if bead is not None else NO_RIG
        base = self.town_uri or f"gt://local/{self.org}"
        return f"{base}/{rig}/{bead_id}"


_rings: dict[tuple[str, str, str], Keyring] = {}


def _keyring(chains_dir: str, town_key: str, org: str) -> Keyring:
    ring = _rings.get((chains_dir, town_key, org))
    if ring is None:
        ring = _rings[(chains_dir, town_key, org)] = Keyring(chains_dir, town_key, org)
    return ring


def context(txn: Txn) -> Context:
    """The hook's context from the open transaction's config."""
    return Context(chainlog.settings(txn))


def work_of(bead: Mapping[str, Any], files: list[str] | None = None) -> dict[str, Any]:
    """The ``work`` part of a record: what the bead was about."""
    meta = bead.get("metadata") if isinstance(bead.get("metadata"), dict) else {}
    formula = bead.get("source_formula") or (meta or {}).get("formula")
    return {"title": bead.get("title", ""), "type": bead.get("issue_type", "task"),
            "labels": sorted(bead.get("labels") or []),
            "formula": formula if isinstance(formula, str) and formula else None,
            "files": sorted({str(f) for f in (files or [])}),
            "due": bead.get("due_at"), "priority": bead.get("priority", 2)}


def _recordable(bead: Mapping[str, Any]) -> bool:
    return not (bead.get("issue_type") in _SKIP_TYPES or bead.get("ephemeral")
                or bead.get("is_template"))


# ------------------------------------------------------------ event → records
def _created(t: Txn, bead_id: str, p: Mapping[str, Any], actor: str) -> Iterator[Spec]:
    bead = t.get(bead_id)
    if _recordable(bead):
        yield {"actor": actor, "kind": "created", "bead": bead, "by_itself": True}


def _claimed(t: Txn, bead_id: str, p: Mapping[str, Any], actor: str) -> Iterator[Spec]:
    bead = t.get(bead_id)
    who = str(p.get("assignee") or actor)
    if _recordable(bead):
        yield {"actor": who, "kind": "claimed", "bead": bead, "by_itself": who == actor}


def _slung(t: Txn, bead_id: str, p: Mapping[str, Any], actor: str) -> Iterator[Spec]:
    who = p.get("actor")
    bead = t.get(bead_id)
    if isinstance(who, str) and who and _recordable(bead):
        yield {"actor": who, "kind": "claimed", "bead": bead, "by_itself": who == actor,
               "extra": {"by": actor}}


def _completed(t: Txn, bead_id: str, p: Mapping[str, Any], actor: str) -> Iterator[Spec]:
    bead = t.get(bead_id)
    if not _recordable(bead) or bead.get("issue_type") == "merge-request":
        return
    who = str(bead.get("assignee") or actor)
    due, done = bead.get("due_at"), bead.get("closed_at")
    quality = {"on_time": (str(done) <= str(due)) if due and done else None,
               "revisions": chainlog.event_count(t, bead_id, "bead.reopened")}
    yield {"actor": who, "kind": "completed", "bead": bead, "quality": quality,
           "by_itself": who == actor}


def _reopened(t: Txn, bead_id: str, p: Mapping[str, Any], actor: str) -> Iterator[Spec]:
    bead = t.get(bead_id)
    if not _recordable(bead):
        return
    quality = {"revisions": chainlog.event_count(t, bead_id, "bead.reopened")}
    subject = bead.get("assignee")
    yield {"actor": actor, "kind": "reopened", "bead": bead, "quality": quality,
           "by_itself": True, "subject": str(subject) if subject else None}


def _author_of(mr: Mapping[str, Any]) -> str:
    meta = mr.get("metadata") if isinstance(mr.get("metadata"), dict) else {}
    return str((meta or {}).get("author") or mr.get("created_by") or "")


def _source(t: Txn, mr: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = mr.get("metadata") if isinstance(mr.get("metadata"), dict) else {}
    src = (meta or {}).get("source_bead")
    if isinstance(src, str) and src and t.exists(src):
        return t.get(src)
    return mr


def _landed(t: Txn, mr_id: str, p: Mapping[str, Any], actor: str) -> Iterator[Spec]:
    mr = t.get(mr_id)
    author = _author_of(mr)
    if not author or author == actor:
        return  # no author, or one's own merge: not a validation
    meta = mr.get("metadata") if isinstance(mr.get("metadata"), dict) else {}
    mq = (meta or {}).get("mq") if isinstance((meta or {}).get("mq"), dict) else {}
    activity = chainlog.comment_count(t, mr_id) + (1 if p.get("checked") else 0)
    quality = {"verdict": "merged", "review_activity": activity,
               "revisions": max(int((mq or {}).get("attempts", 1) or 1) - 1, 0)}
    yield {"actor": actor, "kind": "validated", "bead": _source(t, mr), "quality": quality,
           "by_itself": True, "subject": author, "files": p.get("files") or [],
           "extra": {"mr": mr_id}}


def _sent_back(t: Txn, mr_id: str, p: Mapping[str, Any], actor: str) -> Iterator[Spec]:
    if p.get("why") == "push-refused":
        return  # the rig's source refused the push: not the author's doing
    mr = t.get(mr_id)
    author = str(p.get("author") or _author_of(mr))
    if not author or author == actor:
        return
    quality = {"verdict": str(p.get("why") or "rejected"),
               "review_activity": chainlog.comment_count(t, mr_id) + 1}
    yield {"actor": actor, "kind": "rejected", "bead": _source(t, mr), "quality": quality,
           "by_itself": True, "subject": author, "files": p.get("files") or [],
           "extra": {"mr": mr_id}}


def _verdict(t: Txn, bead_id: str, p: Mapping[str, Any], actor: str) -> Iterator[Spec]:
    author = str(p.get("author") or "")
    if not author:
        raise ValidationError(f"review of {bead_id}: the work has no author to judge")
    if author == actor:
        raise ValidationError(f"review of {bead_id}: {actor} cannot validate its own work")
    approved = p.get("verdict") == "approved"
    quality = {"verdict": "approved" if approved else "rejected",
               "review_activity": int(p.get("activity") or 0)}
    yield {"actor": actor, "kind": "validated" if approved else "rejected",
           "bead": t.get(bead_id), "quality": quality, "by_itself": True, "subject": author}


def _squashed(t: Txn, mol_id: str, p: Mapping[str, Any], actor: str) -> Iterator[Spec]:
    quality = {"steps": p.get("steps"), "closed": p.get("closed")}
    yield {"actor": actor, "kind": "digest", "bead": t.get(mol_id), "quality": quality,
           "by_itself": True}


def _kv_set(t: Txn, _id: str | None, p: Mapping[str, Any], actor: str) -> Iterator[Spec]:
    key = str(p.get("key") or "")
    if not key.startswith("fed.dlgout."):
        return
    raw = dict(t.kv_with_prefix(key)).get(key)
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {}
    local = body.get("local")
    if isinstance(local, str) and t.exists(local):
        yield {"actor": actor, "kind": "delegated", "bead": t.get(local), "by_itself": True,
               "extra": {"to": str(body.get("to") or ""), "delegation": key[len("fed.dlgout."):]}}


HANDLERS: dict[str, Callable[[Txn, Any, Mapping[str, Any], str], Iterator[Spec]]] = {
    "bead.created": _created, "bead.claimed": _claimed, "sling": _slung, "bead.closed": _completed,
    "bead.reopened": _reopened, "merge.landed": _landed, "merge.sent_back": _sent_back,
    "review.verdict": _verdict, "mol.squashed": _squashed, "kv.set": _kv_set,
}


def record(txn: Txn, events: list[tuple[str, str | None, Mapping[str, Any] | None, str]]
           ) -> int:
    """Append the chain records ``events`` call for, in ``txn``; how many were written."""
    from .entry import append

    ctx: Context | None = None
    written = 0
    for type_, bead_id, payload, actor in events:
        handler = HANDLERS.get(type_)
        if handler is None or (bead_id is None and type_ != "kv.set"):
            continue
        for spec in handler(txn, bead_id, payload or {}, actor):
            ctx = ctx or context(txn)
            bead = spec["bead"]
            subject = spec.get("subject")
            append(txn, ctx.keys, entity=ctx.entity(spec["actor"]), kind=spec["kind"],
                   uri=ctx.uri(bead, str(bead["id"])), bead=str(bead["id"]), at=txn._now,  # noqa: SLF001
                   work=work_of(bead, spec.get("files")), quality=spec.get("quality") or {},
                   by_itself=spec["by_itself"],
                   subject=ctx.entity(subject) if subject else None,
                   extra=spec.get("extra"))
            written += 1
    return written
