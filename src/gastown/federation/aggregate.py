"""Aggregation across this town and the towns it has synced (issue 13, item 7).

* :func:`org_beads` -- the beads of every member of an organisation: towns whose
  owner published an employment record for it (``[federation] member_of``), this
  town included (its ``.town.json``), each bead with its ``uri`` and ``town``.
* :func:`project_beads` -- a bead and its ``parent-child`` descendants here, and
  with ``include_delegated`` the beads other towns made for the delegations of any
  of them, their descendants there and their own delegations, at any depth, as of
  the last sync (:mod:`.project`).
* :func:`audit` -- everything one actor did, in time order, with where: this
  town's event log, and in synced towns what their mirrored bead snapshots show
  (created, commented, assigned, closed -- a snapshot carries no finer history).

Reads only the ledger (the mirror lives in its key/value store).
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..ledger.core import Ledger
from .uris import format_uri, rig_of

__all__ = ["local_town", "org_beads", "project_beads", "audit"]


def local_town(ledger: Ledger) -> dict[str, Any]:
    """This town's ``.town.json`` (beside the ledger's folder), or ``{}`` outside a town."""
    path = getattr(ledger.store, "path", None)
    if not isinstance(path, str):
        return {}
    doc = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(path))), ".town.json")
    try:
        with open(doc, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remotes(ledger: Ledger) -> list[tuple[str, dict[str, Any]]]:
    return [(k[len("fed.remote."):], json.loads(v)) for k, v in ledger.kv_scan("fed.remote.")]


def _mirrored(ledger: Ledger, name: str) -> list[dict[str, Any]]:
    out = []
    for _k, v in ledger.kv_scan(f"fed.bead.{name}."):
        e = json.loads(v)
        if e.get("kind") == "bead":
            out.append({**e["body"]["bead"], "uri": e["body"].get("uri"), "town": name,
                        "synced_at": e.get("at")})
    return out


def _members(ledger: Ledger, name: str, org: str) -> bool:
    for _k, v in ledger.kv_scan(f"fed.emp.{name}."):
        body = json.loads(v).get("body") or {}
        if body.get("organization") == org and not body.get("ended"):
            return True
    return False


def org_beads(ledger: Ledger, org: str, include_closed: bool = False) -> list[dict[str, Any]]:
    """Beads of the members of ``org`` here and in synced towns, by priority, age, id."""
    beads: list[dict[str, Any]] = []
    town = local_town(ledger)
    if org in (town.get("member_of") or []):
        from ..ledger.query import Filter

        f = Filter()
        f.include_closed = include_closed
        for b in ledger.list(f, limit=0):
            bead = dict(b)
            bead["uri"] = format_uri(town["owner"], town["name"], rig_of(bead), bead["id"])
            bead["town"] = "(here)"
            beads.append(bead)
    for name, _rec in _remotes(ledger):
        if _members(ledger, name, org):
            beads += [b for b in _mirrored(ledger, name)
                      if include_closed or b.get("status") != "closed"]
    beads.sort(key=lambda b: (int(b.get("priority", 2)), str(b.get("created_at", "")),
                              str(b.get("uri") or b.get("id"))))
    return beads


def project_beads(ledger: Ledger, project_id: str, include_delegated: bool = False
                  ) -> list[dict[str, Any]]:
    """``project_id`` and its descendants (``town`` ``(here)``), then delegated parts."""
    seen: list[str] = [project_id]
    frontier = [project_id]
    while frontier:
        nxt = []
        for node in frontier:
            for e in ledger.dependents(node):
                if e["type"] == "parent-child" and e["issue_id"] not in seen:
                    seen.append(e["issue_id"])
                    nxt.append(e["issue_id"])
        frontier = nxt
    beads = [{**ledger.get(bid), "town": "(here)"} for bid in seen]
    if include_delegated:
        from .project import delegated_parts

        beads += delegated_parts(ledger, seen)
    return beads


def _snapshot_acts(bead: dict[str, Any], actor: str) -> list[tuple[str, str, str]]:
    """(at, action, detail) an actor's hand shows in one bead snapshot."""
    acts = []
    if bead.get("created_by") == actor:
        acts.append((str(bead.get("created_at", "")), "created", str(bead.get("title", ""))))
    for c in bead.get("comments") or []:
        if c.get("author") == actor:
            acts.append((str(c.get("created_at", "")), "commented", str(c.get("text", ""))))
    if bead.get("assignee") == actor:
        if bead.get("status") == "closed" and bead.get("closed_at"):
            acts.append((str(bead["closed_at"]), "closed", str(bead.get("close_reason") or "")))
        else:
            acts.append((str(bead.get("updated_at", "")), "assigned",
                         str(bead.get("status", ""))))
    return acts


def audit(ledger: Ledger, actor: str) -> list[dict[str, Any]]:
    """What ``actor`` did, here (events) and in synced towns (snapshots), oldest first.

    Each row: ``at``, ``where`` (``(here)`` or the remote's name), ``town`` (its
    address), ``action``, ``bead`` (id here, ``gt://`` address elsewhere), ``detail``.
    """
    here = local_town(ledger)
    here_uri = format_uri(here["owner"], here["name"]) if here.get("owner") else ""
    rows: list[dict[str, Any]] = []
    for ev in ledger.events():
        if ev.get("actor") == actor:
            payload = ev.get("payload") or {}
            rows.append({"at": ev["ts"], "where": "(here)", "town": here_uri,
                         "action": ev["type"], "bead": ev.get("bead_id"),
                         "detail": json.dumps(payload, sort_keys=True) if payload else ""})
    for name, rec in _remotes(ledger):
        for bead in _mirrored(ledger, name):
            for at, action, detail in _snapshot_acts(bead, actor):
                rows.append({"at": at, "where": name, "town": rec.get("uri", ""),
                             "action": action, "bead": bead.get("uri") or bead.get("id"),
                             "detail": detail})
    rows.sort(key=lambda r: (str(r["at"]), r["where"] != "(here)", str(r["where"])))
    return rows
