"""The federation log: canonical JSON records, each hash-linked to the one before and signed.

A record (one line of ``log.jsonl``)::

    {"v": 1, "seq": 7, "prev": "<sha256 hex of record 6's canonical bytes>",
     "town": "gt://alice@example.com/main-town", "kind": "bead", "at": "...",
     "body": {...}, "sig": "<base64 Ed25519 signature>"}

*Canonical bytes*: JSON with sorted keys, no spaces, UTF-8 (non-ASCII kept).
``sig`` signs the canonical bytes of the record without ``sig``; ``prev`` is the
sha256 of the previous record's full canonical bytes (``""`` for record 1).

Kinds: ``town`` (the identity: names and public key), ``employment``
(``{"entity", "organization"}``), ``bead`` (``{"id", "uri", "rig", "bead": snapshot,
"ledger_seq"}``), ``bead.withdrawn`` (deleted, or no longer published),
``delegation`` and ``delegation.answer`` (see :mod:`.delegation`).  Later kinds
follow the same envelope; a reader applies the kinds it knows and keeps the rest
verified but unapplied.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator

from ..errors import ValidationError
from .keys import Verifier, sign

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing only for type checkers: an agent's bd close imports this module
    from typing import Any

__all__ = ["canonical", "record_hash", "make_record", "verify_chain", "parse_lines",
           "LogError", "VERSION"]

VERSION = 1


class LogError(ValidationError):
    """A record that fails verification (the message names it)."""


def canonical(obj: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode("utf-8")


def record_hash(record: dict[str, Any]) -> str:
    """sha256 (hex) of a record's full canonical bytes."""
    return hashlib.sha256(canonical(record)).hexdigest()


def make_record(key: object, *, seq: int, prev: str, town: str, kind: str, at: str,
                body: dict[str, Any]) -> dict[str, Any]:
    """A signed record following ``prev``."""
    rec: dict[str, Any] = {"v": VERSION, "seq": seq, "prev": prev, "town": town,
                           "kind": kind, "at": at, "body": body}
    rec["sig"] = sign(key, canonical(rec))
    return rec


def describe(rec: Any, index: int) -> str:
    """How a message names a record: its position, seq, kind and hash prefix."""
    if not isinstance(rec, dict):
        return f"record #{index}"
    h = record_hash(rec)[:12]
    return f"record #{index} (seq {rec.get('seq')}, {rec.get('kind')}, sha256 {h})"


def parse_lines(lines: Iterable[bytes | str], source: str) -> list[dict[str, Any]]:
    """The records of a ``log.jsonl`` (a line that is not a JSON object is refused)."""
    out: list[dict[str, Any]] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except (ValueError, UnicodeDecodeError) as exc:
            raise LogError(f"{source}: record #{n}: not JSON ({exc})") from None
        except RecursionError:
            raise LogError(f"{source}: record #{n}: nested too deeply") from None
        if not isinstance(rec, dict):
            raise LogError(f"{source}: record #{n}: not a JSON object")
        out.append(rec)
    return out


_FIELDS = {"v", "seq", "prev", "town", "kind", "at", "body", "sig"}


def _structure(rec: dict[str, Any], i: int, prev: str, town: str) -> str | None:
    """What is wrong with record ``i`` apart from its signature (None: nothing)."""
    if set(rec) != _FIELDS:
        return f"malformed (fields {', '.join(sorted(rec))})"
    if not (isinstance(rec["body"], dict) and isinstance(rec["kind"], str)
            and isinstance(rec["at"], str) and rec["v"] == VERSION):
        return "malformed (version, kind, at or body of the wrong kind)"
    if rec["seq"] != i:
        return f"out of order or replayed (seq {rec['seq']} at position {i})"
    if rec["prev"] != prev:
        return (f"hash link broken (prev does not match record #{i - 1}): "
                "altered, dropped or reordered")
    if rec["town"] != town:
        return f"names town {rec['town']!r}, expected {town!r}"
    return None


def _sig_ok(verifier: Verifier, rec: dict[str, Any]) -> bool:
    unsigned = {k: v for k, v in rec.items() if k != "sig"}
    return isinstance(rec.get("sig"), str) and verifier.ok(canonical(unsigned), rec["sig"])


def _first_bad_signature(verifier: Verifier, records: list[dict[str, Any]],
                         positions: list[int]) -> int | None:
    """The lowest position (1-based) in ``positions`` whose signature fails, or None.

    Many signatures are checked on a few threads (the check releases the GIL).
    """
    def first_bad(chunk: list[int]) -> int | None:
        return next((i for i in chunk if not _sig_ok(verifier, records[i - 1])), None)

    if len(positions) < 2000:
        return first_bad(positions)
    from concurrent.futures import ThreadPoolExecutor

    size = 1000
    chunks = [positions[k:k + size] for k in range(0, len(positions), size)]
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        bad = [b for b in pool.map(first_bad, chunks) if b is not None]
    return min(bad) if bad else None


def verify_chain(records: list[dict[str, Any]], public_key: str, town: str, *,
                 known_count: int = 0, known_head: str = "",
                 source: str = "log") -> Iterator[dict[str, Any]]:
    """Verify every record; return those after ``known_count`` (raise on the first bad one).

    The log must extend what was known: record ``known_count`` must hash to
    ``known_head`` (an altered, dropped or rewritten history is refused).  Each
    record must carry the next ``seq``, link to its predecessor, name ``town`` and
    bear a valid signature by ``public_key``.  The records synced before are
    pinned by the hash chain up to ``known_head``, so only new records'
    signatures are checked again.  Nothing is returned unless the whole log
    passes, so a caller applies all or nothing.
    """
    verifier = Verifier(public_key)
    if len(records) < known_count:
        raise LogError(f"{source}: record #{len(records) + 1} is missing (the log has "
                       f"{len(records)} records, {known_count} were synced before): "
                       "records were dropped")
    problem: tuple[int, str] | None = None
    prev = ""
    for i, rec in enumerate(records, 1):
        msg = _structure(rec, i, prev, town)
        if msg is None:
            prev = record_hash(rec)
            if i == known_count and known_head and prev != known_head:
                msg = "differs from the record synced before (history rewritten)"
        if msg:
            problem = (i, msg)
            break
    end = problem[0] if problem else len(records) + 1
    check = list(range(known_count + 1, end))
    if problem and 1 <= problem[0] - 1 <= known_count:  # an altered record breaks the next link
        check.insert(0, problem[0] - 1)
    bad = _first_bad_signature(verifier, records, check)
    if bad is not None and (problem is None or bad < problem[0]):
        problem = (bad, "bad signature (forged or altered)")
    if problem:
        i, msg = problem
        raise LogError(f"{source}: {describe(records[i - 1], i)}: {msg}")
    return iter(records[known_count:])
