"""Mail: messages are beads; addresses for agents, rigs' roles and groups."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agents.townkit import ECHO, add_agent, clean_env, gt, gt_json, wait_for
from gastown.errors import NotFoundError
from gastown.town.config import append_table
from gastown.town.core import Town
from gastown.town.mail import resolve_address
from gastown.town.rigs import ensure_worktree
from gastown.town.sessions import Sessions

BODY = ("Line one with $(rm -rf ~) and `reboot`;\n"
        "line two: ; tmux kill-server \\; #{pane_pid} \x1b[31mred\x1b[0m\n"
        "  indented third line\n")

pytest_plugins = ("agents.fixtures",)


@pytest.fixture
def crew(town: Town) -> Town:
    """Three agents on the rig (two sharing a role) and a group."""
    for name, role in (("ann", "worker"), ("ben", "worker"), ("cat", "checker")):
        add_agent(town, name, [sys.executable, "-c", "pass"], role=role)
    append_table(town.config_path, "groups.everyone", {"members": ["app/worker", "cat"]})
    append_table(town.config_path, "groups.loop", {"members": ["@loop", "ann"]})
    town.reload()
    return town


def test_addresses_resolve_to_actors(crew: Town) -> None:
    assert resolve_address(crew, "ann") == ["app/worker/ann"]
    assert resolve_address(crew, "app/checker/cat") == ["app/checker/cat"]
    assert resolve_address(crew, "app/worker") == ["app/worker/ann", "app/worker/ben"]
    assert resolve_address(crew, "@everyone") == ["app/worker/ann", "app/worker/ben",
                                                  "app/checker/cat"]
    assert resolve_address(crew, "@loop") == ["app/worker/ann"], "a self-including group ends"
    assert resolve_address(crew, "someone@example.com") == ["someone@example.com"]
    with pytest.raises(NotFoundError, match="no mail group"):
        resolve_address(crew, "@nobody")
    with pytest.raises(NotFoundError, match="no agent has role 'poet'"):
        resolve_address(crew, "app/poet")


def test_send_read_reply_archive_round_trip(crew: Town) -> None:
    sent = gt_json(crew, "mail", "send", "app/worker", "-s", "Deploy $(now);", "-m", BODY)
    beads = sent["sent"]
    assert [b["assignee"] for b in beads] == ["app/worker/ann", "app/worker/ben"]
    assert all(b["issue_type"] == "message" and b["description"] == BODY for b in beads)
    ann = clean_env(GT_AGENT="ann", BD_ACTOR="app/worker/ann")
    ben = clean_env(GT_AGENT="ben", BD_ACTOR="app/worker/ben")
    assert gt(crew, "mail", "check", env=ann, check=False).returncode == 0
    inbox = [m["id"] for m in gt_json(crew, "mail", "inbox", "ann")]
    assert inbox == [beads[0]["id"]]
    shown = gt(crew, "mail", "read", inbox[0], env=ann).stdout
    assert "Subject: Deploy $(now);" in shown and "$(rm -rf ~)" in shown
    assert "\x1b" not in shown, "escape codes never reach a terminal"
    assert "  indented third line" in shown
    assert gt(crew, "mail", "check", env=ann, check=False).returncode == 1, "read mail is not new"
    assert gt(crew, "mail", "check", env=ben, check=False).returncode == 0, "ben has his own copy"
    reply = gt_json(crew, "mail", "reply", inbox[0], "-m", "on it")["sent"][0]
    assert reply["assignee"] == "tester" and reply["title"] == "Re: Deploy $(now);"
    assert reply["metadata"]["thread"] == beads[0]["id"]
    assert [m["id"] for m in gt_json(crew, "mail", "inbox")] == [reply["id"]]
    gt(crew, "mail", "archive", inbox[0], env=ann)
    assert gt_json(crew, "mail", "inbox", "ann") == []
    assert len(gt_json(crew, "mail", "inbox", "ann", "--all")) == 1
    types = [(e["type"], e["actor"]) for e in gt_json(crew, "events")
             if e["type"].startswith("mail.")]
    assert ("mail.sent", "tester") in types and ("mail.read", "app/worker/ann") in types
    assert ("mail.archived", "app/worker/ann") in types


def test_a_reply_is_linked_to_what_it_answers(crew: Town) -> None:
    first = gt_json(crew, "mail", "send", "cat", "-s", "q", "-m", "?")["sent"][0]
    answer = gt_json(crew, "mail", "reply", first["id"], "-m", "!")["sent"][0]
    with crew.ledger() as led:
        edges = led.show(answer["id"])["dependencies"]
    assert [(e["type"], e["depends_on_id"]) for e in edges] == [("replies-to", first["id"])]


def test_check_inject_is_silent_outside_a_session_and_lists_new_mail(crew: Town) -> None:
    assert gt(crew, "mail", "check", "--inject").stdout == ""
    gt(crew, "mail", "send", "ann", "-s", "hello ann", "-m", "body")
    block = gt(crew, "mail", "check", "--inject",
               env=clean_env(GT_AGENT="ann", BD_ACTOR="app/worker/ann")).stdout
    assert "1 unread message" in block and "hello ann" in block and "from tester" in block


def test_mail_to_a_live_session_nudges_it_with_the_subject_verbatim(
        town: Town, tmp_path: Path) -> None:
    heard = tmp_path / "heard.txt"
    canary = tmp_path / "pwned"
    add_agent(town, "dee", [sys.executable, str(ECHO), str(heard)])
    ensure_worktree(town, town.agent("dee"), "dee/work")
    Sessions(town).start(town.agent("dee"), actor="tester")
    wait_for(lambda: "ready>" in gt(town, "peek", "dee").stdout, 10, what="the agent")
    subject = f"urgent; touch {canary}; $(touch {canary}) #{{pane_pid}}"
    out = gt_json(town, "mail", "send", "dee", "-s", subject, "-m", "x", "--nudge",
                  "immediate")
    msg = out["sent"][0]
    assert out["nudges"][0]["verified"]
    line = wait_for(lambda: heard.exists() and heard.read_text(), 10, what="the nudge")
    assert line == f"[gt mail] from tester: {subject} (gt mail read {msg['id']})\n"
    assert not canary.exists()


def test_mail_needs_a_subject_and_a_known_group(crew: Town) -> None:
    proc = gt(crew, "mail", "send", "ann", "-s", "   ", check=False)
    assert proc.returncode == 2 and "subject" in proc.stderr
    proc = gt(crew, "mail", "send", "@ghosts", "-s", "boo", check=False)
    assert proc.returncode == 3 and "@ghosts" in proc.stderr
