"""The embedded relay keeps what it admitted across a restart (``gt mesh relay``'s store)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

pytest.importorskip("coincurve")

from gastown.mesh import events, keys, kinds  # noqa: E402
from gastown.mesh.relaystore import RelayStore  # noqa: E402

SK = keys.derive(b"\x05" * 32, [keys.HARDENED])


def test_store_round_trip_checks_every_line_and_keeps_the_newest_slot(tmp_path: Path) -> None:
    path = tmp_path / "relay" / "events.jsonl"
    st = RelayStore(str(path))
    assert st.load() == []
    now = int(time.time())
    note = events.sign(SK, 4710, "hello", [["gt", "gt://a.example/a"]], now - 50)
    old = events.sign(SK, kinds.FOLLOWS, "", [["p", "00" * 32]], now - 40)
    new = events.sign(SK, kinds.FOLLOWS, "", [["p", "11" * 32]], now - 30)
    for e in (note, old, new, note):
        st.add(e.as_dict())
    st.close()
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert len(path.read_text().splitlines()) == 3  # the second copy of `note` not written
    # damage: a torn line, and an event whose content was swapped (id and sig kept)
    forged = {**note.as_dict(), "content": "swapped"}
    with open(path, "a", encoding="utf-8") as fh:
        fh.write('{"id": "torn\n' + json.dumps(forged) + "\n")
    st = RelayStore(str(path))
    got = st.load()
    st.close()
    assert [d["id"] for d in got] == [note.id, new.id], "the replaced follow list is dropped"
    assert (st.damaged, st.first_damaged) == (2, 4)
    assert len(path.read_text().splitlines()) == 2, "rewritten without what it dropped"
    # one relay per store: a second is refused while the first holds it
    from gastown.errors import ConflictError

    first = RelayStore(str(path))
    first.load()
    with pytest.raises(ConflictError, match="in use by another relay"):
        RelayStore(str(path)).load()
    first.close()
    again = RelayStore(str(path))
    assert [d["id"] for d in again.load()] == [note.id, new.id]
    again.close()


nostr = pytest.importorskip("nostr_sdk")
pytest.importorskip("websockets")

from agents.townkit import BIN, clean_env  # noqa: E402
from gastown.mesh import wire  # noqa: E402
from gastown.mesh.relay import free_port  # noqa: E402
from helpers.fedtowns import bead, js, make_town, one_line_error, run  # noqa: E402


def _relay(town: Path, port: int, *extra: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([str(BIN / "gt"), "mesh", "relay", "--port", str(port), *extra],
                            cwd=town, env=clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()  # printed once it listens, after the refill
    assert line.startswith("Relay ws://"), (line, proc.stderr.read() if proc.stderr else "")
    return proc


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(timeout=10)


def test_a_restarted_relay_still_serves_what_it_admitted(tmp_path: Path) -> None:
    a = make_town(tmp_path, "atown", "alice.example", 'publish = "all"')
    b = make_town(tmp_path, "btown", "bob.example", 'publish = "all"')
    ka = js(a, "gt", "mesh", "id")["key"]
    kb = js(b, "gt", "mesh", "id")["key"]
    run(a, "gt", "mesh", "peer", "add", "b", "gt://bob.example/btown", kb)
    run(b, "gt", "mesh", "peer", "add", "a", "gt://alice.example/atown", ka)
    port = free_port()
    url = f"ws://127.0.0.1:{port}"
    for t in (a, b):
        with open(t / "town.toml", "a", encoding="utf-8") as fh:
            fh.write(f'\n[mesh]\nrelays = ["{url}"]\nsync_every = 0\n')
    bead(a, "kept by the relay")
    relay = _relay(a, port)
    try:
        run(a, "gt", "mesh", "publish")
        assert js(a, "gt", "mesh", "status")["outbox"] == 0, "nothing left to resend"
        held = {e["id"] for e in wire.fetch(url, {"authors": [ka]})}
        assert held
        # a second relay on the same store is refused with one line, before it listens
        busy = subprocess.run([str(BIN / "gt"), "mesh", "relay", "--port", str(free_port())],
                              cwd=a, env=clean_env(), capture_output=True, text=True,
                              timeout=60)
        assert busy.returncode not in (0, 70)
        assert "in use by another relay" in one_line_error(busy)
        _stop(relay)
        relay = _relay(a, port)  # restarted: refilled from .gt/mesh/relay.jsonl
        store = a / ".gt" / "mesh" / "relay.jsonl"
        assert store.stat().st_mode & 0o777 == 0o600
        assert {e["id"] for e in wire.fetch(url, {"authors": [ka]})} == held
        run(b, "gt", "mesh", "sync")
        titles = {w["bead"]["title"] for w in js(b, "gt", "mesh", "work", "a") if "bead" in w}
        assert titles == {"kept by the relay"}
        # the same restart without the store: the relay comes back empty
        _stop(relay)
        relay = _relay(a, port, "--memory")
        assert wire.fetch(url, {"authors": [ka]}) == []
    finally:
        _stop(relay)
