"""``gt sling``, ``gt hook``, ``gt prime``, ``gt done``: work onto hooks and back."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from ..errors import UsageError
from ._app import Ctx
from .gt_common import (
    acting,
    add_parser,
    clean,
    get_town,
    parse_vars,
    session_agent,
    town_ledger,
)


def _sling(ctx: Ctx) -> int:
    from ..town.slinging import sling

    a = ctx.args
    town = get_town(ctx)
    if a.more:
        return _sling_batch(ctx, [a.what, a.target, *a.more[:-1]], a.more[-1])
    result = sling(town, a.what, a.target, parse_vars(a.var), nudge=not a.no_nudge,
                   wisp=a.wisp, actor=acting(ctx), caller=session_agent(),
                   pause=_test_pause())
    if result.session == "started":  # a session that died at once is no "session started"
        from ..town.sessions import Sessions

        Sessions(town).confirm_started(town.agent(result.agent))
    if ctx.quiet and not ctx.json:
        print(result.id)
        return 0

    def text() -> str:
        verb = "Already on the hook of" if result.already else "Slung onto"
        lines = [f"{verb} {result.agent} ({result.actor}): {result.id} {clean(result.title)}"]
        if result.poured:
            lines.append(f"  poured {result.formula} as {result.id}")
        lines.append(f"  session {result.session}" + (f" in {result.workdir}"
                                                      if result.workdir else ""))
        if result.branch:
            lines.append(f"  branch {result.branch}")
        if result.nudge:
            lines.append(f"  nudged ({result.nudge.get('delivered_as')})")
        lines += [f"  note: {n}" for n in result.notes]
        return "\n".join(lines)

    ctx.out(result.to_json(), text)
    return 0


#: a test hook, ``STEP:SECONDS``: ``gt sling`` says so on standard error and pauses
#: after STEP (one of ``SLING_STEPS``), so that a test can kill it at a known instant
SLING_PAUSE_VAR = "GT_TEST_SLING_PAUSE"


def _test_pause() -> Callable[[str], None] | None:
    spec = os.environ.get(SLING_PAUSE_VAR, "")
    want, _, seconds = spec.partition(":")
    if not want:
        return None
    try:
        delay = float(seconds or "0")
    except ValueError:
        return None

    def pause(step: str) -> None:
        if step == want:
            sys.stderr.write(f"gt: {SLING_PAUSE_VAR}: pausing {delay:g}s after {step}\n")
            sys.stderr.flush()
            time.sleep(delay)

    return pause


def _sling_batch(ctx: Ctx, items: list[str], target: str) -> int:
    """``gt sling A B C TARGET``: every item to TARGET, tracked by a new convoy."""
    from ..controller.convoy import sling_batch

    a = ctx.args
    if a.wisp:
        raise UsageError("--wisp applies to one formula, not to a batch")
    out = sling_batch(get_town(ctx), items, target, vars=parse_vars(a.var),
                      nudge=not a.no_nudge, actor=ctx.actor, pause=_test_pause())

    def text() -> str:
        lines = [f"Convoy {out['convoy']} tracks {len(out['beads'])} beads"]
        lines += [f"  {r['id']} -> {r['agent']} ({r['session']})" for r in out["slung"]]
        lines += [f"  {w['id']} waits for a free worker (the controller slings it)"
                  for w in out["waiting"]]
        return "\n".join(lines)

    ctx.out(out, text)
    return 0


def _hook(ctx: Ctx) -> int:
    from ..town.work import current_work, hook_clear, hook_pin, hooked_work

    words = list(ctx.args.words)
    action = words.pop(0) if words and words[0] in ("show", "clear", "pin") else "show"
    town = get_town(ctx)
    led = town_ledger(ctx)
    if action == "pin":
        if not words:
            raise UsageError("gt hook pin BEAD [AGENT]")
        bead_id = led.resolve_id(words[0])
        agent = town.current_agent(words[1] if len(words) > 1
                                   else ctx.args.agent or session_agent())
        bead = hook_pin(led, bead_id, agent.name, town.actor_of(agent))
        ctx.out(bead, f"Pinned {bead_id} to {agent.name}'s hook")
        return 0
    agent = town.current_agent(words[0] if words else ctx.args.agent or session_agent())
    me = town.actor_of(agent)
    if action == "clear":
        target = led.resolve_id(words[1]) if len(words) > 1 else None
        released = hook_clear(led, agent.name, me, target)
        ctx.out({"agent": agent.name, "released": released},
                f"Released {', '.join(released)} from {agent.name}'s hook" if released
                else f"{agent.name}'s hook was empty")
        return 0
    hooked = hooked_work(led, me)
    work = hooked[0] if hooked else current_work(led, me, agent.name)

    def text() -> str:
        if work is None:
            return f"{agent.name}'s hook is empty"
        lines = [f"{agent.name} ({me}) has on its hook:"]
        for b in hooked or [work]:
            lines.append(f"  {b['id']} [{b['status']}] {clean(b['title'])}")
        return "\n".join(lines)

    ctx.out(work, text)
    return 0


def _prime(ctx: Ctx) -> int:
    from ..town.prime import prime_data, render_prime

    hook = ctx.args.hook or ctx.args.hook_json
    if hook and not (ctx.args.agent or session_agent()):
        # a session hook outside any town session: stay silent (an empty JSON answer)
        if ctx.args.hook_json:
            print("{}")
        return 0
    town = get_town(ctx)
    agent = town.current_agent(ctx.args.agent or session_agent())
    data = prime_data(town, town_ledger(ctx), agent, drain_nudges=hook)
    if ctx.args.hook_json:
        # codex and gemini read a SessionStart hook's answer as JSON
        print(json.dumps({"hookSpecificOutput": {"hookEventName": "SessionStart",
                                                 "additionalContext": render_prime(data)}}))
        return 0
    ctx.out(data, lambda: render_prime(data))
    return 0


def _done(ctx: Ctx) -> int:
    from ..town.handin import done

    a = ctx.args
    summary = done(get_town(ctx), a.agent or session_agent(), status=a.status,
                   message=a.message, force=a.force, actor=ctx.actor)

    def text() -> str:
        lines = [f"Done ({summary['status']}): {summary['bead_id']} released from "
                 f"{summary['agent']}'s hook"]
        if summary.get("mr"):
            made = "filed" if summary.get("mr_created") else "already filed"
            lines.append(f"  merge request {summary['mr']} {made} for {summary['branch']} "
                         f"at {summary['commit'][:12]}" + (" (pushed)" if summary.get("pushed")
                                                           else ""))
        if summary.get("escalated_to"):
            lines.append(f"  escalated to {summary['escalated_to']}")
        return "\n".join(lines)

    ctx.out(summary, text)
    return 0


def setup(name: str, sub: Any) -> None:
    """Add the parser for command ``name``."""
    from .gt import COMMANDS

    p = add_parser(sub, name, COMMANDS[name][1])
    if name == "sling":
        p.add_argument("what", help="a bead id, or a formula (or proto) to pour")
        p.add_argument("target", nargs="?",
                       help="an agent, a pool or a rig (default: yourself, in a session)")
        p.add_argument("more", nargs="*", metavar="... TARGET",
                       help="a batch: `gt sling A B C TARGET` slings every bead (or formula) "
                            "to TARGET and tracks them in a convoy")
        p.add_argument("--var", action="append", metavar="KEY=VALUE",
                       help="a formula variable (repeatable)")
        p.add_argument("--no-nudge", action="store_true", help="do not nudge the agent")
        p.add_argument("--wisp", action="store_true", help="pour an ephemeral wisp")
        p.set_defaults(func=_sling)
    elif name == "hook":
        p.add_argument("words", nargs="*", metavar="[show|clear|pin] ARGS",
                       help="show [AGENT] | clear [AGENT [BEAD]] | pin BEAD [AGENT]")
        p.add_argument("--agent", help="whose hook (default: $GT_AGENT)")
        p.set_defaults(func=_hook)
    elif name == "prime":
        p.add_argument("--agent", help="whose prompt (default: $GT_AGENT)")
        p.add_argument("--hook", action="store_true",
                       help="as a session hook: also deliver queued nudges; silent outside "
                            "a session")
        p.add_argument("--hook-json", action="store_true",
                       help="as --hook, answering as a codex/gemini SessionStart hook does: "
                            "JSON with the prompt as additionalContext")
        p.set_defaults(func=_prime)
    elif name == "done":
        p.add_argument("--status", default="completed",
                       choices=("completed", "escalated", "deferred"))
        p.add_argument("-m", "--message", help="a note recorded on the work (and mailed "
                                               "when escalating)")
        p.add_argument("--agent", help="whose work (default: $GT_AGENT)")
        p.add_argument("--force", action="store_true",
                       help="hand in even with uncommitted changes (they stay behind)")
        p.set_defaults(func=_done)
