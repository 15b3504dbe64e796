"""Generate a random beads graph as JSONL: N beads, E random blocking edges (a DAG).

    python benchmarks/gen_graph.py 10000 15000 > graph.jsonl

Edges always point from a newer bead to an older one, so the graph is acyclic;
about a third of beads are closed and a few are in progress, which leaves a
realistic share of the rest ready (the DESIGN's 10k file had 3,785 ready).
Deterministic for a given seed.
"""

from __future__ import annotations

import json
import random
import sys


def generate(n: int, edges: int, seed: int = 7, prefix: str = "bench") -> list[dict[str, object]]:
    """The beads of a random graph, as beads-shaped dicts."""
    rng = random.Random(seed)
    ids = [f"{prefix}-{i:06x}" for i in range(n)]
    beads: list[dict[str, object]] = []
    for i, bead_id in enumerate(ids):
        r = rng.random()
        status = "closed" if r < 0.35 else ("in_progress" if r < 0.40 else "open")
        day, hour, minute, sec = 1 + i * 27 // n, (i // 3600) % 24, (i // 60) % 60, i % 60
        ts = f"2026-01-{day:02d}T{hour:02d}:{minute:02d}:{sec:02d}Z"
        bead: dict[str, object] = {
            "id": bead_id, "title": f"Task {i}: {rng.choice(['fix', 'add', 'port', 'test'])} "
                                    f"{rng.choice(['parser', 'cache', 'api', 'ui', 'docs'])}",
            "description": "Generated for benchmarks.", "status": status,
            "priority": rng.choice([0, 1, 2, 2, 2, 3, 4]),
            "issue_type": rng.choice(["task", "task", "bug", "feature", "chore"]),
            "created_at": ts, "updated_at": ts,
        }
        if status == "closed":
            bead["closed_at"] = ts
        if rng.random() < 0.2:
            bead["labels"] = sorted(rng.sample(["backend", "frontend", "perf", "infra", "docs"], 2))
        beads.append(bead)
    pairs: set[tuple[int, int]] = set()
    while len(pairs) < edges:
        a = rng.randrange(1, n)
        b = rng.randrange(0, a)
        pairs.add((a, b))
    for a, b in sorted(pairs):
        deps = beads[a].setdefault("dependencies", [])
        assert isinstance(deps, list)
        deps.append({"issue_id": ids[a], "depends_on_id": ids[b], "type": "blocks",
                     "created_at": str(beads[a]["created_at"])})
    return beads


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    e = int(sys.argv[2]) if len(sys.argv) > 2 else int(n * 1.5)
    out = sys.stdout
    for bead in generate(n, e):
        out.write(json.dumps(bead, separators=(",", ":")) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
