"""The controller's policies: the ``[controller]``, ``[patrol]`` and ``[merge]`` tables.

Everything the deterministic machinery decides by is configuration a person
edits in ``town.toml`` (DESIGN §2.2: no role, no threshold is named in code
beyond these defaults).  A rig's test and land commands live on the rig
(``[rigs.NAME] test = "…"``, ``land = "…"``) and are parsed by the town config.

Every mistake is one :class:`ValidationError` naming the file and the key.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError

if TYPE_CHECKING:
    from ..town.config import TownConfig

__all__ = ["ControllerPolicy", "PatrolPolicy", "MergePolicy", "Policies", "parse_policies",
           "parse_command", "TABLES"]

#: the top-level tables of town.toml this module owns
TABLES = ("controller", "patrol", "merge")


@dataclass(frozen=True)
class ControllerPolicy:
    """``[controller]``: how often the loop looks at the event log and ticks."""

    tick: float = 10.0          # seconds between reconcile ticks (patrol, pools, convoys)
    poll: float = 0.1           # seconds between event-log polls (dispatch latency)
    nudge_workers: int = 16     # nudges delivered at once (each is a few tmux calls)


@dataclass(frozen=True)
class PatrolPolicy:
    """``[patrol]``: what counts as dead, stalled or crash-looping, and who hears of it."""

    start_missing: bool = True   # start a session for hooked work that has none
    restart_dead: bool = True    # restart a session that ended with work on its hook
    stall_after: float = 900.0   # seconds without output or ledger activity: nudge
    restart_after: float = 300.0  # seconds after that nudge without progress: restart
    max_restarts: int = 5        # restarts within `window` seconds quarantine an agent
    window: float = 3600.0
    notify: str | None = None    # who is mailed about quarantines (default: the owner)


@dataclass(frozen=True)
class MergePolicy:
    """``[merge]``: the refinery's queue order and limits."""

    aging: float = 600.0         # seconds of waiting that raise a request one priority level
    test_timeout: float = 900.0  # seconds a rig's test command may run
    retries: int = 3             # attempts when the target moves under a landing


@dataclass(frozen=True)
class Policies:
    """All three tables."""

    controller: ControllerPolicy = field(default_factory=ControllerPolicy)
    patrol: PatrolPolicy = field(default_factory=PatrolPolicy)
    merge: MergePolicy = field(default_factory=MergePolicy)

    @classmethod
    def of(cls, cfg: TownConfig) -> Policies:
        """The policies of a loaded town configuration."""
        return parse_policies(cfg.raw, cfg.path)


def _number(t: dict[str, Any], key: str, where: str, default: float, low: float,
            high: float) -> float:
    value = t.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(f"{where}.{key} must be a number (seconds), not {value!r}")
    if not low <= float(value) <= high:
        raise ValidationError(f"{where}.{key} must be between {low:g} and {high:g}")
    return float(value)


def _int(t: dict[str, Any], key: str, where: str, default: int, low: int, high: int) -> int:
    value = t.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{where}.{key} must be an integer from {low} to {high}")
    return value


def _bool(t: dict[str, Any], key: str, where: str, default: bool) -> bool:
    value = t.get(key, default)
    if not isinstance(value, bool):
        raise ValidationError(f"{where}.{key} must be true or false")
    return value


def _check_keys(t: Any, allowed: set[str], where: str) -> dict[str, Any]:
    if not isinstance(t, dict):
        raise ValidationError(f"{where} must be a table")
    unknown = sorted(set(t) - allowed)
    if unknown:
        raise ValidationError(f"{where}: unknown key(s) {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(allowed))})")
    return t


def parse_policies(data: dict[str, Any], path: str = "town.toml") -> Policies:
    """Validate the three tables of parsed ``town.toml`` data (defaults for what is absent)."""
    c = _check_keys(data.get("controller", {}), {"tick", "poll", "nudge_workers"},
                    f"{path}: controller")
    where = f"{path}: controller"
    controller = ControllerPolicy(
        tick=_number(c, "tick", where, 10.0, 0.2, 3600.0),
        poll=_number(c, "poll", where, 0.1, 0.01, 5.0),
        nudge_workers=_int(c, "nudge_workers", where, 16, 1, 64))
    p = _check_keys(data.get("patrol", {}),
                    {"start_missing", "restart_dead", "stall_after", "restart_after",
                     "max_restarts", "window", "notify"}, f"{path}: patrol")
    where = f"{path}: patrol"
    notify = p.get("notify")
    if notify is not None and (not isinstance(notify, str) or not notify.strip()):
        raise ValidationError(f"{where}.notify must be a mail address (a string)")
    patrol = PatrolPolicy(
        start_missing=_bool(p, "start_missing", where, True),
        restart_dead=_bool(p, "restart_dead", where, True),
        stall_after=_number(p, "stall_after", where, 900.0, 1.0, 7 * 86400.0),
        restart_after=_number(p, "restart_after", where, 300.0, 1.0, 7 * 86400.0),
        max_restarts=_int(p, "max_restarts", where, 5, 1, 1000),
        window=_number(p, "window", where, 3600.0, 1.0, 30 * 86400.0),
        notify=notify)
    m = _check_keys(data.get("merge", {}), {"aging", "test_timeout", "retries"},
                    f"{path}: merge")
    where = f"{path}: merge"
    merge = MergePolicy(
        aging=_number(m, "aging", where, 600.0, 1.0, 365 * 86400.0),
        test_timeout=_number(m, "test_timeout", where, 900.0, 1.0, 86400.0),
        retries=_int(m, "retries", where, 3, 1, 100))
    return Policies(controller, patrol, merge)


def parse_command(value: Any, where: str) -> list[str] | None:
    """A command from town.toml: a string (split once, like a shell, never run by one) or list.

    These commands come from the town owner's own configuration file, never from
    bead text, so splitting them is safe; they are run as argument vectors.
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise ValidationError(f"{where}: {exc}") from None
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        words = list(value)
    else:
        raise ValidationError(f"{where} must be a string or a list of strings")
    if not words:
        raise ValidationError(f"{where} is empty")
    return words
