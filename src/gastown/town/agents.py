"""Agent presets (data) and what an agent's session is made of.

A preset says how to run one coding-agent program: its command line, how the
first prompt is passed, how to tell it is ready for input, and what ``gt setup``
writes so a fresh session primes itself.  The shipped presets are in
``gastown/data/agents.toml``; a town adds or overrides them under
``[presets.NAME]``.  Nothing here knows any role.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from ..errors import ValidationError

__all__ = ["Preset", "load_presets", "preset_of", "agent_argv", "beacon", "PROMPT_MODES",
           "SETUP_KINDS"]

PROMPT_MODES = ("arg", "flag", "nudge", "none")
SETUP_KINDS = ("claude", "codex", "gemini", "instructions", "none")
_PRESET_KEYS = {"command", "args", "env", "prompt", "prompt_flag", "ready", "ready_delay",
                "setup", "instructions_file", "exclude"}


@dataclass(frozen=True)
class Preset:
    """How to run one kind of agent program."""

    name: str
    command: tuple[str, ...]
    args: tuple[str, ...] = ()
    prompt: str = "none"
    prompt_flag: str | None = None
    ready: str | None = None
    ready_delay: float = 0.0
    setup: str = "none"
    instructions_file: str | None = None
    #: environment variables the program needs (an agent's own ``env`` wins)
    env: tuple[tuple[str, str], ...] = ()
    #: files the program writes in its worktree, kept out of git by ``gt setup``
    exclude: tuple[str, ...] = ()

    def env_dict(self) -> dict[str, str]:
        """The preset's environment variables as a dict."""
        return dict(self.env)


@functools.lru_cache(maxsize=1)
def _shipped() -> dict[str, Any]:
    text = resources.files("gastown").joinpath("data/agents.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def load_presets(overrides: dict[str, Any] | None = None,
                 path: str = "town.toml") -> dict[str, dict[str, Any]]:
    """The shipped presets with a town's ``[presets]`` merged over them, validated."""
    shipped = _shipped()
    out: dict[str, dict[str, Any]] = {k: dict(v) for k, v in shipped["presets"].items()}
    for name, table in (overrides or {}).items():
        where = f"{path}: presets.{name}"
        if not isinstance(table, dict):
            raise ValidationError(f"{where} must be a table")
        unknown = sorted(set(table) - _PRESET_KEYS)
        if unknown:
            raise ValidationError(f"{where}: unknown key(s) {', '.join(unknown)}")
        merged = {**out.get(name, {}), **table}
        _validate(merged, where)
        out[name] = merged
    return out


def _validate(t: dict[str, Any], where: str) -> None:
    cmd = t.get("command", [])
    if isinstance(cmd, str):
        import shlex

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
        import re

        try:
            re.compile(ready)
        except (re.error, TypeError) as exc:
            raise ValidationError(f"{where}.ready is not a valid regular expression: {exc}"
                                  ) from None


def preset_of(presets: dict[str, dict[str, Any]], name: str) -> Preset:
    """The :class:`Preset` called ``name`` from a merged preset table."""
    t = presets[name]
    return Preset(name=name, command=tuple(t.get("command", ())), args=tuple(t.get("args", ())),
                  prompt=t.get("prompt", "none"), prompt_flag=t.get("prompt_flag"),
                  ready=t.get("ready"), ready_delay=float(t.get("ready_delay", 0.0)),
                  setup=t.get("setup", "none"), instructions_file=t.get("instructions_file"),
                  env=tuple(sorted(t.get("env", {}).items())),
                  exclude=tuple(t.get("exclude", ())))


def beacon(actor: str, agent: str) -> str:
    """The first prompt of a new session (from the presets data)."""
    text = str(_shipped().get("beacon", "Run `gt prime`."))
    return text.replace("{{actor}}", actor).replace("{{agent}}", agent)


def agent_argv(preset: Preset, command: list[str] | None, args: list[str] | None,
               prompt: str | None) -> list[str]:
    """The argument vector of an agent's program; ``prompt`` is added as the preset says.

    The vector goes to ``execvp`` (directly or through tmux with two or more
    words), never to a shell.
    """
    argv = list(command) if command else list(preset.command)
    argv += list(args) if args is not None else list(preset.args)
    if prompt:
        if preset.prompt == "arg":
            argv.append(prompt)
        elif preset.prompt == "flag" and preset.prompt_flag:
            argv += [preset.prompt_flag, prompt]
    return argv
