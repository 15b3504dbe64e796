"""``gt seance``: what an earlier session of an agent did.

An agent's sessions are numbered from 1 by its ``session.started`` events.  For
one session this gathers its events (from its ``session.started`` to the next
one: what the agent did as its actor and what the town did to it), its last
output and its handoff notes.  The last output of a session is kept when it
ends (:func:`keep_output`, called by :meth:`Sessions.stop` and before a dead
session is started again) in ``.gt/seance/AGENT/N.txt`` (owner-only: a screen
may show secrets); the session still running is read from its screen.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, UsageError

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from .config import AgentConfig
    from .core import Town
    from .sessions import Sessions

__all__ = ["sessions_of", "session_number", "keep_output", "output_path", "seance",
           "render_seance", "KEEP_LINES", "MAX_EVENTS"]

#: how many lines of a session's screen are kept when it ends
KEEP_LINES = 200
#: at most this many of a session's events are shown (the newest)
MAX_EVENTS = 500
_EVENT_SCAN = 50_000  # events read past a session's start, at most


def sessions_of(led: Ledger, agent: str) -> list[dict[str, Any]]:
    """The agent's sessions, oldest first: ``number``, ``seq``, ``started``, ``ended``…"""
    out: list[dict[str, Any]] = []
    for ev in led.events(types=["session.started", "session.stopped", "handoff"]):
        p = ev.get("payload") or {}
        if p.get("agent") != agent:
            continue
        if ev["type"] == "session.started":
            if out and out[-1]["ended"] is None:
                out[-1].update(ended=ev["ts"], end_seq=ev["seq"], how="started again")
            out.append({"number": len(out) + 1, "seq": ev["seq"], "started": ev["ts"],
                        "pid": p.get("pid"), "provider": p.get("provider"),
                        "program": p.get("program"), "ended": None, "end_seq": None,
                        "how": None, "handoffs": []})
        elif not out:
            continue
        elif ev["type"] == "session.stopped" and out[-1]["ended"] is None:
            out[-1].update(ended=ev["ts"], end_seq=ev["seq"], how="stopped")
        elif ev["type"] == "handoff":
            out[-1]["handoffs"].append({k: p.get(k) for k in ("notes", "hook", "step", "ts")})
            if out[-1]["ended"] is None:
                out[-1]["how"] = "handed off"
    return out


def session_number(led: Ledger, agent: str) -> int:
    """The number of the agent's latest session (0: it never had one)."""
    return sum(1 for ev in led.events(types=["session.started"])
               if (ev.get("payload") or {}).get("agent") == agent)


def output_path(town: Town, agent: str, number: int) -> str:
    """Where the last output of session ``number`` of ``agent`` is kept."""
    return os.path.join(town.gt_dir, "seance", agent, f"{number}.txt")


def keep_output(sessions: Sessions, agent: AgentConfig) -> str | None:
    """Save the session's last screen as its seance output; the path (None: nothing)."""
    from .text import sanitize

    town = sessions.town
    try:
        screen = sessions.provider_for(agent).peek(sessions.session_name(agent), KEEP_LINES)
        with town.ledger() as led:
            number = session_number(led, agent.name)
    except Exception:  # noqa: BLE001 - keeping a screen must never stop a stop
        return None
    if number == 0 or not screen.strip():
        return None
    lines = [sanitize(line) for line in screen.splitlines()[-KEEP_LINES:]]
    path = output_path(town, agent.name, number)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    os.chmod(os.path.dirname(path), 0o700)
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines).rstrip() + "\n")
    os.replace(tmp, path)
    return path


def _events_of(led: Ledger, town: Town, agent: AgentConfig,
               session: dict[str, Any]) -> list[dict[str, Any]]:
    actor = town.actor_of(agent)
    end = session["end_seq"]
    out: list[dict[str, Any]] = []
    for ev in led.events(since_seq=int(session["seq"]) - 1, limit=_EVENT_SCAN):
        if end is not None and ev["seq"] > end:
            break
        p = ev.get("payload") or {}
        if ev["actor"] == actor or p.get("agent") == agent.name or p.get("actor") == actor:
            out.append(ev)
    return out[-MAX_EVENTS:]


def seance(town: Town, led: Ledger, sessions: Sessions, name: str,
           number: int | None = None) -> dict[str, Any]:
    """One session of agent ``name`` (default: the one before the latest, else the latest)."""
    agent = town.agent(name)
    history = sessions_of(led, agent.name)
    if not history:
        raise NotFoundError(f"agent {agent.name} never had a session")
    if number is None:
        number = len(history) - 1 if len(history) > 1 else 1
    if not 1 <= number <= len(history):
        raise UsageError(f"agent {agent.name} had sessions 1 to {len(history)}, "
                         f"not {number}")
    s = history[number - 1]
    path = output_path(town, agent.name, number)
    output, where = "", None
    if os.path.exists(path):
        with open(path, encoding="utf-8", errors="replace") as fh:
            output, where = fh.read(), path
    elif number == len(history):  # the latest: still on its screen
        try:
            output = sessions.provider_for(agent).peek(sessions.session_name(agent),
                                                       KEEP_LINES)
            where = "screen"
        except Exception:  # noqa: BLE001 - no screen: nothing to show
            output = ""
    return {"agent": agent.name, "session": number, "sessions": len(history),
            "started": s["started"], "ended": s["ended"], "how": s["how"] or
            ("running" if number == len(history) else None), "pid": s["pid"],
            "program": s["program"], "handoffs": s["handoffs"],
            "events": _events_of(led, town, agent, s),
            "output": output, "output_from": where}


def render_seance(data: dict[str, Any], ask: str | None = None) -> str:
    """The text of ``gt seance``; with ``ask``, framed as material for a model to answer."""
    from .status import render_event
    from .text import sanitize

    out: list[str] = []
    if ask:
        out += ["You are asked about an earlier session of a coding agent. Answer from the "
                "material below only; say so when it does not tell.", "",
                f"Question: {sanitize(ask)}", ""]
    out.append(f"# Session {data['session']} of {data['sessions']} of agent {data['agent']}")
    ended = f"ended {data['ended']}" if data["ended"] else "not ended"
    out.append(f"started {data['started']}, {ended} ({data['how'] or 'unknown'}); "
               f"program {sanitize(str(data['program']))}")
    for h in data["handoffs"]:
        out += ["", f"## Handoff notes (hook {h.get('hook') or '-'}, step {h.get('step') or '-'})"]
        out.append(str(h.get("notes") or "(none)"))
    out += ["", f"## Events ({len(data['events'])})"]
    out += [render_event(ev) for ev in data["events"]] or ["(none)"]
    src = data["output_from"] or "nothing kept"
    out += ["", f"## Last output ({src})"]
    out.append(data["output"].rstrip() or "(none)")
    return "\n".join(out) + "\n"

