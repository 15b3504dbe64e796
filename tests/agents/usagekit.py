"""Usage records shaped like Claude Code's transcript lines (the cost tests write them)."""

from __future__ import annotations

import json
from datetime import UTC, datetime


def iso(ts: float) -> str:
    """A timestamp as the agent programs write them."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def claude_line(ts: float, mid: str, model: str, inp: int, out: int, cw: int = 0,
                cr: int = 0) -> str:
    """One line of a Claude Code transcript carrying usage."""
    return json.dumps({
        "type": "assistant", "timestamp": iso(ts), "requestId": f"req_{mid}",
        "sessionId": "0b9e4c1e", "message": {
            "id": mid, "model": model, "role": "assistant",
            "content": [{"type": "text", "text": "working"}],
            "usage": {"input_tokens": inp, "output_tokens": out,
                      "cache_creation_input_tokens": cw, "cache_read_input_tokens": cr}}})
