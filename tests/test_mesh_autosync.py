"""The controller publishes and syncs by itself when ``[mesh] relays`` is set.

Two real towns (their own ledgers and keys, made by the installed ``gt``), a real
embedded relay process on loopback, and each town's controller tick called
in-process: a bead of one town reaches the other with no ``gt mesh`` command; a relay
that goes away fails no tick, shows in ``gt mesh status``, and is retried until the
work waiting in the outbox gets through.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("coincurve")
pytest.importorskip("nostr_sdk")
pytest.importorskip("websockets")

from gastown.config import TownConfig  # noqa: E402
from gastown.controller.daemon import Controller  # noqa: E402
from gastown.errors import ValidationError  # noqa: E402
from gastown.mesh import auto, sync, work  # noqa: E402
from gastown.mesh.identity import settings  # noqa: E402
from gastown.mesh.relay import free_port  # noqa: E402
from gastown.town.core import Town  # noqa: E402
from helpers.fedtowns import bead, js, make_town, run  # noqa: E402
from test_mesh_towns import Relay  # noqa: E402


def _until(what: str, cond: Callable[[], Any], ctls: list[Controller],
           timeout: float = 30.0) -> Any:
    """Tick every controller until ``cond()`` is true (the rounds run on their threads)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in ctls:
            assert set(c.tick()) >= {"mesh"}, "the mesh step is one of the leader's"
        got = cond()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _titles(ctl: Controller) -> set[str]:
    return {w["bead"]["title"] for w in work.work_items(ctl.led) if "bead" in w}


def test_sync_every_is_checked(tmp_path: Path) -> None:
    def cfg(v: object) -> TownConfig:
        return SimpleNamespace(path="town.toml", raw={"mesh": {"sync_every": v}})  # type: ignore[return-value]

    assert settings(cfg("5m")).sync_every == 300
    assert settings(cfg(0)).sync_every == 0
    for bad in ("soon", "-1s", "0.5s", True, "nan", "inf"):
        with pytest.raises(ValidationError, match=r"sync_every must be 0 \(off\) or 1s\.\.24h"):
            settings(cfg(bad))


def test_controllers_publish_and_sync_and_survive_a_relay_outage(tmp_path: Path) -> None:
    a = make_town(tmp_path, "atown", "alice.example", 'publish = "all"')
    b = make_town(tmp_path, "btown", "bob.example", 'publish = "all"')
    ka = js(a, "gt", "mesh", "id")["key"]
    kb = js(b, "gt", "mesh", "id")["key"]
    run(a, "gt", "mesh", "peer", "add", "b", "gt://bob.example/btown", kb)
    run(b, "gt", "mesh", "peer", "add", "a", "gt://alice.example/atown", ka)
    port = free_port()
    relay = Relay(a, port)
    for t in (a, b):
        with open(t / "town.toml", "a", encoding="utf-8") as fh:
            fh.write(f'\n[mesh]\nrelays = ["{relay.url}"]\nsync_every = "1s"\n')
    bead(a, "made in alpha")
    relay.start()
    ctls = [Controller(Town(str(t))) for t in (a, b)]
    try:
        for c in ctls:
            c.setup()
        ca, cb = ctls
        _until("b to hold a's bead", lambda: "made in alpha" in _titles(cb), ctls)
        state = auto.state(ca.led)
        assert state is not None and state["ok"] and state["errors"] == {}

        relay.stop()  # partition: work goes on, ticks do not fail, the error is shown
        bead(a, "made during the outage")
        st = _until("a round to fail",
                    lambda: (s := auto.state(ca.led)) is not None and not s["ok"] and s, [ca])
        assert relay.url in st["errors"] or "*" in st["errors"], st
        shown = js(a, "gt", "mesh", "status")
        assert shown["auto"]["ok"] is False and shown["auto"]["failures"] >= 1
        assert shown["outbox"] >= 1, "what was not acknowledged waits"
        status = run(a, "gt", "status").stdout
        assert "mesh:" in status and "failing" in status, status

        relay = Relay(a, port).start()  # back (empty: it keeps events in memory)
        _until("the outbox to drain and b to catch up",
               lambda: "made during the outage" in _titles(cb)
               and not sync.outbox(ca.led), ctls)
        assert auto.state(ca.led)["ok"]  # type: ignore[index]
    finally:
        for c in ctls:
            c.stop()
            c.led.close()
        relay.stop()


def test_a_bad_mesh_table_is_said_once_and_fails_no_tick(tmp_path: Path) -> None:
    lines: list[str] = []
    bad = SimpleNamespace(path="town.toml", raw={"mesh": {"relays": "ws://x"}})
    step = auto.AutoSync(lines.append)
    for _ in range(3):
        assert step.step(None, bad, str(tmp_path)) is False  # type: ignore[arg-type]
    assert len(lines) == 1 and "relays must be a list" in lines[0], lines
