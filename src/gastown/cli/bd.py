"""``bd``: the ledger's command line (a thin adapter over :class:`gastown.Ledger`).

Each command lives in a small module listed in :data:`COMMANDS`; only the one
being run is imported.  The tests check that every command here is documented
in the README.
"""

from __future__ import annotations

from ._app import run_main

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only: the hot path skips it
    from collections.abc import Sequence

_B = "gastown.cli.bd_beads"
_Q = "gastown.cli.bd_query"
_A = "gastown.cli.bd_admin"
_C = "gastown.cli.bd_chem"
_U = "gastown.cli.bd_compat"  # upstream bd's commands, loaded only for themselves
_K = "gastown.cli.bd_upkeep"
_G = "gastown.cli.bd_guide"

#: command name -> (module that builds and runs it, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": (_A, "create a ledger in .beads/ here"),
    "create": (_B, "create a bead"),
    "q": (_B, "quick create: print only the new id"),
    "show": (_B, "show beads with dependencies, dependents and comments"),
    "update": (_B, "change fields, labels, status; --claim takes it atomically"),
    "close": (_B, "close beads"),
    "reopen": (_B, "reopen closed beads"),
    "delete": (_B, "delete beads (ids are never reused)"),
    "label": (_B, "add, remove and list labels"),
    "comment": (_B, "add a comment to a bead"),
    "comments": (_B, "list a bead's comments (or 'comments add ID TEXT')"),
    "dep": (_B, "add, remove, list dependencies; tree; cycles"),
    "list": (_Q, "list beads with filters"),
    "ready": (_Q, "what is ready to work on (no open blockers)"),
    "blocked": (_Q, "open beads held by blockers, and what blocks them"),
    "search": (_Q, "find beads by text"),
    "stats": (_U, "counts by state, ready, lead time (same as status)"),
    "events": (_Q, "the event log (--follow to keep reading)"),
    "audit": ("gastown.cli.bd_audit", "everything an actor did, here and in synced towns"),
    "prime": (_Q, "a compact summary of ready and in-progress work for an agent"),
    "export": (_A, "write beads as JSONL (default .beads/issues.jsonl)"),
    "import": (_A, "upsert beads from JSONL"),
    "doctor": (_A, "check the ledger's integrity (--fix repairs the ready state)"),
    "kv": (_A, "a small key/value store: set, get, list, clear"),
    "config": (_A, "ledger configuration: get, set, list"),
    "completion": (_A, "print a shell completion script (bash, zsh, fish)"),
    "cook": (_C, "cook a formula into a proto (template beads)"),
    "pour": (_C, "instantiate a proto or formula as a persistent molecule"),
    "wisp": (_C, "instantiate a proto or formula as an ephemeral wisp"),
    "mol": (_C, "molecules: show, list, progress, current, bond, squash, burn, distill"),
    "formula": (_C, "formulas: list, show, validate"),
    "gate": (_C, "gates: list, resolve"),
    "pin": (_C, "pin a bead to an agent's hook"),
    "unpin": (_C, "release a bead from a hook"),
    "hook": (_C, "show what is on a hook"),
    "version": (_G, "print bd's version and the beads CLI level it implements"),
    "help": (_G, "help on bd or on one command"),
    "quickstart": (_G, "a quick start guide"),
    "onboard": (_G, "a snippet for an agent instructions file (AGENTS.md)"),
    "info": (_G, "the database, issue count and config (--schema for more)"),
    "where": (_G, "where the ledger is: .beads directory, prefix, database"),
    "note": (_U, "append a note to a bead's notes"),
    "status": (_U, "overview: counts by state, ready, lead time, recent activity"),
    "count": (_U, "count beads matching filters (--by-status, --by-type, …)"),
    "stale": (_U, "open beads not updated in N days"),
    "epic": (_U, "epics: status, close-eligible"),
    "defer": (_U, "put beads on ice (status deferred, --until WHEN)"),
    "undefer": (_U, "bring deferred beads back to open"),
    "children": (_U, "list a bead's children"),
    "migrate": (_U, "schema migration (--inspect shows the state; nothing is pending)"),
    "repair-deps": (_U, "find (and with --fix remove) dependencies on missing beads"),
    "lint": (_U, "check beads for missing template sections"),
    "edit": (_K, "edit a bead's text in $EDITOR (--title, --design, --notes, …)"),
    "graph": (_K, "the dependency graph in layers (what can run in parallel)"),
    "rename-prefix": (_K, "give every bead a new id prefix"),
    "compact": (_K, "find old closed beads; replace their text by a summary"),
    "restore": (_K, "show (or --apply) a compacted bead's original text"),
    "duplicates": (_K, "find beads with the same content (--auto-merge closes extras)"),
    "merge": (_K, "git merge driver for issues.jsonl: OUTPUT BASE LEFT RIGHT"),
    "hooks": (_K, "git hooks that export/import issues.jsonl: install, uninstall, list"),
}

ALIASES = {"new": "create", "view": "show", "rm": "delete", "deps": "dep"}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bd`` console script."""
    return run_main("bd", "bd: a beads-compatible work ledger for coding agents",
                    COMMANDS, argv, ALIASES)


def console_main() -> None:
    """The ``bd`` console script: :func:`main`, then a fast exit (see ``exit_now``)."""
    from ._app import exit_now

    exit_now(main())


if __name__ == "__main__":
    console_main()
