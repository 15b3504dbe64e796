"""``gt costs``: tokens and dollars per agent, session, molecule, convoy, day or model."""

from __future__ import annotations

import time
from typing import Any

from ..errors import UsageError
from ._app import Ctx
from .gt_common import add_parser, get_town, town_ledger


def _since(text: str | None) -> float | None:
    """``--since``: a number of days back (``7d``), hours (``12h``) or a date (2026-01-31)."""
    if not text:
        return None
    from datetime import UTC, datetime

    unit = {"d": 86400.0, "h": 3600.0}.get(text[-1:])
    if unit is not None and text[:-1].isdigit() and len(text) < 12:
        return time.time() - int(text[:-1]) * unit
    try:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise UsageError(f"--since {text[:40]!r}: write a number of days (7d), of hours "
                         "(12h), or a date (YYYY-MM-DD)") from None
    return day.timestamp()


def _costs(ctx: Ctx) -> int:
    from ..town.budgets import budget_spend
    from ..town.costs import cost_rows, render_costs, summarize

    town = get_town(ctx)
    a = ctx.args
    led = town_ledger(ctx)
    if a.agent:
        town.agent(a.agent)  # an unknown name: one clear line
    rows = cost_rows(town, led, since=_since(a.since), agents=[a.agent] if a.agent else None)
    groups = summarize(rows, a.by)
    budgets = budget_spend(town, led, time.time()) if town.config.budgets else []

    def text() -> str:
        out = render_costs(groups, a.by)
        for b in budgets:
            spent = f"${b['spent']:.2f}" if b["unit"] == "usd" else f"{int(b['spent'])} tokens"
            out += (f"Budget {b['key']} = {b['budget']}: {spent} this {b['period']}"
                    f"{'  PAUSED' if b['over'] else ''}\n")
        return out.rstrip("\n")

    data: dict[str, Any] = {"by": a.by, "groups": groups,
                            "total_usd": round(sum(g["usd"] for g in groups), 6),
                            "budgets": budgets}
    ctx.out(data, text)
    return 0


def setup(name: str, sub: Any) -> None:
    """Add the ``costs`` parser."""
    from ..town.costs import GROUPS
    from .gt import COMMANDS

    p = add_parser(sub, name, COMMANDS[name][1])
    p.add_argument("--by", default="agent", choices=GROUPS, help="what to add up by")
    p.add_argument("--agent", help="only this agent's usage")
    p.add_argument("--since", help="only usage since: 7d, 12h or YYYY-MM-DD")
    p.set_defaults(func=_costs)
