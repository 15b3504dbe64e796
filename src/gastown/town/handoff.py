"""``gt handoff``: an agent hands its work to a fresh session of itself.

An agent near its context limit (or at any time) writes a *handoff record*: its
hook, its current step, its notes and the session it came from.  The record is
a kv entry ``gt.handoff.AGENT`` and a ``handoff`` event, written in one
transaction.  Then the agent's session is stopped (its last screen kept for
``gt seance``) and started again; the new session's ``gt prime`` shows the notes
with the step to carry on with.

Run from inside the session being replaced, ``gt handoff`` cannot restart that
session itself (stopping it would stop ``gt handoff``), so a detached restarter
(``python -m gastown.town.handoff``) does it: a process in a kernel session of
its own, without the session's marker variables, so that stopping the session
does not stop it.  Nothing here depends on the agent's program: every preset is
restarted the way ``gt session restart`` starts it, and every preset primes itself
(its setup hook or its first prompt) with ``gt prime``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import unicodedata
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from .config import AgentConfig
    from .core import Town

__all__ = ["HANDOFF_KEY", "MAX_NOTES", "write_handoff", "latest_handoff", "prime_handoff",
           "restart_session", "handoff", "main"]

#: the kv key prefix of each agent's latest handoff record
HANDOFF_KEY = "gt.handoff."
#: the most characters of notes a handoff keeps
MAX_NOTES = 32_000


def _clean_notes(text: str) -> str:
    """Notes with control characters taken out (line breaks and tabs kept)."""
    return "".join(ch for ch in text if ch in "\n\t"
                   or unicodedata.category(ch) != "Cc").strip()


def write_handoff(town: Town, led: Ledger, agent: AgentConfig, notes: str, *,
                  actor: str | None = None) -> dict[str, Any]:
    """Record the agent's handoff (kv record and event in one transaction); return it."""
    from .seance import session_number
    from .work import current_work, molecule_view

    if len(notes) > MAX_NOTES:
        raise ValidationError(f"handoff notes: {len(notes)} characters, at most {MAX_NOTES} "
                              "(put the rest in a file in the worktree and name it)")
    who = town.actor_of(agent)
    work = current_work(led, who, agent.name)
    mol = molecule_view(led, work, who) if work is not None else None
    step = mol["current"] if mol else None
    record = {"agent": agent.name, "session": session_number(led, agent.name),
              "hook": work["id"] if work else None,
              "hook_title": work["title"] if work else None,
              "step": step["id"] if step else None,
              "step_title": step["title"] if step else None,
              "notes": _clean_notes(notes), "ts": time.time()}
    with led.transaction(actor) as t:
        t.kv_put(HANDOFF_KEY + agent.name, json.dumps(record))
        t.emit("handoff", work["id"] if work else None, record)
    return record


def latest_handoff(led: Ledger, agent: str) -> dict[str, Any] | None:
    """The agent's latest handoff record, or None."""
    try:
        value = json.loads(led.kv_get(HANDOFF_KEY + agent) or "null")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def prime_handoff(led: Ledger, agent: str) -> dict[str, Any] | None:
    """The handoff ``gt prime`` shows: one written by this session or the one before."""
    from .seance import session_number

    record = latest_handoff(led, agent)
    if record is None:
        return None
    current = session_number(led, agent)
    given = record.get("session")
    return record if isinstance(given, int) and given >= current - 1 else None


def restart_session(town: Town, agent: AgentConfig, *, actor: str | None = None) -> None:
    """Stop the agent's session (its screen kept) and start a fresh one on its work."""
    from .rigs import ensure_worktree
    from .sessions import Sessions
    from .work import current_work

    sessions = Sessions(town)
    sessions.check(agent)
    sessions.stop(agent, actor=actor)
    with town.ledger(actor) as led:
        work = current_work(led, town.actor_of(agent), agent.name)
    branch = town.branch_of(agent, work["id"]) if work else f"{agent.name}/work"
    ensure_worktree(town, agent, branch)
    _info, started = sessions.start(agent, actor=actor)
    if started:
        sessions.confirm_started(agent)


def _detach(town: Town, agent: AgentConfig, actor: str | None) -> None:
    """Start the restarter outside the session (see the module's docstring)."""
    env = {k: v for k, v in os.environ.items() if k not in ("GT_TOWN", "GT_AGENT", "TMUX",
                                                            "TMUX_PANE")}
    argv = [sys.executable, "-m", "gastown.town.handoff", "--fork", town.root, agent.name,
            actor or ""]
    # the restarter forks once more and this child exits: the grandchild is nobody's
    # descendant in the session when the session's processes are stopped
    subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, start_new_session=True, check=False, timeout=30)


def handoff(town: Town, led: Ledger, agent: AgentConfig, notes: str, *,
            restart: bool = True, actor: str | None = None,
            inside: bool = False) -> dict[str, Any]:
    """Write the handoff record, then restart the agent's session (``restart``).

    From inside the agent's own session (``inside``: the caller knows, e.g. from
    the session's ``GT_AGENT``/``GT_TOWN``) the restart is left to a detached
    restarter (``restart`` in the result is ``"detached"``); from outside it is
    done before this returns (``"done"``).
    """
    record = write_handoff(town, led, agent, notes, actor=actor)
    if not restart:
        return {**record, "restart": "none"}
    if inside:
        _detach(town, agent, actor)
        return {**record, "restart": "detached"}
    restart_session(town, agent, actor=actor)
    return {**record, "restart": "done"}


def _log(town_root: str, line: str) -> None:
    path = os.path.join(town_root, ".gt", "logs", "handoff.log")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {line}\n")


def main(argv: list[str] | None = None) -> int:
    """The restarter: ``python -m gastown.town.handoff [--fork] TOWN AGENT ACTOR``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--fork"]:
        args = args[1:]
        if os.fork() != 0:
            os._exit(0)  # the parent returns at once; the child is re-parented
    if len(args) != 3:
        sys.stderr.write("usage: python -m gastown.town.handoff [--fork] TOWN AGENT ACTOR\n")
        return 2
    root, name, actor = args
    from .core import Town

    try:
        time.sleep(0.3)  # let `gt handoff` print its line and exit first
        town = Town.find(root)
        restart_session(town, town.agent(name), actor=actor or None)
        _log(root, f"{name}: session restarted after its handoff")
        return 0
    except Exception as exc:  # noqa: BLE001 - nobody sees this process: log it
        _log(root, f"{name}: restart after handoff failed: {type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
