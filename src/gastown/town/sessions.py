"""Sessions: an agent's program running under its provider.

:class:`Sessions` turns an agent's configuration into a :class:`SessionSpec`
(argv from its preset, its worktree as working directory, its identity in the
environment) and drives the provider.  Starting is idempotent: a live session
is left alone.  Everything needed to start a session again lives in town.toml
and the ledger, so a controller can restart crashed sessions and they pick
their hooked work up again through ``gt prime``.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import NotFoundError, TownError
from .agents import Preset, agent_argv, beacon, preset_of
from .config import AgentConfig
from .core import Town
from .launch import write_env_file
from .providers import Provider, SessionSpec, make_provider

__all__ = ["Sessions", "SessionInfo", "EARLY_EXIT_S"]

#: how long a freshly started session is watched for dying at once
EARLY_EXIT_S = 1.5


@dataclass
class SessionInfo:
    """The state of one agent's session."""

    agent: str
    provider: str
    session: str
    state: str  # running | exited | stopped
    pid: int | None = None
    exit_status: int | None = None
    last_activity: float | None = None
    workdir: str = ""

    def to_json(self) -> dict[str, Any]:
        """A plain dict for ``--json`` output."""
        return asdict(self)


class Sessions:
    """Start, stop and inspect the sessions of a town's agents."""

    def __init__(self, town: Town) -> None:
        self.town = town
        self._providers: dict[str, Provider] = {}

    def provider_for(self, agent: AgentConfig) -> Provider:
        """The provider the agent runs under (its own, else the town's default)."""
        cfg = self.town.config
        kind = agent.provider or cfg.town.provider
        if kind not in self._providers:  # by name from the registry, with its own table
            self._providers[kind] = make_provider(kind, self.town.gt_dir, cfg.providers.get(kind),
                                                  f"{cfg.path}: providers.{kind}")
        return self._providers[kind]

    def preset(self, agent: AgentConfig) -> Preset:
        """The agent's preset."""
        return preset_of(self.town.config.presets, agent.preset)

    @staticmethod
    def session_name(agent: AgentConfig) -> str:
        """The session's name: the agent's name (sessions live on the town's own server)."""
        return agent.name

    def status_path(self, agent: AgentConfig) -> str:
        """Where the launcher records how the agent's program ended."""
        return os.path.join(self.town.gt_dir, "sessions", f"{agent.name}.exit")

    def env_path(self, agent: AgentConfig) -> str:
        """Where the agent's own environment variables wait for its launcher (mode 0600)."""
        return os.path.join(self.town.gt_dir, "sessions", f"{agent.name}.env")

    def program(self, agent: AgentConfig, with_prompt: bool = True) -> list[str]:
        """The agent's own argument vector (its preset's, with the first prompt)."""
        prompt = beacon(self.town.actor_of(agent), agent.name) if with_prompt else None
        return agent_argv(self.preset(agent), agent.command, agent.args, prompt)

    def spec(self, agent: AgentConfig, with_prompt: bool = True) -> SessionSpec:
        """What to run for ``agent``: argv, working directory, environment, log.

        The program runs under :mod:`gastown.town.launch`, which records its
        exit status for whoever asks later (a controller telling exit from crash).
        """
        # the preset's variables (IS_SANDBOX, ...) first: the agent's own env wins
        env = {**self.preset(agent).env_dict(), **self.town.session_env(agent)}
        argv = [sys.executable, "-m", "gastown.town.launch", self.status_path(agent)]
        # variables from town.toml's [agents.X.env] may be secrets (API keys): they
        # reach the program through a 0600 file the launcher reads, never through
        # an argument vector (tmux's and env's argv are visible to every user in ps)
        private = {k: env.pop(k) for k, v in agent.env.items() if env.get(k) == v}
        if private:
            argv += ["--env-file", write_env_file(self.env_path(agent), private)]
        elif os.path.exists(self.env_path(agent)):
            os.remove(self.env_path(agent))  # variables since removed from town.toml
        argv += ["--", *self.program(agent, with_prompt)]
        return SessionSpec(name=self.session_name(agent), argv=argv,
                           cwd=self.town.workdir(agent), env=env,
                           log_path=os.path.join(self.town.gt_dir, "logs", f"{agent.name}.log"))

    # ------------------------------------------------------------ lifecycle
    def check(self, agent: AgentConfig) -> None:
        """Fail now, before anything is written, if the agent cannot run here.

        The provider must be usable (ProviderError otherwise) and the agent's
        program must be installed (TownError), so that a sling never pins work
        to a session that would die at once.
        """
        self.provider_for(agent).available()
        program = self.program(agent, with_prompt=False)[0]
        if os.sep in program and not os.path.isabs(program):
            return  # relative to the worktree, which may not exist yet
        search = self.town.session_env(agent)["PATH"]
        if shutil.which(program, path=search) is None:
            raise TownError(
                f"agent {agent.name}: program {program!r} (preset {agent.preset}) is not "
                f"installed or not on PATH; install it, or set its command in "
                f"{self.town.config_path}")

    def is_alive(self, agent: AgentConfig) -> bool:
        """True when the agent's program is running."""
        return self.provider_for(agent).is_alive(self.session_name(agent))

    def start(self, agent: AgentConfig, *, actor: str | None = None,
              ready_timeout: float = 30.0) -> tuple[SessionInfo, bool]:
        """Start the agent's session unless it runs; returns (info, started_now)."""
        from .setup import setup_files

        provider = self.provider_for(agent)
        name = self.session_name(agent)
        if provider.is_alive(name):
            return self.info(agent), False
        self.check(agent)
        workdir = self.town.workdir(agent)
        if not os.path.isdir(workdir):
            raise NotFoundError(f"agent {agent.name} has no worktree at {workdir} "
                                "(sling work to it, which creates one)")
        preset = self.preset(agent)
        setup_files(preset, workdir, os.path.join(self.town.bin_dir(), "gt"))
        spec = self.spec(agent)
        if provider.exists(name):  # a dead session's screen, kept for gt seance
            from .seance import keep_output

            keep_output(self, agent)
        try:
            os.remove(self.status_path(agent))  # a status from an earlier run means nothing
        except FileNotFoundError:
            os.makedirs(os.path.dirname(self.status_path(agent)), exist_ok=True)
        provider.start(spec)
        if preset.prompt == "nudge":
            if self.wait_ready(agent, ready_timeout):
                from .text import sanitize

                provider.nudge(name, sanitize(beacon(self.town.actor_of(agent), agent.name)))
        with self.town.ledger(actor) as led:
            # the pid lets a controller tell a session the town started from one it did not
            led.emit("session.started", None, {
                "agent": agent.name, "provider": provider.kind, "session": name,
                "workdir": workdir, "program": self.program(agent, False)[0],
                "preset": agent.preset, "pid": provider.pid(name)})
        return self.info(agent), True

    def confirm_started(self, agent: AgentConfig, within: float = EARLY_EXIT_S) -> None:
        """Watch a session just started for ``within`` seconds; raise TownError when its
        program has died (a clean exit, status 0, is no failure), with its exit
        status and last line of output."""
        provider = self.provider_for(agent)
        name = self.session_name(agent)
        deadline = time.monotonic() + within
        while provider.is_alive(name):
            if time.monotonic() >= deadline:
                return
            time.sleep(0.05)
        from .launch import read_status
        from .observe import last_line

        status = read_status(self.status_path(agent))
        if status is None:
            status = provider.exit_status(name)
        if status == 0:
            return
        said = "(status unknown)" if status is None else f"(status {status})"
        raise TownError(f"agent {agent.name}: its session exited at once {said}: "
                        f"{last_line(provider.peek(name, 40))[:300] or '(no output)'}")

    def stop(self, agent: AgentConfig, *, actor: str | None = None) -> bool:
        """Stop the agent's session; True when there was one."""
        provider = self.provider_for(agent)
        name = self.session_name(agent)
        if not provider.exists(name):
            return False
        # recorded first: stopping every process takes a moment, and a controller
        # that saw the session gone before the event would start it again
        with self.town.ledger(actor) as led:
            led.emit("session.stopped", None, {"agent": agent.name, "provider": provider.kind})
        from .seance import keep_output

        keep_output(self, agent)  # its last screen, for gt seance
        return provider.stop(name)

    def info(self, agent: AgentConfig) -> SessionInfo:
        """The state of the agent's session."""
        provider = self.provider_for(agent)
        name = self.session_name(agent)
        alive = provider.is_alive(name)
        exists = alive or provider.exists(name)
        status = None
        if exists and not alive:
            from .launch import read_status

            status = read_status(self.status_path(agent))
            if status is None:
                status = provider.exit_status(name)
        return SessionInfo(
            agent=agent.name, provider=provider.kind, session=name,
            state="running" if alive else ("exited" if exists else "stopped"),
            pid=provider.pid(name) if alive else None,
            exit_status=status,
            last_activity=provider.last_activity(name) if exists else None,
            workdir=self.town.workdir(agent))

    # ------------------------------------------------------------ readiness
    def wait_ready(self, agent: AgentConfig, timeout: float) -> bool:
        """Wait until the program looks ready for input (its preset's pattern or delay)."""
        preset = self.preset(agent)
        provider = self.provider_for(agent)
        name = self.session_name(agent)
        if not preset.ready:
            time.sleep(min(preset.ready_delay, timeout))
            return provider.is_alive(name)
        pattern = re.compile(preset.ready, re.MULTILINE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not provider.is_alive(name):
                return False
            if pattern.search(provider.peek(name, 20)):
                return True
            time.sleep(0.2)
        return False

    def wait_idle(self, agent: AgentConfig, timeout: float, idle_s: float = 2.0) -> bool:
        """Wait until the session has been quiet for ``idle_s`` seconds (False on timeout).

        Quiet means its recent output has not changed; a match of the preset's
        readiness pattern on the last lines counts as idle at once.
        """
        provider = self.provider_for(agent)
        name = self.session_name(agent)
        preset = self.preset(agent)
        pattern = re.compile(preset.ready, re.MULTILINE) if preset.ready else None
        deadline = time.monotonic() + timeout
        last = provider.peek(name, 20)
        since = time.monotonic()
        quiet_since = provider.last_activity(name)
        if quiet_since is not None:  # the provider's own clock of the last output
            since -= max(0.0, time.time() - quiet_since)
        while True:
            if not provider.is_alive(name):
                return False
            if pattern is not None and pattern.search(last):
                return True
            now = time.monotonic()
            if now - since >= idle_s:
                return True
            if now >= deadline:
                return False
            time.sleep(min(0.2, max(0.01, deadline - now)))
            screen = provider.peek(name, 20)
            if screen != last:
                last, since = screen, time.monotonic()

    def list(self) -> list[SessionInfo]:
        """Every agent that has or had a session, plus every configured agent."""
        seen: dict[str, SessionInfo] = {}
        for agent in self.town.config.all_agents():
            info = self.info(agent)
            if agent.pool is None or info.state != "stopped":
                seen[agent.name] = info
        return list(seen.values())
