"""``bd`` commands that change or show single beads.

create, q, show, update, close, reopen, delete, label, comment(s), dep.
Confirmation lines follow the Go ``bd`` wording that agents already parse.
"""

from __future__ import annotations

import argparse
import json

from ..errors import UsageError, ValidationError
from ._app import Ctx, common_options, count, emit_json, split_csv, text_arg

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing is imported for type checkers only: the hot path skips it
    from typing import Any

_TYPES_HELP = "task, bug, feature, epic, chore, decision, spike, story, milestone, …"


def _metadata(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    from ..ledger.model import MAX_JSON_DEPTH, json_depth

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"--metadata is not valid JSON: {exc.msg} at column {exc.colno}") from None
    except RecursionError:
        raise ValidationError(f"--metadata nests more than {MAX_JSON_DEPTH} levels deep"
                              ) from None
    except ValueError as exc:  # an integer beyond Python's digit limit
        raise ValidationError(f"--metadata: {str(exc).split(';')[0]}") from None
    if not isinstance(value, dict):
        raise ValidationError("--metadata must be a JSON object")
    if json_depth(value) > MAX_JSON_DEPTH:
        raise ValidationError(f"--metadata nests more than {MAX_JSON_DEPTH} levels deep")
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("--metadata contains an unpaired surrogate (\\ud800-\\udfff)"
                              ) from None
    return value


def _deps(ctx: Ctx, values: list[str] | None) -> list[tuple[str, str]]:
    """``type:id`` or bare ``id`` (= blocks), comma separated."""
    out = []
    for item in split_csv(values):
        dep_type, _, target = item.rpartition(":")
        out.append((dep_type or "blocks", ctx.resolve(target)))
    return out


# ------------------------------------------------------------------ create
def _add_create_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("title", nargs="?", help="one-line title")
    p.add_argument("--title", dest="title_opt", help="title (alternative to the positional)")
    p.add_argument("-t", "--type", default="task", help=f"issue type ({_TYPES_HELP})")
    p.add_argument("-p", "--priority", default="2", help="0 (critical) … 4 (backlog), or P0-P4")
    p.add_argument("-d", "--description", "--body", dest="description", help="description")
    p.add_argument("--body-file", "--description-file", dest="description_file",
                   help="read the description from a file (- = stdin)")
    p.add_argument("--design", help="design notes")
    p.add_argument("--acceptance", help="acceptance criteria")
    p.add_argument("--notes", help="notes")
    p.add_argument("-l", "--labels", "--label", dest="labels", action="append",
                   help="labels, comma separated (repeatable)")
    p.add_argument("--parent", help="make this a child of PARENT (id PARENT.N)")
    p.add_argument("--deps", action="append",
                   help="dependencies: type:id or id (= blocks), comma separated")
    p.add_argument("--id", dest="force_id", help="use this exact id")
    p.add_argument("-a", "--assignee", help="assignee")
    p.add_argument("--owner", help="owner")
    p.add_argument("--defer", help="defer until (RFC 3339, YYYY-MM-DD, or +2d/+3h)")
    p.add_argument("--due", help="due (RFC 3339, YYYY-MM-DD, or +2d)")
    p.add_argument("--ephemeral", action="store_true", help="a wisp: never exported")
    p.add_argument("--metadata", help="JSON object of metadata")
    p.add_argument("-e", "--estimate", type=count, help="estimated minutes")
    p.add_argument("--external-ref", help="external reference (e.g. gh-42)")
    p.add_argument("--silent", action="store_true", help="print only the new id")


def _create(ctx: Ctx, quick: bool = False) -> int:
    a = ctx.args
    title = a.title if a.title is not None else a.title_opt
    if a.title is not None and a.title_opt is not None:
        raise UsageError("give the title once (positional or --title)")
    if not title:
        raise UsageError("title required: bd create \"Title\"")
    bead = ctx.ledger.create(
        title, issue_type=a.type, priority=a.priority,
        description=text_arg(a.description, a.description_file, "the description") or "",
        design=a.design or "", acceptance_criteria=a.acceptance or "", notes=a.notes or "",
        labels=split_csv(a.labels), parent=ctx.resolve(a.parent) if a.parent else None,
        deps=_deps(ctx, a.deps), id=a.force_id, assignee=a.assignee, owner=a.owner,
        defer_until=a.defer, due_at=a.due, ephemeral=a.ephemeral,
        metadata=_metadata(a.metadata), estimated_minutes=a.estimate,
        external_ref=a.external_ref)
    if quick or a.silent or ctx.quiet:
        if ctx.json:
            emit_json(bead)
        else:
            print(bead["id"])
        return 0
    ctx.out(bead, lambda: (f"✓ Created issue: {bead['id']}\n  Title: {bead['title']}\n"
                           f"  Priority: P{bead['priority']}\n  Status: {bead['status']}"))
    return 0


# -------------------------------------------------------------------- show
def _show_text(b: dict[str, Any]) -> str:
    from ._output import color, status_text

    lines = [color(f"{b['id']}: {b['title']}", "bold"),
             f"Status: {status_text(b['status'])}", f"Priority: P{b['priority']}",
             f"Type: {b['issue_type']}"]
    for key, label in (("assignee", "Assignee"), ("owner", "Owner"),
                       ("created_by", "Created by"), ("created_at", "Created"),
                       ("updated_at", "Updated"), ("started_at", "Started"),
                       ("closed_at", "Closed"), ("close_reason", "Close reason"),
                       ("defer_until", "Deferred until"), ("due_at", "Due"),
                       ("external_ref", "External ref"), ("estimated_minutes", "Estimate (min)"),
                       ("source_formula", "Formula")):
        if b.get(key) not in (None, ""):
            lines.append(f"{label}: {b[key]}")
    flags = [f for f in ("pinned", "ephemeral", "is_template") if b.get(f)]
    if flags:
        lines.append("Flags: " + ", ".join(flags))
    if b.get("labels"):
        lines.append("Labels: " + ", ".join(b["labels"]))
    if b.get("metadata"):
        lines.append("Metadata: " + json.dumps(b["metadata"], ensure_ascii=False))
    for key, label in (("description", "Description"), ("design", "Design"),
                       ("acceptance_criteria", "Acceptance Criteria"), ("notes", "Notes")):
        if b.get(key):
            lines += ["", f"{label}:", b[key].rstrip()]
    for key, label, arrow, other in (("dependencies", "Depends on", "→", "depends_on_id"),
                                     ("dependents", "Blocks", "←", "issue_id")):
        edges = b.get(key) or []
        if edges:
            lines += ["", f"{label} ({len(edges)}):"]
            for e in edges:
                title = e.get("title")
                desc = (f"{title} [P{e.get('priority')}] [{e.get('status')}]" if title
                        else e.get("remote_reason") or "(unknown)")
                lines.append(f"  {arrow} {e[other]}: {desc} ({e['type']})")
    comments = b.get("comments") or []
    if comments:
        lines += ["", f"Comments ({len(comments)}):"]
        for c in comments:
            lines.append(f"  [{c.get('author')}] at {c.get('created_at')}")
            lines += ["    " + t for t in str(c.get("text", "")).splitlines()]
    return "\n".join(lines)


def _show(ctx: Ctx) -> int:
    if any(i.startswith(("gt://", "hop://")) for i in ctx.args.ids):  # another town's bead
        from .gt_federation import bd_show_remote

        return bd_show_remote(ctx)
    beads = [ctx.ledger.show(ctx.resolve(i)) for i in ctx.args.ids]
    town = _town_address(ctx)
    for b in beads:
        b["comments"] = _string_ids(b.get("comments") or [])
        if town:
            b["uri"] = _bead_uri(town, b)
        _remote_reasons(ctx, b)
    ctx.out(beads, lambda: "\n\n".join(_show_text(b) for b in beads))
    return 0


def _remote_reasons(ctx: Ctx, b: dict[str, Any]) -> None:
    """Say why each edge to another town's bead holds (``remote_reason``)."""
    for e in b.get("dependencies") or []:
        if str(e.get("depends_on_id", "")).startswith("gt://"):
            from ..federation.deps import reason

            e["remote_reason"] = reason(ctx.ledger, e["depends_on_id"])


def _town_address(ctx: Ctx) -> str | None:
    """``gt://OWNER/NAME`` from the ``.town.json`` beside the ledger's folder, if any."""
    import os

    path = getattr(ctx.ledger.store, "path", None)
    if not isinstance(path, str):
        return None
    doc = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(path))), ".town.json")
    try:
        with open(doc, encoding="utf-8") as fh:
            data = json.load(fh)
        return f"gt://{data['owner']}/{data['name']}"
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _bead_uri(town: str, b: dict[str, Any]) -> str:
    """A bead's full address (its rig: ``metadata.rig``, a ``rig:NAME`` label, else ``_``)."""
    meta = b.get("metadata")
    rig = meta.get("rig") if isinstance(meta, dict) else None
    if not (isinstance(rig, str) and rig):
        rig = next((lb[4:] for lb in b.get("labels") or () if lb.startswith("rig:")), "_") or "_"
    return f"{town}/{rig}/{b['id']}"


def _string_ids(comments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Comment ids as strings in ``--json``, as beads >= 1.0 prints them."""
    return [{**c, "id": str(c["id"])} for c in comments]


# ------------------------------------------------------------------ update
def _update(ctx: Ctx) -> int:
    from ..ledger.update import BeadUpdate, update_beads

    a = ctx.args
    if not a.ids:  # upstream's wording; we keep no "last touched" issue to fall back on
        raise UsageError("no issue ID provided: bd update ID [ID…] [flags]")
    led = ctx.ledger
    changes: dict[str, Any] = {}
    for attr, field in (("title", "title"), ("description", "description"), ("design", "design"),
                        ("acceptance", "acceptance_criteria"), ("notes", "notes"),
                        ("status", "status"), ("priority", "priority"), ("type", "issue_type"),
                        ("assignee", "assignee"), ("owner", "owner"), ("due", "due_at"),
                        ("defer", "defer_until"), ("external_ref", "external_ref"),
                        ("estimate", "estimated_minutes")):
        value = getattr(a, attr)
        if value is not None:
            changes[field] = value
    if a.description_file is not None:
        changes["description"] = text_arg(None, a.description_file, "the description")
    if a.metadata is not None:
        changes["metadata"] = _metadata(a.metadata)
    if a.pinned is not None:
        changes["pinned"] = a.pinned == "true"
    upd = BeadUpdate(changes, append_notes=a.append_notes, claim=bool(a.claim),
                     set_labels=None if a.set_labels is None else split_csv(a.set_labels),
                     add_labels=split_csv(a.add_label), remove_labels=split_csv(a.remove_label))
    upd.check()
    # every id is resolved before anything is written, and all beads change in one
    # transaction: an unknown id or a refused change leaves every bead as it was
    results = update_beads(led, [ctx.resolve(raw) for raw in a.ids], upd)
    for bead in results:  # upstream's line: "✓ Updated issue: ID — Title"; claims keep ours
        ctx.say(f"✓ Claimed issue: {bead['id']}" if a.claim
                else f"✓ Updated issue: {bead['id']} — {bead['title']}")
    if ctx.json:
        emit_json(results if len(results) != 1 else results[0])
    return 0


# ------------------------------------------------------------ close/reopen
def _close(ctx: Ctx) -> int:
    ids = [ctx.resolve(i) for i in ctx.args.ids]
    reason = ctx.args.reason
    beads = ctx.ledger.close_beads(ids, reason=reason, force=ctx.args.force)
    for b in beads:
        ctx.say(f"✓ Closed {b['id']}: {reason or 'Closed'}")
    if ctx.json:
        emit_json(beads)
    return 0


def _reopen(ctx: Ctx) -> int:
    beads = []
    for raw in ctx.args.ids:
        b = ctx.ledger.reopen(ctx.resolve(raw), reason=ctx.args.reason)
        beads.append(b)
        ctx.say(f"✓ Reopened {b['id']}")
    if ctx.json:
        emit_json(beads)
    return 0


def _delete(ctx: Ctx) -> int:
    bead_ids = list(dict.fromkeys(ctx.resolve(raw) for raw in ctx.args.ids))
    if not ctx.args.force or ctx.args.dry_run:
        # upstream's rule: without --force, show what would go and change nothing
        from .bd_compat import delete_preview

        return delete_preview(ctx, bead_ids)
    deleted: list[str] = []
    with ctx.ledger.transaction() as t:  # all or none
        for bead_id in bead_ids:
            if bead_id not in deleted:  # not already gone with a --cascade parent
                deleted += t.delete(bead_id, cascade=ctx.args.cascade)
    for d in deleted:
        ctx.say(f"✓ Deleted {d}")
    if ctx.json:
        emit_json({"deleted": deleted})
    return 0


# ------------------------------------------------------------------- label
def _label(ctx: Ctx) -> int:
    a = ctx.args
    led = ctx.ledger
    if a.action == "list-all":
        pairs = led.labels_all()
        ctx.out([{"label": k, "count": n} for k, n in pairs],
                lambda: "\n".join(f"{k} ({n})" for k, n in pairs) or "No labels")
        return 0
    if a.action == "list":
        if len(a.args) != 1:
            raise UsageError("usage: bd label list ID")
        labels = led.get(ctx.resolve(a.args[0])).get("labels") or []
        ctx.out(labels, lambda: "\n".join(labels) or "No labels")
        return 0
    if len(a.args) < 2:
        raise UsageError(f"usage: bd label {a.action} ID [ID…] LABEL")
    *raw_ids, label = a.args
    bead_ids = list(dict.fromkeys(ctx.resolve(raw) for raw in raw_ids))
    done = []
    with led.transaction() as t:  # all or none
        for bead_id in bead_ids:
            if a.action == "add":
                changed = t.add_label(bead_id, label)
            else:
                changed = t.remove_label(bead_id, label)
            done.append({"id": bead_id, "label": label, "changed": changed})
    for d in done:
        if a.action == "add":
            ctx.say(f"✓ Added label '{label}' to {d['id']}" if d["changed"]
                    else f"Label '{label}' already on {d['id']}")
        else:
            ctx.say(f"✓ Removed label '{label}' from {d['id']}" if d["changed"]
                    else f"Label '{label}' was not on {d['id']}")
    if ctx.json:
        emit_json(done)
    return 0


# ----------------------------------------------------------------- comments
def _comment(ctx: Ctx) -> int:
    bead_id = ctx.resolve(ctx.args.id)
    text = " ".join(ctx.args.text) if ctx.args.text else None
    text = text_arg(text, ctx.args.file, "the comment")
    if not text:
        raise UsageError("comment text is required")
    c = _string_ids([ctx.ledger.add_comment(bead_id, text, author=ctx.args.author)])[0]
    ctx.out(c, f"Comment added to {bead_id}")
    return 0


def _comments(ctx: Ctx) -> int:
    args = ctx.args.args
    if args and args[0] == "add":
        if len(args) < 3:
            raise UsageError("usage: bd comments add ID TEXT")
        ctx.args.id, ctx.args.text, ctx.args.file = args[1], args[2:], None
        return _comment(ctx)
    if len(args) != 1:
        raise UsageError("usage: bd comments ID")
    comments = _string_ids(ctx.ledger.comments(ctx.resolve(args[0])))

    def text() -> str:
        if not comments:
            return f"No comments on {args[0]}"
        return "\n".join(f"[{c['author']}] at {c['created_at']}\n  " +
                         "\n  ".join(str(c["text"]).splitlines()) for c in comments)

    ctx.out(comments, text)
    return 0


# ---------------------------------------------------------------------- dep
def _dep_target(ctx: Ctx, text: str) -> str:
    """A local id, or another town's bead (``gt://``/``hop://``) in its canonical form."""
    if text.startswith(("gt://", "hop://")):
        from ..federation.deps import canonical
        from ..federation.local import is_here

        if not is_here(ctx.ledger, text):  # this town's own address is a local edge
            return canonical(text)
    return ctx.resolve(text)


def _dep(ctx: Ctx) -> int:
    a = ctx.args
    led = ctx.ledger
    if a.action == "add":
        if len(a.args) != 2:
            raise UsageError("usage: bd dep add ISSUE DEPENDS_ON [-t TYPE]")
        issue, target = ctx.resolve(a.args[0]), _dep_target(ctx, a.args[1])
        added = led.add_dep(issue, target, a.type)
        ctx.out({"issue_id": issue, "depends_on_id": target, "type": a.type, "added": added},
                f"✓ Added dependency: {issue} depends on {target} ({a.type})" if added else
                f"Dependency already exists: {issue} depends on {target} ({a.type})")
        return 0
    if a.action in ("remove", "rm"):
        if len(a.args) != 2:
            raise UsageError("usage: bd dep remove ISSUE DEPENDS_ON")
        issue, target = ctx.resolve(a.args[0]), _dep_target(ctx, a.args[1])
        n = led.remove_dep(issue, target, a.type if a.type_given else None)
        ctx.out({"issue_id": issue, "depends_on_id": target, "removed": n},
                f"✓ Removed dependency: {issue} no longer depends on {target}")
        return 0
    if a.action == "list":
        if len(a.args) != 1:
            raise UsageError("usage: bd dep list ID")
        bead_id = ctx.resolve(a.args[0])
        deps, dependents = led.deps(bead_id), led.dependents(bead_id)

        def text() -> str:
            lines = [f"{bead_id} depends on ({len(deps)}):"]
            lines += [f"  → {d['depends_on_id']} ({d['type']}) {d.get('title') or '(unknown)'}"
                      f" [{d.get('status') or '-'}]" for d in deps]
            lines.append(f"{bead_id} is depended on by ({len(dependents)}):")
            lines += [f"  ← {d['issue_id']} ({d['type']}) {d.get('title') or ''}"
                      f" [{d.get('status') or '-'}]" for d in dependents]
            return "\n".join(lines)

        ctx.out({"id": bead_id, "dependencies": deps, "dependents": dependents}, text)
        return 0
    if a.action == "tree":
        if len(a.args) != 1:
            raise UsageError("usage: bd dep tree ID")
        nodes = led.dep_tree(ctx.resolve(a.args[0]), max_depth=a.max_depth, reverse=a.reverse)

        def tree_text() -> str:
            out = []
            for n in nodes:
                indent = "  " * n["depth"]
                via = f" ({n['type']})" if n["type"] else ""
                again = " (shown above)" if n.get("repeat") else ""
                out.append(f"{indent}{'└─ ' if n['depth'] else ''}{n['id']}: "
                           f"{n['title'] or '(unknown)'} [{n['status'] or '-'}]{via}{again}")
            return "\n".join(out)

        ctx.out(nodes, tree_text)
        return 0
    if a.action == "cycles":
        cycles = led.find_cycles()
        ctx.out(cycles, lambda: "\n".join(" -> ".join(c) for c in cycles)
                or "✓ No dependency cycles")
        return 1 if cycles and not ctx.json else 0
    raise UsageError(f"unknown dep action {a.action!r}: add, remove, list, tree, cycles")


# ------------------------------------------------------------------- setup
def setup(name: str, sub: Any) -> None:
    """Add the parser for command ``name`` to ``sub``."""
    from .bd import COMMANDS

    p = sub.add_parser(name, help=COMMANDS[name][1], description=COMMANDS[name][1])
    common_options(p)
    if name in ("create", "q"):
        _add_create_options(p)
        p.set_defaults(func=lambda ctx: _create(ctx, quick=(name == "q")))
    elif name == "show":
        p.add_argument("ids", nargs="+", metavar="ID")
        p.add_argument("--refresh", action="store_true",
                       help="gt://… addresses: sync their remote first")
        p.set_defaults(func=_show)
    elif name == "update":
        p.add_argument("ids", nargs="*", metavar="ID")
        p.add_argument("--title")
        p.add_argument("-d", "--description", "--body", dest="description")
        p.add_argument("--body-file", "--description-file", dest="description_file")
        p.add_argument("--design")
        p.add_argument("--acceptance")
        p.add_argument("--notes")
        p.add_argument("--append-notes", help="append a line to the notes")
        p.add_argument("-s", "--status", help="open, in_progress, blocked, deferred, closed, …")
        p.add_argument("-p", "--priority")
        p.add_argument("-t", "--type")
        p.add_argument("-a", "--assignee")
        p.add_argument("--owner")
        p.add_argument("--due")
        p.add_argument("--defer")
        p.add_argument("--external-ref")
        p.add_argument("-e", "--estimate", type=count)
        p.add_argument("--metadata", help="JSON object (replaces the metadata)")
        p.add_argument("--pinned", choices=("true", "false"))
        p.add_argument("--add-label", action="append", help="labels to add (comma separated)")
        p.add_argument("--remove-label", action="append", help="labels to remove")
        p.add_argument("--set-labels", help="replace all labels (comma separated)")
        p.add_argument("--claim", action="store_true",
                       help="atomically take it: open+unassigned -> in_progress, assigned to you")
        p.set_defaults(func=_update)
    elif name == "close":
        p.add_argument("ids", nargs="+", metavar="ID")
        p.add_argument("-r", "--reason", "-m", "--message", dest="reason", help="why")
        p.add_argument("-f", "--force", action="store_true",
                       help="close even with open blockers or children")
        p.set_defaults(func=_close)
    elif name == "reopen":
        p.add_argument("ids", nargs="+", metavar="ID")
        p.add_argument("-r", "--reason")
        p.set_defaults(func=_reopen)
    elif name == "delete":
        p.add_argument("ids", nargs="+", metavar="ID")
        p.add_argument("-f", "--force", action="store_true",
                       help="really delete (without it: a preview, nothing changes)")
        p.add_argument("--dry-run", action="store_true", help="only show what would go")
        p.add_argument("--cascade", action="store_true", help="delete children too")
        p.set_defaults(func=_delete)
    elif name == "label":
        p.add_argument("action", choices=("add", "remove", "list", "list-all"))
        p.add_argument("args", nargs="*", metavar="ARG")
        p.set_defaults(func=_label)
    elif name == "comment":
        p.add_argument("id", metavar="ID")
        p.add_argument("text", nargs="*", metavar="TEXT")
        p.add_argument("-f", "--file", help="read the comment from a file (- = stdin)")
        p.add_argument("--author", help="author (default: the actor)")
        p.set_defaults(func=_comment)
    elif name == "comments":
        p.add_argument("args", nargs="+", metavar="ID | add ID TEXT")
        p.add_argument("--author", help="author (default: the actor)")
        p.set_defaults(func=_comments)
    elif name == "dep":
        p.add_argument("action", choices=("add", "remove", "rm", "list", "tree", "cycles"))
        p.add_argument("args", nargs="*", metavar="ID")
        p.add_argument("-t", "--type", default=None, help="dependency type (default blocks)")
        p.add_argument("--max-depth", type=count, default=50)
        p.add_argument("--reverse", action="store_true", help="tree of dependents instead")
        p.set_defaults(func=_dep_entry)


def _dep_entry(ctx: Ctx) -> int:
    ctx.args.type_given = ctx.args.type is not None
    ctx.args.type = ctx.args.type or "blocks"
    return _dep(ctx)
