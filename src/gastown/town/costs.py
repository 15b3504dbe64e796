"""Cost accounting: tokens and dollars per session, agent, molecule, convoy and day.

Usage records come from the agent programs' own local logs (:mod:`.usage`); each
is attributed from the ledger's events: its agent (whose worktree, or whose usage
file, it was found in), its session (the agent's latest ``session.started`` before
it, numbered from 1), its molecule (what the agent's hook held then: ``sling``
puts work on it, ``done`` and ``hook.cleared`` take it off) and that molecule's
convoy (``convoy.created``/``convoy.added``).  Prices come from ``[costs.prices]``.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..config.costs import Price, price_of
from ..errors import UsageError
from .usage import UsageRecord, codex_index, file_usage, homes, program_usage

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from .core import Town

__all__ = ["cost_rows", "summarize", "GROUPS", "History", "render_costs"]

#: what ``gt costs --by`` groups by
GROUPS = ("agent", "session", "molecule", "convoy", "day", "model")
_COUNTS = ("input", "output", "cache_write", "cache_read", "tokens")


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(str(ts).replace("Z", "+00:00")).timestamp()


class History:
    """What the event log says about each agent: its sessions and its hook over time."""

    TYPES = ("session.started", "sling", "done", "hook.cleared", "convoy.created",
             "convoy.added")

    def __init__(self, led: Ledger) -> None:
        self.sessions: dict[str, list[float]] = defaultdict(list)
        self.session_seqs: dict[str, list[int]] = defaultdict(list)
        self.hooks: dict[str, list[tuple[float, str | None]]] = defaultdict(list)
        self.convoy_of: dict[str, str] = {}
        self._hook_times: dict[str, list[float]] = {}
        holding: dict[str, str | None] = {}
        for ev in led.events(types=list(self.TYPES)):
            payload = ev.get("payload") or {}
            kind, ts = ev["type"], _epoch(ev["ts"])
            agent = payload.get("agent") if isinstance(payload.get("agent"), str) else None
            if kind == "session.started" and agent:
                self.sessions[agent].append(ts)
                self.session_seqs[agent].append(int(ev["seq"]))
            elif kind == "sling" and agent and ev.get("bead_id"):
                holding[agent] = ev["bead_id"]
                self.hooks[agent].append((ts, ev["bead_id"]))
            elif kind == "hook.cleared" and agent:
                holding[agent] = None
                self.hooks[agent].append((ts, None))
            elif kind == "done":
                for who, held in list(holding.items()):
                    if held == ev.get("bead_id"):
                        holding[who] = None
                        self.hooks[who].append((ts, None))
            elif kind.startswith("convoy.") and ev.get("bead_id"):
                for bead in payload.get("beads") or []:
                    if isinstance(bead, str):
                        self.convoy_of[bead] = ev["bead_id"]

    def session_at(self, agent: str, ts: float) -> int:
        """The agent's session number at ``ts`` (1 = first; 0 = before any)."""
        return bisect.bisect_right(self.sessions.get(agent, []), ts)

    def hook_at(self, agent: str, ts: float) -> str | None:
        """The work on the agent's hook at ``ts``."""
        changes = self.hooks.get(agent)
        if not changes:
            return None
        times = self._hook_times.get(agent)
        if times is None or len(times) != len(changes):
            times = self._hook_times[agent] = [c[0] for c in changes]
        i = bisect.bisect_right(times, ts)
        return changes[i - 1][1] if i else None


def _owners(town: Town, history: History, names: list[str], ts: float) -> str:
    """Which of the agents sharing a working directory a program's record belongs to:
    the one whose latest session started last before it (the first when none had one)."""
    best, best_ts = names[0], float("-inf")
    for name in names:
        starts = history.sessions.get(name, [])
        i = bisect.bisect_right(starts, ts)
        if i and starts[i - 1] > best_ts:
            best, best_ts = name, starts[i - 1]
    return best


def cost_rows(town: Town, led: Ledger, *, since: float | None = None,
              agents: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per usage record of the town's agents (after ``since``), attributed.

    Agents without a rig share the town's folder as their working directory; a
    program's record found there goes to the one of them whose session was the
    latest to start before it.
    """
    cfg = town.config
    history = History(led)
    by_cwd: dict[str, list[str]] = defaultdict(list)
    configs = {a.name: a for a in cfg.all_agents()}
    for agent in configs.values():
        by_cwd[town.workdir(agent)].append(agent.name)
    found: list[tuple[str, UsageRecord]] = []
    wanted = set(agents) if agents is not None else None
    codex = codex_index(homes(cfg.costs.claude_dir, cfg.costs.codex_dir,
                              cfg.costs.gemini_dir)[1])
    for cwd, names in by_cwd.items():
        if wanted is not None and not wanted & set(names):
            continue
        for rec in program_usage(cwd, claude_dir=cfg.costs.claude_dir,
                                 codex_dir=cfg.costs.codex_dir,
                                 gemini_dir=cfg.costs.gemini_dir, codex=codex):
            owner = names[0] if len(names) == 1 else _owners(town, history, names, rec.ts)
            found.append((owner, rec))
        for name in names:
            found += [(name, rec) for rec in file_usage(town.gt_dir, name)]
    rows: list[dict[str, Any]] = []
    prices: dict[str, Price | None] = {}
    days: dict[int, str] = {}
    for name, rec in found:
        if (since is not None and rec.ts < since) or (wanted is not None
                                                      and name not in wanted):
            continue
        if rec.model not in prices:
            prices[rec.model] = price_of(cfg.costs.prices, rec.model)
        price = prices[rec.model]
        molecule = history.hook_at(name, rec.ts)
        usage = rec.usage()
        day_no = int(rec.ts // 86400)  # UTC days: one date string per day, not per row
        day = days.get(day_no)
        if day is None:
            day = days[day_no] = datetime.fromtimestamp(day_no * 86400, UTC).strftime("%Y-%m-%d")
        rows.append({
            "ts": rec.ts, "agent": name, "pool": configs[name].pool,
            "session": history.session_at(name, rec.ts),
            "molecule": molecule,
            "convoy": history.convoy_of.get(molecule or ""),
            "day": day, "model": rec.model, "source": rec.source, **usage,
            "tokens": rec.tokens, "usd": price.cost(usage) if price else 0.0,
            "priced": price is not None,
        })
    rows.sort(key=lambda r: r["ts"])
    return rows


def summarize(rows: list[dict[str, Any]], by: str) -> list[dict[str, Any]]:
    """Rows added up per value of ``by`` (``session`` groups by agent and session)."""
    if by not in GROUPS:
        raise UsageError(f"--by must be one of {', '.join(GROUPS)}, not {by!r}")
    groups: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        key = (r["agent"], r["session"]) if by == "session" else (r[by],)
        g = groups.get(key)
        if g is None:
            g = groups[key] = {**({"agent": r["agent"], "session": r["session"]}
                                  if by == "session" else {by: r[by]}),
                               **dict.fromkeys(_COUNTS, 0), "usd": 0.0, "calls": 0,
                               "unpriced_tokens": 0, "models": []}
        for k in _COUNTS:
            g[k] += r[k]
        g["usd"] += r["usd"]
        g["calls"] += 1
        if not r["priced"]:
            g["unpriced_tokens"] += r["tokens"]
        if r["model"] not in g["models"]:
            g["models"].append(r["model"])
    out = list(groups.values())
    for g in out:
        g["usd"] = round(g["usd"], 6)
    out.sort(key=lambda g: -g["usd"] if by not in ("day", "session") else 0)
    return out


def _tok(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1e6 else (f"{n / 1e3:.1f}k" if n >= 1e3 else str(n))


def render_costs(groups: list[dict[str, Any]], by: str) -> str:
    """The text of ``gt costs``: one line per group and a total."""
    from .text import sanitize

    if not groups:
        return ("No usage found: no agent program has written usage records for this "
                "town's worktrees (see 'Costs' in the README for where they are read).\n")
    head = "AGENT/SESSION" if by == "session" else by.upper()
    lines = [f"{head:<28} {'CALLS':>6} {'INPUT':>8} {'OUTPUT':>8} {'CACHE W':>8} "
             f"{'CACHE R':>8} {'USD':>10}"]
    for g in groups:
        label = f"{g['agent']} #{g['session']}" if by == "session" else str(g[by] or "-")
        note = f"  ({_tok(g['unpriced_tokens'])} tokens unpriced)" if g["unpriced_tokens"] else ""
        lines.append(f"{sanitize(label)[:28]:<28} {g['calls']:>6} {_tok(g['input']):>8} "
                     f"{_tok(g['output']):>8} {_tok(g['cache_write']):>8} "
                     f"{_tok(g['cache_read']):>8} {g['usd']:>10.4f}{note}")
    total = sum(g["usd"] for g in groups)
    lines.append(f"{'TOTAL':<28} {sum(g['calls'] for g in groups):>6} "
                 f"{_tok(sum(g['input'] for g in groups)):>8} "
                 f"{_tok(sum(g['output'] for g in groups)):>8} "
                 f"{_tok(sum(g['cache_write'] for g in groups)):>8} "
                 f"{_tok(sum(g['cache_read'] for g in groups)):>8} {total:>10.4f}")
    return "\n".join(lines) + "\n"

