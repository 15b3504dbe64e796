"""``[federation] auto_publish = true``: records go out after every change, no ``gt publish``.

Real towns driven through the installed ``bd``/``gt``; the detached publisher is
a real process, so each check waits for its condition with a timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("cryptography")

from gastown.federation import autopub  # noqa: E402
from helpers.fedtowns import bead, js, make_town, one_line_error, run  # noqa: E402


def wait_for(what: str, cond: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll ``cond`` until it returns something truthy; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def published(log: Path) -> dict[str, dict[str, Any]]:
    """Bead id -> the newest published snapshot in a directory target's log."""
    if not log.exists():
        return {}
    out = {}
    for line in log.read_bytes().split(b"\n"):
        if line:
            rec = json.loads(line)
            if rec["kind"] == "bead":
                out[rec["body"]["id"]] = rec["body"]["bead"]
    return out


def git_log(hub: Path) -> bytes:
    proc = subprocess.run(["git", "--git-dir", str(hub), "show",
                           "refs/gastown/federation:log.jsonl"], capture_output=True, check=False)
    return proc.stdout if proc.returncode == 0 else b""


def auto_town(tmp_path: Path, name: str, target: Path) -> Path:
    return make_town(tmp_path, name, f"{name}.com",
                     f'publish = "all"\npublish_to = ["{target}"]\nauto_publish = true')


def test_bd_writes_are_published_without_gt_publish(tmp_path: Path) -> None:
    target = tmp_path / "a-log"
    a = auto_town(tmp_path, "a", target)
    log = target / "log.jsonl"
    first = bead(a, "first")
    wait_for("the new bead in the published log", lambda: first in published(log))
    run(a, "bd", "close", first)
    wait_for("the close in the published log",
             lambda: published(log).get(first, {}).get("status") == "closed")
    second = bead(a, "second")
    run(a, "bd", "update", second, "--priority", "0")
    wait_for("the update", lambda: published(log).get(second, {}).get("priority") == 0)
    st = wait_for("a status with no publish due", lambda: (
        lambda s: s if not s["pending"] else None)(js(a, "gt", "identity")["auto_publish"]))
    assert st["enabled"] and st["last_ok_at"] and "last_error" not in st
    assert "auto publish: on; last published" in run(a, "gt", "identity").stdout
    # the local log and the target agree: nothing was published twice or skipped
    ours = (a / ".gt" / "federation" / "log.jsonl").read_bytes()
    assert wait_for("the target to match the town's log", lambda: log.read_bytes() == ours)
    seqs = [json.loads(x)["seq"] for x in ours.split(b"\n") if x]
    assert seqs == list(range(1, len(seqs) + 1))


def test_a_town_without_auto_publish_leaves_no_mark(tmp_path: Path) -> None:
    b = make_town(tmp_path, "b", "b.com", f'publish = "all"\npublish_to = ["{tmp_path / "bl"}"]')
    bead(b, "quiet")
    assert not (b / ".gt" / "federation" / "autopublish.pending").exists()
    assert not (tmp_path / "bl").exists()
    assert "auto publish: off" in run(b, "gt", "identity").stdout
    with open(b / "town.toml", "a", encoding="utf-8") as fh:
        fh.write('auto_publish = "yes"\n')
    assert "auto_publish" in one_line_error(run(b, "gt", "identity", rc=5))


def test_a_failing_target_never_fails_the_write_and_is_retried(tmp_path: Path) -> None:
    hub = tmp_path / "gone.git"  # not there yet: every push fails
    a = auto_town(tmp_path, "a", hub)
    one = bead(a, "written while the remote is gone")
    st = wait_for("the failure to be recorded",
                  lambda: js(a, "gt", "identity")["auto_publish"].get("last_error"))
    assert "gone.git" in st or "git" in st
    text = run(a, "gt", "identity").stdout
    assert "auto publish: on; FAILING since" in text
    assert js(a, "bd", "show", one)[0]["title"] == "written while the remote is gone"
    assert one.encode() in (a / ".gt" / "federation" / "log.jsonl").read_bytes()
    assert "failed:" in (a / ".gt" / "federation" / "autopublish.log").read_text()
    for name in ("autopublish.log", "autopublish.json"):  # errors may quote target URLs
        assert (a / ".gt" / "federation" / name).stat().st_mode & 0o077 == 0
    subprocess.run(["git", "init", "-q", "--bare", str(hub)], check=True)
    two = bead(a, "after the remote came back")  # the next change retries everything
    wait_for("both beads pushed", lambda: one.encode() in git_log(hub)
             and two.encode() in git_log(hub))
    st2 = wait_for("the error cleared", lambda: (
        lambda s: s if not s.get("last_error") else None)(js(a, "gt", "identity")["auto_publish"]))
    assert st2["failures"] == 0


def test_the_controller_follower_kicks_on_bead_events_and_retries(tmp_path: Path) -> None:
    target = tmp_path / "c-log"
    c = auto_town(tmp_path, "c", target)
    gt_dir = str(c / ".gt")
    follower = autopub.Follower(str(c), gt_dir)
    first = follower.poll()  # at start: whatever was written while no controller ran
    assert first
    wait_for("the start-up publish", lambda: (target / "log.jsonl").exists())
    wait_for("it to be reaped", lambda: (follower.poll(), not follower._children)[1])
    assert follower.poll() is None  # nothing seen since
    follower.seen({"type": "controller.started", "bead_id": None})
    assert follower.poll() is None  # not about a bead
    from gastown.ledger.core import Ledger

    led = Ledger.open(str(c / ".beads" / "beads.db"), actor="controller")
    made = led.create("written by the controller")  # no command line: only events
    led.close()
    follower.seen({"type": "bead.created", "bead_id": made["id"]})
    pid = follower.poll()
    assert pid
    wait_for("the controller's write published",
             lambda: made["id"] in published(target / "log.jsonl"))
    wait_for("the publisher reaped", lambda: (follower.poll(), not follower._children)[1])
    # a failed publish with a change still due is retried after RETRY_AFTER
    state = Path(gt_dir) / "federation"
    (state / "autopublish.json").write_text(json.dumps({"last_error": "x", "failures": 1}))
    (state / "autopublish.pending").touch()
    follower._last_retry = 0.0
    assert follower.poll(now=autopub.RETRY_AFTER + 1) is not None
    wait_for("the retry to succeed", lambda: not autopub.status(gt_dir).get("last_error"))
    assert follower.poll(now=autopub.RETRY_AFTER + 2) is None  # not again so soon


def test_kicks_while_a_publisher_runs_are_not_lost(tmp_path: Path) -> None:
    target = tmp_path / "d-log"
    d = auto_town(tmp_path, "d", target)
    ids = [bead(d, f"burst {i}") for i in range(5)]
    wait_for("every bead of the burst", lambda: set(ids) <= set(published(target / "log.jsonl")))
    log = d / ".gt" / "federation" / "autopublish.log"
    # the publisher writes its line after the target: wait for the round to finish
    wait_for("the publisher's log line", lambda: log.exists() and "published" in log.read_text())
    lines = log.read_text().splitlines()
    assert 1 <= len(lines) <= 5 and all("published" in ln for ln in lines)
    assert not os.path.exists(d / ".gt" / "federation" / "autopublish.pending") or \
        wait_for("no mark left", lambda: not autopub.status(str(d / ".gt"))["pending"])


@pytest.mark.parametrize("text", [
    "[federation]\nauto_publish = true\n", "[federation]\nauto_publish = false  # off\n",
    "# auto_publish = true\n[federation]\npublish = 'all'\n", "[town]\nauto_publish = true\n",
    "federation.auto_publish = true\n", "federation = {auto_publish = true}\n",
    "[federation]\nauto_publish = 1\n", "[ federation ]\nauto_publish = true\n",
    "[federation]\nx = 'auto_publish # no'\n", "[federation]\nauto_publish = tru\n"])
def test_the_quick_read_agrees_with_toml(tmp_path: Path, text: str) -> None:
    import tomllib

    try:
        fed = tomllib.loads(text).get("federation")
        want = isinstance(fed, dict) and fed.get("auto_publish") is True
    except ValueError:
        want = False
    (tmp_path / "town.toml").write_text(text)
    assert autopub.enabled(str(tmp_path)) is want


def test_the_running_controller_publishes_writes_made_without_a_command(tmp_path: Path) -> None:
    target = tmp_path / "e-log"
    e = auto_town(tmp_path, "e", target)
    assert js(e, "gt", "up")["running"]
    try:
        from gastown.ledger.core import Ledger

        led = Ledger.open(str(e / ".beads" / "beads.db"), actor="some/library/caller")
        try:
            made = led.create("written in process: no bd, no kick")
        finally:
            led.close()
        wait_for("the controller to publish it",
                 lambda: made["id"] in published(target / "log.jsonl"))
        led = Ledger.open(str(e / ".beads" / "beads.db"), actor="some/library/caller")
        try:  # the controller is surely following events by now
            later = led.create("written later, in process")
            led.close_bead(made["id"])
        finally:
            led.close()
        wait_for("the controller to publish the events it followed",
                 lambda: later["id"] in published(target / "log.jsonl")
                 and published(target / "log.jsonl")[made["id"]]["status"] == "closed")
    finally:
        run(e, "gt", "down")


def test_a_town_toml_broken_after_the_write_is_recorded_not_lost(tmp_path: Path) -> None:
    f = auto_town(tmp_path, "f", tmp_path / "f-log")
    with open(f / "town.toml", "a", encoding="utf-8") as fh:
        fh.write("this line is not toml\n")
    made = bead(f, "the write still succeeds")
    st = wait_for("the failure to be kept", lambda: autopub.status(str(f / ".gt")).get(
        "last_error"))
    assert "town.toml" in st and st.count("\n") == 0
    assert autopub.status(str(f / ".gt"))["pending"]  # still due: retried later
    assert js(f, "bd", "show", made)[0]["title"] == "the write still succeeds"
    proc = run(tmp_path, "gt", "publish", "--auto", "--town", str(tmp_path / "nowhere"), rc=3)
    assert not (tmp_path / "nowhere").exists() and "Traceback" not in proc.stderr


def test_a_close_flows_to_a_dependent_town_over_git_with_no_gt_publish(tmp_path: Path) -> None:
    hub = tmp_path / "g.git"
    subprocess.run(["git", "init", "-q", "--bare", str(hub)], check=True)
    g = auto_town(tmp_path, "g", hub)
    theirs = bead(g, "their part")
    me = make_town(tmp_path, "h", "h.com")
    run(me, "gt", "remote", "add", "g", "gt://g.com/g", "--url", str(hub))
    mine = bead(me, "my part, after theirs")
    run(me, "bd", "dep", "add", mine, f"gt://g.com/g/_/{theirs}")
    wait_for("their bead pushed", lambda: theirs.encode() in git_log(hub))
    run(me, "gt", "remote", "sync")
    assert mine not in [b["id"] for b in js(me, "bd", "ready")]
    run(g, "bd", "close", theirs)  # no gt publish anywhere
    wait_for("the close to arrive by sync", lambda: (
        run(me, "gt", "remote", "sync"),
        mine in [b["id"] for b in js(me, "bd", "ready")])[1])
