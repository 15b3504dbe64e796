"""The :class:`~.core.Ledger`'s writes: each method is one transaction.

Every change goes through :meth:`~.base.LedgerBase.transaction`, which hands out
a :class:`~.ops.Txn` bound to one backend transaction: the change, its event and
the ready-state refresh commit together or not at all (DESIGN §2.4).  To
compose several changes in one transaction, use the ``Txn`` methods directly.
"""

from __future__ import annotations

import builtins

from . import ready as _ready
from . import txhook
from .base import LedgerBase
from .model import Bead
from .ops import Txn
from .query import Filter, ready_sql, where_sql

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only: the hot path skips it
    from collections.abc import Mapping, Sequence
    from typing import Any

__all__ = ["LedgerWrites"]


class LedgerWrites(LedgerBase):
    """One-transaction writes: create, update, claim, close, deps, labels, kv, config."""

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
        with self.store.claim() as tx:
            txn = Txn(tx, self.actor, self._prefix_in(tx))
            bead = txn.claim(bead_id, assignee)
            txhook.run(txn)
            return bead

    def claim_next(self, f: Filter | None = None, assignee: str | None = None) -> Bead | None:
        """Claim the first ready bead (matching ``f``); None when nothing is ready."""
        f = f or Filter()
        extra, params = where_sql(f)
        from_sql = ready_sql(extra, bool(f.mol), self.store.ready_index_hint)
        with self.store.claim() as tx:
            txn = Txn(tx, self.actor, self._prefix_in(tx))
            got = txn.claim_next(from_sql, params, assignee)
            txhook.run(txn)
            return got

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
                    payload: dict[str, Any] | None = None,
                    remote_closed: Mapping[str, bool] | None = None) -> None:
        """Set many keys in one transaction with one ``event`` (a bulk mirror, e.g. a sync).

        ``remote_closed`` (``gt://`` bead → closed as of this sync) updates the holds of
        the beads that depend on those remote beads in the same transaction.
        """
        with self.transaction() as t:
            if items:
                t.tx.executemany("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) "
                                 "DO UPDATE SET value = excluded.value", list(items))
            for target, closed in (remote_closed or {}).items():
                _ready.set_remote_closed(t.tx, target, closed)
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

    def emit(self, type_: str, bead_id: str | None = None,
             payload: Mapping[str, Any] | None = None) -> int:
        """Record an event that is not a bead change (town actions use this)."""
        with self.transaction() as t:
            return t.emit(type_, bead_id, payload)

    def recompute_ready_state(self) -> int:
        """Rebuild the ready/blocked columns from scratch; returns rows that were wrong."""
        with self.store.write() as tx:
            return _ready.recompute_all(tx)
