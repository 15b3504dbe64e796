"""Reading chain records for the CV, skills, reputation and matching (pure, stdlib only).

The records are the dicts of the chain contract (see ``gastown.chains``): entity, seq,
prev, kind, uri, bead, at, subject, work{...}, quality{...}, signer, on_behalf, sig.
They may come from another town, so every field this side reads is checked here, once,
and a bad one raises :class:`~gastown.errors.ValidationError` naming the record
(``entity#seq``) and the field.  Fields we do not read are left alone (the format may
grow), and an unknown ``kind`` is counted but has no effect.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ..errors import ValidationError

__all__ = ["KINDS", "JUDGMENTS", "Links", "as_utc", "Record", "Work", "link", "parse_time",
           "read_records", "read_work", "unreviewed", "verdict_of"]

#: the kinds of the contract (others are counted and otherwise ignored)
KINDS = ("created", "claimed", "completed", "validated", "rejected", "reopened",
         "delegated", "digest")
#: the kinds that judge someone's completed work
JUDGMENTS = ("validated", "rejected", "reopened")
#: bounds on what one record may bring (records come from other towns)
MAX_TEXT = 2_000
MAX_ITEMS = 500


@dataclass(frozen=True)
class Work:
    """What was done: the ``work`` part of a record (empty when the record has none)."""

    title: str = ""
    type: str = ""
    labels: tuple[str, ...] = ()
    formula: str | None = None
    files: tuple[str, ...] = ()
    due: datetime | None = None
    priority: int | None = None


@dataclass(frozen=True)
class Record:
    """One checked record: the fields the CV reads, and its place in the input."""

    index: int
    entity: str
    seq: int
    kind: str
    bead: str
    at: datetime
    subject: str | None
    work: Work
    quality: dict[str, Any]


def _short(text: str, limit: int = 80) -> str:
    """``text`` cut to one short printable line (names in messages come from outside)."""
    clean = "".join(ch if ch.isprintable() else "?" for ch in text[:limit])
    return clean + ("…" if len(text) > limit else "")


def as_utc(now: datetime | None) -> datetime:
    """``now`` as an aware UTC time (None: the current time; naive: read as UTC)."""
    if now is None:
        return datetime.now(UTC)
    if not isinstance(now, datetime):
        raise ValidationError(f"'now' must be a datetime, not {type(now).__name__}")
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def parse_time(value: object, where: str, field: str) -> datetime:
    """An ISO-8601 time as an aware UTC datetime (a naive one is read as UTC)."""
    if not isinstance(value, str) or len(value) > 64:
        raise ValidationError(f"chain record {_short(where)}: {field!r} is not an ISO-8601 time")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"chain record {_short(where)}: {field!r} is not an ISO-8601 time: "
                              f"{_short(value, 40)!r}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _text(value: object, where: str, field: str, *, empty: bool = True) -> str:
    if not isinstance(value, str) or (not empty and not value):
        raise ValidationError(f"chain record {_short(where)}: {field!r} must be a "
                              f"{'' if empty else 'non-empty '}string")
    if len(value) > MAX_TEXT:
        raise ValidationError(f"chain record {_short(where)}: {field!r} is longer than {MAX_TEXT} "
                              "characters")
    return value


def _or_empty(value: object) -> object:
    return "" if value is None else value


def _texts(value: object, where: str, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise ValidationError(f"chain record {_short(where)}: {field!r} must be a list of at most "
                              f"{MAX_ITEMS} strings")
    return tuple(_text(item, where, field) for item in value)


def _work(value: object, where: str) -> Work:
    if value is None:
        return Work()
    if not isinstance(value, dict):
        raise ValidationError(f"chain record {_short(where)}: 'work' must be an object")
    formula = value.get("formula")
    due = value.get("due")
    priority = value.get("priority")
    if priority is not None and (isinstance(priority, bool) or not isinstance(priority, int)):
        raise ValidationError(f"chain record {_short(where)}: 'work.priority' must be an integer")
    return Work(
        title=_text(_or_empty(value.get("title")), where, "work.title"),
        type=_text(_or_empty(value.get("type")), where, "work.type"),
        labels=_texts(value.get("labels"), where, "work.labels"),
        formula=None if formula is None else _text(formula, where, "work.formula"),
        files=_texts(value.get("files"), where, "work.files"),
        due=None if due is None else parse_time(due, where, "work.due"),
        priority=priority,
    )


def read_work(value: object, where: str = "work") -> Work:
    """Check a ``work`` object on its own (a new bead to match); ``where`` names it."""
    return _work(value, where)


def _needed_work(kind: str, value: object, where: str) -> Work:
    """The part of ``work`` this side reads: all of it for a completion, the files for
    a judgment (they join the judged work), nothing otherwise (not read, not checked)."""
    if kind == "completed":
        return _work(value, where)
    if kind in JUDGMENTS and isinstance(value, dict):
        return Work(files=_texts(value.get("files"), where, "work.files"))
    return Work()


def _one(i: int, raw: object) -> Record:
    if not isinstance(raw, dict):
        raise ValidationError(f"chain record {i + 1}: not an object")
    entity = raw.get("entity")
    seq = raw.get("seq")
    if not isinstance(entity, str) or not entity or len(entity) > MAX_TEXT:
        raise ValidationError(f"chain record {i + 1}: 'entity' must be a non-empty string")
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise ValidationError(f"chain record {_short(entity)}: 'seq' must be an integer")
    where = f"{entity}#{seq}"  # cut to a printable line only when a message needs it
    kind = _text(raw.get("kind"), where, "kind", empty=False)
    subject = raw.get("subject")
    if subject is not None:
        subject = _text(subject, where, "subject", empty=False)
    quality = raw.get("quality")
    quality = {} if quality is None else quality
    if not isinstance(quality, dict):
        raise ValidationError(f"chain record {_short(where)}: 'quality' must be an object")
    return Record(index=i, entity=entity, seq=seq, kind=kind,
                  bead=_text(_or_empty(raw.get("bead")), where, "bead"),
                  at=parse_time(raw.get("at"), where, "at"), subject=subject,
                  work=_needed_work(kind, raw.get("work"), where), quality=quality)


def read_records(records: list[dict[str, Any]]) -> list[Record]:
    """Check every record and return them in time order (ties: input order)."""
    if not isinstance(records, list):
        raise ValidationError("chain records must be a list of objects")
    out = [_one(i, raw) for i, raw in enumerate(records)]
    out.sort(key=lambda r: (r.at, r.index))
    return out


def verdict_of(record: Record) -> str:
    """The review outcome a verdict record reports (``quality.verdict``, else its kind)."""
    verdict = record.quality.get("verdict")
    if isinstance(verdict, str) and verdict:
        return _short(verdict, 40)
    return "approved" if record.kind == "validated" else "rejected"


@dataclass
class Links:
    """Who each judgment is about, and what became of each completion.

    ``author`` maps a judgment's index (validated, rejected, reopened) to the entity
    whose work it judges: its ``subject``, else whoever last completed the bead (a
    reopen names no subject in general).  ``verdict`` maps a completion's index to the
    first validated/rejected record about it; ``final`` to the last judgment about it
    (a reopen after a validation counts there).  A judgment belongs to the author's
    latest completion of that bead before it, and the files it names (the commits'
    files, known when the refinery lands or sends back the work) join that work.
    """

    author: dict[int, str]
    verdict: dict[int, Record]
    final: dict[int, Record]
    #: completion index -> the files its judgments name (files are known at merge)
    files: dict[int, tuple[str, ...]] = field(default_factory=dict)

    def work(self, rec: Record) -> Work:
        """A completion's work, with the files its validation or rejection named."""
        extra = self.files.get(rec.index)
        if not extra:
            return rec.work
        return replace(rec.work, files=tuple(sorted(set(rec.work.files) | set(extra))))


def link(records: list[Record]) -> Links:
    """Tie judgments to the completions they judge (``records`` in time order)."""
    links = Links(author={}, verdict={}, final={})
    last_completer: dict[str, str] = {}
    open_work: dict[tuple[str, str], Record] = {}
    for rec in records:
        if rec.kind == "completed":
            last_completer[rec.bead] = rec.entity
            open_work[(rec.entity, rec.bead)] = rec
        elif rec.kind in JUDGMENTS:
            author = rec.subject or last_completer.get(rec.bead)
            if author is None:
                continue
            links.author[rec.index] = author
            done = open_work.get((author, rec.bead))
            if done is None:
                continue
            if rec.kind != "reopened" and done.index not in links.verdict:
                links.verdict[done.index] = rec
            links.final[done.index] = rec
            if rec.work.files:
                links.files[done.index] = links.files.get(done.index, ()) + rec.work.files
    return links


def unreviewed(record: Record) -> bool:
    """A validation that shows no review activity (``quality.review_activity`` absent or
    0): a rubber stamp, as the chains' own flags call it."""
    activity = record.quality.get("review_activity")
    reviewed = (isinstance(activity, (int, float)) and not isinstance(activity, bool)
                and activity > 0)
    return record.kind == "validated" and not reviewed
