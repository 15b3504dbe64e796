"""Token usage read from what each agent program writes on the local disk.

No agent program reports usage to the town; each keeps its own session logs, and
this module reads them (read-only, line by line, malformed lines skipped):

``claude`` (Claude Code)
    ``<claude_dir>/projects/<cwd with every non-alphanumeric character as '-'>/
    **/*.jsonl``: lines whose ``message.usage`` holds ``input_tokens``,
    ``output_tokens``, ``cache_creation_input_tokens`` and
    ``cache_read_input_tokens``; one API message may be written on several lines
    (one per content block), so records are counted once per ``message.id`` and
    ``requestId``.  ``<claude_dir>`` is ``$CLAUDE_CONFIG_DIR`` or ``~/.claude``.
``codex`` (OpenAI Codex CLI)
    ``<codex_dir>/sessions/**/rollout-*.jsonl`` whose ``session_meta`` names the
    agent's worktree as ``cwd``; ``event_msg`` lines of type ``token_count``
    carry running totals (``info.total_token_usage``), of which each increase is a
    record; the model comes from ``turn_context``.  ``$CODEX_HOME`` or ``~/.codex``.
``gemini`` (Gemini CLI)
    ``<gemini_dir>/tmp/<sha256 of cwd, or its name in projects.json>/chats/
    session-*.json``: each ``gemini`` message's ``tokens`` (``input``, ``output``,
    ``cached``, ``thoughts``).  ``~/.gemini``.
``file`` (any other agent, the ``command`` preset among them)
    ``<town>/.gt/usage/<agent>.jsonl``, lines shaped like Claude's:
    ``{"timestamp": "2026-01-02T03:04:05Z", "message": {"id": "m1", "model": "M",
    "usage": {"input_tokens": 10, "output_tokens": 5}}}``.

Every record is normalised to ``input`` (uncached input), ``output`` (reasoning
included), ``cache_write`` and ``cache_read`` token counts with a time and a model.
"""

from __future__ import annotations

import functools
import glob
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["UsageRecord", "claude_project_dir", "read_claude", "read_codex", "read_gemini",
           "usage_file", "program_usage", "file_usage", "codex_index", "homes", "SOURCES"]

#: where usage is read from
SOURCES = ("claude", "codex", "gemini", "file")
#: lines longer than this are not usage records (a transcript line can hold a file)
MAX_LINE = 4 * 1024 * 1024


@dataclass(frozen=True)
class UsageRecord:
    """Tokens one model call used."""

    ts: float
    model: str
    input: int
    output: int
    cache_write: int
    cache_read: int
    source: str
    key: str  # what makes it unique within its source (message id, file and line)

    @property
    def tokens(self) -> int:
        """Every token of the call."""
        return self.input + self.output + self.cache_write + self.cache_read

    def usage(self) -> dict[str, int]:
        """The four counts, as a price takes them."""
        return {"input": self.input, "output": self.output, "cache_write": self.cache_write,
                "cache_read": self.cache_read}


def _epoch(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value) / (1000.0 if value > 1e11 else 1.0)
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return 0
    return max(0, min(int(value), 10**12))


def _lines(path: str, needle: bytes = b"") -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` of each JSON object line of ``path`` that holds ``needle``
    (most lines of a transcript are text and tool output: they are not parsed)."""
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError:
        return
    with fh:
        for n, raw in enumerate(fh, 1):
            if len(raw) > MAX_LINE or needle not in raw:
                continue
            try:
                obj = json.loads(raw)
            except ValueError:
                continue
            if isinstance(obj, dict):
                yield n, obj


# ------------------------------------------------------------------ Claude Code
def claude_project_dir(claude_dir: str, cwd: str) -> str:
    """Where Claude Code keeps the transcripts of sessions run in ``cwd``."""
    return os.path.join(claude_dir, "projects", re.sub(r"[^A-Za-z0-9]", "-", cwd))


#: records of files read before, by path: (size, mtime, records); a transcript only grows,
#: so a long-running reader (the controller's budget watch) parses each file once per change
_CACHE: dict[str, tuple[int, int, list[UsageRecord]]] = {}
_CACHE_MAX = 4096


def _cached(path: str, key: str, read: Callable[[], Iterator[UsageRecord]]
            ) -> list[UsageRecord]:
    try:
        st = os.stat(path)
    except OSError:
        return []
    hit = _CACHE.get(key)
    if hit is not None and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
        return hit[2]
    records = list(read())
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[key] = (st.st_size, st.st_mtime_ns, records)
    return records


def _claude_lines(path: str, source: str) -> Iterator[UsageRecord]:
    yield from _cached(path, f"{source}\0{path}", lambda: _claude_file(path, source))


def _claude_file(path: str, source: str) -> Iterator[UsageRecord]:
    for n, obj in _lines(path, b'"usage"'):
        msg = obj.get("message")
        if not isinstance(msg, dict) or not isinstance(msg.get("usage"), dict):
            continue
        ts = _epoch(obj.get("timestamp"))
        if ts is None:
            continue
        u = msg["usage"]
        mid = msg.get("id")
        key = (f"{mid}:{obj.get('requestId') or ''}" if isinstance(mid, str) and mid
               else f"{path}:{n}")
        yield UsageRecord(ts, str(msg.get("model") or "unknown")[:200],
                          _int(u.get("input_tokens")), _int(u.get("output_tokens")),
                          _int(u.get("cache_creation_input_tokens")),
                          _int(u.get("cache_read_input_tokens")), source, key)


def read_claude(claude_dir: str, cwd: str) -> Iterator[UsageRecord]:
    """Claude Code's usage records of sessions run in ``cwd``."""
    base = claude_project_dir(claude_dir, cwd)
    for path in sorted(glob.glob(os.path.join(glob.escape(base), "**", "*.jsonl"),
                                 recursive=True)):
        yield from _claude_lines(path, "claude")


# ------------------------------------------------------------------ Codex CLI
#: the working directory each rollout file's ``session_meta`` names
_CODEX_CWD: dict[str, str] = {}


def _codex_read(path: str) -> Iterator[UsageRecord]:
    model = "unknown"
    prev: dict[str, int] = {}
    _CODEX_CWD[path] = ""
    for n, obj in _lines(path):
        kind, payload = obj.get("type"), obj.get("payload")
        if not isinstance(payload, dict):
            continue
        if kind == "session_meta":
            _CODEX_CWD[path] = os.path.normpath(str(payload.get("cwd") or "")[:4096])
        elif kind == "turn_context" and isinstance(payload.get("model"), str):
            model = payload["model"][:200]
        elif kind == "event_msg" and payload.get("type") == "token_count":
            info = payload.get("info")
            total = info.get("total_token_usage") if isinstance(info, dict) else None
            if not isinstance(total, dict):
                continue
            now = {k: _int(total.get(k)) for k in ("input_tokens", "cached_input_tokens",
                                                   "output_tokens")}
            delta = {k: max(0, v - prev.get(k, 0)) for k, v in now.items()}
            prev = now
            if not any(delta.values()):
                continue  # the same totals written again
            ts = _epoch(obj.get("timestamp"))
            if ts is None:
                continue
            cached = delta["cached_input_tokens"]
            yield UsageRecord(ts, model, max(0, delta["input_tokens"] - cached),
                              delta["output_tokens"], 0, cached, "codex", f"{path}:{n}")


def codex_index(codex_dir: str) -> dict[str, list[UsageRecord]]:
    """The Codex CLI's usage records by the working directory of their session
    (read once for all of a town's agents: every rollout file names its own)."""
    pattern = os.path.join(glob.escape(os.path.join(codex_dir, "sessions")), "**",
                           "rollout-*.jsonl")
    index: dict[str, list[UsageRecord]] = {}
    for path in sorted(glob.glob(pattern, recursive=True)):
        records = _cached(path, f"codex\0{path}", functools.partial(_codex_read, path))
        index.setdefault(_CODEX_CWD.get(path, ""), []).extend(records)
    return index


def read_codex(codex_dir: str, cwd: str) -> Iterator[UsageRecord]:
    """The Codex CLI's usage records of sessions run in ``cwd``."""
    yield from codex_index(codex_dir).get(os.path.normpath(cwd), [])


# ------------------------------------------------------------------ Gemini CLI
def _gemini_dirs(gemini_dir: str, cwd: str) -> list[str]:
    names = [hashlib.sha256(cwd.encode()).hexdigest()]
    try:
        with open(os.path.join(gemini_dir, "projects.json"), encoding="utf-8") as fh:
            projects = json.load(fh).get("projects") or {}
        if isinstance(projects.get(cwd), str) and "/" not in projects[cwd]:
            names.append(projects[cwd])
    except (OSError, ValueError, AttributeError):
        pass
    return [os.path.join(gemini_dir, "tmp", n, "chats") for n in names]


def read_gemini(gemini_dir: str, cwd: str) -> Iterator[UsageRecord]:
    """The Gemini CLI's usage records of sessions run in ``cwd``."""
    for chats in _gemini_dirs(gemini_dir, cwd):
        for path in sorted(glob.glob(os.path.join(glob.escape(chats), "session-*.json"))):
            try:
                if os.path.getsize(path) > 16 * MAX_LINE:
                    continue
                with open(path, encoding="utf-8") as fh:
                    data = json.load(fh)
            except (OSError, ValueError):
                continue
            messages = data.get("messages") if isinstance(data, dict) else None
            for i, m in enumerate(messages if isinstance(messages, list) else []):
                if not isinstance(m, dict) or not isinstance(m.get("tokens"), dict):
                    continue
                ts = _epoch(m.get("timestamp"))
                if ts is None:
                    continue
                t = m["tokens"]
                cached = _int(t.get("cached"))
                yield UsageRecord(ts, str(m.get("model") or "unknown")[:200],
                                  max(0, _int(t.get("input")) - cached),
                                  _int(t.get("output")) + _int(t.get("thoughts")), 0, cached,
                                  "gemini", f"{path}:{m.get('id') or i}")


# ------------------------------------------------------------------ the town's own file
def usage_file(gt_dir: str, agent: str) -> str:
    """Where an agent without a log of its own may append usage lines (Claude's shape)."""
    return os.path.join(gt_dir, "usage", f"{agent}.jsonl")


def homes(claude_dir: str | None = None, codex_dir: str | None = None,
          gemini_dir: str | None = None) -> tuple[str, str, str]:
    """Where Claude Code, Codex and Gemini keep their logs (given, from the environment,
    else their defaults in the home directory)."""
    home = os.path.expanduser("~")
    return (os.path.expanduser(claude_dir or os.environ.get("CLAUDE_CONFIG_DIR")
                               or os.path.join(home, ".claude")),
            os.path.expanduser(codex_dir or os.environ.get("CODEX_HOME")
                               or os.path.join(home, ".codex")),
            os.path.expanduser(gemini_dir or os.path.join(home, ".gemini")))


def program_usage(cwd: str, *, claude_dir: str | None = None, codex_dir: str | None = None,
                  gemini_dir: str | None = None,
                  codex: dict[str, list[UsageRecord]] | None = None) -> list[UsageRecord]:
    """Every usage record the agent programs wrote for sessions run in ``cwd``, each once
    (``codex``: a :func:`codex_index` read before, for many directories)."""
    claude, codex_home, gemini = homes(claude_dir, codex_dir, gemini_dir)
    index = codex if codex is not None else codex_index(codex_home)
    return _unique((read_claude(claude, cwd), iter(index.get(os.path.normpath(cwd), [])),
                    read_gemini(gemini, cwd)))


def file_usage(gt_dir: str, agent: str) -> list[UsageRecord]:
    """The records in the agent's own usage file (:func:`usage_file`), each once."""
    return _unique((_claude_lines(usage_file(gt_dir, agent), "file"),))


def _unique(streams: tuple[Iterator[UsageRecord], ...]) -> list[UsageRecord]:
    seen: set[tuple[str, str]] = set()
    out: list[UsageRecord] = []
    for stream in streams:
        for rec in stream:
            if (rec.source, rec.key) not in seen:
                seen.add((rec.source, rec.key))
                out.append(rec)
    out.sort(key=lambda r: r.ts)
    return out
