"""Upstream ``bd``'s automatic export and ``.beads/metadata.json``.

With ``bd config set export.auto true`` (upstream's key) every command that
changed a SQLite ledger rewrites ``.beads/issues.jsonl`` (or ``export.path``)
before it exits, so git sees the change without a manual ``bd export``;
``export.git-add true`` also stages the file.  As upstream, a server ledger
(PostgreSQL) is never auto-exported, and ``--no-auto-flush`` or
``BD_NO_AUTO_FLUSH=1`` / ``BEADS_NO_AUTO_FLUSH=1`` skip it for one command.
Only loaded after a command has written.
"""

from __future__ import annotations

import json
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .core import Ledger
    from .store import Store

__all__ = ["flush_if_enabled", "write_metadata", "METADATA_FILE"]

METADATA_FILE = "metadata.json"
_TRUE = ("1", "true", "yes", "on")


def _env_off() -> bool:
    return any(os.environ.get(v, "").lower() in _TRUE
               for v in ("BD_NO_AUTO_FLUSH", "BEADS_NO_AUTO_FLUSH"))


def flush_if_enabled(led: Ledger) -> str | None:
    """Export the ledger to its JSONL file when ``export.auto`` is on; returns the path.

    A failure to write is reported on stderr as a warning: the command's change
    is already committed, and the next write (or ``bd export``) tries again.
    """
    if _env_off() or led.store.dialect != "sqlite" or not led.beads_dir:
        return None
    cfg = led.config()
    if cfg.get("export.auto", "").lower() not in _TRUE:
        return None
    path = os.path.join(led.beads_dir, cfg.get("export.path") or "issues.jsonl")
    from ..errors import GastownError
    from .jsonl import export_jsonl

    try:
        export_jsonl(led, path)
    except GastownError as exc:
        import sys

        sys.stderr.write(f"Warning: auto-export to {path} failed: {exc}\n")
        return None
    if cfg.get("export.git-add", "").lower() in _TRUE:
        import subprocess

        subprocess.run(["git", "add", "--", path], cwd=os.path.dirname(led.beads_dir),
                       capture_output=True, check=False)
    return path


def write_metadata(beads_dir: str, store: Store) -> str:
    """Write ``.beads/metadata.json`` as upstream tools read it (never the server's URL).

    ``{"database": "beads.db", "jsonl_export": "issues.jsonl", "backend": "sqlite"}``
    for a SQLite ledger in ``.beads/``; ``{"backend": "postgresql"}`` for a server.
    An existing file is left as it is.
    """
    path = os.path.join(beads_dir, METADATA_FILE)
    if os.path.exists(path):
        return path
    db = getattr(store, "path", None)  # the file a SQLite store opened
    if store.dialect != "sqlite" or not isinstance(db, str):
        meta = {"backend": store.dialect, "jsonl_export": "issues.jsonl"}
    else:
        inside = os.path.dirname(os.path.abspath(db)) == os.path.abspath(beads_dir)
        meta = {"database": os.path.basename(db) if inside else os.path.abspath(db),
                "jsonl_export": "issues.jsonl", "backend": "sqlite"}
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(meta, indent=2) + "\n")
    return path
