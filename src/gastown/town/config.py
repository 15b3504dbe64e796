"""``town.toml`` as the town reads it: the schema of :mod:`gastown.config` plus
the options of the providers the town runs sessions under.

The whole schema (the controller's policies included) lives in
:mod:`gastown.config`, one layer below the town and the controller; this module
re-exports it and adds the one check that needs the town's provider registry:
each ``[providers.NAME]`` table is validated by that provider.
"""

from __future__ import annotations

from typing import Any

from ..config import (
    CONFIG_FILE,
    NAME_RE,
    AgentConfig,
    PoolConfig,
    RigConfig,
    RoleConfig,
    TownConfig,
    TownSettings,
    append_table,
    check_name,
    default_config_text,
    remove_table,
    toml_value,
)
from ..config import load_config as _load_config
from ..config import parse_config as _parse_config

__all__ = [
    "CONFIG_FILE", "NAME_RE", "TownSettings", "RigConfig", "AgentConfig", "PoolConfig",
    "RoleConfig", "TownConfig", "load_config", "parse_config", "default_config_text",
    "append_table", "remove_table", "toml_value", "check_name",
]


def load_config(path: str) -> TownConfig:
    """Read and validate ``town.toml`` at ``path`` (provider options included)."""
    return _check_provider_options(_load_config(path))


def parse_config(data: dict[str, Any], path: str = CONFIG_FILE) -> TownConfig:
    """Validate parsed TOML ``data`` into a :class:`TownConfig` (``path`` is for messages)."""
    return _check_provider_options(_parse_config(data, path))


def _check_provider_options(cfg: TownConfig) -> TownConfig:
    # the providers (every shipped one) are imported only when a [providers.NAME]
    # table needs them: `gt prime` and `gt hook` load the town and start no session
    if cfg.providers:
        from .providers import check_provider_options

        check_provider_options(cfg)
    return cfg
