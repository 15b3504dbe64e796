"""The ledger's tables, written once for both backends.

``{AUTO}`` becomes the backend's auto-increment primary key.  Timestamps are RFC
3339 text (see :mod:`.timefmt`); JSON values (metadata, unknown fields) are text
so key order and unusual values survive a round trip untouched.

The three ``held``/``self_held``/``hold_until`` columns are the ready/blocked state,
maintained in the same transaction as every change by :mod:`.ready`.
"""

from __future__ import annotations

SCHEMA_VERSION = 1

TABLES = [
    """
    CREATE TABLE IF NOT EXISTS issues (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        design TEXT NOT NULL DEFAULT '',
        acceptance_criteria TEXT NOT NULL DEFAULT '',
        notes TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL DEFAULT 'open',
        priority INTEGER NOT NULL DEFAULT 2,
        issue_type TEXT NOT NULL DEFAULT 'task',
        assignee TEXT,
        owner TEXT,
        created_by TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        started_at TEXT,
        closed_at TEXT,
        close_reason TEXT,
        due_at TEXT,
        defer_until TEXT,
        external_ref TEXT,
        metadata TEXT,
        pinned INTEGER NOT NULL DEFAULT 0,
        ephemeral INTEGER NOT NULL DEFAULT 0,
        is_template INTEGER NOT NULL DEFAULT 0,
        source_formula TEXT,
        estimated_minutes INTEGER,
        extra TEXT,
        self_held INTEGER NOT NULL DEFAULT 0,
        held INTEGER NOT NULL DEFAULT 0,
        hold_until TEXT
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS dependencies (
        issue_id TEXT NOT NULL,
        depends_on_id TEXT NOT NULL,
        type TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT,
        metadata TEXT,
        extra TEXT,
        PRIMARY KEY (issue_id, depends_on_id, type)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS labels (
        issue_id TEXT NOT NULL,
        label TEXT NOT NULL,
        PRIMARY KEY (issue_id, label)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS comments (
        seq {AUTO},
        id TEXT NOT NULL,
        issue_id TEXT NOT NULL,
        author TEXT,
        text TEXT NOT NULL,
        created_at TEXT NOT NULL,
        extra TEXT
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS events (
        seq {AUTO},
        ts TEXT NOT NULL,
        type TEXT NOT NULL,
        actor TEXT,
        bead_id TEXT,
        payload TEXT
    )
    """,
    "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS config (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS child_counters (parent_id TEXT PRIMARY KEY, last INTEGER NOT NULL)",
    # ids ever used, so an id is never reused after delete (DESIGN §3.2)
    "CREATE TABLE IF NOT EXISTS retired_ids (id TEXT PRIMARY KEY)",
]

INDEXES = [
    # the ready query walks this partial index in output order and stops at LIMIT
    """CREATE INDEX IF NOT EXISTS idx_issues_ready ON issues (priority, created_at, id)
       WHERE status = 'open' AND held = 0 AND pinned = 0 AND ephemeral = 0 AND is_template = 0""",
    "CREATE INDEX IF NOT EXISTS idx_issues_status ON issues (status, priority, created_at)",
    "CREATE INDEX IF NOT EXISTS idx_issues_assignee ON issues (assignee)",
    "CREATE INDEX IF NOT EXISTS idx_deps_target ON dependencies (depends_on_id, type)",
    "CREATE INDEX IF NOT EXISTS idx_labels_label ON labels (label)",
    "CREATE UNIQUE INDEX IF NOT EXISTS idx_comments_id ON comments (issue_id, id)",
    "CREATE INDEX IF NOT EXISTS idx_events_bead ON events (bead_id)",
]


def statements(auto_pk: str) -> list[str]:
    """All DDL statements for a backend whose auto-increment key is ``auto_pk``."""
    from . import chainlog  # the entity chains' tables (gastown.chains; empty until enabled)

    return ([t.replace("{AUTO}", auto_pk) for t in TABLES] + INDEXES
            + chainlog.TABLES + chainlog.INDEXES)
