"""Budgets: spending limits that pause an agent, a pool or the whole town.

:func:`check_budgets` (the controller runs it on its tick) adds up each budget's
spend in its current period from :func:`gastown.town.costs.cost_rows`.  A budget
over its limit is *paused*: a kv record ``gt.budget.paused.KIND.NAME`` and a
``budget.paused`` event, written in one transaction; the controller's pool
feeder then slings no new work to that agent or pool (work already on a hook is
left to finish) and ``gt status`` says why.  When the period turns over, or the
limit is raised or removed in ``town.toml``, the record goes with a
``budget.resumed`` event.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..config.costs import Budget

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from .core import Town

__all__ = ["PAUSED_PREFIX", "period_bounds", "check_budgets", "paused", "paused_reason",
           "budget_spend"]

#: kv keys of paused budgets: ``gt.budget.paused.agent.NAME``, ``.pool.NAME``, ``.town``
PAUSED_PREFIX = "gt.budget.paused."


def period_bounds(period: str, at: float) -> tuple[float, float]:
    """``(start, end)`` of the UTC calendar ``period`` that holds ``at``."""
    t = datetime.fromtimestamp(at, UTC)
    if period == "hour":
        start = t.replace(minute=0, second=0, microsecond=0)
        end = start + timedelta(hours=1)
    elif period == "day":
        start = t.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + timedelta(days=1)
    elif period == "week":
        start = (t - timedelta(days=t.weekday())).replace(hour=0, minute=0, second=0,
                                                           microsecond=0)
        end = start + timedelta(days=7)
    else:  # month
        start = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (start + timedelta(days=32)).replace(day=1)
    return start.timestamp(), end.timestamp()


def _key(b: Budget) -> str:
    return PAUSED_PREFIX + (b.kind if b.kind == "town" else f"{b.kind}.{b.name}")


def _matches(b: Budget, row: dict[str, Any]) -> bool:
    if b.kind == "agent":
        return bool(row["agent"] == b.name)
    if b.kind == "pool":
        return bool(row["pool"] == b.name)
    return True


def budget_spend(town: Town, led: Ledger, at: float,
                 rows: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Each budget of the town with its spend in the period that holds ``at``."""
    from .costs import cost_rows

    budgets = town.config.budgets
    if not budgets:
        return []
    earliest = min(period_bounds(b.period, at)[0] for b in budgets)
    rows = cost_rows(town, led, since=earliest) if rows is None else rows
    out = []
    for b in budgets:
        start, end = period_bounds(b.period, at)
        mine = [r for r in rows if start <= r["ts"] < end and _matches(b, r)]
        spent = (sum(r["usd"] for r in mine) if b.unit == "usd"
                 else float(sum(r["tokens"] for r in mine)))
        out.append({"key": b.key, "kind": b.kind, "name": b.name, "budget": b.text,
                    "limit": b.limit, "unit": b.unit, "period": b.period,
                    "spent": round(spent, 6), "until": end, "over": spent >= b.limit,
                    "paused_key": _key(b)})
    return out


def paused(led: Ledger) -> dict[str, dict[str, Any]]:
    """Paused budgets: ``kv key -> record``."""
    out: dict[str, dict[str, Any]] = {}
    for key, value in led.kv_scan(PAUSED_PREFIX):
        try:
            record = json.loads(value)
        except ValueError:
            record = {}
        out[key] = record if isinstance(record, dict) else {}
    return out


def paused_reason(town: Town, held: dict[str, dict[str, Any]], target: str) -> str | None:
    """Why no work may go to ``target`` (an agent, a pool or a rig's pool), or None."""
    keys = [PAUSED_PREFIX + "town"]
    cfg = town.config
    if target in cfg.pools:
        keys.append(f"{PAUSED_PREFIX}pool.{target}")
    elif target in cfg.rigs and cfg.rigs[target].pool:
        keys.append(f"{PAUSED_PREFIX}pool.{cfg.rigs[target].pool}")
    else:
        keys.append(f"{PAUSED_PREFIX}agent.{target}")
        slot = cfg.pool_slot(target)
        if slot is not None and slot.pool:
            keys.append(f"{PAUSED_PREFIX}pool.{slot.pool}")
    for key in keys:
        if key in held:
            r = held[key]
            return (f"budget {r.get('key', key)} = {r.get('budget')} spent "
                    f"({r.get('spent')} {r.get('unit')} this {r.get('period')})")
    return None


def check_budgets(town: Town, led: Ledger, at: float,
                  rows: list[dict[str, Any]] | None = None) -> dict[str, list[str]]:
    """Pause what went over its budget, resume what is back under; ``{paused, resumed}``."""
    state = budget_spend(town, led, at, rows)
    held = paused(led)
    now_paused: list[str] = []
    resumed: list[str] = []
    over = {s["paused_key"]: s for s in state if s["over"]}
    for key, s in over.items():
        if key in held:
            continue
        record = {k: s[k] for k in ("key", "kind", "name", "budget", "limit", "unit",
                                    "period", "spent", "until")}
        with led.transaction() as t:
            t.kv_put(key, json.dumps(record))
            t.emit("budget.paused", None, {**record, "agent": s["name"] or None,
                                           "reason": f"{s['key']} = {s['budget']} reached"})
        now_paused.append(s["key"])
    for key, record in held.items():
        if key in over:
            continue
        with led.transaction() as t:
            t.kv_drop(key)
            t.emit("budget.resumed", None, {"key": record.get("key", key),
                                            "agent": record.get("name") or None,
                                            "reason": "new period or limit raised"})
        resumed.append(str(record.get("key", key)))
    return {"paused": now_paused, "resumed": resumed}
