"""The :class:`Ledger`: the one Python API over a beads store.

Everything the ``bd`` command line does is a method here.  Writes go through
:meth:`Ledger.transaction`, which hands out a :class:`~.ops.Txn` bound to one
backend transaction: the change, its event and the ready-state refresh commit
together or not at all (DESIGN §2.4).

The class is put together from parts: :mod:`.base` (store, actor, transactions),
:mod:`.writes` (one-transaction writes), :mod:`.reads` and :mod:`.graph` (queries)
and :mod:`.bootstrap` (``init``); this module adds opening and initialising.
"""

from __future__ import annotations

import os

from . import discovery
from .bootstrap import DB_FILES, init_ledger, refuse_links
from .graph import LedgerGraph
from .query import Filter
from .store import open_store
from .writes import LedgerWrites

__all__ = ["Ledger", "Filter"]


class Ledger(LedgerWrites, LedgerGraph):
    """A beads ledger opened on one backend.

    Open one with :meth:`open` (discovery like git, or an explicit URL/path) or
    create one with :meth:`init`.  Every mutating method is one transaction.
    """

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
            refuse_links(beads_dir, DB_FILES)
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
        return init_ledger(cls, directory, prefix=prefix, db=db, actor=actor,
                           destroy_existing=destroy_existing, attach=attach)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
