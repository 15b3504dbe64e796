"""Untrusted text made safe to type or print: control characters out, chunks, tmux escaping.

Kept apart from :mod:`.nudge` (which drives sessions) so that providers can use
it without importing the session machinery.
"""

from __future__ import annotations

import unicodedata

__all__ = ["sanitize", "chunks", "tmux_arg", "CHUNK_SIZE"]

CHUNK_SIZE = 256
#: bidirectional overrides and isolates: they make text read differently than it is
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}


def sanitize(text: str) -> str:
    """``text`` without control characters; line breaks and tabs become spaces.

    Removes C0/C1 controls (ESC, Ctrl-C, backspace, ...), DEL and bidi controls,
    so that nothing typed can act as a key, an escape sequence or a hidden edit.
    """
    out = []
    for ch in text:
        if ch in "\r\n\t\v\f":
            out.append(" ")
        elif unicodedata.category(ch) == "Cc" or ch in _BIDI:
            continue
        else:
            out.append(ch)
    return "".join(out).strip()


def chunks(text: str, size: int = CHUNK_SIZE) -> list[str]:
    """``text`` cut into pieces of at most ``size`` characters."""
    if size < 1:
        raise ValueError("chunk size must be positive")
    return [text[i:i + size] for i in range(0, len(text), size)] or []


def tmux_arg(piece: str) -> str:
    """Escape one argument for tmux's argv parser.

    tmux treats an argument that ends in ``;`` as a command separator (and
    ``\\;`` as a literal ``;``).  Doubling the escape before a final ``;`` keeps
    every argument exactly as it was; nothing else in argv form is special.
    """
    if piece.endswith(";"):
        return piece[:-1] + "\\;"
    return piece
