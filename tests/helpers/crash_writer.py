"""A writer for the kill -9 chaos tests: ``crash_writer.py DIR``.

Writes to the ledger in ``DIR/.beads`` forever, and after every *committed*
change prints one line and flushes it, so whatever the test reads back from our
stdout after a SIGKILL is known to be durable:

* ``created ID``           one bead, one transaction
* ``group P C1 C2 C3``     a parent, three children and a blocks edge, one transaction
* ``closed ID``            a close
* ``exported N``           ``.beads/issues.jsonl`` rewritten (atomic rename)
"""

from __future__ import annotations

import os
import random
import sys

from gastown import Ledger
from gastown.ledger import jsonl


def say(*words: str) -> None:
    sys.stdout.write(" ".join(words) + "\n")
    sys.stdout.flush()


def main() -> int:
    directory = sys.argv[1]
    rng = random.Random(os.getpid())
    ledger = Ledger.open(cwd=directory, actor=f"writer-{os.getpid()}")
    singles: list[str] = []
    i = 0
    while True:
        i += 1
        op = i % 5
        if op in (0, 1):
            b = ledger.create(f"single {os.getpid()} {i}", priority=i % 5,
                              description="x" * rng.randint(0, 2000))
            singles.append(b["id"])
            say("created", b["id"])
        elif op == 2:
            with ledger.transaction() as t:
                p = t.create(f"group {i}", issue_type="epic")
                kids = [t.create(f"kid {i}.{n}", parent=p["id"])["id"] for n in range(3)]
                t.add_dep(kids[1], kids[0], "blocks")
            say("group", p["id"], *kids)
        elif op == 3 and singles:
            victim = singles.pop(rng.randrange(len(singles)))
            ledger.close_bead(victim, reason="done")
            say("closed", victim)
        elif op == 4 and i % 10 == 4:
            n = jsonl.export_jsonl(ledger)
            say("exported", str(n))


if __name__ == "__main__":
    sys.exit(main())
