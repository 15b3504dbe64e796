"""Orders: formulas the controller starts by itself, on a schedule or on an event.

``[orders.NAME]`` in ``town.toml`` (see :mod:`gastown.config.orders`) names a
formula, its variables and, optionally, where to sling it.  :func:`run_orders` is
the one function the controller's loop calls (on the leader, once there are
several nodes); it is plain code and never asks a model anything.

Exactly once, also across a controller killed at any instant: each order keeps its
state in one kv row (``gt.orders.state.NAME``) and a firing re-reads that row,
pours the formula, rewrites the row and writes the ``order.fired`` event in ONE
transaction.  A schedule fires when its next time after the last firing has come;
the last firing is then set to *now*, so a controller that was down for a day
fires a ``*/15`` order once on restart, not ninety-six times.  A new order does not
fire for times before the controller first saw it.  Event orders follow the event
log from their own cursor; each order remembers the last event it handled.

Slinging the poured molecule follows the commit (it starts sessions and types
into them, which cannot be part of a transaction); one that did not happen -- a
full pool, a kill in between -- is retried at the next pass, and slinging a
hooked bead again is a no-op.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import GastownError, NotFoundError

if TYPE_CHECKING:
    from ..chemistry.api import Source
    from ..config.orders import Order
    from ..ledger.core import Ledger
    from ..ledger.ops import Txn
    from ..town.core import Town

__all__ = ["run_orders", "fire", "list_orders", "order_state", "order_by_name", "STATE_PREFIX",
           "CURSOR_KEY"]

STATE_PREFIX = "gt.orders.state."
CURSOR_KEY = "gt.orders.cursor"
#: events handled per pass at most (the rest wait for the next pass)
EVENT_BATCH = 500

Log = Callable[[str], None]


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: Any) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _now(now: dt.datetime | None) -> dt.datetime:
    return (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)


def _load(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def order_state(led: Ledger | Txn, name: str) -> dict[str, Any]:
    """The kv state of one order (``{}`` before it was first seen)."""
    key = STATE_PREFIX + name
    return _load(led.kv_get(key))


def _expand(value: str, values: dict[str, str]) -> str:
    """``${bead}``, ``${actor}``, ``${event}``, ``${time}`` in a var's value (plain replace)."""
    for k, v in values.items():
        value = value.replace("${" + k + "}", v)
    return value


def _own_bead(led: Ledger, bead_id: str | None, name: str) -> bool:
    """True when ``bead_id`` is part of a molecule this same order poured (no loops)."""
    if not bead_id:
        return False
    root = bead_id.split(".", 1)[0]
    try:
        meta = led.get(root).get("metadata") or {}
    except NotFoundError:
        return False
    return isinstance(meta.get("order"), dict) and meta["order"].get("name") == name


def fire(town: Town, led: Ledger, order: Order, *, now: dt.datetime | None = None,
         reason: str = "manual", due: dt.datetime | None = None,
         event: dict[str, Any] | None = None, log: Log = lambda _m: None,
         sling_it: bool = True) -> dict[str, Any]:
    """Pour ``order``'s formula now (and sling it); returns what happened.

    ``due`` (a schedule's time) and ``event`` (an event order's trigger) make the
    firing conditional: if the order's state shows it was handled already -- by
    another controller, or by this one before a kill -- nothing is poured and
    ``{"fired": False, "already": True}`` comes back.
    """
    at = _now(now)
    minute = at.replace(second=0, microsecond=0)
    subst = {"order": order.name, "time": _iso(due or minute)}
    if event is not None:
        subst.update(bead=str(event.get("bead_id") or ""), actor=str(event.get("actor") or ""),
                     event=str(event.get("type") or ""), seq=str(event.get("seq")))
    given = {k: _expand(v, subst) for k, v in order.vars.items()}
    out: dict[str, Any] = {"order": order.name, "reason": reason, "fired": False,
                           "formula": order.formula}
    source, error = _source(town, led, order, given)
    mark = {"due": due, "event": event, "minute": minute, "at": at, "reason": reason}
    try:
        with led.transaction() as t:
            done = _commit(t, order, source, given, error, mark)
    except GastownError as exc:
        if source is None:
            raise
        # the pour itself was refused: record that instead, so a schedule moves on
        error = f"order {order.name}: formula {order.formula!r}: {exc}"
        with led.transaction() as t:
            done = _commit(t, order, None, given, error, mark)
    if done.get("already"):
        return {**out, "already": True}
    if done.get("error"):
        log(str(done["error"]))
        return {**out, "error": done["error"]}
    root = done["root"]
    log(f"order {order.name} fired ({reason}): {root['id']}")
    out.update(fired=True, root=root["id"], title=root["title"])
    if order.sling is not None and sling_it:
        out["sling"] = _sling(town, led, order, root["id"], log)
    return out


def _source(town: Town, led: Ledger, order: Order, given: dict[str, str]
            ) -> tuple[Source | None, str | None]:
    """The order's formula or proto, its variables checked; or the one-line reason not."""
    from ..chemistry.api import formula_paths, resolve_source
    from ..chemistry.vars import resolve_vars

    try:
        source = resolve_source(led, order.formula, formula_paths(led, town.formula_paths()),
                                given)
        if source.blueprint is not None:
            resolve_vars(source.blueprint, given)  # a missing variable, before any write
        return source, None
    except GastownError as exc:
        return None, f"order {order.name}: formula {order.formula!r}: {exc}"


def _commit(t: Txn, order: Order, source: Source | None, given: dict[str, str],
            error: str | None, mark: dict[str, Any]) -> dict[str, Any]:
    """One firing's transaction: re-check the state, pour, rewrite the state, the event."""
    from ..chemistry.api import pour_in

    due, event, reason = mark["due"], mark["event"], mark["reason"]
    state = order_state(t, order.name)
    if due is not None and (_parse(state.get("last")) or mark["minute"]) >= due:
        return {"already": True}
    if event is not None and int(state.get("seq") or 0) >= int(event["seq"]):
        return {"already": True}
    new = dict(state)
    if due is not None:
        new["last"] = _iso(mark["minute"])
    if event is not None:
        new["seq"] = int(event["seq"])
    new.update(fired_at=_iso(mark["at"]), reason=reason, error=error)
    if source is None:
        t.kv_put(STATE_PREFIX + order.name, json.dumps(new, sort_keys=True))
        t.emit("order.failed", None, {"order": order.name, "error": error, "reason": reason})
        return {"error": error}
    root, _ = pour_in(t, source, given, wisp=order.wisp)
    meta = dict(root.get("metadata") or {})
    meta["order"] = {"name": order.name, "reason": reason, "due": _iso(due) if due else None,
                     "event": event.get("seq") if event else None}
    t.update(root["id"], metadata=meta)
    new.update(root=root["id"], slung=order.sling is None, sling_error=None)
    t.kv_put(STATE_PREFIX + order.name, json.dumps(new, sort_keys=True))
    t.emit("order.fired", root["id"], {
        "order": order.name, "formula": order.formula, "reason": reason,
        "due": _iso(due) if due else None, "event": event.get("seq") if event else None,
        "vars": given, "sling": order.sling, "wisp": order.wisp})
    return {"root": root}


def _sling(town: Town, led: Ledger, order: Order, root_id: str, log: Log) -> dict[str, Any]:
    """Sling a poured root to the order's target; the outcome is kept in the order's state."""
    from ..town.slinging import sling

    result: dict[str, Any]
    error: str | None = None
    try:
        res = sling(town, root_id, order.sling, actor=led.actor)
        result = {"agent": res.agent, "already": res.already}
    except (GastownError, OSError) as exc:
        error = f"order {order.name}: sling {root_id} to {order.sling}: {exc}"
        result = {"error": error}
        log(error)
    with led.transaction() as t:
        state = order_state(t, order.name)
        if state.get("root") == root_id:
            state.update(slung=error is None, sling_error=error)
            t.kv_put(STATE_PREFIX + order.name, json.dumps(state, sort_keys=True))
    return result


def _due(order: Order, state: dict[str, Any], at: dt.datetime) -> dt.datetime | None:
    """The schedule's first time after the last firing, if it has come (else None)."""
    last = _parse(state.get("last"))
    if order.cron is None or last is None:
        return None
    nxt = order.cron.next_after(last)
    return nxt if nxt is not None and nxt <= at else None


def run_orders(town: Town, led: Ledger, *, now: dt.datetime | None = None,
               log: Log = lambda _m: None) -> list[dict[str, Any]]:
    """One pass over the town's orders: fire what is due; returns the firings."""
    orders = [o for o in town.config.orders.values() if o.enabled]
    if not orders:
        return []
    at = _now(now)
    minute = at.replace(second=0, microsecond=0)
    fired: list[dict[str, Any]] = []
    states = {k[len(STATE_PREFIX):]: _load(v) for k, v in led.kv_scan(STATE_PREFIX)}
    for order in orders:
        state = states.get(order.name, {})
        if order.cron is not None and "last" not in state:
            # first seen now: schedule from here (never for times before it existed)
            with led.transaction() as t:
                if "last" not in order_state(t, order.name):
                    t.kv_put(STATE_PREFIX + order.name,
                             json.dumps({**state, "last": _iso(minute)}, sort_keys=True))
            continue
        if order.sling is not None and state.get("root") and not state.get("slung"):
            _sling(town, led, order, str(state["root"]), log)
        due = _due(order, state, at)
        if due is not None:
            fired.append(_guarded(town, led, order, log, now=at, reason="schedule", due=due))
    fired += _event_orders(town, led, [o for o in orders if o.on], at, log)
    return [f for f in fired if f.get("fired") or f.get("error")]


def _guarded(town: Town, led: Ledger, order: Order, log: Log, **kw: Any) -> dict[str, Any]:
    """:func:`fire`, a failure of one order logged and not stopping the others."""
    try:
        return fire(town, led, order, log=log, **kw)
    except (GastownError, OSError) as exc:
        log(f"order {order.name}: {exc}")
        return {"order": order.name, "fired": False, "error": str(exc)}


def _event_orders(town: Town, led: Ledger, orders: list[Order], at: dt.datetime,
                  log: Log) -> list[dict[str, Any]]:
    if not orders:
        return []
    raw = led.kv_get(CURSOR_KEY)
    if raw is None or not raw.isdigit():
        # first pass: what happened before the orders existed is history
        with led.transaction() as t:
            t.kv_put(CURSOR_KEY, str(led.last_event_seq()))
        return []
    cursor = int(raw)
    types = sorted({str(o.on) for o in orders})
    events = led.events(since_seq=cursor, types=types, limit=EVENT_BATCH)
    out: list[dict[str, Any]] = []
    for ev in events:
        for order in orders:
            if order.on != ev["type"] or _own_bead(led, ev.get("bead_id"), order.name):
                continue
            if order.label is not None and not _has_label(led, ev.get("bead_id"), order.label):
                continue
            out.append(_guarded(town, led, order, log, now=at, reason=f"event {ev['type']}",
                                event=ev))
    if events:
        with led.transaction() as t:
            t.kv_put(CURSOR_KEY, str(events[-1]["seq"]))
    else:
        # nothing of interest for a long while: move up, keeping a margin for events
        # whose transactions commit late (a PostgreSQL sequence is handed out first)
        last = led.last_event_seq()
        if last > cursor + 2000:
            with led.transaction() as t:
                t.kv_put(CURSOR_KEY, str(last - 1000))
    return out


def _has_label(led: Ledger, bead_id: str | None, label: str) -> bool:
    if not bead_id:
        return False
    try:
        return label in (led.get(bead_id).get("labels") or [])
    except NotFoundError:
        return False


def list_orders(town: Town, led: Ledger, *, now: dt.datetime | None = None,
                check: bool = True) -> list[dict[str, Any]]:
    """Every order with its next firing, last firing and (``check``) whether its formula loads."""
    at = _now(now)
    out = []
    for order in town.config.orders.values():
        state = order_state(led, order.name)
        item: dict[str, Any] = {
            "name": order.name, "formula": order.formula, "enabled": order.enabled,
            "schedule": order.schedule, "on": order.on, "label": order.label,
            "sling": order.sling, "wisp": order.wisp, "vars": order.vars,
            "last_fired": state.get("fired_at"), "last_root": state.get("root"),
            "last_error": state.get("error") or state.get("sling_error"),
            "last_failed": bool(state.get("error")), "next": None}
        if order.cron is not None:
            last = _parse(state.get("last")) or at
            nxt = order.cron.next_after(last)
            if nxt is not None:
                item["next"] = _iso(max(nxt, at.replace(second=0, microsecond=0)))
        if check:
            _, problem = _source(town, led, order, dict(order.vars))
            item["formula_ok"], item["formula_error"] = problem is None, problem
        out.append(item)
    return out


def order_by_name(town: Town, name: str) -> Order:
    """A configured order or :class:`NotFoundError` listing the known ones."""
    if name not in town.config.orders:
        known = ", ".join(sorted(town.config.orders)) or "none"
        raise NotFoundError(f"no order named {name!r} in {town.config.path} (known: {known})")
    return town.config.orders[name]

