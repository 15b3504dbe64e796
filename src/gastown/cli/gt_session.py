"""``gt session``, ``gt attach``, ``gt peek``, ``gt nudge``, ``gt setup``."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from ..errors import NotFoundError, UsageError
from ._app import Ctx, seconds
from .gt_common import (
    acting,
    add_action,
    add_actions,
    add_parser,
    get_town,
    read_text_arg,
    town_ledger,
)


def _session_list(ctx: Ctx) -> int:
    from ..town.sessions import Sessions

    infos = Sessions(get_town(ctx)).list()

    def text() -> str:
        lines = [f"{'AGENT':<18} {'PROVIDER':<10} {'STATE':<8} {'PID':<8} LAST OUTPUT"]
        for i in infos:
            ago = f"{int(time.time() - i.last_activity)}s ago" if i.last_activity else "-"
            state = i.state + (f"({i.exit_status})" if i.exit_status is not None else "")
            lines.append(f"{i.agent:<18} {i.provider:<10} {state:<8} {i.pid or '-'!s:<8} {ago}")
        return "\n".join(lines)

    ctx.out([i.to_json() for i in infos], text)
    return 0


def _session_start(ctx: Ctx) -> int:
    from ..town.rigs import ensure_worktree
    from ..town.sessions import Sessions
    from ..town.work import current_work

    town = get_town(ctx)
    agent = town.agent(ctx.args.agent)
    sessions = Sessions(town)
    sessions.check(agent)
    if ctx.args.action == "restart":
        sessions.stop(agent, actor=ctx.actor)
    work = current_work(town_ledger(ctx), town.actor_of(agent), agent.name)
    branch = town.branch_of(agent, work["id"]) if work else f"{agent.name}/work"
    ensure_worktree(town, agent, branch)
    info, started = sessions.start(agent, actor=ctx.actor)
    if started:
        sessions.confirm_started(agent)  # died within its first seconds: say so, fail
    ctx.out({**info.to_json(), "started": started},
            f"{'Started' if started else 'Already running:'} {agent.name} "
            f"({info.provider}, in {info.workdir})")
    return 0


def _session_stop(ctx: Ctx) -> int:
    from ..town.sessions import Sessions

    town = get_town(ctx)
    agent = town.agent(ctx.args.agent)
    stopped = Sessions(town).stop(agent, actor=ctx.actor)
    ctx.out({"agent": agent.name, "stopped": stopped},
            f"Stopped {agent.name}" if stopped else f"{agent.name} had no session")
    return 0


def _session_status(ctx: Ctx) -> int:
    from ..town.sessions import Sessions

    town = get_town(ctx)
    info = Sessions(town).info(town.agent(ctx.args.agent))
    ctx.out(info.to_json(), f"{info.agent}: {info.state} ({info.provider}, {info.workdir})")
    return 0


def _attach(ctx: Ctx) -> int:
    from ..town.sessions import Sessions

    town = get_town(ctx)
    agent = town.agent(ctx.args.agent)
    sessions = Sessions(town)
    provider = sessions.provider_for(agent)
    name = sessions.session_name(agent)
    if not provider.exists(name):
        raise NotFoundError(f"{agent.name} has no session (gt session start {agent.name})")
    argv = provider.attach_argv(name)
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    sys.stdout.flush()
    os.execvpe(argv[0], argv, env)
    return 0  # pragma: no cover - exec does not return


def _peek(ctx: Ctx) -> int:
    from ..town.sessions import Sessions

    town = get_town(ctx)
    agent = town.agent(ctx.args.agent)
    sessions = Sessions(town)
    text = sessions.provider_for(agent).peek(sessions.session_name(agent), ctx.args.lines)
    ctx.out({"agent": agent.name, "output": text}, text or "(no output)")
    return 0


def _nudge(ctx: Ctx) -> int:
    from ..town.nudge import nudge_agent

    town = get_town(ctx)
    words = ctx.args.text
    text = read_text_arg(words[0]) if words == ["-"] else " ".join(words)
    if not text:
        raise UsageError("nothing to say: gt nudge AGENT TEXT (or - to read standard input)")
    result = nudge_agent(town, ctx.args.agent, text, mode=ctx.args.mode,
                         timeout=ctx.args.timeout, actor=acting(ctx))
    if result["delivered_as"] == "queue":
        line = f"Queued for {result['agent']} (delivered at its next gt prime / mail check)"
    elif result["verified"]:
        line = f"Nudged {result['agent']} ({result['chunks']} chunk(s), delivery verified)"
    else:
        line = f"Nudged {result['agent']}, but delivery was not verified: {result['detail']}"
    ctx.out(result, line)
    return 0 if result["delivered"] else 1


def _setup(ctx: Ctx) -> int:
    from ..town.agents import load_presets, preset_of
    from ..town.core import Town
    from ..town.setup import setup_files

    a = ctx.args
    town: Town | None
    try:
        town = get_town(ctx)
    except NotFoundError:
        town = None
    presets = town.config.presets if town else load_presets()
    directory = a.dir
    preset_name = a.preset
    if a.agent:
        if town is None:
            raise NotFoundError("--agent needs a town (pass --town DIR)")
        agent = town.agent(a.agent)
        directory = directory or town.workdir(agent)
        preset_name = preset_name or agent.preset
    if not preset_name:
        raise UsageError(f"name a preset: {', '.join(sorted(presets))}")
    if preset_name not in presets:
        raise NotFoundError(f"unknown preset {preset_name!r} "
                            f"(known: {', '.join(sorted(presets))})")
    gt_path = os.path.join(town.bin_dir(), "gt") if town else "gt"
    written = setup_files(preset_of(presets, preset_name), os.path.abspath(directory or "."),
                          gt_path)
    ctx.out({"preset": preset_name, "written": written},
            "\n".join(f"Wrote {w}" for w in written) or
            f"Preset {preset_name} needs no setup files")
    return 0


def setup(name: str, sub: Any) -> None:
    """Add the parser for command ``name``."""
    from .gt import COMMANDS

    p = add_parser(sub, name, COMMANDS[name][1])
    if name == "session":
        actions = add_actions(p)
        add_action(actions, "list", "every agent's session state").set_defaults(
            func=_session_list)
        for action, fn, help_text in (
                ("start", _session_start, "start an agent's session (no-op when running)"),
                ("restart", _session_start, "stop and start an agent's session"),
                ("stop", _session_stop, "stop an agent's session"),
                ("status", _session_status, "one agent's session state")):
            q = add_action(actions, action, help_text)
            q.add_argument("agent")
            q.set_defaults(func=fn)
        p.set_defaults(func=_session_list)
    elif name == "attach":
        p.add_argument("agent")
        p.set_defaults(func=_attach)
    elif name == "peek":
        p.add_argument("agent")
        p.add_argument("-n", "--lines", type=int, default=40, help="how many lines")
        p.set_defaults(func=_peek)
    elif name == "nudge":
        p.add_argument("agent")
        p.add_argument("text", nargs="+", help="what to type (- reads standard input)")
        p.add_argument("--mode", default="immediate", choices=("immediate", "queue", "wait-idle"))
        p.add_argument("--timeout", type=seconds, default=30.0, help="seconds (wait-idle)")
        p.set_defaults(func=_nudge)
    elif name == "setup":
        p.add_argument("preset", nargs="?", help="claude, codex, gemini, opencode, aider, ...")
        p.add_argument("dir", nargs="?", help="where (default: here, or the agent's worktree)")
        p.add_argument("--agent", help="set up this agent's worktree for its preset")
        p.set_defaults(func=_setup)
