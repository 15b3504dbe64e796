"""``gt mail send|inbox|read|reply|archive|check``: messages as beads."""

from __future__ import annotations

import os
from typing import Any

from ..errors import UsageError
from ._app import Ctx
from .gt_common import (
    acting,
    add_action,
    add_actions,
    add_parser,
    clean,
    get_town,
    read_text_arg,
    session_agent,
    town_ledger,
)


def _notify(ctx: Ctx, beads: list[Any]) -> list[dict[str, Any]]:
    """Tell recipients with a running session (as ``--nudge`` says); never fails the send."""
    from ..town.nudge import nudge_agent
    from ..town.sessions import Sessions

    mode = getattr(ctx.args, "nudge", "auto")
    if mode == "none":
        return []
    town = get_town(ctx)
    sessions = Sessions(town)
    out = []
    for bead in beads:
        agent = town.agent_by_address(str(bead.get("assignee") or ""))
        if agent is None or not sessions.is_alive(agent):
            continue
        text = (f"[gt mail] from {bead['metadata'].get('from')}: {bead['title']} "
                f"(gt mail read {bead['id']})")
        try:
            if mode == "auto":  # type now if the session is quiet, else queue it
                out.append(nudge_agent(town, agent.name, text, mode="wait-idle", timeout=0,
                                       idle_s=2.0, actor=acting(ctx)))
            else:
                out.append(nudge_agent(town, agent.name, text, mode=mode, actor=acting(ctx)))
        except Exception as exc:  # noqa: BLE001 - the mail is sent; the nudge is a courtesy
            out.append({"agent": agent.name, "error": str(exc)})
    return out


def _send(ctx: Ctx) -> int:
    from ..town.mail import send

    a = ctx.args
    body = read_text_arg(a.message) or ""
    beads = send(get_town(ctx), town_ledger(ctx), a.address, a.subject, body)
    nudges = _notify(ctx, beads)
    ctx.out({"sent": beads, "nudges": nudges},
            "\n".join(f"Sent {b['id']} to {clean(b['assignee'])}" for b in beads))
    return 0


def _who(ctx: Ctx) -> str:
    from ..town.mail import default_identity

    town = get_town(ctx)
    address = getattr(ctx.args, "address", None)
    if address:
        agent = town.agent_by_address(address)
        return town.actor_of(agent) if agent else address
    return default_identity(town, town_ledger(ctx), session_agent())


def _line(m: dict[str, Any]) -> str:
    meta = m.get("metadata") or {}
    state = "archived" if m["status"] == "closed" else (
        "read" if "read" in (m.get("labels") or []) else "NEW")
    return (f"{m['id']:<14} {state:<8} {clean(meta.get('from') or m.get('created_by')):<28} "
            f"{clean(m['title'])}")


def _inbox(ctx: Ctx) -> int:
    from ..town.mail import inbox

    who = _who(ctx)
    beads = inbox(town_ledger(ctx), who, include_read=not ctx.args.unread,
                  include_archived=ctx.args.all)
    ctx.out(beads, lambda: "\n".join(_line(b) for b in beads) or f"No mail for {who}")
    return 0


def _read(ctx: Ctx) -> int:
    from ..town.mail import read

    bead = read(town_ledger(ctx), ctx.args.id)
    meta = bead.get("metadata") or {}

    def text() -> str:
        body = "".join(ch for ch in bead.get("description") or ""
                       if ch in "\n\t" or ch >= " ")  # keep lines, drop escape codes
        return (f"From:    {clean(meta.get('from') or bead.get('created_by'))}\n"
                f"To:      {clean(bead.get('assignee'))}\n"
                f"Date:    {bead['created_at']}\n"
                f"Subject: {clean(bead['title'])}\n"
                f"Id:      {bead['id']}\n\n{body}")

    ctx.out(bead, text)
    return 0


def _reply(ctx: Ctx) -> int:
    from ..town.mail import reply

    body = read_text_arg(ctx.args.message) or ""
    beads = reply(get_town(ctx), town_ledger(ctx), ctx.args.id, body, ctx.args.subject)
    nudges = _notify(ctx, beads)
    ctx.out({"sent": beads, "nudges": nudges},
            "\n".join(f"Replied {b['id']} to {clean(b['assignee'])}" for b in beads))
    return 0


def _archive(ctx: Ctx) -> int:
    from ..town.mail import archive

    beads = archive(town_ledger(ctx), ctx.args.ids)
    ctx.out(beads, "\n".join(f"Archived {b['id']}" for b in beads))
    return 0


def _check(ctx: Ctx) -> int:
    from ..town.mail import inject_text, unread
    from ..town.nudge import drain_queue

    if ctx.args.inject and not (getattr(ctx.args, "address", None) or os.environ.get("GT_AGENT")):
        return 0  # a session hook outside any town session: stay silent
    town = get_town(ctx)
    who = _who(ctx)
    messages = unread(town_ledger(ctx), who)
    if ctx.args.inject:
        agent = town.agent_by_address(who)
        nudges = drain_queue(town, agent.name) if agent else []
        block = inject_text(messages, nudges)
        ctx.out({"mail": messages, "nudges": nudges}, block or None)
        return 0
    ctx.out({"address": who, "unread": len(messages)},
            f"{len(messages)} unread message(s) for {who}")
    return 0 if messages else 1


def setup(name: str, sub: Any) -> None:
    """Add the parser for command ``name``."""
    from .gt import COMMANDS

    p = add_parser(sub, name, COMMANDS[name][1])
    actions = add_actions(p)
    q = add_action(actions, "send", "send a message (an agent, RIG/ROLE, @group, anyone)")
    q.add_argument("address")
    q.add_argument("-s", "--subject", required=True)
    q.add_argument("-m", "--message", help="the body (- reads standard input)")
    q.add_argument("--nudge", default="auto",
                   choices=("auto", "immediate", "queue", "wait-idle", "none"),
                   help="how a recipient's running session hears of it (default: auto: "
                        "typed if the session is quiet, else queued)")
    q.set_defaults(func=_send)
    q = add_action(actions, "inbox", "list messages (yours by default)")
    q.add_argument("address", nargs="?", help="whose mailbox (default: yours)")
    q.add_argument("--unread", action="store_true", help="only unread messages")
    q.add_argument("--all", action="store_true", help="archived messages too")
    q.set_defaults(func=_inbox)
    q = add_action(actions, "read", "show a message and mark it read")
    q.add_argument("id")
    q.set_defaults(func=_read)
    q = add_action(actions, "reply", "answer a message, in its thread")
    q.add_argument("id")
    q.add_argument("-m", "--message", required=True, help="the body (- reads standard input)")
    q.add_argument("-s", "--subject", help="default: Re: the original subject")
    q.add_argument("--nudge", default="auto",
                   choices=("auto", "immediate", "queue", "wait-idle", "none"))
    q.set_defaults(func=_reply)
    q = add_action(actions, "archive", "archive messages")
    q.add_argument("ids", nargs="+")
    q.set_defaults(func=_archive)
    q = add_action(actions, "check", "is there unread mail? (exit 0 yes, 1 no)")
    q.add_argument("address", nargs="?")
    q.add_argument("--inject", action="store_true",
                   help="for session hooks: print new mail and queued nudges as a block "
                        "for the agent's context; always exit 0")
    q.set_defaults(func=_check)

    def _default(ctx: Ctx) -> int:
        if getattr(ctx.args, "action", None) is None:
            ctx.args.unread = False
            ctx.args.all = False
            return _inbox(ctx)
        raise UsageError("unknown mail action")

    p.set_defaults(func=_default)
