"""What every part of the :class:`~.core.Ledger` stands on: its store, actor and transactions.

:class:`LedgerBase` holds the backend (:class:`~.store.Store`), the acting
identity and the id prefix, and hands out transactions
(:meth:`LedgerBase.transaction`) and read snapshots.  The reads
(:mod:`.reads`, :mod:`.graph`) and the one-transaction writes (:mod:`.writes`)
build on it; :mod:`.core` puts them together with opening and initialising.
"""

from __future__ import annotations

from contextlib import contextmanager

from . import discovery, txhook
from .ops import Txn
from .queries import Reads
from .store import Store, Tx

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only: the hot path skips it
    from collections.abc import Iterator

__all__ = ["LedgerBase"]


class LedgerBase:
    """A ledger's store, actor and prefix, and its transactions (no queries of its own)."""

    def __init__(self, store: Store, actor: str | None = None,
                 beads_dir: str | None = None) -> None:
        self.store = store
        self.actor = actor or discovery.default_actor()
        self.beads_dir = beads_dir
        self._prefix: str | None = None
        #: no ``issue_prefix`` in config (a half-made ledger): new ids are refused
        self._prefix_missing = False

    def close(self) -> None:
        """Release the backend's connections."""
        self.store.close()

    @property
    def prefix(self) -> str:
        """The id prefix new beads get (``issue_prefix`` in config)."""
        if self._prefix is None:
            with self.store.read() as tx:
                return self._prefix_in(tx)
        return self._prefix

    def _prefix_in(self, tx: Tx) -> str:
        """:attr:`prefix`, read the first time in the caller's open transaction (a
        command then pays for no transaction of its own just to learn it)."""
        if self._prefix is None:
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
        with (self.store.durable() if durable else self.store.write()) as tx:
            txn = Txn(tx, actor or self.actor, self._prefix_in(tx))
            txn.prefix_missing = self._prefix_missing
            yield txn
            txhook.run(txn)  # in the transaction: its records commit with the change

    @contextmanager
    def snapshot(self) -> Iterator[Reads]:
        """A consistent read-only view for several named queries (:class:`.queries.Reads`)."""
        with self.store.read() as tx:
            yield Reads(tx)
