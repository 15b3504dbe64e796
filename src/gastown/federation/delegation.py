"""Delegation: a bead handed to another town, its status flowing back, completion cascading up.

Records (same signed envelope as every other, see :mod:`.log`):

* ``delegation`` (in the delegator's log): ``{"id", "from": bead URI, "to": town URI,
  "rig", "terms", "title", "description", "by"}``;
* ``delegation.answer`` (in the delegatee's log): ``{"id", "delegator": town URI,
  "answer": "accepted"|"rejected", "reason", "bead": URI of the bead made, "by"}``.

A sync mirrors both kinds (:func:`mirror_items`) into the key/value store:
``fed.dlg.REMOTE.ID`` and ``fed.dlga.REMOTE.ID``.  This town's own decisions are
``fed.dlgin.ID`` and the delegations it made ``fed.dlgout.ID``.  The bead made on
acceptance carries ``metadata.delegated_from`` (the delegator's bead URI) and
``metadata.delegation`` (the id): the link back is metadata, not a dependency.

Completion (:func:`cascade`): a local bead with delegations completes when every
delegation not rejected was accepted and its bead (as last synced) is closed, and
every local child is closed.  ``[federation] on_delegated_done`` chooses ``"close"``
(the default) or ``"ready"`` (the label ``delegation:ready`` is added instead).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from ..config import TownConfig
from ..errors import ConflictError, NotFoundError, UsageError, ValidationError
from ..ledger.core import Ledger
from . import keys
from .identity import load_identity
from .uris import BeadURI, format_uri, parse, rig_of

__all__ = ["delegate", "mirror_items", "incoming", "answer", "cascade", "outgoing",
           "pending_records", "log_pending", "POLICIES", "READY_LABEL"]

KINDS = ("delegation", "delegation.answer")
POLICIES = ("close", "ready")
READY_LABEL = "delegation:ready"
_OUT, _IN = "fed.dlgout.", "fed.dlgin."
#: a delegation id: one segment of a key/value key (no ".")
_DLG_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def _load(v: str | None) -> dict[str, Any]:
    data = json.loads(v) if v else {}
    return data if isinstance(data, dict) else {}


def policy(cfg: TownConfig) -> str:
    """``[federation] on_delegated_done`` (``"close"`` unless set)."""
    fed = (cfg.raw or {}).get("federation") or {}
    value = fed.get("on_delegated_done", "close") if isinstance(fed, dict) else "close"
    if value not in POLICIES:
        raise ValidationError(f"{cfg.path}: federation.on_delegated_done: {value!r} is not "
                              "\"close\" or \"ready\"")
    return str(value)


def _target(text: str) -> tuple[str, str | None]:
    """``gt://E/C[/RIG]`` -> (town URI, rig or None)."""
    if not text.startswith(("gt://", "hop://")):
        raise UsageError(f"delegatee {text!r}: expected gt://ENTITY/CHAIN[/RIG]")
    parts = text.split("://", 1)[1].split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise UsageError(f"delegatee {text!r}: expected gt://ENTITY/CHAIN[/RIG]")
    town = parse(format_uri(parts[0], parts[1]), what="delegatee")
    if len(parts) == 3:
        parse(f"{town}/{parts[2]}/x", what="delegatee")  # checks the rig segment
    return str(town), (parts[2] if len(parts) == 3 else None)


def parse_terms(text: str | None) -> dict[str, str]:
    """``portion=backend,deadline=2025-02-01`` -> a dict (bad pairs refused)."""
    out: dict[str, str] = {}
    for pair in (text or "").split(","):
        if not pair.strip():
            continue
        k, sep, v = pair.partition("=")
        if not sep or not k.strip():
            raise UsageError(f"--terms {pair!r}: expected KEY=VALUE[,KEY=VALUE…]")
        out[k.strip()] = v.strip()
    return out


def delegate(ledger: Ledger, gt_dir: str, cfg: TownConfig, local_id: str, to: str,
             terms: dict[str, str]) -> dict[str, Any]:
    """Publish a ``delegation`` of bead ``local_id`` to town ``to``; the record's body."""
    town_uri, rig = _target(to)
    ident = load_identity(cfg, gt_dir)
    if town_uri == str(ident.uri):
        raise UsageError(f"delegatee {to}: that is this town")
    bead = dict(ledger.show(local_id))
    if bead.get("status") == "closed":
        raise ConflictError(f"{local_id} is closed; nothing to delegate")
    src = format_uri(ident.owner, ident.name, rig_of(bead), str(bead["id"]))
    did = "dlg-" + hashlib.sha256(f"{src}>{town_uri}>{rig}".encode()).hexdigest()[:10]
    body = {"id": did, "from": src, "to": town_uri, "rig": rig, "terms": terms,
            "title": bead.get("title", ""), "description": bead.get("description") or "",
            "by": ledger.actor}
    # the intent first, in the ledger (checked and set in one transaction); the record
    # follows and every publish appends one that is missing (see log_pending), so a
    # crash between never loses it
    with ledger.transaction() as t:
        if t.kv_get(_OUT + did):
            raise ConflictError(f"{local_id} is already delegated to {to} ({did})")
        t.kv_set(_OUT + did, json.dumps({**body, "local": bead["id"]}, sort_keys=True))
    log_pending(ledger, gt_dir, cfg)
    return body


def _uri_of(town: str, text: Any) -> bool:
    """Is ``text`` the address of a bead of ``town``?"""
    if not isinstance(text, str):
        return False
    try:
        uri = parse(text)
    except UsageError:
        return False
    return uri.issue is not None and str(BeadURI(uri.entity, uri.chain)) == town


def _well_formed(rec: dict[str, Any]) -> bool:
    """Can this town act on a (verified) delegation record of another town?

    Its id is one key segment, and what is acted on has the shape this town
    writes: a delegation is of a bead of the delegating town, with text title,
    description and terms and a rig name; an answer is accepted or rejected and
    names no bead, or one of the answering town's.
    """
    body, town = rec.get("body") or {}, str(rec.get("town"))
    if not (isinstance(body.get("id"), str) and _DLG_ID.fullmatch(body["id"])):
        return False
    if rec["kind"] == "delegation":
        rig, terms = body.get("rig"), body.get("terms")
        return (_uri_of(town, body.get("from")) and isinstance(body.get("to"), str)
                and all(isinstance(body.get(k), str) for k in ("title", "description"))
                and (rig is None or (isinstance(rig, str) and _uri_of(town, f"{town}/{rig}/x")))
                and isinstance(terms, dict) and all(isinstance(v, str) for v in terms.values()))
    return (body.get("answer") in ("accepted", "rejected")
            and (body.get("bead") is None or _uri_of(town, body.get("bead")))
            and (body.get("reason") is None or isinstance(body.get("reason"), str)))


def mirror_items(name: str, records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The key/value items a sync of remote ``name`` writes for delegation records
    (an ill-formed one, see :func:`_well_formed`, is kept verified but unapplied)."""
    items = []
    for rec in records:
        body = rec.get("body") or {}
        if rec.get("kind") in KINDS and _well_formed(rec):
            kv = "fed.dlg." if rec["kind"] == "delegation" else "fed.dlga."
            entry = {"seq": rec["seq"], "at": rec["at"], "town": rec["town"], "body": body}
            items.append((f"{kv}{name}.{body['id']}", json.dumps(entry, sort_keys=True)))
    return items


def incoming(ledger: Ledger, cfg: TownConfig, gt_dir: str) -> list[dict[str, Any]]:
    """Delegations to this town from synced remotes, each with ``remote`` and ``status``."""
    me = str(load_identity(cfg, gt_dir).uri)
    out = []
    for k, v in ledger.kv_scan("fed.dlg."):
        remote = k[len("fed.dlg."):].rsplit(".", 1)[0]
        e = json.loads(v)
        body = e["body"]
        if body.get("to") != me:
            continue
        mine = _load(ledger.kv_get(_IN + body["id"]))
        out.append({**body, "remote": remote, "at": e["at"],
                    "status": mine.get("status", "pending"), "bead": mine.get("bead"),
                    "answered_by": mine.get("by")})
    return sorted(out, key=lambda d: (d["at"], d["id"]))


def answer(ledger: Ledger, gt_dir: str, cfg: TownConfig, ids: list[str], accept: bool,
           reason: str | None = None) -> list[dict[str, Any]]:
    """Accept (a bead is made, linked back) or reject pending delegations; the answers.

    Each delegation is one ledger transaction: the bead made and this town's
    answer (``fed.dlgin.ID``, holding the ``delegation.answer`` record's body)
    commit together or not at all.  The record is then appended to the town's
    log by :func:`log_pending`, which every publish runs again: an answer whose
    append was cut short (a crash, a full disk) goes out on the next publish,
    and one already in the log is never appended twice.
    """
    pending = {d["id"]: d for d in incoming(ledger, cfg, gt_dir)}
    for did in ids:
        if did not in pending:
            raise NotFoundError(f"no delegation {did!r} to this town (gt delegation list)")
        if pending[did]["status"] != "pending":
            raise ConflictError(f"delegation {did} is already {pending[did]['status']}")
    ident = load_identity(cfg, gt_dir)
    status = "accepted" if accept else "rejected"
    done = []
    for did in ids:
        d = pending[did]
        with ledger.transaction() as t:
            if t.kv_get(_IN + did):  # another accept/reject won the race
                raise ConflictError(f"delegation {did} was answered meanwhile")
            bead_uri = None
            if accept:
                meta = {"delegated_from": d["from"], "delegation": did,
                        "delegator": _town_of(d["from"]), "terms": d.get("terms") or {},
                        "accepted_by": ledger.actor}
                if d.get("rig"):
                    meta["rig"] = d["rig"]
                made = t.create(d.get("title") or did, description=d.get("description") or "",
                                metadata=meta)
                bead_uri = format_uri(ident.owner, ident.name, d.get("rig"), str(made["id"]))
            record = {"id": did, "delegator": _town_of(d["from"]), "answer": status,
                      "reason": reason, "bead": bead_uri, "by": ledger.actor}
            t.kv_set(_IN + did, json.dumps({"status": status, "bead": bead_uri,
                                            "by": ledger.actor, "reason": reason,
                                            "record": record}, sort_keys=True))
        done.append({"id": did, "status": status, "bead": bead_uri, "by": ledger.actor})
    if done:
        log_pending(ledger, gt_dir, cfg)
    return done


def pending_records(ledger: Ledger, lines: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
    """This town's delegations and answers (from the ledger) not yet in its log ``lines``:
    ``delegation`` records first, then ``delegation.answer``."""
    logged: dict[str, set[Any]] = {"delegation": set(), "delegation.answer": set()}
    for line in lines:
        if b'"kind":"delegation' in line:  # canonical JSON: a cheap pre-filter
            rec = json.loads(line)
            if rec.get("kind") in logged:
                logged[rec["kind"]].add((rec.get("body") or {}).get("id"))
    out: list[tuple[str, dict[str, Any]]] = []
    for _key, value in ledger.kv_scan(_OUT):
        made = _load(value)
        if made.get("id") not in logged["delegation"]:
            out.append(("delegation", {k: v for k, v in made.items() if k != "local"}))
    for key, value in ledger.kv_scan(_IN):
        did = key[len(_IN):]
        if did in logged["delegation.answer"]:
            continue
        mine = _load(value)
        record = mine.get("record") or {  # an answer stored before records were kept
            "id": did, "delegator": None, "answer": mine.get("status"),
            "reason": mine.get("reason"), "bead": mine.get("bead"), "by": mine.get("by")}
        out.append(("delegation.answer", record))
    return out


def log_pending(ledger: Ledger, gt_dir: str, cfg: TownConfig) -> int:
    """Append the delegations and answers missing from the town's log (under the
    publish lock); how many."""
    from .publish import append, log_lock, open_log

    ident = load_identity(cfg, gt_dir)
    key = keys.load_or_create(gt_dir)
    with log_lock(gt_dir):
        state, lines, head = open_log(gt_dir)
        records = pending_records(ledger, lines)
        if records:
            append(gt_dir, str(ident.uri), key, state, lines, head, records)
    return len(records)


def _town_of(uri: str) -> str:
    u = parse(uri)
    return str(BeadURI(u.entity, u.chain))


def set_auto_accept(ledger: Ledger, remote: str) -> None:
    """Accept every delegation from ``remote`` on sync (``gt remote add --accept-delegations``)."""
    ledger.kv_set(f"fed.dlgauto.{remote}", "1")


def after_sync(ledger: Ledger, gt_dir: str, cfg: TownConfig) -> dict[str, Any]:
    """After ``gt remote sync``: accept from auto-accepting remotes, then :func:`cascade`."""
    auto = [d["id"] for d in incoming(ledger, cfg, gt_dir)
            if d["status"] == "pending" and ledger.kv_get(f"fed.dlgauto.{d['remote']}")]
    accepted = answer(ledger, gt_dir, cfg, auto, True) if auto else []
    return {"accepted": accepted, "completed": cascade(ledger, cfg)}


def outgoing(ledger: Ledger) -> list[dict[str, Any]]:
    """Delegations this town made, each with the delegatee's answer and bead status."""
    from .remotes import list_remotes

    by_town = {r["uri"]: r["name"] for r in list_remotes(ledger)}
    out = []
    for _k, v in ledger.kv_scan(_OUT):
        d = json.loads(v)
        remote = by_town.get(d["to"])
        ans = _load(ledger.kv_get(f"fed.dlga.{remote}.{d['id']}")).get("body", {}) \
            if remote else {}
        status, part = ans.get("answer", "pending"), None
        if status == "accepted" and ans.get("bead"):
            entry = _load(ledger.kv_get(f"fed.bead.{remote}.{parse(ans['bead']).issue}"))
            if entry.get("kind") == "bead":
                part = entry["body"]["bead"].get("status")
                if part == "closed":
                    status = "done"
        out.append({**d, "remote": remote, "status": status, "part_status": part,
                    "answered_by": ans.get("by"), "reason": ans.get("reason"),
                    "delegatee_bead": ans.get("bead")})
    return sorted(out, key=lambda d: d["id"])


def cascade(ledger: Ledger, cfg: TownConfig) -> list[dict[str, Any]]:
    """Complete the local beads whose delegated parts and children are all done."""
    how = policy(cfg)
    parts: dict[str, list[str]] = {}
    where: dict[str, list[str]] = {}
    for d in outgoing(ledger):
        if d["status"] != "rejected":
            parts.setdefault(str(d["local"]), []).append(d["status"])
            where.setdefault(str(d["local"]), []).append(
                f"{d['delegatee_bead']} (accepted by {d['answered_by']})")
    completed = []
    for local, states in sorted(parts.items()):
        if not states or any(s != "done" for s in states):
            continue
        try:
            bead = dict(ledger.show(local))
        except NotFoundError:
            continue
        if bead.get("status") == "closed" or READY_LABEL in (bead.get("labels") or ()):
            continue
        kids = [e for e in ledger.dependents(local) if e.get("type") == "parent-child"]
        if any(e.get("status") != "closed" for e in kids):
            continue
        if how == "close":
            ledger.close_bead(local, reason="delegated parts done: "
                              + ", ".join(where[local]))
        else:
            ledger.add_label(local, READY_LABEL)
        completed.append({"id": local, "action": how, "by": ledger.actor})
    return completed
