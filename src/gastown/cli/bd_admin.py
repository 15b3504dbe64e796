"""``bd`` housekeeping: init, export, import, doctor, kv, config, completion."""

from __future__ import annotations

import os
import sys
from typing import Any

from ..errors import NotFoundError, UsageError
from ._app import Ctx, common_options


def _init(ctx: Ctx) -> int:
    from ..ledger.core import Ledger
    from ..ledger.jsonl import check_jsonl, import_jsonl

    a = ctx.args
    jsonl = os.path.join(".beads", "issues.jsonl")
    will_import = os.path.isfile(jsonl) and not a.no_import and not a.attach
    if will_import and not os.path.islink(jsonl):  # a link is refused by init itself
        # a bad line in a clone's export is reported before anything is created
        check_jsonl(jsonl)
    led = Ledger.init(".", prefix=a.prefix, db=ctx.db, actor=ctx.actor,
                      destroy_existing=a.destroy_existing, attach=a.attach)
    ctx._ledger = led
    if led.beads_dir:  # what upstream's tools read to find the database (never a URL)
        from ..ledger.autoflush import write_metadata

        write_metadata(led.beads_dir, led.store)
    imported = None
    jsonl = os.path.join(led.beads_dir or ".beads", "issues.jsonl")
    if will_import:
        # a clone's issues.jsonl names the project's prefix, unless --prefix chose one
        imported = import_jsonl(led, jsonl, adopt_prefix=a.prefix is None)
    info = {"beads_dir": led.beads_dir, "database": led.store.url, "prefix": led.prefix,
            "imported": imported.to_json() if imported else None}
    if ctx.quiet and not ctx.json:
        return 0
    done = "attached to the existing ledger" if a.attach else "initialized successfully!"
    lines = [f"✓ bd {done}", f"  Database: {led.store.url}",
             f"  Issue prefix: {led.prefix}",
             f"  Issues will be named: {led.prefix}-<hash> (e.g., {led.prefix}-a3f2)"]
    if imported:
        lines.append(f"  Imported {imported.created} issues from {jsonl}")
    lines.append("Next: bd create \"First task\", then bd ready.")
    ctx.out(info, "\n".join(lines))
    return 0


def _export(ctx: Ctx) -> int:
    from ..ledger.jsonl import export_jsonl
    from ._output import Progress

    a = ctx.args
    progress = Progress("Exporting")
    n = export_jsonl(ctx.ledger, a.output, include_all=a.all, progress=progress,
                     force=a.force)
    progress.finish()
    where = a.output or os.path.join(ctx.ledger.beads_dir or ".beads", "issues.jsonl")
    if a.output == "-":
        if not ctx.quiet:
            sys.stderr.write(f"Exported {n} issues\n")
        return 0
    ctx.out({"exported": n, "path": where}, f"✓ Exported {n} issues to {where}")
    return 0


def _import(ctx: Ctx) -> int:
    from ..ledger.jsonl import import_jsonl
    from ._output import Progress

    a = ctx.args
    path = a.file or a.input
    if not path:
        if ctx.ledger.beads_dir and os.path.exists(os.path.join(ctx.ledger.beads_dir,
                                                                "issues.jsonl")):
            path = os.path.join(ctx.ledger.beads_dir, "issues.jsonl")
        else:
            raise UsageError("usage: bd import FILE (or - for stdin)")
    progress = Progress("Importing")
    report = import_jsonl(ctx.ledger, path, dry_run=a.dry_run, progress=progress,
                          adopt_prefix=a.set_prefix)
    progress.finish()
    verb = "Would import" if a.dry_run else "Import complete"
    text = (f"{verb}: {report.created} created, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.tombstones} tombstones skipped "
            f"({report.dependencies} dependencies, {report.comments} comments)")
    if report.prefix_adopted:
        verb = "would be set" if a.dry_run else "set"
        text += f"\n  Issue prefix {verb} to {report.prefix_adopted}"
    if report.prefix_found:
        text += (f"\n  Imported ids mostly use prefix {report.prefix_found}; keeping issue "
                 f"prefix {ctx.ledger.prefix} (pass --set-prefix to adopt "
                 f"{report.prefix_found})")
    ctx.out(report.to_json(), text)
    return 0


def _doctor(ctx: Ctx) -> int:
    if ctx.args.check:  # upstream's focused checks live with the other upstream commands
        from .bd_compat import doctor_check

        return doctor_check(ctx)
    led = ctx.ledger
    fixed = led.recompute_ready_state() if ctx.args.fix else None
    problems = led.integrity_problems()
    result = {"ok": not problems, "problems": problems, "database": led.store.url,
              "fixed_rows": fixed}

    def text() -> str:
        lines = [f"Checking {led.store.url}"]
        if fixed is not None:
            lines.append(f"✓ Rebuilt the ready state ({fixed} rows were stale)")
        if problems:
            lines += [f"✗ {p}" for p in problems]
        else:
            lines.append("✓ No problems found")
        return "\n".join(lines)

    ctx.out(result, text)
    return 0 if not problems else 1


def _kv(ctx: Ctx) -> int:
    a = ctx.args
    led = ctx.ledger
    if a.action == "set":
        if len(a.args) != 2:
            raise UsageError("usage: bd kv set KEY VALUE")
        led.kv_set(a.args[0], a.args[1])
        ctx.out({"key": a.args[0], "value": a.args[1]}, f"✓ Set {a.args[0]}")
    elif a.action == "get":
        if len(a.args) != 1:
            raise UsageError("usage: bd kv get KEY")
        value = led.kv_get(a.args[0])
        if value is None:
            raise NotFoundError(f"key {a.args[0]!r} not found")
        ctx.out({"key": a.args[0], "value": value}, value)
    elif a.action == "list":
        pairs = led.kv_list()
        ctx.out({k: v for k, v in pairs}, "\n".join(f"{k}={v}" for k, v in pairs) or "(empty)")
    elif a.action == "clear":
        if len(a.args) != 1:
            raise UsageError("usage: bd kv clear KEY")
        removed = led.kv_clear(a.args[0])
        ctx.out({"key": a.args[0], "removed": removed},
                f"✓ Cleared {a.args[0]}" if removed else f"{a.args[0]} was not set")
    return 0


def _config(ctx: Ctx) -> int:
    a = ctx.args
    led = ctx.ledger
    if a.action == "list":
        cfg = led.config()
        ctx.out(cfg, "\n".join(f"{k} = {v}" for k, v in cfg.items()))
    elif a.action == "get":
        if len(a.args) != 1:
            raise UsageError("usage: bd config get KEY")
        cfg = led.config()
        if a.args[0] not in cfg:
            raise NotFoundError(f"config key {a.args[0]!r} is not set")
        ctx.out({"key": a.args[0], "value": cfg[a.args[0]]}, cfg[a.args[0]])
    elif a.action == "set":
        if len(a.args) != 2:
            raise UsageError("usage: bd config set KEY VALUE")
        key, value = a.args
        if key == "issue_prefix":
            from ..errors import ValidationError
            from ..ledger.ids import is_valid_prefix

            if not is_valid_prefix(value):
                raise ValidationError(f"invalid prefix {value!r}: letters, digits, '-' and '_'")
        led.set_config(key, value)
        ctx.out({"key": key, "value": value}, f"✓ Set {key} = {value}")
    elif a.action == "unset":
        if len(a.args) != 1:
            raise UsageError("usage: bd config unset KEY")
        from ..ledger.compat import unset_config

        removed = unset_config(led, a.args[0])
        ctx.out({"key": a.args[0], "removed": removed},
                f"Unset {a.args[0]}" if removed else f"{a.args[0]} was not set")
    return 0


_BASH = """# bash completion for {prog}: eval "$({prog} completion bash)"
_{prog}_complete() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W "{commands}" -- "$cur") )
  else
    COMPREPLY=( $(compgen -W "--json --actor --db --help {flags}" -- "$cur") )
  fi
}}
complete -F _{prog}_complete {prog}
"""

_ZSH = """#compdef {prog}
# zsh completion for {prog}: eval "$({prog} completion zsh)"
_{prog}() {{
  local -a cmds
  cmds=({described})
  if (( CURRENT == 2 )); then _describe 'command' cmds; else _files; fi
}}
compdef _{prog} {prog}
"""


def _completion(ctx: Ctx) -> int:
    from .bd import COMMANDS

    shell = ctx.args.shell
    names = sorted(COMMANDS)
    if shell == "bash":
        sys.stdout.write(_BASH.format(prog="bd", commands=" ".join(names),
                                      flags="--status --type --priority --label --limit"))
    elif shell == "zsh":
        described = " ".join("'" + n + ":" + COMMANDS[n][1].replace("'", "") + "'" for n in names)
        sys.stdout.write(_ZSH.format(prog="bd", described=described))
    else:
        lines = ["# fish completion for bd: bd completion fish | source"]
        for n in names:
            desc = COMMANDS[n][1].replace("'", "")
            lines.append(f"complete -c bd -n '__fish_use_subcommand' -a {n} -d '{desc}'")
        sys.stdout.write("\n".join(lines) + "\n")
    return 0


def setup(name: str, sub: Any) -> None:
    """Add the parser for command ``name`` to ``sub``."""
    from .bd import COMMANDS

    p = sub.add_parser(name, help=COMMANDS[name][1], description=COMMANDS[name][1])
    common_options(p)
    if name == "init":
        p.add_argument("--prefix", help="id prefix (default: the directory's name)")
        p.add_argument("--destroy-existing", action="store_true",
                       help="replace an existing ledger here (its data is lost)")
        p.add_argument("--no-import", action="store_true",
                       help="do not import an existing .beads/issues.jsonl")
        p.add_argument("--attach", action="store_true",
                       help="with --db URL: use the existing PostgreSQL ledger there from "
                            "this directory, changing nothing in it")
        p.set_defaults(func=_init)
    elif name == "export":
        p.add_argument("-o", "--output", help="file to write (- = stdout; "
                                              "default .beads/issues.jsonl)")
        p.add_argument("--all", action="store_true", help="include wisps and templates")
        p.add_argument("--force", action="store_true",
                       help="replace an existing file that is not a beads export (or a link)")
        p.set_defaults(func=_export)
    elif name == "import":
        p.add_argument("file", nargs="?", help="JSONL file (- = stdin)")
        p.add_argument("-i", "--input", help="JSONL file (same as the positional)")
        p.add_argument("--dry-run", action="store_true", help="report, change nothing")
        p.add_argument("--set-prefix", action="store_true",
                       help="adopt the imported ids' most common prefix as the ledger's")
        p.set_defaults(func=_import)
    elif name == "doctor":
        p.add_argument("--fix", action="store_true", help="rebuild the ready state first")
        p.add_argument("--check", choices=("validate", "pollution"),
                       help="one focused check: validate (data integrity) or pollution "
                            "(leaked test issues)")
        p.add_argument("--clean", action="store_true",
                       help="with --check=pollution: delete the issues found (needs --yes)")
        p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
        p.set_defaults(func=_doctor)
    elif name == "kv":
        p.add_argument("action", choices=("set", "get", "list", "clear"))
        p.add_argument("args", nargs="*", metavar="ARG")
        p.set_defaults(func=_kv)
    elif name == "config":
        p.add_argument("action", choices=("get", "set", "list", "unset"))
        p.add_argument("args", nargs="*", metavar="ARG")
        p.set_defaults(func=_config)
    elif name == "completion":
        p.add_argument("shell", choices=("bash", "zsh", "fish"))
        p.set_defaults(func=_completion)



