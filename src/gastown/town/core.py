"""The :class:`Town`: a directory with ``town.toml``, a ledger and runtime state.

Layout (DESIGN §5)::

    <town>/town.toml              the configuration a person edits
    <town>/.beads/                the town ledger
    <town>/.gt/                   machine-local runtime: logs, tmux socket, locks
    <town>/rigs/<rig>/repo.git    bare clone; worktrees in rigs/<rig>/worktrees/<agent>/

A town is found from ``--town``, ``$GT_TOWN`` or by walking up from the working
directory to a folder holding ``town.toml`` -- so a session, whose working
directory is a worktree inside the town and whose environment names the town,
finds it either way.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..errors import ConflictError, NotFoundError, UsageError
from .config import (
    CONFIG_FILE,
    AgentConfig,
    TownConfig,
    default_config_text,
    load_config,
    parse_config,
)

if TYPE_CHECKING:
    from ..ledger.core import Ledger

__all__ = ["Town", "init_town", "GT_DIR"]

GT_DIR = ".gt"


class Town:
    """One town on disk: its root folder and its validated configuration."""

    def __init__(self, root: str, config: TownConfig | None = None) -> None:
        self.root = os.path.abspath(root)
        self.config = config or load_config(os.path.join(self.root, CONFIG_FILE))

    # ------------------------------------------------------------ finding
    @classmethod
    def find(cls, town: str | None = None, cwd: str | None = None) -> Town:
        """The town named by ``town``, ``$GT_TOWN``, or found upward from ``cwd``."""
        explicit = town or os.environ.get("GT_TOWN")
        if explicit:
            path = os.path.abspath(os.path.expanduser(explicit))
            if not os.path.isfile(os.path.join(path, CONFIG_FILE)):
                raise NotFoundError(f"{path} is not a town (no {CONFIG_FILE}); "
                                    "create one with 'gt init DIR'")
            return cls(path)
        here = os.path.abspath(cwd or os.getcwd())
        while True:
            if os.path.isfile(os.path.join(here, CONFIG_FILE)):
                return cls(here)
            parent = os.path.dirname(here)
            if parent == here:
                raise NotFoundError(
                    f"no town found in {os.path.abspath(cwd or os.getcwd())} or any parent: "
                    "run 'gt init DIR', or pass --town DIR (or set GT_TOWN)")
            here = parent

    def reload(self) -> None:
        """Re-read ``town.toml`` (after an edit)."""
        self.config = load_config(self.config_path)

    # -------------------------------------------------------------- paths
    @property
    def name(self) -> str:
        """The town's name (``[town] name``)."""
        return self.config.town.name

    @property
    def config_path(self) -> str:
        """``<town>/town.toml``."""
        return os.path.join(self.root, CONFIG_FILE)

    @property
    def gt_dir(self) -> str:
        """``<town>/.gt``: machine-local runtime state."""
        return os.path.join(self.root, GT_DIR)

    def runtime(self, *parts: str) -> str:
        """A path under ``.gt/``, its folder created."""
        path = os.path.join(self.gt_dir, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return path

    @property
    def beads_dir(self) -> str:
        """``<town>/.beads``."""
        return os.path.join(self.root, ".beads")

    def rig_dir(self, rig: str) -> str:
        """``<town>/rigs/<rig>``."""
        return os.path.join(self.root, "rigs", rig)

    def repo_dir(self, rig: str) -> str:
        """The rig's bare clone."""
        return os.path.join(self.rig_dir(rig), "repo.git")

    def workdir(self, agent: AgentConfig) -> str:
        """Where an agent works: its worktree on its rig, else the town's folder."""
        if agent.rig:
            return os.path.join(self.rig_dir(agent.rig), "worktrees", agent.name)
        return self.root

    # ------------------------------------------------------------- ledger
    def db_url(self) -> str:
        """The town ledger's database (a server URL from ``.beads/config.toml`` or the file)."""
        from ..ledger import discovery

        url = discovery._config_url(self.beads_dir)  # noqa: SLF001 - same project, one reader
        return url or os.path.join(self.beads_dir, discovery.DB_FILE)

    def ledger(self, actor: str | None = None) -> Ledger:
        """Open the town ledger (close it when done)."""
        from ..ledger.core import Ledger

        # cwd: the town's own .beads/ holds the server password file, if any
        return Ledger.open(self.db_url(), cwd=self.root, actor=actor)

    def formula_paths(self) -> list[str]:
        """Folders searched for formulas: the town's ``.beads/formulas`` and configured ones."""
        paths = [os.path.join(self.beads_dir, "formulas")]
        for p in self.config.town.formula_paths:
            p = os.path.expanduser(p)
            paths.append(p if os.path.isabs(p) else os.path.join(self.root, p))
        return paths

    # ------------------------------------------------------------- agents
    def agent(self, name: str) -> AgentConfig:
        """A configured agent or a pool worker by name."""
        return self.config.agent(name)

    def actor_of(self, agent: AgentConfig) -> str:
        """The agent's address and identity: ``<rig>/<role>/<name>`` (the town for no rig)."""
        return f"{agent.rig or self.name}/{agent.role}/{agent.name}"

    def agent_by_address(self, address: str) -> AgentConfig | None:
        """The agent whose name or ``rig/role/name`` address is ``address``."""
        for agent in self.config.all_agents():
            if address in (agent.name, self.actor_of(agent)):
                return agent
        return None

    def current_agent(self, name: str | None = None) -> AgentConfig:
        """The calling agent named ``name``; the command line passes ``$GT_AGENT`` here.

        None means no agent was named and the caller is not in a session: refused.
        """
        if not name:
            raise UsageError("not inside an agent session ($GT_AGENT is not set): "
                             "pass --agent NAME")
        return self.agent(name)

    def branch_of(self, agent: AgentConfig, work_id: str) -> str:
        """The branch an agent does one piece of work on."""
        return f"{agent.name}/{work_id}"

    def bin_dir(self) -> str:
        """``.gt/bin`` with ``gt`` and ``bd`` launchers for this interpreter.

        Sessions get it first on ``PATH`` so that the agent's ``gt``/``bd`` are
        the town's, without putting the whole virtualenv (its ``python``) there.
        """
        path = os.path.join(self.gt_dir, "bin")
        os.makedirs(path, exist_ok=True)
        for tool in ("gt", "bd"):
            target = os.path.join(path, tool)
            body = (f"#!{sys.executable}\nimport sys\nfrom gastown.cli.{tool} import main\n"
                    "sys.exit(main())\n")
            try:
                with open(target, encoding="utf-8") as fh:
                    if fh.read() == body:
                        continue
            except OSError:
                pass
            tmp = f"{target}.{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(body)
            os.chmod(tmp, 0o755)
            os.replace(tmp, target)
        return path

    def session_env(self, agent: AgentConfig) -> dict[str, str]:
        """What a session's environment adds: identity, ledger, git author (DESIGN §5)."""
        actor = self.actor_of(agent)
        email = self.config.town.email
        env = dict(agent.env)
        env.update({
            "GT_TOWN": self.root,
            "GT_AGENT": agent.name,
            "GT_RIG": agent.rig or "",
            "GT_ROLE": agent.role,
            "GT_POOL": agent.pool or "",
            "BD_ACTOR": actor,
            "BD_DB": self.db_url(),
            "GIT_AUTHOR_NAME": actor,
            "GIT_COMMITTER_NAME": actor,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_EMAIL": email,
            "PATH": self.bin_dir() + os.pathsep + os.environ.get("PATH", os.defpath),
        })
        from ..ledger.discovery import passfile_of

        passfile = passfile_of(self.beads_dir)
        if passfile and env["BD_DB"].startswith(("postgresql://", "postgres://")):
            # the password reaches libpq through its file: no secret in any argv
            env["PGPASSFILE"] = passfile
        return env

    # -------------------------------------------------------------- locks
    @contextmanager
    def lock(self, name: str) -> Iterator[None]:
        """An exclusive advisory lock on ``.gt/<name>.lock`` (waits for it)."""
        path = self.runtime(f"{name}.lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _default_email() -> str:
    try:
        out = subprocess.run(["git", "config", "--get", "user.email"], capture_output=True,
                             text=True, timeout=5, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    return out or "gastown@localhost"


def init_town(directory: str, *, name: str | None = None, prefix: str | None = None,
              provider: str | None = None, email: str | None = None,
              actor: str | None = None, owner: str | None = None) -> Town:
    """Create a town in ``directory``: ``town.toml``, ``.beads/``, ``.gt/``, ``rigs/``.

    An existing town is refused; an existing ledger in ``.beads/`` is kept, never
    replaced.
    """
    from ..ledger.core import Ledger

    root = os.path.abspath(directory)
    if os.path.exists(os.path.join(root, CONFIG_FILE)):
        raise ConflictError(f"{root} is already a town ({CONFIG_FILE} exists); "
                            "edit it, or choose another directory")
    name = name or re.sub(r"[^A-Za-z0-9_-]+", "-", os.path.basename(root)).strip("-") or "town"
    prefix = prefix or re.sub(r"[^a-z0-9]", "", name.lower())[:6] or "gt"
    text = default_config_text(name, prefix, email or _default_email())
    if provider:
        text = text.replace('\nprovider = "tmux"\n', f'\nprovider = "{provider}"\n', 1)
    if owner:  # the federation entity: gt://OWNER/NAME (DESIGN: federation)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9@._+-]*", owner):
            raise UsageError(f"--owner {owner!r}: an email or domain (no '/', no spaces)")
        text = text.replace("\n[town]\n", f"\n[town]\nowner = {json.dumps(owner)}\n", 1)
    parse_config(tomllib.loads(text), os.path.join(root, CONFIG_FILE))  # refuse bad flags early
    os.makedirs(root, exist_ok=True)  # only once the flags are known to be good
    existing = os.path.exists(os.path.join(root, ".beads", "beads.db"))
    server = os.path.exists(os.path.join(root, ".beads", "config.toml"))
    if server:  # a server ledger ('bd init --db URL' here) is adopted too
        from ..ledger import discovery

        url = discovery._config_url(os.path.join(root, ".beads"))  # noqa: SLF001
        Ledger.open(url, cwd=root, actor=actor).close()
        existing = True
    elif existing:
        Ledger.open(os.path.join(root, ".beads", "beads.db"), actor=actor).close()
    else:
        Ledger.init(root, prefix=prefix, actor=actor).close()
    for sub in (GT_DIR, os.path.join(GT_DIR, "logs"), "rigs"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    with open(os.path.join(root, GT_DIR, ".gitignore"), "w", encoding="utf-8") as fh:
        fh.write("# machine-local runtime state of the town\n*\n")
    ignore = os.path.join(root, ".gitignore")
    if not os.path.exists(ignore):
        with open(ignore, "w", encoding="utf-8") as fh:
            fh.write("# rigs hold clones and worktrees; .gt/ is machine-local\n.gt/\nrigs/\n")
    tmp = os.path.join(root, f"{CONFIG_FILE}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, os.path.join(root, CONFIG_FILE))
    town = Town(root)
    with town.ledger(actor) as led:
        led.emit("town.init", None, {"town": root, "name": name, "prefix": prefix,
                                     "adopted_ledger": existing})
    return town
