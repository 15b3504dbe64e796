"""Git-friendly export and import in beads' JSONL format (DESIGN §3.3).

Export: one bead per line, sorted by id, keys in a fixed order, written to a
temporary file and renamed into place (a reader never sees half a file).
Wisps and templates stay out unless asked for.

Import: every line is parsed and checked *before* anything is written, so a
malformed line is reported with its number and the ledger is left as it was;
then one transaction upserts everything and rebuilds the ready state.  Every
era of beads' format found in the wild is accepted: tombstones are skipped and
counted, ``parent_child``-style dependency names are normalised, timestamps
with nanoseconds or offsets are read, comment ids may be integers or uuids, and
fields we do not know are kept and written back on export.
"""

from __future__ import annotations

import collections
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from ..errors import (
    ConflictError,
    CycleError,
    ImportFormatError,
    StorageError,
    UsageError,
    ValidationError,
)
from . import ready as _ready
from . import timefmt
from .graph import _cycles
from .model import (
    COLUMNS,
    EXPORT_ORDER,
    ISSUE_TYPES,
    MAX_JSON_DEPTH,
    STATUSES,
    TEXT_FIELDS,
    json_depth,
)
from .ops import check_dep_type, check_type
from .rows import SELECT_COLUMNS, bead_from_row, dump_json, load_json

__all__ = ["export_jsonl", "import_jsonl", "ImportReport", "bead_lines"]

Progress = Callable[[int, int], None]

_KNOWN = set(EXPORT_ORDER) | {"dependencies", "comments"}
_DEP_KNOWN = {"issue_id", "depends_on_id", "type", "created_at", "created_by", "metadata"}
_COMMENT_KNOWN = {"id", "issue_id", "author", "text", "created_at"}
_TIME_KEYS = ("created_at", "updated_at", "started_at", "closed_at", "due_at", "defer_until")


@dataclass
class ImportReport:
    """What an import did (or, with ``dry_run``, would do)."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    tombstones: int = 0
    dependencies: int = 0
    comments: int = 0
    labels: int = 0
    lines: int = 0
    dry_run: bool = False
    prefix_adopted: str | None = None
    #: the imported ids' most common prefix when it differs from the ledger's and
    #: was not adopted (the ledger keeps the prefix chosen at ``bd init``)
    prefix_found: str | None = None
    ids: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The report as ``bd import --json`` prints it."""
        d = dict(self.__dict__)
        d.pop("ids")
        return d


# ------------------------------------------------------------------ export


def bead_lines(ledger: Any, include_all: bool = False) -> Iterator[tuple[str, str]]:
    """``(id, json_line)`` for every exported bead, sorted by id."""
    where = "" if include_all else " WHERE ephemeral = 0 AND is_template = 0"
    with ledger.store.read() as tx:
        rows = tx.query(f"SELECT {SELECT_COLUMNS} FROM issues{where} ORDER BY id")
        labels: dict[str, list[str]] = collections.defaultdict(list)
        for issue_id, label in tx.query("SELECT issue_id, label FROM labels ORDER BY label"):
            labels[issue_id].append(label)
        deps: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        for r in tx.query("SELECT issue_id, depends_on_id, type, created_at, created_by, "
                          "metadata, extra FROM dependencies ORDER BY depends_on_id, type"):
            dep: dict[str, Any] = {"issue_id": r[0], "depends_on_id": r[1], "type": r[2],
                                   "created_at": r[3]}
            if r[4] is not None:
                dep["created_by"] = r[4]
            if r[5] is not None:
                dep["metadata"] = load_json(r[5])
            if r[6]:
                for k, v in json.loads(r[6]).items():
                    if k == "type":  # the spelling the type came in with (blocked-by, …)
                        dep["type"] = v
                    else:
                        dep.setdefault(k, v)
            deps[r[0]].append(dep)
        comments: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
        for r in tx.query("SELECT id, issue_id, author, text, created_at, extra FROM comments "
                          "ORDER BY issue_id, created_at, seq"):
            c: dict[str, Any] = {"id": int(r[0]) if str(r[0]).isdigit() else r[0],
                                 "issue_id": r[1], "author": r[2], "text": r[3],
                                 "created_at": r[4]}
            if r[5]:
                for k, v in json.loads(r[5]).items():
                    c.setdefault(k, v)
            comments[r[1]].append(c)
    extra_index = COLUMNS.index("extra")
    for row in rows:
        bead_id = row[0]
        plain = row[:extra_index] + (None,) + row[extra_index + 1:]
        obj: dict[str, Any] = dict(bead_from_row(plain, labels.get(bead_id)))
        if deps.get(bead_id):
            obj["dependencies"] = deps[bead_id]
        if comments.get(bead_id):
            obj["comments"] = comments[bead_id]
        if row[extra_index]:
            for k, v in json.loads(row[extra_index]).items():
                obj.setdefault(k, v)
        yield bead_id, dump_json(obj)


def export_jsonl(ledger: Any, path: str | None = None, include_all: bool = False,
                 progress: Progress | None = None, force: bool = False) -> int:
    """Write the ledger as JSONL to ``path`` (``-`` = stdout); returns beads written.

    The default path is ``.beads/issues.jsonl`` next to the database.  The file is
    written beside its final name and renamed into place, so a full disk or a kill
    leaves the old file as it was.  An existing file that is not a beads export,
    or a symbolic link, is replaced only with ``force`` (the link itself is then
    replaced; its target is never written); a device or directory never is.
    """
    if path is None:
        if not ledger.beads_dir:
            raise StorageError("no .beads directory to export into: pass -o FILE")
        path = os.path.join(ledger.beads_dir, "issues.jsonl")
    lines = list(bead_lines(ledger, include_all))
    total = len(lines)
    if path == "-":
        out = sys.stdout
        try:
            for i, (_, line) in enumerate(lines, 1):
                out.write(line + "\n")
                if progress and i % 500 == 0:
                    progress(i, total)
            out.flush()
        except BrokenPipeError:
            raise
        except OSError as exc:
            raise StorageError(f"cannot write the export to stdout: {exc.strerror}") from None
        return total
    check_export_target(path, force)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".issues-", suffix=".jsonl.tmp", dir=directory)
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            for i, (_, line) in enumerate(lines, 1):
                fh.write(line + "\n")
                if progress and i % 500 == 0:
                    progress(i, total)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # atomic: readers see the old file or the new one
    except OSError as exc:
        _remove_quietly(tmp)
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}; "
                           "the existing file was left unchanged") from None
    except BaseException:
        _remove_quietly(tmp)
        raise
    if progress:
        progress(total, total)
    return total


def _remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def check_export_target(path: str, force: bool = False) -> None:
    """Refuse to replace what is not a beads export (see :func:`export_jsonl`)."""
    import stat

    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        if not force:
            raise ConflictError(f"refusing to write {path}: it is a symbolic link to "
                                f"{os.readlink(path)} (pass --force to replace the link itself)")
        return
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"refusing to write {path}: not a regular file "
                         "(use -o - for standard output)")
    if not force and not _looks_like_export(path):
        raise ConflictError(f"refusing to replace {path}: it is not a beads JSONL export "
                            "(pass --force to overwrite it)")


def _looks_like_export(path: str) -> bool:
    """True for an empty file or one whose first line is a JSON object with an ``id``."""
    try:
        with open(path, "rb") as fh:
            first = b""
            while not first.strip():
                first = fh.readline(1 << 20)
                if not first:
                    return True  # empty (or only blank lines)
    except OSError:
        return False
    try:
        obj = json.loads(first)
    except (ValueError, RecursionError):
        return False
    return isinstance(obj, dict) and isinstance(obj.get("id"), str)


# ------------------------------------------------------------------ import


def _fail(source: str, lineno: int, msg: str) -> ImportFormatError:
    return ImportFormatError(f"{source}:{lineno}: {msg}")


#: longest id an import accepts (beads' own ids are a few dozen characters)
MAX_ID_LEN = 255


def _short(value: str, width: int = 60) -> str:
    """``repr`` of a string, cut to ``width`` characters for error messages."""
    return repr(value) if len(value) <= width else f"{value[:width]!r}… ({len(value)} chars)"


def _check_id(value: Any, source: str, lineno: int, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(source, lineno, f"missing or empty {what}")
    if len(value) > MAX_ID_LEN:
        raise _fail(source, lineno, f"{what} {_short(value)} is longer than {MAX_ID_LEN} "
                                    "characters")
    # str methods, not a per-character loop: this runs for every id and edge of an import
    if not value.isprintable() or len(value.split()) != 1:
        raise _fail(source, lineno, f"{what} {_short(value)} contains spaces or control "
                                    "characters")
    return value


def _check_value(check: Callable[[Any], Any], value: Any, source: str, lineno: int,
                 bead_id: str) -> Any:
    """``check(value)`` with its ValidationError turned into a file:line error."""
    try:
        return check(value)
    except ValidationError as exc:
        raise _fail(source, lineno, f"{bead_id}: {exc}") from None


def _time(value: Any, key: str, source: str, lineno: int) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _fail(source, lineno, f"{key} must be a timestamp string, not {value!r}")
    try:
        return timefmt.normalize(value)
    except ValueError:
        raise _fail(source, lineno, f"{key}: not an RFC 3339 timestamp: {value!r}") from None


def _parse(obj: Any, source: str, lineno: int, now: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise _fail(source, lineno, "expected a JSON object")
    bead_id = _check_id(obj.get("id"), source, lineno, "'id'")
    title = obj.get("title", "")
    if not isinstance(title, str):
        raise _fail(source, lineno, f"{bead_id}: 'title' must be a string")
    # the same rules as bd create/update: a bead without a title breaks list and show
    if not title.strip():
        raise _fail(source, lineno, f"{bead_id}: 'title' is empty")
    if "\n" in title or "\r" in title:
        raise _fail(source, lineno, f"{bead_id}: 'title' must be one line")
    status = obj.get("status") or "open"
    if not isinstance(status, str) or status not in STATUSES:
        raise _fail(source, lineno, f"{bead_id}: unknown status {status!r}: use one of "
                                    f"{', '.join(STATUSES)}")
    priority = obj.get("priority", 2)
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 4:
        raise _fail(source, lineno, f"{bead_id}: priority must be an integer 0-4, not {priority!r}")
    issue_type = obj.get("issue_type") or "task"
    if not isinstance(issue_type, str):
        raise _fail(source, lineno, f"{bead_id}: 'issue_type' must be a string")
    if issue_type not in ISSUE_TYPES:
        issue_type = _check_value(check_type, issue_type, source, lineno, bead_id)
    rec: dict[str, Any] = {"id": bead_id, "title": title, "status": status,
                           "priority": priority, "issue_type": issue_type}
    for key in TEXT_FIELDS:
        value = obj.get(key) or ""
        if not isinstance(value, str):
            raise _fail(source, lineno, f"{bead_id}: {key!r} must be a string")
        rec[key] = value
    for key in ("assignee", "owner", "created_by", "close_reason", "external_ref",
                "source_formula"):
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            raise _fail(source, lineno, f"{bead_id}: {key!r} must be a string")
        rec[key] = value or None
    for key in _TIME_KEYS:
        rec[key] = _time(obj.get(key), key, source, lineno)
    rec["created_at"] = rec["created_at"] or now
    rec["updated_at"] = rec["updated_at"] or rec["created_at"]
    if status == "closed" and not rec["closed_at"]:
        rec["closed_at"] = rec["updated_at"]
    if status != "closed" and rec["closed_at"]:
        # beads' invariant: closed_at is set exactly when the status is closed; an
        # open bead carrying one keeps it among the unknown fields, not lost
        rec.setdefault("_stale_closed_at", rec["closed_at"])
        rec["closed_at"] = None
    est = obj.get("estimated_minutes")
    if est is not None and (isinstance(est, bool) or not isinstance(est, int) or est < 0
                            or est > 2**63 - 1):
        raise _fail(source, lineno, f"{bead_id}: estimated_minutes must be an integer >= 0")
    rec["estimated_minutes"] = est
    for key in ("pinned", "ephemeral", "is_template"):
        rec[key] = 1 if obj.get(key) else 0
    meta = obj.get("metadata")
    rec["metadata"] = dump_json(meta) if meta not in (None, {}, "") else None
    labels = obj.get("labels") or []
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise _fail(source, lineno, f"{bead_id}: 'labels' must be a list of strings")
    rec["labels"] = list(dict.fromkeys(x for x in labels if x.strip()))
    for label in rec["labels"]:
        if any(ch.isspace() or not ch.isprintable() for ch in label) or "," in label:
            raise _fail(source, lineno, f"{bead_id}: invalid label {_short(label)}: "
                                        "no spaces, commas or control characters")
    raw_deps = obj.get("dependencies") or []
    if not isinstance(raw_deps, list):
        raise _fail(source, lineno, f"{bead_id}: 'dependencies' must be a list")
    deps = []
    for dep in raw_deps:
        if not isinstance(dep, dict) or not isinstance(dep.get("depends_on_id"), str):
            raise _fail(source, lineno, f"{bead_id}: each dependency needs a 'depends_on_id'")
        target = _check_id(dep["depends_on_id"], source, lineno,
                           f"{bead_id}: dependency target")
        if target == bead_id:
            raise _fail(source, lineno, f"{bead_id} cannot depend on itself")
        dep_type = dep.get("type") or "blocks"
        if not isinstance(dep_type, str):
            raise _fail(source, lineno, f"{bead_id}: dependency type must be a string")
        canonical = _check_value(check_dep_type, dep_type, source, lineno, bead_id)
        extra = {k: v for k, v in dep.items() if k not in _DEP_KNOWN}
        if canonical != dep_type:  # read as the alias it is; written back as it came in
            extra["type"] = dep_type
        deps.append({
            "issue_id": bead_id,
            "depends_on_id": target,
            "type": canonical,
            "created_at": _time(dep.get("created_at"), "dependency created_at", source,
                                lineno) or rec["created_at"],
            "created_by": dep.get("created_by"),
            "metadata": dump_json(dep["metadata"]) if "metadata" in dep else None,
            "extra": dump_json(extra) if extra else None,
        })
    rec["dependencies"] = deps
    raw_comments = obj.get("comments") or []
    if not isinstance(raw_comments, list):
        raise _fail(source, lineno, f"{bead_id}: 'comments' must be a list")
    comments = []
    for c in raw_comments:
        if not isinstance(c, dict) or not isinstance(c.get("text"), str):
            raise _fail(source, lineno, f"{bead_id}: each comment needs a 'text'")
        cid = c.get("id")
        if cid is None or isinstance(cid, bool) or not isinstance(cid, (int, str)):
            raise _fail(source, lineno, f"{bead_id}: comment id must be an integer or a string")
        comments.append({
            "id": str(cid), "issue_id": bead_id, "author": c.get("author"), "text": c["text"],
            "created_at": _time(c.get("created_at"), "comment created_at", source, lineno)
            or rec["created_at"],
            "extra": _extra(c, _COMMENT_KNOWN),
        })
    rec["comments"] = comments
    extra = {k: v for k, v in obj.items() if k not in _KNOWN}
    if "_stale_closed_at" in rec:
        extra["closed_at"] = rec.pop("_stale_closed_at")
    rec["extra"] = dump_json(extra) if extra else None
    rec["_line"] = lineno
    return rec


def _extra(obj: dict[str, Any], known: set[str]) -> str | None:
    extra = {k: v for k, v in obj.items() if k not in known}
    return dump_json(extra) if extra else None


def _storable(obj: Any) -> bool:
    """False when a parsed JSON value holds a lone surrogate (from a ``\\udXXX`` escape)."""
    try:
        dump_json(obj).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _read_lines(source: IO[str], name: str, now: str, progress: Progress | None
                ) -> tuple[list[dict[str, Any]], int, int]:
    records: list[dict[str, Any]] = []
    tombstones = 0
    lineno = 0
    for lineno, line in enumerate(source, 1):
        text = line.strip()
        if not text:
            continue
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _fail(name, lineno, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
        except RecursionError:
            raise _fail(name, lineno, f"JSON nested more than {MAX_JSON_DEPTH} levels deep"
                        ) from None
        except ValueError as exc:  # an integer beyond Python's digit limit, …
            raise _fail(name, lineno, f"invalid JSON: {str(exc).split(';')[0]}") from None
        # a line with at most MAX_JSON_DEPTH brackets cannot nest deeper: skip the walk
        if (text.count("{") + text.count("[") > MAX_JSON_DEPTH
                and json_depth(obj) > MAX_JSON_DEPTH):
            raise _fail(name, lineno, f"JSON nested more than {MAX_JSON_DEPTH} levels deep")
        if "\\u" in text and not _storable(obj):
            raise _fail(name, lineno, "a string holds an unpaired surrogate escape "
                                      "(\\ud800-\\udfff), which cannot be stored as UTF-8")
        if isinstance(obj, dict) and obj.get("status") == "tombstone":
            tombstones += 1
            continue
        records.append(_parse(obj, name, lineno, now))
        if progress and lineno % 1000 == 0:
            progress(lineno, 0)
    return records, tombstones, lineno


def import_jsonl(ledger: Any, path: str, dry_run: bool = False,
                 progress: Progress | None = None, adopt_prefix: bool = False) -> ImportReport:
    """Upsert beads from a JSONL file (``-`` = stdin) in one transaction.

    Every line is checked against the rules ``bd create``, ``update`` and ``dep add``
    enforce (a one-line title, known status, priority and type, no self edge, no
    blocking or parent-child cycle, no blocking edge between a bead and its own
    ancestor) before anything is written; the first violation is reported as
    ``FILE:LINE: what`` and the ledger is left as it was.

    The ledger keeps its prefix unless ``adopt_prefix`` is set, in which case the
    most common prefix of the imported ids becomes the ledger's; a different
    prefix is otherwise only reported (``prefix_found``).
    """
    now = timefmt.now()
    name = "<stdin>" if path == "-" else path
    if path == "-":
        records, tombstones, lines = _read_lines(sys.stdin, name, now, progress)
    else:
        try:
            with open(path, encoding="utf-8") as fh:
                records, tombstones, lines = _read_lines(fh, name, now, progress)
        except FileNotFoundError:
            from ..errors import NotFoundError

            raise NotFoundError(f"{path}: no such file") from None
        except UnicodeDecodeError as exc:
            raise ImportFormatError(f"{path}: not UTF-8 text ({exc.reason})") from None
        except OSError as exc:  # a directory, no permission, …
            raise ImportFormatError(f"{path}: cannot read ({exc.strerror})") from None
    seen: dict[str, int] = {}
    for i, rec in enumerate(records):
        seen[rec["id"]] = i  # a later line for the same id wins, as in git merges
    records = [records[i] for i in sorted(seen.values())]
    report = ImportReport(tombstones=tombstones, lines=lines, dry_run=dry_run)
    report.ids = [r["id"] for r in records]
    found = collections.Counter(
        r["id"].rsplit("-", 1)[0] for r in records if "-" in r["id"]).most_common(1)
    with ledger.store.write() as tx:
        existing = {r[0]: r[1:] for r in tx.query(
            "SELECT id, updated_at, title, status FROM issues")}
        _check_graph(tx, records, name)
        for rec in records:
            old = existing.get(rec["id"])
            if old is None:
                report.created += 1
            elif old == (rec["updated_at"], rec["title"], rec["status"]):
                report.unchanged += 1
            else:
                report.updated += 1
            report.dependencies += len(rec["dependencies"])
            report.comments += len(rec["comments"])
            report.labels += len(rec["labels"])
        current = tx.scalar("SELECT value FROM config WHERE key = 'issue_prefix'")
        if found and found[0][0] != current:
            if adopt_prefix:
                report.prefix_adopted = found[0][0]
            else:
                report.prefix_found = found[0][0]
        if dry_run:
            return report
        if report.prefix_adopted:
            tx.execute("INSERT INTO config (key, value) VALUES ('issue_prefix', ?) "
                       "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                       (report.prefix_adopted,))
            ledger._prefix = None
        _write_records(tx, records, progress)
        # imported comments may carry higher integer ids: recount on next comment
        tx.execute("DELETE FROM config WHERE key = 'last_comment_id'")
        _ready.recompute_all(tx)
        tx.insert_event_returning_seq(
            "INSERT INTO events (ts, type, actor, bead_id, payload) VALUES (?, ?, ?, ?, ?)",
            (now, "ledger.imported", ledger.actor, None,
             dump_json({"source": name, **report.to_json()})))
    return report


def check_jsonl(path: str) -> int:
    """Check a JSONL file as :func:`import_jsonl` would into an empty ledger; writes nothing.

    Returns the number of beads it holds; the first problem is raised as
    ``FILE:LINE: what`` (``bd init`` checks a clone's export before creating anything).
    """
    try:
        with open(path, encoding="utf-8") as fh:
            records, _tombstones, _lines = _read_lines(fh, path, timefmt.now(), None)
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"{path}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ImportFormatError(f"{path}: cannot read ({exc.strerror})") from None
    latest = {r["id"]: r for r in records}  # a later line for the same id wins
    _check_graph(None, list(latest.values()), path)
    return len(latest)


def _check_graph(tx: Any, records: list[dict[str, Any]], name: str) -> None:
    """Refuse edges that would leave the ledger with a cycle or a family deadlock.

    The graph checked is the ledger's as it will be after the import: existing
    edges of beads not in the file (none when ``tx`` is None), plus every edge
    in the file.
    """
    imported = {r["id"] for r in records}
    line_of: dict[tuple[str, str, str], int] = {}
    edges: list[tuple[str, str, str]] = []
    for r in records:
        for d in r["dependencies"]:
            key = (d["issue_id"], d["depends_on_id"], d["type"])
            line_of.setdefault(key, r["_line"])
            edges.append(key)
    if not edges:
        return
    if tx is not None:
        edges += [(a, b, t) for a, b, t in tx.query(
            "SELECT issue_id, depends_on_id, type FROM dependencies") if a not in imported]
    blocking = set(_ready.BLOCKING_DEP_TYPES)
    block_graph: dict[str, list[str]] = {}
    parent_graph: dict[str, list[str]] = {}
    for a, b, t in edges:
        if t in blocking:
            block_graph.setdefault(a, []).append(b)
        elif t == "parent-child":
            parent_graph.setdefault(a, []).append(b)
    for graph, family in ((parent_graph, "parent-child"), (block_graph, "blocking")):
        cycles = _cycles(graph)
        if cycles:
            cycle = cycles[0]
            types = ("parent-child",) if family == "parent-child" else tuple(blocking)
            lines = [line_of[(a, b, t)] for a, b in zip(cycle, cycle[1:], strict=False)
                     for t in types
                     if (a, b, t) in line_of]
            where = f"{name}:{max(lines)}" if lines else name
            raise CycleError(f"{where}: {family} dependency cycle: {' -> '.join(cycle)}")
    ancestors: dict[str, set[str]] = {}

    def ancestors_of(node: str) -> set[str]:
        if node not in ancestors:
            found: set[str] = set()
            frontier = [node]
            while frontier:
                nxt = []
                for n in frontier:
                    for p in parent_graph.get(n, ()):
                        if p not in found:
                            found.add(p)
                            nxt.append(p)
                frontier = nxt
            ancestors[node] = found
        return ancestors[node]

    for a, b, t in edges:
        if t in blocking and (a, b, t) in line_of and (
                b in ancestors_of(a) or a in ancestors_of(b)):
            older, younger = (b, a) if b in ancestors_of(a) else (a, b)
            raise CycleError(
                f"{name}:{line_of[(a, b, t)]}: refusing {a} -> {b} ({t}): {older} is an "
                f"ancestor of {younger}, so the edge could never be released (deadlock)")


_ISSUE_COLS = list(COLUMNS)


def _write_records(tx: Any, records: list[dict[str, Any]], progress: Progress | None) -> None:
    cols = ", ".join(_ISSUE_COLS)
    marks = ", ".join("?" * len(_ISSUE_COLS))
    updates = ", ".join(f"{c} = excluded.{c}" for c in _ISSUE_COLS if c != "id")
    sql = (f"INSERT INTO issues ({cols}) VALUES ({marks}) "
           f"ON CONFLICT (id) DO UPDATE SET {updates}")
    total = len(records)
    for start in range(0, total, 1000):
        batch = records[start:start + 1000]
        tx.executemany(sql, [tuple(r[c] for c in _ISSUE_COLS) for r in batch])
        ids = [r["id"] for r in batch]
        for table in ("labels", "dependencies", "comments"):
            tx.execute(f"DELETE FROM {table} WHERE issue_id IN ({', '.join('?' * len(ids))})",
                       ids)
        tx.executemany("INSERT INTO labels (issue_id, label) VALUES (?, ?)",
                       [(r["id"], label) for r in batch for label in r["labels"]])
        tx.executemany(
            "INSERT INTO dependencies (issue_id, depends_on_id, type, created_at, created_by, "
            "metadata, extra) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(d["issue_id"], d["depends_on_id"], d["type"], d["created_at"], d["created_by"],
              d["metadata"], d["extra"]) for r in batch for d in r["dependencies"]])
        tx.executemany(
            "INSERT INTO comments (id, issue_id, author, text, created_at, extra) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(c["id"], c["issue_id"], c["author"], c["text"], c["created_at"], c["extra"])
             for r in batch for c in r["comments"]])
        if progress:
            progress(min(start + 1000, total), total)
