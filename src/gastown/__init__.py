"""gastown: a work-execution engine for teams of coding agents.

The public API is re-exported here and loaded lazily (PEP 562), so that the
hot ``bd`` commands import only the ledger and the standard library.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # type checkers only; the hot path never imports typing
    from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Ledger": "gastown.ledger.core",
    "Filter": "gastown.ledger.core",
    "Bead": "gastown.ledger.model",
    "Store": "gastown.ledger.store",
    "open_store": "gastown.ledger.store",
    "export_jsonl": "gastown.ledger.jsonl",
    "import_jsonl": "gastown.ledger.jsonl",
    "ImportReport": "gastown.ledger.jsonl",
    "GastownError": "gastown.errors",
    "UsageError": "gastown.errors",
    "NotFoundError": "gastown.errors",
    "ConflictError": "gastown.errors",
    "ValidationError": "gastown.errors",
    "CycleError": "gastown.errors",
    "ImportFormatError": "gastown.errors",
    "StorageError": "gastown.errors",
    "NotInitializedError": "gastown.errors",
    "FormulaError": "gastown.errors",
    "TownError": "gastown.errors",
    "ProviderError": "gastown.errors",
    "cook": "gastown.chemistry.api",
    "pour": "gastown.chemistry.api",
    "wisp": "gastown.chemistry.api",
    "bond": "gastown.chemistry.bonding",
    "squash": "gastown.chemistry.digest",
    "burn": "gastown.chemistry.digest",
    "distill": "gastown.chemistry.distilling",
    "current_step": "gastown.chemistry.inspect",
    "pin": "gastown.hook",
    "unpin": "gastown.hook",
    "hooked": "gastown.hook",
    "Town": "gastown.town.core",
    "init_town": "gastown.town.core",
    "TownConfig": "gastown.town.config",
    "AgentConfig": "gastown.town.config",
    "Sessions": "gastown.town.sessions",
    "SessionInfo": "gastown.town.sessions",
    "sling": "gastown.town.slinging",
    "SlingResult": "gastown.town.slinging",
    "nudge_agent": "gastown.town.nudge",
    "add_rig": "gastown.town.rigs",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from .chemistry.api import cook, pour, wisp
    from .chemistry.bonding import bond
    from .chemistry.digest import burn, squash
    from .chemistry.distilling import distill
    from .chemistry.inspect import current_step
    from .errors import (ConflictError, CycleError, FormulaError, GastownError,
                         ImportFormatError, NotFoundError, NotInitializedError, ProviderError,
                         StorageError, TownError, UsageError, ValidationError)
    from .hook import hooked, pin, unpin
    from .ledger.core import Filter, Ledger
    from .ledger.jsonl import ImportReport, export_jsonl, import_jsonl
    from .ledger.model import Bead
    from .ledger.store import Store, open_store
    from .town.config import AgentConfig, TownConfig
    from .town.core import Town, init_town
    from .town.nudge import nudge_agent
    from .town.rigs import add_rig
    from .town.sessions import SessionInfo, Sessions
    from .town.slinging import SlingResult, sling


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gastown' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
