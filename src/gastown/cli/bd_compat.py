"""``bd`` commands that upstream (Go) ``bd`` users and tools expect.

note, status/stats, count, stale, epic, defer, undefer, children, migrate,
repair-deps, lint, and upstream's ``delete`` preview and ``doctor --check``
(the guides, version and info are in :mod:`.bd_guide`).  Output lines
and ``--json`` shapes follow the Go ``bd`` so that its tools (the beads MCP
server among them) read them unchanged.  Loaded only for these commands.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..errors import UsageError, ValidationError
from ..ledger import compat
from ._app import Ctx, common_options, count, emit_json, split_csv, text_arg


# -------------------------------------------------------------------- note
def _note(ctx: Ctx) -> int:
    a = ctx.args
    text = text_arg(" ".join(a.text) if a.text else None, "-" if a.stdin else a.file,
                    "the note")
    text = (text or "").rstrip("\n")
    if not text.strip():
        raise UsageError("note text is required: bd note ID \"text\"")
    from ..ledger.update import BeadUpdate, update_beads

    bead_id = ctx.resolve(a.id)
    bead = update_beads(ctx.ledger, [bead_id], BeadUpdate(append_notes=text))[0]
    ctx.out(bead, f"✓ Note added to {bead_id} — {bead['title']}")
    return 0


# ------------------------------------------------------------ status/stats
def _status(ctx: Ctx) -> int:
    led = ctx.ledger
    report = compat.status_report(led, assignee=led.actor if ctx.args.assigned else None)
    if ctx.args.no_activity:
        report.pop("recent_activity")
    if ctx.json:
        # our earlier flat keys stay alongside upstream's shape for existing scripts
        flat = led.stats() if not ctx.args.assigned else {}
        emit_json({**report, **{k: v for k, v in flat.items() if k not in report}})
        return 0
    s = report["summary"]
    lines = ["", "📊 Issue Database Status", "", "Summary:",
             f"  Total Issues:           {s['total_issues']}",
             f"  Open:                   {s['open_issues']}",
             f"  In Progress:            {s['in_progress_issues']}",
             f"  Blocked:                {s['blocked_issues']}",
             f"  Closed:                 {s['closed_issues']}",
             f"  Ready to Work:          {s['ready_issues']}"]
    extended = [(s["pinned_issues"], f"  Pinned:                 {s['pinned_issues']}"),
                (s["epics_eligible_for_closure"],
                 f"  Epics Ready to Close:   {s['epics_eligible_for_closure']}"),
                (s["average_lead_time_hours"],
                 f"  Avg Lead Time:          {s['average_lead_time_hours']:.1f} hours")]
    if any(v for v, _ in extended):
        lines += ["", "Extended:"] + [line for v, line in extended if v]
    if not ctx.args.assigned:  # ours, as `bd stats` printed it before
        flat = led.stats()
        lines += ["", "By type: " + (", ".join(f"{k} {v}" for k, v in flat["by_type"].items())
                                     or "none"),
                  f"Wisps: {flat['wisps']}  Templates: {flat['templates']}  "
                  f"Events: {flat['events']}"]
    r = report.get("recent_activity")
    if r:
        lines += ["", f"Recent Activity (last {r['hours_tracked']} hours):",
                  f"  Total Changes:          {r['total_changes']}",
                  f"  Issues Created:         {r['issues_created']}",
                  f"  Issues Closed:          {r['issues_closed']}",
                  f"  Issues Reopened:        {r['issues_reopened']}",
                  f"  Issues Updated:         {r['issues_updated']}"]
    lines += ["", "For more details, use 'bd list' to see individual issues.", ""]
    print("\n".join(lines))
    return 0


# ------------------------------------------------------------------- count
def _count(ctx: Ctx) -> int:
    from ..ledger.ops import check_priority, check_status
    from ..ledger.query import Filter

    a = ctx.args
    f = Filter(include_closed=True)
    f.status = [check_status(s) for s in split_csv(a.status)]
    f.issue_type = split_csv(a.type)
    f.assignee = a.assignee
    f.labels_all = split_csv(a.label)
    f.labels_any = split_csv(a.label_any)
    f.text = a.title
    if a.priority is not None:
        f.priority_min = f.priority_max = check_priority(a.priority)
    if a.id:
        f.ids = [ctx.resolve(i) for i in split_csv([a.id])]
    groups = [g for g in ("status", "priority", "type", "assignee", "label")
              if getattr(a, f"by_{g}")]
    if len(groups) > 1:
        raise UsageError("give at most one --by-* grouping")
    result = compat.count_groups(ctx.ledger, f, groups[0] if groups else None)
    if "count" in result:
        ctx.out(result, str(result["count"]))
    else:
        ctx.out(result, lambda: "\n".join([f"Total: {result['total']}", ""] +
                                          [f"{g['group']}: {g['count']}"
                                           for g in result["groups"]]))
    return 0


# ------------------------------------------------------------------- stale
def _stale(ctx: Ctx) -> int:
    a = ctx.args
    if a.days < 1:
        raise ValidationError(f"--days must be at least 1, not {a.days}")
    if a.status and a.status not in ("open", "in_progress", "blocked", "deferred"):
        raise ValidationError(f"invalid --status {a.status!r}: use open, in_progress, "
                              "blocked or deferred")
    beads = compat.stale(ctx.ledger, a.days, a.status, a.limit)

    def text() -> str:
        if not beads:
            return "\n✨ No stale issues found (all active)\n"
        lines = ["", f"⏰ Stale issues ({len(beads)} not updated in {a.days}+ days):", ""]
        for n, b in enumerate(beads, 1):
            lines.append(f"{n}. [P{b['priority']}] {b['id']}: {b['title']}")
            lines.append(f"   Status: {b['status']}, Last updated: {b['days_stale']} days ago")
            if b.get("assignee"):
                lines.append(f"   Assignee: {b['assignee']}")
            lines.append("")
        return "\n".join(lines)

    ctx.out(beads, text)
    return 0


# -------------------------------------------------------------------- epic
def _epic(ctx: Ctx) -> int:
    a = ctx.args
    led = ctx.ledger
    if a.action == "status":
        rows = compat.epic_status(led, eligible_only=a.eligible_only)

        def text() -> str:
            if not rows:
                return "No open epics found"
            lines = []
            for r in rows:
                e = r["epic"]
                mark = "✓" if r["eligible_for_close"] else "○"
                lines.append(f"{mark} {e['id']} {e['title']}")
                lines.append(f"   Progress: {r['closed_children']}/{r['total_children']} "
                             "children closed")
                if r["eligible_for_close"]:
                    lines.append("   Eligible for closure")
            return "\n".join(lines)

        ctx.out(rows, text)
        return 0
    rows = compat.epic_status(led, eligible_only=True)
    ids = [r["epic"]["id"] for r in rows]
    if a.dry_run or not ids:
        ctx.out({"dry_run": a.dry_run, "would_close": ids, "closed": []},
                "No epics eligible for closure" if not ids else
                "Would close: " + ", ".join(ids))
        return 0
    closed = led.close_beads(ids, reason="All children completed")
    ctx.out({"closed": [b["id"] for b in closed], "count": len(closed)},
            "\n".join(f"✓ Closed epic {b['id']}: {b['title']}" for b in closed))
    return 0


# ----------------------------------------------------------- defer/undefer
def _defer(ctx: Ctx, undo: bool) -> int:
    from ..ledger.update import BeadUpdate, update_beads

    changes: dict[str, Any] = {"status": "open", "defer_until": None} if undo else \
        {"status": "deferred"}
    if not undo and ctx.args.until:
        from ..ledger.ops import check_when

        changes["defer_until"] = check_when(ctx.args.until, "--until")
    # all beads change in one transaction: a refused one leaves the others as they were
    beads = update_beads(ctx.ledger, [ctx.resolve(i) for i in ctx.args.ids],
                         BeadUpdate(changes))
    for b in beads:
        ctx.say(f"* Undeferred {b['id']} (now open)" if undo else f"* Deferred {b['id']}")
    if ctx.json:
        emit_json(beads)
    return 0


# ---------------------------------------------------------------- children
def _children(ctx: Ctx) -> int:
    from ..ledger.query import Filter

    parent = ctx.resolve(ctx.args.parent)
    kids = ctx.ledger.list(Filter(parent=parent), sort="id")

    def text() -> str:
        from ._output import bead_line

        if not kids:
            return f"No children of {parent}"
        return "\n".join([f"Children of {parent} ({len(kids)}):"] +
                         ["  " + bead_line(k) for k in kids])

    ctx.out(kids, text)
    return 0


# ------------------------------------------------------- migrate, repair
def _migrate(ctx: Ctx) -> int:
    report = compat.migration_inspection(ctx.ledger)
    if not ctx.args.inspect:
        ctx.out({"status": "noop", "message": "the schema is current"},
                "✓ Database schema is current; no migration needed")
        return 0

    def text() -> str:
        st = report["current_state"]
        lines = ["", "Migration Inspection", "====================",
                 f"Schema Version: {st['schema_version']}", f"Issue Count: {st['issue_count']}",
                 f"Registered Migrations: {len(report['registered_migrations'])}"]
        if report["warnings"]:
            lines += ["", "Warnings:"] + [f"  ⚠ {w}" for w in report["warnings"]]
        return "\n".join(lines)

    ctx.out(report, text)
    return 0


def _repair_deps(ctx: Ctx) -> int:
    led = ctx.ledger
    orphans = compat.orphan_dependencies(led)
    result: dict[str, Any] = {"orphans_found": len(orphans), "orphans": orphans}
    if ctx.args.fix:
        result["fixed"] = compat.remove_orphans(led, orphans)

    def text() -> str:
        if not orphans:
            return "\n✓ No orphaned dependencies found\n"
        lines = ["", f"⚠ Found {len(orphans)} orphaned dependencies:", ""]
        for n, o in enumerate(orphans, 1):
            lines.append(f"{n}. {o['issue_id']} → {o['depends_on_id']} ({o['type']}) "
                         f"[{o['depends_on_id']} does not exist]")
        if ctx.args.fix:
            lines += ["", f"✓ Fixed {result['fixed']} orphaned dependencies"]
        else:
            lines += ["", "Run with --fix to automatically remove orphaned dependencies"]
        return "\n".join(lines)

    ctx.out(result, text)
    return 0


# --------------------------------------------------------- delete preview
def delete_preview(ctx: Ctx, bead_ids: list[str]) -> int:
    """``bd delete ID…`` without ``--force`` (or with ``--dry-run``): what would go."""
    from ..ledger.query import Filter

    led = ctx.ledger
    beads = [led.get(i) for i in bead_ids]
    edges = [e for i in bead_ids for e in led.deps(i) + led.dependents(i)]
    kids = [k for i in bead_ids for k in led.list(Filter(parent=i))]
    cascade = bool(ctx.args.cascade)
    cmd = "bd delete " + " ".join(bead_ids) + (" --cascade" if cascade else "") + " --force"
    if ctx.json:
        emit_json({"preview": True, "would_delete": bead_ids,
                   "dependencies": len(edges), "children": [k["id"] for k in kids],
                   "dry_run": bool(ctx.args.dry_run), "to_proceed": cmd})
        return 0
    lines = ["", "⚠️  DELETE PREVIEW", "",
             f"Issues to delete ({len(beads)}):" if len(beads) > 1 else "Issue to delete:"]
    lines += [f"  {b['id']}: {b['title']}" for b in beads]
    if edges:
        lines += ["", f"Dependency links to remove: {len(edges)}"]
        lines += [f"  {e['issue_id']} → {e['depends_on_id']} ({e['type']})" for e in edges]
    if kids:
        lines += ["", f"Children ({len(kids)}): " + ", ".join(k["id"] for k in kids)
                  + ("" if cascade else " (delete them too with --cascade)")]
    if ctx.args.dry_run:
        lines += ["", "(Dry-run mode - no changes made)"]
    else:
        lines += ["", "This operation cannot be undone!", f"To proceed, run: {cmd}", ""]
    print("\n".join(lines))
    return 0


# ------------------------------------------------------- doctor --check=…
def doctor_check(ctx: Ctx) -> int:
    """``bd doctor --check=validate [--fix]`` and ``--check=pollution [--clean --yes]``."""
    a = ctx.args
    led = ctx.ledger
    if a.check == "validate":
        fixed: dict[str, int] = {}
        if a.fix:
            fixed["orphaned_dependencies"] = compat.remove_orphans(
                led, compat.orphan_dependencies(led))
            fixed["stale_ready_rows"] = led.recompute_ready_state()
        checks = compat.validate_checks(led)
        ok = all(c["status"] == "ok" for c in checks)
        result: dict[str, Any] = {"path": led.beads_dir or led.store.url, "checks": checks,
                                  "overall_ok": ok}
        if a.fix:
            result["fixed"] = fixed
        icons = {"ok": "✓", "warning": "⚠", "error": "✗"}

        def validate_text() -> str:
            lines = ["", "Data Integrity"]
            lines += [f"  {icons[c['status']]} {c['name']}: {c['message']}" for c in checks]
            if not ok and not a.fix:
                lines += ["", "Tip: Use 'bd doctor --check=validate --fix' to auto-repair "
                              "fixable issues"]
            return "\n".join(lines)

        ctx.out(result, validate_text)
        # warnings (heuristics, fixable orphans) make overall_ok false but are not a
        # failed check: exit 1 only for errors, so tools still get the report
        return 1 if any(c["status"] == "error" for c in checks) else 0
    found = compat.pollution(led)
    high = [p for p in found if p["score"] >= 0.9]
    out: dict[str, Any] = {"polluted_count": len(found), "high_confidence": len(high),
                           "medium_confidence": len(found) - len(high), "issues": found}
    if a.clean and found:
        if not a.yes:
            raise UsageError(f"--clean deletes {len(found)} issues: add --yes to confirm")
        from ..ledger.jsonl import bead_lines

        backup = os.path.join(led.beads_dir or ".", "pollution-backup.jsonl")
        ids = [p["id"] for p in found]
        wanted = set(ids)
        with open(backup, "w", encoding="utf-8") as fh:  # to restore: bd import FILE
            fh.writelines(line + "\n" for bead_id, line in bead_lines(led, True)
                          if bead_id in wanted)
        deleted: list[str] = []
        with led.transaction() as t:  # all or none, as bd delete
            for bead_id in ids:
                deleted += t.delete(bead_id)
        out.update(deleted=len(deleted), backup=backup)

    def text() -> str:
        if not found:
            return "No test pollution detected!"
        lines = [f"Found {len(found)} potential test issues:", ""]
        lines += [f"  {p['id']}: {p['title']} (score {p['score']}: {', '.join(p['reasons'])})"
                  for p in found]
        if "deleted" in out:
            lines += ["", f"Backed up {len(found)} issues to {out['backup']}",
                      f"✓ Deleted {out['deleted']} test issues"]
        else:
            lines += ["", "Run 'bd doctor --check=pollution --clean --yes' to delete these "
                          "issues."]
        return "\n".join(lines)

    ctx.out(out, text)
    return 0


# -------------------------------------------------------------------- lint
_SECTIONS = {"bug": ("Steps to Reproduce", "Acceptance Criteria"),
             "task": ("Acceptance Criteria",), "feature": ("Acceptance Criteria",),
             "epic": ("Success Criteria",)}


def _lint(ctx: Ctx) -> int:
    from ..ledger.ops import check_status
    from ..ledger.query import Filter

    a = ctx.args
    led = ctx.ledger
    if a.ids:
        beads = [led.get(ctx.resolve(i)) for i in a.ids]
    else:  # a misspelt status is an error, not an empty report (as bd list)
        f = Filter(status=[] if a.status == "all" else [check_status(a.status or "open")],
                   issue_type=[a.type] if a.type else [])
        beads = led.list(f, sort="id")
    results = []
    for b in beads:
        body = "\n".join(str(b.get(k) or "") for k in ("description", "acceptance_criteria",
                                                       "design", "notes")).lower()
        missing = [s for s in _SECTIONS.get(str(b["issue_type"]), ())
                   if s.lower() not in body and not (s == "Acceptance Criteria"
                                                     and b.get("acceptance_criteria"))]
        if missing:
            results.append({"id": b["id"], "title": b["title"], "type": b["issue_type"],
                            "missing": missing, "warnings": len(missing)})
    out = {"total": len(results), "issues": len(results), "results": results}

    def text() -> str:
        if not results:
            return "✓ No template warnings found"
        lines = [f"Template warnings ({len(results)} issues):", ""]
        for r in results:
            lines.append(f"{r['id']} [{r['type']}]: {r['title']}")
            lines += [f"  ⚠ Missing: {m}" for m in r["missing"]]
        return "\n".join(lines)

    ctx.out(out, text)
    return 1 if results and a.ids else 0


# -------------------------------------------------------------------- setup
def setup(name: str, sub: Any) -> None:
    """Add the parser for command ``name`` to ``sub``."""
    from .bd import COMMANDS

    p: argparse.ArgumentParser = sub.add_parser(name, help=COMMANDS[name][1],
                                                description=COMMANDS[name][1])
    common_options(p)
    if name == "note":
        p.add_argument("id", metavar="ID")
        p.add_argument("text", nargs="*", metavar="TEXT")
        p.add_argument("--stdin", action="store_true", help="read the note from stdin")
        p.add_argument("--file", help="read the note from a file")
        p.set_defaults(func=_note)
    elif name in ("status", "stats"):
        p.add_argument("--all", action="store_true", help="(the default; accepted for upstream)")
        p.add_argument("--assigned", action="store_true", help="only beads assigned to you")
        p.add_argument("--no-activity", action="store_true", help="skip recent activity")
        p.set_defaults(func=_status)
    elif name == "count":
        p.add_argument("-s", "--status", action="append", help="statuses (comma separated)")
        p.add_argument("-p", "--priority", help="priority 0-4")
        p.add_argument("-a", "--assignee", help="assignee")
        p.add_argument("-t", "--type", action="append", help="issue types")
        p.add_argument("-l", "--label", action="append", help="has ALL these labels")
        p.add_argument("--label-any", action="append", help="has ANY of these labels")
        p.add_argument("--title", "--title-contains", dest="title", help="text to look for")
        p.add_argument("--id", help="only these ids (comma separated)")
        for g in ("status", "priority", "type", "assignee", "label"):
            p.add_argument(f"--by-{g}", action="store_true", help=f"group by {g}")
        p.set_defaults(func=_count)
    elif name == "stale":
        p.add_argument("-d", "--days", type=int, default=30, help="not updated in N days")
        p.add_argument("-s", "--status", help="open, in_progress, blocked or deferred")
        p.add_argument("-n", "--limit", type=count, default=50, help="at most N (0 = all)")
        p.set_defaults(func=_stale)
    elif name == "epic":
        p.add_argument("action", choices=("status", "close-eligible"))
        p.add_argument("--eligible-only", action="store_true",
                       help="status: only epics whose children are all closed")
        p.add_argument("--dry-run", action="store_true", help="close-eligible: only show")
        p.set_defaults(func=_epic)
    elif name in ("defer", "undefer"):
        p.add_argument("ids", nargs="+", metavar="ID")
        if name == "defer":
            p.add_argument("--until", help="defer until (+1h, +2d, YYYY-MM-DD, RFC 3339)")
        p.set_defaults(func=lambda c, undo=(name == "undefer"): _defer(c, undo))
    elif name == "children":
        p.add_argument("parent", metavar="PARENT_ID")
        p.set_defaults(func=_children)
    elif name == "migrate":
        p.add_argument("--inspect", action="store_true",
                       help="show the migration plan and database state")
        p.add_argument("--dry-run", action="store_true", help="change nothing")
        p.set_defaults(func=_migrate)
    elif name == "repair-deps":
        p.add_argument("--fix", action="store_true", help="remove orphaned dependencies")
        p.set_defaults(func=_repair_deps)
    elif name == "lint":
        p.add_argument("ids", nargs="*", metavar="ID")
        p.add_argument("-t", "--type", help="only this issue type")
        p.add_argument("-s", "--status", help="status (default open; 'all' for every status)")
        p.set_defaults(func=_lint)
    else:  # pragma: no cover - COMMANDS and setup are kept in step by a test
        raise UsageError(f"bd: no such command {name}")
