"""Operations compose: ``gt sling`` is one transaction (DESIGN §2.4).

Pour, pin, the sling record in the bead's metadata, the ``sling`` event and the
owed-work record commit together: a sling killed at any instant — a real ``gt
sling`` process, ``kill -9`` — leaves all of it or none of it.
"""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import time
from typing import Any

import pytest

from agents.townkit import BIN, add_agent, clean_env, sleeper
from gastown import Filter
from gastown.chemistry.api import formula_paths, pour_in, resolve_source
from gastown.chemistry.bonding import BondOperand, bond_in, bond_operand
from gastown.controller.convoy import sling_batch
from gastown.errors import ConflictError
from gastown.hook import pin_in, unpin_in
from gastown.ledger.core import Ledger
from gastown.town.config import append_table
from gastown.town.core import Town
from gastown.town.slinging import SLING_STEPS, sling

pytest_plugins = ("agents.fixtures",)

#: the steps inside the transaction (``committed`` comes after it)
INSIDE = [s for s in SLING_STEPS if s != "committed"]
PAUSE_VAR = "GT_TEST_SLING_PAUSE"


class Boom(Exception):
    """A crash in the middle of a sling."""


def _agents(town: Town, names: list[str]) -> None:
    for name in names:
        add_agent(town, name, sleeper(), provider="subprocess")


def _parts(town: Town, led: Ledger, bead_id: str | None, agent: str) -> dict[str, bool]:
    """Which of a sling's writes exist for ``bead_id`` slung to ``agent``."""
    actor = town.actor_of(town.agent(agent))
    if bead_id is None:
        return {"pinned": False, "metadata": False, "event": False, "kv": False}
    bead = led.get(bead_id)
    return {
        "pinned": bead["status"] == "hooked" and bead.get("assignee") == actor,
        "metadata": "sling" in (bead.get("metadata") or {}),
        "event": any(e["type"] == "sling" for e in led.events(bead_id=bead_id)),
        "kv": led.kv_get(f"gt.work.{agent}") == bead_id,
    }


def _poured_since(led: Ledger, seq: int) -> list[str]:
    return [str(e["bead_id"]) for e in led.events(since_seq=seq, types=["mol.poured"])]


def _all_or_nothing(town: Town, what: str, agent: str, seq: int, *, formula: bool) -> bool:
    """Assert the sling of ``what`` to ``agent`` left all or nothing; True when all."""
    with town.ledger() as led:
        roots = _poured_since(led, seq) if formula else []
        assert len(roots) <= 1, roots
        bead_id = (roots[0] if roots else None) if formula else what
        parts = _parts(town, led, bead_id, agent)
        if formula:
            parts["poured"] = bool(roots)
    done = set(parts.values())
    assert len(done) == 1, f"a half-made sling of {what} to {agent}: {parts}"
    return done == {True}


def _gt_sling(town: Town, what: str, agent: str, *extra: str,
              pause: str | None = None) -> subprocess.Popen[str]:
    env = clean_env(**({PAUSE_VAR: f"{pause}:60"} if pause else {}))
    return subprocess.Popen([str(BIN / "gt"), "sling", "--town", town.root, what, agent,
                             "--no-nudge", *extra], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _wait_paused(proc: subprocess.Popen[str], step: str, timeout: float = 30.0) -> None:
    """Read the sling's standard error until it says it paused after ``step``."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 0.2)
        if ready:
            line = proc.stderr.readline()
            seen += line
            if f"pausing 60s after {step}" in line:
                return
            if not line and proc.poll() is not None:
                break
    proc.kill()
    proc.wait()
    raise AssertionError(f"gt sling never paused after {step} (exit {proc.returncode}):\n{seen}")


def _kill9(proc: subprocess.Popen[str]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    if proc.stderr is not None:
        proc.stderr.close()


def test_the_sling_steps_are_named_in_order() -> None:
    assert SLING_STEPS == ("poured", "pinned", "recorded", "announced", "remembered",
                           "committed")


@pytest.mark.parametrize("step", INSIDE)
def test_a_crash_inside_a_sling_writes_nothing(town: Town, step: str) -> None:
    """A formula sling that fails after ``step``: no molecule, no pin, no record."""
    _agents(town, ["ann"])
    with town.ledger() as led:
        seq = led.last_event_seq()

    def crash(at: str) -> None:
        if at == step:
            raise Boom(at)

    given = {"feature": "x"}
    with pytest.raises(Boom):
        sling(town, "engineer-in-box", "ann", given, nudge=False, start=False, actor="tester",
              pause=crash)
    assert not _all_or_nothing(town, "engineer-in-box", "ann", seq, formula=True)
    with town.ledger() as led:
        assert [e["type"] for e in led.events(since_seq=seq)] == []
    # the same sling, uninterrupted, then does everything
    out = sling(town, "engineer-in-box", "ann", given, nudge=False, start=False, actor="tester")
    assert out.poured and not out.already
    assert _all_or_nothing(town, "engineer-in-box", "ann", seq, formula=True)


@pytest.mark.parametrize("step", SLING_STEPS)
def test_gt_sling_killed_after_each_step_leaves_all_or_nothing(town: Town, step: str) -> None:
    """A real ``gt sling`` process, paused after ``step`` and killed with SIGKILL."""
    _agents(town, ["bob", "cat"])
    with town.ledger() as led:
        bead = led.create("kill me while slinging")
        seq = led.last_event_seq()
    if step != "poured":  # a bead is not poured
        proc = _gt_sling(town, bead["id"], "bob", pause=step)
        _wait_paused(proc, step)
        _kill9(proc)
        assert (_all_or_nothing(town, bead["id"], "bob", seq, formula=False)
                == (step == "committed"))
    # a formula: the pour joins the same transaction
    with town.ledger() as led:
        seq = led.last_event_seq()
    proc = _gt_sling(town, "engineer-in-box", "cat", "--var", "feature=kill", pause=step)
    _wait_paused(proc, step)
    _kill9(proc)
    assert (_all_or_nothing(town, "engineer-in-box", "cat", seq, formula=True)
            == (step == "committed"))


def test_gt_sling_killed_at_random_instants_leaves_all_or_nothing(town: Town) -> None:
    names = [f"w{i}" for i in range(9)]
    _agents(town, names)
    with town.ledger() as led:
        beads = [led.create(f"job {i}")["id"] for i in range(len(names))]
    # one whole sling, to know how long one takes
    t0 = time.monotonic()
    proc = _gt_sling(town, beads[0], names[0])
    assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    whole = time.monotonic() - t0
    assert proc.stderr is not None
    proc.stderr.close()
    rng = random.Random(os.environ.get("GT_CHAOS_SEED", "11"))
    outcomes: list[Any] = []
    for i, (bead_id, name) in enumerate(zip(beads[1:], names[1:], strict=True)):
        with town.ledger() as led:
            seq = led.last_event_seq()
        formula = i % 2 == 1
        proc = (_gt_sling(town, "engineer-in-box", name, "--var", f"feature=f{i}") if formula
                else _gt_sling(town, bead_id, name))
        time.sleep(rng.uniform(0.0, whole))
        _kill9(proc)
        outcomes.append(_all_or_nothing(town, "engineer-in-box" if formula else bead_id,
                                        name, seq, formula=formula))
    assert len(outcomes) == len(names) - 1


def test_the_cores_compose_in_one_transaction(town: Town) -> None:
    """Pour, pin and unpin run inside a caller's Txn: one rollback undoes them all."""
    with town.ledger() as led:
        seq = led.last_event_seq()
        paths = formula_paths(led, town.formula_paths())
        src = resolve_source(led, "engineer-in-box", paths, {"feature": "y"})
        with pytest.raises(Boom), led.transaction("tester") as t:
            root, steps = pour_in(t, src, {"feature": "y"})
            assert steps and t.get(root["id"])["status"] == "open"
            pin_in(t, root["id"], "app/worker/ann")
            assert unpin_in(t, "app/worker/ann") == [root["id"]]
            raise Boom("roll back")
        assert led.events(since_seq=seq) == []
        with led.transaction("tester") as t:
            root, _ = pour_in(t, src, {"feature": "y"})
            pin_in(t, root["id"], "app/worker/ann")
        assert led.get(root["id"])["status"] == "hooked"


def test_bond_runs_inside_a_callers_transaction(town: Town) -> None:
    """Pour a molecule, then bond a formula onto it, in one Txn: a rollback undoes both."""
    with town.ledger() as led:
        seq = led.last_event_seq()
        paths = formula_paths(led, town.formula_paths())
        given = {"feature": "z"}
        src = resolve_source(led, "engineer-in-box", paths, given)
        extra = bond_operand(led, "engineer-in-box", paths, given)
        with pytest.raises(Boom), led.transaction("tester") as t:
            root, _ = pour_in(t, src, given)
            target = BondOperand(root["id"], "mol", root["id"])
            out = bond_in(t, target, extra, vars=given)
            assert out["result_type"] == "compound_molecule" and out["result_id"] == root["id"]
            assert t.children_of(root["id"])
            raise Boom("roll back")
        assert led.events(since_seq=seq) == []
        with led.transaction("tester") as t:
            root, _ = pour_in(t, src, given)
            out = bond_in(t, BondOperand(root["id"], "mol", root["id"]), extra, vars=given)
            assert out["attached"] in t.children_of(root["id"])
        assert [e["type"] for e in led.events(since_seq=seq)].count("mol.bonded") == 1


def _crew(town: Town, size: int) -> None:
    append_table(town.config_path, "pools.crew", {"rig": "app", "role": "worker",
                                                  "preset": "command", "command": sleeper(),
                                                  "provider": "subprocess", "max": size})
    town.reload()


def _batch_state(town: Town, beads: list[str], seq: int) -> dict[str, Any]:
    """What a batch left behind: events since ``seq``, hooked beads, convoys, pours."""
    with town.ledger() as led:
        return {"events": [e["type"] for e in led.events(since_seq=seq)],
                "hooked": [b for b in beads if led.get(b)["status"] == "hooked"],
                "convoys": [b["id"] for b in led.list(Filter(issue_type=["convoy"]))],
                "poured": _poured_since(led, seq),
                "owed": [k for k, _ in led.kv_list() if k.startswith("gt.work.")]}


@pytest.mark.parametrize("last_step", ["poured", "remembered", "tracked"])
def test_a_batch_sling_that_fails_at_its_last_item_writes_nothing(town: Town,
                                                                   last_step: str) -> None:
    """``gt sling A B F crew``: a crash while the last item (a formula) is slung, or
    once the convoy is written, undoes the first two items' pins and records, the
    pour and the convoy; the same batch then does everything."""
    _crew(town, 3)
    with town.ledger() as led:
        beads = [led.create(f"batch job {i}")["id"] for i in range(2)]
        seq = led.last_event_seq()
    items = [*beads, "engineer-in-box"]
    seen: list[str] = []

    def crash(at: str) -> None:
        seen.append(at)
        if at == last_step and (at != "remembered" or seen.count("remembered") == 3):
            raise Boom(at)

    with pytest.raises(Boom):
        sling_batch(town, items, "crew", vars={"feature": "b"}, nudge=False, start=False,
                    actor="tester", pause=crash)
    # the failure came with the last item (or after it), never earlier
    assert seen.count("pinned") == (2 if last_step == "poured" else 3), seen
    assert _batch_state(town, beads, seq) == {"events": [], "hooked": [], "convoys": [],
                                              "poured": [], "owed": []}
    out = sling_batch(town, items, "crew", vars={"feature": "b"}, nudge=False, start=False,
                      actor="tester")
    state = _batch_state(town, beads, seq)
    assert state["hooked"] == beads and state["convoys"] == [out["convoy"]]
    assert len(state["poured"]) == 1 and out["beads"] == [*beads, state["poured"][0]]
    assert sorted(s["agent"] for s in out["slung"]) == ["crew-1", "crew-2", "crew-3"]
    assert out["waiting"] == [] and len(state["owed"]) == 3


def test_a_batch_to_one_busy_agent_is_refused_before_anything_is_written(town: Town) -> None:
    _agents(town, ["ann"])
    with town.ledger() as led:
        beads = [led.create(f"job {i}")["id"] for i in range(2)]
        seq = led.last_event_seq()
    with pytest.raises(ConflictError, match="ann"):
        sling_batch(town, beads, "ann", nudge=False, start=False, actor="tester")
    assert _batch_state(town, beads, seq)["events"] == []


@pytest.mark.parametrize("step", ["tracked", "committed"])
def test_gt_sling_batch_killed_at_its_end_leaves_all_or_nothing(town: Town, step: str) -> None:
    """A real ``gt sling A B C crew`` paused as its transaction ends, then ``kill -9``."""
    _crew(town, 2)
    with town.ledger() as led:
        beads = [led.create(f"kill job {i}")["id"] for i in range(3)]
        seq = led.last_event_seq()
    env = clean_env(**{PAUSE_VAR: f"{step}:60"})
    proc = subprocess.Popen([str(BIN / "gt"), "sling", "--town", town.root, *beads, "crew",
                             "--no-nudge"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    _wait_paused(proc, step)
    _kill9(proc)
    state = _batch_state(town, beads, seq)
    if step == "committed":
        assert state["hooked"] == beads[:2] and len(state["convoys"]) == 1
        assert len(state["owed"]) == 2
    else:
        assert state == {"events": [], "hooked": [], "convoys": [], "poured": [], "owed": []}
