"""Pour and wisp: a blueprint becomes a live molecule (liquid) or a wisp (vapor).

A molecule is a root bead of type ``molecule`` plus one child bead per step:
``ROOT.1``, ``ROOT.2`` … in the formula's step order (``ROOT.2.1`` for a step's
children), ``blocks`` edges for ``needs``, a ``gate`` bead per gated step.
Because the root and containers are infrastructure and hold nothing, ``bd
ready --mol ROOT`` shows exactly the steps whose prerequisites are closed, and
closing the last step closes the root (in the same transaction).

Everything happens inside the caller's :class:`~gastown.ledger.ops.Txn`, so a
pour is all-or-nothing: a ``kill -9`` half way leaves no partial molecule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError
from ..ledger import ids as _ids
from ..ledger.model import Bead
from ..ledger.ops import Txn
from .graph import creation_order
from .model import Blueprint, Step
from .vars import Substituter, eval_condition

__all__ = ["instantiate", "apply_conditions", "mol_title"]


def apply_conditions(steps: list[Step], values: Mapping[str, str]) -> list[Step]:
    """Drop steps whose ``condition`` is false; their dependents inherit their prerequisites."""
    dropped: dict[str, Step] = {}

    def mark(s: Step) -> None:
        dropped[s.id] = s
        for c in s.children:
            mark(c)

    def scan(level: list[Step]) -> None:
        for s in level:
            if s.condition and not eval_condition(s.condition, values):
                mark(s)
            else:
                scan(s.children)

    scan(steps)
    if not dropped:
        return steps  # nothing to drop: instantiation only reads the steps

    memo: dict[str, list[str]] = {}

    def through(start: str) -> list[str]:
        """The kept steps a dropped step stood for (memoised, no recursion: chains are long)."""
        if start in memo:
            return memo[start]
        partial: dict[str, dict[str, None]] = {start: {}}
        stack = [(start, iter(dropped[start].needs))]
        while stack:
            node, pending = stack[-1]
            nxt = next(pending, None)
            if nxt is None:
                stack.pop()
                memo[node] = list(partial.pop(node))
                if stack:
                    partial[stack[-1][0]].update(dict.fromkeys(memo[node]))
            elif nxt not in dropped:
                partial[node][nxt] = None
            elif nxt in memo:
                partial[node].update(dict.fromkeys(memo[nxt]))
            elif nxt not in partial:  # (a cycle cannot pass validation; never loop on one)
                partial[nxt] = {}
                stack.append((nxt, iter(dropped[nxt].needs)))
        return memo[start]

    def effective(ids: list[str]) -> list[str]:
        out: dict[str, None] = {}
        for x in ids:
            out.update(dict.fromkeys(through(x) if x in dropped else [x]))
        return list(out)

    def keep(level: list[Step]) -> list[Step]:
        out = []
        for s in level:
            if s.id in dropped:
                continue
            c = s.clone()
            c.needs = effective(s.needs)
            c.conditional = effective(s.conditional)
            if c.waits_for in dropped:
                c.waits_for = None
            c.children = keep(s.children)
            out.append(c)
        return out

    return keep(steps)


def mol_title(bp: Blueprint, given: Mapping[str, str]) -> str:
    """``formula: k=v, …`` for the variables the caller set (one line, bounded)."""
    shown = [f"{k}={' '.join(str(v).split())}" for k, v in given.items() if k in bp.vars]
    title = bp.name + (": " + ", ".join(shown) if shown else "")
    return title if len(title) <= 200 else title[:197] + "..."


def _number(steps: list[Step], base: str, ids: dict[str, str]) -> int:
    for n, s in enumerate(steps, start=1):
        ids[s.id] = _ids.child_id(base, n)
        _number(s.children, ids[s.id], ids)
    return len(steps)


def instantiate(t: Txn, bp: Blueprint, values: Mapping[str, str], *, wisp: bool = False,
                given: Mapping[str, str] | None = None, parent: str | None = None,
                proto_id: str | None = None, extra_meta: Mapping[str, Any] | None = None
                ) -> tuple[Bead, dict[str, str]]:
    """Create the molecule for ``bp`` with ``values``; returns ``(root, step_id → bead_id)``.

    ``parent`` attaches the new root as a child of an existing bead (a bonded
    sub-molecule); otherwise the root is top-level.
    """
    steps = apply_conditions(bp.steps, values)
    given = dict(given or {})
    substitute = Substituter(values, bp.source or f"formula {bp.name}")
    meta: dict[str, Any] = {"formula": bp.name, "phase": "vapor" if wisp else "liquid",
                            "vars": dict(values)}
    if proto_id:
        meta["proto"] = proto_id
    if bp.phase:
        meta["formula_phase"] = bp.phase
    if bp.squash:
        meta["squash"] = dict(bp.squash)
    if bp.review_only:
        meta["review_only"] = True
    if extra_meta:
        meta.update(extra_meta)
    inline = bp.pour is False
    if inline:
        # pour = false: one root bead carries the checklist; no step beads
        meta["inline_steps"] = [
            {"step": s.id, "title": substitute(s.title, s.id),
             "description": substitute(s.description, s.id), "needs": list(s.needs)}
            for s in _walk(steps)]
    root = t.create(mol_title(bp, given), issue_type="molecule", parent=parent,
                    description=substitute(bp.description), ephemeral=wisp,
                    metadata=meta, source_formula=bp.name)
    root_id = root["id"]
    if inline:
        t.emit("mol.poured", root_id, {"formula": bp.name, "steps": 0, "wisp": wisp})
        return t.get(root_id), {}
    ids: dict[str, str] = {}
    count = _number(steps, root_id, ids)
    deepest = max((_ids.child_depth(v) for v in ids.values()), default=0)
    if deepest > _ids.MAX_CHILD_DEPTH:
        raise ValidationError(
            f"cannot pour {bp.name} under {parent or 'a new root'}: its steps would nest "
            f"{deepest} levels deep (at most {_ids.MAX_CHILD_DEPTH})")
    parents = {c.id: s.id for s in _walk(steps) for c in s.children}
    gates: dict[str, str] = {}
    for s in _walk(steps):
        if s.gate:
            count += 1
            gates[s.id] = _ids.child_id(root_id, count)
    # a step with a check: a "check" gate after it, under the same parent, holds back its
    # dependents (and the parent) until the check passes
    checks: dict[str, str] = {}
    numbered = {root_id: count, **{ids[s.id]: len(s.children) for s in _walk(steps)}}
    for s in _walk(steps):
        if s.check:
            home = ids[parents[s.id]] if s.id in parents else root_id
            numbered[home] += 1
            checks[s.id] = _ids.child_id(home, numbered[home])
    for s in creation_order(steps):
        deps = [("blocks", ids[n]) for n in s.needs]
        deps += [("blocks", checks[n]) for n in s.needs if n in checks]
        deps += [("conditional-blocks", ids[n]) for n in s.conditional]
        if s.waits_for:
            deps.append(("waits-for", ids[s.waits_for]))
        if s.gate:
            g = s.gate
            # variables reach a gate's id and timeout too (a timer gate's time, say)
            gid, gwait = substitute(g.id, s.id), substitute(g.timeout, s.id)
            gspec = {**g.to_dict(), **({"id": gid} if gid else {}),
                     **({"timeout": gwait} if gwait else {})}
            gate_title = f"Gate ({g.type}{': ' + gid if gid else ''}) before: " \
                         f"{substitute(s.title, s.id)}"
            t.create(" ".join(gate_title.split())[:200], id=gates[s.id], parent=root_id,
                     issue_type="gate", description=substitute(g.description, s.id),
                     ephemeral=wisp, source_formula=bp.name,
                     metadata={"gate": gspec, "step": s.id, "await_type": g.type,
                               "await_id": gid, "timeout": gwait})
            deps.append(("blocks", gates[s.id]))
        labels = [substitute(lb, s.id) for lb in s.labels]
        smeta: dict[str, Any] = {"step": s.id}
        if s.metadata:
            smeta["metadata"] = s.metadata
        if s.children:
            smeta["container_type"] = s.type
        if s.check:
            smeta["check"] = s.check.to_dict()
            smeta["check_gate"] = checks[s.id]
        if s.retry:
            smeta["retry"] = dict(s.retry)
        assignee = substitute(s.assignee, s.id).strip()
        t.create(" ".join(substitute(s.title, s.id).split()) or s.id, id=ids[s.id],
                 parent=ids[parents[s.id]] if s.id in parents else root_id,
                 # a container finishes with its children: as a molecule it closes itself
                 issue_type="molecule" if s.children else s.type,
                 priority=2 if s.priority is None else s.priority,
                 description=substitute(s.description, s.id),
                 acceptance_criteria=substitute(s.acceptance, s.id),
                 notes=substitute(s.notes, s.id), labels=[lb for lb in labels if lb],
                 assignee=assignee or None, deps=deps, ephemeral=wisp, metadata=smeta,
                 source_formula=s.source or bp.name)
        if s.check:
            _create_check_gate(t, s, ids, checks, parents, root_id, wisp, bp.name)
    meta["steps"] = ids
    if gates:
        meta["gates"] = gates
    t.update(root_id, metadata=meta)
    t.emit("mol.poured", root_id, {"formula": bp.name, "steps": len(ids), "wisp": wisp,
                                   "parent": parent})
    return t.get(root_id), ids


def _create_check_gate(t: Txn, s: Step, ids: Mapping[str, str], checks: Mapping[str, str],
                       parents: Mapping[str, str], root_id: str, wisp: bool, formula: str
                       ) -> None:
    """The gate that holds ``s``'s dependents until its check passes (see controller.checks)."""
    assert s.check is not None
    on_exhausted = str((s.retry or {}).get("on_exhausted") or "hard_fail")
    t.create(f"Check ({s.check.path}) after: {ids[s.id]}"[:200], id=checks[s.id],
             parent=ids[parents[s.id]] if s.id in parents else root_id, issue_type="gate",
             description=f"Runs {s.check.path} in the agent's worktree when {ids[s.id]} "
                         f"closes; up to {s.check.max_attempts} attempts.",
             ephemeral=wisp, source_formula=formula, deps=[("blocks", ids[s.id])],
             metadata={"step": s.id, "await_type": "check", "await_id": ids[s.id],
                       "check": s.check.to_dict(), "attempts": 0,
                       "on_exhausted": on_exhausted})


def _walk(steps: list[Step]) -> list[Step]:
    out: list[Step] = []
    for s in steps:
        out += s.walk()
    return out
