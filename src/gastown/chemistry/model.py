"""The in-memory shapes of the chemistry: variables, steps, formulas, blueprints.

A :class:`Formula` is what one file says (after parsing and key checking).  A
:class:`Blueprint` is a formula *compiled*: ``extends`` merged, expansions,
aspects, loops and branches applied, every step id unique and every ``needs``
resolved.  Protos in the ledger and poured molecules are both made from
blueprints, and a proto can be read back into one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

__all__ = ["VarDef", "Gate", "Check", "Loop", "Step", "Formula", "Blueprint", "FORMULA_TYPES"]

FORMULA_TYPES = ("workflow", "expansion", "aspect", "convoy")


@dataclass
class VarDef:
    """One declared variable (``[vars.NAME]`` or a convoy's ``[inputs.NAME]``)."""

    name: str
    description: str = ""
    default: str | None = None
    required: bool = False
    enum: list[str] = field(default_factory=list)
    pattern: str | None = None
    type: str = "string"
    #: convoy inputs: this one may be omitted when any of these is given
    required_unless: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A compact JSON-able form (empty fields left out)."""
        out: dict[str, Any] = {}
        if self.description:
            out["description"] = self.description
        if self.default is not None:
            out["default"] = self.default
        if self.required:
            out["required"] = True
        if self.enum:
            out["enum"] = list(self.enum)
        if self.pattern:
            out["pattern"] = self.pattern
        if self.type != "string":
            out["type"] = self.type
        if self.required_unless:
            out["required_unless"] = list(self.required_unless)
        return out

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> VarDef:
        """The inverse of :meth:`to_dict` (used when reading a proto back)."""
        return cls(name=name, description=str(data.get("description", "")),
                   default=None if data.get("default") is None else str(data["default"]),
                   required=bool(data.get("required", False)),
                   enum=[str(v) for v in data.get("enum", [])],
                   pattern=data.get("pattern") or None, type=str(data.get("type", "string")),
                   required_unless=[str(v) for v in data.get("required_unless", [])])


@dataclass
class Gate:
    """An asynchronous wait in front of a step: a gate bead blocks the step until resolved."""

    type: str
    id: str = ""
    timeout: str = ""
    description: str = ""
    #: what the resolver looks at (``type = "conditional"``): data for whoever resolves it
    condition: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, empty fields left out."""
        out: dict[str, Any] = {"type": self.type}
        for key in ("id", "timeout", "description", "condition"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out


@dataclass
class Check:
    """A verification loop on a step (``[steps.ralph]``): the step counts as done only
    when the check passes; a failure sends it back to its agent, up to ``max_attempts``.

    ``path`` is a program inside the agent's worktree, run as an argument vector
    (never through a shell) with ``timeout`` seconds.
    """

    path: str
    mode: str = "exec"
    timeout: float = 300.0
    max_attempts: int = 3

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (stored in protos and on the step bead)."""
        return {"mode": self.mode, "path": self.path, "timeout": self.timeout,
                "max_attempts": self.max_attempts}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Check:
        """The inverse of :meth:`to_dict`."""
        return cls(path=str(data.get("path", "")), mode=str(data.get("mode", "exec")),
                   timeout=float(data.get("timeout", 300.0)),
                   max_attempts=int(data.get("max_attempts", 3)))


@dataclass
class Loop:
    """Repeat a body of steps ``count`` times or over an integer ``range``."""

    body: list[Step]
    count: int | None = None
    range: str | None = None
    var: str | None = None


@dataclass
class Step:
    """One step of a workflow; becomes one bead when poured."""

    id: str
    title: str = ""
    description: str = ""
    acceptance: str = ""
    notes: str = ""
    type: str = "task"
    priority: int | None = None
    labels: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    assignee: str = ""
    #: step ids this one waits for (``blocks`` edges)
    needs: list[str] = field(default_factory=list)
    #: step ids this one waits for with ``conditional-blocks`` (from conditional bonds)
    conditional: list[str] = field(default_factory=list)
    #: raw ``waits_for`` spec until compiled, then the id of the step whose children we await
    waits_for: str | None = None
    condition: str | None = None
    children: list[Step] = field(default_factory=list)
    gate: Gate | None = None
    #: ``[steps.ralph]``: a check that must pass before the step counts as done
    check: Check | None = None
    #: ``[steps.retry]``: kept as data (``max_attempts``, ``on_exhausted``)
    retry: dict[str, Any] | None = None
    loop: Loop | None = None
    expand: str | None = None
    expand_vars: dict[str, str] = field(default_factory=dict)
    #: name of the formula this step was defined in (extends/expansions keep the origin)
    source: str = ""

    def clone(self) -> Step:
        """A deep copy (transforms never mutate the parsed formula)."""
        return copy.deepcopy(self)

    def walk(self) -> list[Step]:
        """This step and all its descendants, preorder."""
        out = [self]
        for child in self.children:
            out += child.walk()
        return out


@dataclass
class Formula:
    """A parsed formula file, keys checked but nothing composed yet."""

    name: str
    path: str
    description: str = ""
    version: int | None = None
    type: str = "workflow"
    extends: list[str] = field(default_factory=list)
    vars: dict[str, VarDef] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    #: expansion formulas: the steps that replace a target (``{target}`` placeholders)
    template: list[Step] = field(default_factory=list)
    #: ``compose`` rules: expand, map, branch, aspects
    compose: dict[str, Any] = field(default_factory=dict)
    #: aspect formulas (and workflows): before/after/around rules
    advice: list[dict[str, Any]] = field(default_factory=list)
    pointcuts: list[dict[str, str]] = field(default_factory=list)
    phase: str | None = None
    pour: bool | None = None
    #: ``[squash]``: ``trigger = "on_complete"`` squashes the molecule when it completes
    squash: dict[str, Any] | None = None
    #: analysis-only work: no commits are expected from it
    review_only: bool | None = None
    #: keys kept as data only (a convoy's prompts, output, presets)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Blueprint:
    """A compiled workflow, ready to be cooked into a proto or poured into a mol."""

    name: str
    description: str = ""
    type: str = "workflow"
    phase: str | None = None
    pour: bool | None = None
    version: int | None = None
    vars: dict[str, VarDef] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    #: where it came from: a file path, or ``proto:<id>``
    source: str = ""
    squash: dict[str, Any] | None = None
    review_only: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def all_steps(self) -> list[Step]:
        """Every step, preorder (parents before their children)."""
        out: list[Step] = []
        for step in self.steps:
            out += step.walk()
        return out
