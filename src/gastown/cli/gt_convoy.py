"""``gt convoy``: batches of beads that land together (create, add, status, list)."""

from __future__ import annotations

from typing import Any

from ._app import Ctx
from .gt_common import add_action, add_actions, add_parser, clean, town_ledger


def _create(ctx: Ctx) -> int:
    from ..controller.convoy import create_convoy

    a = ctx.args
    bead = create_convoy(town_ledger(ctx), a.title, a.beads, target=a.target, notify=a.notify)
    if ctx.quiet and not ctx.json:
        print(bead["id"])
        return 0
    ctx.out(bead, f"Created convoy {bead['id']}: {clean(bead['title'])} "
                  f"({len(a.beads)} bead(s))")
    return 0


def _add(ctx: Ctx) -> int:
    from ..controller.convoy import add_to_convoy

    bead = add_to_convoy(town_ledger(ctx), ctx.args.convoy, ctx.args.beads)
    ctx.out(bead, f"Added {', '.join(ctx.args.beads)} to convoy {bead['id']}")
    return 0


def _status(ctx: Ctx) -> int:
    from ..controller.convoy import convoy_status

    data = convoy_status(town_ledger(ctx), ctx.args.convoy)

    def text() -> str:
        state = "landed" if data["landed"] else "in flight"
        lines = [f"{data['id']} {clean(data['title'])}: {state}, "
                 f"{data['closed']}/{data['total']} done"
                 + (f", target {data['target']}" if data["target"] else "")]
        for b in data["beads"]:
            mark = "x" if b["status"] == "closed" else (
                "!" if b["id"] in data["stranded"] else " ")
            lines.append(f"  [{mark}] {b['id']:<14} {b['status']:<12} "
                         f"{clean(b['assignee'] or '-'):<28} {clean(b['title'])}")
        if data["stranded"]:
            lines.append(f"  stranded (ready, nobody on it): {', '.join(data['stranded'])}")
        return "\n".join(lines)

    ctx.out(data, text)
    return 0


def _list(ctx: Ctx) -> int:
    from ..controller.convoy import list_convoys

    items = list_convoys(town_ledger(ctx), include_closed=ctx.args.all)

    def text() -> str:
        if not items:
            return "No convoys" + ("" if ctx.args.all else " in flight (--all for landed ones)")
        return "\n".join(
            f"{c['id']:<14} {'landed' if c['landed'] else 'in flight':<10} "
            f"{c['closed']}/{c['total']:<4} {clean(c['title'])}"
            + (f"  (stranded: {len(c['stranded'])})" if c["stranded"] else "") for c in items)

    ctx.out(items, text)
    return 0


def setup(name: str, sub: Any) -> None:
    """Add the ``convoy`` parser."""
    from .gt import COMMANDS

    p = add_parser(sub, name, COMMANDS[name][1])
    actions = add_actions(p)
    q = add_action(actions, "create", "a convoy tracking some beads")
    q.add_argument("title")
    q.add_argument("beads", nargs="*", help="beads to track")
    q.add_argument("--target", help="pool, rig or agent that gets its stranded work")
    q.add_argument("--notify", help="who is mailed when it lands (default: you)")
    q.set_defaults(func=_create)
    q = add_action(actions, "add", "track more beads")
    q.add_argument("convoy")
    q.add_argument("beads", nargs="+")
    q.set_defaults(func=_add)
    q = add_action(actions, "status", "a convoy's beads and progress")
    q.add_argument("convoy")
    q.set_defaults(func=_status)
    q = add_action(actions, "list", "convoys, newest first")
    q.add_argument("--all", action="store_true", help="landed ones too")
    q.set_defaults(func=_list)
    p.set_defaults(func=_list, all=False)
