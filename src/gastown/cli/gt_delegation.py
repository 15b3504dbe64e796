"""``gt delegate`` and ``gt delegation list|accept|reject``: work handed between towns."""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from ._app import Ctx
from .gt_common import add_action, add_actions, add_parser, clean, get_town, town_ledger


def _delegate(ctx: Ctx) -> int:
    from ..federation.delegation import delegate, parse_terms
    from ..federation.publish import publish

    town, a = get_town(ctx), ctx.args
    led = town_ledger(ctx)
    body = delegate(led, town.gt_dir, town.config, ctx.resolve(a.local_id), a.to,
                    parse_terms(a.terms))
    res = publish(town.root, town.gt_dir, town.config, led)
    where = ", ".join(res["targets"]) or "the local log (set [federation] publish_to)"
    ctx.out(body, f"Delegated {a.local_id} to {a.to} as {body['id']}; published to {where}")
    return 0


def _list(ctx: Ctx) -> int:
    from ..federation.delegation import incoming, outgoing

    town, led = get_town(ctx), town_ledger(ctx)
    data = {"incoming": incoming(led, town.config, town.gt_dir), "outgoing": outgoing(led)}

    def text() -> str:  # titles, answerers and reasons come from other towns: clean()
        lines = [f"in  {d['id']}  {d['status']:<9} from {d['from']}  {clean(d['title'])}"
                 + (f"  -> {d['bead']}" if d.get("bead") else "") for d in data["incoming"]]
        lines += [f"out {d['id']}  {d['status']:<9} {d['local']} -> {d['to']}"
                  + (f"  ({d['delegatee_bead']}, by {clean(d['answered_by'])})"
                     if d.get("delegatee_bead") else "")
                  + (f"  reason: {clean(d['reason'])}" if d.get("reason") else "")
                  for d in data["outgoing"]]
        return "\n".join(lines) or "No delegations"

    ctx.out(data, text)
    return 0


def _answer(ctx: Ctx, accept: bool) -> int:
    from ..federation.delegation import answer, incoming
    from ..federation.publish import publish

    town, led, a = get_town(ctx), town_ledger(ctx), ctx.args
    ids = list(a.ids or [])
    if accept and a.all:
        if ids:
            raise UsageError("gt delegation accept: give IDs or --all, not both")
        ids = [d["id"] for d in incoming(led, town.config, town.gt_dir)
               if d["status"] == "pending"]
    elif not ids:
        raise UsageError(f"gt delegation {'accept' if accept else 'reject'}: give an ID"
                         + (" or --all" if accept else ""))
    done = answer(led, town.gt_dir, town.config, ids, accept,
                  None if accept else getattr(a, "reason", None))
    if done:
        publish(town.root, town.gt_dir, town.config, led)
    ctx.out(done, "\n".join(f"{d['status'].capitalize()} {d['id']}"
                            + (f" as {d['bead']}" if d.get("bead") else "") for d in done)
            or "No pending delegations")
    return 0


def setup(name: str, sub: Any) -> None:
    """Add the ``delegate`` and ``delegation`` parsers."""
    from .gt import COMMANDS

    p = add_parser(sub, name, COMMANDS[name][1])
    if name == "delegate":
        p.add_argument("local_id", metavar="LOCAL_ID")
        p.add_argument("to", metavar="gt://ENTITY/CHAIN[/RIG]")
        p.add_argument("--terms", metavar="K=V[,K=V…]", help="e.g. portion=backend")
        p.set_defaults(func=_delegate)
        return
    actions = add_actions(p)
    q = add_action(actions, "list", "delegations to and from this town, with their status")
    q.set_defaults(func=_list)
    q = add_action(actions, "accept", "accept delegations: a linked bead is made here")
    q.add_argument("ids", nargs="*", metavar="ID")
    q.add_argument("--all", action="store_true", help="every pending delegation")
    q.set_defaults(func=lambda ctx: _answer(ctx, True))
    q = add_action(actions, "reject", "refuse a delegation (the delegator sees it on sync)")
    q.add_argument("ids", nargs=1, metavar="ID")
    q.add_argument("-r", "--reason", help="why")
    q.set_defaults(func=lambda ctx: _answer(ctx, False))
    p.set_defaults(func=_list)
