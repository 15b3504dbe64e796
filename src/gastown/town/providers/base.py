"""The agent protocol: one interface, several providers (DESIGN §5).

A provider runs named sessions.  It knows nothing about towns, roles or work:
a :class:`SessionSpec` says what to run, where and with which environment, and
the provider starts, watches, types into and stops it.  Everything a controller
needs to restart a crashed session later is in the spec and in
:meth:`Provider.exit_status`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ...config.values import known

__all__ = ["SessionSpec", "NudgeResult", "Provider", "SessionState"]


@dataclass
class SessionSpec:
    """What to run: ``argv`` in ``cwd`` with ``env`` added to the caller's environment."""

    name: str
    argv: list[str]
    cwd: str
    env: dict[str, str] = field(default_factory=dict)
    log_path: str | None = None


@dataclass
class NudgeResult:
    """What happened to a nudge: typed at all, and seen arriving in the session."""

    delivered: bool
    verified: bool
    chunks: int = 0
    text: str = ""
    detail: str = ""


@dataclass
class SessionState:
    """One session as a snapshot sees it (a controller looks at all of them each tick)."""

    name: str
    alive: bool
    pid: int | None = None
    last_activity: float | None = None


class Provider(ABC):
    """Start, stop, interrupt, watch and type into named sessions."""

    #: the name used in ``town.toml`` (``provider = "tmux"``)
    kind: str = ""

    @classmethod
    def parse_options(cls, options: dict[str, Any], where: str) -> dict[str, Any]:
        """Validate the provider's ``[providers.KIND]`` table (``where`` names it).

        Returns the keyword arguments its constructor takes after the town's
        runtime folder; a provider without options accepts an empty table only.
        """
        known(options, set(), where)
        return {}

    def __init__(self, gt_dir: str) -> None:
        """A provider for the town whose runtime folder (``.gt``) is ``gt_dir``."""
        self.gt_dir = gt_dir

    @abstractmethod
    def available(self) -> None:
        """Raise :class:`~gastown.errors.ProviderError` when this provider cannot run here."""

    @abstractmethod
    def start(self, spec: SessionSpec) -> None:
        """Start a session (the caller has checked it is not running)."""

    @abstractmethod
    def stop(self, name: str, grace: float = 3.0) -> bool:
        """Stop a session; True when there was one to stop."""

    @abstractmethod
    def interrupt(self, name: str) -> None:
        """Interrupt what the session is doing (Ctrl-C / SIGINT), leaving it running."""

    @abstractmethod
    def exists(self, name: str) -> bool:
        """True when the provider knows the session (running or exited but kept)."""

    @abstractmethod
    def is_alive(self, name: str) -> bool:
        """True when the session's program is running."""

    @abstractmethod
    def exit_status(self, name: str) -> int | None:
        """The exit status of a session whose program has ended, when known."""

    @abstractmethod
    def pid(self, name: str) -> int | None:
        """The process id of the session's program, when running."""

    @abstractmethod
    def last_activity(self, name: str) -> float | None:
        """When the session last produced output (epoch seconds), when known."""

    @abstractmethod
    def peek(self, name: str, lines: int = 40) -> str:
        """The session's recent output (at most ``lines`` lines)."""

    @abstractmethod
    def nudge(self, name: str, text: str,
              before_submit: Callable[[], None] | None = None) -> NudgeResult:
        """Type ``text`` (already sanitised) into the session and submit it.

        ``before_submit`` runs once the text is in, right before it is submitted
        (Enter): a sender records there that the nudge is about to go out.
        """

    @abstractmethod
    def attach_argv(self, name: str) -> list[str]:
        """The argument vector that attaches a terminal to the session."""

    @abstractmethod
    def sessions(self) -> list[str]:
        """Names of the sessions this provider has."""

    def snapshot(self) -> dict[str, SessionState]:
        """Every session's state at once (providers override this with one cheap call)."""
        out: dict[str, SessionState] = {}
        for name in self.sessions():
            alive = self.is_alive(name)
            out[name] = SessionState(name, alive, self.pid(name) if alive else None,
                                     self.last_activity(name))
        return out
