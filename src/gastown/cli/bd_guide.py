"""``bd``'s guides and facts, as upstream ``bd`` prints them.

version, help, quickstart, onboard, info, where, and ``bd prime --full``'s
command reference.  ``bd version`` puts the beads CLI level we implement first,
so that upstream's tools (the beads MCP server checks it) accept us.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import UsageError
from ..ledger import compat
from ._app import Ctx, common_options, emit_json

_QUICKSTART = """
bd - Dependency-Aware Issue Tracker (gastown)

Issues chained together like beads.

GETTING STARTED
  bd init                 Initialize bd in your project (.beads/ with a SQLite ledger)
  bd init --prefix api    Issues will be named api-<hash> (e.g., api-a3f2)
  bd init --db postgresql://user@host/db   Share one PostgreSQL ledger between machines

CREATING ISSUES
  bd create "Fix login bug"
  bd create "Add auth" -p 0 -t feature
  bd create "Write tests" -d "Unit tests for auth" --assignee alice

VIEWING ISSUES
  bd list                 List open issues
  bd list --status open   List by status
  bd list --priority 0    List by priority (0-4, 0=highest)
  bd show bd-1            Show issue details

MANAGING DEPENDENCIES
  bd dep add bd-1 bd-2    Add dependency (bd-2 blocks bd-1)
  bd dep tree bd-1        Visualize dependency tree
  bd dep cycles           Detect circular dependencies

DEPENDENCY TYPES
  blocks           Task B must complete before task A
  related          Soft connection, doesn't block progress
  parent-child     Epic/subtask hierarchical relationship
  discovered-from  Created when an agent discovers related work

READY WORK
  bd ready                Show issues ready to work on
                          Ready = status is 'open' AND no blocking dependencies
                          Perfect for agents to claim next work!

UPDATING ISSUES
  bd update bd-1 --claim
  bd update bd-1 --priority 0
  bd update bd-1 --assignee bob
  bd note bd-1 "what was learned"

CLOSING ISSUES
  bd close bd-1
  bd close bd-2 bd-3 --reason "Fixed in PR #42"

STORAGE AND SYNC
  The ledger lives in .beads/beads.db (or PostgreSQL); bd export writes
  .beads/issues.jsonl for git, and writes are flushed there automatically
  when that file exists.

Ready to start!
"""

_ONBOARD = """## Issue Tracking

This project uses **bd (beads)** for issue tracking.
Run `bd prime` for workflow context, or `bd quickstart` for the basics.

**Quick reference:**
- `bd ready` - Find unblocked work
- `bd create "Title" --type task --priority 2` - Create issue
- `bd update <id> --claim` - Take an issue (atomic)
- `bd close <id>` - Complete work
- `bd export` - Write .beads/issues.jsonl for git

For full workflow details: `bd prime`
"""

#: ``bd prime --full``: the command reference for agents whose tools do not inject it
PRIME_FULL = """## Full command reference

### Finding work
- bd ready [--sort hybrid|priority|oldest] [-n N] [--json]   unblocked work
- bd list [-s STATUS] [-t TYPE] [-a WHO] [--no-assignee] [-l LABEL] [--json]
- bd show ID [--json]          details, dependencies, dependents, comments
- bd blocked                   open work held by blockers
- bd stale [-d DAYS]           work nobody touched lately
- bd count [--by-status|--by-type|--by-priority|--by-assignee|--by-label]
- bd status                    counts by state, ready, lead time

### Doing work
- bd update ID --claim         take it atomically (fails if someone else has it)
- bd update ID -s STATUS -p N --notes TEXT --append-notes TEXT
- bd note ID "text"            append to the notes
- bd comment ID "text"         a durable, timestamped record
- bd close ID -r "reason"      finish; dependents become ready
- bd defer ID [--until +2d]    put on ice; bd undefer ID to bring it back

### Filing work
- bd create "Title" -t bug|feature|task|epic|chore -p 0-4 -d "description"
- bd create "Found it" --deps discovered-from:ID     link new work to its origin
- bd dep add ID OTHER [-t blocks|related|parent-child|discovered-from]
- bd children ID / bd epic status / bd graph [ID]

### Sync and upkeep
- bd export / bd import        .beads/issues.jsonl for git (bd hooks install automates it)
- bd doctor [--check=validate|pollution] / bd repair-deps [--fix] / bd duplicates
"""


# ------------------------------------------------------------ version, help
def _version(ctx: Ctx) -> int:
    from .. import __version__

    level = compat.BEADS_CLI_LEVEL
    if ctx.json:
        emit_json({"version": level, "build": "gastown", "gastown_version": __version__,
                   "beads_cli_level": level})
    else:
        # the first X.Y.Z is the beads level: tools parse it to check compatibility
        print(f"bd version {level} (gastown {__version__})")
    return 0


def _help(ctx: Ctx) -> int:
    from .bd import main

    topic = ctx.args.topic
    return main([topic, "--help"] if topic else ["--help"])


def _quickstart(ctx: Ctx) -> int:
    ctx.out({"text": _QUICKSTART.lstrip("\n")}, _QUICKSTART)
    return 0


def _onboard(ctx: Ctx) -> int:
    ctx.out({"text": _ONBOARD}, _ONBOARD)
    return 0


# ------------------------------------------------------------- info, where
def _info(ctx: Ctx) -> int:
    led = ctx.ledger
    info = compat.schema_info(led)
    if not ctx.args.schema:
        info.pop("schema")

    def text() -> str:
        lines = ["", "Beads Database Information", "===========================",
                 f"Database: {info['database_path']}", "Mode: direct", "",
                 f"Issue Count: {info['issue_count']}"]
        if ctx.args.schema:
            s = info["schema"]
            lines += ["", "Schema Information:", f"  Tables: {s['tables']}",
                      f"  Schema Version: {s['schema_version']}"]
            if s["detected_prefix"]:
                lines.append(f"  Detected Prefix: {s['detected_prefix']}")
            if s["sample_issue_ids"]:
                lines.append(f"  Sample Issues: {s['sample_issue_ids']}")
        return "\n".join(lines) + "\n"

    ctx.out(info, text)
    return 0


def _where(ctx: Ctx) -> int:
    led = ctx.ledger
    path = os.path.abspath(led.beads_dir) if led.beads_dir else None
    result: dict[str, Any] = {"path": path, "prefix": led.prefix, "database_path": led.store.url}
    lines = [path or "(no .beads directory: ledger given by --db or BEADS_DB)",
             f"  prefix: {led.prefix}", f"  database: {led.store.url}"]
    ctx.out(result, "\n".join(lines))
    return 0


# -------------------------------------------------------------------- setup
def setup(name: str, sub: Any) -> None:
    """Add the parser for command ``name`` to ``sub``."""
    from .bd import COMMANDS

    p = sub.add_parser(name, help=COMMANDS[name][1], description=COMMANDS[name][1])
    common_options(p)
    if name == "version":
        p.set_defaults(func=_version)
    elif name == "help":
        p.add_argument("topic", nargs="?", help="a command")
        p.set_defaults(func=_help)
    elif name == "quickstart":
        p.set_defaults(func=_quickstart)
    elif name == "onboard":
        p.set_defaults(func=_onboard)
    elif name == "info":
        p.add_argument("--schema", action="store_true", help="include schema information")
        p.set_defaults(func=_info)
    elif name == "where":
        p.set_defaults(func=_where)
    else:  # pragma: no cover - COMMANDS and setup are kept in step by a test
        raise UsageError(f"bd: no such command {name}")
