"""Mail: messages are beads of type ``message`` (DESIGN §2.1).

A message to several recipients is one bead per recipient, all created in one
transaction with their ``mail.sent`` events, so each can be read and archived on
its own.  Unread = open without the ``read`` label; archived = closed.  A reply
is linked to what it answers with a ``replies-to`` edge and shares its thread.

Addresses: an agent's name or ``rig/role/name``; ``RIG/ROLE`` for every agent of
that role on that rig; ``@GROUP`` for a ``[groups]`` entry; anything else that
contains no spaces is taken as a person's or outside actor's address.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, UsageError, ValidationError
from ..ledger.query import Filter

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from ..ledger.model import Bead
    from ..ledger.ops import Txn
    from .core import Town

__all__ = ["resolve_address", "send", "send_txn", "inbox", "read", "reply", "archive", "unread",
           "inject_text", "READ_LABEL"]

READ_LABEL = "read"


def resolve_address(town: Town, address: str, _seen: frozenset[str] = frozenset()) -> list[str]:
    """The actor addresses ``address`` reaches (agents' ``rig/role/name``, or as given)."""
    address = address.strip()
    if not address or any(ch.isspace() for ch in address):
        raise ValidationError(f"invalid mail address {address!r}")
    cfg = town.config
    if address.startswith("@"):
        group = address[1:]
        if group not in cfg.groups:
            raise NotFoundError(f"no mail group {address!r} (define [groups.{group}] "
                                "in town.toml)")
        if group in _seen:
            return []  # a group that includes itself: each member once is enough
        out: list[str] = []
        for member in cfg.groups[group]:
            out += resolve_address(town, member, _seen | {group})
        return list(dict.fromkeys(out))
    agent = town.agent_by_address(address)
    if agent is not None:
        return [town.actor_of(agent)]
    parts = address.split("/")
    if len(parts) == 2 and parts[0] in cfg.rigs:
        rig, role = parts
        found = [town.actor_of(a) for a in cfg.all_agents() if a.rig == rig and a.role == role]
        if not found:
            raise NotFoundError(f"no agent has role {role!r} on rig {rig!r}")
        return found
    return [address]


def send(town: Town, led: Ledger, to: str, subject: str, body: str = "", *,
         sender: str | None = None, reply_to: str | None = None,
         thread: str | None = None) -> list[Bead]:
    """Send a message; returns the message beads (one per recipient)."""
    who = sender or led.actor
    with led.transaction(who) as t:
        return send_txn(town, t, to, subject, body, reply_to=reply_to, thread=thread)


def send_txn(town: Town, t: Txn, to: str, subject: str, body: str = "", *,
             reply_to: str | None = None, thread: str | None = None) -> list[Bead]:
    """:func:`send` inside a transaction the caller holds (the sender is ``t.actor``).

    The controller uses it so that a state change and the mail announcing it
    commit together (a merge sent back, a convoy landed): neither without the other.
    """
    subject = " ".join(subject.split())
    if not subject:
        raise UsageError("a message needs a subject (-s SUBJECT)")
    recipients = resolve_address(town, to)
    if not recipients:
        raise NotFoundError(f"address {to!r} reaches nobody")
    who = t.actor
    out: list[Bead] = []
    for rcpt in recipients:
        meta: dict[str, Any] = {"from": who, "to": rcpt, "address": to}
        if thread:
            meta["thread"] = thread
        if reply_to:
            meta["reply_to"] = reply_to
        bead = t.create(subject[:500], issue_type="message", description=body,
                        assignee=rcpt, metadata=meta,
                        deps=[("replies-to", reply_to)] if reply_to else ())
        if not thread:
            meta["thread"] = bead["id"]
            bead = t.update(bead["id"], metadata=meta)
        t.emit("mail.sent", bead["id"], {"from": who, "to": rcpt, "address": to,
                                         "subject": subject[:200]})
        out.append(bead)
    return out


def inbox(led: Ledger, actor: str, *, include_read: bool = True,
          include_archived: bool = False) -> list[Bead]:
    """Messages addressed to ``actor``, oldest first."""
    f = Filter(issue_type=["message"], assignee=actor, include_closed=include_archived)
    beads = led.list(f, sort="created")
    if not include_read:
        beads = [b for b in beads if READ_LABEL not in (b.get("labels") or [])]
    return beads


def unread(led: Ledger, actor: str) -> list[Bead]:
    """Unread, unarchived messages for ``actor``."""
    return inbox(led, actor, include_read=False)


def _message(led: Ledger, msg_id: str) -> Bead:
    bead = led.get(led.resolve_id(msg_id))
    if bead.get("issue_type") != "message":
        raise NotFoundError(f"{bead['id']} is not a message")
    return bead


def read(led: Ledger, msg_id: str) -> Bead:
    """A message, marked read (with a ``mail.read`` event the first time)."""
    bead = _message(led, msg_id)
    if READ_LABEL not in (bead.get("labels") or []):
        with led.transaction() as t:
            t.add_label(bead["id"], READ_LABEL)
            t.emit("mail.read", bead["id"], {"by": led.actor})
        bead = led.get(bead["id"])
    return bead


def reply(town: Town, led: Ledger, msg_id: str, body: str,
          subject: str | None = None) -> list[Bead]:
    """Answer a message: to its sender, in its thread, linked with ``replies-to``."""
    original = _message(led, msg_id)
    meta = original.get("metadata") or {}
    to = str(meta.get("from") or original.get("created_by") or "")
    if not to:
        raise NotFoundError(f"message {original['id']} has no sender to reply to")
    subj = subject or original["title"]
    if not subj.lower().startswith("re:"):
        subj = f"Re: {subj}"
    return send(town, led, to, subj, body, reply_to=original["id"],
                thread=str(meta.get("thread") or original["id"]))


def archive(led: Ledger, msg_ids: list[str]) -> list[Bead]:
    """Archive (close) messages."""
    ids = [_message(led, m)["id"] for m in msg_ids]
    with led.transaction() as t:
        out = []
        for i in ids:
            out.append(t.close(i, reason="archived", force=True))
            t.emit("mail.archived", i, {"by": led.actor})
    return out


def inject_text(messages: list[Bead], nudges: list[dict[str, Any]]) -> str:
    """The block a session hook prints so the agent sees new mail and queued nudges."""
    if not messages and not nudges:
        return ""
    lines = ["<gastown-mail>"]
    if messages:
        lines.append(f"You have {len(messages)} unread message(s). "
                     "Read one with `gt mail read ID`.")
        for m in messages:
            sender = (m.get("metadata") or {}).get("from") or m.get("created_by") or "?"
            lines.append(f"- {m['id']} from {sender}: {m['title']}")
    for n in nudges:
        lines.append(f"Nudge from {n.get('from', '?')}: {n.get('text', '')}")
    lines.append("</gastown-mail>")
    return "\n".join(lines)


def default_identity(town: Town, led: Ledger, agent_name: str | None = None) -> str:
    """Whose mailbox a command means: agent ``agent_name``'s, else the ledger's actor.

    The command line passes the session's agent (``$GT_AGENT``) as ``agent_name``.
    """
    name = agent_name
    if name:
        try:
            return town.actor_of(town.agent(name))
        except NotFoundError:
            pass
    return led.actor
