"""Which node of a town this folder is, and whether an agent's session may start here.

A town spread over several machines (``gt up --node NAME``, one PostgreSQL
ledger) has one town folder per node.  The node's controller writes its name
to ``.gt/node.json``; the leader places every agent with work on one node
(:mod:`gastown.ledger.nodes`).  A sling from any folder pins the work in the
shared ledger, but starts the agent's session only on the node the agent is
placed on -- elsewhere that node's controller starts it, woken by the sling's
event.  A town with no live node (one machine, or SQLite) starts sessions
where it always did.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from ..ledger.nodes import placements, read_board, supports_nodes

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from .config import AgentConfig
    from .core import Town

__all__ = ["NODE_FILE", "local_node", "write_local_node", "session_node"]

NODE_FILE = "node.json"


def local_node(town: Town) -> str | None:
    """The node this town folder runs as (``.gt/node.json``), or None."""
    try:
        with open(os.path.join(town.gt_dir, NODE_FILE), encoding="utf-8") as fh:
            data: dict[str, Any] = json.load(fh)
    except (OSError, ValueError):
        return None
    name = data.get("name")
    return name if isinstance(name, str) and name else None


def write_local_node(town: Town, name: str, instance: str) -> None:
    """Record that this folder runs as node ``name`` (atomically)."""
    path = town.runtime(NODE_FILE)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"name": name, "instance": instance, "pid": os.getpid()}, fh)
    os.replace(tmp, path)


def session_node(town: Town, led: Ledger, agent: AgentConfig) -> str | None:
    """Where ``agent``'s session belongs: None means here (no live node, a one-machine
    town); otherwise the name of the node it is placed on ("" when not placed yet)."""
    if not supports_nodes(led):
        return None
    board = read_board(led, town.config.nodes.lease)
    if not any(n["alive"] for n in board["nodes"]):
        return None
    node = str(placements(led).get(agent.name, {}).get("node") or "")
    return None if node and node == local_node(town) else node
