"""``gt doctor``: one line per check of the town (controller, watchdog, orders, keys)."""

from __future__ import annotations

from typing import Any

from ._app import Ctx
from .gt_common import add_parser, clean, get_town


def _doctor(ctx: Ctx) -> int:
    from ..controller.doctor import run_checks, worst

    town = get_town(ctx)
    checks = run_checks(town)
    overall = worst(checks)
    marks = {"ok": "✓", "warn": "!", "fail": "✗"}

    def text() -> str:
        lines = [f"{marks[c['status']]} {c['check']:<12} {clean(c['detail'])}" for c in checks]
        lines.append({"ok": "The town is healthy.", "warn": "The town works; see the warnings.",
                      "fail": "The town has problems; see the failures."}[overall])
        return "\n".join(lines)

    ctx.out({"status": overall, "checks": checks}, text)
    return 1 if overall == "fail" else 0


def setup(name: str, sub: Any) -> None:
    """Add the ``doctor`` parser."""
    from .gt import COMMANDS

    p = add_parser(sub, name, COMMANDS[name][1])
    p.set_defaults(func=_doctor)
