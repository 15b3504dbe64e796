"""The schema of ``town.toml``: one layer below the town and the controller.

Everything a person can write in ``town.toml`` is validated here, the
controller's policies (``[controller]``, ``[patrol]``, ``[merge]``) and the
providers' tables (``[providers.NAME]``) included, so that the town and the
controller read one validated :class:`TownConfig` and never each other.  This
package imports nothing of gastown but :mod:`gastown.errors`.

Modules: :mod:`.schema` (the tables and :func:`parse_config`), :mod:`.policies`,
:mod:`.presets`, :mod:`.providers` (provider names by entry point), :mod:`.values`
(the checks every table shares) and :mod:`.edit` (textual edits that keep comments).
"""

from __future__ import annotations

from .edit import append_table, default_config_text, remove_table, toml_value
from .policies import ControllerPolicy, MergePolicy, PatrolPolicy, Policies, parse_policies
from .providers import PROVIDER_GROUP, provider_entries, provider_names
from .schema import (
    CONFIG_FILE,
    AgentConfig,
    PoolConfig,
    RigConfig,
    RoleConfig,
    TownConfig,
    TownSettings,
    load_config,
    parse_config,
)
from .values import NAME_RE, check_name, parse_command

__all__ = [
    "CONFIG_FILE", "NAME_RE", "TownSettings", "RigConfig", "AgentConfig", "PoolConfig",
    "RoleConfig", "TownConfig", "load_config", "parse_config", "default_config_text",
    "append_table", "remove_table", "toml_value", "check_name", "parse_command",
    "ControllerPolicy", "PatrolPolicy", "MergePolicy", "Policies", "parse_policies",
    "PROVIDER_GROUP", "provider_entries", "provider_names",
]
