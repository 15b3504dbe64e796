"""Reputation as stake: earned by validated work, put at risk by claims, recoverable.

The formula (published here and in the README, "Reputation"; nothing else feeds it).
For an entity E at time ``t``, over the chain records up to ``t``::

    R(t) = max(0, R0 + Σ gains − Σ penalty · 2 ^ (−(t − t_failure) / H))

* ``R0 = 1`` -- everyone starts with a little, so a newcomer can be matched at all;
* a **gain** of ``G = 1`` for each ``validated`` record about E's work (``subject`` E),
  or ``G/2`` when the validation shows no review activity (``quality.review_activity``
  absent or 0: a rubber stamp earns less);
* a **penalty** of ``P_reject = 2`` for each ``rejected`` record about E's work and
  ``P_reopen = 1`` for each ``reopened`` bead E had completed; a penalty fades with a
  half-life of ``H = 30 days``, so old failures are forgiven while the gains stay --
  the *redemption arc*: keep delivering and the value climbs back above where it was;
* **stake**: each ``claimed`` record by E locks ``S = 0.5`` of E's reputation until
  the claim resolves -- a verdict or reopen about E's work on that bead (the failure
  costs the penalty above), or the bead claimed or completed by someone else (released,
  no loss).  ``staked`` is the sum of open stakes (at most ``R``) and ``available =
  R − staked``: what E has not yet put at risk.

Matching uses the factor ``1/2 + 1/2 · R / (R + K)``, ``K = 2``: from 0.5 (no
reputation left) through 0.67 (a newcomer) to 0.95 (``R`` = 18) and never 1.  Reputation
orders agents of equal skill and can at most halve a score: it cannot make up for
missing skill, and a ruined one does not hide a skilled agent.

Deterministic: the same records and ``now`` give the same value and history; the
history lists ``(at, value, why)`` after each event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .cvinput import Links, Record, as_utc, link, read_records, unreviewed

__all__ = ["R0", "GAIN", "P_REJECT", "P_REOPEN", "HALF_LIFE_DAYS", "STAKE", "K",
           "Reputation", "all_reputations", "reputation", "factor"]

R0 = 1.0
GAIN = 1.0
P_REJECT = 2.0
P_REOPEN = 1.0
HALF_LIFE_DAYS = 30.0
STAKE = 0.5
K = 2.0
_HALF_LIFE_S = HALF_LIFE_DAYS * 86_400.0


def factor(value: float) -> float:
    """The reputation factor matching multiplies similarity by: ``1/2 + 1/2 · R/(R + K)``."""
    return 0.5 + 0.5 * (value / (value + K) if value > 0 else 0.0)


@dataclass
class Reputation:
    """One entity's reputation: the value at ``now``, its stakes, and its history."""

    entity: str
    value: float = R0
    staked: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    #: internal running state (see :class:`_Run`)
    gains: float = 0.0
    decayed: float = 0.0
    last: datetime | None = None
    open_stakes: dict[str, float] = field(default_factory=dict)

    @property
    def available(self) -> float:
        """What is not at stake: ``value − staked`` (never below 0)."""
        return max(0.0, self.value - self.staked)

    def to_json(self, history: int | None = None) -> dict[str, Any]:
        """JSON-ready; ``history`` keeps only the last so many entries."""
        hist = self.history if history is None else self.history[-history:] if history else []
        return {"value": round(self.value, 4), "staked": round(self.staked, 4),
                "available": round(self.available, 4), "factor": round(factor(self.value), 4),
                "open_claims": sorted(self.open_stakes), "history": hist,
                "formula": "R = max(0, 1 + gains - sum(penalty * 2^(-age/30d)))"}

    # -- the running computation -----------------------------------------------------

    def _advance(self, at: datetime) -> None:
        if self.last is not None and at > self.last:
            age = (at - self.last).total_seconds()
            self.decayed *= math.pow(2.0, -age / _HALF_LIFE_S)
        if self.last is None or at > self.last:
            self.last = at

    def _value(self) -> float:
        return max(0.0, R0 + self.gains - self.decayed)

    def _note(self, rec: Record, why: str) -> None:
        self.value = self._value()
        self.staked = min(self.value, sum(self.open_stakes.values()))
        self.history.append({"at": rec.at.isoformat().replace("+00:00", "Z"),
                             "value": round(self.value, 4), "why": why, "bead": rec.bead})

    def event(self, rec: Record, kind: str) -> None:
        """Apply one record about this entity (``kind``: what it means for it)."""
        self._advance(rec.at)
        if kind == "claimed":
            self.open_stakes[rec.bead] = STAKE
            self._note(rec, f"claimed {rec.bead}: stakes {STAKE:g}")
        elif kind == "released":
            if self.open_stakes.pop(rec.bead, None) is not None:
                self._note(rec, f"{rec.bead} taken over by another: stake released")
        elif kind == "validated":
            self.open_stakes.pop(rec.bead, None)
            stamp = unreviewed(rec)
            gain = GAIN / 2 if stamp else GAIN
            self.gains += gain
            self._note(rec, f"{rec.bead} validated by {rec.entity[:80]}: +{gain:g}"
                       + (" (no review activity)" if stamp else ""))
        elif kind in ("rejected", "reopened"):
            self.open_stakes.pop(rec.bead, None)
            penalty = P_REJECT if kind == "rejected" else P_REOPEN
            self.decayed += penalty
            self._note(rec, f"{rec.bead} {kind} by {rec.entity[:80]}: -{penalty:g}, "
                            f"fading with a half-life of {HALF_LIFE_DAYS:g} days")

    def finish(self, now: datetime) -> None:
        """Bring the value to ``now`` (penalties fade up to then)."""
        self._advance(now)
        self.value = self._value()
        self.staked = min(self.value, sum(self.open_stakes.values()))


def all_reputations(records: list[Record], now: datetime,
                    links: Links | None = None) -> dict[str, Reputation]:
    """Every entity's reputation at ``now`` from checked records in time order.

    Records after ``now`` are left out (the value *at* ``now``).
    """
    now = as_utc(now)
    links = link(records) if links is None else links
    reps: dict[str, Reputation] = {}
    holder: dict[str, str] = {}  # bead -> entity whose stake is on it

    def rep(entity: str) -> Reputation:
        return reps.setdefault(entity, Reputation(entity))

    for rec in records:
        if rec.at > now:
            break
        if rec.kind in ("claimed", "completed"):
            before = holder.get(rec.bead)
            if before is not None and before != rec.entity:
                rep(before).event(rec, "released")
                del holder[rec.bead]
            if rec.kind == "claimed":
                holder[rec.bead] = rec.entity
                rep(rec.entity).event(rec, "claimed")
            else:
                rep(rec.entity)
        elif rec.kind in ("validated", "rejected", "reopened"):
            author = links.author.get(rec.index)
            if author is None:
                continue
            if holder.get(rec.bead) == author:
                del holder[rec.bead]
            rep(author).event(rec, rec.kind)
    for one in reps.values():
        one.finish(now)
    return reps


def reputation(records: list[dict[str, Any]], entity: str, now: datetime) -> Reputation:
    """``entity``'s reputation at ``now`` from raw chain records."""
    checked = read_records(records)
    now = as_utc(now)
    found = all_reputations(checked, now).get(entity)
    if found is None:
        found = Reputation(entity)
        found.finish(now)
    return found
