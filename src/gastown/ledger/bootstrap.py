"""Creating a ledger (``bd init``) and the link checks opening one makes.

SQLite ledgers are built under a temporary name and renamed into place, so a
killed ``init`` leaves either no database or a whole one; a PostgreSQL database
that already holds a ledger is refused (or attached to, changing nothing).
"""

from __future__ import annotations

import os
import re

from ..errors import ConflictError, NotFoundError, UsageError, ValidationError
from . import discovery
from . import ids as _ids
from .base import LedgerBase
from .store import Store, open_store

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only: the hot path skips it
    from typing import TypeVar

    L = TypeVar("L", bound=LedgerBase)

__all__ = ["init_ledger", "refuse_links", "DB_FILES"]

_PREFIX_CLEAN = re.compile(r"[^A-Za-z0-9_-]+")


def init_ledger(make: type[L], directory: str = ".", *, prefix: str | None = None,
                db: str | None = None, actor: str | None = None,
                destroy_existing: bool = False, attach: bool = False) -> L:
    """:meth:`Ledger.init <gastown.ledger.core.Ledger.init>`'s work; ``make`` is the class."""
    directory = os.path.abspath(directory)
    if not os.path.isdir(directory):
        raise NotFoundError(f"directory {directory} does not exist")
    beads_dir = os.path.join(directory, discovery.BEADS_DIR)
    db_path = os.path.join(beads_dir, discovery.DB_FILE)
    prefix = prefix or _PREFIX_CLEAN.sub("-", os.path.basename(directory)).strip("-") or "bd"
    if not _ids.is_valid_prefix(prefix):
        raise ValidationError(f"invalid prefix {prefix!r}: letters, digits, '-' and '_'")
    config_path = os.path.join(beads_dir, discovery.CONFIG_FILE)
    refuse_links(beads_dir)
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
        return make(open_store(db_path), actor=actor, beads_dir=beads_dir)
    ledger = make(store, actor=actor, beads_dir=beads_dir)
    if attach:
        return ledger
    ledger._prefix = prefix
    with ledger.transaction() as t:
        t.kv_set("issue_prefix", prefix, table="config")
        t.emit("ledger.init", None, {"prefix": prefix})
    return ledger


DB_FILES = (discovery.DB_FILE, discovery.DB_FILE + "-wal", discovery.DB_FILE + "-shm")
LEDGER_FILES = (*DB_FILES, discovery.CONFIG_FILE, discovery.JSONL_FILE, ".gitignore")


def refuse_links(beads_dir: str, names: tuple[str, ...] = LEDGER_FILES) -> None:
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
    ledger = LedgerBase(open_store(tmp), actor=actor)
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
