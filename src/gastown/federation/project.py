"""``bd list --project=ID --include-delegated``: a project across towns, at any depth.

A project is a bead and its ``parent-child`` descendants here.  Each delegation
of one of them (``gt delegate``) is a part; the town that accepted it made a
bead, whose own descendants and delegations (in that town's log, as mirrored by
the last sync) are followed in turn -- prime → sub → contractor and further.
What a town does not publish, or a town this one has no remote for, ends the
walk there: the part is still listed with what is known (its delegation record
and ``delegation_status``).  Reads only the ledger's key/value mirror.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import UsageError
from ..ledger.core import Ledger
from .uris import BeadURI, parse

__all__ = ["delegated_parts", "MAX_DEPTH"]

#: levels of delegation followed (a loop of towns delegating in a circle stops here)
MAX_DEPTH = 32


def _load(value: str | None) -> dict[str, Any]:
    try:
        data = json.loads(value) if value else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _town(uri: Any) -> str | None:
    """``gt://E/C`` of a bead address (None: not one)."""
    if not isinstance(uri, str):
        return None
    try:
        u = parse(uri)
    except UsageError:
        return None
    return str(BeadURI(u.entity, u.chain)) if u.issue else None


def _issue(uri: str) -> str:
    return str(parse(uri).issue)


def _snapshots(ledger: Ledger, remote: str) -> dict[str, dict[str, Any]]:
    """Mirrored beads of ``remote``: id -> snapshot (with ``uri``)."""
    out = {}
    for _k, v in ledger.kv_scan(f"fed.bead.{remote}."):
        e = _load(v)
        body = e.get("body") or {}
        if e.get("kind") == "bead" and isinstance(body.get("bead"), dict):
            out[str(body["bead"].get("id"))] = {**body["bead"], "uri": body.get("uri")}
    return out


def _descendants(snaps: dict[str, dict[str, Any]], root: str) -> list[str]:
    """``root``'s parent-child descendants among a remote's snapshots, breadth first."""
    kids: dict[str, list[str]] = {}
    for bid, snap in snaps.items():
        for dep in snap.get("dependencies") or []:
            if (isinstance(dep, dict) and dep.get("type") == "parent-child"
                    and isinstance(dep.get("depends_on_id"), str)):
                kids.setdefault(dep["depends_on_id"], []).append(bid)
    seen, frontier = [root], [root]
    while frontier:
        frontier = [k for node in frontier for k in sorted(kids.get(node, ()))
                    if k not in seen]
        seen += frontier
    return seen


def _delegations(ledger: Ledger, where: str | None, ids: set[str]) -> list[dict[str, Any]]:
    """Delegations made of beads ``ids``: here (``where`` None) or by remote ``where``."""
    if where is None:
        out = [_load(v) for _k, v in ledger.kv_scan("fed.dlgout.")]
    else:
        out = [_load(v).get("body") or {} for _k, v in ledger.kv_scan(f"fed.dlg.{where}.")]
    return sorted((d for d in out if isinstance(d.get("from"), str) and _town(d["from"])
                   and _issue(d["from"]) in ids and isinstance(d.get("id"), str)),
                  key=lambda d: str(d["id"]))


def delegated_parts(ledger: Ledger, local_ids: list[str]) -> list[dict[str, Any]]:
    """The delegated parts of beads ``local_ids`` (here), level by level.

    Each part: ``id`` (the delegation), ``delegation``, ``delegation_status``
    (``pending``, ``accepted``, ``rejected`` or ``done``), ``delegated_from``,
    ``depth`` (1: delegated from here), ``town`` (the remote's name, else the
    delegatee's address) and, when its bead is known, that bead's fields and
    ``uri``.  The delegatee's descendants of that bead follow it (``depth`` the
    same, ``part_of`` the part's bead address).
    """
    remotes = {_load(v).get("uri"): k[len("fed.remote."):]
               for k, v in ledger.kv_scan("fed.remote.")}
    rows: list[dict[str, Any]] = []
    done: set[str] = set()
    level: list[tuple[str | None, set[str]]] = [(None, set(local_ids))]
    for depth in range(1, MAX_DEPTH + 1):
        nxt: list[tuple[str | None, set[str]]] = []
        for where, ids in level:
            for d in _delegations(ledger, where, ids):
                if d["id"] in done:
                    continue
                done.add(d["id"])
                remote = remotes.get(d.get("to"))
                ans = (_load(ledger.kv_get(f"fed.dlga.{remote}.{d['id']}")).get("body") or {}
                       if remote else {})
                part: dict[str, Any] = {
                    "id": d["id"], "title": d.get("title"), "status": None, "uri": None,
                    "town": remote or d.get("to"), "delegation": d["id"], "depth": depth,
                    "delegation_status": ans.get("answer", "pending") if remote else "unknown",
                    "delegated_from": d["from"], "answered_by": ans.get("by")}
                bead_uri = ans.get("bead")
                rows.append(part)
                if not (remote and ans.get("answer") == "accepted"
                        and _town(bead_uri) == d.get("to")):
                    continue
                snaps = _snapshots(ledger, remote)
                top = _issue(str(bead_uri))
                part["uri"] = bead_uri
                if top not in snaps:
                    continue
                part.update({**snaps[top], "id": d["id"], "uri": bead_uri})
                if part.get("status") == "closed":
                    part["delegation_status"] = "done"
                tree = _descendants(snaps, top)
                rows += [{**snaps[b], "town": remote, "depth": depth, "part_of": bead_uri}
                         for b in tree[1:]]
                nxt.append((remote, set(tree)))
        if not nxt:
            break
        level = nxt
    return rows
