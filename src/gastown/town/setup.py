"""``gt setup``: make a fresh agent session prime itself (GUPP).

Programs with session hooks get a hook that runs ``gt prime --hook`` when a
session starts: claude in ``.claude/settings.local.json`` (also before a
compaction, and ``gt mail check --inject`` before every prompt), codex in
``.codex/hooks.json`` and gemini in ``.gemini/settings.json`` (both read the
hook's answer as JSON: ``gt prime --hook --hook-json``).  codex and gemini also
get, like programs without hooks, a block of standing instructions in the file
they read at start (which covers mail too).  codex loads a project's hooks only
in a trusted folder, so the worktree is marked trusted in
``$CODEX_HOME/config.toml`` (what answering its trust dialog writes).  Files
written into a worktree are kept out of git (``info/exclude``, or
``--skip-worktree`` for a tracked file) so that they never end up in an agent's
commits; so are the files a preset names in ``exclude``.
"""

from __future__ import annotations

import json
import os
import shlex
import tomllib
from typing import Any

from ..errors import UsageError
from .agents import Preset
from .rigs import exclude_path, git

__all__ = ["setup_files", "instructions_block", "codex_home", "BEGIN", "END"]

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


def _read_json(path: str) -> dict[str, Any]:
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except ValueError as exc:
        raise UsageError(f"{path} is not valid JSON ({exc}); fix or remove it") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path} is not a JSON object; fix or remove it")
    return data


def _write_json(path: str, data: dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.replace(path + ".tmp", path)


def _hooks_file(directory: str, rel: str, wanted: dict[str, str],
                extra: dict[str, Any] | None = None, name: bool = False) -> str:
    """Write ``wanted`` (event -> command) into the hooks table of a JSON settings file.

    Our earlier entries are replaced, everybody else's kept.  The layout (an event's
    list of ``{matcher, hooks: [{type, command}]}``) is the one claude, codex and
    gemini share.
    """
    path = os.path.join(directory, rel)
    settings = _read_json(path)
    settings.update(extra or {})
    hooks = settings.setdefault("hooks", {})
    if not isinstance(hooks, dict):
        raise UsageError(f"{path}: \"hooks\" is not a JSON object; fix or remove it")
    for event, command in wanted.items():
        entries = [e for e in hooks.get(event, []) if not _is_ours(e)]
        hook: dict[str, Any] = {"type": "command", "command": command}
        if name:
            hook["name"] = "gastown-prime"
        entries.append({"matcher": "", "hooks": [hook]})
        hooks[event] = entries
    _write_json(path, settings)
    _keep_out_of_git(directory, rel)
    return path


def _claude(directory: str, gt: str) -> str:
    # skipDangerousModePermissionPrompt: the person's consent to the preset's
    # --dangerously-skip-permissions, so that no dialog waits for it in a new worktree
    return _hooks_file(directory, os.path.join(".claude", "settings.local.json"),
                       {"SessionStart": f"{gt} prime --hook",
                        "PreCompact": f"{gt} prime --hook",
                        "UserPromptSubmit": f"{gt} mail check --inject"},
                       extra={"skipDangerousModePermissionPrompt": True})


def codex_home() -> str:
    """Where codex keeps its configuration (``$CODEX_HOME``, else ``~/.codex``)."""
    return os.environ.get("CODEX_HOME") or os.path.join(os.path.expanduser("~"), ".codex")


def _toml_key(text: str) -> str:
    return json.dumps(text)  # a TOML basic string is a JSON string for our paths


def _codex_trust(directory: str) -> str:
    """Mark ``directory`` trusted in codex's config.toml, as its trust dialog would."""
    path = os.path.join(codex_home(), "config.toml")
    text = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        try:
            config = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{path} is not valid TOML ({exc}); fix it") from None
        projects = config.get("projects", {})
        if not isinstance(projects, dict):
            raise UsageError(f"{path}: projects is not a table; fix it")
        project = projects.get(directory, {})
        if isinstance(project, dict) and project.get("trust_level") == "trusted":
            return path
        if isinstance(project, dict) and project:
            raise UsageError(f"{path} has [projects.{_toml_key(directory)}] without "
                             "trust_level = \"trusted\"; set it, or remove that table")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    block = f'[projects.{_toml_key(directory)}]\ntrust_level = "trusted"\n'
    sep = "" if not text or text.endswith("\n\n") else ("\n" if text.endswith("\n") else "\n\n")
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(sep + block)
    return path


def _codex(directory: str, gt: str) -> list[str]:
    hooks = _hooks_file(directory, os.path.join(".codex", "hooks.json"),
                        {"SessionStart": f"{gt} prime --hook --hook-json"})
    # codex keys trust by the folder it runs in: the path as given and as resolved
    paths = dict.fromkeys([os.path.abspath(directory), os.path.realpath(directory)])
    return [hooks, *dict.fromkeys(_codex_trust(p) for p in paths)]


def _gemini(directory: str, gt: str) -> str:
    return _hooks_file(directory, os.path.join(".gemini", "settings.json"),
                       {"SessionStart": f"{gt} prime --hook --hook-json"}, name=True)


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
    written: list[str] = []
    if preset.setup == "claude":
        written.append(_claude(directory, gt))
    elif preset.setup == "codex":
        written += _codex(directory, gt)
    elif preset.setup == "gemini":
        written.append(_gemini(directory, gt))
    if preset.setup in ("instructions", "codex", "gemini") and preset.instructions_file:
        written.append(_instructions(directory, preset.instructions_file, gt))
    if _in_git(directory):
        for pattern in preset.exclude:
            exclude_path(directory, pattern if pattern.startswith("/") else "/" + pattern)
    return written
