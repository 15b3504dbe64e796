"""``gt mq``: the merge queue (list, status, retry, reject)."""

from __future__ import annotations

from typing import Any

from ..errors import UsageError
from ._app import Ctx
from .gt_common import add_action, add_actions, add_parser, clean, get_town, town_ledger


def _aging(ctx: Ctx) -> float:
    return get_town(ctx).config.policies.merge.aging


def _line(d: dict[str, Any]) -> str:
    return (f"{d['id']:<14} {d['state']:<13} P{d['priority']}({d['effective_priority']:>2}) "
            f"{d['rig']}/{d['base']:<10} {clean(d['branch'] or '-'):<28} "
            f"{clean(d['author'] or '-')}")


def _list(ctx: Ctx) -> int:
    from ..controller.mergeq import describe, queue

    aging = _aging(ctx)
    statuses = ("open", "in_progress", "blocked") + (("closed",) if ctx.args.all else ())
    led = town_ledger(ctx)
    beads = queue(led, aging, rig=ctx.args.rig, statuses=("in_progress",))
    beads += queue(led, aging, rig=ctx.args.rig, statuses=("open",))
    rest = [s for s in statuses if s not in ("open", "in_progress")]
    if rest:
        beads += queue(led, aging, rig=ctx.args.rig, statuses=tuple(rest))
    items = [describe(b, aging) for b in beads]

    def text() -> str:
        if not items:
            return "The merge queue is empty"
        head = f"{'MR':<14} {'STATE':<13} {'PRIO(EFF)':<9} {'TARGET':<17} {'BRANCH':<28} AUTHOR"
        return "\n".join([head] + [_line(d) for d in items])

    ctx.out(items, text)
    return 0


def _status(ctx: Ctx) -> int:
    from ..controller.mergeq import describe

    if not ctx.args.mr:
        return _list(ctx)
    led = town_ledger(ctx)
    bead = led.get(led.resolve_id(ctx.args.mr))
    if bead.get("issue_type") != "merge-request":
        raise UsageError(f"{bead['id']} is not a merge request")
    d = describe(bead, _aging(ctx))

    def text() -> str:
        mq = d["mq"]
        lines = [_line(d), f"  commit {d['commit']}", f"  {clean(bead['title'])}"]
        for key in ("detail", "files", "merged", "attempts", "reason", "fix", "todo"):
            if mq.get(key):
                lines.append(f"  {key}: {clean(mq[key])}")
        if mq.get("git"):  # everything git said, line by line
            lines += ["  git said:"] + [f"    {clean(ln)}" for ln in str(mq["git"]).splitlines()]
        return "\n".join(lines)

    ctx.out(d, text)
    return 0


def _retry(ctx: Ctx) -> int:
    from ..controller.mergeq import describe, retry

    bead = retry(town_ledger(ctx), ctx.args.mr, actor=ctx.actor)
    ctx.out(describe(bead, _aging(ctx)), f"{bead['id']} is back in the queue")
    return 0


def _reject(ctx: Ctx) -> int:
    from ..controller.mergeq import describe, reject

    bead = reject(get_town(ctx), town_ledger(ctx), ctx.args.mr, ctx.args.reason,
                  actor=ctx.actor)
    ctx.out(describe(bead, _aging(ctx)), f"{bead['id']} rejected; its author was told")
    return 0


def setup(name: str, sub: Any) -> None:
    """Add the ``mq`` parser."""
    from .gt import COMMANDS

    p = add_parser(sub, name, COMMANDS[name][1])
    actions = add_actions(p)
    q = add_action(actions, "list", "requests in landing order (per target)")
    q.add_argument("--rig", help="only this rig's requests")
    q.add_argument("--all", action="store_true", help="also landed and rejected ones")
    q.set_defaults(func=_list)
    q = add_action(actions, "status", "one request's state (or the queue)")
    q.add_argument("mr", nargs="?")
    q.add_argument("--rig", help="only this rig's requests (without MR)")
    q.add_argument("--all", action="store_true", help="with landed ones (without MR)")
    q.set_defaults(func=_status)
    q = add_action(actions, "retry", "put a sent-back or rejected request back in the queue")
    q.add_argument("mr")
    q.set_defaults(func=_retry)
    q = add_action(actions, "reject", "take a request out of the queue; its author is told")
    q.add_argument("mr")
    q.add_argument("-r", "--reason", required=True, help="why (sent to the author)")
    q.set_defaults(func=_reject)
    p.set_defaults(func=_list, rig=None, all=False)
