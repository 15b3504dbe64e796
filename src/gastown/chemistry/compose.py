"""Compiling a formula into a :class:`Blueprint`.

The passes run in a fixed order, each on a copy of the steps:

1. ``extends``: parents' vars, steps and compose rules first; a child step with a
   parent step's id replaces it in place, new ones are appended.
2. convoy presets (``--var preset=NAME`` keeps only that preset's legs).
3. expansions: a step's own ``expand``, then ``compose.expand`` and ``compose.map``.
   The target is replaced by the expansion's template; the template's entry steps
   inherit the target's ``needs`` and whatever needed the target now needs the
   template's exit steps.
4. loops: the body repeated ``count`` times (or over ``range``), iterations chained.
5. aspects: ``compose.aspects`` and the formula's own ``advice`` insert steps
   before/after/around matching steps.
6. ``compose.branch``: fork/join edges.
7. ``waits_for`` resolved to the step whose children are awaited.

Then :func:`.graph.validate` checks ids, references and cycles.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping

from ..errors import FormulaError, NotFoundError
from .graph import entries_and_exits, validate
from .model import Blueprint, Formula, Step, VarDef
from .vars import eval_range, substitute

__all__ = ["compile_formula", "Loader", "MAX_STEPS"]

#: a loader finds a formula by name (extends, expand ``with``, aspects)
Loader = Callable[[str], Formula]
#: no formula may compile to more steps than this (a runaway loop is an error)
MAX_STEPS = 20_000
_MAX_DEPTH = 8


def compile_formula(f: Formula, loader: Loader, values: Mapping[str, str] | None = None
                    ) -> Blueprint:
    """Compose ``f`` into a validated blueprint; ``values`` feed loop ranges and presets."""
    values = dict(values or {})
    merged = _merge_extends(f, loader, [])
    bp = Blueprint(name=f.name, description=merged.description, type=f.type,
                   phase=merged.phase, pour=merged.pour, version=f.version,
                   vars=dict(merged.vars), steps=[s.clone() for s in merged.steps],
                   source=f.path, extra=dict(merged.extra))
    where = f.path
    if f.type == "expansion" and not bp.steps:
        # cooked on its own, an expansion wraps one placeholder step named "target"
        bp.vars.setdefault("target", VarDef(name="target", required=True,
                                            description="what the expansion is applied to"))
        placeholder = Step(id="target", title="{{target}}", description="{{target}}",
                           source=f.name)
        bp.steps = _expand_target(placeholder, merged, {}, where)
    if f.type == "aspect":
        raise FormulaError(f"{where}: an aspect has no steps of its own; apply it from a "
                           "workflow with compose.aspects = [\"" + f.name + "\"]")
    _apply_preset(bp, values, where)
    bp.steps = _inline_expansions(bp.steps, loader, bp, where, 0)
    for rule in merged.compose.get("expand", []):
        target = _find(bp.steps, rule["target"])
        if target is None:
            raise FormulaError(f"{where}: compose.expand: target step {rule['target']!r} "
                               "not found")
        exp = _load_expansion(loader, rule["with"], where, "compose.expand")
        _merge_vars(bp, exp)
        bp.steps = _replace(bp.steps, target.id,
                            _expand_target(target, exp, rule.get("vars", {}), where))
    for rule in merged.compose.get("map", []):
        exp = _load_expansion(loader, rule["with"], where, "compose.map")
        _merge_vars(bp, exp)
        matches = [s for s in _all(bp.steps) if fnmatch.fnmatchcase(s.id, rule["select"])]
        for target in matches:
            bp.steps = _replace(bp.steps, target.id,
                                _expand_target(target, exp, rule.get("vars", {}), where))
    bp.steps = _apply_loops(bp.steps, values, where)
    for name in merged.compose.get("aspects", []):
        aspect = _load(loader, name, where, "compose.aspects")
        if aspect.type != "aspect":
            raise FormulaError(f"{where}: compose.aspects: {name!r} is a {aspect.type} "
                               "formula, not an aspect")
        _merge_vars(bp, aspect)
        for rule in aspect.advice:
            _apply_advice(bp, rule, aspect.pointcuts, aspect.name, where)
    for rule in merged.advice:
        _apply_advice(bp, rule, merged.pointcuts, f.name, where)
    for branch in merged.compose.get("branch", []):
        _apply_branch(bp, branch, where)
    _resolve_waits_for(bp.steps, where)
    count = len(bp.all_steps())
    if count > MAX_STEPS:
        raise FormulaError(f"{where}: compiles to {count} steps (more than {MAX_STEPS})")
    validate(bp, where)
    return bp


# ------------------------------------------------------------------ helpers


def _all(steps: list[Step]) -> list[Step]:
    out: list[Step] = []
    for s in steps:
        out += s.walk()
    return out


def _find(steps: list[Step], sid: str) -> Step | None:
    for s in _all(steps):
        if s.id == sid:
            return s
    return None


def _load(loader: Loader, name: str, where: str, key: str) -> Formula:
    try:
        return loader(name)
    except NotFoundError as exc:
        raise FormulaError(f"{where}: {key}: {exc}") from None


def _load_expansion(loader: Loader, name: str, where: str, key: str) -> Formula:
    exp = _load(loader, name, where, key)
    if exp.type != "expansion":
        raise FormulaError(f"{where}: {key}: {name!r} is a {exp.type} formula, "
                           "not an expansion")
    if not exp.template:
        raise FormulaError(f"{where}: {key}: {name!r} has no [[template]] steps")
    return exp


def _merge_vars(bp: Blueprint, other: Formula) -> None:
    for name, v in other.vars.items():
        bp.vars.setdefault(name, v)


def _merge_extends(f: Formula, loader: Loader, chain: list[str]) -> Formula:
    """``f`` with its parents folded in (depth first, in ``extends`` order)."""
    if f.name in chain:
        raise FormulaError(f"{f.path}: extends cycle: {' -> '.join([*chain, f.name])}")
    if not f.extends:
        return f
    if len(chain) > _MAX_DEPTH:
        raise FormulaError(f"{f.path}: extends is nested more than {_MAX_DEPTH} deep")
    base = Formula(name=f.name, path=f.path)
    for parent_name in f.extends:
        parent = _merge_extends(_load(loader, parent_name, f.path, "extends"), loader,
                                [*chain, f.name])
        if parent.type not in ("workflow", "convoy"):
            raise FormulaError(f"{f.path}: extends: {parent_name!r} is a {parent.type} "
                               "formula; only workflows can be extended")
        _fold(base, parent)
    _fold(base, f)
    base.type = f.type
    base.extends = []
    return base


def _fold(into: Formula, layer: Formula) -> None:
    into.description = layer.description or into.description
    into.phase = layer.phase or into.phase
    into.pour = layer.pour if layer.pour is not None else into.pour
    into.vars.update(layer.vars)
    index = {s.id: i for i, s in enumerate(into.steps)}
    for step in layer.steps:
        if step.id in index:
            into.steps[index[step.id]] = step.clone()  # same id: the later layer replaces it
        else:
            index[step.id] = len(into.steps)
            into.steps.append(step.clone())
    for key, rules in layer.compose.items():
        into.compose[key] = [*into.compose.get(key, []), *rules]
    into.advice += layer.advice
    into.pointcuts += layer.pointcuts
    into.extra.update(layer.extra)


def _apply_preset(bp: Blueprint, values: Mapping[str, str], where: str) -> None:
    preset = values.get("preset")
    presets = bp.extra.get("presets") or {}
    if not preset or not presets:
        return
    if preset not in presets or not isinstance(presets[preset], dict):
        raise FormulaError(f"{where}: unknown preset {preset!r} "
                           f"(one of {', '.join(sorted(presets))})")
    keep = set(presets[preset].get("legs", []))
    legs = set(bp.extra.get("legs", []))
    dropped = legs - keep
    bp.steps = [s for s in bp.steps if s.id not in dropped]
    for s in _all(bp.steps):
        s.needs = [n for n in s.needs if n not in dropped]


def _target_subst(text: str, target: Step) -> str:
    if not text or "{target" not in text:
        return text
    return (text.replace("{target}", target.id).replace("{target.id}", target.id)
            .replace("{target.title}", target.title)
            .replace("{target.description}", target.description))


def _expand_target(target: Step, exp: Formula, rule_vars: Mapping[str, str], where: str
                   ) -> list[Step]:
    """The expansion's template steps instantiated for ``target``, wired into its place."""
    if target.children:
        raise FormulaError(f"{where}: step '{target.id}': a step with children cannot be "
                           "expanded")
    out: list[Step] = []
    template = exp.template or exp.steps

    def inst(t: Step) -> Step:
        s = t.clone()
        s.id = _target_subst(t.id, target)
        for key in ("title", "description", "acceptance", "notes"):
            setattr(s, key, substitute(_target_subst(getattr(t, key), target), rule_vars))
        s.needs = [_target_subst(n, target) for n in t.needs]
        s.labels = [_target_subst(lb, target) for lb in t.labels]
        s.children = [inst(c) for c in t.children]
        s.source = exp.name
        return s

    out = [inst(t) for t in template]
    ids = {s.id for s in _all(out)}
    if exp.template and not any(t.id != _target_subst(t.id, target) for t in template):
        # ids without {target} would clash between two expansions of the same formula
        out = _prefix_ids(out, target.id, ids)
    entries, _ = entries_and_exits(out)
    for s in out:
        if s.id in entries:
            s.needs = [*target.needs, *[n for n in s.needs if n not in target.needs]]
            s.conditional = [*target.conditional, *s.conditional]
    if target.gate and out:
        out[0].gate = out[0].gate or target.gate
    return out


def _prefix_ids(steps: list[Step], prefix: str, ids: set[str]) -> list[Step]:
    for s in _all(steps):
        s.id = f"{prefix}.{s.id}"
        s.needs = [f"{prefix}.{n}" if n in ids else n for n in s.needs]
    return steps


def _replace(steps: list[Step], target_id: str, new: list[Step]) -> list[Step]:
    """Put ``new`` where ``target_id`` was and point its dependents at ``new``'s exits."""
    _, exits = entries_and_exits(new)
    new_ids = {s.id for s in _all(new)}

    def swap(level: list[Step]) -> list[Step]:
        out: list[Step] = []
        for s in level:
            if s.id == target_id:
                out += new
                continue
            s.children = swap(s.children)
            out.append(s)
        return out

    result = swap(steps)
    for s in _all(result):
        if s.id in new_ids:
            continue
        for attr in ("needs", "conditional"):
            deps: list[str] = getattr(s, attr)
            if target_id in deps:
                fresh: list[str] = []
                for d in deps:
                    for x in (exits if d == target_id else [d]):
                        if x not in fresh:
                            fresh.append(x)
                setattr(s, attr, fresh)
        if s.waits_for == f"children-of({target_id})":
            s.waits_for = f"children-of({exits[-1]})" if exits else None
    return result


def _inline_expansions(steps: list[Step], loader: Loader, bp: Blueprint, where: str,
                       depth: int) -> list[Step]:
    if depth > _MAX_DEPTH:
        raise FormulaError(f"{where}: expansions nest more than {_MAX_DEPTH} deep")
    for target in [s for s in _all(steps) if s.expand]:
        exp = _load_expansion(loader, target.expand or "", where, f"step '{target.id}': expand")
        _merge_vars(bp, exp)
        new = _expand_target(target, exp, target.expand_vars, where)
        new = _inline_expansions(new, loader, bp, where, depth + 1)
        steps = _replace(steps, target.id, new)
    return steps


def _apply_loops(steps: list[Step], values: Mapping[str, str], where: str) -> list[Step]:
    for loop_step in [s for s in _all(steps) if s.loop]:
        steps = _replace(steps, loop_step.id, _expand_loop(loop_step, values, where))
    return steps


def _expand_loop(step: Step, values: Mapping[str, str], where: str) -> list[Step]:
    loop = step.loop
    assert loop is not None
    sw = f"{where}: step '{step.id}': loop"
    if step.children:
        raise FormulaError(f"{sw}: a loop step cannot also have children")
    if loop.count is not None:
        iterations = list(range(1, loop.count + 1))
    else:
        start, end = eval_range(loop.range or "", values, sw)
        iterations = list(range(start, end + 1))
    if len(iterations) * len(loop.body) > MAX_STEPS:
        raise FormulaError(f"{sw}: {len(iterations)} iterations of {len(loop.body)} steps is "
                           f"more than {MAX_STEPS} steps")
    body_ids = {s.id for s in _all(loop.body)}
    out: list[Step] = []
    prev_exits: list[str] = []
    for n, value in enumerate(iterations, start=1):
        prefix = f"{step.id}.iter{n}"
        local = {loop.var: str(value)} if loop.var else {}

        def inst(b: Step, prefix: str = prefix, local: dict[str, str] = local) -> Step:
            s = b.clone()
            s.id = f"{prefix}.{b.id}"
            for key in ("title", "description", "acceptance", "notes"):
                text = substitute(getattr(b, key), local)
                for k, v in local.items():
                    text = text.replace("{" + k + "}", v)
                setattr(s, key, text)
            s.needs = [f"{prefix}.{x}" if x in body_ids else x for x in b.needs]
            s.children = [inst(c) for c in b.children]
            return s

        it = [inst(b) for b in loop.body]
        it = _apply_loops(it, {**values, **local}, where)
        entries, exits = entries_and_exits(it)
        for s in it:
            if s.id in entries:
                extra = prev_exits if prev_exits else step.needs
                s.needs = [*extra, *[x for x in s.needs if x not in extra]]
        prev_exits = exits
        out += it
    return out


def _matches(step: Step, target: str, pointcuts: list[dict[str, str]]) -> bool:
    if target:
        return fnmatch.fnmatchcase(step.id, target)
    for pc in pointcuts:
        if pc.get("glob") and not fnmatch.fnmatchcase(step.id, pc["glob"]):
            continue
        if pc.get("type") and step.type != pc["type"]:
            continue
        if pc.get("label") and pc["label"] not in step.labels:
            continue
        return True
    return False


def _advice_step(spec: dict[str, object], target: Step, source: str) -> Step:
    def sub(text: object) -> str:
        return (str(text or "").replace("{step.id}", target.id)
                .replace("{step.title}", target.title))

    prio = spec.get("priority")
    labels = spec.get("labels")
    return Step(id=sub(spec.get("id")), title=sub(spec.get("title")) or sub(spec.get("id")),
                description=sub(spec.get("description")), acceptance=sub(spec.get("acceptance")),
                type=str(spec.get("type") or "task"),
                priority=prio if isinstance(prio, int) else None,
                labels=[str(x) for x in labels] if isinstance(labels, list) else [],
                source=source)


def _apply_advice(bp: Blueprint, rule: dict[str, object], pointcuts: list[dict[str, str]],
                  source: str, where: str) -> None:
    target_glob = str(rule.get("target") or "")
    if not target_glob and not pointcuts:
        raise FormulaError(f"{where}: advice from {source!r} has no target and no pointcuts")
    around = rule.get("around") if isinstance(rule.get("around"), dict) else {}
    assert isinstance(around, dict)
    before = list(rule.get("before") or []) + list(around.get("before") or [])  # type: ignore[call-overload]
    after = list(around.get("after") or []) + list(rule.get("after") or [])  # type: ignore[call-overload]
    for target in [s for s in _all(bp.steps) if _matches(s, target_glob, pointcuts)]:
        pre = [_advice_step(spec, target, source) for spec in before]
        post = [_advice_step(spec, target, source) for spec in after]
        for i, s in enumerate(pre):
            s.needs = list(target.needs) if i == 0 else [pre[i - 1].id]
        if pre:
            target.needs = [pre[-1].id]
        dependents = [s for s in _all(bp.steps) if target.id in s.needs]
        for i, s in enumerate(post):
            s.needs = [target.id] if i == 0 else [post[i - 1].id]
        if post:
            for d in dependents:
                d.needs = [post[-1].id if n == target.id else n for n in d.needs]
        bp.steps = _insert_around(bp.steps, target.id, pre, post)


def _insert_around(steps: list[Step], target_id: str, pre: list[Step], post: list[Step]
                   ) -> list[Step]:
    out: list[Step] = []
    for s in steps:
        if s.id == target_id:
            out += [*pre, s, *post]
        else:
            s.children = _insert_around(s.children, target_id, pre, post)
            out.append(s)
    return out


def _apply_branch(bp: Blueprint, branch: dict[str, object], where: str) -> None:
    src = str(branch["from"])
    join = str(branch["join"])
    for sid in [src, join, *branch["steps"]]:  # type: ignore[misc]
        if _find(bp.steps, str(sid)) is None:
            raise FormulaError(f"{where}: compose.branch: step {sid!r} not found")
    join_step = _find(bp.steps, join)
    assert join_step is not None
    for sid in branch["steps"]:  # type: ignore[attr-defined]
        s = _find(bp.steps, str(sid))
        assert s is not None
        if src not in s.needs:
            s.needs.append(src)
        if sid not in join_step.needs:
            join_step.needs.append(str(sid))


def _resolve_waits_for(steps: list[Step], where: str) -> None:
    ids = {s.id for s in _all(steps)}
    for s in _all(steps):
        spec = s.waits_for
        if not spec:
            continue
        sw = f"{where}: step '{s.id}': key 'waits_for'"
        if spec == "all-children":
            if not s.needs:
                raise FormulaError(f"{sw}: 'all-children' waits on the children of the first "
                                   "step in 'needs', and this step needs nothing")
            s.waits_for = s.needs[0]
        elif spec.startswith("children-of(") and spec.endswith(")"):
            target = spec[len("children-of("):-1].strip()
            if target not in ids:
                raise FormulaError(f"{sw}: children-of() names unknown step {target!r}")
            s.waits_for = target
        elif spec == "any-children":
            raise FormulaError(f"{sw}: 'any-children' is not supported (only all-children "
                               "and children-of(step))")
        elif spec in ids:
            s.waits_for = spec
        else:
            raise FormulaError(f"{sw}: invalid value {spec!r} (all-children or "
                               "children-of(step))")
