"""Protos: blueprints stored in the ledger as template beads (the solid phase).

A proto's root bead has the formula's name as its id (``mol-engineer-in-box``),
``is_template`` set and the ``template`` label; each step is a child bead
``<formula>.<step-id>`` with ``blocks`` edges for its ``needs``.  Templates are
never ready, never exported, and can be read back into a :class:`Blueprint`.

Re-cooking is idempotent: cooking the same compiled formula again changes
nothing; cooking a changed one replaces the old proto in the same transaction
(its template ids are names, so they are freed for the new version).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from typing import Any

from ..errors import FormulaError, NotFoundError
from ..ledger.model import Bead
from ..ledger.ops import Txn
from .graph import creation_order
from .model import Blueprint, Check, Gate, Step, VarDef
from .vars import Substituter

__all__ = ["store_proto", "load_proto", "proto_view", "blueprint_hash", "is_proto",
           "TEMPLATE_LABEL"]

TEMPLATE_LABEL = "template"


def blueprint_hash(bp: Blueprint) -> str:
    """A content hash of everything a proto stores (to make re-cooking a no-op)."""
    data = {"name": bp.name, "description": bp.description, "type": bp.type,
            "phase": bp.phase, "pour": bp.pour, "squash": bp.squash,
            "review_only": bp.review_only,
            "vars": {k: v.to_dict() for k, v in bp.vars.items()},
            "steps": [asdict(s) for s in bp.steps], "extra": bp.extra}
    text = json.dumps(data, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def is_proto(bead: Bead) -> bool:
    """True for a proto root or step (a template bead)."""
    return bool(bead.get("is_template")) or TEMPLATE_LABEL in (bead.get("labels") or [])


def with_values(bp: Blueprint, values: dict[str, str]) -> Blueprint:
    """A copy of ``bp`` with ``{{var}}`` replaced for the given values only."""
    if not values:
        return bp
    out = Blueprint(**{**bp.__dict__, "steps": [s.clone() for s in bp.steps]})
    sub = Substituter(values, bp.source or f"formula {bp.name}")
    for s in out.all_steps():
        for key in ("title", "description", "acceptance", "notes", "assignee"):
            setattr(s, key, sub(getattr(s, key), s.id))
        s.labels = [sub(lb, s.id) for lb in s.labels]
    out.description = sub(bp.description)
    return out


def store_proto(t: Txn, bp: Blueprint, cooked_vars: dict[str, str] | None = None
                ) -> tuple[Bead, str]:
    """Write ``bp`` as template beads; returns ``(root, action)``.

    ``action`` is ``created``, ``unchanged`` or ``replaced``.
    """
    digest = blueprint_hash(bp)
    action = "created"
    if t.exists(bp.name):
        old = t.get(bp.name)
        if not old.get("is_template"):
            raise FormulaError(f"cannot cook {bp.name}: id {bp.name} belongs to a bead that is "
                               "not a proto")
        if (old.get("metadata") or {}).get("cook_hash") == digest:
            return old, "unchanged"
        # template ids are names: free them so the new version can take them again
        t.unretire(t.delete(bp.name, cascade=True))
        action = "replaced"
    meta: dict[str, Any] = {"formula": bp.name, "formula_type": bp.type,
                            "vars": {k: v.to_dict() for k, v in bp.vars.items()},
                            "source": bp.source, "cook_hash": digest}
    for key in ("phase", "pour", "version", "squash", "review_only"):
        if getattr(bp, key) is not None:
            meta[key] = getattr(bp, key)
    if cooked_vars:
        meta["cooked_vars"] = dict(cooked_vars)
    if bp.extra:
        meta["extra"] = bp.extra
    root = t.create(bp.name, id=bp.name, issue_type="epic", description=bp.description,
                    is_template=True, labels=[TEMPLATE_LABEL], metadata=meta,
                    source_formula=bp.name)
    parents = {c.id: s.id for s in bp.all_steps() for c in s.children}
    positions = {s.id: i for i, s in enumerate(bp.all_steps())}
    for step in creation_order(bp.steps):
        bead_id = f"{bp.name}.{step.id}"
        deps = [("blocks", f"{bp.name}.{n}") for n in step.needs]
        deps += [("conditional-blocks", f"{bp.name}.{n}") for n in step.conditional]
        if step.waits_for:
            deps.append(("waits-for", f"{bp.name}.{step.waits_for}"))
        smeta: dict[str, Any] = {"step": step.id, "pos": positions[step.id]}
        if step.condition:
            smeta["condition"] = step.condition
        if step.gate:
            smeta["gate"] = step.gate.to_dict()
        if step.check:
            smeta["check"] = step.check.to_dict()
        if step.retry:
            smeta["retry"] = dict(step.retry)
        if step.metadata:
            smeta["metadata"] = step.metadata
        if step.priority is None:
            smeta["default_priority"] = True
        if step.source and step.source != bp.name:
            smeta["source"] = step.source
        parent = parents.get(step.id)
        t.create(step.title, id=bead_id, parent=f"{bp.name}.{parent}" if parent else bp.name,
                 issue_type=step.type, priority=2 if step.priority is None else step.priority,
                 description=step.description, acceptance_criteria=step.acceptance,
                 notes=step.notes, labels=[TEMPLATE_LABEL, *step.labels],
                 assignee=step.assignee or None, deps=deps, is_template=True,
                 metadata=smeta, source_formula=step.source or bp.name)
    t.emit("mol.cooked", bp.name, {"formula": bp.name, "steps": len(positions),
                                   "action": action})
    return root, action


def _subtree(t: Txn, root_id: str) -> list[Bead]:
    out: list[Bead] = []
    frontier = [root_id]
    while frontier:
        nxt: list[str] = []
        for bid in frontier:
            kids = [t.get(k) for k in t.children_of(bid)]
            kids.sort(key=lambda b: ((b.get("metadata") or {}).get("pos", 1 << 30), b["id"]))
            out += kids
            nxt += [k["id"] for k in kids]
        frontier = nxt
    return out


def load_proto(t: Txn, proto_id: str) -> Blueprint:
    """Read a proto (template beads) back into a blueprint."""
    root = t.get(proto_id)
    if not root.get("is_template"):
        raise NotFoundError(f"{proto_id} is not a proto (no template root with that id)")
    meta = root.get("metadata") or {}
    name = str(meta.get("formula") or proto_id)
    bp = Blueprint(name=name, description=root.get("description", ""),
                   type=str(meta.get("formula_type", "workflow")), phase=meta.get("phase"),
                   pour=meta.get("pour"), version=meta.get("version"),
                   vars={k: VarDef.from_dict(k, v) for k, v in (meta.get("vars") or {}).items()},
                   source=f"proto:{proto_id}", extra=dict(meta.get("extra") or {}),
                   squash=meta.get("squash"), review_only=meta.get("review_only"))
    for k, v in (meta.get("cooked_vars") or {}).items():
        # baked in at cook time: no longer something a pour must supply
        if k in bp.vars:
            bp.vars[k].default, bp.vars[k].required = str(v), False
    beads = _subtree(t, proto_id)
    step_of: dict[str, str] = {}
    steps: dict[str, Step] = {}
    for b in beads:
        bm = b.get("metadata") or {}
        sid = str(bm.get("step") or b["id"].removeprefix(proto_id + "."))
        step_of[b["id"]] = sid
        gate = bm.get("gate")
        steps[b["id"]] = Step(
            id=sid, title=b["title"], description=b.get("description", ""),
            acceptance=b.get("acceptance_criteria", ""), notes=b.get("notes", ""),
            type=b.get("issue_type", "task"),
            priority=None if bm.get("default_priority") else b.get("priority"),
            labels=[lb for lb in b.get("labels") or [] if lb != TEMPLATE_LABEL],
            metadata=dict(bm.get("metadata") or {}), assignee=b.get("assignee") or "",
            condition=bm.get("condition"), source=str(bm.get("source") or name),
            gate=Gate(**gate) if isinstance(gate, dict) else None,
            check=Check.from_dict(bm["check"]) if isinstance(bm.get("check"), dict) else None,
            retry=dict(bm["retry"]) if isinstance(bm.get("retry"), dict) else None)
    for src, dst, typ in t.edges_from(list(steps)):
        s = steps[src]
        if typ == "parent-child":
            if dst in steps:
                steps[dst].children.append(s)
            continue
        if dst not in step_of:
            continue
        if typ == "blocks":
            s.needs.append(step_of[dst])
        elif typ == "conditional-blocks":
            s.conditional.append(step_of[dst])
        elif typ == "waits-for":
            s.waits_for = step_of[dst]
    pos = {sid: (b.get("metadata") or {}).get("pos", 1 << 30) for sid, b in
           ((step_of[b["id"]], b) for b in beads)}
    for s in steps.values():
        s.children.sort(key=lambda c: (pos[c.id], c.id))
        s.needs.sort(key=lambda x: (pos.get(x, 0), x))
        s.conditional.sort(key=lambda x: (pos.get(x, 0), x))
    top = [b for b in beads if t.parents_of(b["id"]) == [proto_id]]
    bp.steps = sorted((steps[b["id"]] for b in top), key=lambda st: (pos[st.id], st.id))
    return bp


def proto_view(bp: Blueprint, *, proto_id: str | None = None, stored: bool = True,
               action: str | None = None) -> dict[str, Any]:
    """The JSON ``bd cook`` prints: the proto and a flat ``steps`` array (preorder)."""
    pid = proto_id or bp.name
    parents = {c.id: s.id for s in bp.all_steps() for c in s.children}
    steps = []
    for s in bp.all_steps():
        item: dict[str, Any] = {"id": f"{pid}.{s.id}", "step": s.id, "title": s.title,
                                "needs": [f"{pid}.{n}" for n in s.needs],
                                "type": s.type, "priority": 2 if s.priority is None else s.priority}
        if s.description:
            item["description"] = s.description
        if s.acceptance:
            item["acceptance"] = s.acceptance
        if s.labels:
            item["labels"] = list(s.labels)
        if s.assignee:
            item["assignee"] = s.assignee
        if s.id in parents:
            item["parent"] = f"{pid}.{parents[s.id]}"
        if s.children:
            item["children"] = [f"{pid}.{c.id}" for c in s.children]
        if s.conditional:
            item["conditional_needs"] = [f"{pid}.{n}" for n in s.conditional]
        if s.waits_for:
            item["waits_for"] = f"{pid}.{s.waits_for}"
        if s.condition:
            item["condition"] = s.condition
        if s.gate:
            item["gate"] = s.gate.to_dict()
        if s.check:
            item["check"] = s.check.to_dict()
        if s.retry:
            item["retry"] = dict(s.retry)
        steps.append(item)
    out: dict[str, Any] = {"id": pid, "title": bp.name, "formula": bp.name, "type": bp.type,
                           "description": bp.description, "is_template": True,
                           "vars": {k: v.to_dict() for k, v in bp.vars.items()},
                           "steps": steps, "stored": stored}
    if bp.phase:
        out["phase"] = bp.phase
    if bp.pour is not None:
        out["pour"] = bp.pour
    if bp.squash:
        out["squash"] = dict(bp.squash)
    if bp.review_only is not None:
        out["review_only"] = bp.review_only
    if action:
        out["action"] = action
    if bp.source and not bp.source.startswith("proto:"):
        out["source"] = bp.source
    return out
