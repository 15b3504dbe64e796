"""One node of a town spread over several machines: ``gt up --node NAME``.

Every node runs a controller in its own town folder (its own clones of the
rigs, its own tmux server) on one shared PostgreSQL ledger.  :class:`NodeRuntime`
is the part of the controller that makes it a node:

* a heartbeat thread renews the node's row every ``[nodes] heartbeat`` seconds
  and, in the same beat, renews or tries to win the leader's lease
  (:class:`gastown.ledger.nodes.NodeBoard`: advisory lock plus lease, the
  server's clock).  The controller asks :meth:`is_leader` before anything only
  one node may do -- the merge queue, pools, convoys, placement;
* the leader places agents (:meth:`place`): an agent with work runs on its
  ``node = …`` when that node is alive, else on the live node with the most free
  capacity; a dead node's agents move to a live one, where the patrol restarts
  their sessions on the same hook (the work resumes at its first open step);
  an idle agent goes back to its own node when that one is alive again;
* every node supervises only the agents placed on it (:meth:`owns`: patrol and
  dispatch ask it).

A leader believes it leads only until its lease would run out counted from
*before* the renewal was sent (:meth:`is_leader`), so a leader cut off from the
server stops before any newcomer can start.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

from ..errors import GastownError
from ..ledger.nodes import Lease, NodeBoard, place, placements, read_board
from ..town.nodes import write_local_node

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..config.nodes import NodePolicy
    from ..ledger.core import Ledger
    from ..town.config import AgentConfig
    from ..town.core import Town
    from ..town.sessions import Sessions

__all__ = ["NodeRuntime", "LeaderFence", "agents_with_work"]


class LeaderFence(threading.Event):
    """The refinery's stop signal on a node: set when the controller stops *or* this
    node no longer leads, so a landing cut off by a lost lease stops where it is
    (its durable landing record lets the next leader finish it, never twice)."""

    def __init__(self, stop: threading.Event, node: NodeRuntime) -> None:
        super().__init__()
        self._stop = stop
        self._node = node

    def is_set(self) -> bool:
        """True when the refinery must stop now."""
        return self._stop.is_set() or not self._node.is_leader()


def agents_with_work(town: Town, led: Ledger) -> set[str]:
    """Names of the agents with hooked work or work owed a ``gt done``."""
    with led.snapshot() as r:
        hooked = {str(a) for a, _ in r.hooked_work()}
        owed = {str(k)[len("gt.work."):] for k, _ in r.kv_with_prefix("gt.work.")}
    return {a.name for a in town.config.all_agents()
            if a.name in owed or town.actor_of(a) in hooked}


class NodeRuntime:
    """Heartbeat, leadership and placement of one node (see the module's text)."""

    def __init__(self, town: Town, led: Ledger, name: str, capacity: int | None,
                 actor: str, log: Callable[[str], None], wake: Callable[[], None]) -> None:
        self.town = town
        self.led = led
        self.name = name
        self.policy: NodePolicy = town.config.nodes
        self.capacity = capacity or self.policy.capacity
        self.actor = actor
        self.log = log
        self.wake = wake
        self.instance = uuid.uuid4().hex
        self.board = NodeBoard(led)
        self.lease: Lease | None = None
        self._lead_until = 0.0          # monotonic: when our belief in the lease ends
        self._leading = False
        self._placed: dict[str, str] = {}
        #: agents placed elsewhere that may still have a session here (checked by evict)
        self._suspect: set[str] = set()
        self._alive_seen: frozenset[str] | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------- life
    def start(self) -> None:
        """Register the node (ConflictError when a live one has the name) and beat once."""
        self.board.ensure()
        info = {"pid": os.getpid(), "host": socket.gethostname(), "town": self.town.root}
        self.board.register(self.name, self.instance, self.capacity, info, self.policy.lease)
        write_local_node(self.town, self.name, self.instance)
        self.refresh()
        # a node back from the dead: any of its agents now placed elsewhere may still
        # have a session here (headless sessions outlive a killed controller)
        with self._lock:
            self._suspect = {a for a, n in self._placed.items() if n != self.name}
        self.beat()

    def loop(self, stop: threading.Event) -> None:
        """Beat every ``[nodes] heartbeat`` seconds until ``stop`` (the controller's thread)."""
        while not stop.wait(self.policy.beat):
            self.beat()

    def stop(self) -> None:
        """A clean stop: mark the node stopped and hand the lease back at once."""
        try:
            self.board.leave(self.name, self.instance)
        except GastownError as exc:
            self.log(f"node {self.name}: could not sign off: {exc}")
        finally:
            self.board.close()

    # --------------------------------------------------------- heartbeat
    def beat(self) -> None:
        """Renew the heartbeat and the lease (or try to win it); tell the loop of a change."""
        sent = time.monotonic()
        try:
            if not self.board.beat(self.name, self.instance):
                self.log(f"node {self.name}: another instance took this node's name over")
            if self.lease is not None:
                self.lease = self.board.renew(self.instance, self.lease.term, self.policy.lease)
            if self.lease is None:
                self.lease = self.board.try_lead(self.name, self.instance, self.policy.lease)
            if self.lease is not None:
                self._lead_until = sent + min(self.policy.lease, self.lease.expires_in)
            if self.is_leader():
                self._watch_nodes()
        except GastownError as exc:
            self.lease = None  # our belief still ends at _lead_until, never later
            self.log(f"node {self.name}: heartbeat failed: {exc}")
        self._changed()

    def _watch_nodes(self) -> None:
        """The leader notices a node dying (or coming) at its heartbeat, not at its next
        tick: the ticker is woken and places the dead node's agents at once."""
        board = read_board(self.led, self.policy.lease)
        alive = frozenset(n["name"] for n in board["nodes"] if n["alive"])
        if alive != self._alive_seen:
            if self._alive_seen is not None:
                self.log(f"node {self.name}: live nodes now {', '.join(sorted(alive))}")
                self.wake()
            self._alive_seen = alive

    def is_leader(self) -> bool:
        """True while this node holds the lease (by its own, conservative clock)."""
        return self.lease is not None and time.monotonic() < self._lead_until

    def _changed(self) -> None:
        now = self.is_leader()
        if now == self._leading:
            return
        self._leading = now
        term = self.lease.term if self.lease else None
        try:
            self.led.emit("node.leader" if now else "node.stepped_down", None,
                          {"node": self.name, "term": term})
        except GastownError as exc:
            self.log(f"node {self.name}: could not record the change of leader: {exc}")
        self.log(f"node {self.name}: " + (f"leader (term {term})" if now else "no longer leader"))
        self.wake()

    # -------------------------------------------------------- checkpoints
    def checkpoint(self, agent: AgentConfig) -> bool:
        """Push ``agent``'s work branch to its rig's source (pushing rigs only).

        Called after each step the agent closes, so that if this node dies, the
        node that takes the agent over starts from the committed steps
        (:func:`gastown.town.rigs.ensure_worktree` fetches the branch) instead
        of redoing them.  Never the rig's own branch: that only the merge queue
        moves.
        """
        from ..town.rigs import current_branch, git

        if not agent.rig or not self.town.config.rigs.get(agent.rig) or \
                not self.town.config.rig(agent.rig).push:
            return False
        path = self.town.workdir(agent)
        if not os.path.isdir(path):
            return False
        branch = current_branch(path)
        if not branch or branch == self.town.config.rig(agent.rig).branch:
            return False
        proc = git(["push", "--quiet", "origin", f"HEAD:refs/heads/{branch}"], cwd=path,
                   check=False)
        if proc.returncode != 0:
            self.log(f"node {self.name}: checkpoint of {agent.name}'s {branch} refused: "
                     f"{(proc.stderr or proc.stdout).strip()[-300:]}")
        return proc.returncode == 0

    def on_closed(self, event: dict[str, Any], submit: Callable[..., Any]) -> None:
        """A ``bead.closed`` by one of this node's agents: checkpoint its branch (on
        ``submit``, the nudge pool: the event loop never waits for git)."""
        agent = self.town.agent_by_address(str(event.get("actor") or ""))
        if agent is not None and self.owns(agent):
            submit(self.checkpoint, agent)

    # --------------------------------------------------------- placement
    def owns(self, agent: AgentConfig) -> bool:
        """Whether this node runs ``agent``'s sessions (the leader's placement)."""
        with self._lock:
            return self._placed.get(agent.name) == self.name

    def refresh(self) -> None:
        """Re-read every placement (each tick: a cache, the ledger is the truth)."""
        fresh = {agent: str(rec["node"]) for agent, rec in placements(self.led).items()}
        with self._lock:
            self._suspect |= {a for a, n in fresh.items()
                              if n != self.name and self._placed.get(a) == self.name}
            self._placed = fresh

    def note(self, event: dict[str, Any]) -> None:
        """A ``node.placed`` event: update the cache at once (dispatch needs it now)."""
        payload = event.get("payload") or {}
        agent, node = payload.get("agent"), payload.get("node")
        if isinstance(agent, str) and isinstance(node, str):
            with self._lock:
                if node != self.name and self._placed.get(agent) == self.name:
                    self._suspect.add(agent)
                self._placed[agent] = node

    def evict(self, sessions: Sessions) -> list[str]:
        """Stop the sessions here of agents that were moved to another node (this node
        was taken for dead, or is back after a crash): one hook, one session."""
        with self._lock:
            suspects, self._suspect = self._suspect, set()
            gone = {a for a in suspects if self._placed.get(a) not in (None, self.name)}
        stopped = []
        for name in sorted(gone):
            try:
                agent = self.town.agent(name)
                if sessions.is_alive(agent):
                    sessions.stop(agent, actor=self.actor)
                    self.led.emit("node.evicted", None, {"agent": name, "node": self.name,
                                                         "placed_on": self._placed.get(name)})
                    stopped.append(name)
            except GastownError as exc:
                self.log(f"node {self.name}: cannot stop {name}'s session: {exc}")
        if stopped:
            self.log(f"node {self.name}: stopped sessions of agents placed elsewhere: "
                     f"{', '.join(stopped)}")
        return stopped

    def place(self) -> list[str]:
        """The leader's pass: place every agent with work on a live node; returns moves."""
        board = read_board(self.led, self.policy.lease)
        alive = {n["name"]: n["capacity"] for n in board["nodes"] if n["alive"]}
        if not alive:
            return []
        current = {agent: str(rec["node"]) for agent, rec in placements(self.led).items()}
        work = agents_with_work(self.town, self.led)
        load = {n: 0 for n in alive}
        for agent, node in current.items():
            if agent in work and node in load:
                load[node] += 1
        moves: list[str] = []
        for worker in self.town.config.all_agents():
            cur = current.get(worker.name)
            if worker.name in work:
                if cur in alive:
                    continue
                if worker.node in alive:
                    want, why = str(worker.node), "its node"
                else:
                    # the most free capacity; names break ties, so every run agrees
                    want = max(sorted(alive), key=lambda n: alive[n] - load[n])
                    why = "free capacity" if cur is None else f"node {cur} is not alive"
                load[want] += 1
            elif worker.node in alive and cur not in (None, worker.node):
                want, why = str(worker.node), "back on its node"
            else:
                continue
            place(self.led, worker.name, want, why, cur, actor=self.actor)
            with self._lock:
                self._placed[worker.name] = want
            moves.append(f"{worker.name} -> {want} ({why})")
        if moves:
            self.log(f"node {self.name}: placed {'; '.join(moves)}")
        return moves
