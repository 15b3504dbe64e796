"""``gt status`` and ``gt feed``: what each agent is doing, what is stuck, and why.

:func:`town_status` gathers the data (``--json`` prints it as is); the render
functions turn it into text, abnormal things first.  Text meant for a terminal
passes through :func:`gastown.town.text.sanitize`: a bead title or a session's
output can carry escape sequences, and a status screen must not run them.
Colour comes from a ``paint(text, colour)`` function the caller passes (the
command line's, which paints only on a terminal without ``NO_COLOR``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .observe import PROMPT_QUIET_S, STATE_ORDER, observe, quarantined
from .sessions import Sessions
from .text import sanitize
from .work import current_work, molecule_view

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from .core import Town

__all__ = ["town_status", "render_status", "render_event", "render_feed", "recent_events",
           "MILESTONES"]

Paint = Callable[[str, str], str]

#: the events ``gt status`` and ``gt feed`` show without ``-v``
MILESTONES = ("bead.closed", "dispatch", "merge.*", "patrol.restarted", "patrol.started",
              "patrol.quarantined", "patrol.released", "session.started", "session.stopped",
              "convoy.created", "convoy.landed", "convoy.stranded", "sling", "done",
              "budget.paused", "budget.resumed", "handoff",
              "controller.started", "controller.stopped")
_MQ_ORDER = {"landing": 1, "queued": 2}  # everything else is sent back: listed first


def _plain(text: str, _colour: str) -> str:
    return text


def recent_events(led: Ledger, count: int, everything: bool = False) -> list[dict[str, Any]]:
    """The last ``count`` events, oldest first: only milestones unless ``everything``."""
    if count <= 0:
        return []
    last = led.last_event_seq()
    if everything:
        return led.events(since_seq=max(0, last - count))
    # the seq of the count-th newest milestone, read backwards along the seq index
    with led.snapshot() as r:
        seq = r.nth_newest_seq(MILESTONES, count)
    since = seq - 1 if seq is not None else 0
    return led.events(since_seq=since, types=MILESTONES)[-count:]


def _agents(town: Town, led: Ledger, quiet_after: float) -> list[dict[str, Any]]:
    sessions = Sessions(town)
    held = quarantined(led)
    agents = []
    for info in sessions.list():
        agent = town.agent(info.agent)
        actor = town.actor_of(agent)
        work = current_work(led, actor, agent.name)
        mol = molecule_view(led, work, actor) if work is not None else None
        step = mol["current"] if mol else None
        seen = observe(sessions, agent, info, held.get(agent.name), quiet_after=quiet_after)
        agents.append({
            "name": agent.name, "actor": actor, "rig": agent.rig, "role": agent.role,
            "preset": agent.preset, "pool": agent.pool, **seen, "session": info.to_json(),
            "hook": {"id": work["id"], "title": work["title"], "status": work["status"]}
            if work else None,
            "progress": {"closed": mol["closed"], "total": mol["total"]} if mol else None,
            "step": {"id": step["id"], "title": step["title"], "status": step["status"]}
            if step else None,
        })
    # abnormal first; a stable sort keeps the configuration's order within a state
    agents.sort(key=lambda a: STATE_ORDER.get(a["state"], 9))
    return agents


def _merge_queue(described: list[dict[str, Any]]) -> dict[str, Any]:
    requests = []
    for d in described:
        mq = d["mq"]
        reason = "" if d["state"] in _MQ_ORDER else str(mq.get("detail") or mq.get("reason")
                                                          or d["state"])
        requests.append({"id": d["id"], "state": d["state"], "status": d["status"],
                         "rig": d["rig"], "base": d["base"], "branch": d["branch"],
                         "author": d["author"], "reason": reason,
                         "files": list(mq.get("files") or [])})
    requests.sort(key=lambda r: _MQ_ORDER.get(r["state"], 0))
    count = {s: sum(1 for r in requests if r["status"] == s)
             for s in ("open", "in_progress", "blocked")}
    return {"queued": count["open"], "landing": count["in_progress"],
            "sent_back": count["blocked"], "requests": requests}


def _convoys(convoys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = [{"id": c["id"], "title": c["title"], "closed": c["closed"], "total": c["total"],
            "stranded": c["stranded"], "target": c["target"]} for c in convoys]
    out.sort(key=lambda c: not c["stranded"])  # stranded work first
    return out


def town_status(town: Town, led: Ledger, events: int = 10, *, everything: bool = False,
                quiet_after: float = PROMPT_QUIET_S, controller: dict[str, Any] | None = None,
                merge_requests: list[dict[str, Any]] | None = None,
                convoys: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Agents (state, last output, hook, step), merge queue, convoys and recent events.

    ``everything``: every recent event, not only milestones.  ``quiet_after``:
    seconds of silence at a prompt after which an agent counts as waiting.  What
    only the controller knows comes in from above (the town never imports the
    controller): ``controller`` (its info), ``merge_requests`` (described queue
    entries) and ``convoys``; each left out is None in the result and not shown.
    :func:`gastown.controller.overview.town_overview` passes all three.
    """
    shown = _convoys(convoys) if convoys is not None else None
    return {"town": town.name, "root": town.root, "provider": town.config.town.provider,
            "rigs": sorted(town.config.rigs), "controller": controller,
            "agents": _agents(town, led, quiet_after),
            "merge_queue": _merge_queue(merge_requests) if merge_requests is not None else None,
            "convoys": shown, "convoys_in_flight": len(shown) if shown is not None else None,
            "events": recent_events(led, events, everything),
            "budgets_paused": _budgets_paused(led)}


def _budgets_paused(led: Ledger) -> list[dict[str, Any]]:
    """Budgets spent this period: what they stop (see :mod:`.budgets`)."""
    from .budgets import paused

    return sorted(paused(led).values(), key=lambda r: str(r.get("key")))


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
    for key in ("agent", "title", "subject", "to", "status", "reason", "why", "detail",
                "branch", "formula"):
        if key in payload and payload[key] not in (None, "", {}):
            bits.append(f"{key}={sanitize(str(payload[key]))[:60]}")
    ts = str(ev.get("ts") or "")[11:19]
    return (f"{ev['seq']:>6} {ts} {ev['type']:<16} {sanitize(str(ev.get('actor') or '')):<28} "
            f"{ev.get('bead_id') or '-':<14} {' '.join(bits)}").rstrip()


_STATE_COLOUR = {"quarantined": "red", "waiting for input": "yellow", "running": "green",
                 "stopped": "dim"}


def _state_colour(a: dict[str, Any]) -> str:
    if a["state"] == "exited":
        return "dim" if a["session"].get("exit_status") in (0, None) else "red"
    return _STATE_COLOUR.get(a["state"], "bold")


def _agent_lines(a: dict[str, Any], paint: Paint) -> list[str]:
    hook, step, prog = a["hook"], a["step"], a["progress"]
    step_txt = (step["id"] if step else "") + (f" {prog['closed']}/{prog['total']}"
                                                if prog else "")
    line = (f"{a['name']:<16} {paint(a['state'].ljust(17), _state_colour(a))} "
            f"{hook['id'] if hook else '-':<14} {step_txt or '-':<18} "
            f"{sanitize(a.get('last_line') or '') or '-'}")
    out = [line.rstrip()]
    if a.get("reason"):
        out.append("  " + paint(f"why: {sanitize(a['reason'])}", _state_colour(a)))
    return out


def _queue_lines(mq: dict[str, Any], paint: Paint) -> list[str]:
    out = [f"Merge queue: {mq['queued']} queued, {mq['landing']} landing, "
           f"{mq['sent_back']} sent back"]
    for r in mq.get("requests", []):
        sent_back = r["state"] not in _MQ_ORDER
        state = paint(f"{'sent back' if sent_back else r['state']:<10}",
                      "red" if sent_back else "bold")
        line = (f"  {r['id']:<14} {state} {sanitize(str(r['branch'] or '-')):<24} "
                f"-> {r['rig']}/{r['base']}")
        if sent_back:
            line += f"  {r['state']}: {sanitize(r['reason'])[:100]}"
        out.append(line)
    return out


def _convoy_lines(convoys: list[dict[str, Any]], paint: Paint) -> list[str]:
    out = [f"Convoys in flight: {len(convoys)}"]
    for c in convoys:
        line = f"  {c['id']:<14} {c['closed']}/{c['total']} closed  {sanitize(c['title'])[:50]}"
        if c["stranded"]:
            line += "  " + paint(f"stranded: {', '.join(c['stranded'])}", "yellow")
        out.append(line)
    return out


def _node_lines(nodes: dict[str, Any], paint: Paint) -> list[str]:
    """The nodes of a town on a shared ledger (``gt up --node``): state, leader, agents."""
    leader = nodes.get("leader") or {}
    placed: dict[str, list[str]] = {}
    for agent, node in sorted((nodes.get("placement") or {}).items()):
        placed.setdefault(str(node), []).append(agent)
    out = []
    for n in nodes.get("nodes") or []:
        state = n["state"] if n["state"] == "alive" else paint(n["state"], "yellow")
        lead = ""
        if leader.get("node") == n["name"] and leader.get("valid"):
            lead = f", leader (term {leader['term']}, lease {leader['expires_in_s']:.1f}s left)"
        agents = ", ".join(placed.get(n["name"], [])) or "no agents"
        out.append(f"Node {sanitize(str(n['name']))}: {state} (heartbeat "
                   f"{n['heartbeat_age_s']:.1f}s ago, capacity {n['capacity']}{lead}): "
                   f"{sanitize(agents)}")
    if not leader.get("valid"):
        out.append("  " + paint("no leader: the merge queue waits until a node takes the "
                                "lease", "yellow"))
    return out


def render_status(data: dict[str, Any], paint: Paint | None = None) -> str:
    """The text of ``gt status`` (``paint`` colours failures; default: no colour)."""
    paint = paint or _plain
    out = [f"Town {data['town']}  ({data['root']})",
           f"Rigs: {', '.join(data['rigs']) or '(none: gt rig add NAME PATH)'}"]
    ctl = data.get("controller") or {}
    if ctl.get("running"):
        node = f"node {sanitize(str(ctl['node']))}, " if ctl.get("node") else ""
        out.append(f"Controller: up ({node}pid {ctl['pid']}, last pass "
                   f"{_ago(ctl.get('last_tick'))})")
    elif ctl:
        out.append("Controller: " + paint("down", "yellow") + " (start it with gt up)")
    if ctl.get("config"):  # town.toml edited since the controller loaded it, or broken
        out.append("  " + paint(sanitize(str(ctl["config"])), "yellow"))
    if data.get("nodes"):
        out += _node_lines(data["nodes"], paint)
    out.append("")
    if not data["agents"]:
        out.append("No agents yet: gt agent add NAME --rig RIG --preset PRESET")
    else:
        out.append(f"{'AGENT':<16} {'STATE':<17} {'HOOK':<14} {'STEP':<18} LAST OUTPUT")
        for a in data["agents"]:
            out += _agent_lines(a, paint)
    out.append("")
    if data.get("merge_queue") is not None:
        out += _queue_lines(data["merge_queue"], paint)
    if data.get("convoys") is not None:
        out += _convoy_lines(data["convoys"], paint)
    for b in data.get("budgets_paused") or []:
        out.append(paint(f"Paused by budget: {sanitize(str(b.get('key')))} = "
                         f"{sanitize(str(b.get('budget')))} (spent {b.get('spent')} "
                         f"{b.get('unit')} this {b.get('period')}): no new work is slung "
                         "there until the period ends or the limit is raised", "yellow"))
    if data["events"]:
        out += ["", "Recent events:"]
        out += [render_event(ev) for ev in data["events"]]
    return "\n".join(out) + "\n"


_ESC = re.compile(r"\x1b\[[0-9;]*m")


def _cut(line: str, width: int) -> str:
    """``line`` cut to ``width`` visible characters (colour codes do not count)."""
    out, seen, pos = [], 0, 0
    for m in _ESC.finditer(line):
        text = line[pos:m.start()]
        take = text[:max(0, width - seen)]
        out.append(take)
        seen += len(take)
        out.append(m.group())
        pos = m.end()
    out.append(line[pos:][:max(0, width - seen)])
    return "".join(out)


def render_feed(data: dict[str, Any], width: int = 120, height: int = 40,
                paint: Paint | None = None) -> str:
    """One screen: the status, then as many recent events as fit."""
    lines = render_status({**data, "events": []}, paint).rstrip("\n").splitlines()
    room = max(3, height - len(lines) - 3)
    events = data["events"][-room:]
    lines += ["", f"Events (last {len(events)}):"]
    lines += [render_event(ev) for ev in events]
    return "\n".join(_cut(line, width) for line in lines[:height]) + "\n"
