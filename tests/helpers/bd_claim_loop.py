"""One claiming agent driving the real ``bd`` command line, for the concurrency tests.

``bd_claim_loop.py DIR ACTOR MODE [MAX]``

MODE ``ready``:  ``bd ready --claim --json`` until it prints ``[]``.
MODE ``update``: ``bd ready --json -n 20``, then ``bd update ID --claim --json`` on a
random one of them, until nothing is ready (lost races exit 4 and are counted).
Either stops after MAX successful claims (default: no limit).

Prints one JSON object: ``{"claimed": [...], "conflicts": N, "calls": N,
"failures": ["rc=… stderr=…", …]}``; a failure is any exit other than success or
a lost claim race, or any stderr mentioning a lock.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys


def main() -> int:
    directory, actor, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    limit = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    env = dict(os.environ, BD_ACTOR=actor)
    rng = random.Random(actor)
    claimed: list[str] = []
    failures: list[str] = []
    conflicts = calls = 0

    def bd(*args: str) -> subprocess.CompletedProcess[str]:
        nonlocal calls
        calls += 1
        proc = subprocess.run(["bd", "-C", directory, *args], env=env, capture_output=True,
                              text=True, timeout=120)
        if "locked" in proc.stderr.lower() or "storage" in proc.stderr.lower():
            failures.append(f"rc={proc.returncode} stderr={proc.stderr.strip()[:300]}")
        return proc

    while len(failures) < 5 and not (limit and len(claimed) >= limit):
        if mode == "ready":
            proc = bd("ready", "--claim", "--json")
            if proc.returncode != 0:
                failures.append(f"rc={proc.returncode} stderr={proc.stderr.strip()[:300]}")
                continue
            got = json.loads(proc.stdout)
            if not got:
                break
            for bead in got:
                if bead["assignee"] != actor or bead["status"] != "in_progress":
                    failures.append(f"claimed {bead['id']} but it shows {bead}")
                claimed.append(bead["id"])
        else:
            proc = bd("ready", "--json", "-n", "20")
            if proc.returncode != 0:
                failures.append(f"rc={proc.returncode} stderr={proc.stderr.strip()[:300]}")
                continue
            ready = json.loads(proc.stdout)
            if not ready:
                break
            bead_id = rng.choice(ready)["id"]
            proc = bd("update", bead_id, "--claim", "--json")
            if proc.returncode == 0:
                claimed.append(bead_id)
            elif proc.returncode == 4 and "claim" in proc.stderr:
                conflicts += 1
            else:
                failures.append(f"rc={proc.returncode} stderr={proc.stderr.strip()[:300]}")
    print(json.dumps({"claimed": claimed, "conflicts": conflicts, "calls": calls,
                      "failures": failures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
