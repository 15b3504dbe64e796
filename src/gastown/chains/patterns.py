"""Suspicious validation patterns: rubber-stamping and reciprocal loops.

Pure functions over records (what :func:`gastown.chains.entry` returns), so a
CV built elsewhere can show the same flags.

* ``rubber-stamp``: a ``validated`` record with no review activity
  (``quality.review_activity`` 0 or absent) -- approval without looking.
* ``reciprocal``: entities that validate each other's work in a loop (A
  validated B and B validated A; or A→B→C→A): every strongly connected group of
  two or more in the graph *validator → subject*.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["flags", "rubber_stamps", "loops"]


def rubber_stamps(recs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """A flag for each validation without review activity."""
    out = []
    for r in recs:
        q = r.get("quality") if isinstance(r.get("quality"), dict) else {}
        if r.get("kind") == "validated" and not (q or {}).get("review_activity"):
            out.append({"flag": "rubber-stamp", "validator": r.get("entity"),
                        "subject": r.get("subject"), "bead": r.get("bead"),
                        "seq": r.get("seq")})
    return out


def loops(recs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """A flag for each group of entities validating each other in a cycle."""
    graph: dict[str, set[str]] = {}
    for r in recs:
        if r.get("kind") == "validated" and isinstance(r.get("subject"), str):
            graph.setdefault(str(r.get("entity")), set()).add(r["subject"])
            graph.setdefault(r["subject"], set())
    # Tarjan's strongly connected components, iteratively (no recursion limit)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    groups: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    top = stack.pop()
                    on.discard(top)
                    group.append(top)
                    if top == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return [{"flag": "reciprocal", "entities": g} for g in sorted(groups)]


def flags(recs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every flag over ``recs``: rubber stamps, then reciprocal loops."""
    items = list(recs)
    return rubber_stamps(items) + loops(items)
