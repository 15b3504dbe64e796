"""Where a federation log lives: a directory (``log.jsonl`` + ``town.json``) or a git ref.

In git the two files are committed on :data:`REF` (``refs/gastown/federation``)
of a local bare repository in ``.gt/federation/`` and pushed with plain git to
the target; a reader fetches that ref into its own cache repository.  A target
is git when it looks like a git URL (``ssh://``, ``https://``, ``git@host:``,
``file://``), ends in ``.git``, or is a directory holding a bare repository.

What a reader takes from a target is bounded: a log over :data:`MAX_LOG_BYTES` or a
town document over :data:`MAX_TOWN_BYTES` is refused before it is read whole.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from ..errors import NotFoundError, ValidationError

__all__ = ["REF", "LOG_FILE", "TOWN_FILE", "MAX_LOG_BYTES", "MAX_TOWN_BYTES", "is_git",
           "write_dir", "read_dir", "push_git", "fetch_git", "read", "write",
           "is_relay", "relay_sync"]

REF = "refs/gastown/federation"
LOG_FILE = "log.jsonl"
TOWN_FILE = "town.json"
#: the largest log (bytes) a reader accepts from another town
MAX_LOG_BYTES = 256 * 1024 * 1024
#: the largest town document (bytes) a reader accepts
MAX_TOWN_BYTES = 1024 * 1024
_GIT_ENV = {"GIT_AUTHOR_NAME": "gastown", "GIT_AUTHOR_EMAIL": "gastown@localhost",
            "GIT_COMMITTER_NAME": "gastown", "GIT_COMMITTER_EMAIL": "gastown@localhost",
            "GIT_TERMINAL_PROMPT": "0"}


class TransportError(NotFoundError):
    """A target that cannot be read or written (gone, refused, not a log)."""


def is_git(url: str) -> bool:
    """Is ``url`` a git repository (rather than a plain directory)?"""
    if url.startswith(("ssh://", "https://", "http://", "git://", "file://", "git@")):
        return True
    if url.endswith(".git"):
        return True
    if os.path.exists(os.path.join(url, ".git")):  # a repository with a work tree
        return True
    return os.path.isfile(os.path.join(url, "HEAD")) and os.path.isdir(os.path.join(url, "objects"))


def _git(args: list[str], cwd: str, data: bytes | None = None) -> bytes:
    env = {**os.environ, **_GIT_ENV}
    try:
        p = subprocess.run(["git", *args], cwd=cwd, input=data, capture_output=True, env=env,
                           timeout=300, check=False)
    except FileNotFoundError:
        raise TransportError("git is not installed") from None
    if p.returncode:
        err = p.stderr.decode("utf-8", "replace").strip().splitlines()
        raise TransportError(f"git {args[0]} failed: {err[-1] if err else p.returncode}")
    return p.stdout


def _cache(cache_dir: str) -> str:
    if not os.path.isdir(os.path.join(cache_dir, "objects")):
        os.makedirs(cache_dir, exist_ok=True)
        _git(["init", "-q", "--bare", cache_dir], cwd=os.path.dirname(cache_dir) or ".")
    return cache_dir


def write_dir(path: str, log_bytes: bytes, town: dict[str, Any]) -> None:
    """Write the log and the town document into directory ``path`` (each atomically)."""
    try:
        os.makedirs(path, exist_ok=True)
        for name, data in ((LOG_FILE, log_bytes), (TOWN_FILE, _town_bytes(town))):
            tmp = os.path.join(path, f".{name}.tmp")
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, os.path.join(path, name))
    except OSError as exc:
        raise TransportError(f"cannot publish to {path}: {exc.strerror or exc}") from None


def _town_bytes(town: dict[str, Any]) -> bytes:
    return (json.dumps(town, sort_keys=True, indent=2) + "\n").encode("utf-8")


def _limits() -> tuple[tuple[str, int], ...]:
    return ((TOWN_FILE, MAX_TOWN_BYTES), (LOG_FILE, MAX_LOG_BYTES))


def _too_large(where: str, name: str, limit: int) -> ValidationError:
    return ValidationError(f"{where}: {name} is larger than {limit} bytes (refused)")


def read_dir(path: str) -> tuple[dict[str, Any], bytes]:
    """(town document, log bytes) of a published directory."""
    got: list[bytes] = []
    try:
        for name, limit in _limits():
            with open(os.path.join(path, name), "rb") as fh:
                got.append(fh.read(limit + 1))
            if len(got[-1]) > limit:
                raise _too_large(path, name, limit)
    except OSError as exc:
        raise TransportError(f"cannot read {path}: {exc.strerror or exc}") from None
    return _town_doc(got[0], path), got[1]


def _town_doc(raw: bytes, where: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        raise ValidationError(f"{where}: {TOWN_FILE} is not JSON") from None
    if not isinstance(doc, dict):
        raise ValidationError(f"{where}: {TOWN_FILE} is not a JSON object")
    return doc


def push_git(url: str, cache_dir: str, log_bytes: bytes, town: dict[str, Any]) -> str:
    """Commit the files on :data:`REF` of the cache repository and push it to ``url``."""
    repo = _cache(cache_dir)
    blobs = [(name, _git(["hash-object", "-w", "--stdin"], repo, data).decode().strip())
             for name, data in ((LOG_FILE, log_bytes), (TOWN_FILE, _town_bytes(town)))]
    tree_in = "".join(f"100644 blob {sha}\t{name}\n" for name, sha in blobs).encode()
    tree = _git(["mktree"], repo, tree_in).decode().strip()
    parent = subprocess.run(["git", "rev-parse", "-q", "--verify", REF], cwd=repo,
                            capture_output=True, text=True, check=False).stdout.strip()
    if parent and _git(["rev-parse", f"{parent}^{{tree}}"], repo).decode().strip() == tree:
        commit = parent
    else:
        args = ["commit-tree", tree, "-m", "gastown federation log"]
        if parent:
            args += ["-p", parent]
        commit = _git(args, repo).decode().strip()
        _git(["update-ref", REF, commit], repo)
    _git(["push", "-q", "--", url, f"{REF}:{REF}"], repo)  # "--": a url is never an option
    return commit


def fetch_git(url: str, cache_dir: str, name: str) -> tuple[dict[str, Any], bytes]:
    """Fetch the log ref of ``url`` into the cache; (town document, log bytes)."""
    repo = _cache(cache_dir)
    local = f"refs/gastown/remotes/{name}"
    _git(["fetch", "-q", "--no-tags", "--", url, f"+{REF}:{local}"], repo)
    got: list[bytes] = []
    for name, limit in _limits():
        size = _git(["cat-file", "-s", f"{local}:{name}"], repo).decode().strip()
        if not size.isdigit() or int(size) > limit:
            raise _too_large(url, name, limit)
        got.append(_git(["cat-file", "blob", f"{local}:{name}"], repo))
    return _town_doc(got[0], url), got[1]


def write(url: str, cache_dir: str, log_bytes: bytes, town: dict[str, Any]) -> None:
    """Publish to a directory or a git repository."""
    if is_git(url):
        push_git(url, cache_dir, log_bytes, town)
    else:
        write_dir(url, log_bytes, town)


def read(url: str, cache_dir: str, name: str) -> tuple[dict[str, Any], bytes]:
    """Read a published log from a directory or a git repository."""
    if is_git(url):
        return fetch_git(url, cache_dir, name)
    return read_dir(url)


#: a remote whose --url is a Nostr relay is synced by the mesh package (gastown[mesh]),
#: found through this entry-point group so federation never imports it
RELAY_SCHEMES = ("ws://", "wss://")


def is_relay(url: str) -> bool:
    """Is ``url`` a Nostr relay (``ws://``/``wss://``) rather than a log?"""
    return url.startswith(RELAY_SCHEMES)


def relay_sync(ledger: Any, name: str, remote: dict[str, Any]) -> dict[str, Any]:
    """Sync remote ``name`` over its relay with the installed handler."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="gastown.relay_sync"):
        return dict(ep.load()(ledger, name, remote))
    raise TransportError(f"remote {name}: {remote['url']} is a relay; relays need "
                         "pip install 'gastown[mesh]'")
