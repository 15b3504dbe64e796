"""What an agent's session is doing, read from its screen (or log) and the ledger.

:func:`observe` looks at one agent and names its state:

``quarantined``
    the patrol stopped restarting it (a ``gt.quarantine.AGENT`` key);
``waiting for input``
    its screen ends in a question a program asks before it goes on (a known
    dialog: "Do you trust this folder?", "Do you want to …", ``[y/n]``,
    "Press Enter …"), or in a prompt with no output for ``quiet_after`` seconds;
``running``, ``exited``, ``stopped``
    the session's own state (``stopped``: there is no session).

It only reads, through the provider's public methods (``peek`` is tmux's
``capture-pane`` or the tail of a headless session's log), so it is safe to call
from a status screen once a second.
"""

from __future__ import annotations

import json
import re
import time
from typing import TYPE_CHECKING, Any

from .text import sanitize

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from .config import AgentConfig
    from .sessions import SessionInfo, Sessions

__all__ = ["observe", "classify", "last_line", "quarantined", "DIALOGS", "PROMPT_QUIET_S",
           "STATE_ORDER", "QUARANTINE_KEY"]

#: the kv key prefix of a quarantined agent's record (the controller's patrol writes it)
QUARANTINE_KEY = "gt.quarantine."

#: questions that stop a program until someone answers (pattern, what to call it)
DIALOGS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.IGNORECASE), what) for p, what in (
        (r"\bdo you trust\b", "asks whether to trust the folder"),
        (r"\bdo you want to\b", "asks for permission"),
        (r"\[\s*y\s*/\s*n\s*\]|\(\s*y\s*/\s*n\s*\)|\[\s*yes\s*/\s*no\s*\]", "asks yes or no"),
        (r"\bpress enter\b|\bpress return\b|\bhit enter\b", "waits for Enter"),
        (r"\bare you sure\b", "asks for confirmation"),
        (r"\bcontinue\?\s*$", "asks whether to continue"),
    ))
#: a line that ends like a prompt: a question, a colon, an arrow or a shell sign
_PROMPT = re.compile(r"(\?|:|>|\$|#|❯|›|»)\s*$")
#: seconds of silence after which a prompt counts as waiting for someone
PROMPT_QUIET_S = 20.0
#: abnormal states first: the order ``gt status`` lists agents in
STATE_ORDER = {"quarantined": 0, "waiting for input": 1, "exited": 2, "running": 3,
               "stopped": 4}
#: how many lines of the screen are searched for a dialog
DIALOG_LINES = 6


#: what tmux writes in a pane whose program ended (not the program's output)
_TMUX_DEAD = re.compile(r"^Pane is dead\b")


def last_line(screen: str) -> str:
    """The program's last line with text (cleaned for a terminal)."""
    for line in reversed(screen.splitlines()):
        clean = sanitize(line)
        if clean and not _TMUX_DEAD.match(clean):
            return clean
    return ""


def classify(screen: str, *, state: str, quiet_s: float | None, ready: str | None = None,
             quiet_after: float = PROMPT_QUIET_S) -> tuple[str, str]:
    """``(state, reason)`` of a session from its recent output and its session state.

    ``state`` is the session's own (``running``/``exited``/``stopped``);
    ``quiet_s`` is how long it has shown no output (None: unknown); ``ready`` is
    the preset's pattern of its idle prompt.
    """
    if state != "running":
        return state, ""
    lines = [sanitize(x) for x in screen.splitlines()]
    tail = [x for x in lines if x][-DIALOG_LINES:]
    # a dialog is the last thing on the screen: only lines from the last one asked on
    for line in reversed(tail[-3:]):
        for pattern, what in DIALOGS:
            if pattern.search(line):
                return "waiting for input", what + ("" if line == tail[-1] else
                                                    f": {line[:80]}")
    if tail and quiet_s is not None and quiet_s >= quiet_after:
        last = tail[-1]
        at_ready = bool(ready) and re.search(ready or "", "\n".join(tail[-3:]), re.MULTILINE)
        if at_ready or _PROMPT.search(last):
            return "waiting for input", f"at a prompt, no output for {int(quiet_s)}s"
    return "running", ""


def quarantined(led: Ledger) -> dict[str, dict[str, Any]]:
    """``agent -> record`` of every quarantined agent (restarts, work, ts)."""
    with led.snapshot() as r:
        rows = r.kv_with_prefix(QUARANTINE_KEY)
    out: dict[str, dict[str, Any]] = {}
    for key, value in rows:
        try:
            record = json.loads(str(value or "{}"))
        except ValueError:
            record = {}
        out[str(key)[len(QUARANTINE_KEY):]] = record if isinstance(record, dict) else {}
    return out


def observe(sessions: Sessions, agent: AgentConfig, info: SessionInfo,
            quarantine: dict[str, Any] | None = None, *, lines: int = 20,
            quiet_after: float = PROMPT_QUIET_S, now: float | None = None) -> dict[str, Any]:
    """The agent's ``state``, the ``reason`` for it and its ``last_line`` of output."""
    screen = ""
    if info.state != "stopped":
        try:
            screen = sessions.provider_for(agent).peek(info.session, lines)
        except Exception:  # noqa: BLE001 - a screen we cannot read is shown as empty
            screen = ""
    quiet = None
    if info.last_activity:
        quiet = max(0.0, (now or time.time()) - info.last_activity)
    try:
        ready = sessions.preset(agent).ready
    except Exception:  # noqa: BLE001 - an unknown preset: no idle pattern
        ready = None
    state, reason = classify(screen, state=info.state, quiet_s=quiet, ready=ready,
                             quiet_after=quiet_after)
    if state == "exited" and info.exit_status is not None:
        reason = f"exit status {info.exit_status}"
    if quarantine is not None:
        restarts = quarantine.get("restarts")
        reason = (f"restarted {restarts} times; start it by hand: gt session start "
                  f"{agent.name}" if restarts else f"gt session start {agent.name} lifts it")
        state = "quarantined"
    return {"state": state, "reason": reason, "last_line": last_line(screen)[:200]}
