"""``gt handoff`` and ``gt seance``: a fresh session that carries on, and what earlier ones did."""

from __future__ import annotations

import os
import sys
from typing import Any

from ..errors import UsageError
from ._app import Ctx
from .gt_common import add_parser, get_town, session_agent, town_ledger


def _notes(ctx: Ctx) -> str:
    a = ctx.args
    given = [x for x in (a.message, a.file) if x is not None]
    if len(given) > 1:
        raise UsageError("give the notes once: -m TEXT, --file FILE or - (standard input)")
    if a.message is not None:
        return str(a.message)
    if a.file is not None:
        if a.file == "-":
            return sys.stdin.read(1_000_000)
        try:
            with open(a.file, encoding="utf-8", errors="replace") as fh:
                return fh.read(1_000_000)
        except OSError as exc:
            raise UsageError(f"--file {a.file}: {exc.strerror}") from None
    return ""


def _handoff(ctx: Ctx) -> int:
    from ..town.handoff import handoff

    town = get_town(ctx)
    name = ctx.args.agent or session_agent()
    if not name:
        raise UsageError("which agent? run gt handoff inside an agent's session, or pass "
                         "--agent NAME")
    agent = town.agent(name)
    # inside the agent's own session (its GT_AGENT and GT_TOWN): stopping that
    # session would end this very process, so the restart is detached
    inside = (os.environ.get("GT_AGENT") == agent.name
              and os.path.realpath(os.environ.get("GT_TOWN") or "")
              == os.path.realpath(town.root))
    result = handoff(town, town_ledger(ctx), agent, _notes(ctx),
                     restart=not ctx.args.no_restart, actor=ctx.actor, inside=inside)
    said = {"detached": "a fresh session starts in a moment",
            "done": "a fresh session has started",
            "none": "the session was left running (--no-restart)"}[result["restart"]]
    ctx.out(result, f"Handoff recorded for {agent.name} (session {result['session']}, "
                    f"hook {result['hook'] or '-'}, step {result['step'] or '-'}): {said}")
    return 0


def _seance(ctx: Ctx) -> int:
    from ..town.seance import render_seance, seance
    from ..town.sessions import Sessions

    town = get_town(ctx)
    data = seance(town, town_ledger(ctx), Sessions(town), ctx.args.agent, ctx.args.session)
    if ctx.args.ask is not None:
        data["question"] = ctx.args.ask
    ctx.out(data, lambda: render_seance(data, ctx.args.ask).rstrip("\n"))
    return 0


def setup(name: str, sub: Any) -> None:
    """Add the ``handoff`` or ``seance`` parser."""
    from .gt import COMMANDS

    p = add_parser(sub, name, COMMANDS[name][1])
    if name == "handoff":
        p.add_argument("-m", "--message", help="the notes for the next session")
        p.add_argument("--file", help="read the notes from FILE (- for standard input)")
        p.add_argument("--agent", help="whose session (default: $GT_AGENT, the caller's)")
        p.add_argument("--no-restart", action="store_true",
                       help="only record the handoff; leave the session running")
        p.set_defaults(func=_handoff)
    else:
        p.add_argument("agent")
        p.add_argument("--session", type=int, metavar="N",
                       help="which session (1 = the first; default: the one before the "
                            "latest)")
        p.add_argument("--ask", metavar="QUESTION",
                       help="print the material framed for a model to answer QUESTION "
                            "(no model is called)")
        p.set_defaults(func=_seance)
