"""Helpers shared by the ledger conformance tests (both backends).

Everything here reads the ledger through its public ``store`` read transactions,
so the same helper works on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
from typing import Any

from gastown import Ledger
from gastown.ledger import ready as _ready
from gastown.ledger import timefmt

#: every table of the schema, in a fixed order
TABLES = ("issues", "dependencies", "labels", "comments", "events", "kv", "config",
          "child_counters", "retired_ids")

_BEAD_COLS = ("id", "status", "defer_until", "pinned", "ephemeral", "is_template",
              "issue_type", "priority", "created_at")


def snapshot(ledger: Ledger) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, sorted: equal snapshots mean an unchanged ledger."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with ledger.store.read() as tx:
        for table in TABLES:
            rows = tx.query(f"SELECT * FROM {table}")
            out[table] = sorted((tuple(r) for r in rows), key=repr)
    return out


def rows_for_reference(ledger: Ledger) -> tuple[dict[str, dict[str, Any]],
                                                list[tuple[str, str, str]]]:
    """``(beads, deps)`` as :func:`ready.reference_ready` takes them, read from the rows."""
    with ledger.store.read() as tx:
        rows = tx.query(f"SELECT {', '.join(_BEAD_COLS)} FROM issues")
        deps = [tuple(r) for r in tx.query(
            "SELECT issue_id, depends_on_id, type FROM dependencies")]
    beads = {}
    for r in rows:
        b = dict(zip(_BEAD_COLS, r, strict=True))
        for k in ("pinned", "ephemeral", "is_template"):
            b[k] = bool(int(b[k]))
        b["priority"] = int(b["priority"])
        beads[b["id"]] = b
    return beads, deps  # type: ignore[return-value]


def reference_ready_ids(ledger: Ledger) -> list[str]:
    """The ready ids computed from scratch by the reference statement of the rule."""
    beads, deps = rows_for_reference(ledger)
    return _ready.reference_ready(beads, deps, timefmt.now())


def reference_held(ledger: Ledger) -> dict[str, bool]:
    beads, deps = rows_for_reference(ledger)
    return _ready.reference_held(beads, deps, timefmt.now())


def ready_state(ledger: Ledger) -> list[tuple[Any, ...]]:
    """The stored ready-state columns of every bead, sorted by id."""
    with ledger.store.read() as tx:
        return [tuple(r) for r in tx.query(
            "SELECT id, self_held, held, hold_until FROM issues ORDER BY id")]


def ready_ids(ledger: Ledger, **kw: Any) -> list[str]:
    return [b["id"] for b in ledger.ready(**kw)]


def ledger_dir(ledger: Ledger) -> str:
    """The directory whose ``.beads/`` holds this ledger (what ``bd -C`` takes)."""
    assert ledger.beads_dir, "ledger has no .beads directory"
    return os.path.dirname(ledger.beads_dir)


def open_again(ledger: Ledger, actor: str) -> Ledger:
    """A second, independent handle (own connection) on the same ledger, any backend.

    Found by discovery from the ledger's directory, like ``bd`` does: ``store.url``
    may be a display form without credentials.
    """
    return Ledger.open(cwd=ledger_dir(ledger), actor=actor)


def reset(ledger: Ledger, prefix: str = "t") -> None:
    """Empty every table (a fresh ledger for the next hypothesis example)."""
    with ledger.store.write() as tx:
        for table in TABLES:
            tx.execute(f"DELETE FROM {table}")
        tx.execute("INSERT INTO config (key, value) VALUES ('issue_prefix', ?)", (prefix,))
    ledger._prefix = prefix


def event_count(ledger: Ledger) -> int:
    with ledger.store.read() as tx:
        return int(tx.scalar("SELECT COUNT(*) FROM events") or 0)


def new_events(ledger: Ledger, since: int) -> list[dict[str, Any]]:
    return ledger.events(since_seq=since)
