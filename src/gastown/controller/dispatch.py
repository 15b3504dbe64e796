"""Dispatch: the next step reaches its agent the moment the previous one closes.

The controller hands every ``bead.closed`` event of a molecule step to
:meth:`Dispatcher.on_closed`.  The molecule's holder (the agent whose hook it is
on) is nudged with the step to do now -- or told to run ``gt done`` when every
step is closed -- and a ``dispatch`` event records it, naming the ``bead.closed``
event it answers (``after``) so that step-closed → next-step-delivered latency
can be read from the event log.  Nudges go out on a small thread pool: typing
into a tmux pane takes a few tmux calls, and one slow session must not delay
the others.

Each closed step is dispatched at most once, also across controller restarts:
the ``after`` sequence numbers of recent ``dispatch`` events are loaded at
start-up and skipped.  And none is lost when the controller is killed: a close
stays *open* from the moment it is queued until its nudge is typed and its
``dispatch`` event written (or nothing needed saying), and the controller never
saves its event cursor past the oldest open close (:meth:`Dispatcher.low_water`),
so a restarted controller reads it again and dispatches it.  A nudge half typed
when the controller died is cleared by the next one (the provider's line-kill).
Pressing Enter and writing the event cannot be one atomic step, so right before
Enter an *intent* is written (kv ``gt.controller.submitting.<after>``) and the
``dispatch`` event removes it: a restarted controller that finds an intent and
sees that the agent has since moved past the step records the dispatch
(``recovered``) instead of sending it again.

:class:`PoolFeeder` sends ready work routed to a pool (label ``pool:NAME``) and
stranded convoy work to free workers, never more than the pool's ``max``.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import ConflictError, GastownError, NotFoundError
from ..ledger.model import INFRA_TYPES
from ..ledger.query import Filter

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..ledger.core import Ledger
    from ..town.config import AgentConfig
    from ..town.core import Town
    from ..town.sessions import Sessions

__all__ = ["Dispatcher", "PoolFeeder", "deliver", "epoch", "INTENT_PREFIX", "WAKE_PREFIX"]

#: kv keys ``gt.controller.wake.<bead>``: a pool worker's wake-up nudge not yet sent
WAKE_PREFIX = "gt.controller.wake."
#: kv keys ``gt.controller.submitting.<after>``: a nudge whose text is typed and whose
#: Enter is being pressed; removed in the transaction that writes its ``dispatch``
INTENT_PREFIX = "gt.controller.submitting."


def _everyone(_agent: AgentConfig) -> bool:
    """Who a dispatcher nudges unless it runs on one node of several: every agent."""
    return True


def epoch(ts: str) -> float:
    """Seconds since the epoch of a ledger timestamp."""
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def deliver(sessions: Sessions, agent: AgentConfig, text: str,
            before_submit: Callable[[], None] | None = None) -> dict[str, Any]:
    """Type ``text`` into the agent's live session; what happened (never raises but
    what ``before_submit`` raises: then the text is typed and not submitted)."""
    from ..town.text import sanitize

    clean = sanitize(text)
    try:
        # the provider checks the session is alive itself: no second look (a tmux call)
        result = sessions.provider_for(agent).nudge(sessions.session_name(agent), clean,
                                                    before_submit)
    except GastownError as exc:
        return {"delivered": False, "verified": False, "detail": str(exc)}
    return {"delivered": result.delivered, "verified": result.verified, "detail": result.detail}


class Dispatcher:
    """Turns closed steps into nudges for the agents holding their molecules."""

    def __init__(self, town: Town, led: Ledger, sessions: Sessions, actor: str, workers: int,
                 log: Callable[[str], None] = lambda _m: None) -> None:
        self.town = town
        self.led = led
        self.sessions = sessions
        self.actor = actor
        self.log = log
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nudge")
        self._done: set[int] = set()      # `after` seqs already dispatched
        self._lock = threading.Lock()      # guards _done between the loop and nudge threads
        self._pending: list[dict[str, Any]] = []
        self._open: set[int] = set()      # queued or in flight, not yet handled
        self._intents: dict[int, dict[str, Any]] = {}  # left by a killed controller
        #: which agents this dispatcher nudges (a node: only those placed on it)
        self.owns: Callable[[AgentConfig], bool] = _everyone

    def remember(self, after: int) -> None:
        """A closed step (by its event seq) that was dispatched before (start-up replay)."""
        with self._lock:
            self._done.add(after)

    def on_closed(self, event: dict[str, Any]) -> None:
        """Queue a ``bead.closed`` event; :meth:`flush` decides after the poll's batch."""
        if event["actor"] == self.actor:
            return  # the controller's own closes (merge requests, convoys, patrol wisps)
        if self.owns is not _everyone:  # gt up --node: another node's agent is its node's
            closer = self.town.agent_by_address(str(event["actor"] or ""))
            if closer is not None and not self.owns(closer):
                return
        with self._lock:
            if event["seq"] in self._done:
                return
            self._open.add(event["seq"])
        self._pending.append(event)

    def load_intents(self) -> int:
        """Read the intents a killed controller left (after :meth:`remember`); stale
        ones -- their closes were dispatched -- are removed.  Returns how many remain."""
        for key, value in self.led.kv_scan(INTENT_PREFIX):
            try:
                intent = json.loads(value)
                seqs = [int(s) for s in intent.get("covers") or [intent["after"]]]
            except (ValueError, TypeError, KeyError, AttributeError):
                intent, seqs = None, []
            with self._lock:
                stale = intent is None or all(s in self._done for s in seqs)
            if stale:
                self._clear_intent(key)
                continue
            intent["key"] = key
            for seq in seqs:
                self._intents[seq] = intent
        return len({id(i) for i in self._intents.values()})

    def _clear_intent(self, key: str) -> None:
        with self.led.transaction() as t:
            t.kv_drop(key)

    def low_water(self) -> int | None:
        """The oldest close not yet handled (queued or being nudged), or None.

        The controller's saved cursor stays below it: whatever was not handled
        when a controller died is read again by the next one.
        """
        with self._lock:
            return min(self._open) if self._open else None

    def flush(self) -> int:
        """Hand the queued closes to the nudge pool; returns how many nudges will go out.

        Closes are grouped by molecule (a step's id extends its molecule's): when an
        agent closed several steps of one molecule within one poll, one nudge, for
        the latest, answers them all (its ``dispatch`` event lists them in
        ``covers``).  Planning happens on the pool too, so a burst of closes across
        many molecules is planned and delivered side by side.
        """
        pending, self._pending = self._pending, []
        groups: dict[str, list[dict[str, Any]]] = {}
        for event in pending:
            groups.setdefault(str(event.get("bead_id") or "").split(".")[0], []).append(event)
        for events in groups.values():
            with self._lock:
                self._done.update(e["seq"] for e in events)
            self.pool.submit(self._dispatch, events)
        return len(groups)

    def _dispatch(self, events: list[dict[str, Any]]) -> None:
        """Plan and deliver one nudge for a molecule's closes (runs on the nudge pool)."""
        handled = [e["seq"] for e in events]
        what = events[-1].get("bead_id")
        try:
            from .checks import run_checks  # a closed step with a check: run it first

            run_checks(self.town, self.led, events, self.actor, self.log)
            plan = self._latest_plan(events)
            retry: list[str] = []
            for intent in self._intents_of(events):
                if plan is not None and (plan["step"], plan["agent"]) == (
                        intent.get("step"), intent.get("agent")):
                    retry.append(intent["key"])  # still due: sent again, torn text cleared
                    continue
                # a killed controller pressed Enter, or was about to: the agent has
                # moved on since, so that nudge went out -- record it, do not repeat it
                self._recover(intent)
                covered = set(intent.get("covers") or [intent.get("after")])
                events = [e for e in events if e["seq"] not in covered]
                plan = self._latest_plan(events)
            if plan is not None:
                plan["covers"] = [e["seq"] for e in events]
                plan["retry"] = retry
                self._send(plan)
            elif retry:
                for key in retry:
                    self._clear_intent(key)
        except Exception as exc:  # noqa: BLE001 - a nudge thread must never die silently
            self.log(f"dispatch: {what}: {type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._open.difference_update(handled)

    def _intents_of(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The intents a killed controller left for these closes, oldest first."""
        found = {id(i): i for e in events if (i := self._intents.get(e["seq"])) is not None}
        return sorted(found.values(), key=lambda i: int(i.get("after") or 0))

    def _latest_plan(self, events: list[dict[str, Any]]) -> dict[str, Any] | None:
        """The plan of the latest close that calls for a nudge (a molecule's own
        close, right after its last step's, does not)."""
        for event in reversed(events):
            plan = self._plan(event)
            if plan is not None:
                return plan
        return None

    def _plan(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """Who to nudge with what, for one closed bead; None when nobody needs telling."""
        from ..chemistry.inspect import current_step, mol_root

        bead_id = event.get("bead_id")
        if not bead_id:
            return None
        try:
            bead = self.led.get(bead_id)
            if bead.get("issue_type") in INFRA_TYPES:
                return None  # a root, a message, a merge request: not a step
            root_id = mol_root(self.led, bead_id)
            if root_id == bead_id:
                return None  # a lone bead: its agent runs `gt done` on its own
            root = self.led.get(root_id)
        except NotFoundError:
            return None  # burned meanwhile (a wisp)
        holder = root.get("assignee")
        agent = self.town.agent_by_address(str(holder)) if holder else None
        if agent is None or not self.owns(agent):
            return None  # nobody's, or another node's agent: that node nudges it
        base = {"agent": agent.name, "root": root_id, "closed": bead_id,
                "after": event["seq"], "closed_ts": event["ts"]}
        if root["status"] == "closed":
            if self.led.events(since_seq=int(event["seq"]), limit=1, bead_id=root_id,
                               types=["done"]):
                # handed in already (a restarted controller re-reading a close whose
                # nudge a killed one delivered): telling it again would be noise
                return None
            return {**base, "step": None,
                    "text": f"[gt] every step of {root_id} is closed: run `gt done` now."}
        if root["status"] != "hooked":
            return None  # nobody's hook: the pool feeder or a person decides
        step = current_step(self.led, root_id)
        if step is None or step["status"] != "open":
            return None  # waiting on other steps, or the agent is already on one
        return {**base, "step": step["id"],
                "text": f"[gt] next step {step['id']} of {root_id} is ready: {step['title']}. "
                        "Run `gt prime` and do it now."}

    def _send(self, plan: dict[str, Any]) -> None:
        """Deliver one nudge and record it (an intent covers the moment of Enter)."""
        agent = self.town.agent(plan["agent"])
        payload = {k: plan[k] for k in ("agent", "root", "step", "closed", "after")}
        if len(plan.get("covers") or []) > 1:
            payload["covers"] = plan["covers"]
        key = f"{INTENT_PREFIX}{plan['after']}"

        def intend() -> None:
            intent = {**payload, "covers": plan["covers"], "closed_ts": plan["closed_ts"],
                      "typed_at": time.time(), "text": plan["text"][:300]}
            with self.led.transaction() as t:
                t.kv_put(key, json.dumps(intent))

        result = deliver(self.sessions, agent, plan["text"], intend)
        latency = time.time() - epoch(plan["closed_ts"])
        payload.update(result, latency_ms=round(latency * 1000, 1), text=plan["text"][:300])
        with self.led.transaction() as t:
            t.emit("dispatch", plan["step"] or plan["root"], payload)
            t.kv_drop(*{key, *plan.get("retry", [])})

    def _recover(self, intent: dict[str, Any]) -> None:
        """Record the dispatch a killed controller submitted but did not record."""
        payload = {k: intent.get(k) for k in ("agent", "root", "step", "closed", "after")}
        if len(intent.get("covers") or []) > 1:
            payload["covers"] = intent["covers"]
        typed = float(intent.get("typed_at") or time.time())
        latency = typed - epoch(str(intent.get("closed_ts")))
        payload.update(delivered=True, verified=False, recovered=True,
                       detail="submitted by a controller killed before it recorded it; "
                              "the agent has moved on since",
                       latency_ms=round(latency * 1000, 1), text=intent.get("text", ""))
        with self.led.transaction() as t:
            t.emit("dispatch", intent.get("step") or intent.get("root"), payload)
            t.kv_drop(intent["key"])
        self.log(f"dispatch: recorded the nudge a killed controller sent for "
                 f"{intent.get('closed')}")

    def close(self) -> None:
        """Finish the nudges in flight."""
        self.pool.shutdown(wait=True, cancel_futures=False)


class PoolFeeder:
    """Routes ready work to pool workers (label ``pool:NAME``) and stranded convoy work."""

    def __init__(self, town: Town, led: Ledger, sessions: Sessions, actor: str,
                 dispatcher: Dispatcher, log: Callable[[str], None] = lambda _m: None) -> None:
        self.town = town
        self.led = led
        self.sessions = sessions
        self.actor = actor
        self.dispatcher = dispatcher
        self.log = log
        self._reported: set[str] = set()
        self._router: Any = None  # a SkillRouter, made when a pool routes by skills

    def _default_target(self, convoy_target: str | None) -> str | None:
        if convoy_target:
            return convoy_target
        pools = list(self.town.config.pools)
        return pools[0] if len(pools) == 1 else None

    def feed(self) -> dict[str, list[str]]:
        """One pass: sling what can go to a free worker; report stranded convoy work."""
        from .convoy import stranded

        slung: list[str] = []
        waiting: list[str] = []
        work: dict[str, str | None] = {}
        for pool in self.town.config.pools:
            for ready in self.led.ready(Filter(labels_all=[f"pool:{pool}"], unassigned=True)):
                work.setdefault(ready["id"], pool)
        from_convoys: set[str] = set()
        for convoy, item in stranded(self.led):
            target = self._default_target((convoy.get("metadata") or {}).get("target"))
            work.setdefault(item["id"], target)
            from_convoys.add(item["id"])
        full: set[str] = set()
        from ..town.budgets import paused, paused_reason

        # budgets spent: no new work goes there this period (read only when there is work)
        held = paused(self.led) if work else {}
        for bead_id, target in work.items():
            if target is None or target in full or (
                    held and paused_reason(self.town, held, target) is not None):
                waiting.append(bead_id)
            elif self._sling(bead_id, target):
                slung.append(bead_id)
            else:
                full.add(target)
                waiting.append(bead_id)
        fresh = [b for b in waiting if b in from_convoys and b not in self._reported]
        if fresh:
            # reported once per bead (per controller run), not on every tick
            self.led.emit("convoy.stranded", None, {"beads": fresh})
            self._reported.update(fresh)
        self._reported.difference_update(slung)
        return {"slung": slung, "waiting": waiting, "reported": fresh}

    def _sling_to(self, bead_id: str, target: str) -> Any:
        """Sling to ``target``; a pool routed by skills tries its slots best fit first."""
        from ..town.slinging import sling

        pool = self.town.config.pools.get(target)
        if pool is not None and pool.route == "skills":
            if self._router is None:
                from .skillroute import SkillRouter

                self._router = SkillRouter(self.town, self.led)
            order = self._router.order(bead_id, pool)
            for slot in order:
                try:
                    return sling(self.town, bead_id, slot, nudge=False, actor=self.actor)
                except ConflictError:
                    continue  # that slot is busy: the next best fit
            if order:
                raise ConflictError(f"pool {target} is full")
        return sling(self.town, bead_id, target, nudge=False, actor=self.actor)

    def _sling(self, bead_id: str, target: str) -> bool:
        """Sling to a free worker (starting or waking it); False when none is free."""
        try:
            result = self._sling_to(bead_id, target)
        except ConflictError:
            return False  # pool full or agent busy: it waits for the next free worker
        except GastownError as exc:
            self.log(f"pools: cannot sling {bead_id} to {target}: {exc}")
            return False
        if result.session == "running" and not result.already:
            text = f"[gt] {result.id} is on your hook: {result.title}. Run `gt prime`."
            # recorded before it is sent, so that a controller killed meanwhile leaves it
            # to the next one (resume_wakes); removed with the dispatch event
            key = f"{WAKE_PREFIX}{result.id}"
            with self.led.transaction() as t:
                t.kv_put(key, json.dumps({"agent": result.agent, "text": text}))
            self.dispatcher.pool.submit(self._wake, self.town.agent(result.agent), text,
                                        result.id)
        self.log(f"pools: {bead_id} -> {result.agent} ({result.session})")
        return True

    def resume_wakes(self) -> int:
        """Send the wake-up nudges a killed controller slung but did not record; returns
        how many.  Work no longer waiting on that agent's hook needs none."""
        count = 0
        for key, value in self.led.kv_scan(WAKE_PREFIX):
            bead_id = key[len(WAKE_PREFIX):]
            try:
                wake = json.loads(value)
                agent = self.town.agent(str(wake["agent"]))
                text = str(wake["text"])
                bead = self.led.get(bead_id)
                due = (bead["status"] == "hooked"
                       and bead.get("assignee") == self.town.actor_of(agent))
            except (ValueError, TypeError, KeyError, GastownError):
                due = False
            if not due:
                with self.led.transaction() as t:
                    t.kv_drop(key)
                continue
            self.dispatcher.pool.submit(self._wake, agent, text, bead_id)
            count += 1
        return count

    def _wake(self, agent: AgentConfig, text: str, bead_id: str) -> None:
        try:
            result = deliver(self.sessions, agent, text)
            with self.led.transaction() as t:
                t.emit("dispatch", bead_id, {"agent": agent.name, "root": bead_id,
                                             "step": None, "kind": "sling", **result})
                t.kv_drop(f"{WAKE_PREFIX}{bead_id}")
        except Exception as exc:  # noqa: BLE001 - never kill the nudge pool
            self.log(f"pools: waking {agent.name}: {exc}")
