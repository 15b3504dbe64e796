"""``gt rig add|list|remove`` and ``gt agent list|add|remove``."""

from __future__ import annotations

from typing import Any

from ..errors import ConflictError, UsageError
from ._app import Ctx
from .gt_common import add_action, add_actions, add_parser, clean, get_town, town_ledger


# ------------------------------------------------------------------ rigs
def _rig_add(ctx: Ctx) -> int:
    from ..town.rigs import add_rig, working_copy

    town = get_town(ctx)
    rig = add_rig(town, ctx.args.name, ctx.args.source, branch=ctx.args.branch,
                  push=ctx.args.push, actor=ctx.actor)
    text = (f"Added rig {rig.name}: bare clone of {rig.source} in {town.repo_dir(rig.name)} "
            f"(branch {rig.branch})")
    local = working_copy(rig.source)
    if rig.push and local:
        text += (f"\nLanded work is pushed to {rig.branch} of your working copy {local}; "
                 "its files are updated when it has no uncommitted changes")
    elif local:
        text += (f"\nLanded work stays in the rig's clone: `git -C {local} pull "
                 f"{town.repo_dir(rig.name)} {rig.branch}` brings it home, or add --push "
                 "(push = true) to have it pushed back")
    ctx.out({"name": rig.name, "source": rig.source, "branch": rig.branch, "push": rig.push,
             "repo": town.repo_dir(rig.name), "working_copy": local}, text)
    return 0


def _rig_list(ctx: Ctx) -> int:
    from ..town.rigs import list_rigs

    rigs = list_rigs(get_town(ctx))

    def text() -> str:
        if not rigs:
            return "No rigs: gt rig add NAME PATH|URL"
        lines = []
        for r in rigs:
            lines.append(f"{r['name']:<16} {r['branch']:<10} {r['source']}")
            lines += [f"    {t['branch'] or '(detached)':<28} {t['path']}" for t in r["worktrees"]]
        return "\n".join(lines)

    ctx.out(rigs, text)
    return 0


def _rig_remove(ctx: Ctx) -> int:
    from ..town.rigs import remove_rig

    remove_rig(get_town(ctx), ctx.args.name, force=ctx.args.force, actor=ctx.actor)
    ctx.out({"removed": ctx.args.name}, f"Removed rig {ctx.args.name}")
    return 0


# ---------------------------------------------------------------- agents
def _agent_rows(ctx: Ctx) -> list[dict[str, Any]]:
    from ..town.sessions import Sessions
    from ..town.work import current_work

    town = get_town(ctx)
    led = town_ledger(ctx)
    sessions = Sessions(town)
    rows = []
    for info in sessions.list():
        agent = town.agent(info.agent)
        work = current_work(led, town.actor_of(agent), agent.name)
        rows.append({"name": agent.name, "actor": town.actor_of(agent), "rig": agent.rig,
                     "role": agent.role, "preset": agent.preset,
                     "provider": agent.provider or town.config.town.provider,
                     "pool": agent.pool, "command": agent.command,
                     "session": info.state, "workdir": info.workdir,
                     "hook": work["id"] if work else None,
                     "hook_title": work["title"] if work else None})
    return rows


def _agent_list(ctx: Ctx) -> int:
    rows = _agent_rows(ctx)
    town = get_town(ctx)

    def text() -> str:
        lines = [f"{'NAME':<18} {'RIG':<12} {'ROLE':<12} {'PRESET':<9} {'PROVIDER':<10} "
                 f"{'SESSION':<8} HOOK"]
        for r in rows:
            hook = f"{r['hook']} {clean(r['hook_title'])[:40]}" if r["hook"] else "-"
            lines.append(f"{r['name']:<18} {r['rig'] or '-':<12} {r['role']:<12} "
                         f"{r['preset']:<9} {r['provider']:<10} {r['session']:<8} {hook}")
        pools = town.config.pools.values()
        lines += [f"(pool {p.name}: up to {p.max} workers {p.name}-1..{p.name}-{p.max}, "
                  "started on demand)" for p in pools]
        return "\n".join(lines) if rows or pools else "No agents: gt agent add NAME --rig RIG " \
                                                      "--preset PRESET"

    ctx.out(rows, text)
    return 0


def _agent_add(ctx: Ctx) -> int:
    from ..town.config import append_table, check_name

    a = ctx.args
    town = get_town(ctx)
    cfg = town.config
    check_name("agent", a.name)
    if a.name in cfg.agents or a.name in cfg.pools or a.name in cfg.rigs \
            or cfg.pool_slot(a.name) is not None:
        raise ConflictError(f"{a.name!r} is already an agent, pool or rig in {town.config_path}")
    role = a.role or cfg.town.default_role
    if not role:
        raise UsageError("pass --role ROLE (or set [town] default_role in town.toml)")
    values: dict[str, Any] = {"rig": a.rig, "role": role, "preset": a.preset,
                              "command": a.command, "provider": a.provider}
    if a.arg:
        values["args"] = list(a.arg)
    append_table(town.config_path, f"agents.{a.name}", values,
                 comment=f"added by gt agent add {a.name}")
    town.reload()
    agent = town.config.agents[a.name]
    with town.ledger(ctx.actor) as led:
        led.emit("agent.added", None, {"agent": agent.name, "rig": agent.rig, "role": role,
                                       "preset": agent.preset})
    ctx.out({"name": agent.name, "actor": town.actor_of(agent), "rig": agent.rig,
             "role": agent.role, "preset": agent.preset, "command": agent.command},
            f"Added agent {agent.name} ({town.actor_of(agent)}, preset {agent.preset})")
    return 0


def _agent_remove(ctx: Ctx) -> int:
    from ..town.config import remove_table
    from ..town.sessions import Sessions
    from ..town.work import current_work

    town = get_town(ctx)
    name = ctx.args.name
    if name not in town.config.agents:
        raise UsageError(f"no configured agent {name!r} (pool workers go with their pool)")
    agent = town.config.agents[name]
    work = current_work(town_ledger(ctx), town.actor_of(agent), name)
    if work is not None and not ctx.args.force:
        raise ConflictError(f"{name} still has {work['id']} on its hook "
                            "(gt hook clear it first, or pass --force)")
    Sessions(town).stop(agent, actor=ctx.actor)
    if not remove_table(town.config_path, f"agents.{name}"):
        raise ConflictError(f"could not find [agents.{name}] in {town.config_path}; "
                            "edit the file by hand")
    town.reload()
    town_ledger(ctx).emit("agent.removed", None, {"agent": name})
    ctx.out({"removed": name}, f"Removed agent {name} (its worktree, if any, is kept)")
    return 0


def setup(name: str, sub: Any) -> None:
    """Add the parser for command ``name``."""
    from .gt import COMMANDS

    p = add_parser(sub, name, COMMANDS[name][1])
    actions = add_actions(p)
    if name == "rig":
        q = add_action(actions, "add", "clone a repository (path or URL) as a rig")
        q.add_argument("name", help="the rig's name")
        q.add_argument("source", help="a local path or a git URL")
        q.add_argument("--branch", help="the branch work starts from (default: its HEAD)")
        q.add_argument("--push", action="store_true",
                       help="push landed work back to the source (push = true)")
        q.set_defaults(func=_rig_add)
        add_action(actions, "list", "rigs and their worktrees").set_defaults(func=_rig_list)
        q = add_action(actions, "remove", "remove a rig, its clone and worktrees")
        q.add_argument("name")
        q.add_argument("--force", action="store_true", help="even with uncommitted work")
        q.set_defaults(func=_rig_remove)
        p.set_defaults(func=_rig_list)
    elif name == "agent":
        add_action(actions, "list", "agents, their sessions and hooks").set_defaults(
            func=_agent_list)
        q = add_action(actions, "add", "add an agent to town.toml")
        q.add_argument("name", help="the agent's name")
        q.add_argument("--rig", help="the rig it works on")
        q.add_argument("--role", help="its role (default: [town] default_role)")
        q.add_argument("--preset", required=True,
                       help="claude, codex, gemini, opencode, aider, command, or your own")
        q.add_argument("--command", help="the program to run (required with preset command); "
                                         "split into words, never given to a shell")
        q.add_argument("--provider", help="its session provider: tmux, subprocess or any "
                                          "registered one (default: [town] provider)")
        q.add_argument("--arg", action="append",
                       help="an argument replacing the preset's defaults (repeatable)")
        q.set_defaults(func=_agent_add)
        q = add_action(actions, "remove", "remove an agent from town.toml")
        q.add_argument("name")
        q.add_argument("--force", action="store_true", help="even with work on its hook")
        q.set_defaults(func=_agent_remove)
        p.set_defaults(func=_agent_list)
