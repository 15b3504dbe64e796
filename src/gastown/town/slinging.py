"""Sling: dispatch work to an agent, a pool or a rig (DESIGN §5).

resolve the target -> (pour the formula) -> pin the work to an agent's hook ->
give the agent its worktree and branch -> make sure its session runs -> nudge.

Idempotent: a bead already on a hook stays where it is, and a formula already
poured onto the target's hooks with the same variables is not poured again, so
slinging twice dispatches once.  Slings in one town are serialised by a lock in
``.gt/``, so two at once can never both take the last free worker of a pool.
Whether the agent's provider can run at all is checked before anything is
written, so a missing tmux leaves the ledger as it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError, NotFoundError, UsageError
from .config import AgentConfig
from .core import Town
from .sessions import Sessions
from .work import current_work, remember_work, sling_meta

if TYPE_CHECKING:
    from ..chemistry.api import Source
    from ..ledger.core import Ledger
    from ..ledger.model import Bead
    from ..ledger.ops import Txn

__all__ = ["sling", "sling_many", "BatchResult", "SlingResult", "resolve_target",
           "sent_back_request", "SLING_STEPS"]


@dataclass
class SlingResult:
    """What a sling did."""

    id: str
    agent: str
    actor: str
    target: str
    target_kind: str
    title: str = ""
    formula: str | None = None
    poured: bool = False
    already: bool = False
    session: str = ""
    workdir: str = ""
    branch: str = ""
    nudge: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """A plain dict for ``--json`` (``id`` is the bead or molecule root)."""
        out = asdict(self)
        out["root_id"] = self.id if self.formula else None
        out["bead_id"] = self.id
        return out


#: the steps of one sling's transaction, in order, then ``committed`` once it is
#: durable; a ``pause`` callback passed to :func:`sling` is called after each
SLING_STEPS = ("poured", "pinned", "recorded", "announced", "remembered", "committed")

Pause = Callable[[str], None]


def resolve_target(town: Town, target: str | None, caller: str | None = None
                   ) -> tuple[str, list[AgentConfig]]:
    """``(kind, candidate agents)`` for a target: agent, pool, rig, or ``caller``.

    ``caller`` is the calling agent's name (the command line passes ``$GT_AGENT``);
    with no target, work goes to the caller's own hook.
    """
    cfg = town.config
    if not target:
        if not caller:
            raise UsageError("name a target (an agent, a pool or a rig); only an agent's own "
                             "session may sling to itself")
        return "self", [town.agent(caller)]
    if target in cfg.pools:
        pool = cfg.pools[target]
        return "pool", [pool.slot(n) for n in range(1, pool.max + 1)]
    if target in cfg.rigs:
        rig = cfg.rigs[target]
        pools = [p for p in cfg.pools.values() if p.rig == rig.name]
        name = rig.pool or (pools[0].name if len(pools) == 1 else None)
        if name is None:
            raise UsageError(
                f"rig {rig.name} has {'no pool' if not pools else 'several pools'}: "
                f"set [rigs.{rig.name}] pool = \"NAME\", or sling to an agent or a pool")
        pool = cfg.pools[name]
        return "rig", [pool.slot(n) for n in range(1, pool.max + 1)]
    agent = town.agent_by_address(target)
    if agent is None:
        raise NotFoundError(f"no agent, pool or rig named {target!r} in {town.config_path}")
    return "agent", [agent]


def _existing_bead(led: Ledger, what: str) -> Bead | None:
    """The bead ``what`` names, or None when it is a formula (or a proto) to pour."""
    try:
        bead = led.get(led.resolve_id(what))
    except NotFoundError:
        return None
    return None if bead.get("is_template") else bead


def _agent_of_actor(town: Town, actor: str | None) -> AgentConfig | None:
    return town.agent_by_address(actor) if actor else None


def _checked_sessions(town: Town, candidates: list[AgentConfig]) -> Sessions:
    """The town's sessions, once each candidate's provider can run here (e.g. no tmux:
    fail before writing anything)."""
    sessions = Sessions(town)
    for provider_agent in {a.provider or town.config.town.provider: a
                           for a in candidates}.values():
        sessions.check(provider_agent)
    return sessions


def _no_pause(step: str) -> None:
    del step


@dataclass
class _Plan:
    """What one sling will write, decided by reads before its transaction."""

    result: SlingResult
    agent: AgentConfig
    info: dict[str, Any]
    source: Source | None = None  # a formula or proto to pour first
    given: dict[str, str] = field(default_factory=dict)


def sling(town: Town, what: str, target: str | None = None,
          vars: dict[str, str] | None = None, *, nudge: bool = True, wisp: bool = False,
          actor: str | None = None, caller: str | None = None, start: bool = True,
          pause: Pause | None = None) -> SlingResult:
    """Put a bead, or a freshly poured formula, on an agent's hook and wake the agent.

    ``actor`` is who slings (recorded on every change); ``caller`` the calling
    agent's name, the target when ``target`` is None.  The ledger's side — pour,
    pin, the sling record in the bead's metadata, the ``sling`` event and the
    owed-work record — is one transaction: a sling killed at any instant leaves
    all of it or none of it.  Worktree, session and nudge follow the commit.
    ``pause`` (tests) is called with each name of :data:`SLING_STEPS` as it passes.
    """
    step = pause or _no_pause
    kind, candidates = resolve_target(town, target, caller)
    sessions = _checked_sessions(town, candidates)
    given = dict(vars or {})
    with town.ledger(actor) as led, town.lock("sling"):
        bead = _existing_bead(led, what)
        if bead is not None and given:
            raise UsageError(f"--var applies to formulas; {bead['id']} is a bead")
        plan = (_plan_bead(town, led, bead, kind, candidates) if bead is not None
                else _plan_formula(town, led, what, given, kind, candidates))
        result = plan.result
        if not result.already:
            with led.transaction() as t:
                _write(t, town, plan, kind, wisp, step)
            step("committed")
        result.target = target or result.agent
        if start:
            start = _start_here(town, led, result)
        if start:
            _prepare(town, led, sessions, town.agent(result.agent), result, actor)
        by = led.actor
    if nudge and start:
        _nudge(town, result, by)
    return result


def _start_here(town: Town, led: Ledger, result: SlingResult) -> bool:
    """False when the agent's session belongs to another node (``gt up --node``): that
    node's controller starts it, woken by the sling's event."""
    from .nodes import session_node

    node = session_node(town, led, town.agent(result.agent))
    if node is None:
        return True
    result.session = f"on node {node}" if node else "waiting for a node"
    return False


def _nudge(town: Town, result: SlingResult, actor: str) -> None:
    """Tell a running agent its hook has work (a session just started reads it anyway)."""
    if result.session != "running":
        return
    from .nudge import nudge_agent

    text = (f"[gt] {result.id} is on your hook: {result.title}. "
            "Run `gt prime` and do it now.")
    try:
        result.nudge = nudge_agent(town, result.agent, text, mode="wait-idle", timeout=5.0,
                                   idle_s=1.0, actor=actor)
    except Exception as exc:  # noqa: BLE001 - the work is hooked; a nudge is a courtesy
        result.notes.append(f"nudge failed: {exc}")


@dataclass
class BatchResult:
    """What :func:`sling_many` did: every item's bead, those slung, those left waiting."""

    ids: list[str]
    slung: list[SlingResult]
    waiting: list[dict[str, str]]
    tracked: Any = None  # what ``track`` returned (a convoy id)


def sling_many(town: Town, items: list[str], target: str | None,
               vars: dict[str, str] | None = None, *, nudge: bool = True,
               actor: str | None = None, caller: str | None = None, start: bool = True,
               pause: Pause | None = None,
               track: Callable[[Txn, list[str]], Any] | None = None) -> BatchResult:
    """Sling several beads (or formulas, poured first) to one target in ONE transaction.

    Every pour, pin, sling record, event and owed-work record of the batch, and
    what ``track`` writes with the items' bead ids (a convoy), commit together: a
    batch that fails at its last item leaves nothing.  A pool or rig with fewer
    free workers than items leaves the rest unassigned (``waiting``); any other
    refusal (a busy agent, a closed bead) refuses the whole batch before writing.
    ``pause`` (tests) is called with each step name, per item, then ``tracked``
    and ``committed``.
    """
    from ..chemistry.api import formula_paths, pour_in, resolve_source

    step = pause or _no_pause
    given = dict(vars or {})
    kind, candidates = resolve_target(town, target, caller)
    sessions = _checked_sessions(town, candidates)
    with town.ledger(actor) as led, town.lock("sling"):
        paths: list[str] | None = None
        plans: list[_Plan] = []
        waiting: list[tuple[int, str]] = []  # (index in plans, why)
        taken: set[str] = set()
        for what in items:
            bead = _existing_bead(led, what)
            if bead is None:
                paths = paths if paths is not None else formula_paths(led, town.formula_paths())
                plan = _Plan(SlingResult(id="", agent="", actor="", target="", target_kind=kind,
                                         formula=what, poured=True), candidates[0],
                             {"formula": what, "vars": given, "target_kind": kind},
                             source=resolve_source(led, what, paths, given), given=given)
            else:
                plan = _Plan(SlingResult(id=bead["id"], agent="", actor="", target="",
                                         target_kind=kind, title=bead["title"]),
                             candidates[0], {"target_kind": kind})
            try:
                if bead is None:
                    plan.agent = _pick_free(led, town, kind, candidates, taken)
                else:
                    free = [a for a in candidates if a.name not in taken]
                    plan = _plan_bead(town, led, bead, kind, free or candidates)
                    if not plan.result.already and plan.agent.name in taken:
                        raise _busy(kind, candidates, plan.agent)
            except ConflictError as exc:
                if kind not in ("pool", "rig") or (bead is not None
                                                   and bead["status"] == "closed"):
                    raise
                waiting.append((len(plans), str(exc)))
            else:
                taken.add(plan.agent.name)
                plan.result.agent = plan.agent.name
                plan.result.actor = town.actor_of(plan.agent)
            plans.append(plan)
        held = {i for i, _ in waiting}
        with led.transaction() as t:
            for i, plan in enumerate(plans):
                if i in held:
                    if plan.source is not None:
                        root, _ = pour_in(t, plan.source, plan.given)
                        plan.result.id, plan.result.title = root["id"], root["title"]
                        step("poured")
                elif not plan.result.already:
                    _write(t, town, plan, kind, False, step)
            ids = [p.result.id for p in plans]
            tracked = track(t, ids) if track is not None else None
            step("tracked")
        step("committed")
        slung = [p.result for i, p in enumerate(plans) if i not in held]
        for result in slung:
            result.target = target or result.agent
            if start:
                _prepare(town, led, sessions, town.agent(result.agent), result, actor)
        by = led.actor
    if nudge and start:
        for result in slung:
            _nudge(town, result, by)
    return BatchResult(ids, slung, [{"id": plans[i].result.id, "reason": why}
                                    for i, why in waiting], tracked)


def _pick_free(led: Ledger, town: Town, kind: str, candidates: list[AgentConfig],
               taken: set[str]) -> AgentConfig:
    """:func:`_pick` among the candidates this batch has not given an item yet."""
    free = [a for a in candidates if a.name not in taken]
    if not free:
        raise _busy(kind, candidates, candidates[0])
    return _pick(led, town, kind, free)


def _busy(kind: str, candidates: list[AgentConfig], agent: AgentConfig) -> ConflictError:
    """The refusal for a worker this batch has already given an item."""
    if kind in ("pool", "rig"):
        return ConflictError(f"pool {candidates[0].pool} is full: all {len(candidates)} "
                             "workers have work (raise its max in town.toml, or wait)")
    return ConflictError(f"{agent.name} already gets an earlier item of this batch; "
                         "one agent's hook holds one piece of work")


def _free(led: Ledger, town: Town, agents: list[AgentConfig]) -> AgentConfig | None:
    for agent in agents:
        if current_work(led, town.actor_of(agent), agent.name) is None:
            return agent
    return None


def _pick(led: Ledger, town: Town, kind: str, candidates: list[AgentConfig]) -> AgentConfig:
    agent = _free(led, town, candidates)
    if agent is not None:
        return agent
    if kind in ("agent", "self"):
        only = candidates[0]
        busy = current_work(led, town.actor_of(only), only.name)
        raise ConflictError(f"{only.name} already has {busy['id'] if busy else 'work'} on its "
                            "hook; it must finish (gt done) or be cleared (gt hook clear) first")
    pool = candidates[0].pool
    raise ConflictError(f"pool {pool} is full: all {len(candidates)} workers have work "
                        "(raise its max in town.toml, or wait for one to finish)")


def _write(t: Txn, town: Town, plan: _Plan, kind: str, wisp: bool, step: Pause) -> None:
    """Every ledger change of one sling, inside the one transaction ``t``."""
    from ..hook import pin_in

    result, agent = plan.result, plan.agent
    if plan.source is not None:
        from ..chemistry.api import pour_in

        root, _ = pour_in(t, plan.source, plan.given, wisp=wisp)
        result.id, result.title = root["id"], root["title"]
        step("poured")
    pin_in(t, result.id, town.actor_of(agent))
    step("pinned")
    meta = dict(t.get(result.id).get("metadata") or {})
    meta["sling"] = {**plan.info, "agent": agent.name, "by": t.actor}
    t.update(result.id, metadata=meta)
    step("recorded")
    t.emit("sling", result.id, {"agent": agent.name, "actor": town.actor_of(agent),
                                "kind": kind, **plan.info})
    step("announced")
    remember_work(t, agent.name, result.id)
    step("remembered")


def _plan_bead(town: Town, led: Ledger, bead: Bead, kind: str,
               candidates: list[AgentConfig]) -> _Plan:
    status, holder = bead["status"], bead.get("assignee")
    if status == "closed":
        raise ConflictError(f"{bead['id']} is closed; there is nothing to do")
    holder_agent = _agent_of_actor(town, holder)
    if status == "hooked" and holder_agent is not None:
        # already dispatched: the same worker keeps it, wherever this sling pointed
        return _Plan(SlingResult(id=bead["id"], agent=holder_agent.name, actor=str(holder),
                                 target="", target_kind=kind, title=bead["title"],
                                 already=True), holder_agent, {})
    if status == "in_progress" and holder and holder_agent is None:
        raise ConflictError(f"{bead['id']} is in progress with {holder}; "
                            "it must be released before it can be slung")
    agent = holder_agent if holder_agent in candidates else _pick(led, town, kind, candidates)
    return _Plan(SlingResult(id=bead["id"], agent=agent.name, actor=town.actor_of(agent),
                             target="", target_kind=kind, title=bead["title"]),
                 agent, {"target_kind": kind})


def _plan_formula(town: Town, led: Ledger, formula: str, given: dict[str, str], kind: str,
                  candidates: list[AgentConfig]) -> _Plan:
    from ..chemistry.api import formula_paths, resolve_source

    for agent in candidates:
        work = current_work(led, town.actor_of(agent), agent.name)
        info = sling_meta(work) if work else {}
        if work is not None and info.get("formula") == formula and info.get("vars") == given:
            return _Plan(SlingResult(id=work["id"], agent=agent.name,
                                     actor=town.actor_of(agent), target="", target_kind=kind,
                                     title=work["title"], formula=formula, already=True),
                         agent, {})
    agent = _pick(led, town, kind, candidates)
    source = resolve_source(led, formula, formula_paths(led, town.formula_paths()), given)
    return _Plan(SlingResult(id="", agent=agent.name, actor=town.actor_of(agent), target="",
                             target_kind=kind, formula=formula, poured=True),
                 agent, {"formula": formula, "vars": given, "target_kind": kind},
                 source=source, given=given)


def sent_back_request(led: Ledger, bead: Bead) -> Bead | None:
    """The merge request a merge-queue fix bead is about (also via a formula's ``issue`` var).

    The merge queue files a fix bead (``metadata.mr``) when it sends a request back;
    work on that bead continues the request's branch and ``gt done`` re-queues it.
    """
    meta = bead.get("metadata") or {}
    mr_id = meta.get("mr")
    if not mr_id:
        values = meta.get("vars") if isinstance(meta.get("vars"), dict) else {}
        issue = values.get("issue") if values else None
        if isinstance(issue, str) and issue:
            try:
                fix = led.get(led.resolve_id(issue))
            except NotFoundError:
                return None
            mr_id = (fix.get("metadata") or {}).get("mr")
    if not isinstance(mr_id, str) or not mr_id:
        return None
    try:
        mr = led.get(mr_id)
    except NotFoundError:
        return None
    return mr if mr.get("issue_type") == "merge-request" else None


def _branch_for(town: Town, led: Ledger, agent: AgentConfig,
                work_id: str) -> tuple[str, str | None]:
    """``(branch, start)`` for a piece of work: sent-back work continues its branch."""
    fresh = town.branch_of(agent, work_id)
    if not agent.rig:
        return fresh, None
    from .rigs import checked_out_in, git

    mr = sent_back_request(led, led.get(work_id))
    branch = str((mr.get("metadata") or {}).get("branch") or "") if mr else ""
    repo = town.repo_dir(agent.rig)
    if not branch or git(["rev-parse", "--verify", "--quiet", f"refs/heads/{branch}"],
                         cwd=repo, check=False).returncode != 0:
        return fresh, None
    holder = checked_out_in(repo, branch)
    mine = os.path.realpath(town.workdir(agent))
    if holder is None or not os.path.exists(holder) or os.path.realpath(holder) == mine:
        return branch, None
    # another worktree has it checked out: a branch of our own, from where it stands
    return fresh, f"refs/heads/{branch}"


def _prepare(town: Town, led: Ledger, sessions: Sessions, agent: AgentConfig,
             result: SlingResult, actor: str | None) -> None:
    """Worktree on the work's branch, then the session (started unless it runs)."""
    from .rigs import ensure_worktree

    branch, start = _branch_for(town, led, agent, result.id)
    ws = ensure_worktree(town, agent, branch, start=start)
    result.workdir, result.branch = ws.path, ws.branch
    if ws.kept_dirty:
        result.notes.append(f"{ws.path} has uncommitted work on {ws.branch}; left as it is")
    _, started = sessions.start(agent, actor=actor)
    result.session = "started" if started else "running"
