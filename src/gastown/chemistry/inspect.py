"""Reading molecules: their steps in order, progress, the current step, the tree.

Step order is the order of the step ids under the root (``ROOT.2`` before
``ROOT.10``, ``ROOT.3.1`` right after ``ROOT.3``), which is the formula's order.
A *work step* is a descendant that is not infrastructure: containers and
bonded sub-molecules (type ``molecule``) and gates are machinery.
"""

from __future__ import annotations

from typing import Any

from ..errors import NotFoundError
from ..ledger.core import Filter, Ledger
from ..ledger.model import INFRA_TYPES, Bead

__all__ = ["mol_root", "mol_beads", "work_steps", "step_key", "current_step", "progress",
           "tree", "list_mols", "is_work_step", "parent_map"]


def step_key(root_id: str, bead: Bead) -> tuple[Any, ...]:
    """Sort key that puts a molecule's beads in step order."""
    bid = bead["id"]
    meta = bead.get("metadata") or {}
    if bid.startswith(root_id + ".") and "pos" not in meta:
        parts = bid[len(root_id) + 1:].split(".")
        return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)
    return ((0, int(meta.get("pos", 1 << 30)), bid),)


def parent_map(ledger: Ledger, ids: list[str]) -> dict[str, str]:
    """``child → parent`` for the given ids (parent-child edges)."""
    out: dict[str, str] = {}
    with ledger.snapshot() as r:
        for child, parent, _ in r.edges_from(ids, ("parent-child",)):
            out.setdefault(child, parent)
    return out


def mol_root(ledger: Ledger, bead_id: str) -> str:
    """The top of the parent-child chain above ``bead_id`` (itself when it has no parent)."""
    node = bead_id
    seen = {node}
    while True:
        parents = parent_map(ledger, [node])
        if node not in parents or parents[node] in seen:
            return node
        node = parents[node]
        seen.add(node)


def mol_beads(ledger: Ledger, root_id: str) -> list[Bead]:
    """The root's descendants (wisps and templates included) in step order."""
    if not ledger.exists(root_id):
        raise NotFoundError(f"no issue found matching {root_id!r}")
    beads = [b for b in ledger.list(Filter(mol=root_id), sort="id") if b["id"] != root_id]
    beads.sort(key=lambda b: step_key(root_id, b))
    return beads


def is_work_step(bead: Bead) -> bool:
    """True for a step someone works on (not a container, sub-molecule or gate)."""
    return bead.get("issue_type") not in INFRA_TYPES


def work_steps(ledger: Ledger, root_id: str) -> list[Bead]:
    """The molecule's work steps in step order."""
    return [b for b in mol_beads(ledger, root_id) if is_work_step(b)]


def _ready_ids(ledger: Ledger, root_id: str) -> set[str]:
    return {b["id"] for b in ledger.ready(Filter(mol=root_id))}


def current_step(ledger: Ledger, root_id: str) -> Bead | None:
    """The first step, in step order, that is ready or in progress (None when none is).

    This is where a worker resumes after a crash: closed steps stay closed, and
    the first unfinished step that can run is next.
    """
    ready = _ready_ids(ledger, root_id)
    for bead in work_steps(ledger, root_id):
        if bead["status"] == "in_progress" or bead["id"] in ready:
            return bead
    return None


def next_step_for(ledger: Ledger, root_id: str, agent: str | None) -> Bead | None:
    """What ``agent`` should do next: its own in-progress step, else :func:`current_step`."""
    if agent:
        for bead in work_steps(ledger, root_id):
            if bead["status"] == "in_progress" and bead.get("assignee") == agent:
                return bead
    return current_step(ledger, root_id)


def progress(ledger: Ledger, root_id: str) -> dict[str, Any]:
    """Counts of the molecule's work steps by state, and the current step."""
    root = ledger.get(root_id)
    steps = work_steps(ledger, root_id)
    ready = _ready_ids(ledger, root_id)
    closed = sum(1 for s in steps if s["status"] == "closed")
    in_progress = sum(1 for s in steps if s["status"] == "in_progress")
    n_ready = sum(1 for s in steps if s["id"] in ready)
    current = current_step(ledger, root_id)
    total = len(steps)
    out: dict[str, Any] = {
        "id": root_id, "title": root["title"], "status": root["status"],
        "phase": "vapor" if root.get("ephemeral") else "liquid",
        "total": total, "closed": closed, "in_progress": in_progress, "ready": n_ready,
        "waiting": total - closed - in_progress - n_ready,
        "percent": round(100.0 * closed / total, 1) if total else 100.0,
        "complete": total > 0 and closed == total,
        "current": None,
    }
    if current is not None:
        out["current"] = {"id": current["id"], "title": current["title"],
                          "status": current["status"],
                          "step": (current.get("metadata") or {}).get("step")}
    return out


def _blockers(ledger: Ledger, ids: list[str]) -> dict[str, list[str]]:
    with ledger.snapshot() as r:
        return r.open_blockers_of(ids)


def tree(ledger: Ledger, bead_id: str) -> dict[str, Any]:
    """The molecule (or proto) under ``bead_id`` as nested nodes with their states."""
    root = ledger.get(bead_id)
    beads = mol_beads(ledger, bead_id)
    ids = [b["id"] for b in beads]
    parents = parent_map(ledger, ids)
    blockers = _blockers(ledger, ids)
    ready = _ready_ids(ledger, bead_id) if not root.get("is_template") else set()

    def node(b: Bead) -> dict[str, Any]:
        meta = b.get("metadata") or {}
        n: dict[str, Any] = {"id": b["id"], "title": b["title"], "status": b["status"],
                             "issue_type": b.get("issue_type", "task"),
                             "priority": b.get("priority", 2), "children": []}
        for key in ("assignee", "close_reason"):
            if b.get(key):
                n[key] = b[key]
        if meta.get("step"):
            n["step"] = meta["step"]
        if b["id"] in ready:
            n["ready"] = True
        if blockers.get(b["id"]):
            n["blocked_by"] = blockers[b["id"]]
        return n

    nodes = {b["id"]: node(b) for b in beads}
    top: list[dict[str, Any]] = []
    for b in beads:
        parent = parents.get(b["id"])
        (nodes[parent]["children"] if parent in nodes else top).append(nodes[b["id"]])
    out: dict[str, Any] = {"root": root, "steps": top}
    if not root.get("is_template"):
        out["progress"] = progress(ledger, bead_id)
    return out


def list_mols(ledger: Ledger, *, include_closed: bool = False,
              wisps: bool = True, mols: bool = True) -> list[dict[str, Any]]:
    """Top-level molecules (and wisps), newest first, with their progress."""
    f = Filter(issue_type=["molecule"], include_ephemeral=wisps, include_closed=include_closed)
    roots = [b for b in ledger.list(f, sort="created", reverse=True)
             if not b.get("is_template")]
    parents = parent_map(ledger, [b["id"] for b in roots])
    out = []
    for b in roots:
        if b["id"] in parents:
            continue  # a container or a bonded sub-molecule
        if not mols and not b.get("ephemeral"):
            continue
        p = progress(ledger, b["id"])
        out.append({"id": b["id"], "title": b["title"], "status": b["status"],
                    "phase": p["phase"], "formula": (b.get("metadata") or {}).get("formula"),
                    "closed": p["closed"], "total": p["total"],
                    "digest": "digest" in (b.get("labels") or []),
                    "assignee": b.get("assignee"), "created_at": b.get("created_at")})
    return out


def _summary(text: str, width: int = 100) -> str:
    # the same as search.summary, kept here so this module stays import-light
    para = " ".join(text.strip().split("\n\n")[0].split())
    return para if len(para) <= width else para[: width - 1].rstrip() + "…"


def list_protos(ledger: Ledger | None) -> list[dict[str, Any]]:
    """Protos cooked into the ledger (template roots)."""
    if ledger is None:
        return []
    f = Filter(include_templates=True, labels_all=["template"])
    roots = [b for b in ledger.list(f, sort="id") if b.get("is_template")]
    parents = parent_map(ledger, [b["id"] for b in roots])
    out = []
    for b in roots:
        if b["id"] in parents:
            continue
        meta = b.get("metadata") or {}
        out.append({"id": b["id"], "name": b["id"], "formula": meta.get("formula"),
                    "type": meta.get("formula_type", "workflow"),
                    "description": _summary(b.get("description") or ""),
                    "stored": True})
    return out
