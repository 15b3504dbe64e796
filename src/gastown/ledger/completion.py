"""What runs when a molecule closes itself: hooks found by name, not by import.

When the last open step of a molecule closes, the molecule closes in the same
transaction and every completion hook runs there too, with the transaction and
the molecule's id.  The ledger names no upper layer: hooks are registered in
the entry-point group ``gastown.molecule_complete`` (``name = "module:function"``)
-- gastown's own ``pyproject.toml`` registers the chemistry's squash on
``[squash] trigger = "on_complete"`` there.  A source checkout without installed metadata uses the
shipped hooks by the same names.  Hooks are loaded once per process, the first
time a molecule completes (never on the hot path of a plain ``bd close``).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

__all__ = ["HOOK_GROUP", "run_hooks"]

HOOK_GROUP = "gastown.molecule_complete"
#: the shipped hooks, as registered in pyproject.toml (the fallback without metadata)
_SHIPPED = {"squash": "gastown.chemistry.digest:auto_squash"}


@functools.lru_cache(maxsize=1)
def _installed() -> dict[str, Callable[[Any, str], Any]]:
    from importlib import metadata

    targets: dict[str, str] = {}
    try:
        for ep in metadata.entry_points(group=HOOK_GROUP):
            targets.setdefault(ep.name, ep.value)
    except Exception:  # broken metadata of another distribution: the shipped hooks remain
        pass
    for name, target in _SHIPPED.items():
        targets.setdefault(name, target)
    hooks: dict[str, Callable[[Any, str], Any]] = {}
    for name, target in targets.items():
        module, _, attr = target.partition(":")
        hooks[name] = getattr(importlib.import_module(module), attr)
    return hooks


def run_hooks(txn: Any, molecule_id: str) -> None:
    """Run every completion hook for ``molecule_id`` inside ``txn`` (the closing transaction)."""
    for hook in _installed().values():
        hook(txn, molecule_id)
