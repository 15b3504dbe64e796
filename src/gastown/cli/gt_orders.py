"""``gt orders``: formulas the town starts by itself (list, run)."""

from __future__ import annotations

from typing import Any

from ._app import Ctx
from .gt_common import add_action, add_actions, add_parser, clean, get_town, town_ledger


def _when(order: dict[str, Any]) -> str:
    if order["schedule"] is not None:
        return f"schedule {order['schedule']!r}"
    label = f" label={order['label']}" if order["label"] else ""
    return f"on {order['on']}{label}"


def _list(ctx: Ctx) -> int:
    from ..controller.orders import list_orders

    town = get_town(ctx)
    items = list_orders(town, town_ledger(ctx))

    def text() -> str:
        if not items:
            return f"No orders in {town.config.path} (add an [orders.NAME] table)"
        lines = []
        for o in items:
            state = "" if o["enabled"] else " (disabled)"
            nxt = o["next"] or ("on each event" if o["on"] else "-")
            lines.append(f"{o['name']}{state}: {clean(o['formula'])}, {clean(_when(o))}"
                         + (f", sling to {o['sling']}" if o["sling"] else ""))
            last = "last attempt failed" if o["last_failed"] else "last fired"
            lines.append(f"  next: {nxt}   {last}: {o['last_fired'] or 'never'}"
                         + (f" ({o['last_root']})" if o["last_root"] else ""))
            if o.get("formula_error"):
                lines.append(f"  error: {clean(o['formula_error'])}")
            elif o["last_error"]:
                lines.append(f"  last error: {clean(o['last_error'])}")
        return "\n".join(lines)

    ctx.out(items, text)
    return 0 if all(o.get("formula_ok", True) for o in items) else 1


def _run(ctx: Ctx) -> int:
    from ..controller.orders import fire, order_by_name

    town = get_town(ctx)
    order = order_by_name(town, ctx.args.name)
    out = fire(town, town_ledger(ctx), order, reason="manual", sling_it=not ctx.args.no_sling)
    if out.get("error"):
        ctx.out(out, f"Order {order.name} did not fire: {clean(out['error'])}")
        return 1
    sling = out.get("sling") or {}
    text = f"Order {order.name} fired: {out['root']} {clean(out.get('title') or '')}"
    if sling.get("agent"):
        text += f"; slung to {sling['agent']}"
    elif sling.get("error"):
        text += f"; not slung yet (the controller retries): {clean(sling['error'])}"
    ctx.out(out, text)
    return 0


def setup(name: str, sub: Any) -> None:
    """Add the ``orders`` parser."""
    from .gt import COMMANDS

    p = add_parser(sub, name, COMMANDS[name][1])
    actions = add_actions(p)
    q = add_action(actions, "list", "every order: its trigger, next and last firing")
    q.set_defaults(func=_list)
    q = add_action(actions, "run", "fire an order now (whatever its schedule)")
    q.add_argument("name")
    q.add_argument("--no-sling", action="store_true",
                   help="only pour; leave slinging to the controller's next pass")
    q.set_defaults(func=_run)
    p.set_defaults(func=_list)
