"""One ``{{var}}`` template function, one ``--var`` parser, ``bd update`` in the library.

A placeholder means the same in a formula, a role prompt and a session's
beacon (:func:`gastown.chemistry.vars.substitute`); ``gt sling --var`` and ``bd
pour --var`` share :func:`gastown.chemistry.vars.parse_var_args`.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from agents.townkit import BIN, add_agent, clean_env, gt, sleeper
from gastown.chemistry.api import pour
from gastown.ledger.update import BeadUpdate, appended, apply_update, diff_labels, update_beads
from gastown.town.agents import beacon
from gastown.town.core import Town
from gastown.town.prime import render_role

pytest_plugins = ("agents.fixtures",)


def _bd(cwd: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "bd"), *args], cwd=cwd, env=clean_env(),
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("bad", ["bad name=x", "1st=x", "=x", "novalue", "a.b=x"])
def test_gt_sling_refuses_a_bad_var_exactly_as_bd_pour_does(town: Town, bad: str) -> None:
    add_agent(town, "ann", sleeper())
    with town.ledger() as led:
        before = led.last_event_seq()
    poured = _bd(town.root, "pour", "engineer-in-box", "--var", "feature=x", "--var", bad)
    slung = gt(town, "sling", "engineer-in-box", "ann", "--no-nudge", "--var", "feature=x",
               "--var", bad, check=False)
    assert poured.returncode == slung.returncode == 2, (poured.stderr, slung.stderr)
    line = poured.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: invalid --var"), line
    assert slung.stderr.strip().splitlines()[-1].endswith(line.removeprefix("Error: ")), (
        line, slung.stderr)
    assert "Traceback" not in slung.stderr
    with town.ledger() as led:
        assert led.last_event_seq() == before  # nothing written by either


def test_agent_placeholders_mean_the_same_in_a_formula_and_a_role_prompt(town: Town) -> None:
    add_agent(town, "ann", sleeper())
    roles = Path(town.root) / "roles"
    roles.mkdir(exist_ok=True)
    (roles / "worker.md").write_text("I am {{ agent }} ({{actor}}) on {{ rig }}; "
                                     "{{.leg.id}} and {{ unknown }} stay.\n")
    text = render_role(town, town.agent("ann"))
    assert text == "I am ann (app/worker/ann) on app; {{.leg.id}} and {{ unknown }} stay.\n"
    prime = gt(town, "prime", "--agent", "ann").stdout
    assert "I am ann (app/worker/ann) on app" in prime
    # the same placeholder in a formula, filled by the same function
    formula = Path(town.root) / "hello.formula.toml"
    formula.write_text('formula = "hello"\nversion = 1\n[vars.agent]\nrequired = true\n'
                       '[[steps]]\nid = "greet"\ntitle = "Hello {{ agent }}"\n'
                       'description = "{{agent}} says {{.leg.id}}"\n')
    with town.ledger("tester") as led:
        root = pour(led, str(formula), {"agent": "ann"})
        (step,) = [led.get(i) for i in root["metadata"]["steps"].values()]
    assert step["title"] == "Hello ann" and step["description"] == "ann says {{.leg.id}}"
    assert "{{" not in beacon("app/worker/ann", "ann").replace("{{.", "")


def test_bd_update_logic_is_a_library_function(town: Town) -> None:
    assert diff_labels(["a", "b", "c"], ["c", "d", "a"]) == (["b"], ["d"])
    assert appended(None, "x") == "x" and appended("old", "x") == "old\nx"
    with town.ledger("tester") as led:
        one = led.create("one", labels=["a", "b"], notes="first")
        two = led.create("two")
        upd = BeadUpdate({"priority": 1}, append_notes="later", set_labels=["b", "c"],
                         add_labels=["d"], remove_labels=["c"])
        got = update_beads(led, [one["id"], two["id"], one["id"]], upd)
        assert [b["id"] for b in got] == [one["id"], two["id"]]
        assert got[0]["labels"] == ["b", "d"] and got[0]["notes"] == "first\nlater"
        assert got[1]["labels"] == ["b", "d"] and got[1]["notes"] == "later"
        assert all(b["priority"] == 1 for b in got)
        # --notes then --append-notes: the given notes first, then the line
        with led.transaction() as t:
            b = apply_update(t, one["id"], BeadUpdate({"notes": "new"}, append_notes="more"))
        assert b["notes"] == "new\nmore"
        from gastown.errors import UsageError

        with pytest.raises(UsageError, match="--claim"):
            update_beads(led, [two["id"]], BeadUpdate({"status": "open"}, claim=True))


def _flags(prog: str, cwd: str, *args: str) -> set[str]:
    out = subprocess.run([str(BIN / prog), "events", *args, "--help"], cwd=cwd,
                         env=clean_env(), capture_output=True, text=True, timeout=60,
                         check=True).stdout
    return {w.strip("[],") for w in out.split() if w.startswith(("-", "[-"))} - {"-h",
                                                                               "--help"}


def test_bd_events_and_gt_events_take_the_same_flags(town: Town) -> None:
    bd_flags = _flags("bd", town.root)
    gt_flags = _flags("gt", town.root, "--town", town.root)
    wanted = {"--since-seq", "--since", "--tail", "--last", "--type", "--bead", "--limit",
              "--follow", "--interval", "--timeout"}
    assert wanted <= bd_flags and wanted <= gt_flags
    with town.ledger("tester") as led:
        one = led.create("first")
        led.create("second")
        led.update(one["id"], priority=1)
    for prog in ("bd", "gt"):
        for args in (["--bead", one["id"].split("-", 1)[1]], ["--last", "1"], ["--tail", "1"],
                     ["--since", "0", "--type", "bead.created,bead.updated", "-n", "2"]):
            argv = [str(BIN / prog), "events", "--json", *args]
            if prog == "gt":
                argv[2:2] = ["--town", town.root]
            proc = subprocess.run(argv, cwd=town.root, env=clean_env(), capture_output=True,
                                  text=True, timeout=60, check=False)
            assert proc.returncode == 0, (prog, args, proc.stderr)
            got = json.loads(proc.stdout)
            if args[0] == "--bead":
                assert got and {e["bead_id"] for e in got} == {one["id"]}, (prog, got)
            elif args[0] in ("--last", "--tail"):
                assert len(got) == 1, (prog, args, got)
            else:
                assert len(got) == 2, (prog, got)
