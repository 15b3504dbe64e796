"""The controller's loop waits on the event bus, not on a short poll: a stop ends it now."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from agents.controlkit import make_town, session_env  # noqa: F401 - a fixture
from agents.townkit import teardown_town, wait_for
from gastown.controller.daemon import Controller

pytestmark = pytest.mark.usefixtures("session_env")


def test_a_stop_wakes_a_loop_with_a_long_poll_and_events_still_wake_it(tmp_path: Path) -> None:
    town = make_town(tmp_path, extra_toml="[controller]\npoll = 5\ntick = 5\n")
    ctl = Controller(town, log_file=open(os.devnull, "w"))  # noqa: SIM115
    assert ctl.policies.controller.poll == 5
    thread = threading.Thread(target=ctl.run, daemon=True)
    try:
        thread.start()
        wait_for(lambda: getattr(ctl, "_sub", None) is not None and ctl.ticks >= 1, 15,
                 what="the loop to subscribe and tick")
        with town.ledger("tester") as led:
            seq = led.emit("test.ping", None, {})
        # a commit wakes the loop (the cursor it handled moves) well before the 5 s poll
        wait_for(lambda: ctl._cursor >= seq, 4, interval=0.05, what="the event to be read")
        started = time.monotonic()
        ctl.stop()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the loop did not end"
        assert time.monotonic() - started < 4, "the stop waited out the 5 s poll"
        with town.ledger("tester") as led:
            kinds = [e["type"] for e in led.events(since_seq=seq)]
        assert kinds[-1] == "controller.stopped"
    finally:
        ctl.stop()
        thread.join(timeout=10)
        teardown_town(town)
