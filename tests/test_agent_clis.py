"""The shipped presets against the real agent programs, as installed from their registries.

``tests/helpers/install_agent_clis.sh`` installs claude, codex, gemini and
opencode from npm and aider from PyPI into a cache directory (reused; one
refresh a day).  Then, for every preset:

* every flag the preset passes appears in the installed program's ``--help``;
* ``gt setup`` plus a session started as the town starts one (the launcher, the
  preset's argv and environment, in tmux on a private socket, in a fresh git
  worktree, with HOME a temporary directory) reaches the program's own screen,
  matched by the preset's ``ready`` pattern, with no trust, permission or login
  dialog waiting for a person; the session-start hook ``gt setup`` wrote runs;
* stopping the session (its tmux server killed) leaves no process of it behind.

No model can be reached from here: a dummy API key gets each program past its
login screen, and its failure to reach its API is expected.  The tests skip,
saying why, only when a registry cannot be reached.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.townkit import add_agent, clean_env, git, gt, make_repo, sleeper
from gastown.errors import ValidationError
from gastown.town.agents import Preset, agent_argv, beacon, load_presets, preset_of
from gastown.town.core import Town
from gastown.town.sessions import Sessions
from gastown.town.setup import setup_files

pytest_plugins = ("agents.fixtures",)

ROOT = Path(__file__).resolve().parent.parent
INSTALLER = ROOT / "tests" / "helpers" / "install_agent_clis.sh"
CACHE = Path(os.environ.get("GASTOWN_AGENT_CLIS")
             or Path.home() / ".cache" / "gastown-agent-clis")
PROGRAMS = {"claude": "npm", "codex": "npm", "gemini": "npm", "opencode": "npm",
            "aider": "aider"}
#: what a person would have to answer, or a flag the program refused: never on screen
BLOCKERS = re.compile(
    r"trust this folder|trust the files|Do you trust|Quick safety check|"
    r"Bypass Permissions mode|Hooks need review|cannot be used with root|"
    r"Detected a custom API key|How would you like to authenticate|Sign in with|"
    r"unknown option|Unknown argument|unexpected argument|unrecognized argument|"
    r"error: unrecognized", re.IGNORECASE)
#: programs with session-start hooks: gt setup must make them run `gt prime --hook`
HOOKED = ("claude", "codex", "gemini")
STARTUP_S = 150.0  # a loaded CI machine: these programs take 20-40 s to draw here
HOOK_ANSWER = ('{"hookSpecificOutput": {"hookEventName": "SessionStart", '
               '"additionalContext": "gastown test prime"}}')

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")


def _bin_dir(kind: str) -> Path:
    return CACHE / "npm" / "node_modules" / ".bin" if kind == "npm" else CACHE / "aider" / "bin"


@pytest.fixture(scope="module")
def installed() -> dict[str, str]:
    """Install (or reuse) the CLIs; the path of each program, skipping only when unreachable."""
    proc = subprocess.run(["bash", str(INSTALLER), str(CACHE)], capture_output=True,
                          text=True, timeout=900, check=False)
    found = {name: str(_bin_dir(kind) / name) for name, kind in PROGRAMS.items()
             if os.access(_bin_dir(kind) / name, os.X_OK)}
    if proc.returncode not in (0, 3):
        pytest.fail(f"installing the agent CLIs failed:\n{proc.stderr}")
    if proc.returncode == 3 and not found:
        pytest.skip(f"a package registry cannot be reached: {proc.stderr.strip()}")
    found["_reason"] = proc.stderr.strip()
    return found


def _program(installed: dict[str, str], name: str) -> str:
    if name not in installed:
        # only a registry that cannot be reached leaves a program out (checked above)
        pytest.skip(f"{name} is not installed: {installed['_reason']}")
    return installed[name]


def _path(installed: dict[str, str]) -> str:
    dirs = [str(_bin_dir(kind)) for kind in sorted(set(PROGRAMS.values()))]
    return os.pathsep.join([*dirs, os.path.dirname(shutil.which("node") or "/usr/bin/node"),
                            "/usr/local/bin", "/usr/bin", "/bin"])


def _flags(preset: Preset) -> list[str]:
    flags = [a for a in preset.args if a.startswith("-")]
    if preset.prompt == "flag" and preset.prompt_flag:
        flags.append(preset.prompt_flag)
    return flags


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_every_flag_of_the_preset_is_in_the_installed_help(
        installed: dict[str, str], name: str, tmp_path: Path) -> None:
    program = _program(installed, name)
    preset = preset_of(load_presets(), name)
    env = {"HOME": str(tmp_path), "PATH": _path(installed), "TERM": "dumb", "LANG": "C.UTF-8"}
    proc = subprocess.run([program, "--help"], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120, check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{name} --help exited {proc.returncode}:\n{text[-2000:]}"
    assert _flags(preset), f"preset {name} passes no flags?"
    for flag in _flags(preset):
        assert re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text), (
            f"{name} {flag}: not in the installed {name}'s --help")


# ------------------------------------------------------- gt setup, presets (no CLI)
def test_gt_setup_writes_session_start_hooks_for_codex_and_gemini(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    codex_home = tmp_path / "codex"
    env = clean_env(CODEX_HOME=str(codex_home))
    for _ in range(2):  # twice: still one hook of ours, one trust entry
        written = json.loads(gt(tmp_path, "setup", "--json", "codex", str(repo),
                                env=env).stdout)["written"]
        gt(tmp_path, "setup", "gemini", str(repo), env=env)
    assert written == [str(repo / ".codex" / "hooks.json"), str(codex_home / "config.toml"),
                       str(repo / "AGENTS.md")]
    for rel in (".codex/hooks.json", ".gemini/settings.json"):
        start = json.loads((repo / rel).read_text())["hooks"]["SessionStart"]
        assert len(start) == 1 and start[0]["hooks"][0]["command"] == "gt prime --hook --hook-json"
    config = tomllib.loads((codex_home / "config.toml").read_text())
    assert config["projects"][os.path.realpath(repo)] == {"trust_level": "trusted"}
    assert "gt prime" in (repo / "GEMINI.md").read_text()
    assert git(repo, "status", "--porcelain").strip() == "", "nothing for git to commit"


def test_gt_setup_codex_keeps_the_users_config_and_refuses_a_broken_one(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    codex_home = tmp_path / "codex"
    codex_home.mkdir()
    (codex_home / "config.toml").write_text('model = "o3"\n[tui]\nx = 1\n')
    env = clean_env(CODEX_HOME=str(codex_home))
    gt(tmp_path, "setup", "codex", str(repo), env=env)
    config = tomllib.loads((codex_home / "config.toml").read_text())
    assert config["model"] == "o3" and config["tui"] == {"x": 1}
    assert config["projects"][os.path.realpath(repo)]["trust_level"] == "trusted"
    (codex_home / "config.toml").write_text("model = \n")
    proc = gt(tmp_path, "setup", "codex", str(repo), env=env, check=False)
    assert proc.returncode == 2 and "config.toml is not valid TOML" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert (codex_home / "config.toml").read_text() == "model = \n", "nothing written"
    (codex_home / "config.toml").write_text('projects = "oops"\n')
    proc = gt(tmp_path, "setup", "codex", str(repo), env=env, check=False)
    assert proc.returncode == 2 and "config.toml: projects is not a table" in proc.stderr, \
        proc.stderr
    assert (codex_home / "config.toml").read_text() == 'projects = "oops"\n', "nothing written"


def test_gt_setup_claude_consents_to_its_permission_mode_and_aider_files_stay_out_of_git(
        tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    gt(tmp_path, "setup", "claude", str(repo), env=clean_env())
    settings = json.loads((repo / ".claude" / "settings.local.json").read_text())
    assert settings["skipDangerousModePermissionPrompt"] is True
    gt(tmp_path, "setup", "aider", str(repo), env=clean_env())
    (repo / ".aider.chat.history.md").write_text("what aider writes\n")
    assert git(repo, "status", "--porcelain").strip() == ""


def test_prime_hook_json_outside_a_session_answers_an_empty_object(tmp_path: Path) -> None:
    proc = gt(tmp_path, "prime", "--hook-json", env=clean_env())
    assert proc.returncode == 0 and json.loads(proc.stdout) == {}


def test_prime_hook_json_in_a_session_carries_the_prompt_as_additional_context(
        town: Town) -> None:
    add_agent(town, "cx", sleeper(), preset="codex")
    env = clean_env(**town.session_env(town.agent("cx")))
    answer = json.loads(gt(town, "prime", "--hook-json", env=env).stdout)
    assert answer["hookSpecificOutput"]["hookEventName"] == "SessionStart"
    text = answer["hookSpecificOutput"]["additionalContext"]
    assert text.strip() == gt(town, "prime", env=env).stdout.strip() and "app/worker/cx" in text


def test_preset_env_reaches_the_session_and_the_agents_own_env_wins(town: Town) -> None:
    add_agent(town, "cc", sleeper(), preset="claude")
    env = Sessions(town).spec(town.agent("cc")).env
    assert env["IS_SANDBOX"] == "1" and env["CLAUDE_CODE_SANDBOXED"] == "1"
    with open(town.config_path, "a", encoding="utf-8") as fh:
        fh.write('\n[presets.claude]\nenv = { IS_SANDBOX = "0" }\n')
    town.reload()
    env = Sessions(town).spec(town.agent("cc")).env
    assert env["IS_SANDBOX"] == "0" and "CLAUDE_CODE_SANDBOXED" not in env


def test_a_preset_env_that_is_not_a_table_of_strings_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"presets.x.env must be a table of strings"):
        load_presets({"x": {"command": ["x"], "env": {"A": 1}}})
    with pytest.raises(ValidationError, match=r"presets.x.exclude must be a list"):
        load_presets({"x": {"command": ["x"], "exclude": "y"}})


# ------------------------------------------------------------------ sessions
def _seed_home(name: str, home: Path) -> dict[str, str]:
    """A user who has configured the program (a dummy key); the variables it reads."""
    key = "sk-gastown-test-0123456789abcdef0123"
    if name == "claude":
        # onboarding done and this key approved, as after a person's first run
        (home / ".claude.json").write_text(json.dumps(
            {"hasCompletedOnboarding": True, "customApiKeyResponses": {"approved": [key[-20:]]}}))
        return {"ANTHROPIC_API_KEY": key}
    if name == "codex":
        (home / ".codex").mkdir()
        (home / ".codex" / "auth.json").write_text(json.dumps({"OPENAI_API_KEY": key}))
        return {"CODEX_HOME": str(home / ".codex")}
    if name == "gemini":
        (home / ".gemini").mkdir()
        (home / ".gemini" / "settings.json").write_text(
            '{"security": {"auth": {"selectedType": "gemini-api-key"}}}')
        return {"GEMINI_API_KEY": key}
    if name == "aider":
        return {"OPENAI_API_KEY": key}
    return {}  # opencode starts on its free models


class Session:
    """One program under tmux on a private socket; every process it starts is marked.

    The mark is a variable in the environment; a daemon that a program starts with
    an environment of its own making (codex's app-server) is known by its HOME,
    a directory of this test's own.
    """

    def __init__(self, tmp: Path) -> None:
        self.socket = str(tmp / "tmux.sock")
        self.mark = f"gastown-cli-test-{uuid.uuid4().hex}"
        self.home = ""

    def tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-S", self.socket, "-f", "/dev/null", *args],
                              capture_output=True, text=True, timeout=30, check=False)

    def start(self, cwd: Path, env: dict[str, str], argv: list[str]) -> None:
        self.home = env["HOME"]
        pairs = [f"{k}={v}" for k, v in {**env, "GASTOWN_CLI_TEST": self.mark}.items()]
        proc = self.tmux("new-session", "-d", "-x", "200", "-y", "50", "-c", str(cwd),
                         "env", "-i", *pairs, *argv)
        assert proc.returncode == 0, proc.stderr

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "0").stdout

    def alive(self) -> bool:
        out = self.tmux("display-message", "-p", "-t", "0", "#{pane_dead}")
        return out.returncode == 0 and out.stdout.strip() == "0"

    def processes(self) -> list[int]:
        """Every live process that carries this session's mark in its environment."""
        pids = []
        needles = {f"GASTOWN_CLI_TEST={self.mark}".encode(), f"HOME={self.home}".encode()}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as fh:
                    environ = fh.read()
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    state = fh.read().rsplit(b")", 1)[1].split()[0]
            except OSError:
                continue
            if needles & set(environ.split(b"\0")) and state != b"Z":
                pids.append(int(entry))
        return pids

    def stop(self) -> None:
        self.tmux("kill-server")

    def reap(self) -> None:
        """Whatever a failed test left behind."""
        self.stop()
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    s = Session(tmp_path)
    yield s
    s.reap()


def _worktree(tmp: Path) -> Path:
    """A fresh worktree of a bare clone, as ``gt rig add`` and ``gt sling`` make them."""
    src = make_repo(tmp / "src")
    git(tmp, "clone", "-q", "--bare", str(src), str(tmp / "rig.git"))
    git(tmp / "rig.git", "worktree", "add", "-q", "-b", "w1/work", str(tmp / "w1"))
    return tmp / "w1"


def _fake_gt(tmp: Path) -> tuple[Path, Path]:
    """A ``gt`` that records how a hook called it and answers as the real one does."""
    calls = tmp / "gt-calls"
    gt = tmp / "bin" / "gt"
    gt.parent.mkdir()
    gt.write_text("#!/bin/sh\n"
                  f"echo \"$*\" >> '{calls}'\n"
                  "case \" $* \" in\n"
                  f"  *' --hook-json '*) echo '{HOOK_ANSWER}' ;;\n"
                  "  *) echo 'gastown test prime' ;;\n"
                  "esac\n")
    gt.chmod(0o755)
    return gt, calls


def _wait(what: str, session: Session, check: object, timeout: float = STARTUP_S) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = session.screen()
        blocker = BLOCKERS.search(screen)
        assert blocker is None, f"waiting for {what}: {blocker.group(0)!r} on screen:\n{screen}"
        if callable(check) and check(screen):
            return screen
        assert session.alive(), f"waiting for {what}: the program ended:\n{screen}"
        time.sleep(0.5)
    raise AssertionError(f"no {what} within {timeout:.0f}s; the screen:\n{screen}")


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_a_session_reaches_the_program_screen_and_stops_clean(
        installed: dict[str, str], name: str, tmp_path: Path, session: Session,
        monkeypatch: pytest.MonkeyPatch) -> None:
    _program(installed, name)
    preset = preset_of(load_presets(), name)
    home = tmp_path / "home"
    home.mkdir()
    keys = _seed_home(name, home)
    worktree = _worktree(tmp_path)
    gt, calls = _fake_gt(tmp_path)
    monkeypatch.setenv("CODEX_HOME", str(home / ".codex"))  # where gt setup trusts a worktree
    setup_files(preset, str(worktree), str(gt))
    prompt = beacon("app/worker/w1", "w1")
    argv = [sys.executable, "-m", "gastown.town.launch", str(tmp_path / "w1.exit"), "--",
            *agent_argv(preset, None, None, prompt)]
    env = {"HOME": str(home), "PATH": _path(installed), "TERM": "xterm-256color",
           "LANG": "C.UTF-8", "PYTHONPATH": str(ROOT / "src"), **preset.env_dict(), **keys}
    session.start(worktree, env, argv)

    assert preset.ready, f"preset {name} has no ready pattern to tell its screen by"
    ready = re.compile(preset.ready, re.MULTILINE)
    _wait(f"{name}'s own screen ({preset.ready!r})", session,
          lambda screen: ready.search("\n".join(screen.rstrip("\n").splitlines()[-20:])))
    if preset.prompt in ("arg", "flag"):
        # the program took the first prompt: past every dialog that would hold it back
        _wait(f"{name} to show the first prompt it was given", session,
              lambda screen: "You are app/worker/w1" in screen)
    if name in HOOKED:
        _wait(f"{name}'s session-start hook (gt prime --hook)", session,
              lambda _screen: calls.exists() and "prime --hook" in calls.read_text())
    assert git(worktree, "status", "--porcelain").strip() == "", (
        f"{name} left files for the agent's commits")

    assert session.processes(), "the session's processes carry its mark"
    session.stop()
    deadline = time.monotonic() + 20
    while session.processes() and time.monotonic() < deadline:
        time.sleep(0.2)
    left = session.processes()
    assert not left, f"{name}: processes outlive the session: " + "; ".join(
        Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        for pid in left if Path(f"/proc/{pid}/cmdline").exists())
