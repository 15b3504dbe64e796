"""Nudges: text typed into a live session, safely (DESIGN §5 "Nudge safety").

The text of a nudge is untrusted (it can carry bead titles and mail subjects).
It never reaches a shell: it is cleaned of control characters, cut into chunks,
and handed to tmux as an argument vector in literal mode (``send-keys -l``),
where no key names, no formats and no command separators are interpreted.
Enter is sent on its own afterwards, once the text is seen in the pane.

Modes: ``immediate`` types now; ``queue`` leaves the text for the agent's next
``gt prime`` / ``gt mail check --inject`` (its session hooks); ``wait-idle``
waits until the session has been quiet, then types (queues on timeout).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ..errors import TownError, UsageError
from .providers.base import NudgeResult
from .text import CHUNK_SIZE, chunks, sanitize, tmux_arg

if TYPE_CHECKING:
    from .core import Town

__all__ = ["sanitize", "chunks", "tmux_arg", "nudge_agent", "drain_queue", "MODES",
           "CHUNK_SIZE"]

MODES = ("immediate", "queue", "wait-idle")


# --------------------------------------------------------------- delivery
def _queue_path(town: Town, agent: str) -> str:
    return town.runtime("nudges", f"{agent}.jsonl")


def _enqueue(town: Town, agent: str, text: str, sender: str) -> None:
    record = {"ts": time.time(), "from": sender, "text": text}
    with town.lock(f"nudges-{agent}"), open(_queue_path(town, agent), "a",
                                            encoding="utf-8") as fh:
        fh.write(json.dumps(record, ensure_ascii=False) + "\n")


def drain_queue(town: Town, agent: str) -> list[dict[str, Any]]:
    """Take every queued nudge for ``agent`` (oldest first); the queue is left empty."""
    path = _queue_path(town, agent)
    with town.lock(f"nudges-{agent}"):
        try:
            with open(path, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except FileNotFoundError:
            return []
        os.remove(path)
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a torn write from a crash: skip it rather than fail the hook
    return out


def nudge_agent(town: Town, agent_name: str, text: str, *, mode: str = "immediate",
                timeout: float = 30.0, idle_s: float = 2.0,
                actor: str) -> dict[str, Any]:
    """Nudge an agent's session; returns what happened (and records a ``nudge`` event).

    ``actor`` is the sender, recorded on the event and on a queued nudge.
    """
    from .sessions import Sessions

    if mode not in MODES:
        raise UsageError(f"unknown nudge mode {mode!r}: use one of {', '.join(MODES)}")
    agent = town.agent(agent_name)
    clean = sanitize(text)
    if not clean:
        raise UsageError("nothing to nudge: the text is empty once control characters go")
    sessions = Sessions(town)
    sender = actor
    used = mode
    result = NudgeResult(delivered=False, verified=False, text=clean)
    if mode == "wait-idle":
        used = "immediate" if sessions.wait_idle(agent, timeout, idle_s) else "queue"
    if used == "immediate":
        if not sessions.is_alive(agent):
            raise TownError(f"agent {agent.name} has no running session "
                            "(start it with 'gt session start', or use --mode queue)")
        result = sessions.provider_for(agent).nudge(sessions.session_name(agent), clean)
    else:
        _enqueue(town, agent.name, clean, sender)
        result = NudgeResult(delivered=True, verified=False, text=clean, detail="queued")
    payload = {"agent": agent.name, "mode": mode, "delivered_as": used,
               "delivered": result.delivered, "verified": result.verified,
               "chunks": result.chunks, "text": clean[:500]}
    with town.ledger(sender) as led:
        led.emit("nudge", None, payload)
    return {**asdict(result), "agent": agent.name, "mode": mode, "delivered_as": used}
