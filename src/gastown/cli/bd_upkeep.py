"""Upstream ``bd``'s upkeep commands: edit, graph, rename-prefix, compact, duplicates,
merge, restore, hooks.

Flags and output lines follow the Go ``bd``; where it relies on things we do not
have (an AI summariser, Dolt history) the command does the useful part with what
the ledger keeps and says so.  Loaded only for these commands.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from ..errors import NotFoundError, UsageError, ValidationError
from ..ledger import compat
from ._app import Ctx, common_options, count, text_arg

_EDITABLE = (("title", "title"), ("description", "description"), ("design", "design"),
             ("notes", "notes"), ("acceptance", "acceptance_criteria"))


# -------------------------------------------------------------------- edit
def _edit(ctx: Ctx) -> int:
    import shlex
    import subprocess
    import tempfile

    a = ctx.args
    chosen = [field for flag, field in _EDITABLE if getattr(a, flag)]
    if len(chosen) > 1:
        raise UsageError("edit one field at a time (--title, --description, --design, "
                         "--notes or --acceptance)")
    field = chosen[0] if chosen else "description"
    bead_id = ctx.resolve(a.id)
    led = ctx.ledger
    current = str(led.get(bead_id).get(field) or "")
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    fd, path = tempfile.mkstemp(prefix=f"bd-edit-{bead_id}-", suffix=".md")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(current)
        try:
            rc = subprocess.call([*shlex.split(editor), path])
        except OSError as exc:
            raise UsageError(f"cannot run editor {editor!r}: {exc.strerror}") from None
        if rc != 0:
            raise UsageError(f"editor {editor!r} exited with status {rc}; nothing changed")
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    finally:
        os.unlink(path)
    text = text.strip() if field == "title" else text.rstrip("\n")
    if text == current.rstrip("\n"):
        ctx.out({"id": bead_id, "field": field, "changed": False},
                f"No changes to {field} of {bead_id}")
        return 0
    bead = led.update(bead_id, **{field: text})
    ctx.out(bead, f"✓ Updated {field} of {bead_id}")
    return 0


# ------------------------------------------------------------------- graph
def _graph(ctx: Ctx) -> int:
    from ..ledger.query import Filter
    from ..ledger.ready import BLOCKING_DEP_TYPES

    led = ctx.ledger
    if ctx.args.id:
        root = ctx.resolve(ctx.args.id)
        nodes = {root} | {n["id"] for n in led.dep_tree(root)}
        nodes |= {n["id"] for n in led.dep_tree(root, reverse=True)}
        beads = {i: led.get(i) for i in sorted(nodes) if led.exists(i)}
    else:  # the listed beads as they are, not read again one by one
        beads = {b["id"]: b for b in led.list(Filter(include_closed=ctx.args.all), sort="id")}
    edges = [e for i in beads for e in led.deps(i)
             if e["depends_on_id"] in beads and e["type"] in (*BLOCKING_DEP_TYPES,
                                                              "parent-child")]
    after: dict[str, set[str]] = {i: set() for i in beads}
    for e in edges:
        if e["type"] == "parent-child":  # the parent comes after its children
            after[e["depends_on_id"]].add(e["issue_id"])
        else:
            after[e["issue_id"]].add(e["depends_on_id"])
    layers: list[list[str]] = []
    placed: set[str] = set()
    while len(placed) < len(beads):
        layer = sorted(i for i in beads if i not in placed and after[i] <= placed)
        if not layer:  # a cycle: put the rest in one last layer
            layer = sorted(set(beads) - placed)
        layers.append(layer)
        placed.update(layer)
    result = {"nodes": [{"id": i, "title": b["title"], "status": b["status"],
                         "priority": b["priority"], "issue_type": b["issue_type"]}
                        for i, b in beads.items()],
              "edges": [{"from": e["issue_id"], "to": e["depends_on_id"], "type": e["type"]}
                        for e in edges],
              "layers": layers}

    def text() -> str:
        if not beads:
            return "No issues to graph"
        icons = {"open": "○", "in_progress": "◐", "blocked": "●", "deferred": "❄",
                 "closed": "✓"}
        lines = []
        for n, layer in enumerate(layers, 1):
            lines.append(f"Layer {n}:")
            for i in layer:
                b = beads[i]
                needs = sorted(after[i])
                tail = f"  ← needs {', '.join(needs)}" if needs else ""
                lines.append(f"  {icons.get(b['status'], '?')} {i} [P{b['priority']}] "
                             f"{b['title']}{tail}")
        return "\n".join(lines)

    ctx.out(result, text)
    return 0


# ----------------------------------------------------------- rename-prefix
def _rename_prefix(ctx: Ctx) -> int:
    new = ctx.args.prefix.rstrip("-")
    led = ctx.ledger
    old = led.prefix
    pairs = compat.rename_prefix(led, new, dry_run=ctx.args.dry_run)
    result = {"old_prefix": old, "new_prefix": new, "renamed": len(pairs),
              "dry_run": ctx.args.dry_run, "changes": [{"old": o, "new": n} for o, n in pairs]}

    def text() -> str:
        if ctx.args.dry_run:
            lines = [f"DRY RUN: Would rename {len(pairs)} issues from prefix '{old}' to "
                     f"'{new}'", "", "Sample changes:"]
            lines += [f"  {o} -> {n}" for o, n in pairs[:5]]
            if len(pairs) > 5:
                lines.append(f"... and {len(pairs) - 5} more issues")
            return "\n".join(lines)
        if not pairs:
            return f"No issues to rename. Updating prefix to {new}"
        return (f"Renaming {len(pairs)} issues from prefix '{old}' to '{new}'...\n"
                f"✓ Successfully renamed prefix from {old} to {new}")

    ctx.out(result, text)
    return 0


# ----------------------------------------------------------------- compact
_TIER_DAYS = {1: 30, 2: 90}


def _compact(ctx: Ctx) -> int:
    from ..ledger.query import Filter

    a = ctx.args
    led = ctx.ledger
    if a.tier not in _TIER_DAYS:
        raise ValidationError(f"--tier must be 1 or 2, not {a.tier}")
    if a.apply:
        if not a.id or not a.summary:
            raise UsageError("--apply needs --id ID and --summary FILE (- = stdin)")
        bead_id = ctx.resolve(a.id)
        summary = text_arg(None, a.summary, "the summary") or ""
        bead = led.get(bead_id)
        if bead["status"] != "closed" and not a.force:
            raise ValidationError(f"{bead_id} is not closed (use --force to compact anyway)")
        if a.dry_run:
            ctx.out({"id": bead_id, "compacted": False, "dry_run": True, "tier": a.tier},
                    f"Would compact {bead_id} (dry run: nothing changed)")
            return 0
        original = {k: bead.get(k) or "" for k in ("description", "design", "notes",
                                                   "acceptance_criteria")}
        # compacted again (tier 2 after tier 1): the text before the first compaction
        # stays the one bd restore brings back, not the earlier summary
        first = led.kv_get(f"compact:{bead_id}") is None
        with led.transaction() as t:  # the original is kept exactly when the text goes
            if first:
                t.kv_set(f"compact:{bead_id}", json.dumps(original, ensure_ascii=False))
            t.update(bead_id, description=summary.strip(), design="", notes="",
                     acceptance_criteria="")
        ctx.out({"id": bead_id, "compacted": True, "tier": a.tier},
                f"✓ Compacted {bead_id} (original kept: bd restore {bead_id})")
        return 0
    cutoff = compat.ago(days=_TIER_DAYS[a.tier])
    closed = led.list(Filter(status=["closed"]), sort="closed")
    done = {key[len("compact:"):] for key, _ in led.kv_scan("compact:")}
    candidates = [b for b in closed if str(b.get("closed_at") or "") < cutoff
                  and b["id"] not in done]
    if a.limit:
        candidates = candidates[:a.limit]
    rows = [{"id": b["id"], "title": b["title"], "closed_at": b.get("closed_at"),
             "size": sum(len(str(b.get(k) or "")) for k in ("description", "design", "notes",
                                                             "acceptance_criteria"))}
            for b in candidates]
    if a.stats or not a.analyze:
        result = {"tier": a.tier, "candidates": len(rows),
                  "bytes": sum(r["size"] for r in rows), "closed_total": len(closed)}
        ctx.out(result, f"Compaction candidates (tier {a.tier}, closed "
                        f"{_TIER_DAYS[a.tier]}+ days): {len(rows)} issues, "
                        f"{result['bytes']} bytes of text\n"
                        "Review them with --analyze; apply a summary with "
                        "--apply --id ID --summary FILE")
        return 0
    ctx.out(rows, lambda: "\n".join(f"{r['id']}  {r['size']:>7} bytes  {r['title']}"
                                    for r in rows) or "No compaction candidates")
    return 0


def _restore(ctx: Ctx) -> int:
    bead_id = ctx.resolve(ctx.args.id)
    led = ctx.ledger
    saved = led.kv_get(f"compact:{bead_id}")
    if saved is None:
        raise NotFoundError(f"{bead_id} was never compacted: nothing to restore")
    original = json.loads(saved)
    if ctx.args.apply:
        with led.transaction() as t:
            t.update(bead_id, **original)
            t.kv_clear(f"compact:{bead_id}")
    bead = {**led.get(bead_id), **original}

    def text() -> str:
        lines = [f"{bead_id}: {bead['title']} (content before compaction)"]
        for key in ("description", "design", "acceptance_criteria", "notes"):
            if original.get(key):
                lines += ["", f"{key.replace('_', ' ').title()}:", original[key]]
        if ctx.args.apply:
            lines += ["", f"✓ Restored {bead_id}"]
        return "\n".join(lines)

    ctx.out(bead, text)
    return 0


# -------------------------------------------------------------- duplicates
def _duplicates(ctx: Ctx) -> int:
    a = ctx.args
    led = ctx.ledger
    groups = compat.duplicate_groups(led)
    merged: list[dict[str, Any]] = []
    if a.auto_merge and not a.dry_run:
        with led.transaction() as t:  # all or none
            for g in groups:
                target = g[0]["id"]
                for dup in g[1:]:
                    t.add_dep(dup["id"], target, "duplicates")
                    if t.status_of(dup["id"]) != "closed":
                        t.close(dup["id"], reason=f"Duplicate of {target}", force=True)
                    merged.append({"source": dup["id"], "target": target})
    result = {"duplicate_groups": len(groups),
              "groups": [[{"id": b["id"], "title": b["title"], "status": b["status"]}
                          for b in g] for g in groups],
              "merged": merged}

    def text() -> str:
        if not groups:
            return "✓ No duplicate issues found"
        lines = [f"Found {len(groups)} duplicate groups:", ""]
        for g in groups:
            lines.append(f"  {g[0]['title']}")
            lines += [f"    {b['id']} [{b['status']}]" + ("  (kept)" if n == 0 else "")
                      for n, b in enumerate(g)]
        if merged:
            lines += ["", f"✓ Merged {len(merged)} duplicates"]
        elif a.dry_run or not a.auto_merge:
            lines += ["", "Run 'bd duplicates --auto-merge' to close the later ones as "
                          "duplicates of the first"]
        return "\n".join(lines)

    ctx.out(result, text)
    return 0


# ------------------------------------------------------------------- merge
def _read_jsonl(path: str, optional: bool = False) -> list[dict[str, Any]]:
    out = []
    try:
        with open(path, encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ValidationError(f"{path}:{n}: not JSON: {exc.msg}") from None
                if not isinstance(obj, dict) or not isinstance(obj.get("id"), str):
                    raise ValidationError(f"{path}:{n}: not a bead (an object with an id)")
                out.append(obj)
    except FileNotFoundError:
        if optional:  # no common ancestor: the file is new on both sides
            return []
        raise NotFoundError(f"{path}: no such file") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    return out


def _merge(ctx: Ctx) -> int:
    a = ctx.args
    merged, settled = compat.merge_jsonl(_read_jsonl(a.base, optional=True),
                                         _read_jsonl(a.left), _read_jsonl(a.right))
    tmp = a.output + ".bd-merge.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            for obj in merged:
                fh.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
        os.replace(tmp, a.output)
    except OSError as exc:
        raise UsageError(f"cannot write {a.output}: {exc.strerror}") from None
    if a.debug or ctx.json:
        sys.stderr.write(f"bd merge: {len(merged)} beads, {len(settled)} conflicts settled "
                         f"by the later updated_at{': ' + ', '.join(settled) if settled else ''}\n")
    return 0


# ------------------------------------------------------------------- hooks
_HOOKS = {"pre-commit": "export", "post-merge": "import", "post-checkout": "import"}
_MARK = "# bd (gastown) hook"


def _git_hooks_dir() -> str:
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "--git-path", "hooks"], capture_output=True,
                             text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        raise UsageError("not in a git repository: bd hooks manages .git/hooks") from None
    return os.path.abspath(out)


def _hooks(ctx: Ctx) -> int:
    a = ctx.args
    if a.action == "run":
        if not a.name or a.name not in _HOOKS:
            raise UsageError(f"usage: bd hooks run HOOK (one of {', '.join(_HOOKS)})")
        if os.environ.get("BD_GIT_HOOK") == "1":
            return 0
        from ..ledger.jsonl import export_jsonl, import_jsonl

        led = ctx.ledger
        path = os.path.join(led.beads_dir or ".beads", "issues.jsonl")
        if _HOOKS[a.name] == "export":
            export_jsonl(led, path)
            import subprocess

            subprocess.run(["git", "add", path], check=False)
        elif os.path.exists(path):
            import_jsonl(led, path)
        return 0
    hooks_dir = _git_hooks_dir()
    status: list[dict[str, Any]] = []
    for name in _HOOKS:
        path = os.path.join(hooks_dir, name)
        text = None
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                text = fh.read()
        status.append({"name": name, "installed": bool(text and _MARK in text),
                       "path": path, "other": bool(text and _MARK not in text)})
    if a.action == "list":
        ctx.out(status, lambda: "\n".join(
            f"{'✓' if s['installed'] else '✗'} {s['name']}"
            + (" (another hook is installed there)" if s["other"] else "") for s in status))
        return 0
    done = []
    for s in status:
        if a.action == "install":
            if s["other"] and not a.force:
                raise UsageError(f"{s['path']} is not ours: --force replaces it "
                                 "(the old one is kept as .old)")
            if s["other"]:
                os.replace(s["path"], s["path"] + ".old")
            os.makedirs(hooks_dir, exist_ok=True)
            with open(s["path"], "w", encoding="utf-8") as fh:
                fh.write(f"#!/bin/sh\n{_MARK}: keeps .beads/issues.jsonl in step with git\n"
                         f"command -v bd >/dev/null 2>&1 || exit 0\n"
                         f"BD_GIT_HOOK=0 bd hooks run {s['name']} \"$@\"\n")
            os.chmod(s["path"], 0o755)
            done.append(s["name"])
        elif s["installed"]:
            os.unlink(s["path"])
            if os.path.exists(s["path"] + ".old"):
                os.replace(s["path"] + ".old", s["path"])
            done.append(s["name"])
    verb = "Installed" if a.action == "install" else "Uninstalled"
    ctx.out({a.action + "ed": done, "hooks_dir": hooks_dir},
            f"✓ {verb} {len(done)} git hooks in {hooks_dir}: {', '.join(done) or 'none'}")
    return 0


# -------------------------------------------------------------------- setup
def setup(name: str, sub: Any) -> None:
    """Add the parser for command ``name`` to ``sub``."""
    from .bd import COMMANDS

    p = sub.add_parser(name, help=COMMANDS[name][1], description=COMMANDS[name][1])
    common_options(p)
    if name == "edit":
        p.add_argument("id", metavar="ID")
        for flag, field in _EDITABLE:
            p.add_argument(f"--{flag}", action="store_true", help=f"edit the {field}")
        p.set_defaults(func=_edit)
    elif name == "graph":
        p.add_argument("id", nargs="?", metavar="ID", help="only this bead's component")
        p.add_argument("--all", action="store_true", help="include closed beads")
        p.set_defaults(func=_graph)
    elif name == "rename-prefix":
        p.add_argument("prefix", metavar="NEW_PREFIX")
        p.add_argument("--dry-run", action="store_true", help="only show what would change")
        p.set_defaults(func=_rename_prefix)
    elif name == "compact":
        p.add_argument("--tier", type=int, default=1, help="1: closed 30+ days, 2: 90+ days")
        p.add_argument("--stats", action="store_true", help="count the candidates")
        p.add_argument("--analyze", action="store_true", help="list the candidates")
        p.add_argument("--apply", action="store_true", help="replace a bead's text by a summary")
        p.add_argument("--id", help="the bead to compact (with --apply)")
        p.add_argument("--summary", help="the summary file (- = stdin)")
        p.add_argument("--force", action="store_true", help="compact a bead that is not closed")
        p.add_argument("--limit", type=count, default=0, help="at most N candidates (0 = all)")
        p.add_argument("--dry-run", action="store_true", help="change nothing")
        p.set_defaults(func=_compact)
    elif name == "restore":
        p.add_argument("id", metavar="ID")
        p.add_argument("--apply", action="store_true",
                       help="write the original text back (default: only show it)")
        p.set_defaults(func=_restore)
    elif name == "duplicates":
        p.add_argument("--auto-merge", action="store_true",
                       help="close later duplicates as duplicates of the first")
        p.add_argument("--dry-run", action="store_true", help="change nothing")
        p.set_defaults(func=_duplicates)
    elif name == "merge":
        for arg in ("output", "base", "left", "right"):
            p.add_argument(arg, metavar=arg.upper())
        p.add_argument("--debug", action="store_true", help="report conflicts on stderr")
        p.set_defaults(func=_merge)
    elif name == "hooks":
        p.add_argument("action", choices=("install", "uninstall", "list", "run"))
        p.add_argument("name", nargs="?", metavar="HOOK", help="run: the hook's name")
        p.add_argument("--force", action="store_true", help="install: replace other hooks")
        p.set_defaults(func=_hooks)
    else:  # pragma: no cover - COMMANDS and setup are kept in step by a test
        raise UsageError(f"bd: no such command {name}")
