"""A claiming agent for the concurrency tests: ``claim_worker.py DIR ACTOR [MODE [START]]``.

DIR is the directory holding the ledger's ``.beads/`` (its database is found
there as ``bd`` finds it: ``beads.db`` or the URL in ``config.toml``).

MODE ``next`` (default): ``claim_next`` until nothing is ready.
MODE ``race``: read the ready ids, wait until the wall-clock time START (argv[4]),
then try ``claim`` on every one of them (so workers collide on the same beads
and lose most CAS races).
Prints one JSON object: ``{"claimed": [...], "tried": N, "conflicts": N, "errors": [...]}``.
"""

from __future__ import annotations

import json
import sys
import time

from gastown import Ledger
from gastown.errors import ConflictError, GastownError


def main() -> int:
    directory, actor = sys.argv[1], sys.argv[2]
    mode = sys.argv[3] if len(sys.argv) > 3 else "next"
    claimed: list[str] = []
    errors: list[str] = []
    conflicts = 0
    tried = 0
    ledger = Ledger.open(cwd=directory, actor=actor)
    try:
        if mode == "next":
            while True:
                try:
                    bead = ledger.claim_next()
                except GastownError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    break
                if bead is None:
                    break
                if bead["assignee"] != actor or bead["status"] != "in_progress":
                    errors.append(f"claim_next returned {bead['id']} held by {bead['assignee']}")
                claimed.append(bead["id"])
        else:
            ids = [b["id"] for b in ledger.ready()]
            start = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
            time.sleep(max(0.0, start - time.time()))
            tried = len(ids)
            for bead_id in ids:
                try:
                    ledger.claim(bead_id)
                    claimed.append(bead_id)
                except ConflictError:
                    conflicts += 1
                except GastownError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        ledger.close()
    print(json.dumps({"claimed": claimed, "tried": tried, "conflicts": conflicts,
                      "errors": errors}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
