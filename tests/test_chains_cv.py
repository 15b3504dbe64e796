"""The CV of an entity (gastown.chains.cv): counts and quality signals, exactly.

Hand-made records where every figure can be counted by hand; bad records from
another town give one line naming the record and the field.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cv_history import REFINERY, T0, History, specialised
from gastown.chains.cv import summarize, wilson_low
from gastown.errors import NotFoundError, ValidationError

ME = "entity://gt/acme/rig/polecat/nux"
YOU = "entity://gt/acme/rig/polecat/toast"
NOW = T0 + timedelta(days=10)


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def hand_made() -> list[dict[str, Any]]:
    """Four completions by ME:

    * gt-1: due day 2, done day 1 (on time), merged with review activity;
    * gt-2: due day 1, done day 2 (late), rejected; no second try;
    * gt-3: no due date, merged without review activity (a rubber stamp), later reopened;
    * gt-4: due day 5, done day 4 (on time), never judged.
    ME also validates YOU's gt-9 once.
    """
    h = History()
    day = [T0 + timedelta(days=d) for d in range(8)]

    def work(title: str, due: datetime | None) -> dict[str, Any]:
        return {"title": title, "type": "task", "labels": ["backend"], "formula": None,
                "files": [], "due": None if due is None else _iso(due), "priority": 2}

    h.add(ME, "claimed", "gt-1", at=day[0] + timedelta(hours=1), work=work("api one", day[2]))
    h.add(ME, "completed", "gt-1", at=day[1], work=work("api one", day[2]))
    h.add(REFINERY, "validated", "gt-1", at=day[1] + timedelta(hours=1), subject=ME,
          work=work("api one", day[2]), quality={"verdict": "merged", "review_activity": 3})
    h.add(ME, "claimed", "gt-2", at=day[1] + timedelta(hours=2), work=work("api two", day[1]))
    h.add(ME, "completed", "gt-2", at=day[2], work=work("api two", day[1]))
    h.add(REFINERY, "rejected", "gt-2", at=day[2] + timedelta(hours=1), subject=ME,
          work=work("api two", day[1]), quality={"verdict": "tests-failed",
                                                 "review_activity": 1})
    h.add(ME, "completed", "gt-3", at=day[3], work=work("api three", None))
    h.add(REFINERY, "validated", "gt-3", at=day[3] + timedelta(hours=1), subject=ME,
          work=work("api three", None), quality={"verdict": "merged", "review_activity": 0})
    h.add(YOU, "reopened", "gt-3", at=day[3] + timedelta(hours=5), work=work("api three", None))
    h.add(ME, "completed", "gt-4", at=day[4], work=work("api four", day[5]))
    h.add(YOU, "completed", "gt-9", at=day[5], work=work("docs nine", None))
    h.add(ME, "validated", "gt-9", at=day[6], subject=YOU, work=work("docs nine", None),
          quality={"verdict": "approved", "review_activity": 2})
    return h.records


def test_counts_and_quality_signals_are_exact_on_hand_made_records() -> None:
    cv = summarize(hand_made(), ME, now=NOW)
    assert cv["counts"] == {"claimed": 2, "completed": 4, "validated": 1}
    assert cv["records"] == 7
    assert cv["judged"] == {"validated": 2, "rejected": 1, "reopened": 1}
    q = cv["quality"]
    # submissions: gt-1 (validated), gt-2 (rejected), gt-3 (validated); gt-4 not judged
    assert (q["completions"], q["submitted"], q["accepted"]) == (4, 3, 2)
    assert q["acceptance_rate"] == round(2 / 3, 6)
    assert q["acceptance_low"] == round(wilson_low(2, 3) or 0, 6)
    # a rejection and a reopen over four completions
    assert q["revisions"] == 2 and q["revisions_per_completion"] == 0.5
    assert q["review_outcomes"] == {"merged": 2, "tests-failed": 1}
    # due dates: gt-1 on time, gt-2 late, gt-4 on time; gt-3 has none
    assert (q["with_due"], q["on_time"], q["on_time_rate"]) == (3, 2, round(2 / 3, 6))
    assert q["unreviewed_validations"] == 1
    outcomes = {w["bead"]: (w["outcome"], w["on_time"]) for w in cv["work"]}
    assert outcomes == {"gt-1": ("validated", True), "gt-2": ("rejected", False),
                        "gt-3": ("reopened", None), "gt-4": (None, True)}
    json.dumps(cv)  # JSON-ready


def test_the_other_side_of_a_validation() -> None:
    cv = summarize(hand_made(), YOU, now=NOW)
    assert cv["counts"] == {"completed": 1, "reopened": 1}
    assert cv["quality"]["submitted"] == 1 and cv["quality"]["acceptance_rate"] == 1.0
    assert cv["quality"]["review_outcomes"] == {"approved": 1}
    assert cv["quality"]["on_time_rate"] is None  # no due date: nothing to say


def test_on_time_from_the_quality_flag_when_there_is_no_due_date() -> None:
    h = History()
    h.add(ME, "completed", "gt-1", work={"title": "x"}, quality={"on_time": True})
    h.add(ME, "completed", "gt-2", work={"title": "y"}, quality={"on_time": False})
    h.add(ME, "completed", "gt-3", work={"title": "z"}, quality={"on_time": None})
    q = summarize(h.records, ME, now=NOW)["quality"]
    assert (q["with_due"], q["on_time"], q["on_time_rate"]) == (2, 1, 0.5)


def test_records_after_now_are_not_counted() -> None:
    early = summarize(hand_made(), ME, now=T0 + timedelta(days=2, minutes=30))
    assert early["counts"] == {"claimed": 2, "completed": 2}
    assert early["quality"]["submitted"] == 1


def test_the_input_order_does_not_matter_and_the_result_is_deterministic() -> None:
    recs = specialised(seed=3, per_agent=10).records
    shuffled = list(recs)
    random.Random(5).shuffle(shuffled)
    who = recs[2]["entity"]
    assert summarize(recs, who, now=NOW) == summarize(shuffled, who, now=NOW)


def test_skills_and_reputation_are_part_of_the_cv() -> None:
    cv = summarize(hand_made(), ME, now=NOW, skills=3, history=2)
    terms = [s["term"] for s in cv["skills"]]
    assert "label:backend" in terms and len(terms) == 3
    assert all(s["evidence"] for s in cv["skills"])
    rep = cv["reputation"]
    assert len(rep["history"]) == 2 and rep["history"][-1]["why"].startswith("gt-3 reopened")
    # the published formula by hand: 1 + 1 + 0.5 (a rubber stamp) - faded penalties
    age_reject = (NOW - (T0 + timedelta(days=2, hours=1))).total_seconds() / 86400
    age_reopen = (NOW - (T0 + timedelta(days=3, hours=5))).total_seconds() / 86400
    expected = 2.5 - 2 * 2 ** (-age_reject / 30) - 1 * 2 ** (-age_reopen / 30)
    assert rep["value"] == round(max(0.0, expected), 4)
    later = summarize(hand_made(), ME, now=NOW + timedelta(days=60))["reputation"]
    expected = 2.5 - 2 * 2 ** (-(age_reject + 60) / 30) - 2 ** (-(age_reopen + 60) / 30)
    assert later["value"] == round(expected, 4) > rep["value"]


def test_an_unknown_entity_is_not_found() -> None:
    with pytest.raises(NotFoundError, match="no chain records by or about 'entity://x'"):
        summarize(hand_made(), "entity://x", now=NOW)


@pytest.mark.parametrize("bad, where", [
    ({"at": "yesterday"}, "'at' is not an ISO-8601 time"),
    ({"work": {"title": "t", "labels": "frontend"}}, "'work.labels' must be a list"),
    ({"work": {"title": 5}}, "'work.title' must be a string"),
    ({"work": {"title": "t", "due": "soon"}}, "'work.due' is not an ISO-8601 time"),
    ({"work": {"title": "t", "priority": "high"}}, "'work.priority' must be an integer"),
    ({"work": {"title": "x" * 5000}}, "'work.title' is longer than 2000"),
    ({"work": {"title": "t", "files": ["a"] * 501}}, "'work.files' must be a list of at most"),
    ({"kind": ""}, "'kind' must be a non-empty string"),
    ({"quality": []}, "'quality' must be an object"),
    ({"subject": 7}, "'subject' must be a non-empty string"),
    ({"seq": "3"}, "'seq' must be an integer"),
])
def test_a_bad_record_is_named_in_one_line(bad: dict[str, Any], where: str) -> None:
    recs = hand_made()
    recs[4] = {**recs[4], **bad}
    with pytest.raises(ValidationError) as err:
        summarize(recs, ME, now=NOW)
    text = str(err.value)
    assert where in text and "\n" not in text
    assert text.startswith("chain record entity://gt/acme/rig/polecat/nux")


def test_control_characters_from_another_town_do_not_reach_the_message() -> None:
    recs = hand_made()
    recs[0] = {**recs[0], "entity": "evil\x1b[2J\nname", "at": "no"}
    with pytest.raises(ValidationError) as err:
        summarize(recs, ME, now=NOW)
    assert "\x1b" not in str(err.value) and "\n" not in str(err.value)
    assert "evil?[2J?name#1" in str(err.value)


def test_not_a_list_or_not_objects() -> None:
    with pytest.raises(ValidationError, match="must be a list"):
        summarize({"a": 1}, ME, now=NOW)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="chain record 2: not an object"):
        summarize([hand_made()[0], "x"], ME, now=NOW)  # type: ignore[list-item]


def test_now_may_be_naive_and_is_read_as_utc() -> None:
    naive = NOW.replace(tzinfo=None)
    assert summarize(hand_made(), ME, now=naive) == summarize(hand_made(), ME, now=NOW)
    assert summarize(hand_made(), ME, now=NOW.astimezone(UTC))["now"] == _iso(NOW)
