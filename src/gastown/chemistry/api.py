"""The chemistry's front door: cook, pour, wisp — one transaction each.

``formula_or_proto`` arguments are resolved the same way everywhere:

1. a path to a file (contains ``/`` or ends in ``.toml``/``.json``) is a formula;
2. otherwise a proto already cooked into the ledger with that name (or with
   ``mol-`` added/removed) wins — it may have been edited after cooking;
3. otherwise the name is looked up on the formula search path.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import FormulaError, GastownError, NotFoundError
from ..ledger.core import Ledger
from ..ledger.model import Bead
from ..ledger.ops import Txn
from . import search
from .compose import compile_formula
from .formula import load_file
from .instantiate import instantiate
from .model import Blueprint, Formula
from .proto import load_proto, proto_view, store_proto, with_values
from .vars import resolve_vars

__all__ = ["cook", "cook_view", "pour", "pour_in", "wisp", "compile_ref", "Source",
           "resolve_source", "formula_paths"]


def formula_paths(ledger: Ledger | None = None, extra: list[str] | None = None,
                  beads_dir: str | None = None) -> list[str]:
    """The search path for a ledger (its ``.beads/formulas`` included)."""
    bd = beads_dir or (ledger.beads_dir if ledger is not None else None)
    return search.search_paths(bd, extra)


def _loader(paths: list[str]) -> Any:
    cache: dict[str, Formula] = {}

    def load(name: str) -> Formula:
        if name not in cache:
            cache[name] = search.load_formula(name, paths)
        return cache[name]

    return load


def compile_ref(ref: str, paths: list[str], values: Mapping[str, str] | None = None
                ) -> Blueprint:
    """Load and compile a formula by name or path."""
    path, f = search.locate_formula(ref, paths)
    # a formula's own folder resolves its extends/expansions before the search path
    here = os.path.dirname(os.path.abspath(path))
    return compile_formula(f, _loader([here, *[p for p in paths if p != here]]), values)


@dataclass
class Source:
    """What an operand turned out to be: a stored proto or a formula file."""

    kind: str  # "proto" | "formula"
    name: str
    blueprint: Blueprint | None = None  # compiled formula (protos are read in the txn)


def _proto_candidates(ledger: Ledger, ref: str) -> str | None:
    for variant in search.name_variants(ref):
        if ledger.exists(variant):
            bead = ledger.get(variant)
            if bead.get("is_template"):
                parents = [d for d in ledger.deps(variant) if d["type"] == "parent-child"]
                if not parents:
                    return variant
    return None


def resolve_source(ledger: Ledger, ref: str, paths: list[str],
                   values: Mapping[str, str] | None = None) -> Source:
    """Decide whether ``ref`` is a stored proto or a formula (compiling the formula)."""
    if not search.looks_like_path(ref):
        proto = _proto_candidates(ledger, ref)
        if proto:
            return Source("proto", proto)
    try:
        bp = compile_ref(ref, paths, values)
    except NotFoundError:
        raise NotFoundError(f"no proto or formula named {ref!r} (try 'bd mol list --protos')"
                            ) from None
    return Source("formula", bp.name, bp)


def cook_view(ref: str, paths: list[str], values: Mapping[str, str] | None = None
              ) -> dict[str, Any]:
    """Compile without storing: the proto JSON ``bd cook`` would print (no ledger needed)."""
    bp = compile_ref(ref, paths, values)
    given = dict(values or {})
    resolve_vars(bp, given, strict=False)
    return proto_view(with_values(bp, given), stored=False)


def cook(ledger: Ledger, ref: str, values: Mapping[str, str] | None = None, *,
         search_paths: list[str] | None = None, actor: str | None = None) -> dict[str, Any]:
    """Cook a formula into a proto (template beads); returns the proto's JSON view.

    ``values`` substitutes those variables into the proto (compile-time); the
    others keep their ``{{placeholders}}`` until pour.  Idempotent: an
    unchanged formula is a no-op (``action: unchanged``), a changed one replaces
    the proto (``action: replaced``).
    """
    paths = formula_paths(ledger, search_paths)
    given = dict(values or {})
    bp = compile_ref(ref, paths, given)
    resolve_vars(bp, given, strict=False)  # checks enum/pattern of what was given
    bp = with_values(bp, given)
    with ledger.transaction(actor) as t:
        _, action = store_proto(t, bp, given)
    view = proto_view(bp, action=action)
    view["source"] = bp.source
    return view


def pour(ledger: Ledger, formula_or_proto: str, vars: dict[str, str] | None = None, *,
         wisp: bool = False, search_paths: list[str] | None = None,
         actor: str | None = None) -> Bead:
    """Instantiate a proto or formula as a molecule (or, with ``wisp``, a wisp).

    Returns the root bead; its ``metadata.steps`` maps step ids to bead ids.
    One transaction: either the whole molecule exists afterwards or nothing.
    """
    root, _ = pour_with_steps(ledger, formula_or_proto, vars, wisp=wisp,
                              search_paths=search_paths, actor=actor)
    return root


def pour_with_steps(ledger: Ledger, formula_or_proto: str, vars: dict[str, str] | None = None,
                    *, wisp: bool = False, search_paths: list[str] | None = None,
                    actor: str | None = None) -> tuple[Bead, dict[str, str]]:
    """:func:`pour`, also returning the step-id → bead-id map."""
    paths = formula_paths(ledger, search_paths)
    given = dict(vars or {})
    src = resolve_source(ledger, formula_or_proto, paths, given)
    with ledger.transaction(actor) as t:
        return pour_in(t, src, given, wisp=wisp)


def pour_in(t: Txn, src: Source, vars: Mapping[str, str] | None = None, *,
            wisp: bool = False) -> tuple[Bead, dict[str, str]]:
    """The core of :func:`pour` inside a caller's transaction: ``(root, step map)``.

    ``src`` comes from :func:`resolve_source` (a formula is compiled before the
    transaction starts, so the write lock is not held while files are read).
    """
    given = dict(vars or {})
    bp = src.blueprint if src.blueprint is not None else load_proto(t, src.name)
    values = resolve_vars(bp, given)
    return instantiate(t, bp, values, wisp=wisp, given=given,
                       proto_id=src.name if src.kind == "proto" else None,
                       extra_meta={"source": bp.source} if src.kind == "formula" else None)


def wisp(ledger: Ledger, formula_or_proto: str, vars: dict[str, str] | None = None, *,
         search_paths: list[str] | None = None, actor: str | None = None) -> Bead:
    """Instantiate as a wisp: ephemeral, never exported, squashed or burned when done."""
    return pour(ledger, formula_or_proto, vars, wisp=True, search_paths=search_paths,
                actor=actor)


def formula_source_path(bp: Blueprint) -> str | None:
    """The file a compiled blueprint came from, if any."""
    return bp.source if bp.source and os.path.exists(bp.source) else None


def check_formula(path: str, paths: list[str]) -> tuple[Blueprint, list[str]]:
    """Load, compile and cook-check one file; returns the blueprint and warnings."""
    f = load_file(path)
    if f.type in ("aspect",):
        return Blueprint(name=f.name, type=f.type, source=path), []
    here = os.path.dirname(os.path.abspath(path))
    bp = compile_formula(f, _loader([here, *[p for p in paths if p != here]]), {})
    warnings: list[str] = []
    from .vars import referenced_vars

    for name, step_id in referenced_vars(bp.all_steps()).items():
        if name not in bp.vars:
            warnings.append(f"{path}: step '{step_id}' uses undeclared variable "
                            f"{{{{{name}}}}}")
    if not bp.all_steps():
        raise FormulaError(f"{path}: compiles to no steps")
    return bp, warnings


def validate_files(refs: list[str], paths: list[str]) -> list[dict[str, Any]]:
    """``bd formula validate``: load, compile and check each file; one result per file.

    A failed result carries ``error`` (its one-line message) and ``exception``.
    """
    results: list[dict[str, Any]] = []
    for ref in refs:
        item: dict[str, Any] = {"formula": ref}
        try:
            path = search.find_formula(ref, paths)
            item["path"] = path
            bp, warnings = check_formula(path, paths)
            item.update(ok=True, name=bp.name, type=bp.type, steps=len(bp.all_steps()),
                        warnings=warnings)
        except GastownError as exc:
            item.update(ok=False, error=str(exc), exception=exc)
        results.append(item)
    return results


def proto_library(ledger: Ledger | None, paths: list[str]) -> list[dict[str, Any]]:
    """``bd mol list --protos``: cooked protos, then formulas on the path not yet cooked."""
    from .inspect import list_protos

    rows = list_protos(ledger)
    names = {p["id"] for p in rows}
    for ref in search.list_formulas(paths):
        if ref.shadowed or ref.error or ref.type == "aspect":
            continue
        if any(v in names for v in search.name_variants(ref.name)):
            continue
        rows.append({"id": ref.name, "name": ref.name, "type": ref.type,
                     "description": ref.description, "stored": False, "path": ref.path})
        names.add(ref.name)
    return rows
