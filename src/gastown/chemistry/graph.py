"""The step graph: entry/exit steps, validation, and a safe creation order.

Edges here are "X waits for Y": ``needs`` (blocks), ``conditional`` and
``waits_for``.  A step with children is a container that finishes when its
children do, so a step may not wait for its own ancestor or descendant — that
would be a deadlock the ready rule can never release.
"""

from __future__ import annotations

from ..errors import FormulaError
from .formula import STEP_ID_RE
from .model import Blueprint, Step
from .vars import check_condition

__all__ = ["entries_and_exits", "validate", "creation_order", "waits_on"]


def _walk(steps: list[Step]) -> list[Step]:
    out: list[Step] = []
    for s in steps:
        out += s.walk()
    return out


def waits_on(step: Step) -> list[str]:
    """Every step id ``step`` waits for, in declaration order."""
    out = list(step.needs)
    for x in step.conditional:
        if x not in out:
            out.append(x)
    if step.waits_for and step.waits_for not in out:
        out.append(step.waits_for)
    return out


def entries_and_exits(steps: list[Step]) -> tuple[list[str], list[str]]:
    """Top-level steps waiting on nothing inside ``steps``, and those nothing inside waits on.

    Used to splice a group of steps into a bigger graph: the entries inherit the
    group's prerequisites, and whatever follows the group waits for the exits.
    """
    inside = {s.id for s in _walk(steps)}
    waited: set[str] = set()
    for s in _walk(steps):
        waited.update(x for x in waits_on(s) if x in inside)
    entries = [s.id for s in steps if not any(x in inside for x in waits_on(s))]
    exits = [s.id for s in steps if s.id not in waited
             and not any(c.id in waited for c in s.walk()[1:])]
    if not exits and steps:
        exits = [steps[-1].id]
    return entries, exits


def validate(bp: Blueprint, where: str) -> None:
    """Unique ids, known references, no self/ancestor waits, no cycles."""
    seen: dict[str, Step] = {}
    ancestors: dict[str, list[str]] = {}

    def visit(level: list[Step], chain: list[str]) -> None:
        for s in level:
            if s.id in seen:
                raise FormulaError(f"{where}: duplicate step id '{s.id}'")
            if not STEP_ID_RE.fullmatch(s.id):
                raise FormulaError(f"{where}: step '{s.id}': invalid step id (after expansion)")
            if not s.title.strip():
                raise FormulaError(f"{where}: step '{s.id}': key 'title' is required")
            if "\n" in s.title:
                raise FormulaError(f"{where}: step '{s.id}': key 'title' must be one line")
            seen[s.id] = s
            ancestors[s.id] = chain
            visit(s.children, [*chain, s.id])

    visit(bp.steps, [])
    for s in seen.values():
        sw = f"{where}: step '{s.id}'"
        for key, targets in (("needs", s.needs), ("conditional", s.conditional),
                             ("waits_for", [s.waits_for] if s.waits_for else [])):
            for t in targets:
                if t not in seen:
                    raise FormulaError(f"{sw}: key '{key}' references unknown step '{t}'")
                if t == s.id:
                    raise FormulaError(f"{sw}: key '{key}': a step cannot wait for itself")
                if t in ancestors[s.id]:
                    raise FormulaError(f"{sw}: key '{key}': a step cannot wait for its own "
                                       f"parent '{t}' (the parent finishes after it)")
                if s.id in ancestors[t]:
                    raise FormulaError(f"{sw}: key '{key}': a step cannot wait for its own "
                                       f"child '{t}' (the child is held until it is ready)")
        if s.condition:
            check_condition(s.condition, sw)
    creation_order(bp.steps, where)


def creation_order(steps: list[Step], where: str = "") -> list[Step]:
    """Steps ordered so parents and every waited-for step come first (stable, Kahn).

    Raises :class:`FormulaError` naming a cycle when there is none.
    """
    all_steps = _walk(steps)
    index = {s.id: i for i, s in enumerate(all_steps)}
    parent: dict[str, str] = {}
    for s in all_steps:
        for c in s.children:
            parent[c.id] = s.id
    before: dict[str, set[str]] = {s.id: set() for s in all_steps}
    for s in all_steps:
        before[s.id].update(t for t in waits_on(s) if t in index)
        if s.id in parent:
            before[s.id].add(parent[s.id])
    after: dict[str, list[str]] = {s.id: [] for s in all_steps}
    for sid, deps in before.items():
        for d in deps:
            after[d].append(sid)
    remaining = {sid: len(deps) for sid, deps in before.items()}
    import heapq

    heap = [index[sid] for sid, n in remaining.items() if n == 0]
    heapq.heapify(heap)
    order: list[Step] = []
    while heap:
        s = all_steps[heapq.heappop(heap)]
        order.append(s)
        for nxt in after[s.id]:
            remaining[nxt] -= 1
            if remaining[nxt] == 0:
                heapq.heappush(heap, index[nxt])
    if len(order) != len(all_steps):
        stuck = {sid for sid, n in remaining.items() if n > 0}
        cycle = _find_cycle(stuck, before)
        raise FormulaError(f"{where}: dependency cycle: {' -> '.join(cycle)}")
    return order


def _find_cycle(nodes: set[str], before: dict[str, set[str]]) -> list[str]:
    start = min(nodes)
    path = [start]
    seen = {start: 0}
    node = start
    while True:
        nxt = min(d for d in before[node] if d in nodes)
        if nxt in seen:
            return path[seen[nxt]:] + [nxt]
        seen[nxt] = len(path)
        path.append(nxt)
        node = nxt
