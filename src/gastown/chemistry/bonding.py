"""Bond: the polymorphic combiner (one transaction per bond; :func:`bond_in` is the core).

=================  ====================================================================
operands           result
=================  ====================================================================
proto + proto      a compound proto (``--as NAME``): both step graphs copied into one
                   new template; sequential bonds make B's entry steps wait for A's exits
proto + mol        the proto is poured as a sub-molecule under the mol's root (or under
proto + wisp       the given step) in the target's phase; sequential bonds make it wait
                   for the target's current last steps.  ``--pour``/``--wisp`` forcing the
                   *other* phase spawns a separate root linked by reference only
mol + mol          B's root depends on A's root (``blocks``; ``related`` when parallel);
wisp + wisp        both keep flowing
mol + wisp         reference only: a ``related`` edge, no phase change, nothing blocks
=================  ====================================================================

Bond types: ``sequential`` (default, ``blocks``), ``parallel`` (no blocking edge),
``conditional`` (``conditional-blocks``: B is the path taken after A).
Formulas may be used wherever a proto may; they are compiled, not stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import ConflictError, GastownError, UsageError
from ..ledger.core import Ledger
from ..ledger.ops import Txn
from .api import Source, formula_paths, resolve_source
from .formula import NAME_RE
from .graph import entries_and_exits, validate
from .instantiate import instantiate
from .model import Blueprint
from .proto import load_proto, store_proto
from .vars import resolve_vars

__all__ = ["bond", "bond_in", "bond_operand", "BondOperand", "BOND_TYPES", "compound_name"]

BOND_TYPES = ("sequential", "parallel", "conditional")
_EDGE = {"sequential": "blocks", "conditional": "conditional-blocks", "parallel": "related"}


def compound_name(label: str) -> str:
    """``"Review and Deploy"`` → ``mol-review-and-deploy`` (an id-safe proto name)."""
    if NAME_RE.fullmatch(label) and label.startswith("mol-"):
        return label
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
    if not slug:
        raise UsageError(f"--as {label!r}: the name needs letters or digits")
    return slug if slug.startswith("mol-") else "mol-" + slug


def _kind(ledger: Ledger, ref: str) -> tuple[str, str]:
    """``("proto"|"mol"|"wisp"|"formula", id_or_name)`` for one operand."""
    if ledger.exists(ref):
        bead = ledger.get(ref)
        if bead.get("is_template"):
            return "proto", ref
        return ("wisp" if bead.get("ephemeral") else "mol"), ref
    try:
        full = ledger.resolve_id(ref)
        bead = ledger.get(full)
        if not bead.get("is_template"):
            return ("wisp" if bead.get("ephemeral") else "mol"), full
    except GastownError:  # not an id: it must be a proto or formula name
        pass
    return "formula", ref


@dataclass
class BondOperand:
    """One operand of a bond, decided by reads before the bond's transaction."""

    ref: str  # as the caller named it
    kind: str  # "proto" | "formula" | "mol" | "wisp"
    id: str  # the bead id (mol, wisp) or the proto/formula name
    source: Source | None = None  # protos and formulas: resolved (formulas compiled)


def bond_operand(ledger: Ledger, ref: str, paths: list[str],
                 values: Mapping[str, str] | None = None) -> BondOperand:
    """Resolve ``ref`` for :func:`bond_in` (a formula is compiled here, outside the txn)."""
    kind, ident = _kind(ledger, ref)
    if kind in ("proto", "formula"):
        return BondOperand(ref, kind, ident, resolve_source(ledger, ident, paths,
                                                            dict(values or {})))
    return BondOperand(ref, kind, ident)


def _blueprint(t: Txn, op: BondOperand) -> tuple[Blueprint, str | None]:
    src = op.source
    assert src is not None, f"{op.ref} is not a proto or formula"
    if src.blueprint is not None:
        return src.blueprint, None
    return load_proto(t, src.name), src.name


def _merge(a: Blueprint, b: Blueprint, name: str, bond_type: str, title: str) -> Blueprint:
    """A compound blueprint: A's steps, then B's (renamed on clashes), wired by ``bond_type``."""
    a_steps = [s.clone() for s in a.steps]
    b_steps = [s.clone() for s in b.steps]
    taken = {s.id for st in a_steps for s in st.walk()}
    rename: dict[str, str] = {}
    for st in b_steps:
        for s in st.walk():
            new = s.id
            if new in taken:
                new = f"{b.name}.{s.id}"
                n = 2
                while new in taken:
                    new = f"{b.name}{n}.{s.id}"
                    n += 1
            rename[s.id] = new
            taken.add(new)
    for st in b_steps:
        for s in st.walk():
            s.id = rename[s.id]
            s.needs = [rename.get(x, x) for x in s.needs]
            s.conditional = [rename.get(x, x) for x in s.conditional]
            if s.waits_for:
                s.waits_for = rename.get(s.waits_for, s.waits_for)
    if bond_type != "parallel":
        _, exits = entries_and_exits(a_steps)
        entries, _ = entries_and_exits(b_steps)
        for s in b_steps:
            if s.id in entries:
                target = s.needs if bond_type == "sequential" else s.conditional
                target[:0] = [x for x in exits if x not in target]
    vars_ = dict(b.vars)
    vars_.update(a.vars)
    return Blueprint(name=name, description=title, type="workflow", phase=a.phase or b.phase,
                     vars=vars_, steps=a_steps + b_steps, source=f"bond:{a.name}+{b.name}",
                     extra={"bonded_from": [{"source": a.name, "bond_type": bond_type},
                                            {"source": b.name, "bond_type": bond_type}]})


def _sinks(t: Txn, parent_id: str, exclude: str) -> list[str]:
    """The parent's current last children: those no sibling waits on (gates excluded)."""
    kids = [k for k in t.children_of(parent_id) if k != exclude]
    kids = [k for k in kids if t.get(k).get("issue_type") != "gate"]
    if not kids:
        return []
    waited = {dst for _, dst, _ in t.edges_from(kids, ("blocks", "conditional-blocks",
                                                       "waits-for"))}
    return [k for k in kids if k not in waited]


def _check(bond_type: str, phase: str | None, when: str | None = None) -> None:
    if bond_type not in BOND_TYPES:
        raise UsageError(f"invalid bond type {bond_type!r}: use {', '.join(BOND_TYPES)}")
    if when is not None and (when not in ("success", "failure") or bond_type != "conditional"):
        raise UsageError(f"--when {when!r}: use success or failure, with --type conditional")
    if phase not in (None, "liquid", "vapor"):
        raise UsageError(f"invalid phase {phase!r}")


def bond(ledger: Ledger, a: str, b: str, *, bond_type: str = "sequential",
         name: str | None = None, vars: dict[str, str] | None = None,
         phase: str | None = None, search_paths: list[str] | None = None,
         actor: str | None = None, when: str | None = None) -> dict[str, Any]:
    """Bond two operands (protos, formulas, mols, wisps); see the module table.

    ``phase`` is ``"liquid"`` (``--pour``), ``"vapor"`` (``--wisp``) or None
    (follow the target).  Returns ``{result_id, result_type, bond_type, …}``.
    ``when`` (``"success"``/``"failure"``, conditional bonds only) makes B's branch
    apply only on that outcome of A: the controller's housekeeping closes it as
    skipped otherwise (controller/housekeeping.py).  One transaction: :func:`bond_in`
    inside :meth:`Ledger.transaction`.
    """
    _check(bond_type, phase, when)
    given = dict(vars or {})
    paths = formula_paths(ledger, search_paths)
    op_a = bond_operand(ledger, a, paths, given)
    op_b = bond_operand(ledger, b, paths, given)
    with ledger.transaction(actor) as t:
        return bond_in(t, op_a, op_b, bond_type=bond_type, name=name, vars=given,
                       phase=phase, when=when)


def bond_in(t: Txn, a: BondOperand, b: BondOperand, *, bond_type: str = "sequential",
            name: str | None = None, vars: Mapping[str, str] | None = None,
            phase: str | None = None, when: str | None = None) -> dict[str, Any]:
    """The core of :func:`bond` inside a caller's transaction ``t``.

    The operands come from :func:`bond_operand` (reads and formula compiling
    happen before the transaction, as for :func:`~gastown.chemistry.api.pour_in`).
    """
    _check(bond_type, phase, when)
    edge_meta: dict[str, Any] = {"bond": bond_type, **({"when": when} if when else {})}
    given = dict(vars or {})
    ka, ida, kb, idb = a.kind, a.id, b.kind, b.id
    a_tmpl, b_tmpl = ka in ("proto", "formula"), kb in ("proto", "formula")
    if a_tmpl and b_tmpl:
        bpa, _ = _blueprint(t, a)
        bpb, _ = _blueprint(t, b)
        cname = compound_name(name) if name else f"{bpa.name}-{bpb.name}"
        if not NAME_RE.fullmatch(cname):
            raise UsageError(f"invalid compound name {cname!r}")
        if cname in (bpa.name, bpb.name):
            raise ConflictError(f"the compound cannot reuse an operand's name {cname!r}")
        compound = _merge(bpa, bpb, cname, bond_type, name or cname)
        validate(compound, f"bond {bpa.name} + {bpb.name}")
        _, action = store_proto(t, compound)
        result = {"result_id": cname, "result_type": "compound_proto",
                  "bond_type": bond_type, "action": action,
                  "steps": len(compound.all_steps())}
    elif a_tmpl or b_tmpl:
        tmpl, target = (a, b) if a_tmpl else (b, a)
        bp, proto_id = _blueprint(t, tmpl)
        result = _attach(t, bp, proto_id, target.id, target.kind, bond_type, phase, given,
                         edge_meta)
    elif {ka, kb} == {"mol", "wisp"}:
        t.add_dep(idb, ida, "related", metadata={"bond": bond_type, "reference_only": True})
        result = {"result_id": ida, "result_type": "reference_link", "bond_type": bond_type}
    else:
        edge = _EDGE[bond_type]
        t.add_dep(idb, ida, edge, metadata=edge_meta)
        kind = "compound_wisp" if ka == "wisp" else "compound_molecule"
        result = {"result_id": ida, "result_type": kind, "bond_type": bond_type,
                  "linked": idb, "edge": edge}
    t.emit("mol.bonded", str(result["result_id"]),
           {"a": a.ref, "b": b.ref, "bond_type": bond_type,
            "result_type": result["result_type"]})
    return result


def _attach(t: Txn, bp: Blueprint, proto_id: str | None, target: str, target_kind: str,
            bond_type: str, phase: str | None, given: dict[str, str],
            edge_meta: dict[str, Any] | None = None) -> dict[str, Any]:
    target_bead = t.get(target)
    if "digest" in (target_bead.get("labels") or []):
        raise ConflictError(f"{target} is a digest (a squashed molecule): bond to a live one")
    target_vapor = bool(target_bead.get("ephemeral"))
    want_vapor = target_vapor if phase is None else phase == "vapor"
    values = resolve_vars(bp, given)
    meta = {"bonded_into": target, "bond_type": bond_type}
    if want_vapor != target_vapor:
        # crossing the phase boundary: its own root, linked by reference only
        root, ids = instantiate(t, bp, values, wisp=want_vapor, given=given, proto_id=proto_id,
                                extra_meta={"bonded_from": target, "bond_type": bond_type})
        t.add_dep(root["id"], target, "related",
                  metadata={"bond": bond_type, "reference_only": True})
        return {"result_id": root["id"], "result_type": "reference_link",
                "bond_type": bond_type, "spawned": len(ids), "id_mapping": ids,
                "linked": target, "phase": "vapor" if want_vapor else "liquid"}
    if target_bead["status"] == "closed":
        t.reopen(target, reason=f"bonded {bp.name}")
    root, ids = instantiate(t, bp, values, wisp=want_vapor, given=given, parent=target,
                            proto_id=proto_id, extra_meta=meta)
    if bond_type != "parallel":
        for sink in _sinks(t, target, root["id"]):
            t.add_dep(root["id"], sink, _EDGE[bond_type],
                      metadata=edge_meta or {"bond": bond_type})
    return {"result_id": target, "result_type": "compound_wisp" if want_vapor
            else "compound_molecule", "bond_type": bond_type, "spawned": len(ids),
            "attached": root["id"], "id_mapping": ids,
            "phase": "vapor" if want_vapor else "liquid"}

