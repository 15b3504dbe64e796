"""Distill: a mol, wisp or epic (liquid) crystallises into a formula (solid).

Every descendant becomes a step (gate beads become their step's ``gate``), its
``blocks`` edges inside the tree become ``needs``, ``waits-for`` edges become
``waits_for = "children-of(…)"``.  ``--var name=value`` turns each occurrence of
``value`` in titles and texts back into ``{{name}}``.  Step ids are kept where
the molecule recorded them, so pouring a formula, distilling the mol with the
same variables and cooking the result gives back the same step graph.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..errors import ConflictError, UsageError
from ..ledger.core import Ledger
from .bonding import compound_name
from .formula import STEP_ID_RE
from .inspect import mol_beads, parent_map
from .tomlw import toml_key, toml_string, toml_value

__all__ = ["distill", "write_formula"]

_INTERNAL_LABELS = {"template", "digest", "human"}


def _slug(text: str) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return s[:40].strip("-") or "step"


def _replace_values(text: str, values: list[tuple[str, str]]) -> str:
    for name, value in values:
        if value:
            text = text.replace(value, "{{" + name + "}}")
    return text


def distill(ledger: Ledger, bead_id: str, *, name: str | None = None,
            vars: Mapping[str, str] | None = None) -> tuple[str, str, dict[str, Any]]:
    """The formula text for the tree under ``bead_id``: ``(formula_name, toml, info)``."""
    root = ledger.get(bead_id)
    beads = mol_beads(ledger, bead_id)
    if not beads:
        raise UsageError(f"{bead_id} has no children to distill (a mol or an epic with "
                         "children is needed)")
    values = sorted(((k, v) for k, v in (vars or {}).items() if v), key=lambda kv: -len(kv[1]))
    ids = [b["id"] for b in beads]
    parents = parent_map(ledger, ids)
    gates = {b["id"]: b for b in beads if b.get("issue_type") == "gate"}
    steps = [b for b in beads if b["id"] not in gates]
    step_id: dict[str, str] = {}
    used: set[str] = set()
    for b in steps:
        meta = b.get("metadata") or {}
        want = str(meta.get("step") or "")
        if not want or not STEP_ID_RE.fullmatch(want) or want in used:
            base = want if want and STEP_ID_RE.fullmatch(want) else _slug(b["title"])
            want, n = base, 2
            while want in used:
                want, n = f"{base}-{n}", n + 1
        used.add(want)
        step_id[b["id"]] = want
    in_tree = set(step_id)
    edges: dict[str, list[tuple[str, str]]] = {b: [] for b in ids}
    external: list[str] = []
    with ledger.snapshot() as r:
        for src, dst, typ in r.edges_from(ids):
            edges[src].append((dst, typ))
    order = {b["id"]: i for i, b in enumerate(beads)}
    nodes: dict[str, dict[str, Any]] = {}
    for b in steps:
        meta = b.get("metadata") or {}
        labels = [lb for lb in b.get("labels") or [] if lb not in _INTERNAL_LABELS]
        node: dict[str, Any] = {"id": step_id[b["id"]],
                                "title": _replace_values(b["title"], values)}
        for key, field in (("description", "description"), ("acceptance", "acceptance_criteria"),
                           ("notes", "notes")):
            if b.get(field):
                node[key] = _replace_values(b[field], values)
        btype = b.get("issue_type", "task")
        if btype == "molecule":
            btype = str(meta.get("container_type") or "task")
        if "human" in (b.get("labels") or []) and btype == "task":
            btype = "human"
        if btype != "task":
            node["type"] = btype
        if b.get("priority", 2) != 2:
            node["priority"] = b["priority"]
        if labels:
            node["labels"] = [_replace_values(lb, values) for lb in labels]
        needs: list[str] = []
        for dst, typ in sorted(edges[b["id"]], key=lambda e: order.get(e[0], 1 << 30)):
            if typ in ("blocks", "conditional-blocks") and dst in in_tree:
                needs.append(step_id[dst])
            elif typ == "blocks" and dst in gates:
                gmeta = gates[dst].get("metadata") or {}
                node["gate"] = gmeta.get("gate") or {"type": "human"}
            elif typ == "waits-for" and dst in in_tree:
                node["waits_for"] = f"children-of({step_id[dst]})"
            elif typ in ("blocks", "conditional-blocks", "waits-for") and dst not in in_tree:
                external.append(f"{b['id']} -> {dst}")
        if needs:
            node["needs"] = needs
        if isinstance(meta.get("gate"), dict) and "gate" not in node:
            node["gate"] = meta["gate"]  # a proto keeps its gates in step metadata
        if meta.get("condition"):
            node["condition"] = meta["condition"]
        node["children"] = []
        nodes[b["id"]] = node
    top: list[dict[str, Any]] = []
    for b in steps:
        parent = parents.get(b["id"])
        (nodes[parent]["children"] if parent in nodes else top).append(nodes[b["id"]])
    fname = compound_name(name) if name else compound_name(_replace_values(root["title"], []))
    description = _replace_values(root.get("description") or "", values) or \
        f"Distilled from {bead_id}: {root['title']}"
    info = {"formula": fname, "source": bead_id, "steps": len(steps),
            "vars": [k for k, _ in values], "external_dependencies": external}
    header = {"formula": fname, "description": description, "version": 1, "type": "workflow"}
    if root.get("ephemeral"):
        header["phase"] = "vapor"
    var_defs = {k: {"description": f"distilled from {bead_id} (was {v!r})", "required": True}
                for k, v in sorted((vars or {}).items()) if v}
    return fname, write_formula(header, var_defs, top, source=bead_id), info


def write_formula(header: Mapping[str, Any], var_defs: Mapping[str, Mapping[str, Any]],
                  steps: list[dict[str, Any]], *, source: str = "") -> str:
    """Formula TOML text from plain data (``children`` lists nest as ``[[steps.children]]``)."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    lines = [f"# Distilled from {source} by 'bd mol distill' on {stamp}." if source
             else "# Written by gastown.", ""]
    for key, value in header.items():
        lines.append(f"{toml_key(key)} = {toml_value(value)}")
    for name, spec in var_defs.items():
        lines += ["", f"[vars.{toml_key(name)}]"]
        lines += [f"{toml_key(k)} = {toml_value(v)}" for k, v in spec.items()]

    def emit(step: dict[str, Any], depth: int) -> None:
        lines.append("")
        lines.append("[[" + ".".join(["steps"] + ["children"] * depth) + "]]")
        for key in ("id", "title", "type", "priority", "needs", "waits_for", "condition",
                    "labels", "gate", "acceptance", "description", "notes"):
            if key in step and step[key] not in (None, "", []):
                value = step[key]
                text = toml_string(value) if isinstance(value, str) else toml_value(value)
                lines.append(f"{key} = {text}")
        for child in step.get("children", []):
            emit(child, depth + 1)

    for step in steps:
        emit(step, 0)
    return "\n".join(lines) + "\n"


def save(text: str, path: str, *, force: bool = False) -> str:
    """Write a distilled formula atomically; refuses to overwrite unless ``force``."""
    path = os.path.abspath(path)
    if os.path.exists(path) and not force:
        raise ConflictError(f"{path} already exists (use --force to overwrite)")
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
