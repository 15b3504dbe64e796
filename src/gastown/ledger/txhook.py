"""A generic seam: code named by a config row runs inside each write transaction.

The ledger imports nothing above itself (DESIGN §6), yet some layers must write
in the same transaction as the change they describe (the entity chains of
:mod:`gastown.chains` record every claim and completion atomically with it).
A ledger whose ``config`` table names ``chains.hook = "package.module:function"``
calls that function with the open :class:`~.ops.Txn` and the events it emitted,
just before commit; whatever it raises rolls the whole transaction back.

A ledger without the row pays one primary-key lookup per write transaction
that emitted an event, and imports nothing.
"""

from __future__ import annotations

import importlib

from ..errors import ValidationError
from .chainlog import HOOK_KEY

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only: the hot path skips it
    from collections.abc import Callable
    from typing import Any

    from .ops import Txn

__all__ = ["run", "load"]

_loaded: dict[str, Callable[..., Any]] = {}


def load(spec: str) -> Callable[..., Any]:
    """The function ``module:name`` names (imported once per process)."""
    fn = _loaded.get(spec)
    if fn is None:
        module, _, name = spec.partition(":")
        if not module.startswith("gastown."):
            # a ledger file is data: it may name one of our hooks, never any module
            # (importing an arbitrary installed module runs its code)
            raise ValidationError(f"ledger config {HOOK_KEY} = {spec[:200]!r}: only a "
                                  "gastown module may be named; fix it with "
                                  f"'bd config set {HOOK_KEY} …' or unset it")
        try:
            fn = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError) as exc:
            raise ValidationError(f"ledger config {HOOK_KEY} = {spec!r}: cannot load it "
                                  f"({exc}); fix it with 'bd config set {HOOK_KEY} …' or "
                                  f"unset it") from None
        if not callable(fn):
            raise ValidationError(f"ledger config {HOOK_KEY} = {spec!r} is not a function")
        _loaded[spec] = fn
    return fn


def run(txn: Txn) -> None:
    """Call the configured hook with ``txn`` and its events, if both exist."""
    if not txn.emitted or all(e[0] == "config.set" for e in txn.emitted):
        return  # nothing happened, or only configuration: a broken hook stays repairable
    spec = txn.tx.scalar("SELECT value FROM config WHERE key = ?", (HOOK_KEY,))
    if spec:
        events, txn.emitted = txn.emitted, []
        load(str(spec))(txn, events)
