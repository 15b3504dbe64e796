"""``gt init``, ``gt config``, ``gt status``, ``gt feed``, ``gt events``."""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from typing import Any

from ._app import Ctx, seconds
from .gt_common import add_action, add_actions, add_parser, get_town, town_ledger


# ------------------------------------------------------------------ init
def _init(ctx: Ctx) -> int:
    from ..town.core import init_town

    a = ctx.args
    town = init_town(a.dir, name=a.name, prefix=a.prefix, provider=a.provider, email=a.email,
                     actor=ctx.actor, owner=a.owner)
    if a.owner:  # a federated town: its key and .town.json (so beads have a gt:// uri)
        from ..federation.identity import load_identity, write_town_json

        write_town_json(town.root, load_identity(town.config, town.gt_dir))
    if not a.no_chains:  # every piece of work leaves a signed trace (gastown.chains)
        from .gt_chain import enable_for_town

        with town.ledger(ctx.actor) as led:
            enable_for_town(town, led)
    ctx.out({"town": town.root, "name": town.name, "prefix": town.config.town.prefix,
             "config": town.config_path},
            f"Created town {town.name} in {town.root}\n"
            f"  configuration: {town.config_path} (edit it; check with 'gt config show')\n"
            f"  next: gt rig add NAME PATH|URL, then gt agent add NAME --rig NAME --preset ...")
    return 0


# ---------------------------------------------------------------- config
def _config_json(cfg: Any) -> dict[str, Any]:
    out = dataclasses.asdict(cfg)
    out.pop("raw", None)
    return out


def _argv_text(argv: list[str] | None) -> str:
    """An argument vector as one shell-quoted line (how town.toml may write it)."""
    import shlex

    return shlex.join(argv) if argv else ""


def _config_show(ctx: Ctx) -> int:
    from ..config.providers import provider_names
    from ..town.prime import role_template

    town = get_town(ctx)
    cfg = town.config
    roles: dict[str, Any] = {}
    for name in sorted({*cfg.roles, *(a.role for a in cfg.all_agents())}):
        try:
            roles[name] = role_template(town, name)[1]
        except Exception as exc:  # noqa: BLE001 - shown, not fatal: show what is wrong
            roles[name] = f"MISSING ({exc})"
    data = {**_config_json(cfg), "root": town.root, "role_templates": roles}

    def text() -> str:
        t = cfg.town
        lines = [f"Town {t.name} ({town.root})", f"  config:   {cfg.path}",
                 f"  prefix:   {t.prefix}", f"  provider: {t.provider}",
                 f"  email:    {t.email}", "", "Rigs:"]
        for r in cfg.rigs.values():
            lines.append(f"  {r.name:<16} {r.branch:<10} {r.source}"
                         + (f"  pool={r.pool}" if r.pool else ""))
            lines += [f"    test: {_argv_text(r.test) or '(none: lands without testing)'}",
                      f"    push: {'yes' if r.push else 'no'}",
                      f"    land: {_argv_text(r.land) or '(fast-forward)'}"]
        if not cfg.rigs:
            lines.append("  (none)")
        lines += ["", "Agents:"]
        lines += [f"  {a.name:<16} rig={a.rig or '-':<12} role={a.role:<12} preset={a.preset}"
                  + (f" provider={a.provider}" if a.provider else "")
                  for a in cfg.agents.values()] or ["  (none)"]
        lines += ["", "Pools:"]
        lines += [f"  {p.name:<16} rig={p.rig:<12} role={p.role:<12} preset={p.preset} "
                  f"max={p.max}" for p in cfg.pools.values()] or ["  (none)"]
        lines += ["", "Roles:"]
        lines += [f"  {n:<16} {src}" for n, src in roles.items()] or ["  (none)"]
        if cfg.groups:
            lines += ["", "Mail groups:"]
            lines += [f"  @{g:<15} {', '.join(m)}" for g, m in cfg.groups.items()]
        lines += ["", f"Presets: {', '.join(sorted(cfg.presets))}"]
        lines += [f"Providers: {', '.join(provider_names())}"]
        lines += [f"  [providers.{k}] " + ", ".join(f"{o} = {v!r}" for o, v in opts.items())
                  for k, opts in sorted(cfg.providers.items())]
        return "\n".join(lines)

    ctx.out(data, text)
    return 0


def _config_path(ctx: Ctx) -> int:
    town = get_town(ctx)
    ctx.out({"path": town.config_path}, town.config_path)
    return 0


# ---------------------------------------------------------------- status
def _status(ctx: Ctx) -> int:
    from ..controller.overview import town_overview
    from ..town.status import render_status
    from ._output import painter

    data = town_overview(get_town(ctx), town_ledger(ctx), events=ctx.args.events,
                         everything=ctx.args.verbose)
    from .gt_federation import status_section  # remotes and the age of what is known

    fed, fed_text = status_section(get_town(ctx).root, get_town(ctx).gt_dir, town_ledger(ctx))
    if fed:
        data["federation"] = fed
    from .gt_mesh import auto_section  # the controller's mesh rounds, when it runs them

    mesh, mesh_text = auto_section(town_ledger(ctx))
    if mesh:
        data["mesh"] = mesh
        fed_text = f"{fed_text}\n{mesh_text}" if fed_text else mesh_text
    ctx.out(data, lambda: render_status(data, painter()) + (f"\n{fed_text}" if fed_text else ""))
    return 0


#: a terminal's alternate screen with the cursor hidden, and back
_SCREEN_ON, _SCREEN_OFF = "\x1b[?1049h\x1b[?25l", "\x1b[?25h\x1b[?1049l"


def _feed_frame(ctx: Ctx, town: Any, led: Any, size: Any) -> tuple[dict[str, Any], str]:
    """The overview's data and one screen of it (a counts line over ``render_feed``)."""
    from ..dashboard.views import overview
    from ..town.status import render_feed
    from ._output import painter

    data = overview(town, led, events=size.lines, everything=ctx.args.verbose)
    head = (f"Ready: {data['ready']['count']}  Blocked: {data['blocked']['count']}  "
            f"Event: {data['last_seq']}")
    frame = head[:size.columns] + "\n" + render_feed(data, size.columns, size.lines - 2,
                                                      painter())
    return data, frame


def _feed(ctx: Ctx) -> int:
    """Draw the town; on a terminal, redraw it in place when an event lands or time passes."""
    import shutil

    town = get_town(ctx)
    led = town_ledger(ctx)
    live = ctx.tty and not ctx.json and not ctx.args.once
    shown, seen, drawn_at = "", -1, 0.0
    try:
        if live:
            sys.stdout.write(_SCREEN_ON)
        while True:
            size = shutil.get_terminal_size((120, 40))
            data, frame = _feed_frame(ctx, town, led, size)
            seen, drawn_at = data["last_seq"], time.monotonic()
            if ctx.json:
                # the same object as gt status --json, one a line
                extra = ("ready", "blocked", "last_seq", "abnormal")
                sys.stdout.write(json.dumps({k: v for k, v in data.items() if k not in extra},
                                            default=str) + "\n")
            elif not live:
                sys.stdout.write(frame)
            elif frame != shown:
                # home, each line over the old one (erase its rest), erase what is below
                lines = frame.rstrip("\n").split("\n")
                sys.stdout.write("\x1b[H" + "\x1b[K\r\n".join(lines) + "\x1b[K\x1b[J")
                shown = frame
            sys.stdout.flush()
            if ctx.args.once:
                return 0
            # wake for a new event at once, else redraw every --interval (agents' output)
            while (time.monotonic() - drawn_at < ctx.args.interval
                   and led.last_event_seq() == seen):
                time.sleep(min(0.1, ctx.args.interval))
    except KeyboardInterrupt:
        return 0
    finally:
        if live:
            sys.stdout.write(_SCREEN_OFF)
            sys.stdout.flush()


# ---------------------------------------------------------------- events
def _events(ctx: Ctx) -> int:
    from ..town.status import render_event
    from ._events import run_events

    return run_events(ctx, town_ledger(ctx), render_event, "(no events)")


def setup(name: str, sub: Any) -> None:
    """Add the parser for command ``name``."""
    from .gt import COMMANDS

    help_text = COMMANDS[name][1]
    p = add_parser(sub, name, help_text)
    if name == "init":
        p.add_argument("dir", nargs="?", default=".", help="the town's folder (default: here)")
        p.add_argument("--name", help="the town's name (default: the folder's name)")
        p.add_argument("--prefix", help="id prefix of the town ledger's beads")
        p.add_argument("--owner", help="the entity owning the town (an email or domain), "
                                       "its gt://OWNER/NAME address")
        p.add_argument("--no-chains", action="store_true",
                       help="no entity chains (turn them on later with 'gt chain enable')")
        p.add_argument("--provider", help="default session provider: tmux, subprocess or "
                                          "any registered one (default: tmux)")
        p.add_argument("--email", help="git author email of the agents "
                                       "(default: your git user.email)")
        p.set_defaults(func=_init)
    elif name == "config":
        actions = add_actions(p)
        add_action(actions, "show", "the configuration, validated").set_defaults(
            func=_config_show)
        add_action(actions, "path", "where town.toml is").set_defaults(func=_config_path)
        p.set_defaults(func=_config_show)
    elif name == "status":
        p.add_argument("-n", "--events", type=int, default=10, help="recent events to show")
        p.add_argument("-v", "--verbose", action="store_true",
                       help="every recent event, not only milestones")
        p.set_defaults(func=_status)
    elif name == "feed":
        p.add_argument("--once", action="store_true", help="draw one screen and exit")
        p.add_argument("-v", "--verbose", action="store_true",
                       help="every event, not only milestones (steps closed, dispatches, "
                            "merges, restarts, quarantines)")
        p.add_argument("--interval", type=seconds, default=1.0, help="seconds between screens")
        p.set_defaults(func=_feed)
    elif name == "events":
        from ._events import add_event_options

        add_event_options(p)
        p.set_defaults(func=_events)
