"""The controller's policies, as the controller imports them.

The ``[controller]``, ``[patrol]`` and ``[merge]`` tables are part of the
``town.toml`` schema, which lives in :mod:`gastown.config.policies` (below the
town and the controller); this module re-exports it.
"""

from __future__ import annotations

from ..config.policies import (
    TABLES,
    ControllerPolicy,
    MergePolicy,
    PatrolPolicy,
    Policies,
    parse_policies,
)
from ..config.values import parse_command

__all__ = ["ControllerPolicy", "PatrolPolicy", "MergePolicy", "Policies", "parse_policies",
           "parse_command", "TABLES"]
