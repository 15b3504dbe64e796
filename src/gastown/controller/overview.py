"""``gt status``'s data: the town's view with what the controller knows added.

The town layer (:func:`gastown.town.status.town_status`) knows agents, hooks
and events; whether the controller runs, the merge queue's order and the
convoys are the controller's, so they are gathered here and passed down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..town.observe import PROMPT_QUIET_S
from ..town.status import town_status
from .convoy import list_convoys
from .mergeq import describe, queue
from .service import controller_info

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from ..town.core import Town

__all__ = ["town_overview"]


def town_overview(town: Town, led: Ledger, events: int = 10, *, everything: bool = False,
                  quiet_after: float = PROMPT_QUIET_S) -> dict[str, Any]:
    """Agents, controller, merge queue, convoys and recent events (``gt status --json``)."""
    aging = town.config.policies.merge.aging
    requests = [describe(b, aging)
                for b in queue(led, aging, statuses=("open", "in_progress", "blocked"))]
    data = town_status(town, led, events, everything=everything, quiet_after=quiet_after,
                       controller=controller_info(town), merge_requests=requests,
                       convoys=list_convoys(led))
    nodes = nodes_overview(town, led)
    if nodes is not None:  # a town over several nodes (gt up --node)
        data["nodes"] = nodes
        for agent in data["agents"]:
            agent["node"] = nodes["placement"].get(agent["name"])
    return data


def nodes_overview(town: Town, led: Ledger) -> dict[str, Any] | None:
    """Nodes (alive/dead, heartbeat age), the leader and its lease, each agent's node;
    None for a town that never ran a node (SQLite, or a one-machine town)."""
    from ..ledger.nodes import placements, read_board

    board = read_board(led, town.config.nodes.lease)
    if not board["nodes"]:
        return None
    placed = {agent: str(rec["node"]) for agent, rec in placements(led).items()}
    return {**board, "lease_s": town.config.nodes.lease, "placement": placed}
