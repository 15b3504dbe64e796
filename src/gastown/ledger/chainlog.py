"""Storage of entity chains and the town's Merkle log (the SQL of :mod:`gastown.chains`).

The ledger knows nothing of what a chain record means: it stores canonical JSON
text in order, keeps each chain's head and the log's size, and hands rows back.
Three tables (created with the schema, or by :func:`ensure` for older ledgers):

``chain_log``
    one row per record, ``idx`` its 0-based position in the town log; ``entity``
    and ``seq`` its place on its entity's chain; ``hash`` the sha256 (hex) of the
    record's canonical bytes, ``leaf`` its RFC 6962 leaf hash (hex).
``chain_heads``
    ``(entity, seq, hash)`` of each chain's last record; the row with the empty
    entity is the log itself (``seq`` = its size).  Appending updates the log row
    first, which serialises appenders on every backend (claims on PostgreSQL do
    not take the global writer lock; this row lock orders them).
``chain_checkpoints``
    signed heads of the log: ``size``, ``root`` (hex) and the signed JSON.
"""

from __future__ import annotations

from .store import Store, Tx

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only: the hot path skips it
    from typing import Any

__all__ = ["TABLES", "INDEXES", "ensure", "next_position", "head", "append", "rows",
           "entities", "leaves", "size", "checkpoint_add", "checkpoints", "HOOK_KEY",
           "settings", "event_count", "comment_count"]

#: the ledger config row naming the transaction hook (``module:function``)
HOOK_KEY = "chains.hook"

TABLES = [
    """
    CREATE TABLE IF NOT EXISTS chain_log (
        idx INTEGER PRIMARY KEY,
        entity TEXT NOT NULL,
        seq INTEGER NOT NULL,
        kind TEXT NOT NULL,
        bead_id TEXT,
        subject TEXT,
        hash TEXT NOT NULL,
        leaf TEXT NOT NULL,
        record TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS chain_heads (
        entity TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS chain_checkpoints (
        size INTEGER PRIMARY KEY,
        root TEXT NOT NULL,
        body TEXT NOT NULL
    )
    """,
]
INDEXES = [
    "CREATE UNIQUE INDEX IF NOT EXISTS idx_chain_entity ON chain_log (entity, seq)",
    "CREATE INDEX IF NOT EXISTS idx_chain_subject ON chain_log (subject)",
    "CREATE INDEX IF NOT EXISTS idx_chain_hash ON chain_log (hash)",
]


def ensure(store: Store) -> None:
    """Create the chain tables in a ledger made before they existed (idempotent)."""
    with store.write() as tx:
        for stmt in TABLES + INDEXES:
            tx.execute(store.ddl(stmt))


def next_position(tx: Tx) -> int:
    """Reserve the next position of the town log (locks the log's head row)."""
    if not tx.execute("UPDATE chain_heads SET seq = seq + 1 WHERE entity = ''"):
        tx.execute("INSERT INTO chain_heads (entity, seq, hash) VALUES ('', 1, '') "
                   "ON CONFLICT (entity) DO UPDATE SET seq = chain_heads.seq + 1")
    return int(tx.scalar("SELECT seq FROM chain_heads WHERE entity = ''")) - 1


def head(tx: Tx, entity: str) -> tuple[int, str]:
    """``(seq, hash)`` of ``entity``'s last record; ``(0, "")`` for a new chain."""
    row = tx.one("SELECT seq, hash FROM chain_heads WHERE entity = ?", (entity,))
    return (int(row[0]), str(row[1])) if row else (0, "")


def append(tx: Tx, idx: int, entity: str, seq: int, kind: str, bead_id: str | None,
           subject: str | None, digest: str, leaf: str, text: str) -> None:
    """Store one record at log position ``idx`` and move its chain's head."""
    tx.execute("INSERT INTO chain_log (idx, entity, seq, kind, bead_id, subject, hash, leaf, "
               "record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
               (idx, entity, seq, kind, bead_id, subject, digest, leaf, text))
    tx.execute("INSERT INTO chain_heads (entity, seq, hash) VALUES (?, ?, ?) "
               "ON CONFLICT (entity) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
               (entity, seq, digest))


def rows(tx: Tx, entity: str | None = None, subject: str | None = None,
         digest: str | None = None) -> list[tuple[int, str]]:
    """``(idx, record text)`` in log order: all, one entity's chain, the records
    about ``subject``, or the record(s) whose hash starts with ``digest``."""
    sql = "SELECT idx, record FROM chain_log"
    params: list[Any] = []
    if entity is not None:
        sql += " WHERE entity = ?"
        params.append(entity)
    elif subject is not None:
        sql += " WHERE subject = ?"
        params.append(subject)
    elif digest is not None:
        sql += " WHERE substr(hash, 1, ?) = ?"
        params += [len(digest), digest]
    return [(int(r[0]), str(r[1])) for r in tx.query(sql + " ORDER BY idx", params)]


def entities(tx: Tx) -> list[tuple[str, int, str]]:
    """``(entity, length, head hash)`` of every chain, by entity."""
    return [(str(r[0]), int(r[1]), str(r[2])) for r in tx.query(
        "SELECT entity, seq, hash FROM chain_heads WHERE entity <> '' ORDER BY entity")]


def size(tx: Tx) -> int:
    """The number of records in the town log."""
    return int(tx.scalar("SELECT COUNT(*) FROM chain_log") or 0)


def leaves(tx: Tx, upto: int | None = None) -> list[str]:
    """The leaf hashes (hex) of the first ``upto`` records (all by default), in order."""
    if upto is None:
        return [str(r[0]) for r in tx.query("SELECT leaf FROM chain_log ORDER BY idx")]
    return [str(r[0]) for r in tx.query(
        "SELECT leaf FROM chain_log WHERE idx < ? ORDER BY idx", (upto,))]


def checkpoint_add(tx: Tx, size_: int, root: str, body: str) -> None:
    """Store a signed checkpoint (one per size: signing the same head again keeps the first)."""
    tx.execute("INSERT INTO chain_checkpoints (size, root, body) VALUES (?, ?, ?) "
               "ON CONFLICT (size) DO NOTHING", (size_, root, body))


def checkpoints(tx: Tx) -> list[tuple[int, str, str]]:
    """``(size, root, body)`` of every stored checkpoint, oldest first."""
    return [(int(r[0]), str(r[1]), str(r[2])) for r in tx.query(
        "SELECT size, root, body FROM chain_checkpoints ORDER BY size")]


def settings(tx: Tx) -> dict[str, str]:
    """The ``chains.*`` rows of the ledger's config (where keys live, the town's names)."""
    return {str(r[0]): str(r[1]) for r in tx.query(
        "SELECT key, value FROM config WHERE substr(key, 1, 7) = 'chains.'")}


def event_count(tx: Tx, bead_id: str, type_: str) -> int:
    """How many events of ``type_`` a bead has had (e.g. reopens: its revisions)."""
    return int(tx.scalar("SELECT COUNT(*) FROM events WHERE bead_id = ? AND type = ?",
                         (bead_id, type_)) or 0)


def comment_count(tx: Tx, bead_id: str) -> int:
    """How many comments a bead has (review activity on a merge request)."""
    return int(tx.scalar("SELECT COUNT(*) FROM comments WHERE issue_id = ?", (bead_id,)) or 0)
