"""Hooks, ``gt prime``, ``gt done`` and ``gt setup``: the agent's side of the town."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.townkit import add_agent, clean_env, git, gt, gt_json, make_repo, sleeper
from gastown.errors import ConflictError
from gastown.town.core import Town
from gastown.town.handin import done
from gastown.town.slinging import sling

pytest_plugins = ("agents.fixtures",)


def _as(town: Town, agent: str) -> dict[str, str]:
    """The environment of ``agent``'s session (what a real session has)."""
    return clean_env(**town.session_env(town.agent(agent)))


def _run_in(town: Town, agent: str, *argv: str) -> str:
    """Run a command the way the agent would: in its worktree, with its environment."""
    import subprocess

    return subprocess.run(list(argv), cwd=town.workdir(town.agent(agent)), env=_as(town, agent),
                          capture_output=True, text=True, check=True).stdout


@pytest.fixture
def busy(town: Town) -> tuple[Town, str]:
    """``ann`` with engineer-in-box on her hook (her program just sleeps)."""
    add_agent(town, "ann", sleeper())
    out = sling(town, "engineer-in-box", "ann", {"feature": "search"}, nudge=False,
                actor="tester")
    return town, out.id


def test_prime_json_has_role_hook_step_and_mail(busy: tuple[Town, str]) -> None:
    town, root = busy
    gt(town, "mail", "send", "ann", "-s", "context", "-m", "read the wiki")
    data = json.loads(gt(town, "prime", "--json", env=_as(town, "ann")).stdout)
    assert data["agent"] == "ann" and data["actor"] == "app/worker/ann"
    assert data["hook"]["id"] == root and data["hook"]["status"] == "hooked"
    assert data["step"]["id"] == f"{root}.1" and data["step"]["title"] == "Design search"
    assert data["molecule"]["total"] == 5 and data["molecule"]["closed"] == 0
    assert data["branch"] == f"ann/{root}"
    assert "app/worker/ann" in data["prompt"] and data["worktree"] in data["prompt"]
    assert "{{" not in data["prompt"], "every placeholder is filled"
    assert [m["title"] for m in data["mail"]] == ["context"]
    assert f"bd update {root}.1 --claim" in data["instruction"]
    text = gt(town, "prime", env=_as(town, "ann")).stdout
    assert "## Your hook" in text and f"## Current step: {root}.1 Design search" in text
    assert "## Mail: 1 unread" in text


def test_prime_follows_the_molecule_and_says_when_to_finish(busy: tuple[Town, str]) -> None:
    town, root = busy
    _run_in(town, "ann", "bd", "update", f"{root}.1", "--claim")
    data = json.loads(gt(town, "prime", "--json", env=_as(town, "ann")).stdout)
    assert data["step"]["id"] == f"{root}.1" and data["step"]["status"] == "in_progress"
    for n in range(1, 6):
        _run_in(town, "ann", "bd", "close", f"{root}.{n}")
    data = json.loads(gt(town, "prime", "--json", env=_as(town, "ann")).stdout)
    assert data["molecule"]["complete"] and data["step"] is None
    assert data["hook"]["id"] == root and data["hook"]["status"] == "closed"
    assert "run `gt done` now" in data["instruction"]
    hook = json.loads(gt(town, "hook", "--json", env=_as(town, "ann")).stdout)
    assert hook["id"] == root, "the finished molecule is still owed a gt done"


def test_prime_hook_mode_is_silent_outside_sessions(town: Town) -> None:
    assert gt(town, "prime", "--hook").stdout == ""
    proc = gt(town, "prime", check=False)
    assert proc.returncode == 2 and "GT_AGENT" in proc.stderr


def test_done_files_one_merge_request_and_frees_the_hook(busy: tuple[Town, str]) -> None:
    town, root = busy
    wt = Path(town.workdir(town.agent("ann")))
    (wt / "feature.txt").write_text("search\n")
    with pytest.raises(ConflictError, match="uncommitted changes"):
        done(town, "ann", actor="app/worker/ann")
    _run_in(town, "ann", "git", "add", "feature.txt")
    _run_in(town, "ann", "git", "commit", "-q", "-m", "add search")
    out = json.loads(gt(town, "done", "--json", env=_as(town, "ann")).stdout)
    assert out["branch"] == f"ann/{root}" and out["ahead"] == 1 and out["mr_created"]
    head = git(wt, "rev-parse", "HEAD").strip()
    assert out["commit"] == head
    with town.ledger() as led:
        mr = led.get(out["mr"])
        work = led.get(root)
    assert mr["issue_type"] == "merge-request" and mr["metadata"]["branch"] == out["branch"]
    assert mr["metadata"]["commit"] == head and mr["created_by"] == "app/worker/ann"
    assert work["status"] == "open" and not work.get("assignee"), "the hook is released"
    assert gt_json(town, "hook", "ann") is None
    again = gt(town, "done", check=False, env=_as(town, "ann"))
    assert again.returncode == 4 and "nothing on ann's hook" in again.stderr
    done_events = [e for e in gt_json(town, "events") if e["type"] == "done"]
    assert len(done_events) == 1 and done_events[0]["actor"] == "app/worker/ann"
    author = git(town.repo_dir("app"), "log", "-1", "--format=%an <%ae>", out["branch"])
    assert author.strip() == "app/worker/ann <agents@town.example>"


def test_done_pushes_when_the_rig_says_so(town: Town, tmp_path: Path) -> None:
    origin = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(tmp_path / "src"), str(origin))
    gt(town, "rig", "add", "pushy", str(origin))
    text = Path(town.config_path).read_text().replace(
        '[rigs.pushy]\n', '[rigs.pushy]\npush = true\n')
    Path(town.config_path).write_text(text)
    town.reload()
    add_agent(town, "pia", sleeper(), rig="pushy")
    bead = town.ledger().create("push me")
    sling(town, bead["id"], "pia", nudge=False, actor="tester")
    _run_in(town, "pia", "git", "commit", "-q", "--allow-empty", "-m", "work")
    out = done(town, "pia", actor="app/worker/pia")
    assert out["pushed"]
    assert git(origin, "rev-parse", f"refs/heads/pia/{bead['id']}").strip() == out["commit"]


def test_done_escalated_mails_whoever_slung_it(busy: tuple[Town, str]) -> None:
    town, root = busy
    out = json.loads(gt(town, "done", "--status", "escalated", "-m", "the API is gone",
                        "--json", env=_as(town, "ann")).stdout)
    assert out["escalated_to"] == "tester" and "mr" not in out
    inbox = gt_json(town, "mail", "inbox")
    assert [m["title"] for m in inbox] == ["Escalated: mol-engineer-in-box: feature=search"]
    assert inbox[0]["description"] == "the API is gone"
    with town.ledger() as led:
        work = led.get(root)
    assert "escalated" in work["labels"] and work["status"] == "open"


def test_done_deferred_parks_the_work(busy: tuple[Town, str]) -> None:
    town, root = busy
    done(town, "ann", status="deferred", actor="app/worker/ann")
    with town.ledger() as led:
        assert led.get(root)["status"] == "deferred"


def test_hook_pin_and_clear(town: Town) -> None:
    add_agent(town, "ann", sleeper())
    bead = town.ledger().create("by hand")
    gt(town, "hook", "pin", bead["id"], "ann")
    assert gt_json(town, "hook", "show", "ann")["id"] == bead["id"]
    out = gt_json(town, "hook", "clear", "ann")
    assert out["released"] == [bead["id"]]
    assert gt_json(town, "hook", "ann") is None
    assert town.ledger().get(bead["id"])["status"] == "open"


def test_setup_claude_writes_hooks_that_git_ignores(town: Town) -> None:
    add_agent(town, "cc", sleeper(), preset="claude")
    bead = town.ledger().create("x")
    from gastown.town.rigs import ensure_worktree

    ws = ensure_worktree(town, town.agent("cc"), f"cc/{bead['id']}")
    settings = Path(ws.path) / ".claude" / "settings.local.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"permissions": {"allow": ["Bash(ls)"]}, "hooks": {
        "SessionStart": [{"matcher": "", "hooks": [{"type": "command", "command": "mine"}]}]}}))
    out = gt_json(town, "setup", "--agent", "cc")
    assert out["written"] == [str(settings)]
    data = json.loads(settings.read_text())
    assert data["permissions"] == {"allow": ["Bash(ls)"]}, "the user's settings are kept"
    start = [h["hooks"][0]["command"] for h in data["hooks"]["SessionStart"]]
    gt_bin = str(Path(town.root) / ".gt" / "bin" / "gt")
    assert start == ["mine", f"{gt_bin} prime --hook"]
    assert data["hooks"]["UserPromptSubmit"][0]["hooks"][0]["command"].endswith(
        "mail check --inject")
    gt(town, "setup", "--agent", "cc")  # twice: still one of ours
    assert len(json.loads(settings.read_text())["hooks"]["SessionStart"]) == 2
    assert git(ws.path, "status", "--porcelain").strip() == "", "nothing for git to commit"


def test_setup_instructions_for_a_tracked_file_stay_out_of_commits(
        tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    (repo / "AGENTS.md").write_text("# Project rules\n")
    git(repo, "add", "AGENTS.md")
    git(repo, "commit", "-q", "-m", "rules")
    env = clean_env(CODEX_HOME=str(tmp_path / "codex"))  # codex trusts the folder there
    gt(tmp_path, "setup", "codex", str(repo), env=env)
    text = (repo / "AGENTS.md").read_text()
    assert text.startswith("# Project rules\n") and "gt prime" in text
    assert git(repo, "status", "--porcelain").strip() == ""
    gt(tmp_path, "setup", "codex", str(repo), env=env)
    assert (repo / "AGENTS.md").read_text() == text, "setup is idempotent"
