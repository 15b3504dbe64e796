"""The ``[orders.NAME]`` and ``[housekeeping]`` tables of ``town.toml``.

An order starts a formula by itself: on a cron ``schedule`` or when an event
``on`` happens (optionally only for beads with a ``label``).  Which formula, with
which ``vars``, slung to whom (``sling``) and as a wisp or not is all written here;
nothing about it is decided by a model.  Whether the formula exists is checked when
the order fires (and by ``gt orders list`` / ``gt doctor``): formulas live in the
ledger's search paths, which this layer does not read.

Every mistake is one :class:`ValidationError` naming the file, the order and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError
from .cron import Cron, parse_cron
from .values import boolean, check_name, checked_table, string, table

__all__ = ["Order", "Housekeeping", "parse_orders", "parse_housekeeping", "parse_age",
           "ORDER_KEYS"]

ORDER_KEYS = {"formula", "schedule", "on", "label", "vars", "sling", "wisp", "enabled",
              "description"}
_EVENT_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
_AGE_RE = re.compile(r"^\s*(\d{1,7}(?:\.\d{1,6})?)\s*([smhdw]?)\s*$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class Order:
    """One ``[orders.NAME]`` table."""

    name: str
    formula: str
    schedule: str | None = None
    cron: Cron | None = None
    on: str | None = None
    label: str | None = None
    vars: dict[str, str] = field(default_factory=dict)
    sling: str | None = None
    wisp: bool = False
    enabled: bool = True
    description: str = ""


@dataclass(frozen=True)
class Housekeeping:
    """``[housekeeping]``: what the controller cleans up, and when."""

    wisp_max_age: float | None = 7 * 86400.0  # closed wisps older than this are burned
    prune_worktrees: bool = True    # agents' landed branches and idle worktrees removed
    timer_gates: bool = True        # open `timer` gates when their time comes
    conditional_bonds: bool = True  # skip the branch of a bond whose condition failed
    every: float = 60.0             # seconds between housekeeping passes


def parse_age(value: object, where: str) -> float:
    """``"7d"``, ``"12h"``, ``"30m"``, ``"90s"``, ``"2w"`` or a number of seconds."""
    if isinstance(value, bool):
        raise ValidationError(f"{where} must be an age like \"7d\", \"12h\" or seconds")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str) and (m := _AGE_RE.match(value)):
        seconds = float(m.group(1)) * _UNIT[m.group(2)]
    else:
        raise ValidationError(f"{where} must be an age like \"7d\", \"12h\", \"30m\" or a "
                              f"number of seconds, not {value!r}")
    if not 0 < seconds <= 10 * 365 * 86400:
        raise ValidationError(f"{where} must be above 0 and at most ten years")
    return seconds


def _vars(o: dict[str, Any], where: str) -> dict[str, str]:
    value = o.get("vars", {})
    if not isinstance(value, dict):
        raise ValidationError(f"{where}.vars must be a table of strings")
    out: dict[str, str] = {}
    for k, v in value.items():
        if not isinstance(k, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]{0,62}", k):
            raise ValidationError(f"{where}.vars: {k!r} is not a variable name")
        if isinstance(v, bool) or not isinstance(v, (str, int, float)):
            raise ValidationError(f"{where}.vars.{k} must be a string")
        if len(str(v)) > 4096:
            raise ValidationError(f"{where}.vars.{k} is longer than 4096 characters")
        out[k] = str(v)
    return out


def parse_orders(data: dict[str, Any], path: str) -> dict[str, Order]:
    """Validate every ``[orders.NAME]`` table of parsed ``town.toml`` data."""
    out: dict[str, Order] = {}
    for name, raw in table(data, "orders", path).items():
        where = f"{path}: orders.{name}"
        check_name("order", name, path)
        o = checked_table(raw, ORDER_KEYS, where)
        formula = string(o, "formula", where)
        if not formula or not formula.strip():
            raise ValidationError(f"{where}.formula is required (the formula or proto to pour)")
        schedule, on = string(o, "schedule", where), string(o, "on", where)
        if (schedule is None) == (on is None):
            raise ValidationError(f"{where}: give exactly one of 'schedule' (cron) or 'on' "
                                  "(an event type such as bead.closed)")
        if on is not None and not _EVENT_RE.fullmatch(on):
            raise ValidationError(f"{where}.on: {on!r} is not an event type (e.g. "
                                  "bead.closed, merge.landed)")
        label = string(o, "label", where)
        if label is not None and on is None:
            raise ValidationError(f"{where}.label applies to event orders ('on'), "
                                  "not to schedules")
        sling = string(o, "sling", where)
        if sling is not None:
            check_name("sling target", sling, f"{where}.sling")
        out[name] = Order(
            name=name, formula=formula.strip(), schedule=schedule,
            cron=parse_cron(schedule, f"{where}.schedule") if schedule is not None else None,
            on=on, label=label, vars=_vars(o, where), sling=sling,
            wisp=boolean(o, "wisp", where, False), enabled=boolean(o, "enabled", where, True),
            description=string(o, "description", where, "") or "")
    return out


def parse_housekeeping(data: dict[str, Any], path: str) -> Housekeeping:
    """Validate ``[housekeeping]`` (defaults for what is absent)."""
    where = f"{path}: housekeeping"
    h = checked_table(data.get("housekeeping", {}),
                      {"wisp_max_age", "prune_worktrees", "timer_gates", "conditional_bonds",
                       "every"}, where)
    age: float | None = 7 * 86400.0
    raw_age = h.get("wisp_max_age")
    if raw_age is not None:
        age = None if raw_age in ("never", "off") else parse_age(raw_age, f"{where}.wisp_max_age")
    every = parse_age(h.get("every", 60), f"{where}.every")
    return Housekeeping(wisp_max_age=age,
                        prune_worktrees=boolean(h, "prune_worktrees", where, True),
                        timer_gates=boolean(h, "timer_gates", where, True),
                        conditional_bonds=boolean(h, "conditional_bonds", where, True),
                        every=every)
