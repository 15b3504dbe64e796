"""The embedded relay's events on disk, so a restarted relay still serves them.

An append-only JSON-lines file (mode 0600 in a 0700 folder): one admitted event per
line, flushed and fsynced before the relay answers OK.  Loading re-checks every line
(id recomputed, signature verified: a file edited by hand cannot smuggle an event in),
skips what is damaged (counted, with the first line's number), and keeps only the
newest event of each replaceable or addressable slot (NIP-01: newest ``created_at``,
then the lowest id) -- rewriting the file without the rest when that saves anything.
Bounded: at most :data:`MAX_BYTES` are read.
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..errors import ConflictError, ValidationError
from . import kinds
from .events import EventError, check, from_dict, loads_bounded

__all__ = ["RelayStore", "MAX_BYTES"]

#: the largest store file a relay reads back (bytes)
MAX_BYTES = 1 << 30


def _slot(d: dict[str, Any]) -> tuple[int, str, str] | None:
    kind = int(d["kind"])
    if kinds.is_replaceable(kind):
        return (kind, d["pubkey"], "")
    if kinds.is_addressable(kind):
        tag = next((t[1] for t in d["tags"] if len(t) >= 2 and t[0] == "d"), "")
        return (kind, d["pubkey"], str(tag))
    return None


def _newer(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Does ``a`` replace ``b`` (newer, or as new with the lower id)?"""
    return bool(a["created_at"] > b["created_at"]
                or (a["created_at"] == b["created_at"] and a["id"] < b["id"]))


class RelayStore:
    """A relay's admitted events in one file (see the module)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.ids: set[str] = set()
        self.damaged = 0
        self.first_damaged: int | None = None
        self._fh: Any = None
        self._lock_fd: int | None = None

    def load(self) -> list[dict[str, Any]]:
        """The stored events, manifests first, then oldest first (ties by id)."""
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, mode=0o700, exist_ok=True)
        self._lock()
        kept: dict[str, dict[str, Any]] = {}
        slots: dict[tuple[int, str, str], dict[str, Any]] = {}
        lines = 0
        if os.path.exists(self.path):
            if os.path.getsize(self.path) > MAX_BYTES:
                raise ValidationError(f"relay store {self.path}: over {MAX_BYTES} bytes "
                                      "(move it away to start empty)")
            with open(self.path, "rb") as fh:
                for n, raw in enumerate(fh, 1):
                    lines = n
                    try:
                        d = check(from_dict(loads_bounded(raw, f"{self.path}:{n}"))).as_dict()
                    except EventError:
                        self.damaged += 1
                        self.first_damaged = self.first_damaged or n
                        continue
                    slot = _slot(d)
                    if slot is not None:
                        old = slots.get(slot)
                        if old is not None and not _newer(d, old):
                            continue
                        if old is not None:
                            kept.pop(old["id"], None)
                        slots[slot] = d
                    kept[d["id"]] = d
        evs = sorted(kept.values(), key=lambda d: (d["kind"] != kinds.MANIFEST,
                                                    d["created_at"], d["id"]))
        if lines > len(evs):
            self._rewrite(evs)
        self.ids = set(kept)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.chmod(self.path, 0o600)
        self._fh = os.fdopen(fd, "a", encoding="utf-8")
        return evs

    def _lock(self) -> None:
        """One relay per store file: a second one is refused, not interleaved."""
        import fcntl

        fd = os.open(f"{self.path}.lock", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise ConflictError(f"relay store {self.path} is in use by another relay "
                                "(give this one --store PATH or --memory)") from None
        self._lock_fd = fd

    def _rewrite(self, evs: list[dict[str, Any]]) -> None:
        tmp = f"{self.path}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for d in evs:
                fh.write(json.dumps(d, ensure_ascii=False, separators=(",", ":")) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def has(self, eid: str) -> bool:
        """Is this event already stored?"""
        return eid in self.ids

    def add(self, d: dict[str, Any]) -> None:
        """Append an admitted event (durable before the relay says OK)."""
        if d["id"] in self.ids or self._fh is None:
            return
        self._fh.write(json.dumps(d, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.ids.add(d["id"])

    def close(self) -> None:
        """Close the file."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None
