"""Agent presets (data) and what an agent's session is made of.

A preset says how to run one coding-agent program: its command line, how the
first prompt is passed, how to tell it is ready for input, and what ``gt setup``
writes so a fresh session primes itself.  The shipped presets are in
``gastown/data/agents.toml``; a town adds or overrides them under
``[presets.NAME]``; the tables are merged and validated by
:mod:`gastown.config.presets`.  Nothing here knows any role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config.presets import PROMPT_MODES, SETUP_KINDS, load_presets
from ..config.presets import shipped_data as _shipped

__all__ = ["Preset", "load_presets", "preset_of", "agent_argv", "beacon", "PROMPT_MODES",
           "SETUP_KINDS"]


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
    from ..chemistry.vars import substitute

    return substitute(text, {"actor": actor, "agent": agent}, "beacon")


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
