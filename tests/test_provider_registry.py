"""Session providers are found by name through the ``gastown.providers`` entry points.

The shipped ``tmux`` and ``subprocess`` providers are registered like any plugin;
each provider reads its own ``[providers.NAME]`` table; an unknown name is one
line naming it and the known ones.  The plugin here is a real distribution (a
``.dist-info`` folder with ``entry_points.txt``) found on ``PYTHONPATH`` by the
real ``gt``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from agents.townkit import clean_env, gt, sleeper, wait_for
from gastown.errors import ValidationError
from gastown.town.core import Town
from gastown.town.providers import make_provider
from gastown.town.providers.tmux import socket_path

pytest_plugins = ("agents.fixtures",)

SRC = Path(__file__).resolve().parent.parent / "src"

PLUGIN = '''
from typing import Any

from gastown.config.values import known, string
from gastown.town.providers.subproc import SubprocessProvider


class LabelledProvider(SubprocessProvider):
    """Headless sessions that carry a label from [providers.labelled] into the agent."""

    kind = "labelled"

    @classmethod
    def parse_options(cls, options: dict[str, Any], where: str) -> dict[str, Any]:
        known(options, {"label"}, where)
        return {"label": string(options, "label", where, "unset")}

    def __init__(self, gt_dir: str, label: str = "unset") -> None:
        super().__init__(gt_dir)
        self.label = label

    def start(self, spec):
        spec.env["PLUGIN_LABEL"] = self.label
        super().start(spec)
'''

WRITE_LABEL = ("import os, time; open('label.txt', 'w').write(os.environ['PLUGIN_LABEL']); "
               "time.sleep(300)")


def _plugin(tmp_path: Path) -> Path:
    """A one-module distribution registering ``labelled`` in ``gastown.providers``."""
    site = tmp_path / "plugin-site"
    info = site / "gtlabelled-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: gtlabelled\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[gastown.providers]\nlabelled = gtlabelled:LabelledProvider\n")
    (site / "gtlabelled.py").write_text(PLUGIN)
    return site


def _append(town: Town, text: str) -> None:
    """Add raw TOML to town.toml (a name only the plugin knows cannot go through append_table,
    which validates in this process, where the plugin is not installed)."""
    with open(town.config_path, "a", encoding="utf-8") as fh:
        fh.write("\n" + text)


def _agent_toml(name: str, command: list[str], provider: str) -> str:
    return (f'[agents.{name}]\nrig = "app"\nrole = "worker"\npreset = "command"\n'
            f"command = {json.dumps(command)}\nprovider = \"{provider}\"\n")


def test_the_shipped_providers_are_registered_as_entry_points() -> None:
    found = {ep.name: ep.value for ep in metadata.entry_points(group="gastown.providers")}
    assert found["tmux"] == "gastown.town.providers.tmux:TmuxProvider"
    assert found["subprocess"] == "gastown.town.providers.subproc:SubprocessProvider"


def test_a_plugin_provider_runs_an_agent_with_its_own_table(town: Town, tmp_path: Path) -> None:
    site = _plugin(tmp_path)
    _append(town, _agent_toml("lab", [sys.executable, "-c", WRITE_LABEL], "labelled")
            + '\n[providers.labelled]\nlabel = "from-town-toml"\n')
    env = clean_env(PYTHONPATH=str(site))
    shown = json.loads(gt(town, "config", "--json", "show", env=env).stdout)
    assert shown
    gt(town, "session", "start", "lab", env=env)
    try:
        status = json.loads(gt(town, "session", "--json", "status", "lab", env=env).stdout)
        assert status["provider"] == "labelled" and status["state"] == "running"
        label = Path(status["workdir"]) / "label.txt"
        assert wait_for(lambda: label.exists() and label.read_text(), 20,
                        what="the agent to write its label") == "from-town-toml"
    finally:
        gt(town, "session", "stop", "lab", env=env, check=False)
    # without the plugin installed the same town.toml names an unknown provider
    proc = gt(town, "config", "show", check=False)
    assert proc.returncode == 5, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "unknown provider 'labelled' (known: subprocess, tmux)" in proc.stderr


def test_an_unknown_provider_is_one_line_naming_the_known_ones(town: Town,
                                                               tmp_path: Path) -> None:
    site = _plugin(tmp_path)
    original = Path(town.config_path).read_text()
    for snippet, where in (('[providers.screen]\nx = 1\n', "providers.screen"),
                           (_agent_toml("a", sleeper(), "screen"), "agents.a.provider")):
        Path(town.config_path).write_text(original + "\n" + snippet)
        for extra, known in (({}, "subprocess, tmux"),
                             ({"PYTHONPATH": str(site)}, "labelled, subprocess, tmux")):
            proc = gt(town, "config", "show", check=False, env=clean_env(**extra))
            assert proc.returncode == 5 and "Traceback" not in proc.stderr
            [line] = proc.stderr.splitlines()
            assert f"{where}: unknown provider 'screen' (known: {known})" in line
            assert town.config_path in line


@pytest.mark.parametrize("table, message", [
    ("[providers.tmux]\ncolour = 1\n", r"providers\.tmux: unknown key\(s\) colour "
                                       r"\(known: control, height, width\)"),
    ("[providers.tmux]\nwidth = 3\n", r"providers\.tmux\.width must be an integer from 20"),
    ("[providers.subprocess]\nlog = true\n", r"providers\.subprocess: unknown key\(s\) log "
                                             r"\(known: none\)"),
    ("[providers]\ntmux = 1\n", r"providers\.tmux must be a table"),
])
def test_a_providers_table_is_checked_by_its_provider(town: Town, table: str,
                                                      message: str) -> None:
    Path(town.config_path).write_text(Path(town.config_path).read_text() + "\n" + table)
    with pytest.raises(ValidationError, match=message) as info:
        town.reload()
    assert town.config_path in str(info.value)
    proc = gt(town, "config", "show", check=False)
    assert proc.returncode == 5 and len(proc.stderr.splitlines()) == 1


def test_the_tmux_table_sizes_new_sessions(town: Town) -> None:
    _append(town, _agent_toml("wide", sleeper(), "tmux")
            + "\n[providers.tmux]\nwidth = 91\nheight = 17\n")
    town.reload()
    gt(town, "session", "start", "wide")
    proc = subprocess.run(["tmux", "-S", socket_path(town.gt_dir), "display-message", "-p",
                           "-t", "=wide:", "#{window_width}x#{window_height}"],
                          capture_output=True, text=True, check=False, timeout=15)
    assert proc.stdout.strip() == "91x17", proc.stderr


def test_without_entry_point_metadata_the_shipped_providers_are_used(tmp_path: Path) -> None:
    # a copy of the sources run with -S (no site-packages): no metadata of gastown at all,
    # as in a source checkout that was never installed
    checkout = tmp_path / "checkout"
    shutil.copytree(SRC / "gastown", checkout / "gastown",
                    ignore=shutil.ignore_patterns("__pycache__"))
    code = ("import sys; from importlib import metadata\n"
            "assert not list(metadata.entry_points(group='gastown.providers'))\n"
            "from gastown.config.providers import provider_names\n"
            "from gastown.town.providers import make_provider\n"
            "p = make_provider('subprocess', sys.argv[1])\n"
            "print(provider_names(), type(p).__name__)\n")
    proc = subprocess.run([sys.executable, "-S", "-c", code, str(tmp_path)],
                          capture_output=True, text=True, check=False, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(checkout)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['subprocess', 'tmux'] SubprocessProvider"


def test_make_provider_refuses_an_unknown_name_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        make_provider("screen", str(tmp_path))
    assert str(info.value) == "provider: unknown provider 'screen' (known: subprocess, tmux)"


def test_gt_init_refuses_an_unknown_provider_and_writes_nothing(tmp_path: Path) -> None:
    proc = gt(tmp_path, "init", str(tmp_path / "t"), "--provider", "screen", check=False)
    assert proc.returncode == 5 and "Traceback" not in proc.stderr
    [line] = proc.stderr.splitlines()
    assert "town.provider: unknown provider 'screen' (known: subprocess, tmux)" in line
    assert not (tmp_path / "t").exists()
