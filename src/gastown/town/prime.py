"""``gt prime``: everything an agent needs to start working, now (GUPP).

The agent's role prompt rendered from its template, the work on its hook, the
molecule step to do next, unread mail and queued nudges.  Role templates are
data: ``[roles.NAME] template`` in town.toml, else ``<town>/roles/NAME.md``, else
the pack shipped in ``gastown/data/roles/``.
"""

from __future__ import annotations

import os
from importlib import resources
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError
from .config import AgentConfig
from .mail import unread
from .work import current_work, hooked_work, molecule_view

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from .core import Town

__all__ = ["role_template", "render_role", "prime_data", "render_prime"]


def role_template(town: Town, role: str) -> tuple[str, str]:
    """``(text, where)`` of a role's template."""
    cfg = town.config.roles.get(role)
    candidates: list[str] = []
    if cfg is not None and cfg.template:
        path = os.path.expanduser(cfg.template)
        candidates.append(path if os.path.isabs(path) else os.path.join(town.root, path))
    candidates.append(os.path.join(town.root, "roles", f"{role}.md"))
    for path in candidates:
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                return fh.read(), path
    if cfg is not None and cfg.template:
        raise NotFoundError(f"role {role}: template {candidates[0]} does not exist")
    shipped = resources.files("gastown").joinpath(f"data/roles/{role}.md")
    if shipped.is_file():
        return shipped.read_text(encoding="utf-8"), f"gastown:data/roles/{role}.md"
    raise NotFoundError(f"role {role!r} has no template: write {candidates[-1]} "
                        f"or set [roles.{role}] template in town.toml")


def render_role(town: Town, agent: AgentConfig, branch: str = "") -> str:
    """The agent's role prompt with its placeholders filled in."""
    text, _ = role_template(town, agent.role)
    cfg = town.config.roles.get(agent.role)
    values = {"agent": agent.name, "role": agent.role, "rig": agent.rig or "",
              "town": town.name, "actor": town.actor_of(agent),
              "worktree": town.workdir(agent), "branch": branch,
              "description": cfg.description if cfg else ""}
    from ..chemistry.vars import substitute

    return substitute(text, values, f"role {agent.role}")


def _branch(path: str) -> str:
    head = os.path.join(path, ".git")
    try:
        if os.path.isfile(head):  # a linked worktree: .git names its private git dir
            with open(head, encoding="utf-8") as fh:
                head = fh.read().split(":", 1)[1].strip()
        with open(os.path.join(head, "HEAD"), encoding="utf-8") as fh:
            ref = fh.read().strip()
    except (OSError, IndexError):
        return ""
    return ref.removeprefix("ref: refs/heads/") if ref.startswith("ref: ") else ""


def prime_data(town: Town, led: Ledger, agent: AgentConfig,
               drain_nudges: bool = False) -> dict[str, Any]:
    """What ``gt prime --json`` prints."""
    actor = town.actor_of(agent)
    workdir = town.workdir(agent)
    branch = _branch(workdir) if agent.rig else ""
    work = current_work(led, actor, agent.name)
    hooked = hooked_work(led, actor)
    mol = molecule_view(led, work, actor) if work is not None else None
    nudges: list[dict[str, Any]] = []
    if drain_nudges:
        from .nudge import drain_queue

        nudges = drain_queue(town, agent.name)
    step = mol["current"] if mol else None
    if work is None:
        instruction = "Your hook is empty. Check your mail; wait for work to be slung to you."
    elif mol and mol["complete"]:
        instruction = (f"Every step of {work['id']} is closed: run `gt done` now to hand in "
                       "your branch and free your hook.")
    elif mol and step is not None and step["status"] == "in_progress":
        instruction = (f"Work on your hook runs now. Carry on with {step['id']}; when it is "
                       f"done, `bd close {step['id']}`.")
    elif mol and step is not None:
        instruction = (f"Work on your hook runs now. Claim {step['id']} with "
                       f"`bd update {step['id']} --claim`, do it, then `bd close {step['id']}`.")
    elif mol:
        instruction = (f"No step of {work['id']} is ready: its open steps wait on others. "
                       "Check `bd blocked` or your mail.")
    else:
        instruction = (f"Work on your hook runs now: do {work['id']}, then `gt done`.")
    return {
        "agent": agent.name, "actor": actor, "role": agent.role, "rig": agent.rig,
        "town": town.root, "worktree": workdir, "branch": branch,
        "prompt": render_role(town, agent, branch),
        "hook": work, "hooked": hooked,
        "molecule": {k: v for k, v in mol.items() if k != "current"} if mol else None,
        "step": step, "mail": unread(led, actor), "nudges": nudges,
        "instruction": instruction,
        "handoff": _handoff(led, agent.name),
    }


def _handoff(led: Ledger, agent: str) -> dict[str, Any] | None:
    """The notes a previous session of this agent handed over (see :mod:`.handoff`)."""
    from .handoff import prime_handoff

    return prime_handoff(led, agent)


def _clean(text: Any) -> str:
    """Untrusted text printed for a model or a terminal: no control characters."""
    from .text import sanitize

    return sanitize(str(text or ""))


def _clean_block(text: Any) -> str:
    """Like :func:`_clean` but keeping line breaks (descriptions are paragraphs)."""
    import unicodedata

    return "".join(ch for ch in str(text or "") if ch in "\n\t"
                   or unicodedata.category(ch) != "Cc").strip()


def render_prime(data: dict[str, Any]) -> str:
    """The text ``gt prime`` prints: role prompt, hook, step, mail, what to do now."""
    out = [data["prompt"].rstrip(), ""]
    work = data["hook"]
    out.append("## Your hook")
    if work is None:
        out.append("(empty)")
    else:
        out.append(f"{work['id']} [{work['status']}] {_clean(work['title'])}")
        desc = _clean_block(work.get("description"))
        if desc:
            out += ["", desc]
    mol = data["molecule"]
    if mol:
        out += ["", f"## Molecule {mol['id']}: {mol['closed']}/{mol['total']} steps closed"]
        for s in mol["steps"]:
            mark = {"closed": "x", "in_progress": ">"}.get(s["status"], " ")
            out.append(f"- [{mark}] {s['id']} {_clean(s['title'])}")
    step = data["step"]
    if step:
        out += ["", f"## Current step: {step['id']} {_clean(step['title'])}"]
        for key in ("description", "acceptance_criteria"):
            text = _clean_block(step.get(key))
            if text:
                out += ["", ("Acceptance: " if key == "acceptance_criteria" else "") + text]
    handoff = data.get("handoff")
    if handoff:
        out += ["", f"## Handoff from your session {handoff.get('session')}"]
        if handoff.get("step"):
            out.append(f"You were on {handoff['step']} {_clean(handoff.get('step_title'))}.")
        out.append(_clean_block(handoff.get("notes")) or "(no notes)")
    if data["mail"]:
        out += ["", f"## Mail: {len(data['mail'])} unread (gt mail read ID)"]
        for m in data["mail"]:
            sender = (m.get("metadata") or {}).get("from") or m.get("created_by")
            out.append(f"- {m['id']} from {_clean(sender)}: {_clean(m['title'])}")
    for n in data.get("nudges") or []:
        out += ["", f"Nudge from {_clean(n.get('from'))}: {_clean(n.get('text'))}"]
    out += ["", "## Now", data["instruction"]]
    return "\n".join(out) + "\n"
