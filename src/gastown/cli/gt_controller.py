"""``gt up`` and ``gt down``: the town's controller daemon."""

from __future__ import annotations

import time
from typing import Any

from ..errors import UsageError
from ._app import Ctx, seconds
from .gt_common import add_parser, get_town


def _up(ctx: Ctx) -> int:
    from ..controller.service import controller_info, run_foreground, up

    town = get_town(ctx)
    node, capacity = ctx.args.node, ctx.args.capacity
    if ctx.args.foreground:
        return run_foreground(town, node=node, capacity=capacity)
    if getattr(ctx.args, "watch", False):
        from ..controller.watchdog import start_watchdog

        if node is not None:
            raise UsageError("gt up --watch --node: a node is supervised by its machine's "
                             "service manager (see docs/systemd.md), not by --watch")
        dog = start_watchdog(town, wait=ctx.args.wait)
        info = {**controller_info(town), "watchdog": dog, "started": dog["started"]}
        verb = "Watchdog started" if dog["started"] else "Watchdog already running"
        ctx.out(info, f"{verb} for {town.name} (pid {dog['pid']}), controller pid "
                      f"{info['pid']}; it restarts the controller if it dies; "
                      f"log: {dog['log']}")
    else:
        info = up(town, wait=ctx.args.wait, node=node, capacity=capacity)
        verb = "Controller up" if info["started"] else "Controller already running"
        as_node = f" as node {info['node']}" if info.get("node") else ""
        ctx.out(info, f"{verb} for {town.name}{as_node} (pid {info['pid']}); "
                      f"log: {info['log']}")
    if ctx.args.wait_tick:
        deadline = time.monotonic() + ctx.args.wait
        while not controller_info(town).get("last_tick") and time.monotonic() < deadline:
            time.sleep(0.05)
    return 0


def _down(ctx: Ctx) -> int:
    from ..controller.service import down

    town = get_town(ctx)
    out = down(town, timeout=ctx.args.timeout, sessions=ctx.args.sessions)
    if out["stopped"]:
        text = f"Controller stopped (pid {out.get('pid')})" + (
            " after SIGKILL" if out["killed"] else "")
    elif out["was_running"]:
        text = f"Controller (pid {out.get('pid')}) did not stop"
    else:
        text = "No controller was running"
    if ctx.args.sessions:
        stopped = out.get("sessions_stopped") or []
        text += f"; stopped sessions: {', '.join(stopped) or 'none'}"
    ctx.out(out, text)
    return 0 if out["stopped"] or not out["was_running"] else 9


def _capacity(text: str) -> int:
    """``--capacity``: a whole number of agents from 1 up."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 100000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of agents from 1 to 100000")
    return value


def setup(name: str, sub: Any) -> None:
    """Add the parser for ``up`` or ``down``."""
    from .gt import COMMANDS

    p = add_parser(sub, name, COMMANDS[name][1])
    if name == "up":
        p.add_argument("--foreground", action="store_true",
                       help="run in this terminal (logs on stderr) until Ctrl-C")
        p.add_argument("--wait", type=seconds, default=20.0, metavar="S",
                       help="how long to wait for the daemon to start (default 20)")
        p.add_argument("--wait-tick", action="store_true",
                       help="also wait until its first pass over the town is done")
        p.add_argument("--watch", action="store_true",
                       help="run under a watchdog that restarts the controller if it dies")
        p.add_argument("--node", metavar="NAME", default=None,
                       help="run as node NAME of a town whose nodes share one PostgreSQL "
                            "ledger (agents: node = NAME in town.toml; one node leads)")
        p.add_argument("--capacity", type=_capacity, default=None, metavar="N",
                       help="how many agents this node runs (default [nodes] capacity)")
        p.set_defaults(func=_up)
    else:
        p.add_argument("--timeout", type=seconds, default=30.0, metavar="S",
                       help="seconds to wait for a clean stop before SIGKILL (default 30)")
        p.add_argument("--sessions", action="store_true",
                       help="also stop the agent sessions the town started")
        p.set_defaults(func=_down)
