"""The ``[nodes]`` table of ``town.toml``: a town over several machines (``gt up --node``).

Which node runs an agent is ``node = "NAME"`` on the agent or pool; the rest of
how nodes agree (heartbeats, the leader's lease) is tuned here.  Every mistake
is one :class:`ValidationError` naming the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .values import checked_table, integer, number

__all__ = ["NodePolicy", "parse_nodes"]


@dataclass(frozen=True)
class NodePolicy:
    """``[nodes]``: the leader's lease, the heartbeat and a node's default capacity."""

    lease: float = 15.0       # seconds a leader leads (and a node counts alive) unrenewed
    heartbeat: float = 0.0    # seconds between heartbeats; 0: a third of the lease
    capacity: int = 16        # agents a node runs when `gt up --capacity` does not say

    @property
    def beat(self) -> float:
        """The heartbeat interval actually used."""
        return self.heartbeat or self.lease / 3.0


def parse_nodes(data: dict[str, Any], path: str = "town.toml") -> NodePolicy:
    """Validate the ``[nodes]`` table of parsed town.toml data (defaults when absent)."""
    where = f"{path}: nodes"
    t = checked_table(data.get("nodes", {}), {"lease", "heartbeat", "capacity"}, where)
    lease = number(t, "lease", where, 15.0, 1.0, 3600.0)
    heartbeat = number(t, "heartbeat", where, lease / 3.0, 0.1, lease / 2.0)
    return NodePolicy(lease=lease, heartbeat=heartbeat,
                      capacity=integer(t, "capacity", where, 16, 1, 100000))
