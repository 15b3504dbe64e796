"""Plain-text views of molecules and protos for people (``--json`` bypasses these)."""

from __future__ import annotations

from typing import Any

__all__ = ["tree_text", "progress_text", "proto_text", "validate_text"]

_ICON = {"closed": "✓", "in_progress": "◐", "hooked": "🪝", "blocked": "●", "deferred": "❄",
         "pinned": "📌"}


def _icon(node: dict[str, Any]) -> str:
    if node["status"] == "open":
        if node.get("issue_type") == "gate":
            return "⏸"
        return "▶" if node.get("ready") else "○"
    return _ICON.get(node["status"], "?")


def tree_text(view: dict[str, Any]) -> str:
    """``bd mol show``: the root line, then the steps as a tree with their states."""
    root = view["root"]
    prog = view.get("progress")
    phase = "proto" if root.get("is_template") else (
        "wisp" if root.get("ephemeral") else "mol")
    head = f"{root['id']}  {root['title']}  [{phase}, {root['status']}]"
    if prog:
        head += f"  {prog['closed']}/{prog['total']} steps closed"
    lines = [head]

    def walk(nodes: list[dict[str, Any]], indent: str) -> None:
        for i, n in enumerate(nodes):
            last = i == len(nodes) - 1
            branch = "└── " if last else "├── "
            line = f"{indent}{branch}{_icon(n)} {n['id']}  {n['title']}"
            extra = []
            if n["status"] != "open" or not n.get("ready"):
                extra.append(n["status"] if n.get("issue_type") != "gate" else "gate")
            if n.get("assignee"):
                extra.append("@" + n["assignee"])
            if n.get("blocked_by") and n["status"] != "closed":
                extra.append("waits for " + ", ".join(n["blocked_by"][:4])
                              + (" …" if len(n["blocked_by"]) > 4 else ""))
            if n.get("ready") and n["status"] == "open":
                extra.append("ready")
            if extra:
                line += "  (" + "; ".join(extra) + ")"
            lines.append(line)
            walk(n.get("children", []), indent + ("    " if last else "│   "))

    walk(view["steps"], "")
    if prog and prog.get("current"):
        cur = prog["current"]
        lines.append(f"\nCurrent: {cur['id']}  {cur['title']} ({cur['status']})")
    elif prog and prog.get("complete"):
        lines.append("\nAll steps closed.")
    return "\n".join(lines)


def progress_text(p: dict[str, Any]) -> str:
    """``bd mol progress``: counts, a bar, and the current step."""
    width = 30
    filled = int(width * p["closed"] / p["total"]) if p["total"] else width
    bar = "█" * filled + "░" * (width - filled)
    lines = [f"{p['id']}  {p['title']}  [{p['phase']}, {p['status']}]",
             f"  {bar} {p['closed']}/{p['total']} steps closed ({p['percent']}%)",
             f"  in progress: {p['in_progress']}  ready: {p['ready']}  waiting: {p['waiting']}"]
    if p.get("current"):
        lines.append(f"  current: {p['current']['id']}  {p['current']['title']}")
    elif p.get("complete"):
        lines.append("  complete")
    return "\n".join(lines)


def proto_text(view: dict[str, Any]) -> str:
    """``bd cook`` / ``bd formula show``: the proto and its steps with their needs."""
    stored = "" if view.get("stored") else " (not stored)"
    lines = [f"{view['id']}  [{view['type']}]{stored}"]
    if view.get("description"):
        para = " ".join(view["description"].strip().split("\n\n")[0].split())
        lines.append("  " + para)
    if view.get("vars"):
        parts = []
        for name, spec in view["vars"].items():
            mark = "*" if spec.get("required") else ""
            default = f"={spec['default']}" if spec.get("default") not in (None, "") else ""
            parts.append(f"{name}{mark}{default}")
        lines.append("  vars: " + ", ".join(parts))
    for s in view["steps"]:
        depth = 1 + (1 if s.get("parent") else 0)
        needs = f"  ← {', '.join(n.split('.', 1)[1] for n in s['needs'])}" if s["needs"] else ""
        gate = f"  [gate: {s['gate']['type']}]" if s.get("gate") else ""
        cond = f"  [if {s['condition']}]" if s.get("condition") else ""
        lines.append(f"{'  ' * depth}{s['step']}: {s['title']}{needs}{gate}{cond}")
    return "\n".join(lines)


def validate_text(results: list[dict[str, Any]]) -> str:
    """``bd formula validate``: one line per file, warnings indented under it."""
    lines = []
    for r in results:
        if r["ok"]:
            lines.append(f"✓ {r['path']}: {r['name']} ({r['type']}, {r['steps']} steps)")
            lines += [f"  warning: {w}" for w in r["warnings"]]
        else:
            lines.append(f"✗ {r['error']}")
    return "\n".join(lines)
