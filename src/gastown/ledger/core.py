"""The :class:`Ledger`: the one Python API over a beads store.

Everything the ``bd`` command line does is a method here.  Writes go through
:meth:`Ledger.transaction`, which hands out a :class:`~.ops.Txn` bound to one
backend transaction: the change, its event and the ready-state refresh commit
together or not at all (DESIGN §2.4).
"""

from __future__ import annotations

import builtins
import os
import re
from contextlib import contextmanager

from ..errors import ConflictError, NotFoundError, UsageError, ValidationError
from . import discovery, timefmt
from . import ids as _ids
from . import ready as _ready
from .model import Bead
from .ops import Txn
from .queries import Reads, type_filter_sql
from .query import Filter, json_object_sql, order_sql, ready_sql, where_sql
from .rows import SELECT_COLUMNS, bead_from_row, load_json
from .store import Store, open_store

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only: the hot path skips it
    from collections.abc import Iterable, Iterator, Mapping, Sequence
    from typing import Any

__all__ = ["Ledger", "Filter"]

_PREFIX_CLEAN = re.compile(r"[^A-Za-z0-9_-]+")
#: ids longer than this are never looked up by prefix (SQLite caps LIKE patterns)
_MAX_PARTIAL = 1000


class Ledger:
    """A beads ledger opened on one backend.

    Open one with :meth:`open` (discovery like git, or an explicit URL/path) or
    create one with :meth:`init`.  Every mutating method is one transaction.
    """

    def __init__(self, store: Store, actor: str | None = None,
                 beads_dir: str | None = None) -> None:
        self.store = store
        self.actor = actor or discovery.default_actor()
        self.beads_dir = beads_dir
        self._prefix: str | None = None
        #: no ``issue_prefix`` in config (a half-made ledger): new ids are refused
        self._prefix_missing = False

    # ------------------------------------------------------------ lifecycle
    @classmethod
    def open(cls, db: str | None = None, *, cwd: str | None = None,
             actor: str | None = None) -> Ledger:
        """Open the ledger named by ``db`` (URL or path), or found upward from ``cwd``."""
        url, beads_dir = discovery.resolve_url(db, cwd)
        passfile = None
        if url.startswith(("postgresql://", "postgres://")):
            passfile = discovery.passfile_of(beads_dir)
        elif beads_dir and url == os.path.join(beads_dir, discovery.DB_FILE):
            # SQLite would write its log through a link, outside the project
            _refuse_links(beads_dir, _DB_FILES)
        return cls(open_store(url, create=False, passfile=passfile), actor=actor,
                   beads_dir=beads_dir)

    @classmethod
    def init(cls, directory: str = ".", *, prefix: str | None = None, db: str | None = None,
             actor: str | None = None, destroy_existing: bool = False,
             attach: bool = False) -> Ledger:
        """Create ``DIRECTORY/.beads/`` with a fresh ledger.

        A PostgreSQL database that already holds a ledger is refused (it is shared:
        its prefix and beads are never touched); ``attach`` points this directory
        at such a ledger instead, changing nothing in it.

        Refuses when a ledger is already there unless ``destroy_existing`` is set;
        a ledger left half-made by a killed ``init`` (no prefix, no beads) is made
        again.  ``db`` selects a server URL (written to ``.beads/config.toml``)
        instead of the embedded SQLite file, which is built under a temporary name
        and renamed into place, so a kill leaves either no database or a whole one.
        Symbolic links inside ``.beads/`` are refused: init never writes through them.
        """
        directory = os.path.abspath(directory)
        if not os.path.isdir(directory):
            raise NotFoundError(f"directory {directory} does not exist")
        beads_dir = os.path.join(directory, discovery.BEADS_DIR)
        db_path = os.path.join(beads_dir, discovery.DB_FILE)
        prefix = prefix or _PREFIX_CLEAN.sub("-", os.path.basename(directory)).strip("-") or "bd"
        if not _ids.is_valid_prefix(prefix):
            raise ValidationError(f"invalid prefix {prefix!r}: letters, digits, '-' and '_'")
        config_path = os.path.join(beads_dir, discovery.CONFIG_FILE)
        _refuse_links(beads_dir)
        existing = os.path.exists(db_path) or (db is None and os.path.exists(config_path))
        if existing and db is None and not os.path.exists(config_path) \
                and _half_initialised(db_path):
            existing = False  # a killed init: build it again
            destroy_existing = True
        if existing and not destroy_existing:
            raise ConflictError(
                f"a ledger already exists at {beads_dir}; refusing to touch it "
                "(pass --destroy-existing to replace it; its data will be lost)")
        os.makedirs(beads_dir, exist_ok=True)
        if destroy_existing and db:  # a SQLite file is replaced by the rename below
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(db_path + suffix):
                    os.remove(db_path + suffix)
        if db:
            if not db.startswith(("postgres://", "postgresql://")):
                raise UsageError(f"--db for init must be a postgresql:// URL, not {db!r}")
            store = open_store(db)
            _check_pg_target(store, attach=attach, replacing=destroy_existing)
            if destroy_existing:
                _drop_all(store)
                store.close()
                store = open_store(db)
            from .postgres import write_config

            write_config(beads_dir, db)  # the password goes to a 0600 passfile, not here
        elif attach:
            raise UsageError("--attach needs --db postgresql://… naming the existing ledger")
        gitignore = os.path.join(beads_dir, ".gitignore")
        if not os.path.exists(gitignore):
            with open(gitignore, "w", encoding="utf-8") as fh:
                fh.write("# the database is local; issues.jsonl is what git shares\n"
                         "beads.db\nbeads.db-*\n*.lock\npgpass\n")
        if not db:
            _build_sqlite(db_path, prefix, actor)
            return cls(open_store(db_path), actor=actor, beads_dir=beads_dir)
        ledger = cls(store, actor=actor, beads_dir=beads_dir)
        if attach:
            return ledger
        ledger._prefix = prefix
        with ledger.transaction() as t:
            t.kv_set("issue_prefix", prefix, table="config")
            t.emit("ledger.init", None, {"prefix": prefix})
        return ledger

    def close(self) -> None:
        """Release the backend's connections."""
        self.store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def prefix(self) -> str:
        """The id prefix new beads get (``issue_prefix`` in config)."""
        if self._prefix is None:
            with self.store.read() as tx:
                value = tx.scalar("SELECT value FROM config WHERE key = 'issue_prefix'")
            self._prefix_missing = not value
            self._prefix = str(value) if value else "bd"
        return self._prefix

    @contextmanager
    def transaction(self, actor: str | None = None, *, durable: bool = False
                    ) -> Iterator[Txn]:
        """One atomic unit of changes: ``with ledger.transaction() as t: t.create(…)``.

        ``durable`` commits to disk before returning (``Store.durable``: merge-queue
        records, DESIGN §3.3).
        """
        prefix = self.prefix
        with (self.store.durable() if durable else self.store.write()) as tx:
            txn = Txn(tx, actor or self.actor, prefix)
            txn.prefix_missing = self._prefix_missing
            yield txn

    @contextmanager
    def snapshot(self) -> Iterator[Reads]:
        """A consistent read-only view for several named queries (:class:`.queries.Reads`)."""
        with self.store.read() as tx:
            yield Reads(tx)

    # -------------------------------------------------------------- writes
    def create(self, title: str, **fields: Any) -> Bead:
        """Create a bead; see :meth:`Txn.create` for the fields."""
        with self.transaction() as t:
            return t.create(title, **fields)

    def update(self, bead_id: str, **changes: Any) -> Bead:
        """Set fields on a bead (beads' field names)."""
        with self.transaction() as t:
            return t.update(bead_id, **changes)

    def claim(self, bead_id: str, assignee: str | None = None) -> Bead:
        """Atomically claim an open, unassigned bead (DESIGN §3.5)."""
        prefix = self.prefix
        with self.store.claim() as tx:
            return Txn(tx, self.actor, prefix).claim(bead_id, assignee)

    def claim_next(self, f: Filter | None = None, assignee: str | None = None) -> Bead | None:
        """Claim the first ready bead (matching ``f``); None when nothing is ready."""
        f = f or Filter()
        extra, params = where_sql(f)
        from_sql = ready_sql(extra, bool(f.mol), self.store.ready_index_hint)
        prefix = self.prefix
        with self.store.claim() as tx:
            return Txn(tx, self.actor, prefix).claim_next(from_sql, params, assignee)

    def close_beads(self, bead_ids: Sequence[str], reason: str | None = None,
                    force: bool = False) -> builtins.list[Bead]:
        """Close several beads in one transaction (all or none)."""
        with self.transaction() as t:
            return [t.close(b, reason=reason, force=force) for b in bead_ids]

    def close_bead(self, bead_id: str, reason: str | None = None, force: bool = False) -> Bead:
        """Close one bead; refused with open blockers or children unless ``force``."""
        return self.close_beads([bead_id], reason, force)[0]

    def reopen(self, bead_id: str, reason: str | None = None) -> Bead:
        """Reopen a closed bead."""
        with self.transaction() as t:
            return t.reopen(bead_id, reason)

    def delete(self, bead_id: str, cascade: bool = False) -> builtins.list[str]:
        """Delete a bead (ids are retired, never reused); returns the ids deleted."""
        with self.transaction() as t:
            return t.delete(bead_id, cascade)

    def add_dep(self, issue_id: str, depends_on_id: str, dep_type: str = "blocks") -> bool:
        """``issue_id`` depends on ``depends_on_id``; cycles of blocking edges are refused."""
        with self.transaction() as t:
            return t.add_dep(issue_id, depends_on_id, dep_type)

    def remove_dep(self, issue_id: str, depends_on_id: str, dep_type: str | None = None) -> int:
        """Remove the edge(s) between two beads."""
        with self.transaction() as t:
            return t.remove_dep(issue_id, depends_on_id, dep_type)

    def add_label(self, bead_id: str, label: str) -> bool:
        """Add a label to a bead."""
        with self.transaction() as t:
            return t.add_label(bead_id, label)

    def remove_label(self, bead_id: str, label: str) -> bool:
        """Remove a label from a bead."""
        with self.transaction() as t:
            return t.remove_label(bead_id, label)

    def add_comment(self, bead_id: str, text: str, author: str | None = None) -> dict[str, Any]:
        """Append a comment."""
        with self.transaction() as t:
            return t.add_comment(bead_id, text, author)

    def kv_set(self, key: str, value: str) -> None:
        """Set a key in the ledger's key/value store."""
        with self.transaction() as t:
            t.kv_set(key, value)

    def kv_set_many(self, items: Sequence[tuple[str, str]], event: str = "kv.set_many",
                    payload: dict[str, Any] | None = None) -> None:
        """Set many keys in one transaction with one ``event`` (a bulk mirror, e.g. a sync)."""
        with self.transaction() as t:
            if items:
                t.tx.executemany("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) "
                                 "DO UPDATE SET value = excluded.value", list(items))
            t.emit(event, None, {"count": len(items), **(payload or {})})

    def kv_clear_prefix(self, prefix: str) -> int:
        """Remove every key starting with ``prefix`` (one transaction); how many went."""
        with self.transaction() as t:
            n = t.tx.execute("DELETE FROM kv WHERE substr(key, 1, ?) = ?",
                             (len(prefix), prefix))
            if n:
                t.emit("kv.cleared", None, {"prefix": prefix, "count": n})
            return n

    def kv_clear(self, key: str) -> bool:
        """Remove a key from the key/value store."""
        with self.transaction() as t:
            return t.kv_clear(key)

    def set_config(self, key: str, value: str) -> None:
        """Set a ledger configuration value (``issue_prefix``, …)."""
        with self.transaction() as t:
            t.kv_set(key, value, table="config")
            t.emit("config.set", None, {"key": key, "value": value})
        if key == "issue_prefix":
            self._prefix = value
            self._prefix_missing = False

    # --------------------------------------------------------------- reads
    def get(self, bead_id: str) -> Bead:
        """One bead (labels included) or :class:`NotFoundError`."""
        with self.store.read() as tx:
            return Txn(tx, self.actor, "").get(bead_id)

    def exists(self, bead_id: str) -> bool:
        """True when the bead exists."""
        with self.store.read() as tx:
            return tx.one("SELECT 1 FROM issues WHERE id = ?", (bead_id,)) is not None

    def resolve_id(self, partial: str) -> str:
        """A full id from a full id, an id without prefix, or a unique id prefix."""
        prefix = self.prefix
        with self.store.read() as tx:
            if tx.one("SELECT 1 FROM issues WHERE id = ?", (partial,)):
                return partial
            candidates = [f"{prefix}-{partial}"] if "-" not in partial else []
            for c in candidates:
                if tx.one("SELECT 1 FROM issues WHERE id = ?", (c,)):
                    return c
            if len(partial) > _MAX_PARTIAL:  # no id is that long: no prefix search
                raise NotFoundError(f"no issue found matching {partial[:40]!r}… "
                                    f"({len(partial)} characters)")
            # escape LIKE's wildcards: '_' is common in real prefixes (beads_rust-…)
            like = (partial.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                    + "%")
            rows = tx.query("SELECT id FROM issues WHERE id LIKE ? ESCAPE '\\' "
                            "ORDER BY id LIMIT 6", (like,))
            if len(rows) == 1:
                return str(rows[0][0])
            if len(rows) > 1:
                shown = ", ".join(r[0] for r in rows[:5])
                raise ConflictError(f"ambiguous id {partial!r}: matches {shown}")
        raise NotFoundError(f"no issue found matching {partial!r}")

    def show(self, bead_id: str) -> Bead:
        """A bead with its ``dependencies``, ``dependents`` and ``comments``."""
        with self.store.read() as tx:
            bead = Txn(tx, self.actor, "").get(bead_id)
            bead["dependencies"] = self._edges(tx, "issue_id", bead_id)
            bead["dependents"] = self._edges(tx, "depends_on_id", bead_id)
            bead["comments"] = self._comments(tx, bead_id)
            return bead

    def _edges(self, tx: Any, column: str, bead_id: str) -> builtins.list[dict[str, Any]]:
        other = "depends_on_id" if column == "issue_id" else "issue_id"
        rows = tx.query(
            f"SELECT d.issue_id, d.depends_on_id, d.type, d.created_at, d.created_by, d.metadata, "
            f"t.title, t.status, t.priority, t.issue_type, t.updated_at FROM dependencies d "
            f"LEFT JOIN issues t ON t.id = d.{other} WHERE d.{column} = ? "
            f"ORDER BY d.{other}", (bead_id,))
        out = []
        for r in rows:
            edge: dict[str, Any] = {"issue_id": r[0], "depends_on_id": r[1], "type": r[2],
                                    "created_at": r[3]}
            if r[4]:
                edge["created_by"] = r[4]
            if r[5]:
                edge["metadata"] = load_json(r[5])
            if r[6] is not None:
                # the linked issue's fields too, as upstream's show prints them
                edge.update(id=r[0] if column == "depends_on_id" else r[1], title=r[6],
                            status=r[7], priority=r[8], issue_type=r[9], updated_at=r[10],
                            dependency_type=r[2])
            out.append(edge)
        return out

    def _comments(self, tx: Any, bead_id: str) -> builtins.list[dict[str, Any]]:
        rows = tx.query("SELECT id, issue_id, author, text, created_at FROM comments "
                        "WHERE issue_id = ? ORDER BY created_at, seq", (bead_id,))
        return [{"id": int(r[0]) if str(r[0]).isdigit() else r[0], "issue_id": r[1],
                 "author": r[2], "text": r[3], "created_at": r[4]} for r in rows]

    def comments(self, bead_id: str) -> builtins.list[dict[str, Any]]:
        """The comments on a bead, oldest first."""
        with self.store.read() as tx:
            Txn(tx, self.actor, "").status_of(bead_id)
            return self._comments(tx, bead_id)

    def list(self, f: Filter | None = None, *, sort: str | None = None, reverse: bool = False,
             limit: int = 0) -> builtins.list[Bead]:
        """Beads matching a filter (all when ``f`` is None), sorted; ``limit`` 0 = all."""
        extra, params = where_sql(f or Filter())
        sql = (f"SELECT {SELECT_COLUMNS} FROM issues WHERE 1 = 1{extra} "
               f"ORDER BY {order_sql(sort, reverse)}")
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self.store.read() as tx:
            return self._beads(tx, tx.query(sql, params))

    def _beads(self, tx: Any, rows: builtins.list[tuple[Any, ...]]) -> builtins.list[Bead]:
        if not rows:
            return []
        labels: dict[str, list[str]] = {}
        ids_ = [r[0] for r in rows]
        for start in range(0, len(ids_), 500):
            part = ids_[start:start + 500]
            for issue_id, label in tx.query(
                    f"SELECT issue_id, label FROM labels WHERE issue_id IN "
                    f"({', '.join('?' * len(part))}) ORDER BY label", part):
                labels.setdefault(issue_id, []).append(label)
        return [bead_from_row(r, labels.get(r[0])) for r in rows]

    def ready(self, f: Filter | None = None, limit: int = 0) -> builtins.list[Bead]:
        """The ready beads (DESIGN §3.4) in ready order; ``limit`` 0 = all."""
        f = f or Filter()
        extra, params = where_sql(f)
        from_sql = ready_sql(extra, bool(f.mol), self.store.ready_index_hint)
        sql = f"SELECT {SELECT_COLUMNS} {from_sql}"
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self.store.read() as tx:
            return self._beads(tx, tx.query(sql, [timefmt.now(), *params]))

    def ready_json(self, f: Filter | None = None, limit: int = 0) -> str:
        """The ready set as one JSON array text, built inside the database (hot path)."""
        f = f or Filter()
        extra, params = where_sql(f)
        inner = (f"SELECT {json_object_sql(self.store)} AS o "
                 f"{ready_sql(extra, bool(f.mol), self.store.ready_index_hint)}")
        if limit:
            inner += f" LIMIT {int(limit)}"
        sql = f"SELECT {self.store.json_array_agg_sql('o')} FROM ({inner}) q"
        with self.store.read() as tx:
            return str(tx.scalar(sql, [timefmt.now(), *params]))

    def ready_count(self, f: Filter | None = None) -> int:
        """How many beads are ready (matching ``f``): the total a paged ``ready`` reports."""
        f = f or Filter()
        extra, params = where_sql(f)
        from_sql = ready_sql(extra, bool(f.mol), self.store.ready_index_hint)
        with self.store.read() as tx:
            return int(tx.scalar(f"SELECT COUNT(*) FROM (SELECT 1 AS one {from_sql}) q",
                                 [timefmt.now(), *params]) or 0)

    def blocked(self, f: Filter | None = None, limit: int = 0) -> builtins.list[Bead]:
        """Open beads that are not ready only because they are held, each with ``blocked_by``.

        ``blocked_by`` lists the ids of the blocking targets; a bead held by an
        ancestor, its own status or a deferral says so in ``held_by``.  ``limit``
        (0 = all) keeps the first beads in ready order, and only those pay for
        their ``blocked_by``; :meth:`blocked_count` is the whole number.
        """
        extra, params = where_sql(f or Filter())
        sql = (f"SELECT {SELECT_COLUMNS} FROM issues WHERE {_ready.BLOCKED_WHERE}"
               f"{extra} ORDER BY {_ready.READY_ORDER}")
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self.store.read() as tx:
            rows = tx.query(sql, [timefmt.now(), *params])
            beads = self._beads(tx, rows)
            t = Txn(tx, self.actor, "")
            for bead in beads:
                bead["blocked_by"] = t.open_blockers(bead["id"])
                bead["blocked_by_count"] = len(bead["blocked_by"])
                reasons = []
                if bead["status"] in _ready.HOLDING_STATUSES:
                    reasons.append(f"status {bead['status']}")
                row = tx.one("SELECT self_held, held, hold_until FROM issues WHERE id = ?",
                             (bead["id"],))
                if row and int(row[1]) and not int(row[0]):
                    reasons.append("held by an ancestor")
                if row and row[2] and row[2] > timefmt.now():
                    reasons.append(f"deferred until {row[2]}")
                if reasons:
                    bead["held_by"] = reasons
            return beads

    def blocked_count(self, f: Filter | None = None) -> int:
        """How many beads :meth:`blocked` would list (one COUNT, no ``blocked_by``)."""
        extra, params = where_sql(f or Filter())
        with self.store.read() as tx:
            return int(tx.scalar(f"SELECT COUNT(*) FROM issues WHERE {_ready.BLOCKED_WHERE}"
                                 f"{extra}", [timefmt.now(), *params]) or 0)

    def count(self, f: Filter | None = None) -> int:
        """How many beads match a filter."""
        extra, params = where_sql(f or Filter())
        with self.store.read() as tx:
            return int(tx.scalar(f"SELECT COUNT(*) FROM issues WHERE 1 = 1{extra}", params) or 0)

    def deps(self, bead_id: str) -> builtins.list[dict[str, Any]]:
        """Edges out of a bead (what it depends on), with the target's title and status."""
        with self.store.read() as tx:
            Txn(tx, self.actor, "").status_of(bead_id)
            return self._edges(tx, "issue_id", bead_id)

    def dependents(self, bead_id: str) -> builtins.list[dict[str, Any]]:
        """Edges into a bead (what depends on it)."""
        with self.store.read() as tx:
            Txn(tx, self.actor, "").status_of(bead_id)
            return self._edges(tx, "depends_on_id", bead_id)

    def dep_tree(self, bead_id: str, max_depth: int = 50, reverse: bool = False
                 ) -> builtins.list[dict[str, Any]]:
        """The dependency tree under a bead, depth first: ``{id, title, status, type, depth}``.

        ``reverse`` walks dependents instead of dependencies.
        """
        out: builtins.list[dict[str, Any]] = []
        with self.store.read() as tx:
            root = Txn(tx, self.actor, "").get(bead_id)
            out.append({"id": root["id"], "title": root["title"], "status": root["status"],
                        "priority": root["priority"], "depth": 0, "type": None})
            seen = {bead_id}
            col, other = ("depends_on_id", "issue_id") if reverse else ("issue_id", "depends_on_id")

            def walk(node: str, depth: int) -> None:
                if depth > max_depth:
                    return
                rows = tx.query(f"SELECT d.{other}, d.type, t.title, t.status, t.priority "
                                f"FROM dependencies d LEFT JOIN issues t ON t.id = d.{other} "
                                f"WHERE d.{col} = ? ORDER BY d.{other}", (node,))
                for target, typ, title, status, prio in rows:
                    out.append({"id": target, "title": title, "status": status,
                                "priority": prio, "depth": depth, "type": typ,
                                "repeat": target in seen})
                    if target not in seen:
                        seen.add(target)
                        walk(target, depth + 1)

            walk(bead_id, 1)
        return out

    def find_cycles(self) -> builtins.list[builtins.list[str]]:
        """Cycles among blocking and parent-child edges (each as a list of ids)."""
        with self.store.read() as tx:
            rows = tx.query("SELECT issue_id, depends_on_id, type FROM dependencies")
        cycles: builtins.list[list[str]] = []
        for family in (_ready.BLOCKING_DEP_TYPES, ("parent-child",)):
            graph: dict[str, list[str]] = {}
            for a, b, t in rows:
                if t in family:
                    graph.setdefault(a, []).append(b)
            cycles += _cycles(graph)
        return cycles

    def search(self, text: str, f: Filter | None = None, limit: int = 50) -> builtins.list[Bead]:
        """Beads whose id, title or text fields contain ``text`` (case-insensitive)."""
        f = f or Filter()
        f.text = text
        return self.list(f, sort="updated", limit=limit)

    def labels_all(self) -> builtins.list[tuple[str, int]]:
        """Every label with the number of beads carrying it."""
        with self.store.read() as tx:
            return [(r[0], int(r[1])) for r in tx.query(
                "SELECT label, COUNT(*) FROM labels GROUP BY label ORDER BY label")]

    def kv_get(self, key: str) -> str | None:
        """A value from the key/value store, or None."""
        with self.store.read() as tx:
            v = tx.scalar("SELECT value FROM kv WHERE key = ?", (key,))
            return None if v is None else str(v)

    def kv_list(self) -> builtins.list[tuple[str, str]]:
        """All key/value pairs, sorted by key."""
        with self.store.read() as tx:
            return [(r[0], r[1]) for r in tx.query("SELECT key, value FROM kv ORDER BY key")]

    def kv_scan(self, prefix: str) -> builtins.list[tuple[str, str]]:
        """Key/value pairs whose key starts with ``prefix``, sorted by key."""
        with self.store.read() as tx:
            return [(r[0], r[1]) for r in tx.query(
                "SELECT key, value FROM kv WHERE substr(key, 1, ?) = ? ORDER BY key",
                (len(prefix), prefix))]

    def config(self) -> dict[str, str]:
        """The ledger's configuration table."""
        with self.store.read() as tx:
            return {r[0]: r[1] for r in tx.query("SELECT key, value FROM config ORDER BY key")}

    def stats(self) -> dict[str, Any]:
        """Counts by status and type, ready and blocked counts, and lead time."""
        now = timefmt.now()
        with self.store.read() as tx:
            by_status = dict(tx.query(
                "SELECT status, COUNT(*) FROM issues WHERE ephemeral = 0 AND is_template = 0 "
                "GROUP BY status"))
            by_type = dict(tx.query(
                "SELECT issue_type, COUNT(*) FROM issues WHERE ephemeral = 0 AND is_template = 0 "
                "GROUP BY issue_type"))
            ready = tx.scalar(f"SELECT COUNT(*) FROM issues WHERE {_ready.READY_WHERE}", (now,))
            blocked = tx.scalar(f"SELECT COUNT(*) FROM issues WHERE {_ready.BLOCKED_WHERE}",
                                (now,))
            wisps = tx.scalar("SELECT COUNT(*) FROM issues WHERE ephemeral = 1")
            templates = tx.scalar("SELECT COUNT(*) FROM issues WHERE is_template = 1")
            events = tx.scalar("SELECT COUNT(*) FROM events")
        total = sum(int(v) for v in by_status.values())
        return {
            "total_issues": total,
            "open_issues": int(by_status.get("open", 0)),
            "in_progress_issues": int(by_status.get("in_progress", 0)),
            "closed_issues": int(by_status.get("closed", 0)),
            "blocked_issues": int(blocked or 0),
            "ready_issues": int(ready or 0),
            "by_status": {k: int(v) for k, v in sorted(by_status.items())},
            "by_type": {k: int(v) for k, v in sorted(by_type.items())},
            "wisps": int(wisps or 0),
            "templates": int(templates or 0),
            "events": int(events or 0),
        }

    def events(self, since_seq: int = 0, limit: int = 0, bead_id: str | None = None,
               types: Iterable[str] = ()) -> builtins.list[dict[str, Any]]:
        """Events after ``since_seq`` in order (``limit`` 0 = all)."""
        sql = "SELECT seq, ts, type, actor, bead_id, payload FROM events WHERE seq > ?"
        params: builtins.list[Any] = [since_seq]
        if bead_id:
            sql += " AND bead_id = ?"
            params.append(bead_id)
        where, type_params = type_filter_sql(types)
        if where:
            sql += " AND " + where
            params += type_params
        sql += " ORDER BY seq"
        if limit:
            sql += f" LIMIT {int(limit)}"
        with self.store.read() as tx:
            rows = tx.query(sql, params)
        return [{"seq": int(r[0]), "ts": r[1], "type": r[2], "actor": r[3], "bead_id": r[4],
                 "payload": load_json(r[5]) or {}} for r in rows]

    def last_event_seq(self) -> int:
        """The newest event's ``seq`` (0 when there is none)."""
        with self.store.read() as tx:
            return int(tx.scalar("SELECT MAX(seq) FROM events") or 0)

    def emit(self, type_: str, bead_id: str | None = None,
             payload: Mapping[str, Any] | None = None) -> int:
        """Record an event that is not a bead change (town actions use this)."""
        with self.transaction() as t:
            return t.emit(type_, bead_id, payload)

    # --------------------------------------------------------- maintenance
    def recompute_ready_state(self) -> int:
        """Rebuild the ready/blocked columns from scratch; returns rows that were wrong."""
        with self.store.write() as tx:
            return _ready.recompute_all(tx)

    def integrity_problems(self) -> builtins.list[str]:
        """Checks ``bd doctor`` runs: ready state, closed_at, dangling edges, cycles."""
        problems: builtins.list[str] = []
        with self.store.read() as tx:
            rows = tx.query("SELECT id, status, defer_until, pinned, ephemeral, is_template, "
                            "issue_type, priority, created_at, held, closed_at FROM issues")
            edges = tx.query("SELECT issue_id, depends_on_id, type FROM dependencies")
            if self.store.dialect == "sqlite":
                check = tx.scalar("PRAGMA quick_check")
                if check != "ok":
                    problems.append(f"sqlite quick_check: {check}")
        beads = {r[0]: {"status": r[1], "defer_until": None, "issue_type": r[6]} for r in rows}
        held = _ready.reference_held(beads, edges, timefmt.now())
        for r in rows:
            if bool(int(r[9])) != held[r[0]]:
                problems.append(f"{r[0]}: stored ready state is stale (run bd doctor --fix)")
            if (r[1] == "closed") != (r[10] is not None):
                problems.append(f"{r[0]}: closed_at does not match status {r[1]}")
        known = set(beads)
        dangling = sum(1 for e in edges if e[1] not in known and e[2] != "related")
        if dangling:
            problems.append(f"{dangling} dependencies point at unknown issues (they never block)")
        for cycle in self.find_cycles():
            problems.append("dependency cycle: " + " -> ".join(cycle))
        return problems


def _cycles(graph: dict[str, list[str]]) -> builtins.list[builtins.list[str]]:
    """Elementary cycles found by an iterative DFS (one per back edge)."""
    color: dict[str, int] = {}
    found: builtins.list[list[str]] = []
    for start in sorted(graph):
        if color.get(start):
            continue
        stack: builtins.list[tuple[str, Iterator[str]]] = [(start, iter(graph.get(start, ())))]
        path = [start]
        color[start] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                color[node] = 2
                stack.pop()
                path.pop()
                continue
            state = color.get(nxt, 0)
            if state == 1:
                found.append(path[path.index(nxt):] + [nxt])
            elif state == 0:
                color[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(graph.get(nxt, ()))))
    return found


_DB_FILES = (discovery.DB_FILE, discovery.DB_FILE + "-wal", discovery.DB_FILE + "-shm")
_LEDGER_FILES = (*_DB_FILES, discovery.CONFIG_FILE, discovery.JSONL_FILE, ".gitignore")


def _refuse_links(beads_dir: str, names: tuple[str, ...] = _LEDGER_FILES) -> None:
    """Refuse a ``.beads/`` whose files are symbolic links (we would write through them)."""
    for name in names:
        path = os.path.join(beads_dir, name)
        if os.path.islink(path):
            raise ConflictError(f"refusing to use {path}: it is a symbolic link to "
                                f"{os.readlink(path)}; remove it or replace it with a file")


def _half_initialised(db_path: str) -> bool:
    """True for a SQLite ledger an interrupted ``init`` left without prefix and beads."""
    import sqlite3

    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "config" not in tables or "issues" not in tables:
            return "issues" not in tables
        prefix = con.execute("SELECT value FROM config WHERE key = 'issue_prefix'").fetchone()
        beads = con.execute("SELECT 1 FROM issues LIMIT 1").fetchone()
        return prefix is None and beads is None
    except sqlite3.Error:
        return False
    finally:
        con.close()


def _build_sqlite(db_path: str, prefix: str, actor: str | None) -> None:
    """Make a complete SQLite ledger under a temporary name, then rename it to ``db_path``."""
    import glob

    for stale in glob.glob(glob.escape(db_path) + ".init-*"):
        os.remove(stale)  # left by an init that was killed before its rename
    tmp = f"{db_path}.init-{os.getpid()}"
    ledger = Ledger(open_store(tmp), actor=actor)
    try:
        ledger._prefix = prefix
        with ledger.transaction() as t:
            t.kv_set("issue_prefix", prefix, table="config")
            t.emit("ledger.init", None, {"prefix": prefix})
    finally:
        ledger.close()
    for suffix in ("-wal", "-shm"):
        # a half-made database's log must never be replayed into the new file
        if os.path.exists(db_path + suffix):
            os.remove(db_path + suffix)
    os.replace(tmp, db_path)
    try:  # the temporary database's lock-holder note (see SqliteStore) goes with it
        os.remove(tmp + "-holder")
    except FileNotFoundError:
        pass


def _check_pg_target(store: Store, *, attach: bool, replacing: bool) -> None:
    """Refuse to initialise a server database that already holds a ledger (and vice versa)."""
    with store.read() as tx:
        prefix = tx.scalar("SELECT value FROM config WHERE key = 'issue_prefix'")
        beads = int(tx.scalar("SELECT COUNT(*) FROM issues") or 0)
    problem: Exception | None = None
    if attach and replacing:
        problem = UsageError("--attach and --destroy-existing contradict each other: "
                             "attaching never changes the ledger")
    elif attach and prefix is None and not beads:
        problem = NotFoundError(f"{store.url} holds no beads ledger to attach to: "
                                "run 'bd init --db URL' without --attach to create one")
    elif not attach and not replacing and (prefix is not None or beads):
        problem = ConflictError(
            f"{store.url} already holds a beads ledger (prefix {prefix}, {beads} beads); "
            "refusing to touch it: run 'bd init --attach --db URL' to use it from here "
            "(or --destroy-existing to replace it; its data will be lost)")
    if problem is not None:
        store.close()
        raise problem


def _drop_all(store: Store) -> None:
    with store.write() as tx:
        for table in ("issues", "dependencies", "labels", "comments", "events", "kv", "config",
                      "child_counters", "retired_ids"):
            tx.execute(f"DELETE FROM {table}")
