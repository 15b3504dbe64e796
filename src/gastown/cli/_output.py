"""Human output: aligned tables, a few colours, a progress bar.

Plain stdlib, and only used when a person is reading: with ``--json`` or a pipe
the commands print plain, parseable text and no escape codes.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["color", "painter", "bead_line", "table", "Progress", "priority_label"]

_CODES = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "magenta": "35",
          "cyan": "36", "dim": "2", "bold": "1"}
_STATUS_COLOR = {"open": "green", "in_progress": "yellow", "blocked": "red", "deferred": "dim",
                 "closed": "dim", "pinned": "magenta", "hooked": "cyan"}
_STATUS_ICON = {"open": "○", "in_progress": "◐", "blocked": "●", "deferred": "❄",
                "closed": "✓", "pinned": "📌", "hooked": "🪝"}


def _use_color(stream: Any = None) -> bool:
    stream = stream or sys.stdout
    return stream.isatty() and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


def color(text: str, name: str, stream: Any = None) -> str:
    """``text`` in an ANSI colour when writing to a terminal, unchanged otherwise."""
    if not _use_color(stream):
        return text
    return f"\x1b[{_CODES[name]}m{text}\x1b[0m"


def painter(stream: Any = None) -> Callable[[str, str], str]:
    """A ``paint(text, colour)`` function for ``stream`` (stdout): colours only on a terminal.

    Decided once, so a screen is painted all or nothing; ``NO_COLOR`` (set
    and not empty) and ``TERM=dumb`` turn colour off.
    """
    if not _use_color(stream):
        return lambda text, _name: text
    return lambda text, name: f"\x1b[{_CODES[name]}m{text}\x1b[0m"


def priority_label(p: Any) -> str:
    """``P0`` … ``P4``."""
    return f"P{p}"


def status_text(status: str) -> str:
    """A status with its icon, coloured on a terminal."""
    icon = _STATUS_ICON.get(status, "?")
    return color(f"{icon} {status}", _STATUS_COLOR.get(status, "bold"))


def bead_line(b: Mapping[str, Any], show_status: bool = True) -> str:
    """One line for a bead: ``id [P2] [task] status - title (@assignee)``."""
    parts = [color(str(b["id"]), "cyan"), f"[{priority_label(b.get('priority', 2))}]",
             f"[{b.get('issue_type', 'task')}]"]
    if show_status:
        parts.append(status_text(str(b.get("status", "open"))))
    line = " ".join(parts) + " - " + str(b.get("title", ""))
    if b.get("assignee"):
        line += color(f" @{b['assignee']}", "dim")
    labels = b.get("labels")
    if labels:
        line += color(" [" + ", ".join(labels) + "]", "dim")
    return line


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    """Rows as aligned columns; on a terminal the last column is cut to the width."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    width = shutil.get_terminal_size((120, 24)).columns if sys.stdout.isatty() else 0
    for n, r in enumerate(cells):
        line = "  ".join(c.ljust(widths[i]) for i, c in enumerate(r[:-1]))
        line = (line + "  " + r[-1]) if len(r) > 1 else r[-1]
        if width and len(line) > width:
            line = line[: width - 1] + "…"
        out.append(color(line.rstrip(), "bold") if n == 0 else line.rstrip())
    return "\n".join(out)


class Progress:
    """A one-line progress bar on stderr, shown only when stderr is a terminal."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty() and not os.environ.get("GT_NO_PROGRESS")
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.05 and done != total:
            return
        self._last = now
        if total:
            filled = int(30 * done / total)
            bar = "█" * filled + "░" * (30 - filled)
            sys.stderr.write(f"\r{self.label} {bar} {done}/{total}")
        else:
            sys.stderr.write(f"\r{self.label} {done}…")
        sys.stderr.flush()

    def finish(self) -> None:
        """Clear the bar's line."""
        if self.enabled:
            sys.stderr.write("\r\x1b[2K")
            sys.stderr.flush()
