"""The one ``events`` command shape: ``bd events`` and ``gt events`` take the same flags.

``--since-seq N`` (also ``--since``), ``--tail N`` (also ``--last``), ``--type T``
(repeatable, comma-separated, ``*`` wildcards), ``--bead ID`` (a unique id prefix
is enough), ``-n/--limit N``, ``-f/--follow`` with ``--interval S`` and
``--timeout S``.
"""

from __future__ import annotations

import argparse
import sys

from ._app import count, seconds, seconds_or_zero, split_csv

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only
    from collections.abc import Callable
    from typing import Any

    from ..ledger.core import Ledger
    from ._app import Ctx

__all__ = ["add_event_options", "run_events"]


def add_event_options(p: argparse.ArgumentParser) -> None:
    """The flags of both ``events`` commands."""
    p.add_argument("--since-seq", "--since", dest="since_seq", type=count, default=0,
                   metavar="N", help="only events after this seq")
    p.add_argument("--tail", "--last", dest="tail", type=count, default=0, metavar="N",
                   help="start N events before the end")
    p.add_argument("--type", action="append",
                   help="event types (repeatable or comma-separated; prefix* allowed)")
    p.add_argument("--bead", help="only events of this bead (a unique id prefix will do)")
    p.add_argument("-n", "--limit", type=count, default=0, help="at most N (0 = all)")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    p.add_argument("--interval", type=seconds, default=0.2, help="poll interval (s)")
    p.add_argument("--timeout", type=seconds_or_zero, default=0, help="stop following after N s")


def _bead(led: Ledger, ref: str) -> str:
    """A bead's full id; a deleted bead's events stay in the log under its exact id."""
    from ..errors import NotFoundError

    try:
        return led.resolve_id(ref)
    except NotFoundError:
        return ref


def run_events(ctx: Ctx, led: Ledger, line: Callable[[dict[str, Any]], str],
               empty: str) -> int:
    """List (or follow) events as the flags say; ``line`` renders one in text mode."""
    import json

    a = ctx.args
    types = split_csv(a.type)
    bead = _bead(led, a.bead) if a.bead else None
    since = a.since_seq
    if a.tail and not since:
        since = max(0, led.last_event_seq() - a.tail)
    events = led.events(since, limit=a.limit, bead_id=bead, types=types)
    if not a.follow:
        ctx.out(events, lambda: "\n".join(line(e) for e in events) or empty)
        return 0
    # the ledger's follower: every committed event exactly once, even on PostgreSQL
    # where sequence numbers can commit out of order
    from ..ledger.events import follow

    def show(e: dict[str, Any]) -> None:
        sys.stdout.write((json.dumps(e, ensure_ascii=False) if ctx.json else line(e)) + "\n")
        sys.stdout.flush()

    for e in events:
        since = e["seq"]
        show(e)
    for e in follow(led, since, interval=a.interval, timeout=a.timeout or None, types=types,
                    bead_id=bead):
        show(e)
    return 0
