"""Reading formula files: TOML (``*.formula.toml``, ``formulas/*.toml``) or JSON.

Every key is checked.  A key we do not support, a value of the wrong shape, a
missing id — each is a :class:`~gastown.errors.FormulaError` whose one line names
the file, the place (``step 'implement'``, ``vars.feature``) and the key.  Nothing
here touches the ledger or a shell: formula text is data.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from typing import Any

from ..errors import FormulaError
from ..ledger.model import ISSUE_TYPES
from . import limits
from .model import FORMULA_TYPES, Check, Formula, Gate, Loop, Step, VarDef
from .patterns import check_pattern

__all__ = ["load_file", "parse_formula", "NAME_RE", "STEP_ID_RE", "STEP_TYPE_ALIASES"]

#: formula names become proto bead ids, so they are id-safe and have no dots
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
#: step ids: dots separate the segments that expansions and loops add
STEP_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9][A-Za-z0-9_-]*)*$")

#: step types that are not bead types: (issue type, extra label)
STEP_TYPE_ALIASES = {"human": ("task", "human"), "parallel": ("epic", "parallel")}

_TOP_KEYS = {
    "formula", "description", "version", "type", "extends", "vars", "inputs", "steps",
    "template", "compose", "advice", "pointcuts", "phase", "pour", "legs", "synthesis",
    "prompts", "output", "presets", "squash", "review_only",
}
_STEP_KEYS = {
    "id", "title", "description", "acceptance", "notes", "needs", "depends_on", "type",
    "priority", "labels", "tags", "metadata", "assignee", "condition", "children", "gate",
    "loop", "waits_for", "expand", "expand_vars", "ralph", "retry",
}
_LEG_KEYS = _STEP_KEYS | {"focus"}
_VAR_KEYS = {"description", "default", "required", "enum", "pattern", "type", "required_unless"}
_VAR_TYPES = {"string", "str", "int", "integer", "number", "float", "bool", "boolean"}
_GATE_KEYS = {"type", "id", "timeout", "description", "condition"}
_LOOP_KEYS = {"count", "range", "var", "body"}
_COMPOSE_KEYS = {"expand", "map", "branch", "aspects"}
_ADVICE_KEYS = {"target", "before", "after", "around"}
_ADVICE_STEP_KEYS = {"id", "title", "description", "acceptance", "type", "priority", "labels"}
_POINTCUT_KEYS = {"glob", "type", "label"}
_SQUASH_KEYS = {"trigger", "template_type", "include_metrics"}
_SQUASH_TRIGGERS = ("on_complete", "manual")
_RALPH_KEYS = {"max_attempts", "check", "comment"}
_CHECK_KEYS = {"mode", "path", "timeout"}
_RETRY_KEYS = {"max_attempts", "on_exhausted"}
_ON_EXHAUSTED = ("hard_fail", "soft_fail")
#: a check or retry may ask for at most this many attempts, each at most this long
MAX_ATTEMPTS = 100
MAX_CHECK_TIMEOUT_S = 3600.0
#: keys other tools define that we recognise but deliberately do not implement
_NOT_SUPPORTED = {
    "on_complete": "runtime for-each expansion",
    "until": "conditional loops",
    "max": "conditional loops",
    "bond_points": "named bond points",
    "hooks": "label-triggered attachments",
    "gate": "runtime gate conditions",
    "check": "a step-level check (put it under [steps.ralph])",
    "drain": "convoy drains",
    "timeout": "step timeouts",
    "description_file": "descriptions read from files",
}


def load_file(path: str) -> Formula:
    """Read and check one formula file."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(limits.MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise FormulaError(f"{path}: cannot read formula: {exc.strerror}") from None
    if len(raw) > limits.MAX_FILE_BYTES:
        raise FormulaError(f"{path}: formula file is larger than "
                           f"{limits.MAX_FILE_BYTES >> 20} MiB")
    try:
        if path.endswith(".json"):
            data = json.loads(raw.decode("utf-8"))
        else:
            data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise FormulaError(f"{path}: formula is not UTF-8 text") from None
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        kind = "JSON" if path.endswith(".json") else "TOML"
        raise FormulaError(f"{path}: invalid {kind}: {exc}") from None
    except (RecursionError, MemoryError):
        raise FormulaError(f"{path}: values are nested too deeply") from None
    if not isinstance(data, dict):
        raise FormulaError(f"{path}: a formula must be a table of keys")
    if _depth(data) > limits.MAX_DATA_DEPTH:
        raise FormulaError(f"{path}: values are nested more than {limits.MAX_DATA_DEPTH} deep")
    return parse_formula(data, path)


def _depth(data: Any) -> int:
    """How deeply tables and arrays nest in ``data`` (no recursion: it may be deep)."""
    deepest = 0
    stack = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > limits.MAX_DATA_DEPTH:
            break
        if isinstance(value, dict):
            stack += [(v, depth + 1) for v in value.values() if isinstance(v, (dict, list))]
        elif isinstance(value, list):
            stack += [(v, depth + 1) for v in value if isinstance(v, (dict, list))]
    return deepest


def default_name(path: str) -> str:
    """The formula name a file implies: its name without ``.formula.toml`` etc."""
    base = os.path.basename(path)
    for suffix in (".formula.toml", ".formula.json", ".toml", ".json"):
        if base.endswith(suffix):
            return base[: -len(suffix)]
    return base


class _Reader:
    """Key and type checks that know where they are, for one-line errors."""

    def __init__(self, path: str) -> None:
        self.path = path
        #: steps read so far (children, loop bodies and templates included)
        self.steps = 0

    def fail(self, where: str, msg: str) -> FormulaError:
        prefix = f"{self.path}: {where}: " if where else f"{self.path}: "
        return FormulaError(prefix + msg)

    def keys(self, data: dict[str, Any], allowed: set[str], where: str) -> None:
        for key in data:
            if key in allowed:
                continue
            if key in _NOT_SUPPORTED:
                raise self.fail(where, f"key '{key}' ({_NOT_SUPPORTED[key]}) is not supported")
            raise self.fail(where, f"unknown key '{key}'")

    def string(self, data: dict[str, Any], key: str, where: str, default: str = "") -> str:
        value = data.get(key, default)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.fail(where, f"key '{key}' must be a string")
        return str(value)

    def str_list(self, data: dict[str, Any], key: str, where: str) -> list[str]:
        value = data.get(key)
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(where, f"key '{key}' must be a list of strings")
        return list(value)

    def table(self, data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
        value = data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(where, f"key '{key}' must be a table")
        return value

    def tables(self, data: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
        value = data.get(key)
        if value is None:
            return []
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.fail(where, f"key '{key}' must be an array of tables")
        return list(value)


def parse_formula(data: dict[str, Any], path: str) -> Formula:
    """A :class:`Formula` from already-decoded TOML/JSON data (``path`` names it in errors)."""
    r = _Reader(path)
    r.keys(data, _TOP_KEYS, "")
    name = r.string(data, "formula", "", default_name(path))
    if not NAME_RE.fullmatch(name):
        raise r.fail("", f"key 'formula': invalid name {name!r} "
                         "(letters, digits, '-' and '_'; no dots or spaces)")
    ftype = r.string(data, "type", "", "workflow")
    if ftype not in FORMULA_TYPES:
        raise r.fail("", f"key 'type': unknown formula type {ftype!r} "
                         f"(use one of {', '.join(FORMULA_TYPES)})")
    version = data.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise r.fail("", "key 'version' must be an integer")
    phase = data.get("phase")
    if phase is not None and phase not in ("liquid", "vapor"):
        raise r.fail("", f"key 'phase': {phase!r} is not 'liquid' or 'vapor'")
    pour = data.get("pour")
    if pour is not None and not isinstance(pour, bool):
        raise r.fail("", "key 'pour' must be true or false")
    review_only = data.get("review_only")
    if review_only is not None and not isinstance(review_only, bool):
        raise r.fail("", "key 'review_only' must be true or false")
    extends = list(dict.fromkeys(r.str_list(data, "extends", "")))  # a parent folds in once
    f = Formula(name=name, path=path, description=r.string(data, "description", ""),
                version=version, type=ftype, extends=extends,
                phase=phase, pour=pour, review_only=review_only,
                squash=_parse_squash(r, data))
    for vname, vdata in r.table(data, "vars", "").items():
        f.vars[vname] = _parse_var(r, vname, vdata, "vars")
    for vname, vdata in r.table(data, "inputs", "").items():
        f.vars[vname] = _parse_var(r, vname, vdata, "inputs")
    f.steps = [_parse_step(r, s, f"steps[{i}]", name) for i, s in
               enumerate(r.tables(data, "steps", ""))]
    f.template = [_parse_step(r, s, f"template[{i}]", name, template=True) for i, s in
                  enumerate(r.tables(data, "template", ""))]
    _parse_convoy(r, data, f)
    f.compose = _parse_compose(r, r.table(data, "compose", ""))
    f.advice = [_parse_advice(r, a, f"advice[{i}]") for i, a in
                enumerate(r.tables(data, "advice", ""))]
    for i, pc in enumerate(r.tables(data, "pointcuts", "")):
        r.keys(pc, _POINTCUT_KEYS, f"pointcuts[{i}]")
        f.pointcuts.append({k: r.string(pc, k, f"pointcuts[{i}]") for k in pc})
    for key in ("prompts", "output", "presets"):
        if key in data:
            f.extra[key] = r.table(data, key, "")
    _check_shape(r, f)
    return f


def _parse_var(r: _Reader, name: str, data: Any, section: str) -> VarDef:
    where = f"{section}.{name}"
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name):
        raise r.fail(where, "invalid variable name (letters, digits, '_' and '-')")
    if isinstance(data, (str, int, float)) and not isinstance(data, bool):
        if len(str(data)) > limits.MAX_VALUE_CHARS:
            raise r.fail(where, f"default is longer than {limits.MAX_VALUE_CHARS} characters")
        return VarDef(name=name, default=str(data))
    if not isinstance(data, dict):
        raise r.fail(where, "a variable is a string default or a table")
    r.keys(data, _VAR_KEYS, where)
    v = VarDef(name=name, description=r.string(data, "description", where))
    if "default" in data:
        default = data["default"]
        if isinstance(default, bool):
            default = "true" if default else "false"
        if not isinstance(default, (str, int, float)):
            raise r.fail(where, "key 'default' must be a string")
        v.default = str(default)
        if len(v.default) > limits.MAX_VALUE_CHARS:
            raise r.fail(where, f"key 'default' is longer than {limits.MAX_VALUE_CHARS} "
                                "characters")
    required = data.get("required", False)
    if not isinstance(required, bool):
        raise r.fail(where, "key 'required' must be true or false")
    v.required = required  # (with a default as well, the default satisfies it)
    v.enum = [str(x) for x in r.str_list(data, "enum", where)]
    v.pattern = r.string(data, "pattern", where) or None
    if v.pattern:
        problem = check_pattern(v.pattern)
        if problem:
            raise r.fail(where, f"key 'pattern': {problem}")
    v.type = r.string(data, "type", where, "string") or "string"
    if v.type not in _VAR_TYPES:
        raise r.fail(where, f"key 'type': unknown type {v.type!r} (string, int, number, bool)")
    v.required_unless = r.str_list(data, "required_unless", where)
    if v.default is not None:
        if v.enum and v.default not in v.enum:
            raise r.fail(where, f"default {v.default!r} is not one of {v.enum}")
    return v


def _step_where(data: dict[str, Any], where: str) -> str:
    sid = data.get("id")
    return f"step {sid!r}" if isinstance(sid, str) and sid else where


def _parse_step(r: _Reader, data: dict[str, Any], where: str, source: str,
                allowed: set[str] = _STEP_KEYS, template: bool = False, depth: int = 0
                ) -> Step:
    where = _step_where(data, where)
    r.steps += 1
    if r.steps > limits.MAX_STEPS:
        raise r.fail(where, f"the file has more than {limits.MAX_STEPS} steps")
    r.keys(data, allowed, where)
    sid = r.string(data, "id", where)
    if not sid:
        raise r.fail(where, "key 'id' is required")
    # expansion templates carry {target} placeholders in their ids until applied
    if not template and not STEP_ID_RE.fullmatch(sid):
        raise r.fail(where, f"key 'id': invalid step id {sid!r} "
                            "(letters, digits, '-', '_', segments joined by '.')")
    step = Step(id=sid, title=r.string(data, "title", where),
                description=r.string(data, "description", where),
                acceptance=r.string(data, "acceptance", where),
                notes=r.string(data, "notes", where), assignee=r.string(data, "assignee", where),
                source=source)
    step.needs = r.str_list(data, "needs", where) + [
        d for d in r.str_list(data, "depends_on", where)
        if d not in r.str_list(data, "needs", where)]
    step.labels = r.str_list(data, "labels", where) + r.str_list(data, "tags", where)
    step.metadata = r.table(data, "metadata", where)
    stype = r.string(data, "type", where, "task") or "task"
    if stype in STEP_TYPE_ALIASES:
        stype, label = STEP_TYPE_ALIASES[stype]
        if label not in step.labels:
            step.labels.append(label)
    if stype not in ISSUE_TYPES:
        raise r.fail(where, f"key 'type': unknown step type {stype!r} "
                            "(task, bug, feature, epic, chore, human, …)")
    step.type = stype
    if "priority" in data:
        prio = data["priority"]
        if isinstance(prio, bool) or not isinstance(prio, int) or not 0 <= prio <= 4:
            raise r.fail(where, "key 'priority' must be an integer 0-4")
        step.priority = prio
    step.condition = r.string(data, "condition", where) or None
    step.waits_for = r.string(data, "waits_for", where) or None
    step.expand = r.string(data, "expand", where) or None
    expand_vars = r.table(data, "expand_vars", where)
    step.expand_vars = {str(k): str(v) for k, v in expand_vars.items()}
    if "gate" in data:
        gate = data["gate"]
        if isinstance(gate, str):
            gate = {"type": gate}
        if not isinstance(gate, dict):
            raise r.fail(where, "key 'gate' must be a table (type, id, timeout)")
        r.keys(gate, _GATE_KEYS, f"{where}: gate")
        gtype = r.string(gate, "type", f"{where}: gate")
        if not gtype:
            raise r.fail(f"{where}: gate", "key 'type' is required (human, timer, gh:run, …)")
        step.gate = Gate(type=gtype, id=r.string(gate, "id", where),
                         timeout=r.string(gate, "timeout", where),
                         description=r.string(gate, "description", where),
                         condition=r.string(gate, "condition", where))
    children = r.tables(data, "children", where)
    for key in ("children", "loop"):
        if data.get(key) and depth + 1 >= limits.MAX_NESTING:
            raise r.fail(where, f"key '{key}': steps nest more than {limits.MAX_NESTING} "
                                "deep")
    if "loop" in data:
        step.loop = _parse_loop(r, data["loop"], where, source, depth + 1)
    if "ralph" in data:
        step.check = _parse_ralph(r, data["ralph"], where)
    if "retry" in data:
        step.retry = _parse_retry(r, data["retry"], where)
    step.children = [_parse_step(r, c, f"{where}: children[{i}]", source, allowed, template,
                                 depth + 1)
                     for i, c in enumerate(children)]
    if not step.title and not step.expand and not step.loop:
        raise r.fail(where, "key 'title' is required")
    if "parallel" in step.labels and data.get("type") == "parallel" and not step.children:
        raise r.fail(where, "key 'type': a \"parallel\" step is a container and needs "
                            "[[children]] to run side by side")
    if step.loop and (step.check or step.retry):
        raise r.fail(where, "a loop step cannot have 'ralph' or 'retry' (put them on the "
                            "loop's body steps)")
    return step


def _parse_squash(r: _Reader, data: dict[str, Any]) -> dict[str, Any] | None:
    """``[squash]``: when and how a finished molecule is condensed into its digest."""
    if "squash" not in data:
        return None
    sq = r.table(data, "squash", "")
    r.keys(sq, _SQUASH_KEYS, "squash")
    trigger = r.string(sq, "trigger", "squash", "manual")
    if trigger not in _SQUASH_TRIGGERS:
        raise r.fail("squash", f"key 'trigger': {trigger!r} is not supported (use "
                               "\"on_complete\" or \"manual\")")
    metrics = sq.get("include_metrics", False)
    if not isinstance(metrics, bool):
        raise r.fail("squash", "key 'include_metrics' must be true or false")
    out: dict[str, Any] = {"trigger": trigger, "include_metrics": metrics}
    template_type = r.string(sq, "template_type", "squash")
    if template_type:
        out["template_type"] = template_type
    return out


def _attempts(r: _Reader, data: dict[str, Any], where: str, default: int) -> int:
    value = data.get("max_attempts", default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_ATTEMPTS:
        raise r.fail(where, f"key 'max_attempts' must be an integer 1-{MAX_ATTEMPTS}")
    return value


def parse_duration(value: Any) -> float | None:
    """``"30s"``, ``"2m"``, ``"1h"``, ``"1m30s"`` or a number of seconds; None if malformed."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if not isinstance(value, str) or len(value) > 32:
        return None
    if value.strip().isascii() and value.strip().isdigit():
        return float(value.strip())
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value.strip())
    if not parts or "".join(n + u for n, u in parts) != value.strip():
        return None
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * scale[u] for n, u in parts)


def _parse_ralph(r: _Reader, data: Any, where: str) -> Check:
    """``[steps.ralph]``: ``max_attempts`` and ``[steps.ralph.check]`` (mode, path, timeout)."""
    rw = f"{where}: ralph"
    if not isinstance(data, dict):
        raise r.fail(where, "key 'ralph' must be a table (max_attempts, check)")
    r.keys(data, _RALPH_KEYS, rw)
    check = data.get("check")
    if not isinstance(check, dict):
        raise r.fail(rw, "key 'check' is required: a table with mode = \"exec\", path, timeout")
    cw = f"{rw}.check"
    r.keys(check, _CHECK_KEYS, cw)
    mode = r.string(check, "mode", cw, "exec")
    if mode != "exec":
        raise r.fail(cw, f"key 'mode': {mode!r} is not supported (only \"exec\")")
    path = r.string(check, "path", cw)
    if not path:
        raise r.fail(cw, "key 'path' is required (a program inside the worktree)")
    parts = path.replace("\\", "/").split("/")
    if path.startswith(("/", "~")) or ".." in parts or "\0" in path or len(path) > 1024:
        raise r.fail(cw, f"key 'path': {path!r} must be a relative path inside the worktree "
                         "(no '..')")
    timeout = parse_duration(check.get("timeout", "5m"))
    if timeout is None or not 0 < timeout <= MAX_CHECK_TIMEOUT_S:
        raise r.fail(cw, "key 'timeout' must be a duration like \"30s\" or \"2m\" "
                         f"(at most {int(MAX_CHECK_TIMEOUT_S)}s)")
    return Check(path=path, mode=mode, timeout=timeout,
                 max_attempts=_attempts(r, data, rw, 3))


def _parse_retry(r: _Reader, data: Any, where: str) -> dict[str, Any]:
    """``[steps.retry]``: kept as data (max_attempts, on_exhausted)."""
    rw = f"{where}: retry"
    if not isinstance(data, dict):
        raise r.fail(where, "key 'retry' must be a table (max_attempts, on_exhausted)")
    r.keys(data, _RETRY_KEYS, rw)
    on_exhausted = r.string(data, "on_exhausted", rw, "hard_fail")
    if on_exhausted not in _ON_EXHAUSTED:
        raise r.fail(rw, f"key 'on_exhausted': {on_exhausted!r} is not one of "
                         f"{', '.join(_ON_EXHAUSTED)}")
    return {"max_attempts": _attempts(r, data, rw, 3), "on_exhausted": on_exhausted}


def _parse_loop(r: _Reader, data: Any, where: str, source: str, depth: int) -> Loop:
    lw = f"{where}: loop"
    if not isinstance(data, dict):
        raise r.fail(where, "key 'loop' must be a table (count or range, body)")
    r.keys(data, _LOOP_KEYS, lw)
    count = data.get("count")
    rng = data.get("range")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
        raise r.fail(lw, "key 'count' must be an integer (use range = \"1..{{n}}\" for a variable)")
    if count is not None and count < 1:
        raise r.fail(lw, "key 'count' must be at least 1")
    if count is not None and count > limits.MAX_STEPS:
        raise r.fail(lw, f"key 'count': {count} iterations would make more than "
                         f"{limits.MAX_STEPS} steps")
    if isinstance(rng, str) and len(rng) > limits.MAX_RANGE_CHARS:
        raise r.fail(lw, f"key 'range' is longer than {limits.MAX_RANGE_CHARS} characters")
    if rng is not None and not isinstance(rng, str):
        raise r.fail(lw, "key 'range' must be a string like \"1..5\"")
    if (count is None) == (rng is None):
        raise r.fail(lw, "exactly one of 'count' or 'range' is required")
    body = [_parse_step(r, s, f"{lw}: body[{i}]", source, depth=depth) for i, s in
            enumerate(r.tables(data, "body", lw))]
    if not body:
        raise r.fail(lw, "key 'body' needs at least one step")
    var = r.string(data, "var", lw) or None
    return Loop(body=body, count=count, range=rng, var=var)


def _parse_compose(r: _Reader, data: dict[str, Any]) -> dict[str, Any]:
    if not data:
        return {}
    r.keys(data, _COMPOSE_KEYS, "compose")
    out: dict[str, Any] = {}
    for key, target_key in (("expand", "target"), ("map", "select")):
        rules = []
        for i, rule in enumerate(r.tables(data, key, "compose")):
            where = f"compose.{key}[{i}]"
            r.keys(rule, {target_key, "with", "vars"}, where)
            for needed in (target_key, "with"):
                if not r.string(rule, needed, where):
                    raise r.fail(where, f"key '{needed}' is required")
            rule_vars = r.table(rule, "vars", where)
            rules.append({target_key: r.string(rule, target_key, where),
                          "with": r.string(rule, "with", where),
                          "vars": {str(k): str(v) for k, v in rule_vars.items()}})
        if rules:
            out[key] = rules
    branches = []
    for i, rule in enumerate(r.tables(data, "branch", "compose")):
        where = f"compose.branch[{i}]"
        r.keys(rule, {"from", "steps", "join"}, where)
        branch = {"from": r.string(rule, "from", where), "steps": r.str_list(rule, "steps", where),
                  "join": r.string(rule, "join", where)}
        if not branch["from"] or not branch["steps"] or not branch["join"]:
            raise r.fail(where, "keys 'from', 'steps' and 'join' are all required")
        branches.append(branch)
    if branches:
        out["branch"] = branches
    aspects = r.str_list(data, "aspects", "compose")
    if aspects:
        out["aspects"] = aspects
    return out


def _parse_advice(r: _Reader, data: dict[str, Any], where: str) -> dict[str, Any]:
    r.keys(data, _ADVICE_KEYS, where)
    out: dict[str, Any] = {"target": r.string(data, "target", where)}

    def advice_steps(value: Any, w: str) -> list[dict[str, Any]]:
        items = value if isinstance(value, list) else [value]
        steps = []
        for j, item in enumerate(items):
            if not isinstance(item, dict):
                raise r.fail(w, "advice steps must be tables")
            iw = f"{w}[{j}]"
            r.keys(item, _ADVICE_STEP_KEYS, iw)
            if not r.string(item, "id", iw):
                raise r.fail(iw, "key 'id' is required")
            steps.append(item)
        return steps

    for key in ("before", "after"):
        if key in data:
            out[key] = advice_steps(data[key], f"{where}.{key}")
    if "around" in data:
        around = data["around"]
        if not isinstance(around, dict):
            raise r.fail(where, "key 'around' must be a table with before/after")
        r.keys(around, {"before", "after"}, f"{where}.around")
        out["around"] = {k: advice_steps(around[k], f"{where}.around.{k}")
                         for k in ("before", "after") if k in around}
    if not any(k in out for k in ("before", "after", "around")):
        raise r.fail(where, "advice needs 'before', 'after' or 'around'")
    return out


def _parse_convoy(r: _Reader, data: dict[str, Any], f: Formula) -> None:
    """A convoy's parallel ``legs`` and its ``synthesis`` become ordinary steps."""
    legs = r.tables(data, "legs", "")
    for i, leg in enumerate(legs):
        where = _step_where(leg, f"legs[{i}]")
        step = _parse_step(r, {k: v for k, v in leg.items() if k != "focus"}, where, f.name,
                           _STEP_KEYS)
        r.keys(leg, _LEG_KEYS, where)
        focus = r.string(leg, "focus", where)
        if focus:
            step.metadata = {**step.metadata, "focus": focus}
        step.labels = [*step.labels, "leg"]
        f.steps.append(step)
    if "synthesis" in data:
        syn = dict(r.table(data, "synthesis", ""))
        syn.setdefault("id", "synthesis")
        f.steps.append(_parse_step(r, syn, "synthesis", f.name))
    if legs:
        f.extra["legs"] = [s.id for s in f.steps if "leg" in s.labels]


def _check_shape(r: _Reader, f: Formula) -> None:
    """Per-type shape rules that need the whole file."""
    rules = sum(len(v) for v in f.compose.values()) + len(f.advice) + len(f.pointcuts)
    if rules > limits.MAX_RULES:
        raise r.fail("", f"keys 'compose'/'advice'/'pointcuts': more than {limits.MAX_RULES} "
                         "rules")
    if f.type == "expansion" and not f.template and not f.steps:
        raise r.fail("", "an expansion formula needs [[template]] steps")
    if f.type != "expansion" and f.template:
        raise r.fail("", f"key 'template' is only for type = \"expansion\" (this is {f.type})")
    if f.type == "aspect" and not f.advice:
        raise r.fail("", "an aspect formula needs [[advice]] rules")
    if f.type in ("workflow", "convoy") and not f.steps and not f.extends:
        raise r.fail("", "a workflow needs [[steps]] (or 'extends')")
