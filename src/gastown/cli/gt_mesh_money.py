"""``gt trust``, ``gt credit`` and the delegation actions of ``gt mesh`` (offer … settle)."""

from __future__ import annotations

import sys
from typing import Any

from ..errors import NotFoundError
from ._app import Ctx
from .gt_common import add_action, add_actions, clean, town_ledger
from .gt_mesh import _me, _relays


def resolve_peer(ctx: Ctx, given: str) -> str:
    """A town key from a peer name, a federation remote's name, a ``gt://E/C`` address
    or a 64-hex key."""
    import json

    from ..mesh.store import peers

    led = town_ledger(ctx)
    items = peers(led)
    remote = led.kv_get(f"fed.remote.{given}")  # gt remote add NAME … (its town's address)
    uri = json.loads(remote).get("uri") if remote else None
    for p in items:
        if given in (p["name"], p["uri"], p["key"]) or (uri and p["uri"] == uri):
            return str(p["key"])
    g = given.lower()
    if len(g) == 64 and all(c in "0123456789abcdef" for c in g):
        return g
    raise NotFoundError(f"no peer {given!r} (a peer name, gt://ENTITY/CHAIN or a 64-hex key; "
                        "gt mesh peer list)")


def _name_of(ctx: Ctx, key: str) -> str:
    from ..mesh.store import peers

    return next((p["name"] for p in peers(town_ledger(ctx)) if p["key"] == key), key[:16])


def _trust(ctx: Ctx) -> int:
    from ..mesh.credit import limit_for
    from ..mesh.trust import score

    me = _me(ctx)
    peer = resolve_peer(ctx, ctx.args.peer)
    res = score(town_ledger(ctx), me.public, peer, fresh=ctx.args.fresh)
    res["peer"] = peer
    res["credit_limit"] = limit_for(res["trust"], me.settings.credit_min, me.settings.credit_max)
    ctx.out(res, f"Trust in {_name_of(ctx, peer)}: {res['trust']:.3f}  (social {res['social']:.2f}"
                 f" at distance {res['distance']}, mutual {res['mutual']:.2f}, delivery "
                 f"{res['accepted']}/{res['offered']}, settled {res['on_time']}/{res['receipts']})"
                 f"; credit limit {res['credit_limit']}")
    return 0


def _balance(ctx: Ctx) -> int:
    from ..mesh import credit

    me = _me(ctx)
    led = town_ledger(ctx)
    credit.apply(led, me.public)
    credit.apply_receipts(led, me.public)
    if ctx.args.peer:
        peer = resolve_peer(ctx, ctx.args.peer)
        n = credit.balance_with(led, peer)
        ctx.out({"peer": peer, "balance": n},
                f"{_name_of(ctx, peer)} owes this town {n}" if n >= 0
                else f"This town owes {_name_of(ctx, peer)} {-n}")
        return 0
    b = credit.balances(led)
    ctx.out(b, "\n".join(f"{k:<80} {v:>10}" for k, v in sorted(b.items())) or "No credit yet")
    return 0


def _history(ctx: Ctx) -> int:
    from ..mesh import credit

    me = _me(ctx)
    led = town_ledger(ctx)
    credit.apply(led, me.public)
    credit.apply_receipts(led, me.public)
    peer = resolve_peer(ctx, ctx.args.peer) if ctx.args.peer else None
    txs = credit.history(led, peer)
    ctx.out(txs, "\n".join(
        f"{t['at']}  {clean(t['memo']):<40} " + ", ".join(f"{n} {a:+d}" for n, a in t["postings"])
        for t in txs) or "No transactions")
    return 0


def _post(ctx: Ctx, me: Any, evs: list[Any]) -> dict[str, Any]:
    from ..mesh import sync

    led = town_ledger(ctx)
    sync.post(led, evs, max_skew=me.settings.max_skew)
    res = sync.flush(led, _relays(ctx, me), me.settings.acks)
    for err in res["errors"].values():
        print(f"gt mesh: {clean(err)}", file=sys.stderr)
    return res


def _event(ctx: Ctx, eid: str, kind: int) -> Any:
    from ..mesh import kinds, store

    ev = store.event(town_ledger(ctx), eid)
    if ev is None or ev.kind != kind:
        raise NotFoundError(f"no {kinds.NAMES[kind]} {eid!r} held (gt mesh sync first)")
    return ev


def _offer(ctx: Ctx) -> int:
    from ..mesh import credit

    me = _me(ctx)
    a = ctx.args
    ev = credit.offer(me.key()[0], me.uri, resolve_peer(ctx, a.peer), a.item, a.bid, a.title)
    res = _post(ctx, me, [ev])
    ctx.out({"offer": ev.id, **res}, f"Offered {a.item} for {a.bid} unit(s): {ev.id}")
    return 0


def _offers(ctx: Ctx) -> int:
    from ..mesh import kinds, store

    me = _me(ctx)
    led = town_ledger(ctx)
    answered = {e.tag("offer") for e in store.events(led, kinds.RESULT)}
    mine = [e for e in store.events(led, kinds.OFFER)
            if me.public in e.tag_values("p") and e.id not in answered]
    items = [{"id": e.id, "from": e.pubkey, "item": e.tag("item"), "bid": e.tag("bid")}
             for e in mine]
    ctx.out(items, "\n".join(f"{i['id']}  {clean(i['item'])}  bid {i['bid']}" for i in items)
            or "No open offers")
    return 0


def _respond(ctx: Ctx) -> int:
    from ..mesh import credit
    from ..mesh.trust import score

    me = _me(ctx)
    led = town_ledger(ctx)
    off = _event(ctx, ctx.args.offer, 4711)
    credit.apply(led, me.public)
    req = credit.town_of_key(led).get(off.pubkey, off.pubkey)
    trust = score(led, me.public, req)["trust"]
    ok, why = credit.decide(led, me.public, off, trust, me.settings.credit_min,
                            me.settings.credit_max)
    ok = ok and not ctx.args.refuse
    res = credit.result(me.key()[0], me.uri, off, ok, why if not ctx.args.refuse else "refused")
    _post(ctx, me, [res])
    ctx.out({"result": res.id, "done": ok, "why": why},
            f"{'Done' if ok else 'Refused'}: {why} ({res.id})")
    return 0 if ok else 4


def _accept(ctx: Ctx) -> int:
    from ..mesh import credit

    me = _me(ctx)
    res = _event(ctx, ctx.args.result, 4712)
    off = _event(ctx, str(res.tag("offer")), 4711)
    acc = credit.accept(me.key()[0], me.uri, off, res)
    _post(ctx, me, [acc])
    credit.apply(town_ledger(ctx), me.public)
    ctx.out({"acceptance": acc.id}, f"Accepted {res.id[:16]}…: a debt of {res.tag('bid')}")
    return 0


def _settle(ctx: Ctx) -> int:
    from ..mesh import credit

    me = _me(ctx)
    led = town_ledger(ctx)
    credit.apply(led, me.public)
    peer = resolve_peer(ctx, ctx.args.peer)
    backend = credit.SimulatedSettlement()
    rec = credit.settle(led, me.public, me.key()[0], me.uri, peer, backend)
    if rec is None:
        ctx.out({"settled": 0}, f"Nothing owed to {_name_of(ctx, peer)}")
        return 0
    _post(ctx, me, [rec])
    ctx.out({"settled": int(rec.tag("amount") or 0), "receipt": rec.id},
            f"Settled {rec.tag('amount')} with {_name_of(ctx, peer)} (simulated backend)")
    return 0


MAX_MAIL = 16 * 1024


def _mail(ctx: Ctx) -> int:
    from ..errors import UsageError
    from ..mesh import kinds
    from ..mesh.events import sign

    me = _me(ctx)
    peer = resolve_peer(ctx, ctx.args.peer)
    text = ctx.args.text
    if not text.strip() or len(text) > MAX_MAIL:
        raise UsageError(f"mail text: 1..{MAX_MAIL} characters")
    tags = [["gt", me.uri], ["p", peer]] + ([["subject", ctx.args.subject[:200]]]
                                           if ctx.args.subject else [])
    ev = sign(me.key()[0], kinds.MAIL, text, tags)
    res = _post(ctx, me, [ev])
    ctx.out({"mail": ev.id, **res}, f"Sent to {_name_of(ctx, peer)} ({ev.id[:16]}…; "
                                    f"{res['waiting']} waiting in the outbox)")
    return 0


def _inbox(ctx: Ctx) -> int:
    from ..mesh import kinds, store
    from ..mesh.trust import town_of_key

    me = _me(ctx)
    led = town_ledger(ctx)
    towns = town_of_key(led)
    items = [{"id": e.id, "from": _name_of(ctx, towns.get(e.pubkey, e.pubkey)),
              "at": e.created_at, "subject": e.tag("subject") or "", "text": e.content}
             for e in store.events(led, kinds.MAIL) if me.public in e.tag_values("p")
             and led.kv_get(store.GONE + e.id) is None]
    ctx.out(items, "\n".join(f"{m['at']}  {clean(m['from'])}: {clean(m['subject'])}\n"
                             f"  {clean(m['text'])}" for m in items) or "No mail")
    return 0


def setup_trust(p: Any) -> None:
    """``gt trust PEER [--fresh]``."""
    p.add_argument("peer", help="a peer name, gt://ENTITY/CHAIN or a town key")
    p.add_argument("--fresh", action="store_true", help="recompute (skip the cache)")
    p.set_defaults(func=_trust)


def setup_credit(p: Any) -> None:
    """``gt credit balance|history [PEER]``."""
    actions = add_actions(p)
    for name, helptext, fn in (("balance", "balances (with PEER: what it owes us)", _balance),
                               ("history", "credit transactions (with PEER)", _history)):
        q = add_action(actions, name, helptext)
        q.add_argument("peer", nargs="?")
        q.set_defaults(func=fn)
    p.set_defaults(func=_balance, peer=None)


def add_delegation_actions(actions: Any) -> None:
    """``gt mesh offer|offers|respond|accept|settle``."""
    q = add_action(actions, "offer", "offer work to a peer for a bid (units of credit)")
    q.add_argument("peer")
    q.add_argument("item", metavar="gt://…", help="the work item's address")
    q.add_argument("--bid", type=int, required=True)
    q.add_argument("--title", default="")
    q = _relay_opt(q, _offer)
    q = add_action(actions, "offers", "offers made to this town and not yet answered")
    q.set_defaults(func=_offers)
    q = add_action(actions, "respond", "answer an offer: done (within the credit limit) or not")
    q.add_argument("offer", metavar="OFFER-ID")
    q.add_argument("--refuse", action="store_true")
    _relay_opt(q, _respond)
    q = add_action(actions, "accept", "accept a done result: the signed receipt makes the debt")
    q.add_argument("result", metavar="RESULT-ID")
    _relay_opt(q, _accept)
    q = add_action(actions, "mail", "protocol mail to a town: PEER TEXT [--subject S]")
    q.add_argument("peer")
    q.add_argument("text")
    q.add_argument("--subject", default="")
    _relay_opt(q, _mail)
    q = add_action(actions, "inbox", "protocol mail from other towns, as held")
    q.set_defaults(func=_inbox)
    q = add_action(actions, "settle", "net and pay what this town owes PEER (simulated)")
    q.add_argument("peer")
    _relay_opt(q, _settle)


def _relay_opt(q: Any, fn: Any) -> Any:
    q.add_argument("--relay", action="append", metavar="ws://…")
    q.set_defaults(func=fn)
    return q


