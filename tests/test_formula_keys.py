"""Formula keys that real formula files use: squash, review_only, parallel, ralph/retry, extends.

The formulas here are written for the purpose (the shapes real gastown/gascity
formulas use); the real third-party files in ``../shared/formulas`` are read in
place.  The check loop runs real check programs in a real town folder with a
real ledger, through the controller's dispatcher.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from agents.controlkit import running
from agents.townkit import wait_for
from gastown import Ledger
from gastown.chemistry import api
from gastown.chemistry.api import pour_with_steps
from gastown.controller.checks import run_check_program, run_checks
from gastown.demo.sample import write_sample
from gastown.errors import FormulaError
from gastown.ledger.query import Filter
from gastown.town.config import append_table
from gastown.town.core import Town, init_town
from gastown.town.mail import inbox
from gastown.town.rigs import add_rig
from gastown.town.slinging import sling


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def bd(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    env["BD_ACTOR"] = "tester"
    env["XDG_CONFIG_HOME"] = str(cwd / ".config")
    for var in ("BD_DB", "BEADS_DB", "GT_TOWN", "GT_FORMULA_PATH"):
        env.pop(var, None)
    return subprocess.run(["bd", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60)


def refused(tmp_path: Path, text: str, says: str) -> str:
    path = write(tmp_path, "f.formula.toml", text)
    proc = bd(tmp_path, "cook", "--dry-run", str(path))
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 8 and len(lines) == 1, proc.stderr
    assert says in lines[0] and str(path) in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------ squash

SQUASHED = """formula = "tidy"
description = "A patrol that leaves a digest"
[squash]
trigger = "on_complete"
template_type = "work"
include_metrics = true
[[steps]]
id = "scan"
title = "Scan"
[[steps]]
id = "report"
title = "Report"
needs = ["scan"]
"""


def _close_all(led: Ledger, ids: dict[str, str], order: list[str]) -> None:
    for sid in order:
        led.close_bead(ids[sid])


def test_squash_on_complete_condenses_a_finished_mol(ledger: Ledger, tmp_path: Path) -> None:
    path = write(tmp_path, "tidy.formula.toml", SQUASHED)
    root, ids = pour_with_steps(ledger, str(path))
    assert root["metadata"]["squash"] == {"trigger": "on_complete", "include_metrics": True,
                                          "template_type": "work"}
    _close_all(ledger, ids, ["scan", "report"])
    digest = ledger.get(root["id"])
    assert digest["status"] == "closed" and "digest" in digest["labels"]
    record = digest["metadata"]["digest"]
    assert record["trigger"] == "on_complete" and record["template_type"] == "work"
    assert record["metrics"]["steps"] == 2 and record["metrics"]["closed"] == 2
    assert "2/2 steps closed" in record["summary"]
    assert all(ledger.get(b)["status"] == "closed" for b in ids.values()), "a mol keeps steps"


def test_squash_on_complete_for_a_wisp_from_the_command_line(tmp_path: Path) -> None:
    assert bd(tmp_path, "init", "--prefix", "w").returncode == 0
    path = write(tmp_path, "tidy.formula.toml", SQUASHED)
    proc = bd(tmp_path, "wisp", str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    root = json.loads(proc.stdout)
    steps = root["metadata"]["steps"]
    assert bd(tmp_path, "close", steps["scan"]).returncode == 0
    last = bd(tmp_path, "close", steps["report"], "--json")
    assert last.returncode == 0, last.stderr
    shown = json.loads(bd(tmp_path, "show", root["id"], "--json").stdout)
    shown = shown[0] if isinstance(shown, list) else shown
    assert "digest" in shown["labels"] and not shown.get("ephemeral")
    assert shown["metadata"]["digest"]["phase"] == "vapor"
    gone = bd(tmp_path, "show", steps["scan"])
    assert gone.returncode == 3, "a wisp's steps vanish into its digest"


def test_squash_manual_leaves_the_mol_alone(ledger: Ledger, tmp_path: Path) -> None:
    path = write(tmp_path, "m.formula.toml", SQUASHED.replace('"on_complete"', '"manual"'))
    root, ids = pour_with_steps(ledger, str(path))
    _close_all(ledger, ids, ["scan", "report"])
    assert "digest" not in (ledger.get(root["id"]).get("labels") or [])


@pytest.mark.parametrize(("table", "says"), [
    ('[squash]\ntrigger = "hourly"\n', "squash: key 'trigger': 'hourly' is not supported"),
    ('[squash]\ninclude_metrics = "yes"\n', "squash: key 'include_metrics' must be true"),
    ('[squash]\nshrink = 1\n', "squash: unknown key 'shrink'"),
    ('review_only = "yes"\n', "key 'review_only' must be true or false"),
])
def test_bad_squash_and_review_only_are_one_line(tmp_path: Path, table: str, says: str) -> None:
    refused(tmp_path, f'formula = "f"\n{table}[[steps]]\nid = "a"\ntitle = "A"\n', says)


def test_review_only_is_kept_on_the_proto_and_the_mol(ledger: Ledger, tmp_path: Path) -> None:
    path = write(tmp_path, "r.formula.toml",
                 'review_only = true\nformula = "r"\n[[steps]]\nid = "a"\ntitle = "Read"\n')
    view = api.cook(ledger, str(path))
    assert view["review_only"] is True
    root, _ = pour_with_steps(ledger, "r")  # from the stored proto
    assert root["metadata"]["review_only"] is True


# ------------------------------------------------------------------ parallel

PARALLEL = """formula = "boot"
[[steps]]
id = "deacon"
title = "Start the deacon"
[[steps]]
id = "witnesses"
title = "Ensure witnesses"
type = "parallel"
needs = ["deacon"]
[[steps.children]]
id = "w1"
title = "Witness one"
[[steps.children]]
id = "w2"
title = "Witness two"
[[steps]]
id = "report"
title = "Report"
needs = ["witnesses"]
"""


def test_parallel_container_runs_children_side_by_side(ledger: Ledger, tmp_path: Path) -> None:
    path = write(tmp_path, "boot.formula.toml", PARALLEL)
    root, ids = pour_with_steps(ledger, str(path))
    container = ledger.get(ids["witnesses"])
    assert "parallel" in (container.get("labels") or [])
    ledger.close_bead(ids["deacon"])
    ready = {b["id"] for b in ledger.ready(Filter(mol=root["id"]))}
    assert ready == {ids["w1"], ids["w2"]}, "both children at once"
    ledger.close_bead(ids["w2"])
    assert ledger.get(ids["witnesses"])["status"] != "closed"
    ledger.close_bead(ids["w1"])
    assert ledger.get(ids["witnesses"])["status"] == "closed", "done when all children are"
    assert {b["id"] for b in ledger.ready(Filter(mol=root["id"]))} == {ids["report"]}


def test_parallel_without_children_is_refused(tmp_path: Path) -> None:
    refused(tmp_path, 'formula = "p"\n[[steps]]\nid = "a"\ntitle = "A"\ntype = "parallel"\n',
            "step 'a': key 'type': a \"parallel\" step is a container")


# ------------------------------------------------------------------ extends by declared name


def test_extends_finds_a_parent_by_its_declared_name(tmp_path: Path) -> None:
    write(tmp_path, "base-file.formula.toml",
          'formula = "mol-real-base"\n[[steps]]\nid = "setup"\ntitle = "Set up"\n')
    # a file *called* like the parent that declares another name must not be taken
    write(tmp_path, "mol-real-base.formula.toml",
          'formula = "impostor"\n[[steps]]\nid = "wrong"\ntitle = "Wrong"\n')
    child = write(tmp_path, "child.formula.toml",
                  'formula = "child"\nextends = ["mol-real-base"]\n'
                  '[[steps]]\nid = "work"\ntitle = "Work"\nneeds = ["setup"]\n')
    bp = api.compile_ref(str(child), [str(tmp_path)])
    assert [s.id for s in bp.all_steps()] == ["setup", "work"]
    # a parent that declares no name is still found by its file name
    write(tmp_path, "plain.formula.toml", '[[steps]]\nid = "a"\ntitle = "A"\n')
    other = write(tmp_path, "c.formula.toml", 'formula = "c"\nextends = ["plain"]\n')
    assert [s.id for s in api.compile_ref(str(other), [str(tmp_path)]).all_steps()] == ["a"]


# ------------------------------------------------------------------ ralph / retry keys

RALPH = """formula = "verified"
[[steps]]
id = "build"
title = "Build it"
[steps.ralph]
max_attempts = {attempts}
[steps.ralph.check]
mode = "exec"
path = "{path}"
timeout = "{timeout}"
[steps.retry]
max_attempts = 2
on_exhausted = "{on_exhausted}"
[[steps]]
id = "ship"
title = "Ship it"
needs = ["build"]
"""


def ralph(attempts: int = 3, path: str = "check.sh", timeout: str = "20s",
          on_exhausted: str = "hard_fail") -> str:
    return RALPH.format(attempts=attempts, path=path, timeout=timeout,
                        on_exhausted=on_exhausted)


def test_ralph_and_retry_cook_into_the_proto(ledger: Ledger, tmp_path: Path) -> None:
    path = write(tmp_path, "verified.formula.toml", ralph(timeout="1m30s"))
    view = api.cook(ledger, str(path))
    build = next(s for s in view["steps"] if s["step"] == "build")
    assert build["check"] == {"mode": "exec", "path": "check.sh", "timeout": 90.0,
                              "max_attempts": 3}
    assert build["retry"] == {"max_attempts": 2, "on_exhausted": "hard_fail"}
    root, ids = pour_with_steps(ledger, "verified")  # the proto keeps them
    assert ledger.get(ids["build"])["metadata"]["check"]["path"] == "check.sh"


@pytest.mark.parametrize(("text", "says"), [
    (ralph(path="/bin/true"), "ralph.check: key 'path': '/bin/true' must be a relative path"),
    (ralph(path="../../x.sh"), "ralph.check: key 'path': '../../x.sh' must be a relative"),
    (ralph(timeout="forever"), "ralph.check: key 'timeout' must be a duration"),
    (ralph(timeout="2h"), "ralph.check: key 'timeout' must be a duration"),
    (ralph(attempts=0), "ralph: key 'max_attempts' must be an integer 1-100"),
    (ralph(on_exhausted="shrug"), "retry: key 'on_exhausted': 'shrug' is not one of"),
    (ralph().replace('mode = "exec"', 'mode = "shell"'),
     "ralph.check: key 'mode': 'shell' is not supported"),
    (ralph().replace('mode = "exec"', 'mode = "exec"\nargs = ["-x"]'),
     "ralph.check: unknown key 'args'"),
    (ralph().replace("[steps.ralph.check]\n", "[steps.ralph.nope]\n"),
     "ralph: unknown key 'nope'"),
    ('formula = "x"\n[[steps]]\nid = "a"\ntitle = "A"\n[steps.ralph]\nmax_attempts = 2\n',
     "step 'a': ralph: key 'check' is required"),
])
def test_bad_ralph_and_retry_keys_are_one_line(tmp_path: Path, text: str, says: str) -> None:
    line = refused(tmp_path, text, says)
    assert "step '" in line


# ------------------------------------------------------------------ the check loop


def make_town(tmp_path: Path, escalate_to: str | None = "boss") -> Town:
    town = init_town(str(tmp_path / "town"), name="t", prefix="t", actor="tester")
    if escalate_to:
        text = Path(town.config_path).read_text()
        text = text.replace("[town]\n", f'[town]\nescalate_to = "{escalate_to}"\n', 1)
        Path(town.config_path).write_text(text)
    for name in ("ada", "boss"):
        append_table(town.config_path, f"agents.{name}",
                     {"role": "worker", "preset": "command", "command": ["true"]})
    town.reload()
    return town


def script(town: Town, name: str, body: str) -> Path:
    path = Path(town.root) / name
    path.write_text("#!/bin/sh\n" + body, encoding="utf-8")
    path.chmod(0o755)
    return path


class Mol:
    """A poured molecule held by ``ada``, worked on through the ledger as ada."""

    def __init__(self, town: Town, text: str) -> None:
        self.town = town
        path = write(Path(town.root), "verified.formula.toml", text)
        self.led = Ledger.open(town.db_url(), actor="tester")
        root, self.ids = pour_with_steps(self.led, str(path))
        self.root = root["id"]
        self.ada = town.actor_of(town.agent("ada"))
        self.led.update(self.root, assignee=self.ada)
        self.me = Ledger.open(town.db_url(), actor=self.ada)

    def close(self, sid: str) -> dict[str, Any]:
        self.me.close_bead(self.ids[sid])
        ev = [e for e in self.me.events(bead_id=self.ids[sid]) if e["type"] == "bead.closed"]
        return ev[-1]

    def ready(self) -> set[str]:
        return {b["id"] for b in self.led.ready(Filter(mol=self.root))}

    def check(self, sid: str) -> dict[str, Any]:
        results = run_checks(self.town, self.led, [self.close(sid)], "t/controller")
        assert len(results) == 1, results
        return results[0]


def test_a_failing_check_sends_the_step_back_then_passes(tmp_path: Path) -> None:
    town = make_town(tmp_path)
    script(town, "check.sh", 'n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count\n'
                             'echo "ran $GT_CHECK_STEP try $GT_CHECK_ATTEMPT"\n'
                             'echo "tests: $n run, FAILED"; [ "$n" -ge 2 ]\n')
    mol = Mol(town, ralph())
    gate = mol.led.get(mol.ids["build"])["metadata"]["check_gate"]
    assert mol.ready() == {mol.ids["build"]}
    first = mol.check("build")
    assert first["action"] == "retry" and first["attempt"] == 1
    build = mol.led.get(mol.ids["build"])
    assert build["status"] == "open", "back to the agent"
    note = mol.led.comments(mol.ids["build"])[-1]["text"]
    assert "attempt 1 of 3" in note and "tests: 1 run, FAILED" in note
    assert f"ran {mol.ids['build']} try 1" in note, "the step and attempt reach the program"
    assert mol.ids["ship"] not in mol.ready(), "the step does not count as done"
    second = mol.check("build")
    assert second["action"] == "passed" and second["attempt"] == 2
    assert mol.led.get(gate)["status"] == "closed"
    assert mol.ready() == {mol.ids["ship"]}
    mol.close("ship")
    assert mol.led.get(mol.root)["status"] == "closed", "the gate does not hold the root"


def test_exhausted_attempts_escalate_to_the_owner(tmp_path: Path) -> None:
    town = make_town(tmp_path)
    script(town, "check.sh", "echo 'lint: 3 errors' >&2; exit 1\n")
    mol = Mol(town, ralph(attempts=2))
    assert mol.check("build")["action"] == "retry"
    last = mol.check("build")
    assert last["action"] == "escalated"
    build = mol.led.get(mol.ids["build"])
    assert build["status"] == "blocked" and "escalated" in build["labels"]
    assert "No attempts left: escalated" in mol.led.comments(mol.ids["build"])[-1]["text"]
    boss = town.actor_of(town.agent("boss"))
    mail = inbox(mol.led, boss)
    assert len(mail) == 1 and mail[0]["title"].startswith("Escalated: Build it")
    assert "lint: 3 errors" in mail[0]["description"]
    assert f"{mol.ids['build']} (in {mol.root})" in mail[0]["description"]
    assert mol.ready() == set()


def test_soft_fail_moves_on_after_the_last_attempt(tmp_path: Path) -> None:
    town = make_town(tmp_path)
    script(town, "check.sh", "exit 3\n")
    mol = Mol(town, ralph(attempts=1, on_exhausted="soft_fail"))
    assert mol.check("build")["action"] == "soft_fail"
    assert mol.ready() == {mol.ids["ship"]}


def _gone(town: Town, why: str) -> None:
    """The process whose pid the check wrote to ``child.pid`` ends within 10 s."""
    pid = int((Path(town.root) / "child.pid").read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(why)


def test_check_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    town = make_town(tmp_path)
    script(town, "check.sh", "sleep 60 &\necho $! > child.pid\nwait\n")
    mol = Mol(town, ralph(timeout="1s"))
    started = time.monotonic()
    result = mol.check("build")
    assert time.monotonic() - started < 15
    assert result["action"] == "retry" and result["result"] == "timed out after 1s"
    _gone(town, "the check's own child outlived the timeout")


def test_a_passing_checks_background_children_do_not_outlive_it(tmp_path: Path) -> None:
    town = make_town(tmp_path)
    script(town, "check.sh", "sleep 60 &\necho $! > child.pid\nexit 0\n")
    mol = Mol(town, ralph())
    assert mol.check("build")["action"] == "passed"
    _gone(town, "the check's background child outlived it")


def test_check_path_is_an_argument_vector_never_a_shell(tmp_path: Path) -> None:
    town = make_town(tmp_path)
    mol = Mol(town, ralph(path="check.sh;touch pwned"))
    result = mol.check("build")
    assert result["action"] == "retry" and "not found in the worktree" in result["result"]
    assert not (Path(town.root) / "pwned").exists()
    outside = tmp_path / "outside.sh"
    outside.write_text("#!/bin/sh\ntouch escaped\n")
    outside.chmod(0o755)
    os.symlink(outside, Path(town.root) / "link.sh")
    res = run_check_program(town.root, "link.sh", 5.0)
    assert not res.ok and "not found in the worktree" in res.detail
    assert not (Path(town.root) / "escaped").exists()


def test_the_dispatcher_runs_the_check_when_the_step_closes(tmp_path: Path) -> None:
    from gastown.controller.dispatch import Dispatcher
    from gastown.town.sessions import Sessions

    town = make_town(tmp_path)
    script(town, "check.sh", "exit 0\n")
    mol = Mol(town, ralph())
    event = mol.close("build")
    dispatcher = Dispatcher(town, mol.led, Sessions(town), "t/controller", 1)
    try:
        dispatcher.on_closed(event)
        dispatcher.flush()
    finally:
        dispatcher.close()
    gate = mol.led.get(mol.ids["build"])["metadata"]["check_gate"]
    assert mol.led.get(gate)["status"] == "closed"
    assert mol.ready() == {mol.ids["ship"]}


def test_compile_check_keys_without_a_ledger(tmp_path: Path) -> None:
    path = write(tmp_path, "v.formula.toml", ralph())
    bp = api.compile_ref(str(path), [str(tmp_path)])
    step = bp.all_steps()[0]
    assert step.check is not None and step.check.max_attempts == 3
    with pytest.raises(FormulaError, match="key 'type'"):
        write(tmp_path, "bad.formula.toml",
              'formula = "bad"\n[[steps]]\nid = "a"\ntitle = "A"\ntype = "parallel"\n')
        api.compile_ref(str(tmp_path / "bad.formula.toml"), [str(tmp_path)])


def test_go_template_words_are_not_variables(ledger: Ledger, tmp_path: Path) -> None:
    path = write(tmp_path, "g.formula.toml",
                 'formula = "g"\n[vars.who]\ndefault = "ops"\n[[steps]]\nid = "report"\n'
                 'title = "Report"\ndescription = "{{if .ok}}fine{{else}}mail {{who}}{{end}}"\n')
    root, ids = pour_with_steps(ledger, str(path))  # no "missing variable: else"
    assert ledger.get(ids["report"])["description"] == "{{if .ok}}fine{{else}}mail ops{{end}}"


def test_a_conditional_gate_keeps_its_condition(ledger: Ledger, tmp_path: Path) -> None:
    path = write(tmp_path, "c.formula.toml",
                 'formula = "c"\n[[steps]]\nid = "ask"\ntitle = "Ask"\n[[steps]]\nid = "kill"\n'
                 'title = "Kill"\nneeds = ["ask"]\n'
                 'gate = { type = "conditional", condition = "no_response" }\n')
    root, ids = pour_with_steps(ledger, str(path))
    gate_id = root["metadata"]["gates"]["kill"]
    assert ledger.get(gate_id)["metadata"]["gate"] == {"type": "conditional",
                                                       "condition": "no_response"}


def test_without_a_holder_the_check_gate_waits_for_a_person(tmp_path: Path) -> None:
    town = make_town(tmp_path)
    script(town, "check.sh", "exit 1\n")
    mol = Mol(town, ralph())
    mol.led.update(mol.root, assignee="")
    assert run_checks(town, mol.led, [mol.close("build")], "t/controller") == []
    assert mol.led.get(mol.ids["build"])["status"] == "closed", "no attempt was spent"
    gate = mol.led.get(mol.ids["build"])["metadata"]["check_gate"]
    mol.led.close_bead(gate, reason="checked by hand", force=True)
    assert mol.ready() == {mol.ids["ship"]}


# ------------------------------------------------------------------ through the controller

POLLING_AGENT = r'''
import json, subprocess, sys, time
def run(*a):
    return subprocess.run(list(a), capture_output=True, text=True, check=True).stdout
deadline = time.time() + 90
root = None
while time.time() < deadline:
    hook = json.loads(run("gt", "hook", "--json") or "null")
    if hook:
        root = hook["id"]
        break
    time.sleep(0.2)
while root and time.time() < deadline:
    if json.loads(run("bd", "show", root, "--json"))[0]["status"] == "closed":
        break
    for step in json.loads(run("bd", "ready", "--mol", root, "--json")):
        run("bd", "update", step["id"], "--claim")
        run("bd", "close", step["id"])
    time.sleep(0.2)
'''


def test_the_running_controller_sends_a_failed_step_back_until_its_check_passes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GT_TOWN", "GT_AGENT", "GT_RIG", "BD_DB", "BEADS_DB", "BD_ACTOR"):
        monkeypatch.delenv(var, raising=False)
    sample = Path(write_sample(str(tmp_path / "sample")))
    check = sample / "ci" / "verify.sh"
    check.parent.mkdir()
    # fails the first time (leaving a marker in the worktree), passes the second
    check.write_text("#!/bin/sh\nif [ -e .verified-once ]; then echo ok; exit 0; fi\n"
                     "touch .verified-once; echo 'verify: 1 test FAILED'; exit 1\n")
    check.chmod(0o755)
    subprocess.run(["git", "add", "ci/verify.sh"], cwd=sample, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit",
                    "-qm", "verify"], cwd=sample, check=True)
    town = init_town(str(tmp_path / "town"), name="t", prefix="t", provider="subprocess",
                     actor="tester")
    add_rig(town, "app", str(sample), actor="tester")
    agent_script = tmp_path / "agent.py"
    agent_script.write_text(POLLING_AGENT)
    append_table(town.config_path, "agents.ada",
                 {"rig": "app", "role": "worker", "preset": "command",
                  "command": [sys.executable, str(agent_script)]})
    town.reload()
    formulas = Path(town.root) / ".beads" / "formulas"
    formulas.mkdir(parents=True, exist_ok=True)
    write(formulas, "verified.formula.toml", ralph(path="ci/verify.sh"))
    with running(town):
        root = sling(town, "verified", "ada", nudge=False).id
        led = Ledger.open(town.db_url(), actor="tester")
        wait_for(lambda: led.get(root)["status"] == "closed", 90, what="the molecule to finish")
        kinds = [e["type"] for e in led.events(bead_id=f"{root}.1") if e["type"].startswith(
            "check.")]
        assert kinds == ["check.retry", "check.passed"]
        notes = [c["text"] for c in led.comments(f"{root}.1")]
        assert any("verify: 1 test FAILED" in n for n in notes), notes
        closes = [e for e in led.events(bead_id=f"{root}.1") if e["type"] == "bead.closed"]
        assert len(closes) == 2, "the agent closed the step twice"
