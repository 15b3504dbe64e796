"""A small TOML writer: just what a formula file needs (stdlib has only a reader).

Strings are always escaped, so any text — titles, descriptions, values from a
ledger — round-trips through :mod:`tomllib` unchanged.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["toml_string", "toml_value", "toml_key"]

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _escape_control(text: str) -> str:
    return _CONTROL.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


def _one_line(text: str) -> str:
    body = (text.replace("\\", "\\\\").replace('"', '\\"').replace("\t", "\\t")
            .replace("\n", "\\n").replace("\r", "\\r"))
    return '"' + _escape_control(body) + '"'


def toml_string(text: str) -> str:
    """A TOML string literal for ``text``: multi-line basic when it has newlines."""
    if "\n" not in text:
        return _one_line(text)
    body = text.replace("\\", "\\\\").replace('"""', '""\\"').replace("\r", "\\r")
    body = _escape_control(body)
    if body.endswith('"'):
        body = body[:-1] + '\\"'
    # the newline right after the opening delimiter is not part of the value
    return '"""\n' + body + '"""'


def toml_key(key: str) -> str:
    """A bare key when possible, else a quoted one."""
    return key if _BARE_KEY.fullmatch(key) else _one_line(key)


def toml_value(value: Any) -> str:
    """A TOML value: strings, booleans, integers, floats, lists and inline tables."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{toml_key(str(k))} = {toml_value(v)}" for k, v in value.items()
                          if v is not None)
        return "{ " + inner + " }" if inner else "{}"
    if value is None:
        return '""'
    return toml_string(str(value))
