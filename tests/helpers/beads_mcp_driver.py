"""Drive the beads MCP server (beads-mcp, unmodified) over stdio with the official client.

Run with the Python of a virtual environment that has ``beads-mcp`` and ``mcp``
installed (never ours: the server is a separate program).  Usage::

    python beads_mcp_driver.py WORKSPACE BD_PATH [calls.json]

It starts ``python -m beads_mcp`` with ``BEADS_WORKING_DIR=WORKSPACE`` and the
directory of BD_PATH first on ``PATH`` (beads-mcp finds ``bd`` there itself),
lists the tools and resources, then makes the calls in ``calls.json`` (a list
of ``[tool, arguments]``; the default is a scenario that exercises every tool
and resource), and prints one JSON object: ``{"tools": [...], "resources":
[...], "calls": [{"tool", "args", "ok", "result" | "error", "seconds"}...]}``.
Ids created by ``create`` are substituted into later arguments written as
``"$1"``, ``"$2"``, …; ``"$WS"`` is WORKSPACE and ``"$WS2"`` the directory in
``$BEADS_DRIVER_WS2``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

SCENARIO: list[list[Any]] = [
    ["discover_tools", {}],
    ["get_tool_info", {"tool_name": "ready"}],
    ["context", {"action": "show"}],
    ["create", {"title": "Design the login form", "priority": 1, "issue_type": "feature",
                "description": "A form with two fields", "labels": ["ui"]}],
    ["create", {"title": "Build the login form", "brief": False,
                "design": "htmx", "acceptance": "it logs in", "assignee": "ann"}],
    ["create", {"title": "Deferred idea", "priority": 3}],
    ["create", {"title": "test-scratch leftover", "priority": 4}],
    ["dep", {"issue_id": "$2", "depends_on_id": "$1", "dep_type": "blocks"}],
    ["ready", {}],
    ["ready", {"sort_policy": "hybrid", "limit": 5}],
    ["ready", {"sort_policy": "priority", "brief": True}],
    ["ready", {"sort_policy": "oldest", "unassigned": True}],
    ["list", {}],
    ["list", {"status": "open", "unassigned": True, "query": "login"}],
    ["list", {"labels": ["ui"], "fields": ["id", "title"]}],
    ["show", {"issue_id": "$2"}],
    ["show", {"issue_id": "$1", "brief_deps": True}],
    ["blocked", {}],
    ["blocked", {"brief_deps": True}],
    ["claim", {"issue_id": "$1"}],
    ["update", {"issue_id": "$1", "priority": 0, "notes": "first notes", "brief": False}],
    ["update", {"issue_id": "$3", "status": "deferred"}],
    ["comment", {"issue_id": "$1", "text": "Started on the form"}],
    ["comments", {"issue_id": "$1"}],
    ["note", {"issue_id": "$1", "text": "remember the a11y labels"}],
    ["stats", {}],
    ["close", {"issue_id": "$1", "reason": "Designed"}],
    ["close", {"issue_id": "$2", "reason": "Built", "brief": False}],
    ["reopen", {"issue_ids": ["$2"], "reason": "Needs work"}],
    ["update", {"issue_id": "$2", "status": "closed"}],
    ["update", {"issue_id": "$2", "status": "open"}],
    ["admin", {"action": "validate"}],
    ["admin", {"action": "validate", "fix_all": True}],
    ["admin", {"action": "repair"}],
    ["admin", {"action": "repair", "fix": True}],
    ["admin", {"action": "schema"}],
    ["admin", {"action": "debug"}],
    ["admin", {"action": "migration"}],
    ["admin", {"action": "pollution"}],
    ["admin", {"action": "pollution", "clean": True}],
    ["stats", {}],
    ["context", {"action": "set", "workspace_root": "$WS"}],
    ["context", {"action": "show"}],
    ["context", {"action": "set", "workspace_root": "$WS2"}],
    ["context", {"action": "init", "prefix": "nw"}],
    ["create", {"title": "First in the new ledger"}],
]


def _substitute(value: Any, ids: list[str], ws: str) -> Any:
    if isinstance(value, str) and value == "$WS":
        return ws
    if isinstance(value, str) and value == "$WS2":  # a second, empty workspace
        return os.environ["BEADS_DRIVER_WS2"]
    if isinstance(value, str) and value.startswith("$") and value[1:].isdigit():
        return ids[int(value[1:]) - 1]
    if isinstance(value, list):
        return [_substitute(v, ids, ws) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, ids, ws) for k, v in value.items()}
    return value


def _payload(result: Any) -> Any:
    if result.structuredContent is not None:
        return result.structuredContent
    texts = [c.text for c in result.content if getattr(c, "text", None) is not None]
    joined = "\n".join(texts)
    try:
        return json.loads(joined)
    except ValueError:
        return joined


async def run(ws: str, bd_path: str, calls: list[list[Any]]) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("BEADS_PATH", "BEADS_DB", "BEADS_DIR", "BD_DB")}
    env.update(PATH=os.path.dirname(bd_path) + os.pathsep + env.get("PATH", ""),
               BEADS_WORKING_DIR=ws, BEADS_ACTOR="mcp-tester")
    params = StdioServerParameters(command=sys.executable, args=["-m", "beads_mcp"], env=env,
                                   cwd=ws)
    out: dict[str, Any] = {"calls": []}
    ids: list[str] = []
    # the server's log lines (each bd command it runs) go to $BEADS_DRIVER_ERRLOG if set
    with open(os.environ.get("BEADS_DRIVER_ERRLOG") or os.devnull, "a") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            out["tools"] = sorted(t.name for t in (await session.list_tools()).tools)
            resources = (await session.list_resources()).resources
            out["resources"] = sorted(str(r.uri) for r in resources)
            for r in resources:
                start = time.monotonic()
                entry: dict[str, Any] = {"tool": f"resource:{r.uri}", "args": {}}
                try:
                    got = await session.read_resource(r.uri)
                    entry.update(ok=True, result="".join(
                        getattr(c, "text", "") for c in got.contents))
                except Exception as exc:  # noqa: BLE001 - reported to the test
                    entry.update(ok=False, error=f"{type(exc).__name__}: {exc}")
                entry["seconds"] = round(time.monotonic() - start, 4)
                out["calls"].append(entry)
            for tool, args in calls:
                args = _substitute(args, ids, ws)
                entry = {"tool": tool, "args": args}
                start = time.monotonic()
                try:
                    res = await session.call_tool(tool, args)
                    payload = _payload(res)
                    if res.isError:
                        entry.update(ok=False, error=payload)
                    else:
                        entry.update(ok=True, result=payload)
                        if tool == "create":
                            data = payload.get("result", payload) if isinstance(
                                payload, dict) else payload
                            ids.append(data["id"])
                except Exception as exc:  # noqa: BLE001 - reported to the test
                    entry.update(ok=False, error=f"{type(exc).__name__}: {exc}")
                entry["seconds"] = round(time.monotonic() - start, 4)
                out["calls"].append(entry)
    return out


def main() -> None:
    """Command-line entry: see the module docstring."""
    ws, bd_path = sys.argv[1], sys.argv[2]
    calls = SCENARIO
    if len(sys.argv) > 3:
        with open(sys.argv[3], encoding="utf-8") as fh:
            calls = json.load(fh)
    print(json.dumps(asyncio.run(run(ws, bd_path, calls)), default=str))


if __name__ == "__main__":
    main()
