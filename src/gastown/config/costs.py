"""The ``[costs]`` and ``[budgets]`` tables of ``town.toml``.

``[costs.prices.MODEL]`` sets what a model's tokens cost, in dollars per
million tokens (``input``, ``output``, ``cache_write``, ``cache_read``); a
town's prices are merged over :data:`DEFAULT_PRICES`.  ``[costs]`` may also
name where each agent program keeps its local session logs (``claude_dir``,
``codex_dir``, ``gemini_dir``), for a town whose agents run with another home.

``[budgets]`` caps spending per period: ``agent.NAME = "$5/day"``,
``pool.NAME = "$20/day"`` or ``town = "$100/week"``; a limit may be tokens
instead of dollars (``"2M tokens/day"``).  Periods are UTC calendar periods:
``hour``, ``day``, ``week`` (from Monday) and ``month``.

Every mistake is one :class:`ValidationError` naming the file and the key.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError
from .values import checked_table, string

__all__ = ["Price", "Budget", "CostSettings", "DEFAULT_PRICES", "PERIODS", "parse_costs",
           "parse_budgets", "parse_limit", "price_of"]

#: the periods a budget may count over
PERIODS = ("hour", "day", "week", "month")


@dataclass(frozen=True)
class Price:
    """Dollars per million tokens of one model."""

    input: float
    output: float
    cache_write: float | None = None  # None: as input
    cache_read: float | None = None   # None: as input

    def cost(self, usage: dict[str, int]) -> float:
        """Dollars for a usage record (``input``, ``output``, ``cache_write``, ``cache_read``)."""
        cw = self.input if self.cache_write is None else self.cache_write
        cr = self.input if self.cache_read is None else self.cache_read
        return (usage.get("input", 0) * self.input + usage.get("output", 0) * self.output
                + usage.get("cache_write", 0) * cw + usage.get("cache_read", 0) * cr) / 1e6


#: list prices per million tokens (USD) when this table was written; a town
#: overrides or adds models under ``[costs.prices.MODEL]``.  A model matches the
#: longest key that its name starts with (``claude-sonnet-4-5-20250929`` is
#: priced as ``claude-sonnet-4-5``).
DEFAULT_PRICES: dict[str, Price] = {
    "claude-opus-4-5": Price(5.0, 25.0, 6.25, 0.50),
    "claude-opus-4": Price(15.0, 75.0, 18.75, 1.50),
    "claude-sonnet-4": Price(3.0, 15.0, 3.75, 0.30),
    "claude-3-7-sonnet": Price(3.0, 15.0, 3.75, 0.30),
    "claude-haiku-4-5": Price(1.0, 5.0, 1.25, 0.10),
    "claude-3-5-haiku": Price(0.80, 4.0, 1.0, 0.08),
    "gpt-5": Price(1.25, 10.0, None, 0.125),
    "gpt-5-mini": Price(0.25, 2.0, None, 0.025),
    "gpt-4.1": Price(2.0, 8.0, None, 0.50),
    "o3": Price(2.0, 8.0, None, 0.50),
    "gemini-2.5-pro": Price(1.25, 10.0, None, 0.31),
    "gemini-2.5-flash": Price(0.30, 2.50, None, 0.075),
}


@dataclass(frozen=True)
class Budget:
    """One limit: ``kind`` is agent, pool or town; ``unit`` is ``usd`` or ``tokens``."""

    kind: str
    name: str
    limit: float
    unit: str
    period: str
    text: str
    key: str  # where it is written, for messages: budgets.agent.NAME

    def describe(self) -> str:
        """The limit as a person wrote it (``$5/day``)."""
        return self.text


@dataclass
class CostSettings:
    """The ``[costs]`` table: prices and where agent programs keep their logs."""

    prices: dict[str, Price] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    claude_dir: str | None = None
    codex_dir: str | None = None
    gemini_dir: str | None = None


def price_of(prices: dict[str, Price], model: str) -> Price | None:
    """The price of ``model``: its own entry, else the longest key it starts with."""
    if model in prices:
        return prices[model]
    best = max((k for k in prices if model.startswith(k)), key=len, default=None)
    return prices[best] if best else None


def _rate(t: dict[str, Any], key: str, where: str, required: bool) -> float | None:
    value = t.get(key)
    if value is None:
        if required:
            raise ValidationError(f"{where}.{key} is required (dollars per million tokens)")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or not 0 <= value <= 1e6:
        raise ValidationError(f"{where}.{key} must be a number of dollars per million "
                              f"tokens from 0 to 1000000, not {value!r}")
    return float(value)


def parse_costs(data: dict[str, Any], path: str = "town.toml") -> CostSettings:
    """Validate ``[costs]`` (absent: the default prices and the programs' own homes)."""
    where = f"{path}: costs"
    c = checked_table(data.get("costs", {}),
                      {"prices", "claude_dir", "codex_dir", "gemini_dir"}, where)
    out = CostSettings(claude_dir=string(c, "claude_dir", where),
                       codex_dir=string(c, "codex_dir", where),
                       gemini_dir=string(c, "gemini_dir", where))
    prices = c.get("prices", {})
    if not isinstance(prices, dict):
        raise ValidationError(f"{where}.prices must be a table of models")
    for model, t in prices.items():
        at = f"{where}.prices.{model}"
        if not model or len(model) > 200:
            raise ValidationError(f"{at}: a model name of 1 to 200 characters")
        t = checked_table(t, {"input", "output", "cache_write", "cache_read"}, at)
        out.prices[model] = Price(_rate(t, "input", at, True) or 0.0,
                                  _rate(t, "output", at, True) or 0.0,
                                  _rate(t, "cache_write", at, False),
                                  _rate(t, "cache_read", at, False))
    return out


_LIMIT = re.compile(r"^\s*(?:\$\s*(?P<usd>[0-9]+(?:\.[0-9]+)?)|(?P<tok>[0-9]+(?:\.[0-9]+)?)"
                    r"\s*(?P<mult>[kKmM]?)\s*tokens?)\s*/\s*(?P<period>[a-z]+)\s*$")


def parse_limit(text: Any, where: str) -> tuple[float, str, str]:
    """``(limit, unit, period)`` of a budget's text: ``"$5/day"``, ``"2M tokens/week"``."""
    m = _LIMIT.match(text) if isinstance(text, str) and len(text) <= 100 else None
    if m is None or m.group("period") not in PERIODS:
        raise ValidationError(
            f"{where}: {str(text)[:60]!r} is not a budget; write \"$AMOUNT/PERIOD\" or "
            f"\"N tokens/PERIOD\" (N may end in k or M), PERIOD one of {', '.join(PERIODS)}")
    if m.group("usd") is not None:
        return float(m.group("usd")), "usd", m.group("period")
    scale = {"": 1, "k": 1e3, "m": 1e6}[m.group("mult").lower()]
    return float(m.group("tok")) * scale, "tokens", m.group("period")


def parse_budgets(data: dict[str, Any], path: str, agents: set[str],
                  pools: set[str]) -> list[Budget]:
    """Validate ``[budgets]`` against the town's agents and pools."""
    where = f"{path}: budgets"
    b = checked_table(data.get("budgets", {}), {"agent", "pool", "town"}, where)
    out: list[Budget] = []
    if "town" in b:
        limit, unit, period = parse_limit(b["town"], f"{where}.town")
        out.append(Budget("town", "", limit, unit, period, str(b["town"]), "budgets.town"))
    for kind, names in (("agent", agents), ("pool", pools)):
        t = b.get(kind, {})
        if not isinstance(t, dict):
            raise ValidationError(f"{where}.{kind} must be a table ({kind}.NAME = \"$5/day\")")
        for name, text in t.items():
            key = f"budgets.{kind}.{name}"
            if name not in names:
                raise ValidationError(f"{path}: {key}: no {kind} named {name!r}")
            limit, unit, period = parse_limit(text, f"{path}: {key}")
            out.append(Budget(kind, name, limit, unit, period, str(text), key))
    return out
