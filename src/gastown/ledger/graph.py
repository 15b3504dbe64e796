"""The :class:`~.core.Ledger`'s dependency graph reads: edges, trees, cycles, integrity."""

from __future__ import annotations

import builtins

from . import ready as _ready
from . import timefmt
from .ops import Txn
from .queries import Reads
from .reads import LedgerReads

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only: the hot path skips it
    from collections.abc import Iterator
    from typing import Any

__all__ = ["LedgerGraph"]


class LedgerGraph(LedgerReads):
    """Edges in and out of a bead, dependency trees, cycles, ``bd doctor``'s checks."""

    def deps(self, bead_id: str) -> builtins.list[dict[str, Any]]:
        """Edges out of a bead (what it depends on), with the target's title and status."""
        with self.store.read() as tx:
            Txn(tx, self.actor, "").status_of(bead_id)
            return self._edges(tx, "issue_id", bead_id)

    def dependents(self, bead_id: str) -> builtins.list[dict[str, Any]]:
        """Edges into a bead (what depends on it)."""
        with self.store.read() as tx:
            Txn(tx, self.actor, "").status_of(bead_id)
            return self._edges(tx, "depends_on_id", bead_id)

    def dep_tree(self, bead_id: str, max_depth: int = 50, reverse: bool = False
                 ) -> builtins.list[dict[str, Any]]:
        """The dependency tree under a bead, depth first: ``{id, title, status, type, depth}``.

        ``reverse`` walks dependents instead of dependencies.
        """
        out: builtins.list[dict[str, Any]] = []
        with self.store.read() as tx:
            root = Txn(tx, self.actor, "").get(bead_id)
            out.append({"id": root["id"], "title": root["title"], "status": root["status"],
                        "priority": root["priority"], "depth": 0, "type": None})
            seen = {bead_id}
            col, other = ("depends_on_id", "issue_id") if reverse else ("issue_id", "depends_on_id")

            def walk(node: str, depth: int) -> None:
                if depth > max_depth:
                    return
                rows = tx.query(f"SELECT d.{other}, d.type, t.title, t.status, t.priority "
                                f"FROM dependencies d LEFT JOIN issues t ON t.id = d.{other} "
                                f"WHERE d.{col} = ? ORDER BY d.{other}", (node,))
                for target, typ, title, status, prio in rows:
                    out.append({"id": target, "title": title, "status": status,
                                "priority": prio, "depth": depth, "type": typ,
                                "repeat": target in seen})
                    if target not in seen:
                        seen.add(target)
                        walk(target, depth + 1)

            walk(bead_id, 1)
        return out

    def find_cycles(self) -> builtins.list[builtins.list[str]]:
        """Cycles among blocking and parent-child edges (each as a list of ids)."""
        with self.store.read() as tx:
            rows = tx.query("SELECT issue_id, depends_on_id, type FROM dependencies")
        cycles: builtins.list[list[str]] = []
        for family in (_ready.BLOCKING_DEP_TYPES, ("parent-child",)):
            graph: dict[str, list[str]] = {}
            for a, b, t in rows:
                if t in family:
                    graph.setdefault(a, []).append(b)
            cycles += _cycles(graph)
        return cycles

    def integrity_problems(self) -> builtins.list[str]:
        """Checks ``bd doctor`` runs: ready state, closed_at, dangling edges, cycles."""
        problems: builtins.list[str] = []
        with self.store.read() as tx:
            rows = tx.query("SELECT id, status, defer_until, pinned, ephemeral, is_template, "
                            "issue_type, priority, created_at, held, closed_at FROM issues")
            edges = tx.query("SELECT issue_id, depends_on_id, type FROM dependencies")
            remote_closed = [key[len(_ready.REMOTE_CLOSED_PREFIX):] for key, _ in
                             Reads(tx).kv_with_prefix(_ready.REMOTE_CLOSED_PREFIX)]
            if self.store.dialect == "sqlite":
                check = tx.scalar("PRAGMA quick_check")
                if check != "ok":
                    problems.append(f"sqlite quick_check: {check}")
        beads = {r[0]: {"status": r[1], "defer_until": None, "issue_type": r[6]} for r in rows}
        held = _ready.reference_held(beads, edges, timefmt.now(), remote_closed)
        for r in rows:
            if bool(int(r[9])) != held[r[0]]:
                problems.append(f"{r[0]}: stored ready state is stale (run bd doctor --fix)")
            if (r[1] == "closed") != (r[10] is not None):
                problems.append(f"{r[0]}: closed_at does not match status {r[1]}")
        known = set(beads)
        dangling = sum(1 for e in edges if e[1] not in known and e[2] != "related"
                       and not str(e[1]).startswith("gt://"))  # remote: held by the sync
        if dangling:
            problems.append(f"{dangling} dependencies point at unknown issues (they never block)")
        for cycle in self.find_cycles():
            problems.append("dependency cycle: " + " -> ".join(cycle))
        return problems


def _cycles(graph: dict[str, list[str]]) -> builtins.list[builtins.list[str]]:
    """Elementary cycles found by an iterative DFS (one per back edge)."""
    color: dict[str, int] = {}
    found: builtins.list[list[str]] = []
    for start in sorted(graph):
        if color.get(start):
            continue
        stack: builtins.list[tuple[str, Iterator[str]]] = [(start, iter(graph.get(start, ())))]
        path = [start]
        color[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                color[node] = 2
                stack.pop()
                path.pop()
                continue
            state = color.get(nxt, 0)
            if state == 1:
                found.append(path[path.index(nxt):] + [nxt])
            elif state == 0:
                color[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(graph.get(nxt, ()))))
    return found
