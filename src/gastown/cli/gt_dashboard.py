"""``gt dashboard``: serve the town's live web dashboard (see :mod:`gastown.dashboard`)."""

from __future__ import annotations

import socket
import sys
from typing import Any

from ..errors import TownError, UsageError
from ._app import Ctx
from .gt_common import add_parser, get_town, town_ledger


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"--host {host} --port {port}: cannot listen there "
                         f"({exc.strerror or exc})") from None
    sock.listen(128)
    return sock


def _dashboard(ctx: Ctx) -> int:
    a = ctx.args
    if not 0 <= a.port <= 65535:
        raise UsageError(f"--port {a.port}: not a port number (0-65535)")
    try:
        import uvicorn

        from ..dashboard.app import create_app
    except ImportError as exc:
        raise TownError(f"gt dashboard needs its extra ({exc.name} is missing): "
                        "pip install 'gastown[dashboard]'") from None
    from ..dashboard.security import read_token

    token = read_token(a.token_file)
    town = get_town(ctx)
    app = create_app(town, town_ledger(ctx), token=token,
                     hosts=[a.host] if a.host else [])
    sock = _bind(a.host or "127.0.0.1", a.port)
    port = sock.getsockname()[1]
    shown = a.host or "127.0.0.1"
    url = f"http://{'[' + shown + ']' if ':' in shown else shown}:{port}/"
    ctx.out({"url": url, "port": port, "writable": bool(token)},
            f"Dashboard of {town.name}: {url}  "
            f"({'writes need the token' if token else 'read-only'}; Ctrl-C stops it)")
    sys.stdout.flush()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                            timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


def setup(name: str, sub: Any) -> None:
    """Add the parser for ``gt dashboard``."""
    from .gt import COMMANDS

    p = add_parser(sub, name, COMMANDS[name][1])
    p.add_argument("--port", type=int, default=8377, help="port (default 8377; 0: any free one)")
    p.add_argument("--host", default=None,
                   help="address to listen on (default 127.0.0.1); its name is also accepted "
                        "in Host headers")
    p.add_argument("--token-file", metavar="FILE",
                   help="allow writes with the token in FILE (mode 600); else "
                        "$GT_DASHBOARD_TOKEN; without either the dashboard is read-only")
    p.set_defaults(func=_dashboard)
