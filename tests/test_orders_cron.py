"""The cron parser of ``[orders.NAME] schedule`` and the ``[orders]``/``[housekeeping]`` tables."""

from __future__ import annotations

import datetime as dt

import pytest

from gastown.config.cron import parse_cron
from gastown.config.schema import parse_config
from gastown.errors import ValidationError

UTC = dt.UTC


def at(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, tzinfo=UTC)


@pytest.mark.parametrize("text, after, expected", [
    ("*/15 * * * *", at(2026, 11, 29, 13, 7), at(2026, 11, 29, 13, 15)),
    ("*/15 * * * *", at(2026, 11, 29, 13, 45), at(2026, 11, 29, 14, 0)),
    ("*/15 * * * *", at(2026, 12, 31, 23, 50), at(2027, 1, 1, 0, 0)),
    ("0 9 * * mon-fri", at(2026, 11, 28, 10, 0), at(2026, 11, 30, 9, 0)),  # Sat -> Mon
    ("30 2 1,15 * *", at(2026, 11, 2), at(2026, 11, 15, 2, 30)),
    ("0 0 * * 7", at(2026, 11, 25), at(2026, 11, 29)),  # 7 is Sunday too
    ("0 0 * * SUN", at(2026, 11, 25), at(2026, 11, 29)),
    ("0 12 * jun-aug/2 *", at(2026, 1, 1), at(2026, 6, 1, 12)),  # jun, aug
    ("0 12 1 jun-aug/2 *", at(2026, 6, 2), at(2026, 8, 1, 12)),
    ("5/20 1 * * *", at(2026, 1, 1, 1, 6), at(2026, 1, 1, 1, 25)),  # a/n: 5, 25, 45
    ("@daily", at(2026, 3, 3, 0, 0), at(2026, 3, 4)),
    ("@hourly", at(2026, 3, 3, 5, 0), at(2026, 3, 3, 6, 0)),
    ("0 0 29 2 *", at(2025, 3, 1), at(2028, 2, 29)),  # the next leap day
    # both day fields restricted: either matches (the 13th, or a Friday)
    ("0 0 13 * fri", at(2026, 11, 14), at(2026, 11, 20)),
    ("0 0 13 * fri", at(2026, 11, 20), at(2026, 11, 27)),
    ("0 0 13 * fri", at(2026, 11, 28), at(2026, 12, 4)),
])
def test_next_firing(text: str, after: dt.datetime, expected: dt.datetime) -> None:
    assert parse_cron(text).next_after(after) == expected


def test_next_firing_is_strictly_after_and_whole_minutes() -> None:
    cron = parse_cron("* * * * *")
    assert cron.next_after(at(2026, 1, 1, 10, 0)) == at(2026, 1, 1, 10, 1)
    half = at(2026, 1, 1, 10, 0) + dt.timedelta(seconds=30)
    assert cron.next_after(half) == at(2026, 1, 1, 10, 1)


@pytest.mark.parametrize("text, words", [
    ("* * * *", "has 4 field(s)"),
    ("61 * * * *", "minute 61 is out of range 0-59"),
    ("* 24 * * *", "hour 24 is out of range 0-23"),
    ("*/0 * * * *", "step '0'"),
    ("5-1 * * * *", "runs backwards"),
    ("0 0 30 2 *", "never fires"),
    ("0 0 31 4,6,9,11 *", "never fires"),
    ("@fortnightly", "unknown shorthand"),
    ("x * * * *", "minute 'x' is not a number"),
    ("* * * foo *", "month 'foo' is not a number from 1 to 12 or a name"),
    ("1,,2 * * * *", "empty item"),
    ("*" * 300, "longer than 200"),
    (",".join(["1"] * 61) + " * * * *", "more than 60 items"),
    ("9999999999999999999999 * * * *", "not a number"),
])
def test_bad_schedules_are_one_clear_line(text: str, words: str) -> None:
    with pytest.raises(ValidationError) as exc:
        parse_cron(text, "town.toml: orders.nightly.schedule")
    message = str(exc.value)
    assert message.startswith("town.toml: orders.nightly.schedule")
    assert words in message
    assert "\n" not in message


def test_schedule_must_be_text() -> None:
    with pytest.raises(ValidationError, match="must be a string"):
        parse_cron(15, "orders.x.schedule")


def _config(extra: dict[str, object]) -> object:
    return parse_config({"town": {"name": "t"}, **extra}, "town.toml")


def test_orders_and_housekeeping_tables_load() -> None:
    cfg = _config({
        "orders": {"nightly": {"formula": "mol-patrol", "schedule": "*/15 * * * *",
                               "vars": {"scope": "all", "n": 3}, "sling": "crew",
                               "wisp": True},
                   "on-deploy": {"formula": "mol-research", "on": "bead.closed",
                                 "label": "deploy"}},
        "housekeeping": {"wisp_max_age": "2d", "every": "5m", "prune_worktrees": False}})
    nightly = cfg.orders["nightly"]  # type: ignore[attr-defined]
    assert nightly.cron is not None and nightly.cron.minutes == (0, 15, 30, 45)
    assert nightly.vars == {"scope": "all", "n": "3"} and nightly.wisp and nightly.sling == "crew"
    deploy = cfg.orders["on-deploy"]  # type: ignore[attr-defined]
    assert deploy.on == "bead.closed" and deploy.label == "deploy" and deploy.cron is None
    hk = cfg.housekeeping  # type: ignore[attr-defined]
    assert hk.wisp_max_age == 2 * 86400 and hk.every == 300 and not hk.prune_worktrees
    default = _config({}).housekeeping  # type: ignore[attr-defined]
    assert default.wisp_max_age == 7 * 86400 and default.prune_worktrees


@pytest.mark.parametrize("orders, words", [
    ({"x": {"schedule": "* * * * *"}}, "orders.x.formula is required"),
    ({"x": {"formula": "f"}}, "orders.x: give exactly one of 'schedule'"),
    ({"x": {"formula": "f", "schedule": "* * * * *", "on": "bead.closed"}}, "exactly one"),
    ({"x": {"formula": "f", "schedule": "* * *"}}, "orders.x.schedule: '* * *' has 3 field"),
    ({"x": {"formula": "f", "on": "Bead Closed!"}}, "orders.x.on: 'Bead Closed!' is not"),
    ({"x": {"formula": "f", "schedule": "@daily", "label": "l"}}, "orders.x.label applies"),
    ({"x": {"formula": "f", "schedule": "@daily", "cron": "x"}}, "unknown key(s) cron"),
    ({"x": {"formula": "f", "schedule": "@daily", "vars": {"a": [1]}}}, "orders.x.vars.a"),
    ({"x": {"formula": "f", "schedule": "@daily", "sling": "a b"}}, "invalid sling target"),
    ({"bad name": {"formula": "f", "schedule": "@daily"}}, "invalid order name"),
])
def test_bad_orders_name_the_order_and_key(orders: dict[str, object], words: str) -> None:
    with pytest.raises(ValidationError) as exc:
        _config({"orders": orders})
    assert words in str(exc.value) and str(exc.value).startswith("town.toml")


@pytest.mark.parametrize("value, words", [
    ("7 days", "must be an age"), (0, "above 0"), (True, "must be an age"), ("-1d", "age"),
])
def test_bad_housekeeping_ages(value: object, words: str) -> None:
    with pytest.raises(ValidationError, match="housekeeping.wisp_max_age") as exc:
        _config({"housekeeping": {"wisp_max_age": value}})
    assert words in str(exc.value)
