"""``gt mcp``: the ledger as MCP tools, driven by the official ``mcp`` client.

Each test starts the real ``gt mcp`` console script (stdio, or streamable HTTP
on 127.0.0.1) on a real SQLite ledger or town and talks to it with the SDK's
own client, as an editor agent would; results are checked against the ledger
itself, opened separately.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp", reason="the mcp extra (pip install -e '.[test]')")

from mcp import ClientSession, StdioServerParameters  # noqa: E402
from mcp.client.stdio import stdio_client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

from gastown import Ledger  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agents.townkit import LEAKY, add_agent, sleeper  # noqa: E402

GT = str(Path(sys.executable).parent / "gt")
TOOLS = {"prime", "ready", "list", "show", "create", "claim", "update", "close", "dep"}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LEAKY}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # as users run it
    env.update(extra)
    return env


@asynccontextmanager
async def _session(*args: str, cwd: Path | None = None) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=GT, args=["mcp", *args], env=_env(),
                                   cwd=str(cwd) if cwd else None)
    with open(os.devnull, "w") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            yield session


def _run(coro: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), timeout=120))


async def _ok(s: ClientSession, tool: str, **args: Any) -> Any:
    res = await s.call_tool(tool, args)
    text = "".join(getattr(c, "text", "") for c in res.content)
    assert not res.is_error, f"{tool} {args}: {text}"
    return json.loads(text)


async def _err(s: ClientSession, tool: str, **args: Any) -> str:
    res = await s.call_tool(tool, args)
    text = "".join(getattr(c, "text", "") for c in res.content)
    assert res.is_error, f"{tool} {args} should fail, got {text}"
    assert "\n" not in text.strip() and text.strip(), repr(text)
    return text


@pytest.fixture
def db(tmp_path: Path) -> str:
    """A fresh SQLite ledger (prefix ``mc``); returns its database path."""
    Ledger.init(str(tmp_path), prefix="mc", actor="setup").close()
    return str(tmp_path / ".beads" / "beads.db")


def test_agent_loop_over_stdio(db: str) -> None:
    """prime → ready → claim → update → close → dep add/remove, all persisted, as ``ann``."""
    with Ledger.open(db, actor="setup") as led:
        first = led.create("Design the login form", priority=1)["id"]
        second = led.create("Build the login form", priority=2)["id"]

    async def loop() -> None:
        async with _session("--db", db, "--actor", "ann") as s:
            primed = await _ok(s, "prime")
            assert primed["actor"] == "ann" and primed["holding"] == []
            assert primed["ready_top"][0]["id"] == first
            ready = await _ok(s, "ready")
            assert [b["id"] for b in ready["items"]] == [first, second]
            assert set(ready["items"][0]) == {"id", "title", "status", "priority", "assignee"}
            claimed = await _ok(s, "claim", id=first)
            assert claimed == {"id": first, "title": "Design the login form",
                               "status": "in_progress", "priority": 1, "assignee": "ann"}
            updated = await _ok(s, "update", id=first, notes="two fields", priority=0,
                                full=True)
            assert updated["notes"] == "two fields" and updated["priority"] == 0
            assert (await _ok(s, "prime"))["holding"][0]["id"] == first
            added = await _ok(s, "dep", action="add", issue_id=second, depends_on_id=first)
            assert added["changed"] is True
            assert [b["id"] for b in (await _ok(s, "ready"))["items"]] == []
            closed = await _ok(s, "close", id=first, reason="designed")
            assert closed["status"] == "closed"
            assert [b["id"] for b in (await _ok(s, "ready"))["items"]] == [second]
            removed = await _ok(s, "dep", action="remove", issue_id=second,
                                depends_on_id=first)
            assert removed["changed"] is True
            made = await _ok(s, "create", title="Write the docs", labels=["docs"])
            shown = await _ok(s, "show", id=made["id"], full=True)
            assert shown["labels"] == ["docs"] and shown["created_by"] == "ann"
            # the identity of one call can differ from the server's (a shared server)
            assert (await _ok(s, "claim", id=second, actor="bob"))["assignee"] == "bob"

    _run(loop)
    with Ledger.open(db, actor="check") as led:
        bead = led.show(first)
        assert bead["status"] == "closed" and bead["assignee"] == "ann"
        assert bead["notes"] == "two fields" and bead["close_reason"] == "designed"
        assert led.deps(second) == []
        actors = {e["actor"] for e in led.events(bead_id=first)
                  if e["type"] in ("bead.claimed", "bead.closed")}
        assert actors == {"ann"}, actors


def test_errors_come_back_as_tool_errors(db: str) -> None:
    """Unknown ids, a double claim and invalid values are tool errors; the server lives on."""
    with Ledger.open(db, actor="setup") as led:
        bead = led.create("Contested")["id"]

    async def errors() -> None:
        async with _session("--db", db, "--actor", "ann") as s:
            assert "mc-nope" in await _err(s, "show", id="mc-nope")
            assert "mc-nope" in await _err(s, "claim", id="mc-nope")
            await _ok(s, "claim", id=bead)
            msg = await _err(s, "claim", id=bead, actor="bob")
            assert "already claimed by ann" in msg
            assert "priority" in await _err(s, "create", title="x", priority=9)
            assert "limit" in await _err(s, "ready", limit="many")
            assert "status" in await _err(s, "list", status="bogus")
            assert "action" in await _err(s, "dep", action="swap", issue_id=bead,
                                          depends_on_id=bead)
            assert "nothing to update" in await _err(s, "update", id=bead)
            assert "use close" in await _err(s, "update", id=bead, status="closed")
            # still serving, nothing half-written
            assert (await _ok(s, "show", id=bead))["assignee"] == "ann"
            assert (await _ok(s, "list", status="all"))["total"] == 1

    _run(errors)


def test_tools_list_is_small_typed_and_annotated(db: str) -> None:
    """At most ten tools, one-line descriptions, typed arguments, hints, under 16,000 chars."""
    async def listing() -> None:
        async with _session("--db", db) as s:
            result = await s.list_tools()
            wire = result.model_dump_json(by_alias=True, exclude_none=True)
            assert len(wire) < 16_000, len(wire)
            tools = {t.name: t for t in result.tools}
            assert set(tools) == TOOLS and len(tools) <= 10
            for t in tools.values():
                assert t.description and "\n" not in t.description.strip(), t.name
                for name, prop in t.input_schema["properties"].items():
                    assert "type" in prop or "anyOf" in prop or "enum" in prop, (t.name, name)
                a = t.annotations
                assert a is not None, t.name
                assert None not in (a.read_only_hint, a.destructive_hint, a.idempotent_hint)
            reads = {n for n, t in tools.items() if t.annotations.read_only_hint}
            assert reads == {"prime", "ready", "list", "show"}
            assert tools["create"].annotations.destructive_hint is False
            assert tools["close"].annotations.destructive_hint is True

    _run(listing)


def test_list_and_ready_are_paged_never_cut(db: str) -> None:
    """25 beads come back in pages with a total and the next offset; none is lost."""
    with Ledger.open(db, actor="setup") as led:
        ids = {led.create(f"bead {i}")["id"] for i in range(25)}
        led.close_bead(sorted(ids)[0])

    async def paging() -> None:
        async with _session("--db", db) as s:
            for tool, args, want in (("list", {"status": "all"}, ids),
                                     ("ready", {}, ids - {sorted(ids)[0]})):
                seen: list[str] = []
                offset: int | None = 0
                while offset is not None:
                    page = await _ok(s, tool, limit=10, offset=offset, **args)
                    assert page["total"] == len(want) and page["count"] <= 10
                    seen += [b["id"] for b in page["items"]]
                    offset = page["next_offset"]
                assert sorted(seen) == sorted(want), tool
            default = await _ok(s, "list")
            assert default["total"] == 24  # closed beads only with status=all
            # a write by someone else (bd in a shell) shows at once: nothing cached
            with Ledger.open(db, actor="other") as led:
                led.create("from a shell")
            assert (await _ok(s, "list"))["total"] == 25
            assert (await _ok(s, "ready", limit=1))["total"] == 25
            assert "limit" in await _err(s, "list", limit=100_000)

    _run(paging)


def test_prime_in_a_town_is_the_agents_prime(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """With --town and an agent's identity, prime shows that agent's hook and instruction."""
    from gastown import init_town, pin

    for var in LEAKY:
        monkeypatch.delenv(var, raising=False)
    town = init_town(str(tmp_path / "town"), name="tw", prefix="tw", actor="tester")
    add_agent(town, "ann", sleeper(), rig=None)
    actor = town.actor_of(town.agent("ann"))
    with town.ledger("tester") as led:
        bead = led.create("Hooked work")["id"]
        pin(led, bead, actor)

    async def prime() -> None:
        async with _session("--town", town.root, "--actor", actor) as s:
            data = await _ok(s, "prime")
            assert data["agent"] == "ann" and data["hook"]["id"] == bead
            assert bead in data["instruction"]
            full = await _ok(s, "prime", full=True)
            assert "prompt" in full and full["hooked"][0]["id"] == bead

    _run(prime)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_streamable_http_on_localhost(db: str) -> None:
    """--http PORT serves the same tools at http://127.0.0.1:PORT/mcp."""
    with Ledger.open(db, actor="setup") as led:
        bead = led.create("Over HTTP")["id"]
    port = _free_port()
    proc = subprocess.Popen([GT, "mcp", "--db", db, "--actor", "hana", "--http", str(port)],
                            env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "gt mcp --http never listened"
                time.sleep(0.1)

        async def over_http() -> None:
            async with streamable_http_client(f"http://127.0.0.1:{port}/mcp") as (r, w), \
                    ClientSession(r, w) as s:
                await s.initialize()
                assert {t.name for t in (await s.list_tools()).tools} == TOOLS
                assert (await _ok(s, "claim", id=bead))["assignee"] == "hana"
                assert "already claimed" in await _err(s, "claim", id=bead, actor="bob")

        _run(over_http)
        # DNS rebinding: a request naming another host is refused
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/mcp", method="POST", data=b"{}",
            headers={"Host": "evil.example", "Content-Type": "application/json",
                     "Accept": "application/json, text/event-stream"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=30)
        assert 400 <= refused.value.code < 500
        # busy port: one line, a usage error, no traceback
        again = subprocess.run([GT, "mcp", "--db", db, "--http", str(port)], env=_env(),
                               capture_output=True, text=True, timeout=60)
        assert again.returncode == 2, again.stderr
        assert len(again.stderr.strip().splitlines()) == 1 and str(port) in again.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize("args, code, words", [
    (["--db", "DB", "--town", "TOWN"], 2, "not both"),
    (["--http", "0"], 2, "port"),
    (["--http", "http"], 2, "port"),
    (["--town", "NOWHERE"], 3, "not a town"),
    (["--db", "NOWHERE/beads.db"], None, "nowhere"),
])
def test_bad_invocations_are_one_line(tmp_path: Path, db: str, args: list[str],
                                      code: int | None, words: str) -> None:
    """Mistakes on the command line: one line, the project's exit code, nothing served."""
    argv = [a.replace("DB", db).replace("TOWN", str(tmp_path))
            .replace("NOWHERE", str(tmp_path / "nowhere")) for a in args]
    proc = subprocess.run([GT, "mcp", *argv], env=_env(), capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60, cwd=tmp_path)
    assert proc.returncode not in (0, 70), proc
    if code is not None:
        assert proc.returncode == code, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_ready_count_is_the_ready_total(ledger: Ledger) -> None:
    """Ledger.ready_count (the total a paged ``ready`` reports) on both backends."""
    from gastown import Filter

    ids = [ledger.create(f"bead {i}")["id"] for i in range(6)]
    ledger.add_dep(ids[1], ids[0])
    ledger.claim(ids[2], "ann")
    ledger.update(ids[3], assignee="bob")
    for f in (None, Filter(unassigned=True), Filter(assignee="bob")):
        assert ledger.ready_count(f) == len(ledger.ready(f)), f
    assert ledger.ready_count() == 4  # ids[1] is blocked, ids[2] in progress


def test_claims_on_postgres(tmp_path: Path, pg_database: str) -> None:
    """The same server on a PostgreSQL ledger: create, claim, a double claim refused."""
    Ledger.init(str(tmp_path), prefix="pg", db=pg_database, actor="setup").close()

    async def on_pg() -> None:
        async with _session("--db", pg_database, "--actor", "ann", cwd=tmp_path) as s:
            made = await _ok(s, "create", title="On the server", priority=1)
            assert (await _ok(s, "ready"))["total"] == 1
            assert (await _ok(s, "claim", id=made["id"]))["assignee"] == "ann"
            assert "already claimed by ann" in await _err(s, "claim", id=made["id"],
                                                          actor="bob")
            assert (await _ok(s, "ready"))["total"] == 0

    _run(on_pg)


def test_no_options_finds_the_ledger_like_bd(tmp_path: Path, db: str) -> None:
    """Without --db or --town the ledger is found from the working directory, as bd does."""
    work = tmp_path / "src" / "deep"
    work.mkdir(parents=True)
    with Ledger.open(db, actor="setup") as led:
        bead = led.create("Found from below")["id"]

    async def found() -> None:
        async with _session(cwd=work) as s:
            assert [b["id"] for b in (await _ok(s, "list"))["items"]] == [bead]

    _run(found)


def test_a_crash_in_a_tool_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the library did not foresee is still one line for the agent, not a traceback."""
    from gastown.errors import ConflictError
    from gastown.mcp_server.server import _call

    def boom() -> dict[str, Any]:
        raise ValueError("first line\nsecond line")

    def refused() -> dict[str, Any]:
        raise ConflictError("issue x already claimed by ann")

    monkeypatch.delenv("GT_DEBUG", raising=False)
    crash = _call(boom)
    assert crash.is_error and crash.content[0].text == "internal error: ValueError: first line"
    assert _call(refused).content[0].text == "issue x already claimed by ann"
    monkeypatch.setenv("GT_DEBUG", "1")
    with pytest.raises(ValueError):
        _call(boom)
