"""Agent presets, the data half: the shipped table merged with ``[presets.NAME]``.

A preset says how to run one coding-agent program (its command line, how the
first prompt is passed, how to tell it is ready for input, what ``gt setup``
writes).  The shipped presets are in ``gastown/data/agents.toml``; a town adds
or overrides them in ``town.toml``.  :mod:`gastown.town.agents` turns a merged
table into the running half (a ``Preset``).
"""

from __future__ import annotations

import functools
import re
import shlex
import tomllib
from importlib import resources
from typing import Any

from ..errors import ValidationError

__all__ = ["load_presets", "shipped_data", "PROMPT_MODES", "SETUP_KINDS", "PRESET_KEYS"]

PROMPT_MODES = ("arg", "flag", "nudge", "none")
SETUP_KINDS = ("claude", "codex", "gemini", "instructions", "none")
PRESET_KEYS = frozenset({"command", "args", "env", "prompt", "prompt_flag", "ready",
                         "ready_delay", "setup", "instructions_file", "exclude"})


@functools.lru_cache(maxsize=1)
def shipped_data() -> dict[str, Any]:
    """``gastown/data/agents.toml`` parsed (the shipped presets and the beacon)."""
    text = resources.files("gastown").joinpath("data/agents.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def load_presets(overrides: dict[str, Any] | None = None,
                 path: str = "town.toml") -> dict[str, dict[str, Any]]:
    """The shipped presets with a town's ``[presets]`` merged over them, validated."""
    out: dict[str, dict[str, Any]] = {k: dict(v) for k, v in shipped_data()["presets"].items()}
    for name, table in (overrides or {}).items():
        where = f"{path}: presets.{name}"
        if not isinstance(table, dict):
            raise ValidationError(f"{where} must be a table")
        unknown = sorted(set(table) - PRESET_KEYS)
        if unknown:
            raise ValidationError(f"{where}: unknown key(s) {', '.join(unknown)}")
        merged = {**out.get(name, {}), **table}
        _validate(merged, where)
        out[name] = merged
    return out


def _validate(t: dict[str, Any], where: str) -> None:
    cmd = t.get("command", [])
    if isinstance(cmd, str):
        t["command"] = cmd = shlex.split(cmd)
    if not isinstance(cmd, list) or not all(isinstance(c, str) for c in cmd):
        raise ValidationError(f"{where}.command must be a list of strings")
    args = t.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ValidationError(f"{where}.args must be a list of strings")
    env = t.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                            for k, v in env.items()):
        raise ValidationError(f"{where}.env must be a table of strings "
                              "(NAME = \"value\")")
    exclude = t.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(e, str) and e for e in exclude):
        raise ValidationError(f"{where}.exclude must be a list of file patterns")
    if t.get("prompt", "none") not in PROMPT_MODES:
        raise ValidationError(f"{where}.prompt must be one of {', '.join(PROMPT_MODES)}")
    if t.get("prompt") == "flag" and not t.get("prompt_flag"):
        raise ValidationError(f"{where}.prompt_flag is required with prompt = \"flag\"")
    if t.get("setup", "none") not in SETUP_KINDS:
        raise ValidationError(f"{where}.setup must be one of {', '.join(SETUP_KINDS)}")
    if t.get("setup") in ("instructions", "codex", "gemini") and not t.get("instructions_file"):
        raise ValidationError(f"{where}.instructions_file is required with "
                              f"setup = \"{t.get('setup')}\"")
    delay = t.get("ready_delay", 0.0)
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or delay < 0:
        raise ValidationError(f"{where}.ready_delay must be a number of seconds >= 0")
    ready = t.get("ready")
    if ready is not None:
        try:
            re.compile(ready)
        except (re.error, TypeError) as exc:
            raise ValidationError(f"{where}.ready is not a valid regular expression: {exc}"
                                  ) from None
