"""The checks every table of ``town.toml`` shares: one clear line per mistake."""

from __future__ import annotations

import re
import shlex
from typing import Any

from ..errors import ValidationError

__all__ = ["NAME_RE", "check_name", "parse_command", "table", "string", "strlist", "env",
           "known", "number", "integer", "boolean", "checked_table"]

#: names of rigs, agents, pools, roles and groups: they become paths, tmux session
#: names and git branch components, so they are kept to a safe alphabet
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")


def check_name(kind: str, name: str, where: str = "") -> str:
    """``name`` if it is a valid rig/agent/pool/role name, else a one-line error."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        at = f"{where}: " if where else ""
        raise ValidationError(
            f"{at}invalid {kind} name {name!r}: use letters, digits, '-' and '_' "
            "(starting with a letter or digit, at most 63 characters)")
    return name


def parse_command(value: Any, where: str) -> list[str] | None:
    """A command from town.toml: a string (split once, like a shell, never run by one) or list.

    These commands come from the town owner's own configuration file, never from
    bead text, so splitting them is safe; they are run as argument vectors.
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise ValidationError(f"{where}: {exc}") from None
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        words = list(value)
    else:
        raise ValidationError(f"{where} must be a string or a list of strings")
    if not words:
        raise ValidationError(f"{where} is empty")
    return words


def table(data: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    """The sub-table ``[key]`` of ``data`` (empty when absent)."""
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ValidationError(f"{path}: [{key}] must be a table")
    return value


def string(t: dict[str, Any], key: str, where: str, default: str | None = None) -> str | None:
    """``t[key]`` as a string (``default`` when absent)."""
    value = t.get(key, default)
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"{where}.{key} must be a string, not {type(value).__name__}")
    return value


def strlist(t: dict[str, Any], key: str, where: str) -> list[str] | None:
    """``t[key]`` as a list of strings (None when absent)."""
    value = t.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"{where}.{key} must be a list of strings")
    return list(value)


def env(t: dict[str, Any], where: str) -> dict[str, str]:
    """``t["env"]``: a table of environment variables (identifier names, string values)."""
    value = t.get("env", {})
    if not isinstance(value, dict):
        raise ValidationError(f"{where}.env must be a table of strings")
    out: dict[str, str] = {}
    for k, v in value.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k) or not isinstance(v, str):
            raise ValidationError(f"{where}.env.{k}: names are identifiers, values strings")
        out[k] = v
    return out


def known(t: dict[str, Any], allowed: set[str], where: str) -> None:
    """Refuse keys of ``t`` outside ``allowed``, naming them and the known ones."""
    unknown = sorted(set(t) - allowed)
    if unknown:
        raise ValidationError(f"{where}: unknown key(s) {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(allowed)) or 'none'})")


def checked_table(t: Any, allowed: set[str], where: str) -> dict[str, Any]:
    """``t`` if it is a table with only ``allowed`` keys."""
    if not isinstance(t, dict):
        raise ValidationError(f"{where} must be a table")
    known(t, allowed, where)
    return t


def number(t: dict[str, Any], key: str, where: str, default: float, low: float,
           high: float) -> float:
    """``t[key]`` as a number of seconds from ``low`` to ``high``."""
    value = t.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{where}.{key} must be a number (seconds), not {value!r}")
    if not low <= float(value) <= high:
        raise ValidationError(f"{where}.{key} must be between {low:g} and {high:g}")
    return float(value)


def integer(t: dict[str, Any], key: str, where: str, default: int, low: int, high: int) -> int:
    """``t[key]`` as an integer from ``low`` to ``high``."""
    value = t.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{where}.{key} must be an integer from {low} to {high}")
    return value


def boolean(t: dict[str, Any], key: str, where: str, default: bool) -> bool:
    """``t[key]`` as true or false."""
    value = t.get(key, default)
    if not isinstance(value, bool):
        raise ValidationError(f"{where}.{key} must be true or false")
    return value
