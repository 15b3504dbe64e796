"""The ledger: beads, dependencies, the ready-work rule, events, import/export.

``Ledger`` is the API; ``open_store`` picks a backend by URL; the ready-work
rule lives in :mod:`gastown.ledger.ready`.
"""

from __future__ import annotations

from .core import Filter, Ledger
from .model import Bead
from .store import Store, open_store

__all__ = ["Ledger", "Filter", "Bead", "Store", "open_store"]
