"""Writing ``town.toml``: the default file and textual edits that keep comments.

The file is the person's: edits made by ``gt rig add`` / ``gt agent add`` are
textual (a table appended, a table removed) so their comments survive, and every
edit is re-parsed and validated before it is written (atomically).
"""

from __future__ import annotations

import os
import re
import tomllib
from importlib import resources
from typing import Any

from ..errors import ValidationError
from .schema import parse_config

__all__ = ["default_config_text", "toml_value", "append_table", "remove_table"]


def default_config_text(name: str, prefix: str, email: str) -> str:
    """The commented default ``town.toml`` for a new town."""
    text = resources.files("gastown").joinpath("data/town.toml").read_text(encoding="utf-8")
    for key, value in (("name", name), ("prefix", prefix), ("email", email)):
        # the values land inside TOML basic strings: escape them as such
        text = text.replace("{{" + key + "}}", toml_value(value)[1:-1])
    return text


def toml_value(value: Any) -> str:
    """One TOML value (strings, booleans, integers, lists and flat tables of them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        out = []
        for ch in value:
            if ch in '"\\':
                out.append("\\" + ch)
            elif ord(ch) < 0x20 or ord(ch) == 0x7F:
                out.append(f"\\u{ord(ch):04x}")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_value(key)


def _header_re(dotted: str) -> re.Pattern[str]:
    parts = dotted.split(".")
    pat = r"\s*\.\s*".join(rf"(?:{re.escape(p)}|\"{re.escape(p)}\")" for p in parts)
    return re.compile(rf"^\s*\[\s*{pat}\s*\]\s*(#.*)?$")


def append_table(path: str, dotted: str, values: dict[str, Any], comment: str = "") -> None:
    """Append ``[dotted]`` with ``values`` to the file, validating the result first."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    block = ["", f"# {comment}" if comment else "", f"[{dotted}]"]
    block += [f"{_key(k)} = {toml_value(v)}" for k, v in values.items() if v is not None]
    new = text.rstrip("\n") + "\n" + "\n".join(line for line in block if line is not None) + "\n"
    new = new.replace("\n\n\n", "\n\n")
    _write_validated(path, new)


def remove_table(path: str, dotted: str) -> bool:
    """Remove ``[dotted]`` and its sub-tables from the file; False when it is not there."""
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines(keepends=True)
    head = _header_re(dotted)
    sub = re.compile(r"^\s*\[\s*" + re.escape(dotted) + r"\.")
    out: list[str] = []
    skipping = found = False
    for line in lines:
        if re.match(r"^\s*\[", line):
            if head.match(line) or sub.match(line):
                skipping = found = True
                # the note `append_table` wrote above the table goes with it
                if out and out[-1].startswith("# added by gt "):
                    out.pop()
                    if out and not out[-1].strip():
                        out.pop()
                continue
            skipping = False
        if not skipping:
            out.append(line)
    if not found:
        return False
    _write_validated(path, "".join(out))
    return True


def _write_validated(path: str, text: str) -> None:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"{path}: the edit would make it invalid TOML ({exc}); "
                              "edit the file by hand") from None
    parse_config(data, path)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
