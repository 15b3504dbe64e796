"""``bd`` commands that read many beads: list, ready, blocked, search, stats, events, prime.

``bd ready --json`` is the hottest command agents run: its JSON is built by the
database (:meth:`Ledger.ready_json`) and written out as one string.
"""

from __future__ import annotations

import sys

from ..errors import UsageError
from ..ledger.query import Filter
from ._app import Ctx, common_options, count, emit_json, split_csv

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only: the hot path skips it
    from typing import Any


def _priority(value: str | None) -> int | None:
    if value is None:
        return None
    from ..ledger.ops import check_priority

    return check_priority(value)


def _filter(ctx: Ctx) -> Filter:
    a = ctx.args
    f = Filter()
    statuses = split_csv(getattr(a, "status", None))
    if statuses:  # a misspelt status is an error, not an empty list
        from ..ledger.ops import check_status

        statuses = [check_status(s) for s in statuses]
    f.status = statuses
    f.issue_type = split_csv(getattr(a, "type", None))
    f.assignee = getattr(a, "assignee", None)
    f.unassigned = bool(getattr(a, "unassigned", False))
    f.labels_all = split_csv(getattr(a, "label", None))
    f.labels_any = split_csv(getattr(a, "label_any", None))
    exact = _priority(getattr(a, "priority", None))
    f.priority_min = _priority(getattr(a, "priority_min", None))
    f.priority_max = _priority(getattr(a, "priority_max", None))
    if exact is not None:
        f.priority_min = f.priority_max = exact
    parent = getattr(a, "parent", None)
    f.parent = ctx.resolve(parent) if parent else None
    mol = getattr(a, "mol", None)
    f.mol = ctx.resolve(mol) if mol else None
    f.text = getattr(a, "text", None) or getattr(a, "title_contains", None)
    f.include_ephemeral = bool(getattr(a, "include_wisps", False))
    f.include_templates = bool(getattr(a, "include_templates", False))
    return f


def _add_filters(p: Any, *, status: bool = True) -> None:
    if status:
        p.add_argument("-s", "--status", action="append", help="statuses (comma separated)")
    p.add_argument("-t", "--type", action="append", help="issue types (comma separated)")
    p.add_argument("-a", "--assignee", help="assigned to")
    p.add_argument("--unassigned", "--no-assignee", dest="unassigned", action="store_true",
                   help="only beads with no assignee")
    p.add_argument("-l", "--label", action="append", help="has ALL these labels")
    p.add_argument("--label-any", action="append", help="has ANY of these labels")
    p.add_argument("-p", "--priority", help="exactly this priority")
    p.add_argument("--priority-min", help="priority at least (0 = highest)")
    p.add_argument("--priority-max", help="priority at most")
    p.add_argument("--parent", help="children of this bead")


# --------------------------------------------------------------------- list
def _list_text(beads: list[dict[str, Any]], total: int) -> str:
    from ._output import color, table

    if not beads:
        return "No issues found."
    icons = {"open": "○", "in_progress": "◐", "blocked": "●", "deferred": "❄",
             "closed": "✓", "pinned": "📌", "hooked": "🪝"}
    rows = [(icons.get(b["status"], "?"), b["id"], f"P{b['priority']}", b["issue_type"],
             b.get("assignee") or "", b["title"]) for b in beads]
    body = table(rows, ("", "ID", "PRI", "TYPE", "ASSIGNEE", "TITLE"))
    n_open = sum(1 for b in beads if b["status"] == "open")
    n_prog = sum(1 for b in beads if b["status"] == "in_progress")
    more = f" (showing {len(beads)} of {total}; -n 0 for all)" if total > len(beads) else ""
    return (f"{body}\n\n" + color(f"Total: {len(beads)} issues ({n_open} open, "
                                  f"{n_prog} in progress){more}", "dim"))


def _list(ctx: Ctx) -> int:
    a = ctx.args
    if a.remote:  # another town's beads, as of the last sync
        from .gt_federation import bd_list_remote

        return bd_list_remote(ctx, _filter, _list_text)
    if a.org:  # the work of an organisation's members, here and in synced towns
        return _list_org(ctx)
    if a.project:  # a bead, its descendants and (optionally) its delegated parts
        return _list_project(ctx)
    if a.include_delegated:
        raise UsageError("--include-delegated goes with --project=ID")
    f = _filter(ctx)
    f.include_closed = bool(a.all) or bool(f.status)
    led = ctx.ledger
    beads = led.list(f, sort=a.sort, reverse=a.reverse, limit=a.limit)
    total = led.count(f) if a.limit and len(beads) == a.limit and not ctx.json else len(beads)
    ctx.out(beads, lambda: _list_text(beads, total))
    return 0


def _list_org(ctx: Ctx) -> int:
    """``bd list --org=ORG``: beads of the organisation's members, with where they live."""
    from ..federation.aggregate import org_beads

    beads = org_beads(ctx.ledger, ctx.args.org, include_closed=bool(ctx.args.all))
    total = len(beads)
    if ctx.args.limit:
        beads = beads[:ctx.args.limit]

    def text() -> str:
        if not beads:
            return f"No beads by members of {ctx.args.org} (here or in synced towns)"
        lines = [f"Beads by members of {ctx.args.org} ({total}):"]
        lines += [f"  {b.get('town')}  {b.get('uri') or b['id']}  [P{b.get('priority', 2)}] "
                  f"[{b.get('status')}] {b.get('title', '')}" for b in beads]
        return "\n".join(lines)

    ctx.out(beads, text)
    return 0


def _list_project(ctx: Ctx) -> int:
    """``bd list --project=ID [--include-delegated]``."""
    from ..federation.aggregate import project_beads

    beads = project_beads(ctx.ledger, ctx.resolve(ctx.args.project),
                          include_delegated=bool(ctx.args.include_delegated))

    def text() -> str:
        return "\n".join(f"{'  ' * (1 + int(b.get('depth') or 0))}{b.get('town')}  "
                         f"{b.get('uri') or b['id']}  "
                         f"[{b.get('status') or b.get('delegation_status')}] "
                         f"{b.get('title') or ''}" for b in beads)

    ctx.out(beads, text)
    return 0


def _search(ctx: Ctx) -> int:
    a = ctx.args
    f = _filter(ctx)
    f.include_closed = True
    beads = ctx.ledger.search(" ".join(a.query), f, limit=a.limit)
    ctx.out(beads, lambda: _list_text(beads, len(beads)))
    return 0


# -------------------------------------------------------------------- ready
def _ready(ctx: Ctx) -> int:
    a = ctx.args
    f = _filter(ctx)
    led = ctx.ledger
    if a.claim:
        bead = led.claim_next(f)
        if ctx.json:
            emit_json([bead] if bead else [])
        elif ctx.quiet:  # only the claimed id, nothing when there was nothing to claim
            if bead:
                print(bead["id"])
        elif bead:
            print(f"✓ Claimed issue: {bead['id']}: {bead['title']}")
        else:
            print("✨ No ready work to claim")
        return 0
    if a.sort:  # upstream's policies: hybrid, priority, oldest
        from ..ledger.compat import sort_ready

        beads = sort_ready(led.ready(f), a.sort)
        beads = beads[:a.limit] if a.limit else beads
    elif ctx.json:
        sys.stdout.write(led.ready_json(f, limit=a.limit) + "\n")
        return 0
    else:
        beads = led.ready(f, limit=a.limit)
    if ctx.json:
        emit_json(beads)
        return 0
    if not beads:
        print("✨ No ready work found (all issues have blocking dependencies)")
        return 0
    from ._output import bead_line

    lines = [f"📋 Ready work ({len(beads)} issues with no blockers):", ""]
    for n, b in enumerate(beads, 1):
        lines.append(f"{n}. {bead_line(b, show_status=False)}")
    print("\n".join(lines))
    return 0


def _blocked(ctx: Ctx) -> int:
    beads = ctx.ledger.blocked(_filter(ctx))

    def text() -> str:
        if not beads:
            return "✨ No blocked issues"
        lines = [f"🚫 Blocked issues ({len(beads)}):", ""]
        for b in beads:
            lines.append(f"[P{b['priority']}] {b['id']}: {b['title']}")
            if b["blocked_by"]:
                lines.append(f"  Blocked by {len(b['blocked_by'])} open dependencies: "
                             f"[{', '.join(b['blocked_by'])}]")
            for target in b["blocked_by"]:
                if target.startswith("gt://"):  # another town's bead: say why it holds
                    from ..federation.deps import reason

                    lines.append(f"  Remote: {reason(ctx.ledger, target)}")
            for why in b.get("held_by", []):
                lines.append(f"  Held: {why}")
        return "\n".join(lines)

    ctx.out(beads, text)
    return 0


# ------------------------------------------------------------------- events
def _event_line(e: dict[str, Any]) -> str:
    import json

    payload = json.dumps(e["payload"], ensure_ascii=False) if e["payload"] else ""
    return f"{e['seq']:>6} {e['ts']} {e['type']:<16} {e['actor'] or '-':<20} " \
           f"{e['bead_id'] or '-':<14} {payload}"


def _events(ctx: Ctx) -> int:
    from ._events import run_events

    return run_events(ctx, ctx.ledger, _event_line, "No events")


# -------------------------------------------------------------------- prime
def _prime(ctx: Ctx) -> int:
    led = ctx.ledger
    me = led.actor
    mine = led.list(Filter(status=["in_progress", "hooked"], assignee=me), sort="priority")
    ready = led.ready(limit=ctx.args.limit)
    stats = led.stats()
    data = {"actor": me, "in_progress": mine, "ready": ready,
            "ready_count": stats["ready_issues"], "blocked_count": stats["blocked_issues"],
            "open_count": stats["open_issues"]}

    def text() -> str:
        lines = [f"# Beads workflow context for {me}", ""]
        if mine:
            lines.append("## Your work in progress (finish these first)")
            lines += [f"- {b['id']} [P{b['priority']}] {b['title']} ({b['status']})" for b in mine]
            lines.append("")
        lines.append(f"## Ready work ({stats['ready_issues']} ready, "
                     f"{stats['blocked_issues']} blocked, {stats['open_issues']} open)")
        lines += [f"- {b['id']} [P{b['priority']}] [{b['issue_type']}] {b['title']}"
                  for b in ready] or ["- nothing is ready"]
        lines += ["", "## Commands",
                  "- bd ready --json              what can be started now",
                  "- bd update ID --claim         take it (atomic; fails if someone else has it)",
                  "- bd show ID                   details, dependencies, comments",
                  "- bd create \"Title\" -t bug -p 1 --deps discovered-from:ID   file new work",
                  "- bd close ID -r \"what was done\"   finish it",
                  "- bd export                    write .beads/issues.jsonl for git"]
        if ctx.args.full:  # upstream's full CLI reference, for agents without hooks
            from .bd_guide import PRIME_FULL

            lines += ["", PRIME_FULL]
        return "\n".join(lines)

    ctx.out(data, text)
    return 0


# -------------------------------------------------------------------- setup
def setup(name: str, sub: Any) -> None:
    """Add the parser for command ``name`` to ``sub``."""
    from .bd import COMMANDS

    p = sub.add_parser(name, help=COMMANDS[name][1], description=COMMANDS[name][1])
    common_options(p)
    if name == "list":
        _add_filters(p)
        p.add_argument("--all", action="store_true", help="include closed beads")
        p.add_argument("--text", "--title-contains", "--title", dest="text",
                       help="text to look for")
        p.add_argument("--mol", help="only the steps of this molecule")
        p.add_argument("-n", "--limit", type=count, default=50, help="at most N (0 = all)")
        p.add_argument("--sort", default="priority",
                       help="priority, created, updated, id, title, status, closed")
        p.add_argument("-r", "--reverse", action="store_true")
        p.add_argument("--include-wisps", action="store_true", help="include ephemeral beads")
        p.add_argument("--include-templates", action="store_true", help="include proto beads")
        p.add_argument("--remote", metavar="NAME",
                       help="a remote town's beads as of its last sync (gt remote)")
        p.add_argument("--org", metavar="ORG",
                       help="beads of an organisation's members, here and in synced towns")
        p.add_argument("--project", metavar="ID",
                       help="a bead and its descendants (a project)")
        p.add_argument("--include-delegated", action="store_true",
                       help="with --project: the parts other towns took by delegation")
        p.set_defaults(func=_list)
    elif name == "search":
        p.add_argument("query", nargs="+", help="text")
        _add_filters(p)
        p.add_argument("-n", "--limit", type=count, default=50, help="at most N (0 = all)")
        p.set_defaults(func=_search)
    elif name == "ready":
        _add_filters(p, status=False)
        p.add_argument("-n", "--limit", type=count, default=10, help="at most N (0 = all)")
        p.add_argument("--mol", help="only the ready steps of this molecule (wisps included)")
        p.add_argument("--sort", choices=("hybrid", "priority", "oldest"),
                       help="upstream's order policies (default: priority, age, id)")
        p.add_argument("--claim", action="store_true",
                       help="atomically claim the first ready bead and print it")
        p.set_defaults(func=_ready)
    elif name == "blocked":
        _add_filters(p, status=False)
        p.set_defaults(func=_blocked)
    elif name == "events":
        from ._events import add_event_options

        add_event_options(p)
        p.set_defaults(func=_events)
    elif name == "prime":
        p.add_argument("-n", "--limit", type=count, default=10, help="ready beads to show")
        p.add_argument("--full", action="store_true", help="add the full command reference")
        p.add_argument("--mcp", action="store_true", help="(accepted for upstream; the default)")
        p.set_defaults(func=_prime)
    else:  # pragma: no cover - COMMANDS and setup are kept in step by a test
        raise UsageError(f"bd: no such command {name}")
