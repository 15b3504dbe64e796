"""``gt setup``: make a fresh agent session prime itself (GUPP).

Programs with session hooks (the ``claude`` setup kind) get hooks that run
``gt prime --hook`` when a session starts or compacts and ``gt mail check
--inject`` before every prompt.  Programs without hooks get a block of standing
instructions in the file they read at start.  Files written into a worktree are
kept out of git (``info/exclude``, or ``--skip-worktree`` for a tracked file) so
that they never end up in an agent's commits.
"""

from __future__ import annotations

import json
import os
import shlex
from typing import Any

from ..errors import UsageError
from .agents import Preset
from .rigs import exclude_path, git

__all__ = ["setup_files", "instructions_block", "BEGIN", "END"]

BEGIN = "<!-- gastown:begin (written by gt setup; edits here are replaced) -->"
END = "<!-- gastown:end -->"


def instructions_block(gt: str) -> str:
    """Standing instructions for programs that have no session hooks."""
    return "\n".join([
        BEGIN,
        "## Working in a gastown town",
        "",
        f"- At the start of every session, and whenever you lose track, run `{gt} prime`",
        "  and do what it says. Work on your hook runs now, without asking.",
        "- Claim a step with `bd update ID --claim`; close it with `bd close ID` when done.",
        f"- When every step is closed, run `{gt} done`.",
        f"- Before each new task, run `{gt} mail check --inject` and read what it shows.",
        END,
        "",
    ])


def _in_git(directory: str) -> bool:
    return git(["rev-parse", "--is-inside-work-tree"], cwd=directory,
               check=False).stdout.strip() == "true"


def _tracked(directory: str, rel: str) -> bool:
    return git(["ls-files", "--error-unmatch", "--", rel], cwd=directory,
               check=False).returncode == 0


def _keep_out_of_git(directory: str, rel: str) -> None:
    if not _in_git(directory):
        return
    if _tracked(directory, rel):
        # a tracked file we changed: tell git to ignore this worktree's edit
        git(["update-index", "--skip-worktree", "--", rel], cwd=directory)
    else:
        exclude_path(directory, "/" + rel)


def _is_ours(entry: Any) -> bool:
    hooks = entry.get("hooks", []) if isinstance(entry, dict) else []
    return any(isinstance(h, dict) and ("prime --hook" in str(h.get("command", ""))
                                        or "mail check --inject" in str(h.get("command", "")))
               for h in hooks)


def _claude(directory: str, gt: str) -> str:
    rel = os.path.join(".claude", "settings.local.json")
    path = os.path.join(directory, rel)
    existed = os.path.exists(path)
    settings: dict[str, Any] = {}
    if existed:
        try:
            with open(path, encoding="utf-8") as fh:
                settings = json.load(fh)
        except ValueError as exc:
            raise UsageError(f"{path} is not valid JSON ({exc}); fix or remove it") from None
    hooks = settings.setdefault("hooks", {})
    wanted = {"SessionStart": f"{gt} prime --hook", "PreCompact": f"{gt} prime --hook",
              "UserPromptSubmit": f"{gt} mail check --inject"}
    for event, command in wanted.items():
        entries = [e for e in hooks.get(event, []) if not _is_ours(e)]
        entries.append({"matcher": "", "hooks": [{"type": "command", "command": command}]})
        hooks[event] = entries
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(settings, fh, indent=2)
        fh.write("\n")
    os.replace(path + ".tmp", path)
    _keep_out_of_git(directory, rel)
    return path


def _instructions(directory: str, rel: str, gt: str) -> str:
    path = os.path.join(directory, rel)
    existed = os.path.exists(path)
    text = ""
    if existed:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    block = instructions_block(gt)
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + block.rstrip("\n") + tail
    else:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + block
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(path + ".tmp", path)
    _keep_out_of_git(directory, rel)
    return path


def setup_files(preset: Preset, directory: str, gt_path: str = "gt") -> list[str]:
    """Write what ``preset`` needs in ``directory`` so its sessions prime themselves."""
    if not os.path.isdir(directory):
        raise UsageError(f"{directory} is not a directory")
    gt = shlex.quote(gt_path)
    if preset.setup == "claude":
        return [_claude(directory, gt)]
    if preset.setup == "instructions" and preset.instructions_file:
        return [_instructions(directory, preset.instructions_file, gt)]
    return []
