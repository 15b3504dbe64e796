"""``gt mcp``: the ledger as a small set of MCP tools for editor agents.

:mod:`.tools` is plain library code (one open ledger, identity passed per
call, brief or full results, paging); :mod:`.server` puts those tools on the
official ``mcp`` SDK, over stdio or streamable HTTP on 127.0.0.1.  Nothing
here imports the SDK until a server is built, so the package stays optional
(``pip install 'gastown[mcp]'``).
"""

from __future__ import annotations

from .tools import BRIEF_FIELDS, LedgerTools

__all__ = ["BRIEF_FIELDS", "LedgerTools"]
