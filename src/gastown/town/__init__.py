"""The town (DESIGN §5): configuration, rigs, agents, sessions, hooks, mail, nudges.

Nothing in this package names a role: roles are data (``gastown/data/roles/`` and
``town.toml``).  Importing the package is cheap; the modules it re-exports are
loaded on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Town": "gastown.town.core",
    "init_town": "gastown.town.core",
    "TownConfig": "gastown.town.config",
    "AgentConfig": "gastown.town.config",
    "load_config": "gastown.town.config",
    "Sessions": "gastown.town.sessions",
    "SessionInfo": "gastown.town.sessions",
    "sling": "gastown.town.slinging",
    "SlingResult": "gastown.town.slinging",
    "done": "gastown.town.handin",
    "nudge_agent": "gastown.town.nudge",
    "add_rig": "gastown.town.rigs",
    "remove_rig": "gastown.town.rigs",
    "prime_data": "gastown.town.prime",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gastown.town' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
