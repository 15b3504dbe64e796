"""``gt``: the town's command line (a thin adapter over the town library).

``gt bd …`` reaches the ledger commands of ``bd`` unchanged.  Each command lives
in a small module listed in :data:`COMMANDS`; only the one being run is imported.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from ._app import run_main

_T = "gastown.cli.gt_town"
_R = "gastown.cli.gt_rig"
_S = "gastown.cli.gt_session"
_W = "gastown.cli.gt_work"
_M = "gastown.cli.gt_mail"

#: command name -> (module that builds and runs it, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "bd": ("gastown.cli.gt", "the ledger commands of bd, unchanged (gt bd --help)"),
    "demo": ("gastown.cli.gt_demo", "run the demo: a town that gets work done, start to finish"),
    "init": (_T, "create a town: town.toml, .beads/, .gt/"),
    "config": (_T, "show the town's configuration (show, path)"),
    "status": (_T, "agents, their hooks and sessions, and recent events"),
    "feed": (_T, "a live one-screen view of the town"),
    "events": (_T, "the town's event log (--follow to keep reading)"),
    "rig": (_R, "repositories the town works on: add, list, remove"),
    "agent": (_R, "agents: list, add, remove"),
    "session": (_S, "agent sessions: list, start, restart, stop, status"),
    "attach": (_S, "attach your terminal to an agent's session"),
    "peek": (_S, "an agent session's recent output"),
    "nudge": (_S, "type a message into an agent's session, safely"),
    "setup": (_S, "write an agent program's session hooks so it primes itself"),
    "sling": (_W, "put a bead or a poured formula on an agent's hook and wake it"),
    "hook": (_W, "what is on a hook: show, clear, pin"),
    "prime": (_W, "an agent's role prompt, hooked work, current step and mail"),
    "done": (_W, "hand in the hooked work: push the branch, file a merge request"),
    "mail": (_M, "messages: send, inbox, read, reply, archive, check"),
    "up": ("gastown.cli.gt_controller", "start the town's controller (dispatch, patrol, merges)"),
    "down": ("gastown.cli.gt_controller", "stop the town's controller"),
    "mq": ("gastown.cli.gt_mq", "the merge queue: list, status, retry, reject"),
    "convoy": ("gastown.cli.gt_convoy", "batches of beads that land together: create, add, "
                                        "status, list"),
    "dashboard": ("gastown.cli.gt_dashboard", "a live web dashboard of the town "
                                              "(127.0.0.1; read-only without a token)"),
    "identity": ("gastown.cli.gt_federation", "the town's federation identity (.town.json)"),
    "publish": ("gastown.cli.gt_federation", "append pending records to the signed federation "
                                             "log and write it out"),
    "remote": ("gastown.cli.gt_federation", "other towns: add, list, remove, sync (verified)"),
    "delegate": ("gastown.cli.gt_delegation", "hand a bead to another town (a signed "
                                              "delegation record)"),
    "delegation": ("gastown.cli.gt_delegation", "delegations to and from this town: list, "
                                                "accept, reject"),
    "mesh": ("gastown.cli.gt_mesh", "the town on Nostr relays: id, peer, relay, publish, sync, "
                                    "work, follow, offer/respond/accept/settle, mail, status"),
    "trust": ("gastown.cli.gt_mesh", "how far this town trusts a peer (follows, receipts)"),
    "credit": ("gastown.cli.gt_mesh", "credit between towns: balance, history"),
    "costs": ("gastown.cli.gt_costs", "tokens and dollars per agent, session, molecule, "
                                      "convoy or day (from the agent programs' own logs)"),
    "handoff": ("gastown.cli.gt_handoff", "write a handoff record and continue in a fresh "
                                          "session of the same agent"),
    "seance": ("gastown.cli.gt_handoff", "what an earlier session of an agent did: events, "
                                         "last output, handoff notes"),
    "chain": ("gastown.cli.gt_chain", "entity chains of signed work records: verify, prove, "
                                      "export a CV, checkpoint the town log"),
    "cv": ("gastown.cli.gt_cv", "an entity's CV from its chain: work, quality, skills, "
                                "reputation"),
    "match": ("gastown.cli.gt_cv", "rank agents for a bead by demonstrated skills x "
                                   "reputation, with evidence"),
    "mcp": ("gastown.cli.gt_mcp", "serve the ledger to editor agents over MCP (stdio or "
                                  "--http PORT)"),
    "orders": ("gastown.cli.gt_orders", "formulas the town starts on a schedule or an event: "
                                        "list, run"),
    "doctor": ("gastown.cli.gt_doctor", "check the town: controller, watchdog, config, "
                                        "orders, permissions"),
}


def _town_after_command(args: list[str]) -> list[str]:
    """``gt --town DIR CMD …`` → ``gt CMD --town DIR …`` (each command owns ``--town``)."""
    out = list(args)
    i = 0
    while i < len(out) and out[i].startswith("-"):
        if out[i] == "--town" and i + 1 < len(out):
            moved = out[i:i + 2]
            del out[i:i + 2]
        elif out[i].startswith("--town="):
            moved = [out.pop(i)]
        else:
            i += 2 if out[i] in ("--actor", "--db", "-C") else 1
            continue
        cmd = next((j for j in range(i, len(out)) if not out[j].startswith("-")), None)
        if cmd is None:
            return args
        out[cmd + 1:cmd + 1] = moved
    return out


def _town_as_dir(args: list[str]) -> list[str]:
    """``gt bd --town DIR …`` → ``bd -C DIR …``: the town's ledger is ``DIR/.beads``."""
    if args[:1] == ["--town"] and len(args) > 1:
        return ["-C", args[1], *args[2:]]
    if args and args[0].startswith("--town="):
        return ["-C", args[0][len("--town="):], *args[1:]]
    return args


def setup(name: str, sub: Any) -> None:
    """The ``bd`` entry of ``gt --help`` (``main`` hands ``gt bd …`` to ``bd`` itself)."""
    sub.add_parser(name, help=COMMANDS[name][1], add_help=False)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``gt`` console script."""
    from ._app import _command_name

    args = _town_after_command(list(sys.argv[1:] if argv is None else argv))
    if _command_name(args) == "bd":
        from .bd import main as bd_main

        # options before it (--json, --db, -C …) are bd's too; an option's value is not it
        at = next(i for i, a in enumerate(args) if a == "bd" and _command_name(args[:i + 1]))
        return bd_main(args[:at] + _town_as_dir(args[at + 1:]))
    return run_main("gt", "gt: a town of coding agents working from one ledger", COMMANDS, args)


def console_main() -> None:
    """The ``gt`` console script: :func:`main`, then a fast exit (see ``exit_now``)."""
    from ._app import exit_now

    exit_now(main())


if __name__ == "__main__":
    console_main()
