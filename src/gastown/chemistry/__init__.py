"""The chemistry of work: formulas → protos → mols and wisps → digests.

Public API (every operator is one ledger transaction)::

    cook(ledger, "mol-engineer-in-box")                 # formula → proto (template beads)
    root = pour(ledger, "mol-engineer-in-box", {"feature": "auth"})   # → mol
    root = pour(ledger, "mol-patrol", wisp=True)        # → wisp
    bond(ledger, "mol-a", "mol-b", name="A then B")    # polymorphic combine
    current_step(ledger, root["id"])                    # what runs next
    squash(ledger, root["id"], "done")                  # → digest
    burn(ledger, wisp_id)                               # wisp → nothing
    name, text, info = distill(ledger, root["id"], vars={"feature": "auth"})

Names load lazily (PEP 562): ``bd mol current`` and ``bd hook`` run on every
agent prompt and need only :mod:`.inspect`, not the formula compiler.
See ``DESIGN.md`` §4 and the Molecular Chemistry seed for the phase rules.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # type checkers only
    from typing import Any

    from .api import compile_ref, cook, cook_view, formula_paths, pour, pour_with_steps, wisp
    from .bonding import BOND_TYPES, bond
    from .digest import burn, squash
    from .distilling import distill
    from .formula import load_file
    from .inspect import current_step, list_mols, next_step_for, progress, tree, work_steps
    from .model import Blueprint, Formula, Step, VarDef
    from .search import find_formula, list_formulas, search_paths

_EXPORTS = {
    "cook": "api", "cook_view": "api", "pour": "api", "pour_with_steps": "api", "wisp": "api",
    "compile_ref": "api", "formula_paths": "api",
    "bond": "bonding", "BOND_TYPES": "bonding",
    "squash": "digest", "burn": "digest",
    "distill": "distilling",
    "load_file": "formula",
    "current_step": "inspect", "next_step_for": "inspect", "progress": "inspect",
    "tree": "inspect", "list_mols": "inspect", "work_steps": "inspect",
    "Blueprint": "model", "Formula": "model", "Step": "model", "VarDef": "model",
    "search_paths": "search", "find_formula": "search", "list_formulas": "search",
}

__all__ = [
    "BOND_TYPES", "Blueprint", "Formula", "Step", "VarDef", "bond", "burn", "compile_ref",
    "cook", "cook_view", "current_step", "distill", "find_formula", "formula_paths",
    "list_formulas", "list_mols", "load_file", "next_step_for", "pour", "pour_with_steps",
    "progress", "search_paths", "squash", "tree", "wisp", "work_steps",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'gastown.chemistry' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
