"""``gt status`` and ``gt feed``: agents, their hooks, sessions and recent events.

Text meant for a terminal passes through :func:`gastown.town.nudge.sanitize`:
a bead title can carry escape sequences, and a status screen must not run them.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .sessions import Sessions
from .text import sanitize
from .work import current_work, molecule_view

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from .core import Town

__all__ = ["town_status", "render_status", "render_event", "render_feed"]


def town_status(town: Town, led: Ledger, events: int = 10) -> dict[str, Any]:
    """Agents (with hook, step and session), rigs and the latest events."""
    sessions = Sessions(town)
    agents = []
    for info in sessions.list():
        agent = town.agent(info.agent)
        actor = town.actor_of(agent)
        work = current_work(led, actor, agent.name)
        mol = molecule_view(led, work, actor) if work is not None else None
        step = mol["current"] if mol else None
        agents.append({
            "name": agent.name, "actor": actor, "rig": agent.rig, "role": agent.role,
            "preset": agent.preset, "pool": agent.pool, "session": info.to_json(),
            "hook": {"id": work["id"], "title": work["title"], "status": work["status"]}
            if work else None,
            "progress": {"closed": mol["closed"], "total": mol["total"]} if mol else None,
            "step": {"id": step["id"], "title": step["title"], "status": step["status"]}
            if step else None,
        })
    last = led.last_event_seq()
    recent = led.events(since_seq=max(0, last - events)) if events else []
    from ..controller.service import controller_info

    with led.store.read() as tx:
        queued = dict(tx.query("SELECT status, COUNT(*) FROM issues WHERE issue_type = "
                               "'merge-request' AND status <> 'closed' GROUP BY status"))
        convoys = tx.scalar("SELECT COUNT(*) FROM issues WHERE issue_type = 'convoy' "
                            "AND status <> 'closed'")
    return {"town": town.name, "root": town.root, "provider": town.config.town.provider,
            "rigs": sorted(town.config.rigs), "agents": agents, "events": recent,
            "controller": controller_info(town),
            "merge_queue": {"queued": int(queued.get("open", 0)),
                            "landing": int(queued.get("in_progress", 0)),
                            "sent_back": int(queued.get("blocked", 0))},
            "convoys_in_flight": int(convoys or 0)}


def _ago(ts: float | None) -> str:
    if not ts:
        return "-"
    delta = max(0, int(time.time() - ts))
    if delta < 60:
        return f"{delta}s ago"
    if delta < 3600:
        return f"{delta // 60}m ago"
    return f"{delta // 3600}h ago"


def render_event(ev: dict[str, Any]) -> str:
    """One line for an event: seq, time, type, actor, bead and a short payload."""
    payload = ev.get("payload") or {}
    bits = []
    for key in ("agent", "title", "subject", "to", "status", "reason", "branch", "formula"):
        if key in payload and payload[key] not in (None, "", {}):
            bits.append(f"{key}={sanitize(str(payload[key]))[:60]}")
    ts = str(ev.get("ts") or "")[11:19]
    return (f"{ev['seq']:>6} {ts} {ev['type']:<16} {sanitize(str(ev.get('actor') or '')):<28} "
            f"{ev.get('bead_id') or '-':<14} {' '.join(bits)}").rstrip()


def render_status(data: dict[str, Any]) -> str:
    """The text of ``gt status``."""
    out = [f"Town {data['town']}  ({data['root']})",
           f"Rigs: {', '.join(data['rigs']) or '(none: gt rig add NAME PATH)'}"]
    ctl = data.get("controller") or {}
    if ctl.get("running"):
        out.append(f"Controller: up (pid {ctl['pid']}, last pass {_ago(ctl.get('last_tick'))})")
    elif ctl:
        out.append("Controller: down (start it with gt up)")
    mq = data.get("merge_queue")
    if mq is not None:
        out.append(f"Merge queue: {mq['queued']} queued, {mq['landing']} landing, "
                   f"{mq['sent_back']} sent back; convoys in flight: "
                   f"{data.get('convoys_in_flight', 0)}")
    out.append("")
    if not data["agents"]:
        out.append("No agents yet: gt agent add NAME --rig RIG --preset PRESET")
    else:
        out.append(f"{'AGENT':<18} {'SESSION':<9} {'ACTIVE':<9} {'HOOK':<14} {'STEP':<16} TITLE")
        for a in data["agents"]:
            s = a["session"]
            hook = a["hook"]
            step = a["step"]
            prog = a["progress"]
            title = sanitize(hook["title"])[:40] if hook else ""
            step_txt = (f"{step['id']}" if step else "") + (
                f" {prog['closed']}/{prog['total']}" if prog else "")
            out.append(f"{a['name']:<18} {s['state']:<9} {_ago(s['last_activity']):<9} "
                       f"{hook['id'] if hook else '-':<14} {step_txt or '-':<16} {title}")
    if data["events"]:
        out += ["", "Recent events:"]
        out += [render_event(ev) for ev in data["events"]]
    return "\n".join(out) + "\n"


def render_feed(data: dict[str, Any], width: int = 120, height: int = 40) -> str:
    """One screen: the status table, then as many recent events as fit."""
    lines = render_status({**data, "events": []}).rstrip("\n").splitlines()
    room = max(3, height - len(lines) - 3)
    events = data["events"][-room:]
    lines += ["", f"Events (last {len(events)}):"]
    lines += [render_event(ev) for ev in events]
    return "\n".join(line[:width] for line in lines[:height]) + "\n"
