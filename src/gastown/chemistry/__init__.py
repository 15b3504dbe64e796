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

See ``DESIGN.md`` §4 and the Molecular Chemistry seed for the phase rules.
"""

from __future__ import annotations

from .api import compile_ref, cook, cook_view, formula_paths, pour, pour_with_steps, wisp
from .bond import BOND_TYPES, bond
from .digest import burn, squash
from .distill import distill
from .formula import load_file
from .inspect import current_step, list_mols, next_step_for, progress, tree, work_steps
from .model import Blueprint, Formula, Step, VarDef
from .search import find_formula, list_formulas, search_paths

__all__ = [
    "cook", "cook_view", "pour", "pour_with_steps", "wisp", "bond", "squash", "burn",
    "distill", "current_step", "next_step_for", "progress", "tree", "list_mols", "work_steps",
    "compile_ref", "formula_paths", "search_paths", "find_formula", "list_formulas",
    "load_file", "Blueprint", "Formula", "Step", "VarDef", "BOND_TYPES",
]
