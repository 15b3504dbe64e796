"""``bd`` hook and gate commands: pin, unpin, hook, gate list/resolve.

Split from :mod:`.bd_chem` (which builds their parsers through :func:`setup_hook`)
so each module stays small; the work is in :mod:`gastown.hook` and the ledger.
"""

from __future__ import annotations

import argparse

from ..errors import UsageError
from ._app import Ctx, common_options

__all__ = ["setup_hook"]


def _agent(ctx: Ctx, explicit: str | None) -> str:
    from ..ledger.discovery import default_actor

    return explicit or ctx.actor or default_actor()


def _bead_id(ctx: Ctx, ref: str) -> str:
    return ref if ctx.ledger.exists(ref) else ctx.resolve(ref)


# ------------------------------------------------------------------------ gate
def _gate_list(ctx: Ctx) -> int:
    from ..ledger.query import Filter

    f = Filter(issue_type=["gate"], include_ephemeral=True, include_closed=ctx.args.all)
    gates = ctx.ledger.list(f, sort="created")

    def text() -> str:
        if not gates:
            return "No open gates."
        from ._output import bead_line

        return "\n".join(bead_line(g) for g in gates)

    ctx.out(gates, text)
    return 0


def _gate_resolve(ctx: Ctx) -> int:
    led = ctx.ledger
    bid = _bead_id(ctx, ctx.args.id)
    with led.transaction(ctx.actor) as t:
        bead = t.get(bid)
        if bead.get("issue_type") != "gate":
            raise UsageError(f"{bid} is a {bead.get('issue_type')}, not a gate")
        was_open = bead["status"] != "closed"
        bead = t.close(bid, reason=ctx.args.reason or "gate resolved", force=True)
        if was_open:
            t.emit("gate.resolved", bid, {"reason": ctx.args.reason} if ctx.args.reason else None)
    ctx.out(bead, f"✓ Gate resolved: {bid}" if was_open else f"{bid} was already resolved")
    return 0


# ------------------------------------------------------------------------ hook
def _pin(ctx: Ctx) -> int:
    from ..hook import pin

    agent = _agent(ctx, ctx.args.agent)
    bead = pin(ctx.ledger, _bead_id(ctx, ctx.args.id), agent)
    ctx.out(bead, f"✓ Pinned {bead['id']} to {agent}'s hook")
    return 0


def _unpin(ctx: Ctx) -> int:
    from ..hook import unpin

    agent = _agent(ctx, ctx.args.agent)
    bid = _bead_id(ctx, ctx.args.id) if ctx.args.id else None
    released = unpin(ctx.ledger, agent, bid)
    ctx.out({"agent": agent, "unpinned": released},
            f"✓ Unpinned {', '.join(released)} from {agent}'s hook" if released
            else f"Nothing to unpin from {agent}'s hook")
    return 0


def _hook(ctx: Ctx) -> int:
    from ..chemistry.inspect import next_step_for
    from ..hook import hooked

    led = ctx.ledger
    agent = _agent(ctx, ctx.args.agent)
    beads = hooked(led, agent)
    rows = []
    for b in beads:
        item = dict(b)
        if b.get("issue_type") == "molecule":
            step = next_step_for(led, b["id"], agent)
            item["current_step"] = ({"id": step["id"], "title": step["title"],
                                     "status": step["status"]} if step else None)
        rows.append(item)

    def text() -> str:
        if not rows:
            return f"🪝 {agent}'s hook is empty"
        lines = [f"🪝 {agent}'s hook ({len(rows)}):"]
        for r in rows:
            lines.append(f"  {r['id']}  [{r.get('issue_type')}]  {r['title']}")
            if r.get("current_step"):
                lines.append(f"    current step: {r['current_step']['id']}  "
                             f"{r['current_step']['title']}")
        return "\n".join(lines)

    ctx.out(rows, text)
    return 0


def setup_hook(name: str, p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``gate``, ``pin``, ``unpin`` or ``hook`` to parser ``p``."""
    common_options(p)
    if name == "gate":
        gsub = p.add_subparsers(dest="gate_command", metavar="SUBCOMMAND")
        gsub.required = True
        sp = gsub.add_parser("list", help="open gates")
        common_options(sp)
        sp.add_argument("--all", action="store_true", help="include resolved gates")
        sp.set_defaults(func=_gate_list)
        sp = gsub.add_parser("resolve", help="resolve (close) a gate: its step becomes ready")
        common_options(sp)
        sp.add_argument("id")
        sp.add_argument("--reason", help="why it is resolved")
        sp.set_defaults(func=_gate_resolve)
    elif name == "pin":
        p.add_argument("id")
        p.add_argument("--for", "--agent", dest="agent", help="whose hook (default: the actor)")
        p.set_defaults(func=_pin)
    elif name == "unpin":
        p.add_argument("id", nargs="?")
        p.add_argument("--for", "--agent", dest="agent", help="whose hook (default: the actor)")
        p.set_defaults(func=_unpin)
    elif name == "hook":
        p.add_argument("--agent", "--for", dest="agent", help="whose hook (default: the actor)")
        p.set_defaults(func=_hook)
