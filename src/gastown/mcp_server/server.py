"""The :class:`~.tools.LedgerTools` on the official ``mcp`` SDK (2.x ``MCPServer``).

Nine tools, each with a one-line description, typed arguments and the
read-only / destructive / idempotent hints.  Tools are ``async`` and call the
library directly on the server's event loop: one process, one open ledger, no
thread hops and no subprocess per call.  A :class:`~gastown.errors.GastownError`
becomes a tool error (``isError`` with its one-line message), never a crash.
"""

from __future__ import annotations

import builtins
import json
import os
from collections.abc import Callable
from typing import Any, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import ValidationError as PydanticValidationError

from .. import __version__
from ..errors import GastownError
from .tools import LedgerTools

__all__ = ["build_server", "serve"]

_READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                        open_world_hint=False)


def _write(destructive: bool, idempotent: bool) -> ToolAnnotations:
    return ToolAnnotations(read_only_hint=False, destructive_hint=destructive,
                           idempotent_hint=idempotent, open_world_hint=False)


_INSTRUCTIONS = ("A beads work ledger. Loop: prime, ready, claim, update, close. Results are "
                 "brief (id, title, status, priority, assignee) unless full=true; list and ready "
                 "are paged (total, next_offset).")


def _call(fn: Callable[..., dict[str, Any]], **kwargs: Any) -> Any:
    """Run one tool: compact JSON text, or a tool error with the library's one-line message."""
    try:
        return json.dumps(fn(**kwargs), ensure_ascii=False, separators=(",", ":"), default=str)
    except GastownError as exc:
        line = (str(exc).splitlines() or [type(exc).__name__])[0]
    except Exception as exc:  # noqa: BLE001 - a bug: one line for the agent, as the CLI does
        if os.environ.get("GT_DEBUG"):
            raise
        line = f"internal error: {type(exc).__name__}: {exc}".splitlines()[0]
    return CallToolResult(content=[TextContent(type="text", text=line)], is_error=True)


class _Server(MCPServer[Any]):
    """``MCPServer`` whose argument-validation errors are one line naming the argument."""

    async def call_tool(self, name: str, arguments: dict[str, Any],
                        context: Any = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if not isinstance(cause, PydanticValidationError) or not cause.errors():
                raise
            err = cause.errors()[0]
            where = ".".join(str(part) for part in err["loc"]) or "arguments"
            raise ToolError(f"{name}: invalid {where}: {err['msg']}") from None


def build_server(tools: LedgerTools) -> MCPServer[Any]:
    """An ``MCPServer`` exposing ``tools`` (nine tools; no resources, no prompts)."""
    server = _Server("gastown", version=__version__, instructions=_INSTRUCTIONS,
                     log_level="WARNING")

    def tool(description: str, annotations: ToolAnnotations) -> Callable[[Any], Any]:
        return server.tool(description=description, annotations=annotations,
                           structured_output=False)

    @tool("Who you are, the work you hold and what to do next.", _READ)
    async def prime(actor: str | None = None, full: bool = False) -> Any:
        return _call(tools.prime, actor=actor, full=full)

    @tool("Unblocked open beads in ready order, paged (total, next_offset).", _READ)
    async def ready(limit: int = 20, offset: int = 0, assignee: str | None = None,
                    unassigned: bool = False, full: bool = False) -> Any:
        return _call(tools.ready, limit=limit, offset=offset, assignee=assignee,
                     unassigned=unassigned, full=full)

    @tool("Beads by filter (status 'all' includes closed), paged (total, next_offset).", _READ)
    async def list(status: str | None = None, assignee: str | None = None,  # noqa: A001
                   label: str | None = None, query: str | None = None,
                   issue_type: str | None = None, limit: int = 50, offset: int = 0,
                   full: bool = False) -> Any:
        return _call(tools.list, status=status, assignee=assignee, label=label, query=query,
                     issue_type=issue_type, limit=limit, offset=offset, full=full)

    @tool("One bead; full=true adds all fields, dependencies and comments.", _READ)
    async def show(id: str, full: bool = False) -> Any:  # noqa: A002
        return _call(tools.show, id=id, full=full)

    @tool("Create a bead (priority 0-4, a child of parent when given).", _write(False, False))
    async def create(title: str, description: str = "", priority: int = 2,
                     issue_type: str = "task", labels: builtins.list[str] | None = None,  # noqa: B006
                     parent: str | None = None, actor: str | None = None,
                     full: bool = False) -> Any:
        return _call(tools.create, title=title, description=description, priority=priority,
                     issue_type=issue_type, labels=labels, parent=parent, actor=actor, full=full)

    @tool("Atomically claim an open unassigned bead: in_progress, assigned to you.",
          _write(False, False))
    async def claim(id: str, actor: str | None = None, full: bool = False) -> Any:  # noqa: A002
        return _call(tools.claim, id=id, actor=actor, full=full)

    @tool("Set fields of a bead; only the fields given change (notes are replaced).",
          _write(True, True))
    async def update(id: str, title: str | None = None, description: str | None = None,  # noqa: A002
                     notes: str | None = None, status: str | None = None,
                     priority: int | None = None, assignee: str | None = None,
                     actor: str | None = None, full: bool = False) -> Any:
        fields = {"title": title, "description": description, "notes": notes,
                  "status": status, "priority": priority, "assignee": assignee}
        changes = {k: v for k, v in fields.items() if v is not None}
        return _call(tools.update, id=id, changes=changes, actor=actor, full=full)

    @tool("Close a bead with a reason (refused while blockers or children are open).",
          _write(True, True))
    async def close(id: str, reason: str | None = None, actor: str | None = None,  # noqa: A002
                    full: bool = False) -> Any:
        return _call(tools.close, id=id, reason=reason, actor=actor, full=full)

    @tool("Add or remove a dependency: issue_id depends on depends_on_id.", _write(True, True))
    async def dep(action: Literal["add", "remove"], issue_id: str, depends_on_id: str,
                  dep_type: str = "blocks", actor: str | None = None) -> Any:
        return _call(tools.dep, action=action, issue_id=issue_id, depends_on_id=depends_on_id,
                     dep_type=dep_type, actor=actor)

    return server


def serve(tools: LedgerTools, http_port: int | None = None) -> None:
    """Serve over stdio, or streamable HTTP on 127.0.0.1:``http_port`` (path ``/mcp``)."""
    server = build_server(tools)
    try:
        if http_port is None:
            server.run("stdio")
        else:
            server.run("streamable-http", host="127.0.0.1", port=http_port)
    finally:
        tools.shutdown()
