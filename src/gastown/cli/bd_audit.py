"""``bd audit --actor=RIG/ROLE/NAME``: everything an actor did, here and in synced towns."""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from ._app import Ctx, common_options


def _audit(ctx: Ctx) -> int:
    from ..federation.aggregate import audit

    actor = str(getattr(ctx.args, "actor", "") or "").strip()  # the common --actor option
    if not actor:
        raise UsageError("bd audit needs --actor=RIG/ROLE/NAME")
    rows = audit(ctx.ledger, actor)

    def text() -> str:
        if not rows:
            return f"Nothing by {actor} here or in synced towns"
        lines = [f"Audit of {actor} ({len(rows)}):"]
        lines += [f"  {r['at']}  {r['where']}  {r['action']}  {r['bead'] or '-'}"
                  + (f"  {r['detail']}" if r["detail"] else "") for r in rows]
        return "\n".join(lines)

    ctx.out(rows, text)
    return 0


def setup(name: str, sub: Any) -> None:
    """Add the ``audit`` parser."""
    from .bd import COMMANDS

    p = sub.add_parser(name, help=COMMANDS[name][1], description=COMMANDS[name][1])
    common_options(p)  # its --actor names the actor audited here
    p.set_defaults(func=_audit)
