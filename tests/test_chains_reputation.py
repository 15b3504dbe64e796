"""Reputation as stake (gastown.chains.reputation): rises, falls, recovers, exactly.

Every expected value below is the published formula worked by hand:
R = max(0, 1 + gains - sum(penalty * 2^(-age / 30 days))).
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from cv_history import REFINERY, T0, History
from gastown.chains import reputation as rp
from gastown.chains.cvinput import parse_time
from gastown.chains.reputation import factor, reputation

ME = "entity://gt/acme/rig/polecat/nux"
YOU = "entity://gt/acme/rig/polecat/toast"
DAY = timedelta(days=1)


def _done(h: History, who: str, bead: str, verdict: str | None, *, activity: int = 2,
          at_day: float | None = None) -> None:
    at = None if at_day is None else T0 + at_day * DAY
    h.add(who, "claimed", bead, at=at, work={"title": bead})
    h.add(who, "completed", bead, work={"title": bead})
    if verdict:
        h.add(REFINERY, verdict, bead, subject=who, work={"title": bead},
              quality={"verdict": verdict, "review_activity": activity})


def test_validated_work_raises_it_a_rejection_lowers_it_and_time_heals() -> None:
    h = History()
    for i in range(5):
        _done(h, ME, f"gt-{i}", "validated", at_day=i)
    rises = reputation(h.records, ME, T0 + 5 * DAY)
    assert rises.value == 6.0  # 1 + five gains of 1, no penalty
    gains = [e["value"] for e in rises.history if "validated" in e["why"]]
    assert gains == [2.0, 3.0, 4.0, 5.0, 6.0]
    _done(h, ME, "gt-bad", "rejected", at_day=5)
    falls = reputation(h.records, ME, T0 + 5 * DAY + timedelta(minutes=10))
    assert falls.history[-1]["value"] == 4.0 and falls.history[-1]["bead"] == "gt-bad"
    assert "rejected" in falls.history[-1]["why"]
    # two half-lives later the penalty is a quarter of itself: 6 - 2/4
    rejected_at = parse_time(h.records[-1]["at"], "", "")
    healed = reputation(h.records, ME, rejected_at + 60 * DAY)
    assert healed.value == pytest.approx(5.5, abs=1e-12)
    # and with new validated work it climbs past where it was (the redemption arc)
    for i in range(3):
        _done(h, ME, f"gt-new{i}", "validated", at_day=66 + i)
    assert reputation(h.records, ME, T0 + 70 * DAY).value > 6.0


def test_the_value_never_goes_below_zero_and_recovers_from_there() -> None:
    h = History()
    for i in range(3):
        _done(h, ME, f"gt-{i}", "rejected", at_day=i / 100)
    low = reputation(h.records, ME, T0 + DAY)
    assert low.value == 0.0
    # 1 - 6 * 2^(-t/30) > 0 once t > 30 * log2(6) days (about 77.5)
    assert reputation(h.records, ME, T0 + 77 * DAY).value == 0.0
    assert reputation(h.records, ME, T0 + 79 * DAY).value > 0.0


def test_a_claim_stakes_reputation_until_it_is_resolved() -> None:
    h = History()
    _done(h, ME, "gt-1", "validated", at_day=0)
    h.add(ME, "claimed", "gt-2", work={"title": "two"})
    open_claim = reputation(h.records, ME, T0 + DAY)
    assert open_claim.staked == rp.STAKE and open_claim.available == 2.0 - rp.STAKE
    assert open_claim.to_json()["open_claims"] == ["gt-2"]
    # another agent takes the bead over: the stake is released, nothing lost
    h.add(YOU, "claimed", "gt-2", work={"title": "two"})
    released = reputation(h.records, ME, T0 + DAY)
    assert released.staked == 0.0 and released.value == 2.0
    assert "stake released" in released.history[-1]["why"]
    # a stake lost: claimed, completed, rejected
    _done(h, ME, "gt-3", "rejected")
    assert reputation(h.records, ME, T0 + DAY).staked == 0.0


def test_a_stake_cannot_exceed_the_value() -> None:
    h = History()
    for i in range(5):
        h.add(ME, "claimed", f"gt-{i}", work={"title": "x"})
    rep = reputation(h.records, ME, T0 + DAY)
    assert rep.value == 1.0 and rep.staked == 1.0 and rep.available == 0.0


def test_a_reopen_costs_the_one_who_completed_the_bead() -> None:
    h = History()
    _done(h, ME, "gt-1", "validated", at_day=0)
    h.add(YOU, "reopened", "gt-1", work={"title": "gt-1"})  # no subject: the last completer
    reopened_at = parse_time(h.records[-1]["at"], "", "")
    mine = reputation(h.records, ME, reopened_at)
    assert mine.value == 1.0  # 1 + 1 - 1
    later = reputation(h.records, ME, reopened_at + 30 * DAY)
    assert later.value == pytest.approx(1.5, abs=1e-12)  # half of the penalty faded
    assert reputation(h.records, YOU, T0 + DAY).value == 1.0  # the reopener: untouched


def test_a_rubber_stamp_earns_half() -> None:
    h = History()
    _done(h, ME, "gt-1", "validated", activity=0, at_day=0)
    rep = reputation(h.records, ME, T0 + DAY)
    assert rep.value == 1.5 and "(no review activity)" in rep.history[-1]["why"]


def test_a_newcomer_has_the_base_value_and_the_factor_saturates() -> None:
    assert reputation([], ME, T0).value == rp.R0 == 1.0
    assert factor(1.0) == pytest.approx(2 / 3)
    assert factor(0.0) == 0.5
    assert factor(18.0) == pytest.approx(0.95)


def test_the_same_records_and_now_give_the_same_history() -> None:
    h = History()
    _done(h, ME, "gt-1", "validated", at_day=0)
    _done(h, ME, "gt-2", "rejected", at_day=1)
    a = reputation(h.records, ME, T0 + 9 * DAY)
    b = reputation(list(reversed(h.records)), ME, T0 + 9 * DAY)
    assert a.to_json() == b.to_json()
    assert [e["why"].split(": ")[0] for e in a.history] == [
        "claimed gt-1", "gt-1 validated by entity://gt/acme/refinery",
        "claimed gt-2", "gt-2 rejected by entity://gt/acme/refinery"]


def test_the_formula_is_published_with_the_constants_the_code_uses() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    doc = rp.__doc__ or ""
    for text in (doc, readme):
        for name, value in (("R0", rp.R0), ("G", rp.GAIN), ("P_reject", rp.P_REJECT),
                            ("P_reopen", rp.P_REOPEN), ("S", rp.STAKE), ("K", rp.K)):
            assert re.search(rf"`{name} = {value:g}`", text), (name, value)
        assert f"H = {rp.HALF_LIFE_DAYS:g} days" in text
