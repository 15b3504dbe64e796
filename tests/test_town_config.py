"""Town creation, town.toml validation and editing, presets, roles as data."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from agents.townkit import EMAIL, clean_env, gt, gt_json
from gastown import Ledger
from gastown.errors import ConflictError, NotFoundError, ValidationError
from gastown.town.agents import agent_argv, beacon, load_presets, preset_of
from gastown.town.config import load_config, parse_config, remove_table
from gastown.town.core import Town, init_town
from gastown.town.prime import render_role, role_template

SRC = Path(__file__).resolve().parent.parent / "src" / "gastown"

pytest_plugins = ("agents.fixtures",)


def test_init_creates_a_commented_valid_town(tmp_path: Path) -> None:
    t = init_town(str(tmp_path / "hq"), email=EMAIL, actor="tester")
    root = Path(t.root)
    assert (root / "town.toml").is_file() and (root / ".beads" / "beads.db").is_file()
    assert (root / ".gt" / "logs").is_dir() and (root / "rigs").is_dir()
    text = (root / "town.toml").read_text()
    comments = [ln for ln in text.splitlines() if ln.lstrip().startswith("#")]
    assert len(comments) > 40, "the default town.toml explains itself"
    data = tomllib.loads(text)
    assert data["town"]["name"] == "hq" and data["town"]["email"] == EMAIL
    cfg = parse_config(data, str(root / "town.toml"))
    assert cfg.town.provider == "tmux" and set(cfg.presets) >= {
        "claude", "codex", "gemini", "opencode", "aider", "command"}
    with Ledger.open(str(root / ".beads" / "beads.db")) as led:
        assert led.prefix == "hq"
        assert [e["type"] for e in led.events()][-1] == "town.init"


def test_init_refuses_an_existing_town_and_keeps_an_existing_ledger(tmp_path: Path) -> None:
    led = Ledger.init(str(tmp_path), prefix="old", actor="tester")
    kept = led.create("keep me")
    led.close()
    init_town(str(tmp_path), email=EMAIL)
    with Ledger.open(str(tmp_path / ".beads" / "beads.db")) as again:
        assert again.get(kept["id"])["title"] == "keep me"
    with pytest.raises(ConflictError, match="already a town"):
        init_town(str(tmp_path))


def test_gt_init_on_the_command_line(tmp_path: Path) -> None:
    proc = gt(tmp_path, "init", str(tmp_path / "t2"), "--prefix", "zz", "--provider",
              "subprocess", "--json")
    out = __import__("json").loads(proc.stdout)
    assert out["prefix"] == "zz"
    cfg = load_config(str(tmp_path / "t2" / "town.toml"))
    assert cfg.town.provider == "subprocess" and cfg.town.prefix == "zz"


@pytest.mark.parametrize("snippet, message", [
    ('[agents.a]\nrig = "nope"\nrole = "r"\npreset = "claude"\n', r"agents\.a\.rig: no rig"),
    ('[agents.a]\nrole = "r"\npreset = "vim"\n', r"agents\.a\.preset: unknown preset 'vim'"),
    ('[agents.a]\nrole = "r"\npreset = "command"\n', r"agents\.a\.command is required"),
    ('[agents."bad name"]\nrole = "r"\npreset = "claude"\n', r"invalid agent name"),
    ('[agents.a]\nrole = "r"\npreset = "claude"\ncolour = 1\n', r"unknown key\(s\) colour"),
    ('[pools.p]\nrig = "x"\nrole = "r"\npreset = "claude"\nmax = 0\n', r"pools\.p\.max"),
    ('[town]\nprovider = "screen"\n',
     r"town\.provider: unknown provider 'screen' \(known: subprocess, tmux\)"),
    ('[rigs.a]\nsource = "/x"\n[agents.a]\nrole = "r"\npreset = "claude"\n',
     r"'a' is both a agent and a rig|'a' is both a rig and a agent|both"),
    ('[presets.x]\ncommand = ["x"]\nprompt = "telepathy"\n', r"presets\.x\.prompt"),
])
def test_config_mistakes_are_one_line_naming_file_and_key(tmp_path: Path, snippet: str,
                                                         message: str) -> None:
    path = tmp_path / "town.toml"
    path.write_text(snippet)
    with pytest.raises(ValidationError, match=message) as info:
        load_config(str(path))
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_broken_toml_is_reported_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "town.toml"
    path.write_text("[town\nname=")
    with pytest.raises(ValidationError, match=re.escape(str(path))):
        load_config(str(path))
    with pytest.raises(NotFoundError, match="gt init"):
        load_config(str(tmp_path / "missing.toml"))


def test_agent_add_and_remove_keep_the_files_comments(town: Town) -> None:
    before = Path(town.config_path).read_text()
    gt(town, "agent", "add", "bot", "--rig", "app", "--preset", "command", "--command",
       "python3 -c 'print(\"a b\")' --flag")
    town.reload()
    bot = town.agent("bot")
    # split once like a shell would, at config time; quotes kept the words together
    assert bot.command == ["python3", "-c", 'print("a b")', "--flag"]
    assert bot.role == town.config.town.default_role, "the default role comes from data"
    listed = gt_json(town, "agent", "list")
    assert [a["name"] for a in listed] == ["bot"] and listed[0]["actor"] == "app/worker/bot"
    dup = gt(town, "agent", "add", "bot", "--rig", "app", "--preset", "claude", check=False)
    assert dup.returncode == 4 and "already" in dup.stderr
    gt(town, "agent", "remove", "bot")
    after = Path(town.config_path).read_text()
    assert not re.search(r"^\[agents\.bot\]", after, re.M) and "gt agent add bot" not in after
    for line in before.splitlines():
        if line.startswith("#"):
            assert line in after, f"comment lost: {line}"


def test_remove_table_drops_subtables_only_of_that_name(tmp_path: Path) -> None:
    path = tmp_path / "town.toml"
    path.write_text('# top\n[rigs.app]\nsource = "/a"\n\n[agents.a]\nrole = "r"\n'
                    'preset = "claude"\nrig = "app"\n[agents.a.env]\nX = "1"\n\n'
                    '[agents.ab]\nrole = "r"\npreset = "claude"\n')
    assert remove_table(str(path), "agents.a")
    text = path.read_text()
    assert "[agents.a]" not in text and "[agents.a.env]" not in text and "[agents.ab]" in text
    assert text.startswith("# top")
    assert not remove_table(str(path), "agents.zzz")


def test_config_show_json_lists_roles_from_the_pack(town: Town) -> None:
    data = gt_json(town, "config", "show")
    assert data["town"]["name"] == town.name and "app" in data["rigs"]
    assert set(data["role_templates"]) >= {"coordinator", "worker", "reviewer"}
    assert all(src.startswith("gastown:data/roles/") for src in data["role_templates"].values())


def test_role_templates_are_data_and_a_town_can_replace_them(town: Town) -> None:
    gt(town, "agent", "add", "ada", "--rig", "app", "--preset", "claude", "--role", "poet")
    town.reload()
    with pytest.raises(NotFoundError, match="role 'poet' has no template"):
        role_template(town, "poet")
    roles = Path(town.root) / "roles"
    roles.mkdir()
    (roles / "poet.md").write_text("I am {{actor}} on {{rig}}, writing in {{worktree}}.")
    text = render_role(town, town.agent("ada"), "b")
    assert text == f"I am app/poet/ada on app, writing in {town.workdir(town.agent('ada'))}."


def test_presets_are_data_with_prompt_modes() -> None:
    presets = load_presets()
    claude = preset_of(presets, "claude")
    assert agent_argv(claude, None, None, "go") == ["claude", "--dangerously-skip-permissions",
                                                    "go"]
    gemini = preset_of(presets, "gemini")
    assert agent_argv(gemini, None, [], "go") == ["gemini", "--prompt-interactive", "go"]
    aider = preset_of(presets, "aider")
    assert aider.prompt == "nudge" and "go" not in agent_argv(aider, None, None, "go")
    command = preset_of(presets, "command")
    assert agent_argv(command, ["my", "agent"], None, "go") == ["my", "agent"]
    assert "gt prime" in beacon("app/worker/x", "x") and "app/worker/x" in beacon(
        "app/worker/x", "x")


def test_a_town_can_add_and_override_presets(tmp_path: Path) -> None:
    path = tmp_path / "town.toml"
    path.write_text('[presets.mine]\ncommand = "mycli --auto"\nprompt = "flag"\n'
                    'prompt_flag = "-p"\n[presets.claude]\nargs = []\n')
    cfg = load_config(str(path))
    mine = preset_of(cfg.presets, "mine")
    assert agent_argv(mine, None, None, "hi") == ["mycli", "--auto", "-p", "hi"]
    assert agent_argv(preset_of(cfg.presets, "claude"), None, None, None) == ["claude"]


def test_library_code_names_no_role() -> None:
    """DESIGN §2.2: roles are data; no town or gt code may name one."""
    names = ("mayor", "polecat", "witness", "deacon", "refinery", "coordinator", "reviewer",
             "crew")
    files = (list((SRC / "town").rglob("*.py")) + list((SRC / "config").rglob("*.py"))
             + list((SRC / "cli").glob("gt_*.py")))
    assert len(files) > 10
    for path in files:
        if path.name == "gt_demo.py":
            continue  # not part of the town library (another issue's walkthrough)
        text = path.read_text().lower()
        for name in names:
            assert not re.search(rf"\b{name}s?\b", text), f"{path.name} names the role {name!r}"
    assert '"worker"' not in "".join(p.read_text() for p in files if p.name != "gt_demo.py")


def test_town_is_found_from_env_flag_or_cwd(town: Town, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    deep = Path(town.root) / "rigs" / "app"
    assert Town.find(cwd=str(deep)).root == town.root
    monkeypatch.setenv("GT_TOWN", town.root)
    assert Town.find(cwd="/").root == town.root
    monkeypatch.delenv("GT_TOWN")
    with pytest.raises(NotFoundError, match="no town found"):
        Town.find(cwd=str(tmp_path / "src"))
    proc = gt(tmp_path / "src", "status", check=False, env=clean_env())
    assert proc.returncode == 3 and "not a town" in proc.stderr


def test_town_option_before_the_command(town: Town) -> None:
    import subprocess

    from agents.townkit import BIN

    proc = subprocess.run([str(BIN / "gt"), "--town", town.root, "--json", "config", "path"],
                          capture_output=True, text=True, env=clean_env(), cwd="/")
    assert proc.returncode == 0, proc.stderr
    assert __import__("json").loads(proc.stdout)["path"] == town.config_path


def test_loading_a_town_imports_a_provider_only_for_its_options(tmp_path: Path) -> None:
    """``gt prime``/``gt hook`` load the town and start no session: no provider is
    imported unless a ``[providers.NAME]`` table must be validated by it."""
    import subprocess
    import sys

    init_town(str(tmp_path / "t"), name="t", email=EMAIL)
    probe = ("import sys\nfrom gastown.town.core import Town\nTown(sys.argv[1])\n"
             "print(sorted(m for m in sys.modules if m.startswith('gastown.town.providers')))\n")

    def loaded() -> str:
        proc = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "t")],
                              capture_output=True, text=True, timeout=60, check=True)
        return proc.stdout.strip()

    assert loaded() == "[]"
    with open(tmp_path / "t" / "town.toml", "a", encoding="utf-8") as fh:
        fh.write("\n[providers.tmux]\nwidth = 91\n")
    assert "'gastown.town.providers.tmux'" in loaded()
    with open(tmp_path / "t" / "town.toml", "a", encoding="utf-8") as fh:
        fh.write("height = 3\n")
    with pytest.raises(ValidationError, match=r"providers\.tmux\.height"):
        Town(str(tmp_path / "t"))
