"""``[federation] sync_every``: the controller pulls other towns' records on its own.

Two towns, each its own directory and processes: alice publishes to a folder,
carol's bead depends on alice's, carol's controller runs with ``sync_every``.
Alice's close reaches carol's ``bd ready`` with no ``gt remote sync`` by hand; a
remote that goes away is logged and retried, and never stops the controller.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("cryptography")

from helpers.fedtowns import bead, js, make_town, run  # noqa: E402


def _wait(what: str, check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_controller_syncs_remotes_on_its_own(tmp_path: Path) -> None:
    hub = tmp_path / "alice-log"
    a = make_town(tmp_path, "atown", "alice@example.com",
                  f'publish = "all"\npublish_to = ["{hub}"]')
    c = make_town(tmp_path, "ctown", "carol@example.com", 'sync_every = "5s"')
    a1 = bead(a, "alice's api")
    run(a, "gt", "publish")
    run(c, "gt", "remote", "add", "alice", "gt://alice@example.com/atown", "--url", str(hub))
    c1 = bead(c, "carol's client")
    run(c, "bd", "dep", "add", c1, f"gt://alice@example.com/atown/_/{a1}")
    assert js(c, "bd", "ready") == []
    run(c, "gt", "up")
    try:
        run(a, "bd", "close", a1)
        run(a, "gt", "publish")
        _wait("alice's close to free carol's bead",
              lambda: [b["id"] for b in js(c, "bd", "ready")] == [c1])
        synced = [e for e in js(c, "gt", "events") if e["type"] == "federation.autosync"]
        assert synced and synced[-1]["payload"]["failed"] == {}
        # the remote goes away: the failure is recorded, the controller carries on
        shutil.rmtree(hub)
        _wait("a failed sync to be recorded", lambda: any(
            e["type"] == "federation.autosync" and e["payload"]["failed"].get("alice")
            for e in js(c, "gt", "events")))
        assert js(c, "gt", "status")["controller"]["running"]
        c2 = bead(c, "local work goes on")
        assert c2 in [b["id"] for b in js(c, "bd", "ready")]
    finally:
        run(c, "gt", "down")


def test_a_bad_sync_every_is_one_line(tmp_path: Path) -> None:
    c = make_town(tmp_path, "ctown", "carol@example.com", 'sync_every = "soon"')
    proc = run(c, "gt", "identity", rc=5)
    assert "sync_every" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
