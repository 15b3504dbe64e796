"""``gt doctor``: is this town healthy?  One line per check, ok / warn / fail.

Checks, cheapest first: the ledger opens; the controller runs and its heartbeat
is fresh; a watchdog (``gt up --watch`` or a systemd unit) keeps it running;
every order's formula loads; the runtime folder and private keys are private
(``.gt/`` not writable by others, keys 0600 in 0700 folders, the PostgreSQL
password file 0600); the programs the agents need (git, tmux) are installed.
A warning is worth knowing; a failure is broken.  Nothing here changes the town.
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..town.core import Town

__all__ = ["run_checks", "worst"]

OK, WARN, FAIL = "ok", "warn", "fail"
#: the federation signing key under .gt/ (federation.keys.KEY_FILE; the controller layer
#: does not import federation, so the path is named here too)
KEY_FILE = os.path.join("federation", "signing-key.pem")


def _check(name: str, status: str, detail: str) -> dict[str, str]:
    return {"check": name, "status": status, "detail": detail}


def _ledger(town: Town) -> dict[str, str]:
    try:
        with town.ledger() as led:
            last = led.last_event_seq()
        return _check("ledger", OK, f"{town.db_url().split('@')[-1]} opens ({last} events)")
    except Exception as exc:  # noqa: BLE001 - every failure to open is the finding
        return _check("ledger", FAIL, f"does not open: {exc}")


def _controller(town: Town, now: float) -> dict[str, str]:
    from .service import controller_info

    info = controller_info(town)
    if not info["running"]:
        return _check("controller", WARN, "not running (start it with gt up --watch)")
    tick = float(info.get("tick_s") or 10.0)
    last = info.get("last_tick")
    if isinstance(last, (int, float)) and now - last > 3 * tick + 30:
        return _check("controller", FAIL, f"pid {info['pid']} runs but its last pass was "
                                          f"{now - last:.0f}s ago (tick {tick:g}s): stuck?")
    return _check("controller", OK, f"running (pid {info['pid']}, {info.get('ticks') or 0} "
                                    "passes)")


def _watchdog(town: Town) -> dict[str, str]:
    from .watchdog import watchdog_info

    info = watchdog_info(town)
    if info["running"]:
        return _check("watchdog", OK, f"running (pid {info['pid']}, "
                                      f"{info['restarts']} restart(s))")
    supervisor = _supervisor(town)
    if supervisor:
        return _check("watchdog", OK, f"the controller is supervised by {supervisor}")
    return _check("watchdog", WARN, "none: a dead controller stays dead (gt up --watch, or "
                                    "the systemd unit in docs/systemd.md)")


def _supervisor(town: Town) -> str | None:
    """``systemd`` when the running controller's parent is systemd (a unit runs it)."""
    from .service import controller_info

    pid = controller_info(town).get("pid")
    if not isinstance(pid, int):
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
        with open(f"/proc/{ppid}/comm", encoding="ascii", errors="replace") as fh:
            parent = fh.read().strip()
    except (OSError, ValueError, IndexError):
        return None
    return "systemd" if parent == "systemd" else None


def _orders(town: Town) -> list[dict[str, str]]:
    from .orders import list_orders

    if not town.config.orders:
        return []
    try:
        with town.ledger() as led:
            items = list_orders(town, led)
    except Exception as exc:  # noqa: BLE001 - the ledger check says why
        return [_check("orders", FAIL, f"cannot be checked: {exc}")]
    bad = [o["formula_error"] for o in items if not o.get("formula_ok", True)]
    if bad:
        return [_check("orders", FAIL, "; ".join(bad))]
    return [_check("orders", OK, f"{len(items)} order(s), every formula loads")]


def _mode(path: str) -> int | None:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None


def _permissions(town: Town) -> dict[str, str]:
    from ..ledger.discovery import PASS_FILE

    problems: list[str] = []
    mode = _mode(town.gt_dir)
    if mode is not None and mode & 0o002:
        problems.append(f"{town.gt_dir} is writable by everyone ({mode:o})")
    key = os.path.join(town.gt_dir, KEY_FILE)
    secrets = [key, os.path.join(town.beads_dir, PASS_FILE)]
    for path in secrets:
        mode = _mode(path)
        if mode is not None and mode & 0o077:
            problems.append(f"{path} is readable by others ({mode:o}; chmod 600 it)")
        folder = _mode(os.path.dirname(path)) if mode is not None else None
        if path == key and folder is not None and folder & 0o077:
            problems.append(f"{os.path.dirname(path)} is open to others ({folder:o}; "
                            "chmod 700 it)")
    if problems:
        return _check("permissions", FAIL, "; ".join(problems))
    return _check("permissions", OK, "runtime folder and keys are private")


def _programs(town: Town) -> list[dict[str, str]]:
    out = []
    if shutil.which("git") is None and town.config.rigs:
        out.append(_check("git", FAIL, "git is not installed; rigs need it"))
    providers = {a.provider or town.config.town.provider for a in town.config.all_agents()}
    if "tmux" in providers and shutil.which("tmux") is None:
        out.append(_check("tmux", FAIL, "tmux is not installed; agents with the tmux "
                                        "provider cannot start"))
    return out


def run_checks(town: Town, now: float | None = None) -> list[dict[str, str]]:
    """Every check of the town, in order."""
    at = time.time() if now is None else now
    checks = [_check("config", OK, f"{town.config.path} loads"), _ledger(town),
              _controller(town, at), _watchdog(town)]
    checks += _orders(town)
    checks.append(_permissions(town))
    checks += _programs(town)
    return checks


def worst(checks: list[dict[str, Any]]) -> str:
    """``fail`` if any check failed, else ``warn`` if any warned, else ``ok``."""
    statuses = {c["status"] for c in checks}
    return FAIL if FAIL in statuses else (WARN if WARN in statuses else OK)
