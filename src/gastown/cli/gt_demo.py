"""``gt demo``: the project's main job, run from a fresh clone by ``./run demo``.

In a temporary directory: a sample git repository, a town over it with three
scripted ``command`` agents (no model anywhere), the controller (``gt up``),
two features slung as engineer-in-box and a bug as quick-fix.  The controller
dispatches every step, the merge queue rebases, tests and lands each branch on
the sample's ``main``, a convoy lands; then a summary.  ``--keep`` leaves the
town to look around in; ``--json`` prints the summary as the last line.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ._app import Ctx, common_options, seconds


def _run(ctx: Ctx) -> int:
    from ..demo.run import render_summary, run_demo

    def say(line: str) -> None:
        # with --json, stdout carries only the summary; the story goes to stderr
        stream = sys.stderr if ctx.json else sys.stdout
        if not ctx.quiet:
            stream.write(line + "\n")
            stream.flush()

    summary = run_demo(keep=ctx.args.keep, say=say, timeout=ctx.args.timeout,
                       provider=ctx.args.provider)
    if ctx.json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        sys.stdout.write(render_summary(summary) + "\n")
    return 0 if summary.get("ok") else 1


def setup(name: str, sub: Any) -> None:
    """Add the ``demo`` parser."""
    p = sub.add_parser(name, help="run the demo", description=__doc__)
    common_options(p)
    p.add_argument("--keep", action="store_true", help="keep the demo's town and sample repo")
    p.add_argument("--timeout", type=seconds, default=180.0, metavar="S",
                   help="give up when the work has not landed after S seconds (default 180)")
    p.add_argument("--provider", choices=("tmux", "subprocess"),
                   help="how the agents' sessions run (default: tmux when installed)")
    p.set_defaults(func=_run)
