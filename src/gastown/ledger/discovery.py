"""Finding the ledger: ``--db``, the environment, or ``.beads/`` upward like git.

Kept to ``os`` calls only: this runs on every hot command.
"""

from __future__ import annotations

import os

from ..errors import NotInitializedError

__all__ = ["BEADS_DIR", "DB_FILE", "PASS_FILE", "find_beads_dir", "resolve_url",
           "default_actor", "passfile_of"]

BEADS_DIR = ".beads"
DB_FILE = "beads.db"
JSONL_FILE = "issues.jsonl"
CONFIG_FILE = "config.toml"
#: the PostgreSQL password of the ledger in ``config.toml`` (libpq's passfile format,
#: mode 0600, listed in ``.beads/.gitignore``): secrets never go into ``config.toml``
PASS_FILE = "pgpass"


def find_beads_dir(start: str | None = None) -> str | None:
    """The nearest ``.beads`` directory at or above ``start`` (default: cwd)."""
    here = os.path.abspath(start or os.getcwd())
    while True:
        candidate = os.path.join(here, BEADS_DIR)
        if os.path.isdir(candidate):
            return candidate
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def _config_url(beads_dir: str) -> str | None:
    path = os.path.join(beads_dir, CONFIG_FILE)
    if not os.path.exists(path):
        return None
    import tomllib  # only when a config file exists: keeps the hot path lean

    from ..errors import ValidationError

    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValidationError(f"{path}: {exc}") from None
    url = data.get("database")
    return str(url) if url else None


def resolve_url(db: str | None = None, cwd: str | None = None) -> tuple[str, str | None]:
    """Return ``(url, beads_dir)`` for the ledger to open.

    Order: an explicit ``db`` (URL or path), ``BD_DB``/``BEADS_DB``, the
    ``database`` key of ``.beads/config.toml``, else ``.beads/beads.db``.  The
    ``.beads`` directory is ``$BEADS_DIR`` when set (upstream's variable, which
    the beads MCP server passes), else the nearest one upward.
    """
    env_dir = os.environ.get("BEADS_DIR")
    if env_dir:
        if not os.path.isdir(env_dir):
            raise NotInitializedError(f"BEADS_DIR={env_dir} is not a directory")
        beads_dir: str | None = os.path.abspath(env_dir)
    else:
        beads_dir = find_beads_dir(cwd)
    explicit = db or os.environ.get("BD_DB") or os.environ.get("BEADS_DB")
    if explicit:
        return explicit, beads_dir
    if beads_dir is None:
        raise NotInitializedError(
            f"no beads ledger found in {os.path.abspath(cwd or os.getcwd())} or any parent: "
            "run 'bd init' (or pass --db URL)")
    url = _config_url(beads_dir)
    if url:
        return url, beads_dir
    path = os.path.join(beads_dir, DB_FILE)
    if not os.path.exists(path):
        raise NotInitializedError(
            f"{beads_dir} has no {DB_FILE}: run 'bd init' (or 'bd import' an issues.jsonl)")
    return path, beads_dir


def passfile_of(beads_dir: str | None) -> str | None:
    """The ledger's private PostgreSQL passfile in ``beads_dir``, when there is one."""
    if not beads_dir:
        return None
    path = os.path.join(beads_dir, PASS_FILE)
    return path if os.path.exists(path) else None


def default_actor() -> str:
    """Who is acting: ``BD_ACTOR``, ``BEADS_ACTOR``, ``$USER``, ``$LOGNAME``, else the login name.

    The one rule for every command (``bd``, ``gt`` and nudges): with no variable
    set, the name of the account running the process, never a made-up name.
    """
    for var in ("BD_ACTOR", "BEADS_ACTOR", "USER", "LOGNAME"):
        if os.environ.get(var):
            return os.environ[var]
    import pwd  # only when no variable names the actor: keeps the hot path lean

    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid with no account entry (some containers)
        return f"uid-{os.getuid()}"
