"""A bead's dependency graph as inline SVG, drawn on the server (no script, no layout library).

Three columns: what the bead depends on (left), the bead (middle), what depends
on it (right).  Every node is a link to its bead page and carries
``data-id``; edges are labelled with their type.
"""

from __future__ import annotations

from html import escape
from typing import Any

__all__ = ["dependency_svg"]

NODE_W, NODE_H, GAP, COL = 220, 44, 14, 300
#: at most this many nodes a column (the rest are summed up in one "+N more" node)
MAX_COLUMN = 25


def _node(x: int, y: int, node: dict[str, Any], centre: bool = False) -> str:
    bead_id = escape(str(node.get("id", "")))
    title = str(node.get("title") or "")
    title = title if len(title) <= 28 else title[:27] + "\u2026"
    status = escape(str(node.get("status") or "unknown"))
    cls = f"node status-{status}" + (" centre" if centre else "")
    return (f'<a href="/beads/{bead_id}"><g class="{cls}" data-id="{bead_id}">'
            f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
            f'<text x="{x + 8}" y="{y + 17}" class="nid">{bead_id} \u00b7 {status}</text>'
            f'<text x="{x + 8}" y="{y + 35}" class="ntitle">{escape(title)}</text></g></a>')


def _column(edges: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    nodes = [{"id": e.get(key), "title": e.get("title"), "status": e.get("status"),
              "type": e.get("type")} for e in edges]
    if len(nodes) > MAX_COLUMN:
        rest = len(nodes) - MAX_COLUMN + 1
        nodes = nodes[:MAX_COLUMN - 1] + [{"id": "", "title": f"+{rest} more",
                                           "status": "more", "type": ""}]
    return nodes


def dependency_svg(bead: dict[str, Any]) -> str:
    """An ``<svg>`` of ``bead`` (from ``Ledger.show``) and its direct dependency edges."""
    left = _column(bead.get("dependencies") or [], "depends_on_id")
    right = _column(bead.get("dependents") or [], "issue_id")
    rows = max(1, len(left), len(right))
    height = rows * (NODE_H + GAP) + GAP
    width = 2 * COL + NODE_W + 2 * GAP
    mid_y = (height - NODE_H) // 2
    cx = GAP + COL
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="depgraph" role="img" '
             f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
             f"<title>dependencies of {escape(str(bead['id']))}</title>"]
    for column, x, into in ((left, GAP, True), (right, GAP + 2 * COL, False)):
        top = (height - (len(column) * (NODE_H + GAP) - GAP)) // 2
        for i, node in enumerate(column):
            y = top + i * (NODE_H + GAP)
            # an arrow points from the waiting bead to the one it waits for
            if into:  # the centre depends on this node
                x1, y1, x2, y2 = cx, mid_y + NODE_H // 2, x + NODE_W, y + NODE_H // 2
            else:     # this node depends on the centre
                x1, y1, x2, y2 = x, y + NODE_H // 2, cx + NODE_W, mid_y + NODE_H // 2
            parts.append(f'<line class="edge edge-{escape(str(node["type"]))}" x1="{x1}" '
                         f'y1="{y1}" x2="{x2}" y2="{y2}" marker-end="url(#arrow)"/>')
            if node["type"]:  # the label near the outer node, where edges fan out
                lx = x + NODE_W + 40 if into else x - 40
                parts.append(f'<text class="elabel" x="{lx}" y="{y + NODE_H // 2 - 4}">'
                             f'{escape(str(node["type"]))}</text>')
            parts.append(_node(x, y, node))
    parts.append(_node(cx, mid_y, bead, centre=True))
    parts.insert(2, '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
                    'markerWidth="5" markerHeight="5" orient="auto-start-reverse">'
                    '<path d="M0,0 L10,5 L0,10 z"/></marker></defs>')
    parts.append("</svg>")
    return "".join(parts)
