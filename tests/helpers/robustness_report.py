"""Counts of the chaos, concurrency and fuzzing harnesses, for ``benchmarks/robustness.py``.

Each harness calls :func:`report` once it has measured, *before* it asserts, so a
failing run still says what it found.  The counts go to stdout as one line
(``robustness HARNESS: cases=… kills=…``, seen with ``pytest -s``) and, when
``GASTOWN_ROBUSTNESS_REPORT`` names a file, are appended to it as one JSON object
per line.  The names of the counts:

* ``cases``     inputs, kill rounds or operations the harness ran
* ``kills``     SIGKILLs sent
* ``acked``     writes acknowledged to the caller before a kill (must survive)
* ``lost``      acknowledged writes missing afterwards
* ``doubled``   claims or dispatches done more than once
* ``internal``  internal errors (exit 70, a traceback, an unexpected exception)
* ``partial``   changes left half-applied (a torn molecule, a ledger without prefix)
"""

from __future__ import annotations

import json
import os

ENV = "GASTOWN_ROBUSTNESS_REPORT"
KEYS = ("cases", "kills", "acked", "lost", "doubled", "internal", "partial")


def report(harness: str, **counts: int) -> None:
    """Print the counts of one harness run and append them to ``$GASTOWN_ROBUSTNESS_REPORT``."""
    unknown = set(counts) - set(KEYS)
    if unknown:
        raise ValueError(f"unknown robustness counts: {sorted(unknown)}")
    print(f"robustness {harness}: " + " ".join(f"{k}={counts[k]}" for k in KEYS if k in counts),
          flush=True)
    path = os.environ.get(ENV)
    if path:
        line = json.dumps({"harness": harness, **counts}) + "\n"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode())
        finally:
            os.close(fd)
