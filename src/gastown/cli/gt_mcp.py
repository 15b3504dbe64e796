"""``gt mcp``: serve the ledger to editor agents over MCP (stdio, or HTTP on 127.0.0.1).

A thin edge: it finds the ledger (``--db``, ``--town``, else the town or ledger
found from here), resolves the acting identity once, and hands both to
:mod:`gastown.mcp_server`.
"""

from __future__ import annotations

import argparse
import os
import socket
from typing import TYPE_CHECKING, Any

from ..errors import NotFoundError, UsageError
from ._app import Ctx
from .gt_common import add_parser

if TYPE_CHECKING:
    from ..town.core import Town


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: expected 1-65535") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: expected 1-65535")
    return port


def _check_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as exc:
            raise UsageError(f"--http {port}: cannot listen on 127.0.0.1:{port} "
                             f"({exc.strerror})") from None


def _actor(ctx: Ctx, town: Town | None) -> str:
    """The identity: --actor, $BD_ACTOR, the town agent of $GT_AGENT, else the account."""
    from ..ledger import discovery

    if ctx.actor:
        return ctx.actor
    if os.environ.get("BD_ACTOR"):
        return os.environ["BD_ACTOR"]
    if town is not None and os.environ.get("GT_AGENT"):
        return town.actor_of(town.current_agent(os.environ["GT_AGENT"]))
    return discovery.default_actor()


def _mcp(ctx: Ctx) -> int:
    try:
        from ..mcp_server.server import serve
    except ImportError as exc:
        raise UsageError(f"gt mcp needs the MCP SDK ({exc.name} is missing): "
                         "pip install 'gastown[mcp]'") from None
    from ..ledger.core import Ledger
    from ..mcp_server.tools import LedgerTools
    from ..town.core import Town

    town_arg = getattr(ctx.args, "town", None)
    if ctx.db and town_arg:
        raise UsageError("gt mcp: pass --town or --db, not both")
    town: Town | None = None
    if not ctx.db:
        try:
            town = Town.find(town_arg)
        except NotFoundError:
            if town_arg:
                raise
    if ctx.args.http is not None:
        _check_free(ctx.args.http)
    actor = _actor(ctx, town)
    ledger = town.ledger(actor) if town is not None else Ledger.open(ctx.db, actor=actor)
    serve(LedgerTools(ledger, actor, town), http_port=ctx.args.http)
    return 0


def setup(name: str, sub: Any) -> None:
    """Add the parser for ``gt mcp``."""
    from .gt import COMMANDS

    p = add_parser(sub, name, COMMANDS[name][1])
    p.add_argument("--http", type=_port, metavar="PORT",
                   help="serve streamable HTTP on 127.0.0.1:PORT/mcp instead of stdio")
    p.set_defaults(func=_mcp)
