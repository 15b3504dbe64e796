"""The health patrol: plain code that keeps the town's sessions alive and moving.

Each pass looks at every agent that has work (hooked, or finished but not yet
handed in with ``gt done``) -- idle agents are never touched -- and:

* starts a session that should run but has none (``start_missing``);
* restarts a session that ended while work was on its hook, on the same hook
  and worktree: the agent primes and resumes at the first unfinished step
  (``restart_dead``);
* nudges a session with no output and no ledger activity for ``stall_after``
  seconds, and restarts it when ``restart_after`` more seconds pass without
  progress -- but only a session the town started itself (the pid recorded in
  its ``session.started`` event), never one a person started by hand;
* quarantines an agent restarted ``max_restarts`` times within ``window``
  seconds: no more restarts, a ``patrol.quarantined`` event and a mail to the
  town's owner.  Starting its session by hand (``gt session start``) lifts it.

A session a person stopped (``gt session stop``, ``gt down --sessions``) stays
stopped until it is started again (by hand, or by a sling).

Counters live in the ledger (events, and ``gt.quarantine.AGENT`` keys), so a
restarted controller picks up where the last one stopped.  A pass that finds
something is recorded as a ``mol-patrol`` wisp squashed into a digest; a quiet
pass writes nothing at all.  Policies: ``[patrol]`` in town.toml.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import GastownError
from ..town.observe import QUARANTINE_KEY
from ..town.sessions import EARLY_EXIT_S

#: seconds the patrol leaves a session a person started alone: the starting command
#: reports an early death itself (with its exit status), which a restart would erase
HANDS_OFF_S = EARLY_EXIT_S + 3.0

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..ledger.core import Ledger
    from ..ledger.model import Bead
    from ..town.config import AgentConfig
    from ..town.core import Town
    from ..town.providers.base import SessionState
    from ..town.sessions import Sessions
    from .policies import PatrolPolicy

__all__ = ["Patrol", "Memory", "QUARANTINE_KEY"]


@dataclass
class Memory:
    """What the controller learns from the event log as it follows it.

    A cache, rebuilt from the ledger at start-up (the last events are read
    again): nothing here is the only copy of anything.
    """

    last_event: dict[str, float] = field(default_factory=dict)    # actor -> ts
    started: dict[str, tuple[float, int | None, str]] = field(default_factory=dict)
    # agent -> {event seq: ts}: keyed by seq so a restart the patrol notes itself and
    # then reads back from the log counts once
    restarts: dict[str, dict[int, float]] = field(default_factory=dict)
    nudged: dict[str, float] = field(default_factory=dict)         # agent -> ts
    # agent -> who stopped its session, until it is started again: a person's
    # `gt session stop` is respected, not undone by the next patrol pass
    stopped: dict[str, str] = field(default_factory=dict)

    def learn(self, ev: dict[str, Any], ts: float) -> None:
        """Update from one event (``ts`` is its time in epoch seconds)."""
        self.last_event[str(ev.get("actor") or "")] = ts
        kind = ev["type"]
        if kind.startswith(("session.", "patrol.")):
            payload = ev.get("payload") or {}
            agent = str(payload.get("agent") or "")
            if kind == "session.started":
                self.started[agent] = (ts, payload.get("pid"), str(ev.get("actor") or ""))
                self.stopped.pop(agent, None)
            elif kind == "session.stopped":
                self.stopped[agent] = str(ev.get("actor") or "")
            elif kind == "patrol.restarted":
                self.restarts.setdefault(agent, {})[int(ev["seq"])] = ts
            elif kind == "patrol.nudged":
                self.nudged[agent] = ts


class Patrol:
    """One town's health patrol; :meth:`run` is one pass."""

    def __init__(self, town: Town, led: Ledger, sessions: Sessions, policy: PatrolPolicy,
                 actor: str, memory: Memory, log: Callable[[str], None] = lambda _m: None
                 ) -> None:
        self.town = town
        self.led = led
        self.sessions = sessions
        self.policy = policy
        self.actor = actor
        self.memory = memory
        self.log = log
        self._foreign_reported: set[str] = set()
        #: which agents this patrol looks after (a node: only those placed on it)
        self.owns: Callable[[AgentConfig], bool] = lambda _agent: True
        self._owed: dict[str, str] = {}
        self._quarantine: dict[str, str] = {}

    # ------------------------------------------------------------ looking
    def _snapshot(self) -> dict[tuple[str, str], SessionState]:
        """Every session of every provider in use, from one call per provider."""
        out: dict[tuple[str, str], SessionState] = {}
        kinds = {a.provider or self.town.config.town.provider
                 for a in self.town.config.all_agents()}
        for kind in sorted(kinds):
            probe = next(a for a in self.town.config.all_agents()
                         if (a.provider or self.town.config.town.provider) == kind)
            try:
                states = self.sessions.provider_for(probe).snapshot()
            except GastownError as exc:
                self.log(f"patrol: cannot list {kind} sessions: {exc}")
                continue
            out.update({(kind, name): st for name, st in states.items()})
        return out

    def _work(self) -> dict[str, str]:
        """``actor -> bead id`` of everything hooked, plus work owed a ``gt done``."""
        with self.led.snapshot() as r:
            hooked = r.hooked_work()
            owed = r.kv_with_prefix("gt.work.")
            quarantined = r.kv_with_prefix(QUARANTINE_KEY)
        out: dict[str, str] = {}
        for actor, bead_id in hooked:
            out.setdefault(str(actor), str(bead_id))
        self._owed = {str(k)[len("gt.work."):]: str(v) for k, v in owed}
        self._quarantine = {str(k)[len(QUARANTINE_KEY):]: str(v) for k, v in quarantined}
        return out

    # ------------------------------------------------------------- a pass
    def run(self) -> list[dict[str, Any]]:
        """One pass over every agent with work; returns what it found and did."""
        findings: list[dict[str, Any]] = []
        hooked = self._work()
        snapshot = self._snapshot()
        now = time.time()
        for agent in self.town.config.all_agents():
            actor = self.town.actor_of(agent)
            work = hooked.get(actor) or self._owed.get(agent.name)
            if not work or not self.owns(agent):
                continue
            if agent.name in self._quarantine and not self._released(agent):
                continue
            started = self.memory.started.get(agent.name)
            if started and started[2] != self.actor and now - started[0] < HANDS_OFF_S:
                continue  # a person just started it: `gt session start` watches it die
            if self.memory.stopped.get(agent.name, self.actor) != self.actor:
                continue  # stopped by hand: left alone until someone starts it
            kind = agent.provider or self.town.config.town.provider
            state = snapshot.get((kind, self.sessions.session_name(agent)))
            try:
                found = self._check(agent, actor, work, state, now)
            except GastownError as exc:
                found = {"agent": agent.name, "finding": "error", "detail": str(exc)}
            if found:
                findings.append(found)
        if findings:
            self._record(findings)
        return findings

    def _check(self, agent: AgentConfig, actor: str, work: str, state: SessionState | None,
               now: float) -> dict[str, Any] | None:
        if state is None:
            if not self.policy.start_missing:
                return None
            return self._restart(agent, work, "missing", kill=False)
        if not state.alive:
            if not self.policy.restart_dead:
                return None
            return self._restart(agent, work, "dead", kill=False)
        started = self.memory.started.get(agent.name)
        last = max(state.last_activity or 0.0, self.memory.last_event.get(actor, 0.0),
                   started[0] if started else 0.0)
        if now - last < self.policy.stall_after:
            return None
        nudged = self.memory.nudged.get(agent.name, 0.0)
        # typing the nudge shows in the pane; progress means activity well after it
        if nudged < last - 2.0 or nudged == 0.0:
            return self._nudge_stalled(agent, work, now - last)
        if now - nudged < self.policy.restart_after:
            return None
        if not started or started[1] is None or started[1] != state.pid:
            if agent.name not in self._foreign_reported:
                self._foreign_reported.add(agent.name)
                return {"agent": agent.name, "finding": "stalled-foreign", "work": work,
                        "detail": "stalled, but the town did not start this session: left "
                                  "alone"}
            return None
        return self._restart(agent, work, "stalled", kill=True)

    def _released(self, agent: AgentConfig) -> bool:
        """A person started the session by hand after the quarantine: lift it."""
        record = json.loads(self._quarantine.get(agent.name) or "{}")
        started = self.memory.started.get(agent.name)
        if started and started[2] != self.actor and started[0] > float(record.get("ts", 0)):
            with self.led.transaction(self.actor) as t:
                t.kv_clear(QUARANTINE_KEY + agent.name)
                t.emit("patrol.released", None, {"agent": agent.name, "by": started[2]})
            self.memory.restarts.pop(agent.name, None)
            return True
        return False

    # ------------------------------------------------------------- acting
    def _nudge_stalled(self, agent: AgentConfig, work: str, quiet: float) -> dict[str, Any]:
        from .dispatch import deliver

        text = (f"[gt] no progress on {work} for {int(quiet)}s. Run `gt prime` and carry on "
                "with the step it names (or `gt done --status escalated` if you are stuck).")
        result = deliver(self.sessions, agent, text)
        self.memory.nudged[agent.name] = time.time()
        self.led.emit("patrol.nudged", work, {"agent": agent.name, "quiet_s": int(quiet),
                                              **result})
        return {"agent": agent.name, "finding": "stalled", "work": work,
                "detail": f"quiet {int(quiet)}s: nudged"}

    def _restart(self, agent: AgentConfig, work: str, why: str, kill: bool) -> dict[str, Any]:
        """Start (or stop and start) the agent's session on its hook, unless it loops."""
        from ..town.rigs import ensure_worktree

        now = time.time()
        recent = [t for t in self.memory.restarts.get(agent.name, {}).values()
                  if now - t < self.policy.window]
        if why != "missing" and len(recent) >= self.policy.max_restarts:
            return self._quarantine_agent(agent, work, len(recent))
        # the sling lock: a sling starting this very session must not race a restart
        with self.town.lock("sling"):
            if why == "missing" and self.sessions.is_alive(agent):
                return {}
            if kill:
                self.sessions.stop(agent, actor=self.actor)
            ensure_worktree(self.town, agent, self.town.branch_of(agent, work))
            info, _ = self.sessions.start(agent, actor=self.actor)
        seq = self.led.emit("patrol.restarted" if why != "missing" else "patrol.started", work,
                            {"agent": agent.name, "why": why, "pid": info.pid,
                             "restarts_in_window": len(recent) + (why != "missing")})
        if why != "missing":
            self.memory.restarts.setdefault(agent.name, {})[seq] = now
        self.log(f"patrol: {why} session of {agent.name} {'re' if why != 'missing' else ''}"
                 f"started on {work}")
        return {"agent": agent.name, "finding": why, "work": work,
                "detail": "started" if why == "missing" else f"restarted ({why})"}

    def _quarantine_agent(self, agent: AgentConfig, work: str, count: int) -> dict[str, Any]:
        from ..town.mail import send_txn

        owner = self.policy.notify or self.town.config.town.escalate_to or self._owner()
        record = {"ts": time.time(), "restarts": count, "work": work}
        detail = (f"{agent.name} was restarted {count} times in "
                  f"{int(self.policy.window)}s; no more restarts until someone starts it "
                  f"by hand (gt session start {agent.name})")
        quote = self._last_output(agent)  # read before the write lock is taken
        with self.led.transaction(self.actor) as t:
            t.kv_set(QUARANTINE_KEY + agent.name, json.dumps(record))
            t.emit("patrol.quarantined", work, {"agent": agent.name, "restarts": count,
                                                "notify": owner})
            if owner and not any(ch.isspace() for ch in owner):
                send_txn(self.town, t, owner, f"Agent {agent.name} quarantined (crash loop)",
                         f"{detail}.\nIts work {work} stays on its hook.\n\n"
                         f"{quote}")
        self._quarantine[agent.name] = json.dumps(record)
        self.log(f"patrol: quarantined {agent.name}")
        return {"agent": agent.name, "finding": "crash-loop", "work": work, "detail": detail}

    def _last_output(self, agent: AgentConfig, lines: int = 15) -> str:
        """The session's last lines of output, quoted for a mail (cleaned of escapes)."""
        from ..town.text import sanitize

        try:
            screen = self.sessions.provider_for(agent).peek(self.sessions.session_name(agent),
                                                            lines)
        except GastownError:
            screen = ""
        # a fence inside the quote would end it early
        shown = [sanitize(line).replace("```", "'''") for line in screen.splitlines()]
        while shown and not shown[-1]:
            shown.pop()
        if not shown:
            return f"Its session showed no output (gt peek {agent.name} to look again)."
        return ("Its last output:\n```\n" + "\n".join(shown[-lines:]) + "\n```\n"
                f"(more: gt peek {agent.name})")

    def _owner(self) -> str | None:
        """Whoever created the town (the actor of its ``town.init`` event)."""
        with self.led.snapshot() as r:
            return r.first_actor("town.init")

    # ----------------------------------------------------------- recording
    def _record(self, findings: list[dict[str, Any]]) -> Bead | None:
        """Pour a patrol wisp, close its steps, squash it into a digest of the findings."""
        from ..chemistry import pour, squash
        from ..chemistry.inspect import work_steps

        summary = "; ".join(f"{f['agent']}: {f['finding']} ({f.get('detail', '')})"
                            for f in findings if f)
        if not summary:
            return None
        try:
            root = pour(self.led, "mol-patrol", {"scope": "town"}, wisp=True,
                        search_paths=self.town.formula_paths(), actor=self.actor)
            with self.led.transaction(self.actor) as t:
                for step in work_steps(self.led, root["id"]):
                    t.close(step["id"], reason="checked", force=True)
            digest = squash(self.led, root["id"], f"patrol: {summary}"[:1000],
                            actor=self.actor)
        except GastownError as exc:
            # the findings were acted on and have their own events; the digest is a summary
            self.log(f"patrol: could not record the digest: {exc}")
            return None
        self.led.emit("patrol.digest", digest["id"], {"findings": findings})
        return digest
