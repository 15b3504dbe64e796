"""``bd`` chemistry commands: cook, pour, wisp, mol …, formula …, gate …, pin, unpin, hook.

A thin adapter over :mod:`gastown.chemistry` and :mod:`gastown.hook`: parse,
call one library function (one transaction), print text or ``--json``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..errors import FormulaError, NotInitializedError, UsageError
from ._app import Ctx, common_options, emit_json

__all__ = ["setup"]


def _vars(ctx: Ctx) -> dict[str, str]:
    from ..chemistry.vars import parse_var_args

    return parse_var_args(getattr(ctx.args, "var", None))


def _paths(ctx: Ctx) -> list[str]:
    return [os.path.abspath(p) for p in getattr(ctx.args, "formula_path", None) or []]


def _beads_dir() -> str | None:
    from ..ledger.discovery import find_beads_dir

    return find_beads_dir(None)


def _agent(ctx: Ctx, explicit: str | None) -> str:
    from ..ledger.discovery import default_actor

    return explicit or ctx.actor or default_actor()


def _warn(line: str) -> None:
    sys.stderr.write(f"warning: {line}\n")


# ------------------------------------------------------------------- cook/pour
def _cook(ctx: Ctx) -> int:
    from ..chemistry import api
    from ..chemistry.render import proto_text

    a = ctx.args
    values = _vars(ctx)
    if a.dry_run:
        view = api.cook_view(a.formula, api.formula_paths(None, _paths(ctx), _beads_dir()), values)
    else:
        try:
            led = ctx.ledger
        except NotInitializedError:
            # no ledger here: show the compiled proto, as a dry run would
            _warn("no ledger found: the proto was compiled but not stored (run 'bd init')")
            view = api.cook_view(a.formula, api.formula_paths(None, _paths(ctx), _beads_dir()),
                                 values)
        else:
            view = api.cook(led, a.formula, values, search_paths=_paths(ctx), actor=ctx.actor)
    if ctx.quiet and not ctx.json:
        print(view["id"])
        return 0
    verb = {"created": "Cooked", "replaced": "Re-cooked", "unchanged": "Unchanged"}.get(
        view.get("action", ""), "Compiled")
    ctx.out(view, lambda: f"✓ {verb} proto: {view['id']} ({len(view['steps'])} steps)\n"
            + proto_text(view))
    return 0


def _pour(ctx: Ctx, wisp: bool) -> int:
    from ..chemistry import api
    from ..chemistry.inspect import current_step, work_steps

    a = ctx.args
    led = ctx.ledger
    values = _vars(ctx)
    root, ids = api.pour_with_steps(led, a.target, values, wisp=wisp, search_paths=_paths(ctx),
                                    actor=ctx.actor)
    meta = root.get("metadata") or {}
    if meta.get("formula_phase") == "vapor" and not wisp and not ctx.json:
        _warn(f"{meta.get('formula')} is meant to run as a wisp (phase = \"vapor\"): "
              f"'bd wisp {a.target}' keeps it out of the permanent record")
    if ctx.quiet and not ctx.json:
        print(root["id"])
        return 0
    steps = work_steps(led, root["id"]) if ids else []
    if ctx.json:
        out = dict(root)
        out["phase"] = "vapor" if wisp else "liquid"
        out["steps"] = [{"id": s["id"], "step": (s.get("metadata") or {}).get("step"),
                         "title": s["title"], "status": s["status"]} for s in steps]
        emit_json(out)
        return 0
    kind = "wisp" if wisp else "mol"
    phase = ("vapor (ephemeral: never exported; squash or burn it)" if wisp
             else "liquid (persistent)")
    lines = [f"✓ Poured {kind}: {root['id']} ({len(steps)} steps)  {root['title']}",
             f"  Phase: {phase}"]
    nxt = current_step(led, root["id"]) if ids else None
    if nxt is not None:
        lines.append(f"  Next: {nxt['id']}  {nxt['title']}")
    print("\n".join(lines))
    return 0


def _pour_mol(ctx: Ctx) -> int:
    return _pour(ctx, False)


def _pour_wisp(ctx: Ctx) -> int:
    return _pour(ctx, True)


def _spawn(ctx: Ctx) -> int:
    return _pour(ctx, not ctx.args.pour)


# ------------------------------------------------------------------------- mol
def _mol_id(ctx: Ctx, ref: str) -> str:
    led = ctx.ledger
    if led.exists(ref):
        return ref
    return ctx.resolve(ref)


def _mol_show(ctx: Ctx) -> int:
    from ..chemistry.inspect import mol_root, tree
    from ..chemistry.render import tree_text

    led = ctx.ledger
    bid = _mol_id(ctx, ctx.args.id)
    root = bid if ctx.args.exact else mol_root(led, bid)
    view = tree(led, root)
    ctx.out(view, lambda: tree_text(view))
    return 0


def _mol_list(ctx: Ctx) -> int:
    a = ctx.args
    if a.protos:
        return _list_protos(ctx)
    from ..chemistry.inspect import list_mols

    rows = list_mols(ctx.ledger, include_closed=a.all, wisps=not a.no_wisps,
                     mols=not a.wisps)

    def text() -> str:
        from ._output import table

        if not rows:
            return "No molecules. Pour one: bd pour FORMULA (see 'bd mol list --protos')"
        return table([(r["id"], r["phase"], r["status"], f"{r['closed']}/{r['total']}",
                       r.get("formula") or "", r["title"]) for r in rows],
                     ["ID", "PHASE", "STATUS", "DONE", "FORMULA", "TITLE"])

    ctx.out(rows, text)
    return 0


def _list_protos(ctx: Ctx) -> int:
    from ..chemistry import api

    try:
        led = ctx.ledger
    except NotInitializedError:
        led = None
    rows = api.proto_library(led, api.formula_paths(led, _paths(ctx), _beads_dir()))

    def text() -> str:
        from ._output import table

        return table([(r["id"], r["type"], "cooked" if r["stored"] else "formula",
                       r.get("description", "")) for r in rows],
                     ["PROTO", "TYPE", "WHERE", "DESCRIPTION"])

    ctx.out(rows, text)
    return 0


def _mol_progress(ctx: Ctx) -> int:
    from ..chemistry.inspect import mol_root, progress
    from ..chemistry.render import progress_text

    led = ctx.ledger
    p = progress(led, mol_root(led, _mol_id(ctx, ctx.args.id)))
    ctx.out(p, lambda: progress_text(p))
    return 0


def _mol_current(ctx: Ctx) -> int:
    from ..chemistry.inspect import mol_root, next_step_for
    from ..hook import hooked

    led = ctx.ledger
    agent = _agent(ctx, ctx.args.agent)
    if ctx.args.id:
        roots = [mol_root(led, _mol_id(ctx, ctx.args.id))]
    else:
        roots = [b["id"] for b in hooked(led, agent)]
        if not roots:
            ctx.out(None, f"Nothing on {agent}'s hook (pass a molecule id)")
            return 0
    for root in roots:
        step = next_step_for(led, root, agent)
        if step is not None:
            text = (f"{step['id']}  {step['title']}  ({step['status']}, molecule {root})\n"
                    + (step.get("description") or "").strip())
            ctx.out(step, text)
            return 0
    ctx.out(None, "No step is ready or in progress (done, or waiting on a gate/blocker)")
    return 0


def _mol_bond(ctx: Ctx) -> int:
    from ..chemistry.bonding import bond

    a = ctx.args
    if a.pour and a.wisp:
        raise UsageError("use --pour or --wisp, not both")
    phase = "liquid" if a.pour else ("vapor" if a.wisp else None)
    result = bond(ctx.ledger, a.a, a.b, bond_type=a.type, name=a.as_name, vars=_vars(ctx),
                  phase=phase, search_paths=_paths(ctx), actor=ctx.actor,
                  when=getattr(a, "when", None))

    def text() -> str:
        lines = [f"✓ Bonded: {a.a} + {a.b}",
                 f"  Result: {result['result_id']} ({result['result_type']}, "
                 f"{result['bond_type']})"]
        if result.get("spawned"):
            lines.append(f"  Spawned: {result['spawned']} steps"
                         + (f" under {result['attached']}" if result.get("attached") else ""))
        if result.get("phase"):
            lines.append(f"  Phase: {result['phase']}")
        return "\n".join(lines)

    ctx.out(result, text)
    return 0


def _mol_squash(ctx: Ctx) -> int:
    from ..chemistry.digest import squash

    bid = _mol_id(ctx, ctx.args.id)
    digest = squash(ctx.ledger, bid, ctx.args.summary, force=ctx.args.force, actor=ctx.actor)
    record = (digest.get("metadata") or {}).get("digest") or {}
    ctx.out(digest, lambda: f"✓ Squashed {bid} → digest {digest['id']} "
            f"({record.get('closed', 0)}/{record.get('total', 0)} steps closed)\n"
            f"  {record.get('summary', '')}")
    return 0


def _mol_burn(ctx: Ctx) -> int:
    from ..chemistry.digest import burn

    bid = ctx.args.id
    led = ctx.ledger
    if not led.exists(bid):
        try:
            bid = ctx.resolve(bid)
        except Exception:  # noqa: BLE001 - maybe burned already: burn() decides
            pass
    deleted = burn(led, bid, actor=ctx.actor)
    out = {"id": bid, "burned": bool(deleted), "deleted": deleted}
    ctx.out(out, f"✓ Burned wisp {bid} ({len(deleted)} beads evaporated)" if deleted
            else f"{bid} is already gone (burned before)")
    return 0


def _mol_distill(ctx: Ctx) -> int:
    from ..chemistry.distilling import distill, save

    a = ctx.args
    led = ctx.ledger
    bid = _mol_id(ctx, a.id)
    name, text, info = distill(led, bid, name=a.as_name, vars=_vars(ctx))
    if a.output == "-":
        sys.stdout.write(text)
        return 0
    path = a.output
    if not path:
        if not led.beads_dir:
            raise UsageError("no .beads directory to write into: pass -o FILE")
        path = os.path.join(led.beads_dir, "formulas", f"{name}.formula.toml")
    info["path"] = save(text, path, force=a.force)
    led.emit("mol.distilled", bid, {"formula": name, "path": info["path"]})
    ctx.out(info, f"✓ Distilled {bid} → {name} ({info['steps']} steps)\n  Wrote {info['path']}"
            + (f"\n  Variables: {', '.join(info['vars'])}" if info["vars"] else "")
            + (f"\n  Note: dependencies outside the tree were dropped: "
               f"{', '.join(info['external_dependencies'][:5])}"
               if info["external_dependencies"] else ""))
    return 0


# --------------------------------------------------------------------- formula
def _formula_list(ctx: Ctx) -> int:
    from ..chemistry import api
    from ..chemistry.search import list_formulas

    try:
        beads_dir = ctx.ledger.beads_dir
    except NotInitializedError:
        beads_dir = _beads_dir()
    paths = api.formula_paths(None, _paths(ctx), beads_dir)
    if ctx.args.paths:
        ctx.out([{"path": p, "exists": os.path.isdir(p)} for p in paths],
                "\n".join(f"{p}{'' if os.path.isdir(p) else '  (missing)'}" for p in paths))
        return 0
    refs = list_formulas(paths)

    def text() -> str:
        from ._output import table

        if not refs:
            return "No formulas found (see 'bd formula list --paths')"
        return table([(r.name + (" (shadowed)" if r.shadowed else ""), r.type, r.steps,
                       r.error or r.description) for r in refs],
                     ["FORMULA", "TYPE", "STEPS", "DESCRIPTION"])

    ctx.out([r.to_dict() for r in refs], text)
    return 0


def _formula_show(ctx: Ctx) -> int:
    from ..chemistry import api
    from ..chemistry.render import proto_text

    view = api.cook_view(ctx.args.name, api.formula_paths(None, _paths(ctx), _beads_dir()),
                         _vars(ctx))
    ctx.out(view, lambda: proto_text(view))
    return 0


def _formula_validate(ctx: Ctx) -> int:
    from ..chemistry import api
    from ..chemistry.render import validate_text

    results = api.validate_files(ctx.args.files, api.formula_paths(None, _paths(ctx),
                                                                   _beads_dir()))
    failed = [r for r in results if not r["ok"]]
    if failed and len(results) == 1 and not ctx.json:
        raise failed[0]["exception"]  # one file: its own error line and exit status
    ctx.out([{k: v for k, v in r.items() if k != "exception"} for r in results],
            lambda: validate_text(results))
    return FormulaError.exit_code if failed else 0


# ----------------------------------------------------------------------- setup
def _common(p: argparse.ArgumentParser, *, vars_: bool = False, paths: bool = False) -> None:
    common_options(p)
    if vars_:
        p.add_argument("--var", action="append", metavar="NAME=VALUE",
                       help="set a formula variable (repeatable)")
    if paths:
        p.add_argument("--formula-path", action="append", metavar="DIR",
                       help="also search DIR for formulas (first)")


def _setup_mol(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="mol_command", metavar="SUBCOMMAND")
    sub.required = True

    def add(name: str, help_: str, func: Any, **kw: bool) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        _common(sp, **kw)
        sp.set_defaults(func=func)
        return sp

    sp = add("show", "show a molecule (or proto) as a tree with step states", _mol_show)
    sp.add_argument("id")
    sp.add_argument("--exact", action="store_true", help="show this bead's subtree, not its root")
    sp = add("list", "list molecules and wisps (--protos: the proto library)", _mol_list,
             paths=True)
    sp.add_argument("--protos", action="store_true", help="list protos and formulas instead")
    sp.add_argument("--all", action="store_true", help="include closed molecules and digests")
    sp.add_argument("--wisps", action="store_true", help="only wisps")
    sp.add_argument("--no-wisps", action="store_true", help="only persistent molecules")
    sp = add("progress", "how far a molecule is", _mol_progress)
    sp.add_argument("id")
    sp = add("current", "the step to work on now (default: the molecule on my hook)",
             _mol_current)
    sp.add_argument("id", nargs="?")
    sp.add_argument("--for", "--agent", dest="agent", help="whose work (default: the actor)")
    sp = add("bond", "combine two protos, formulas, mols or wisps", _mol_bond, vars_=True,
             paths=True)
    sp.add_argument("a")
    sp.add_argument("b")
    sp.add_argument("--as", dest="as_name", metavar="NAME", help="name of a compound proto")
    sp.add_argument("--type", default="sequential",
                    choices=["sequential", "parallel", "conditional"])
    sp.add_argument("--when", choices=["success", "failure"],
                    help="conditional bonds: B's branch applies only on this outcome of A")
    sp.add_argument("--pour", action="store_true", help="spawn as a persistent mol")
    sp.add_argument("--wisp", action="store_true", help="spawn as an ephemeral wisp")
    sp = add("squash", "condense a mol or wisp into a digest", _mol_squash)
    sp.add_argument("id")
    sp.add_argument("--summary", help="the digest's summary (default: generated)")
    sp.add_argument("--force", action="store_true", help="squash a mol with open steps")
    sp = add("burn", "discard a wisp without a digest", _mol_burn)
    sp.add_argument("id")
    sp = add("distill", "extract a formula from a mol or epic", _mol_distill, vars_=True)
    sp.add_argument("id")
    sp.add_argument("--as", dest="as_name", metavar="NAME", help="formula name")
    sp.add_argument("-o", "--output", metavar="FILE",
                    help="where to write it ('-' for stdout; default .beads/formulas/)")
    sp.add_argument("--force", action="store_true", help="overwrite an existing file")
    for name, wisp in (("pour", False), ("wisp", True)):
        sp = add(name, f"same as 'bd {name}'", _pour_wisp if wisp else _pour_mol, vars_=True,
                 paths=True)
        sp.add_argument("target", metavar="FORMULA|PROTO")
    sp = add("spawn", "instantiate a proto: a wisp, or a mol with --pour", _spawn, vars_=True,
             paths=True)
    sp.add_argument("target", metavar="FORMULA|PROTO")
    sp.add_argument("--pour", action="store_true", help="persistent mol instead of a wisp")


def setup(name: str, sub: Any) -> None:
    """Add the parser for command ``name`` to ``sub``."""
    from .bd import COMMANDS

    p = sub.add_parser(name, help=COMMANDS[name][1], description=COMMANDS[name][1])
    if name == "cook":
        _common(p, vars_=True, paths=True)
        p.add_argument("formula", metavar="FORMULA", help="formula name or file")
        p.add_argument("--dry-run", action="store_true", help="compile and print; store nothing")
        p.set_defaults(func=_cook)
    elif name in ("pour", "wisp"):
        _common(p, vars_=True, paths=True)
        p.add_argument("target", metavar="FORMULA|PROTO")
        p.set_defaults(func=_pour_wisp if name == "wisp" else _pour_mol)
    elif name == "mol":
        common_options(p)
        _setup_mol(p)
    elif name == "formula":
        common_options(p)
        fsub = p.add_subparsers(dest="formula_command", metavar="SUBCOMMAND")
        fsub.required = True
        sp = fsub.add_parser("list", help="formulas on the search path")
        _common(sp, paths=True)
        sp.add_argument("--paths", action="store_true", help="print the search path instead")
        sp.set_defaults(func=_formula_list)
        sp = fsub.add_parser("show", help="a formula compiled, with its steps")
        _common(sp, vars_=True, paths=True)
        sp.add_argument("name")
        sp.set_defaults(func=_formula_show)
        sp = fsub.add_parser("validate", help="check formula files (exit 8 when one is bad)")
        _common(sp, paths=True)
        sp.add_argument("files", nargs="+", metavar="FILE")
        sp.set_defaults(func=_formula_validate)
    elif name in ("gate", "pin", "unpin", "hook"):
        from .bd_hook import setup_hook

        setup_hook(name, p)
