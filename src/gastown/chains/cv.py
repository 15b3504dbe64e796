"""An entity's CV from its chain records: what it did, how well, what it is good at.

:func:`summarize` is pure (records in, a JSON-ready dict out) and exact on what it
counts.  Definitions (also in the README, "gt cv"):

* **counts** -- the records on the entity's own chain, by kind; **judged** -- the
  validated / rejected / reopened records *about* its work (by others);
* **acceptance rate** = accepted ÷ submitted, where a *submission* is a completion of
  the entity's that got a verdict (the first ``validated`` or ``rejected`` record about
  that bead's work after it) and it is *accepted* when that verdict is ``validated``;
  ``acceptance_low`` is the Wilson 95% lower bound (small samples say little);
* **revisions** = (rejections + reopens of its work) ÷ completions;
* **review outcomes** -- the verdicts (``quality.verdict``: merged, approved…) counted;
* **on-time rate** = completions at or before their ``work.due`` ÷ completions that
  had a due date (a record without one but with ``quality.on_time`` counts by that);
* **unreviewed** -- validations of its work that show no review activity;
* **skills** (:mod:`.skills`) and **reputation** (:mod:`.reputation`) with evidence.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from ..errors import NotFoundError
from .cvinput import Record, as_utc, link, read_records, unreviewed, verdict_of
from .reputation import Reputation, all_reputations
from .skills import Skills, all_skills, build_model

__all__ = ["summarize", "wilson_low"]


def wilson_low(hits: int, n: int, z: float = 1.96) -> float | None:
    """The Wilson score interval's lower bound for ``hits`` of ``n`` (None when n is 0)."""
    if n <= 0:
        return None
    p = hits / n
    centre = p + z * z / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (centre - margin) / (1 + z * z / n))


def _rate(num: int, den: int) -> float | None:
    return round(num / den, 6) if den else None


def _on_time(rec: Record) -> bool | None:
    if rec.work.due is not None:
        return rec.at <= rec.work.due
    flag = rec.quality.get("on_time")
    return flag if isinstance(flag, bool) else None


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def summarize(records: list[dict[str, Any]], entity: str, now: datetime | None = None, *,
              skills: int = 10, history: int | None = None) -> dict[str, Any]:
    """The CV of ``entity`` at ``now`` (default: the current time) as a JSON-ready dict.

    ``skills`` caps the skill terms shown and ``history`` the reputation history
    (None: all).  Raises :class:`NotFoundError` when no record is by or about ``entity``.
    """
    checked = read_records(records)
    now = as_utc(now)
    checked = [r for r in checked if r.at <= now]
    links = link(checked)
    own = [r for r in checked if r.entity == entity]
    about = [r for r in checked if links.author.get(r.index) == entity]
    if not own and not about:
        raise NotFoundError(f"no chain records by or about {entity[:120]!r}")
    counts: dict[str, int] = {}
    for rec in own:
        counts[rec.kind] = counts.get(rec.kind, 0) + 1
    judged = {"validated": 0, "rejected": 0, "reopened": 0}
    outcomes: dict[str, int] = {}
    stamps = 0
    for rec in about:
        judged[rec.kind] += 1
        if rec.kind != "reopened":
            verdict = verdict_of(rec)
            outcomes[verdict] = outcomes.get(verdict, 0) + 1
        if unreviewed(rec):
            stamps += 1
    done = [r for r in own if r.kind == "completed"]
    submitted = [r for r in done if r.index in links.verdict]
    accepted = sum(1 for r in submitted if links.verdict[r.index].kind == "validated")
    timing = [t for t in (_on_time(r) for r in done) if t is not None]
    model = build_model(checked, links)
    mine: Skills = all_skills(checked, model, links).get(entity) or Skills(entity)
    rep = all_reputations(checked, now, links).get(entity)
    if rep is None:
        rep = Reputation(entity)
        rep.finish(now)
    low = wilson_low(accepted, len(submitted))
    return {
        "entity": entity,
        "now": _iso(now),
        "records": len(own),
        "counts": dict(sorted(counts.items())),
        "judged": judged,
        "quality": {
            "completions": len(done),
            "submitted": len(submitted),
            "accepted": accepted,
            "acceptance_rate": _rate(accepted, len(submitted)),
            "acceptance_low": None if low is None else round(low, 6),
            "revisions": judged["rejected"] + judged["reopened"],
            "revisions_per_completion": _rate(judged["rejected"] + judged["reopened"],
                                              len(done)),
            "review_outcomes": dict(sorted(outcomes.items())),
            "with_due": len(timing),
            "on_time": sum(timing),
            "on_time_rate": _rate(sum(timing), len(timing)),
            "unreviewed_validations": stamps,
        },
        "work": [{"bead": r.bead, "title": r.work.title, "at": _iso(r.at),
                  "outcome": links.final[r.index].kind if r.index in links.final else None,
                  "on_time": _on_time(r)} for r in done],
        "skills": mine.top(skills),
        "reputation": rep.to_json(history),
    }
