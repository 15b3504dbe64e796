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

Formulas are untrusted: a :class:`~.limits.Budget` is charged *before* every
pass that makes steps (a loop's iterations, an expansion's template, advice), a
parent reached twice through ``extends`` is folded once, and every pass over the
steps is linear (replacements are applied in one walk, not one walk each).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping

from ..errors import FormulaError, NotFoundError
from .graph import entries_and_exits, validate
from .limits import MAX_EXPAND_DEPTH, MAX_EXTENDS_DEPTH, MAX_STEPS, MAX_TEXT_CHARS, Budget
from .model import Blueprint, Formula, Step, VarDef
from .vars import eval_range, substitute

__all__ = ["compile_formula", "Loader", "MAX_STEPS"]

#: a loader finds a formula by name (extends, expand ``with``, aspects)
Loader = Callable[[str], Formula]


def compile_formula(f: Formula, loader: Loader, values: Mapping[str, str] | None = None
                    ) -> Blueprint:
    """Compose ``f`` into a validated blueprint; ``values`` feed loop ranges and presets."""
    values = dict(values or {})
    where = f.path
    budget = Budget(where)
    budget.loaded(f.name, "extends")
    merged = _merge_extends(f, _counting(loader, budget), [], {}, budget)
    loader = _counting(loader, budget)
    bp = Blueprint(name=f.name, description=merged.description, type=f.type,
                   phase=merged.phase, pour=merged.pour, version=f.version,
                   vars=dict(merged.vars), steps=[s.clone() for s in merged.steps],
                   source=f.path, extra=dict(merged.extra), squash=merged.squash,
                   review_only=merged.review_only)
    budget.steps = len(bp.all_steps())
    if f.type == "expansion" and not bp.steps:
        # cooked on its own, an expansion wraps one placeholder step named "target"
        bp.vars.setdefault("target", VarDef(name="target", required=True,
                                            description="what the expansion is applied to"))
        placeholder = Step(id="target", title="{{target}}", description="{{target}}",
                           source=f.name)
        bp.steps = _expand_target(placeholder, merged, {}, where, budget)
    if f.type == "aspect" and not bp.steps:
        # cooked on its own, an aspect wraps one placeholder step per step id it targets
        bp.steps = _aspect_placeholders(merged)
        budget.steps = len(bp.steps)
    _apply_preset(bp, values, where)
    bp.steps = _inline_expansions(bp.steps, loader, bp, where, 0, budget)
    for rule in merged.compose.get("expand", []):
        target = _find(bp.steps, rule["target"])
        if target is None:
            raise FormulaError(f"{where}: compose.expand: target step {rule['target']!r} "
                               "not found")
        exp = _load_expansion(loader, rule["with"], where, "compose.expand")
        _merge_vars(bp, exp)
        bp.steps = _replace(bp.steps, target.id,
                            _expand_target(target, exp, rule.get("vars", {}), where, budget))
    for rule in merged.compose.get("map", []):
        exp = _load_expansion(loader, rule["with"], where, "compose.map")
        _merge_vars(bp, exp)
        matches = [s for s in _all(bp.steps) if fnmatch.fnmatchcase(s.id, rule["select"])]
        bp.steps = _replace_many(bp.steps, {
            t.id: _expand_target(t, exp, rule.get("vars", {}), where, budget) for t in matches})
    bp.steps = _apply_loops(bp.steps, values, where, budget)
    for name in merged.compose.get("aspects", []):
        aspect = _load(loader, name, where, "compose.aspects")
        if aspect.type != "aspect":
            raise FormulaError(f"{where}: compose.aspects: {name!r} is a {aspect.type} "
                               "formula, not an aspect")
        _merge_vars(bp, aspect)
        for rule in aspect.advice:
            _apply_advice(bp, rule, aspect.pointcuts, aspect.name, where, budget)
    for rule in merged.advice:
        _apply_advice(bp, rule, merged.pointcuts, f.name, where, budget)
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


def _counting(loader: Loader, budget: Budget) -> Loader:
    """``loader`` that counts the distinct formulas one compile loads."""
    def load(name: str) -> Formula:
        f = loader(name)
        budget.loaded(f.name, "extends/expand/aspects")
        return f

    return load


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


def _merge_extends(f: Formula, loader: Loader, chain: list[str], memo: dict[str, Formula],
                   budget: Budget) -> Formula:
    """``f`` with its parents folded in (depth first, in ``extends`` order).

    ``memo`` keeps each merged parent, so a diamond (two parents sharing a
    grandparent, repeated level after level) is merged once per formula, not
    once per path.
    """
    if f.name in chain:
        raise FormulaError(f"{f.path}: extends cycle: {' -> '.join([*chain, f.name])}")
    if not f.extends:
        return f
    if f.name in memo:
        return memo[f.name]
    if len(chain) > MAX_EXTENDS_DEPTH:
        raise FormulaError(f"{f.path}: key 'extends' is nested more than {MAX_EXTENDS_DEPTH} "
                           "deep")
    base = Formula(name=f.name, path=f.path)
    for parent_name in dict.fromkeys(f.extends):
        parent = _merge_extends(_load(loader, parent_name, f.path, "extends"), loader,
                                [*chain, f.name], memo, budget)
        if parent.type not in ("workflow", "convoy"):
            raise FormulaError(f"{f.path}: extends: {parent_name!r} is a {parent.type} "
                               "formula; only workflows can be extended")
        _fold(base, parent, budget)
    _fold(base, f, budget)
    base.type = f.type
    base.extends = []
    memo[f.name] = base
    return base


def _fold(into: Formula, layer: Formula, budget: Budget) -> None:
    if len(_all(into.steps)) + len(_all(layer.steps)) > MAX_STEPS:
        raise FormulaError(f"{budget.where}: key 'extends': the formula would compile to more "
                           f"than {MAX_STEPS} steps")
    into.description = layer.description or into.description
    into.phase = layer.phase or into.phase
    into.pour = layer.pour if layer.pour is not None else into.pour
    into.squash = layer.squash if layer.squash is not None else into.squash
    into.review_only = layer.review_only if layer.review_only is not None else into.review_only
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


def _replace_bounded(text: str, values: Mapping[str, str], where: str) -> str:
    """``text`` with each placeholder in ``values`` replaced in one pass (a value that
    holds a placeholder is not filled in again), refused when the result would pass
    :data:`~.limits.MAX_TEXT_CHARS` (checked before it is built)."""
    rx = re.compile("|".join(map(re.escape, values)))
    size = len(text) + sum(len(values[k]) - len(k) for k in rx.findall(text))
    if size > MAX_TEXT_CHARS:
        raise FormulaError(f"{where}: the text would be longer than {MAX_TEXT_CHARS} "
                           "characters once {target…}/{step…}/{var} placeholders are filled in")
    return rx.sub(lambda m: values[m.group(0)], text)


def _target_subst(text: str, target: Step, where: str = "") -> str:
    if not text or "{target" not in text:
        return text
    return _replace_bounded(text, {"{target}": target.id, "{target.id}": target.id,
                                   "{target.title}": target.title,
                                   "{target.description}": target.description},
                            f"{where}: step '{target.id}'")


def _expand_target(target: Step, exp: Formula, rule_vars: Mapping[str, str], where: str,
                   budget: Budget) -> list[Step]:
    """The expansion's template steps instantiated for ``target``, wired into its place."""
    if target.children:
        raise FormulaError(f"{where}: step '{target.id}': a step with children cannot be "
                           "expanded")
    out: list[Step] = []
    template = exp.template or exp.steps
    budget.charge(len(_all(template)) - 1, f"step '{target.id}': expand with {exp.name!r}")

    def inst(t: Step) -> Step:
        s = t.clone()
        s.id = _target_subst(t.id, target)
        for key in ("title", "description", "acceptance", "notes"):
            text = getattr(t, key)
            setattr(s, key, budget.built(
                substitute(_target_subst(text, target, where), rule_vars,
                           f"{where}: step '{target.id}'"), text, f"step '{target.id}'"))
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
    return _replace_many(steps, {target_id: new})


def _replace_many(steps: list[Step], replacements: Mapping[str, list[Step]]) -> list[Step]:
    """:func:`_replace` for many targets in one walk (linear, whatever their number)."""
    if not replacements:
        return steps
    exits = {tid: entries_and_exits(new)[1] for tid, new in replacements.items()}
    own: dict[str, str] = {}
    for tid, new in replacements.items():
        for s in _all(new):
            own[s.id] = tid

    def swap(level: list[Step]) -> list[Step]:
        out: list[Step] = []
        for s in level:
            if s.id in replacements:
                out += replacements[s.id]
                continue
            s.children = swap(s.children)
            out.append(s)
        return out

    result = swap(steps)
    for s in _all(result):
        mine = own.get(s.id)
        for attr in ("needs", "conditional"):
            deps: list[str] = getattr(s, attr)
            if any(d in replacements and d != mine for d in deps):
                fresh: list[str] = []
                for d in deps:
                    for x in (exits[d] if d in replacements and d != mine else [d]):
                        if x not in fresh:
                            fresh.append(x)
                setattr(s, attr, fresh)
        spec = s.waits_for or ""
        if spec.startswith("children-of(") and spec.endswith(")"):
            tid = spec[len("children-of("):-1].strip()
            if tid in replacements and tid != mine:
                s.waits_for = f"children-of({exits[tid][-1]})" if exits[tid] else None
    return result


def _inline_expansions(steps: list[Step], loader: Loader, bp: Blueprint, where: str,
                       depth: int, budget: Budget) -> list[Step]:
    targets = [s for s in _all(steps) if s.expand]
    if not targets:
        return steps
    if depth >= MAX_EXPAND_DEPTH:
        raise FormulaError(f"{where}: step '{targets[0].id}': key 'expand': expansions nest "
                           f"more than {MAX_EXPAND_DEPTH} deep")
    replacements: dict[str, list[Step]] = {}
    for target in targets:
        exp = _load_expansion(loader, target.expand or "", where, f"step '{target.id}': expand")
        _merge_vars(bp, exp)
        new = _expand_target(target, exp, target.expand_vars, where, budget)
        replacements[target.id] = _inline_expansions(new, loader, bp, where, depth + 1, budget)
    return _replace_many(steps, replacements)


def _apply_loops(steps: list[Step], values: Mapping[str, str], where: str, budget: Budget
                 ) -> list[Step]:
    return _replace_many(steps, {s.id: _expand_loop(s, values, where, budget)
                                 for s in _all(steps) if s.loop})


def _expand_loop(step: Step, values: Mapping[str, str], where: str, budget: Budget
                 ) -> list[Step]:
    loop = step.loop
    assert loop is not None
    sw = f"{where}: step '{step.id}': loop"
    if step.children:
        raise FormulaError(f"{sw}: a loop step cannot also have children")
    key = "count"
    if loop.count is not None:
        start, end = 1, loop.count
    else:
        key = "range"
        start, end = eval_range(loop.range or "", values, sw)
    body_size = len(_all(loop.body))
    n_iter = end - start + 1
    if n_iter * body_size > MAX_STEPS:
        raise FormulaError(f"{sw}: key '{key}': {n_iter} iterations of {body_size} steps would "
                           f"make more than {MAX_STEPS} steps")
    budget.charge(n_iter * body_size - 1, f"step '{step.id}': loop")
    iterations = range(start, end + 1)
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
                text = substitute(getattr(b, key), local, f"{where}: step '{step.id}'")
                if local and "{" in text:
                    text = _replace_bounded(text, {"{" + k + "}": v for k, v in local.items()},
                                            f"{where}: step '{step.id}'")
                setattr(s, key, budget.built(text, getattr(b, key), f"step '{step.id}': loop"))
            s.needs = [f"{prefix}.{x}" if x in body_ids else x for x in b.needs]
            s.children = [inst(c) for c in b.children]
            return s

        it = [inst(b) for b in loop.body]
        it = _apply_loops(it, {**values, **local}, where, budget)
        entries, exits = entries_and_exits(it)
        for s in it:
            if s.id in entries:
                extra = prev_exits if prev_exits else step.needs
                s.needs = [*extra, *[x for x in s.needs if x not in extra]]
        prev_exits = exits
        out += it
    return out


def _aspect_placeholders(aspect: Formula) -> list[Step]:
    """Steps named after the literal ids an aspect's advice targets, in a chain."""
    names: dict[str, None] = {}
    for rule in aspect.advice:
        names[str(rule.get("target") or "")] = None
    for pc in aspect.pointcuts:
        names[pc.get("glob") or ""] = None
    ids = [n for n in names if n and not any(c in n for c in "*?[]")] or ["target"]
    return [Step(id=sid, title=sid, needs=[ids[i - 1]] if i else [], source=aspect.name)
            for i, sid in enumerate(ids)]


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


def _advice_step(spec: dict[str, object], target: Step, source: str, where: str,
                 budget: Budget) -> Step:
    def sub(text: object) -> str:
        original = str(text or "")
        return budget.built(_replace_bounded(
            original, {"{step.id}": target.id, "{step.title}": target.title},
            f"{where}: advice from {source!r} on step '{target.id}'"), original,
            f"advice from {source!r}")

    prio = spec.get("priority")
    labels = spec.get("labels")
    return Step(id=sub(spec.get("id")), title=sub(spec.get("title")) or sub(spec.get("id")),
                description=sub(spec.get("description")), acceptance=sub(spec.get("acceptance")),
                type=str(spec.get("type") or "task"),
                priority=prio if isinstance(prio, int) else None,
                labels=[str(x) for x in labels] if isinstance(labels, list) else [],
                source=source)


def _apply_advice(bp: Blueprint, rule: dict[str, object], pointcuts: list[dict[str, str]],
                  source: str, where: str, budget: Budget) -> None:
    target_glob = str(rule.get("target") or "")
    if not target_glob and not pointcuts:
        raise FormulaError(f"{where}: advice from {source!r} has no target and no pointcuts")
    around = rule.get("around") if isinstance(rule.get("around"), dict) else {}
    assert isinstance(around, dict)
    before = list(rule.get("before") or []) + list(around.get("before") or [])  # type: ignore[call-overload]
    after = list(around.get("after") or []) + list(rule.get("after") or [])  # type: ignore[call-overload]
    targets = [s for s in _all(bp.steps) if _matches(s, target_glob, pointcuts)]
    budget.charge(len(targets) * (len(before) + len(after)), f"advice from {source!r}")
    around_of: dict[str, tuple[list[Step], list[Step]]] = {}
    #: whoever needed a target with "after" advice now needs the last advice step
    renamed: dict[str, str] = {}
    keep: set[int] = set()  # the first "after" step of each target keeps needing it
    for target in targets:
        pre = [_advice_step(spec, target, source, where, budget) for spec in before]
        post = [_advice_step(spec, target, source, where, budget) for spec in after]
        for i, s in enumerate(pre):
            s.needs = list(target.needs) if i == 0 else [pre[i - 1].id]
        if pre:
            target.needs = [pre[-1].id]
        for i, s in enumerate(post):
            s.needs = [target.id] if i == 0 else [post[i - 1].id]
        if post:
            renamed[target.id] = post[-1].id
            keep.add(id(post[0]))
        around_of[target.id] = (pre, post)
    bp.steps = _insert_around(bp.steps, around_of)
    if renamed:
        for s in _all(bp.steps):
            if id(s) not in keep and any(n in renamed for n in s.needs):
                s.needs = [renamed.get(n, n) for n in s.needs]


def _insert_around(steps: list[Step], around_of: Mapping[str, tuple[list[Step], list[Step]]]
                   ) -> list[Step]:
    out: list[Step] = []
    for s in steps:
        if s.id in around_of:
            pre, post = around_of[s.id]
            out += [*pre, s, *post]
        else:
            s.children = _insert_around(s.children, around_of)
            out.append(s)
    return out


def _apply_branch(bp: Blueprint, branch: dict[str, object], where: str) -> None:
    src = str(branch["from"])
    join = str(branch["join"])
    index = {s.id: s for s in _all(bp.steps)}
    for sid in [src, join, *branch["steps"]]:  # type: ignore[misc]
        if str(sid) not in index:
            raise FormulaError(f"{where}: compose.branch: step {sid!r} not found")
    join_step = index[join]
    for sid in branch["steps"]:  # type: ignore[attr-defined]
        s = index[str(sid)]
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
