"""Variables: ``{{name}}`` substitution, value checks, step conditions, loop ranges.

Substitution is plain text replacement — values are data and are never
evaluated, formatted or handed to a shell.  Only ``{{identifier}}`` is a
placeholder, so Go-template text such as ``{{.leg.id}}`` or ``{{if …}}`` in a
formula's prose is left alone.
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Iterable, Mapping

from ..errors import FormulaError
from . import limits
from .model import Blueprint, Step, VarDef
from .patterns import PatternTimeout, pattern_matches

__all__ = ["PLACEHOLDER", "substitute", "Substituter", "referenced_vars", "resolve_vars",
           "check_condition", "eval_condition", "eval_range", "parse_var_args"]

#: ``{{name}}``; Go-template words that stand alone (``{{else}}``, ``{{end}}``) are not names
PLACEHOLDER = re.compile(
    r"\{\{\s*(?!(?:else|end|break|continue|nil)\s*\}\})([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}")
_FALSY = {"", "0", "false", "no", "off", "none", "null"}
_COND = re.compile(
    r"^\s*(!)?\s*\{\{\s*([A-Za-z_][A-Za-z0-9_-]*)\s*\}\}\s*(?:(==|!=)\s*(.*?))?\s*$")


def substitute(text: str, values: Mapping[str, str], where: str = "") -> str:
    """Replace ``{{name}}`` for every name in ``values``; other placeholders stay.

    A result longer than :data:`~.limits.MAX_TEXT_CHARS` is refused before it is
    built (``where`` prefixes the error: ``"FILE: step 'x'"``).
    """
    if not text or "{{" not in text:
        return text
    size = len(text)

    def repl(m: re.Match[str]) -> str:
        nonlocal size
        name = m.group(1)
        if name not in values:
            return m.group(0)
        size += len(values[name]) - len(m.group(0))
        if size > limits.MAX_TEXT_CHARS:
            prefix = f"{where}: " if where else ""
            raise FormulaError(f"{prefix}{{{{{name}}}}}: the text would be longer than "
                               f"{limits.MAX_TEXT_CHARS} characters after substitution")
        return values[name]

    return PLACEHOLDER.sub(repl, text)


class Substituter:
    """:func:`substitute` for one pour or cook, refusing more than MAX_TOTAL_TEXT_CHARS in all."""

    def __init__(self, values: Mapping[str, str], source: str) -> None:
        self.values = values
        self.source = source
        self.total = 0

    def __call__(self, text: str, step_id: str | None = None) -> str:
        """``text`` with the values filled in; ``step_id`` names the step in errors."""
        where = f"{self.source}: step '{step_id}'" if step_id else self.source
        out = substitute(text, self.values, where)
        self.total += len(out)
        if self.total > limits.MAX_TOTAL_TEXT_CHARS:
            raise FormulaError(f"{where}: the steps' text would be longer than "
                               f"{limits.MAX_TOTAL_TEXT_CHARS} characters after substitution")
        return out


def step_texts(step: Step) -> list[str]:
    """The fields of a step that take ``{{var}}`` substitution."""
    return [step.title, step.description, step.acceptance, step.notes, step.assignee,
            *step.labels]


def referenced_vars(steps: Iterable[Step]) -> dict[str, str]:
    """``{var: first step id that uses it}`` over step texts and conditions."""
    out: dict[str, str] = {}
    for step in steps:
        for text in step_texts(step) + [step.condition or ""]:
            for m in PLACEHOLDER.finditer(text):
                out.setdefault(m.group(1), step.id)
    return out


def _short(value: str) -> str:
    return repr(value) if len(value) <= 80 else repr(value[:77]) + "..."


def _check_value(v: VarDef, value: str, where: str) -> None:
    if v.enum and value not in v.enum:
        raise FormulaError(f"{where}: variable {v.name}={value!r} is not one of "
                           f"{', '.join(v.enum)}")
    if len(value) > limits.MAX_VALUE_CHARS:
        raise FormulaError(f"{where}: variable {v.name}: the value is longer than "
                           f"{limits.MAX_VALUE_CHARS} characters")
    if v.pattern:
        try:
            matched = pattern_matches(v.pattern, value)
        except PatternTimeout:
            raise FormulaError(f"{where}: variable {v.name}: checking the value against "
                               f"pattern {v.pattern!r} took too long (refused)") from None
        except re.error as exc:
            raise FormulaError(f"{where}: variable {v.name}: pattern {v.pattern!r} is not a "
                               f"valid regular expression: {exc}") from None
        if not matched:
            raise FormulaError(f"{where}: variable {v.name}={_short(value)} does not match "
                               f"pattern {v.pattern!r}")
    if v.type in ("int", "integer") and not re.fullmatch(r"[+-]?\d+", value.strip()):
        raise FormulaError(f"{where}: variable {v.name}={value!r} is not an integer")
    if v.type in ("number", "float"):
        try:
            float(value)
        except ValueError:
            raise FormulaError(f"{where}: variable {v.name}={value!r} is not a number") from None
    if v.type in ("bool", "boolean") and value.lower() not in (
            "true", "false", "yes", "no", "1", "0", "on", "off"):
        raise FormulaError(f"{where}: variable {v.name}={value!r} is not true/false")


def resolve_vars(bp: Blueprint, given: Mapping[str, str] | None, *,
                 strict: bool = True) -> dict[str, str]:
    """The variable values for an instantiation: given ones, then defaults.

    With ``strict`` every required variable and every variable a step text refers
    to must end up with a value; otherwise the missing ones are simply absent
    (cooking a proto keeps their placeholders).
    """
    given = dict(given or {})
    where = f"formula {bp.name}"
    if bp.source and not bp.source.startswith("proto:"):
        where = f"{bp.source}: {where}"  # the file, for one line that says where
    values: dict[str, str] = {}
    for name, v in bp.vars.items():
        if name in given:
            _check_value(v, given[name], where)
            values[name] = given[name]
        elif v.default is not None:
            values[name] = v.default
    for name, value in given.items():
        if len(value) > limits.MAX_VALUE_CHARS:
            raise FormulaError(f"{where}: variable {name}: the value is longer than "
                               f"{limits.MAX_VALUE_CHARS} characters")
        values.setdefault(name, value)
    if not strict:
        return values
    missing: list[str] = []
    for name, v in bp.vars.items():
        if name in values:
            continue
        if v.required_unless:
            if not any(other in values and values[other] != "" for other in v.required_unless):
                missing.append(f"{name} (or one of {', '.join(v.required_unless)})")
        elif v.required:
            missing.append(name)
    for name, step_id in referenced_vars(bp.all_steps()).items():
        if name not in values and name not in missing and not any(
                m.startswith(name + " ") for m in missing):
            if name in bp.vars and bp.vars[name].required_unless:
                continue
            missing.append(f"{name} (used by step {step_id})")
    if missing:
        raise FormulaError(f"{where}: missing variable(s): {'; '.join(missing)} "
                           "(pass --var NAME=VALUE)")
    return values


def check_condition(cond: str, where: str) -> None:
    """Refuse a condition we cannot evaluate (at load time, not at pour time)."""
    if not _COND.match(cond):
        raise FormulaError(
            f"{where}: key 'condition': cannot parse {cond!r} (use '{{{{var}}}}', "
            "'!{{var}}', '{{var}} == value' or '{{var}} != value')")


def eval_condition(cond: str, values: Mapping[str, str]) -> bool:
    """Evaluate a step condition against variable values (missing = empty)."""
    m = _COND.match(cond)
    if m is None:  # pragma: no cover - checked at load time
        raise FormulaError(f"cannot parse condition {cond!r}")
    negate, name, op, rhs = m.groups()
    value = values.get(name, "")
    if op:
        rhs = (rhs or "").strip()
        if len(rhs) >= 2 and rhs[0] == rhs[-1] and rhs[0] in "'\"":
            rhs = rhs[1:-1]
        result = (value == rhs) if op == "==" else (value != rhs)
    else:
        result = value.strip().lower() not in _FALSY
    return not result if negate else result


_BINOPS: dict[type, Callable[[int, int], int]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv, ast.Div: operator.floordiv, ast.Pow: operator.pow,
    ast.BitXor: operator.pow, ast.Mod: operator.mod,
}


def _bounded(value: int) -> int:
    if abs(value) >= 1 << limits.MAX_RANGE_BITS:
        raise ValueError(f"a number is out of range (at most 2^{limits.MAX_RANGE_BITS})")
    return value


def _eval_int(node: ast.AST) -> int:
    """A tiny integer calculator over an AST: literals, + - * / ^ and parentheses only.

    Every operand and result stays below ``2^MAX_RANGE_BITS``, checked *before* a
    multiplication or power is computed, so no expression can build a huge integer.
    """
    if isinstance(node, ast.Expression):
        return _eval_int(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int) \
            and not isinstance(node.value, bool):
        return _bounded(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _eval_int(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _eval_int(node.left), _eval_int(node.right)
        if isinstance(node.op, (ast.Pow, ast.BitXor)):
            if right < 0 or right > limits.MAX_RANGE_BITS:
                raise ValueError("exponent out of range")
            if abs(left) > 1 and (abs(left).bit_length() - 1) * right > limits.MAX_RANGE_BITS:
                raise ValueError(f"a number is out of range (at most 2^{limits.MAX_RANGE_BITS})")
        if isinstance(node.op, ast.Mult) and \
                left.bit_length() + right.bit_length() > limits.MAX_RANGE_BITS + 1:
            raise ValueError(f"a number is out of range (at most 2^{limits.MAX_RANGE_BITS})")
        if isinstance(node.op, (ast.FloorDiv, ast.Div, ast.Mod)) and right == 0:
            raise ValueError("division by zero")
        return _bounded(_BINOPS[type(node.op)](left, right))
    raise ValueError("only integers, + - * / ^ and parentheses are allowed")


def eval_range(spec: str, values: Mapping[str, str], where: str) -> tuple[int, int]:
    """``"1..{{n}}"`` → ``(1, n)``; variables may be written ``{{n}}`` or ``{n}``."""
    text = substitute(spec, values)
    text = re.sub(r"\{([A-Za-z_][A-Za-z0-9_-]*)\}",
                  lambda m: values.get(m.group(1), m.group(0)), text)
    if "{" in text:
        unknown = re.findall(r"\{+\s*([A-Za-z_][A-Za-z0-9_-]*)", text)
        raise FormulaError(f"{where}: loop range {spec!r} needs variable(s) "
                           f"{', '.join(unknown)} (pass --var)")
    if ".." not in text:
        raise FormulaError(f"{where}: loop range {spec!r} must look like 'START..END'")
    if len(text) > limits.MAX_RANGE_CHARS:
        raise FormulaError(f"{where}: key 'range': {_short(spec)} is longer than "
                           f"{limits.MAX_RANGE_CHARS} characters once variables are filled in")
    start_s, end_s = text.split("..", 1)
    try:
        start = _eval_int(ast.parse(start_s.strip().replace("^", "**"), mode="eval"))
        end = _eval_int(ast.parse(end_s.strip().replace("^", "**"), mode="eval"))
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError) as exc:
        reason = exc.msg if isinstance(exc, SyntaxError) else (str(exc) or type(exc).__name__)
        raise FormulaError(f"{where}: key 'range': loop range {spec!r}: {reason}") from None
    if end < start:
        raise FormulaError(f"{where}: loop range {spec!r} is empty ({start}..{end})")
    return start, end


def parse_var_args(items: Iterable[str] | None) -> dict[str, str]:
    """``["k=v", …]`` from the command line into a dict (one-line error when malformed)."""
    out: dict[str, str] = {}
    for item in items or ():
        if "=" not in item:
            from ..errors import UsageError

            raise UsageError(f"invalid --var {item!r}: expected NAME=VALUE")
        key, value = item.split("=", 1)
        key = key.strip()
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key):
            from ..errors import UsageError

            raise UsageError(f"invalid --var name {key!r}: letters, digits, '_' and '-'")
        out[key] = value
    return out
