"""Housekeeping: wisps collected by age, timer gates, conditional bonds, worktree pruning.

Real town, real SQLite ledger, real git (a rig with a bare clone and worktrees).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from agents.townkit import add_agent, clean_env, git, make_repo, sleeper
from gastown import Ledger
from gastown.chemistry.api import pour
from gastown.chemistry.bonding import bond
from gastown.controller.housekeeping import (
    bead_failed,
    collect_wisps,
    evaluate_bonds,
    open_timer_gates,
    timer_opens_at,
)
from gastown.controller.prune import disk_usage, prune_rig
from gastown.errors import UsageError, ValidationError
from gastown.ledger.query import Filter
from gastown.town.core import Town, init_town
from gastown.town.rigs import add_rig, ensure_worktree

FORMULA = """\
formula = "mol-two"
[[steps]]
id = "one"
title = "One"
[[steps]]
id = "two"
title = "Two"
needs = ["one"]
"""

GATED = """\
formula = "mol-gated"
[vars.at]
default = "2030-01-01T00:00:00Z"
[[steps]]
id = "first"
title = "First"
[[steps]]
id = "dated"
title = "On the day"
needs = ["first"]
gate = { type = "timer", id = "{{at}}" }
[[steps]]
id = "soon"
title = "A minute later"
gate = { type = "timer", timeout = "1m" }
"""


@pytest.fixture
def town(tmp_path: Path) -> Town:
    t = init_town(str(tmp_path / "town"), name="t", prefix="t", provider="subprocess",
                  actor="tester")
    folder = Path(t.beads_dir, "formulas")
    folder.mkdir(exist_ok=True)
    (folder / "mol-two.formula.toml").write_text(FORMULA)
    (folder / "mol-gated.formula.toml").write_text(GATED)
    return t


def open_ledger(town: Town) -> Ledger:
    return Ledger.open(town.db_url(), actor="tester")


def finish(led: Ledger, root: dict[str, object], reason: str | None = None) -> None:
    steps = root["metadata"]["steps"]  # type: ignore[index]
    for step in ("one", "two"):
        led.close_bead(steps[step], reason=reason)


# ---------------------------------------------------------------- wisps
def test_closed_wisps_older_than_the_age_are_burned(town: Town) -> None:
    paths = town.formula_paths()
    with open_ledger(town) as led:
        old = pour(led, "mol-two", wisp=True, search_paths=paths)
        open_wisp = pour(led, "mol-two", wisp=True, search_paths=paths)
        mol = pour(led, "mol-two", search_paths=paths)
        finish(led, old)
        finish(led, mol)
        assert led.get(old["id"])["status"] == "closed", "the last step closes the root"
        now = time.time()
        assert collect_wisps(led, 3600, now) == [], "closed only just now: kept"
        burned = collect_wisps(led, 3600, now + 7200)
        assert burned == [old["id"]]
        assert not led.exists(old["id"])
        assert not any(led.exists(s) for s in old["metadata"]["steps"].values())
        assert led.exists(open_wisp["id"]), "an unfinished wisp is never collected"
        assert led.exists(mol["id"]), "a persistent molecule is never collected"
        assert [e["bead_id"] for e in led.events(types=["mol.burned"])] == [old["id"]]
        assert collect_wisps(led, 3600, now + 7200) == []


# ---------------------------------------------------------------- timer gates
def test_timer_gates_open_at_their_time_and_not_before(town: Town) -> None:
    with open_ledger(town) as led:
        root = pour(led, "mol-gated", {"at": "2030-01-01T00:00:00Z"},
                    search_paths=town.formula_paths())
        gates = root["metadata"]["gates"]
        dated, soon = led.get(gates["dated"]), led.get(gates["soon"])
        assert timer_opens_at(dated) == 1893456000.0
        created = time.time()
        opens = timer_opens_at(soon)
        assert opens is not None and abs(opens - (created + 60)) < 5
        steps = root["metadata"]["steps"]
        assert open_timer_gates(led, created) == []
        ready = {b["id"] for b in led.ready(Filter())}
        assert steps["soon"] not in ready
        assert open_timer_gates(led, created + 120) == [gates["soon"]]
        assert steps["soon"] in {b["id"] for b in led.ready(Filter())}
        led.close_bead(steps["first"])
        assert steps["dated"] not in {b["id"] for b in led.ready(Filter())}
        assert open_timer_gates(led, 1893456000.0 + 1) == [gates["dated"]]
        assert steps["dated"] in {b["id"] for b in led.ready(Filter())}
        resolved = led.events(types=["gate.resolved"])
        assert [e["bead_id"] for e in resolved] == [gates["soon"], gates["dated"]]
        assert open_timer_gates(led, 1893456000.0 + 1) == [], "opening twice: nothing"


def test_a_timer_gate_with_a_bad_time_is_reported_not_opened(town: Town) -> None:
    with open_ledger(town) as led:
        root = pour(led, "mol-gated", {"at": "next tuesday"}, search_paths=town.formula_paths())
        gate = led.get(root["metadata"]["gates"]["dated"])
        with pytest.raises(ValidationError, match="timer id 'next tuesday' is not an RFC 3339"):
            timer_opens_at(gate)
        said: list[str] = []
        opened = open_timer_gates(led, time.time() + 3600, log=said.append)
        assert gate["id"] not in opened and led.get(gate["id"])["status"] == "open"
        assert len(said) == 1 and gate["id"] in said[0]


# ---------------------------------------------------------------- conditional bonds
@pytest.mark.parametrize("when, reason, kept", [
    ("success", None, True), ("success", "failed: tests red", False),
    ("failure", "failed: tests red", True), ("failure", None, False),
])
def test_conditional_bonds_apply_only_on_their_outcome(town: Town, when: str,
                                                       reason: str | None, kept: bool) -> None:
    paths = town.formula_paths()
    with open_ledger(town) as led:
        a = pour(led, "mol-two", search_paths=paths)
        b = pour(led, "mol-two", search_paths=paths)
        assert evaluate_bonds(led) == []  # first pass: the cursor starts here
        bond(led, a["id"], b["id"], bond_type="conditional", when=when)
        finish(led, a, reason)
        skipped = evaluate_bonds(led)
        b_steps = list(b["metadata"]["steps"].values())
        if kept:
            assert skipped == []
            assert led.get(b["id"])["status"] == "open"
            assert b["metadata"]["steps"]["one"] in {x["id"] for x in led.ready(Filter())}
        else:
            assert skipped == [b["id"]]
            for bid in [b["id"], *b_steps]:
                bead = led.get(bid)
                assert bead["status"] == "closed"
                assert bead["close_reason"].startswith("skipped:")
            ev = led.events(types=["bond.skipped"])
            assert ev[0]["payload"]["after"] == a["id"]
        assert evaluate_bonds(led) == [], "evaluated once"


def test_bond_when_needs_a_conditional_bond(town: Town) -> None:
    with open_ledger(town) as led:
        a = pour(led, "mol-two", search_paths=town.formula_paths())
        b = pour(led, "mol-two", search_paths=town.formula_paths())
        with pytest.raises(UsageError, match="with --type conditional"):
            bond(led, a["id"], b["id"], bond_type="sequential", when="success")
        with pytest.raises(UsageError, match="use success or failure"):
            bond(led, a["id"], b["id"], bond_type="conditional", when="maybe")


def test_failure_is_read_from_reason_label_or_outcome() -> None:
    assert bead_failed({"close_reason": "Failed: boom"})
    assert bead_failed({"close_reason": "error in CI"})
    assert bead_failed({"labels": ["failed"]})
    assert bead_failed({"metadata": {"outcome": "failure"}})
    assert not bead_failed({"close_reason": "done; no failures"})
    assert not bead_failed({})


# ---------------------------------------------------------------- worktree pruning
def _rig_town(town: Town, tmp_path: Path, agents: int) -> None:
    repo = make_repo(tmp_path / "src")
    (repo / "big.bin").write_bytes(bytes(range(256)) * 1200)  # ~300 KB in every checkout
    git(repo, "add", "big.bin")
    git(repo, "commit", "-q", "-m", "a big file")
    add_rig(town, "app", str(repo), actor="tester")
    for n in range(1, agents + 1):
        add_agent(town, f"a{n}", sleeper(), provider="subprocess")


def _cycle(town: Town, led: Ledger, n: int, agent_name: str) -> str:
    """One piece of work: worktree and branch, a commit, landed, its request closed."""
    agent = town.agent(agent_name)
    work = led.create(f"work {n}")
    branch = town.branch_of(agent, work["id"])
    path = Path(ensure_worktree(town, agent, branch).path)
    (path / f"change{n}.txt").write_text(f"change {n}\n")
    env = clean_env(GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x", GIT_COMMITTER_NAME="t",
                    GIT_COMMITTER_EMAIL="t@x")
    for args in (["add", "-A"], ["commit", "-q", "-m", f"change {n}"]):
        subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True)
    repo = town.repo_dir("app")
    head = git(path, "rev-parse", "HEAD").strip()
    git(Path(repo), "update-ref", "refs/heads/main", head)  # landed (fast-forward)
    mr = led.create(f"merge {branch}", issue_type="merge-request", labels=["merged"],
                    metadata={"rig": "app", "branch": branch})
    led.close_bead(mr["id"], reason="merged")
    led.close_bead(work["id"])
    return branch


def _heads(town: Town) -> list[str]:
    out = git(Path(town.repo_dir("app")), "for-each-ref", "--format=%(refname:short)",
              "refs/heads/")
    return sorted(out.split())


def test_disk_use_stays_flat_over_many_cycles(town: Town, tmp_path: Path) -> None:
    _rig_town(town, tmp_path, agents=4)
    rig_dir = town.rig_dir("app")
    sizes = []
    with open_ledger(town) as led:
        for n in range(12):
            _cycle(town, led, n, f"a{n % 4 + 1}")
            done = prune_rig(town, led, "app")
            assert len(done["branches"]) == 1 and len(done["worktrees"]) == 1
            assert _heads(town) == ["main"]
            assert not Path(rig_dir, "worktrees", f"a{n % 4 + 1}").exists()
            objects = disk_usage(str(Path(town.repo_dir("app"), "objects")))
            sizes.append((disk_usage(rig_dir) - objects, objects))
    assert git(Path(town.repo_dir("app")), "log", "--oneline", "main").count("change") == 12
    # twelve cycles over four agents: without pruning, four ~300 KB checkouts and twelve
    # branches would stay behind.  With it, everything but the object store is flat, and
    # the object store grows only by the landed commits themselves (a few KB each)
    assert max(other for other, _ in sizes[1:]) <= sizes[1][0] + 8192, sizes
    per_cycle = (sizes[-1][1] - sizes[1][1]) / (len(sizes) - 2)
    assert per_cycle < 40_000, sizes


def test_pruning_never_destroys_work(town: Town, tmp_path: Path) -> None:
    _rig_town(town, tmp_path, agents=3)
    with open_ledger(town) as led:
        landed = _cycle(town, led, 1, "a1")
        # a1's worktree is dirty: kept, and its checked-out branch with it
        Path(town.rig_dir("app"), "worktrees", "a1", "scratch.txt").write_text("unsaved")
        # a2 has work on its hook: kept
        branch2 = _cycle(town, led, 2, "a2")
        hooked = led.create("next job")
        led.update(hooked["id"], status="hooked", assignee="app/worker/a2")
        # a3's branch never landed: kept
        agent3 = town.agent("a3")
        unlanded = town.branch_of(agent3, "t-zzz")
        ensure_worktree(town, agent3, unlanded)
        done = prune_rig(town, led, "app")
    assert done["worktrees"] == []
    assert done["branches"] == [], "checked-out branches are never deleted"
    for name in ("a1", "a2", "a3"):
        assert Path(town.rig_dir("app"), "worktrees", name).is_dir()
    assert Path(town.rig_dir("app"), "worktrees", "a1", "scratch.txt").read_text() == "unsaved"
    assert {landed, branch2, unlanded} <= set(_heads(town))


def test_bd_mol_bond_when_from_the_command_line(town: Town) -> None:
    from agents.townkit import BIN

    def bd(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "bd"), *args], cwd=town.root, env=clean_env(),
                              capture_output=True, text=True, timeout=60, check=False)

    with open_ledger(town) as led:
        a = pour(led, "mol-two", search_paths=town.formula_paths())
        b = pour(led, "mol-two", search_paths=town.formula_paths())
    proc = bd("mol", "bond", a["id"], b["id"], "--when", "failure")
    assert proc.returncode == 2 and "with --type conditional" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    proc = bd("mol", "bond", a["id"], b["id"], "--type", "conditional", "--when", "failure")
    assert proc.returncode == 0, proc.stderr
    with open_ledger(town) as led:
        edges = [e for e in led.deps(b["id"]) if e["type"] == "conditional-blocks"]
        assert len(edges) == 1 and edges[0]["depends_on_id"] == a["id"]
        assert edges[0]["metadata"] == {"bond": "conditional", "when": "failure"}
