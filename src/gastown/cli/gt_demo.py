"""``gt demo``: the project's main job, run from a fresh clone by ``./run demo``.

For now a walkthrough of the ledger in a temporary directory: beads with
dependencies, the ready set moving as work is claimed and closed, the event
log, and the git-friendly export.  (The full town demo replaces it.)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from typing import Any

from ._app import Ctx, common_options


def _run(ctx: Ctx) -> int:
    from ..ledger.core import Ledger
    from ..ledger.jsonl import export_jsonl

    started = time.monotonic()
    root = tempfile.mkdtemp(prefix="gt-demo-")
    say = ctx.say
    led = Ledger.init(root, prefix="demo", actor="demo/coordinator")
    try:
        say(f"Ledger created in {root}/.beads")
        epic = led.create("Ship the login page", issue_type="epic", priority=1)
        design = led.create("Design the form", parent=epic["id"], priority=1)
        build = led.create("Build the form", parent=epic["id"],
                           deps=[("blocks", design["id"])])
        test = led.create("Test the form", parent=epic["id"], deps=[("blocks", build["id"])])
        say(f"Created {epic['id']} with steps {design['id']}, {build['id']}, {test['id']}")
        steps = 0
        worker = Ledger(led.store, actor="demo/worker/ace", beads_dir=led.beads_dir)
        while True:
            ready = [b for b in worker.ready() if b["id"] != epic["id"]]
            if not ready:
                break
            bead = worker.claim(ready[0]["id"])
            say(f"  ace claimed {bead['id']}: {bead['title']}")
            worker.close_bead(bead["id"], reason="done")
            steps += 1
        led.close_bead(epic["id"], reason="all steps done")
        n = export_jsonl(led, os.path.join(root, ".beads", "issues.jsonl"))
        events = led.events()
        summary: dict[str, Any] = {
            "town": root if ctx.args.keep else None, "steps_closed": steps,
            "exported": n, "events": len(events),
            "seconds": round(time.monotonic() - started, 3),
        }
        say(f"Closed {steps} steps; {len(events)} events; exported {n} beads to issues.jsonl")
        if ctx.json:
            print(json.dumps(summary))
        return 0
    finally:
        led.close()
        if not ctx.args.keep:
            shutil.rmtree(root, ignore_errors=True)


def setup(name: str, sub: Any) -> None:
    """Add the ``demo`` parser."""
    p = sub.add_parser(name, help="run the demo", description=__doc__)
    common_options(p)
    p.add_argument("--keep", action="store_true", help="keep the demo directory")
    p.set_defaults(func=_run)
