"""``gt``: the town's command line (a thin adapter over the town library).

``gt bd …`` reaches the ledger commands of ``bd`` unchanged.  Each command lives
in a small module listed in :data:`COMMANDS`; only the one being run is imported.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ._app import run_main

#: command name -> (module that builds and runs it, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("gastown.cli.gt_demo", "run the demo: a town that gets work done, start to finish"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gt`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "bd":
        from .bd import main as bd_main

        return bd_main(args[1:])
    return run_main("gt", "gt: a town of coding agents working from one ledger", COMMANDS, args)


if __name__ == "__main__":
    sys.exit(main())
