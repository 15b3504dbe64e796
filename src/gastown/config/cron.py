"""Cron schedules for ``[orders.NAME] schedule = "…"``: a small parser of our own.

Five fields -- minute, hour, day of month, month, day of week -- each ``*``, a
number, a range ``a-b``, a step ``*/n`` or ``a-b/n`` or ``a/n``, or a comma list of
those; months and weekdays also by their English three-letter names (``jan``,
``mon``); weekday 0 and 7 are both Sunday.  ``@hourly``, ``@daily`` (``@midnight``),
``@weekly``, ``@monthly`` and ``@yearly`` (``@annually``) are shorthands.  As in
classic cron, when both day fields are restricted a day matches if either does.

Times are UTC.  The work is bounded whatever the text: at most 200 characters,
every field becomes a set of at most 60 numbers, and :meth:`Cron.next_after`
looks at most :data:`HORIZON_DAYS` days ahead (a schedule that never fires in that
window, such as February 30th, is refused when it is parsed).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ..errors import ValidationError

__all__ = ["Cron", "parse_cron", "HORIZON_DAYS"]

#: how far ahead a next firing is looked for (a leap day every four years fits)
HORIZON_DAYS = 366 * 5
_MAX_TEXT = 200
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_MACROS = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
           "@weekly": "0 0 * * 0", "@monthly": "0 0 1 * *", "@yearly": "0 0 1 1 *",
           "@annually": "0 0 1 1 *"}
#: (name, low, high, names whose index is the value + offset)
_FIELDS = (("minute", 0, 59, (), 0), ("hour", 0, 23, (), 0),
           ("day of month", 1, 31, (), 0), ("month", 1, 12, _MONTHS, 1),
           ("day of week", 0, 7, _DAYS, 0))


@dataclass(frozen=True)
class Cron:
    """A parsed schedule: the allowed values of each field."""

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday … 6 = Saturday
    any_day: bool      # the day-of-month field was '*'
    any_weekday: bool  # the day-of-week field was '*'

    def day_matches(self, day: dt.date) -> bool:
        """True when ``day`` is one the schedule fires on (classic cron's day rule)."""
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return dow
        if self.any_weekday:
            return dom
        return dom or dow

    def next_after(self, when: dt.datetime) -> dt.datetime | None:
        """The first firing strictly after ``when`` (UTC, whole minutes), or None."""
        when = when.astimezone(dt.UTC)
        start = when.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        day = start.date()
        for offset in range(HORIZON_DAYS + 1):
            if offset:
                day = day + dt.timedelta(days=1)
            if not self.day_matches(day):
                continue
            first_day = offset == 0
            for hour in self.hours:
                if first_day and hour < start.hour:
                    continue
                for minute in self.minutes:
                    if first_day and hour == start.hour and minute < start.minute:
                        continue
                    return dt.datetime(day.year, day.month, day.day, hour, minute,
                                       tzinfo=dt.UTC)
        return None


def _value(token: str, name: str, low: int, high: int, names: tuple[str, ...],
           shift: int, where: str) -> int:
    word = token.lower()
    if names and word in names:
        return names.index(word) + shift
    if not token.isdigit() or len(token) > 2:
        raise ValidationError(f"{where}: {name} {token!r} is not a number from {low} to {high}"
                              + (f" or a name ({names[0]}, {names[1]}, …)" if names else ""))
    value = int(token)
    if not low <= value <= high:
        raise ValidationError(f"{where}: {name} {value} is out of range {low}-{high}")
    return value


def _field(text: str, name: str, low: int, high: int, names: tuple[str, ...], shift: int,
           where: str) -> set[int]:
    out: set[int] = set()
    items = text.split(",")
    if len(items) > 60:
        raise ValidationError(f"{where}: {name} has more than 60 items")
    for item in items:
        span, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or len(step_text) > 2 or int(step_text) == 0:
                raise ValidationError(f"{where}: {name} step {step_text!r} must be a number "
                                      f"from 1 to {high}")
            step = int(step_text)
        if span == "*":
            first, last = low, high
        elif "-" in span:
            a, _, b = span.partition("-")
            first = _value(a, name, low, high, names, shift, where)
            last = _value(b, name, low, high, names, shift, where)
            if last < first:
                raise ValidationError(f"{where}: {name} range {span!r} runs backwards")
        elif span:
            first = _value(span, name, low, high, names, shift, where)
            last = high if slash else first
        else:
            raise ValidationError(f"{where}: {name} has an empty item in {text!r}")
        out.update(range(first, last + 1, step))
    return out


def parse_cron(text: object, where: str = "schedule") -> Cron:
    """Parse a cron schedule or raise one :class:`ValidationError` naming ``where``."""
    if not isinstance(text, str):
        raise ValidationError(f"{where} must be a string like \"*/15 * * * *\"")
    if len(text) > _MAX_TEXT:
        raise ValidationError(f"{where} is longer than {_MAX_TEXT} characters")
    source = text.strip()
    expanded = _MACROS.get(source.lower(), source)
    if expanded.startswith("@"):
        raise ValidationError(f"{where}: unknown shorthand {source!r} "
                              f"(known: {', '.join(sorted(_MACROS))})")
    parts = expanded.split()
    if len(parts) != 5:
        raise ValidationError(f"{where}: {source!r} has {len(parts)} field(s); a schedule "
                              "has 5 (minute hour day-of-month month day-of-week)")
    sets = [_field(p, name, low, high, names, shift, where)
            for p, (name, low, high, names, shift) in zip(parts, _FIELDS, strict=True)]
    weekdays = frozenset(d % 7 for d in sets[4])
    cron = Cron(text=source, minutes=tuple(sorted(sets[0])), hours=tuple(sorted(sets[1])),
                days=frozenset(sets[2]), months=frozenset(sets[3]), weekdays=weekdays,
                any_day=parts[2].startswith("*"), any_weekday=parts[4].startswith("*"))
    if cron.next_after(dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) is None:
        raise ValidationError(f"{where}: {source!r} never fires (no such day)")
    return cron
