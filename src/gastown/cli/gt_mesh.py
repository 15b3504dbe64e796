"""``gt mesh``, ``gt trust``, ``gt credit``: the town on Nostr relays (gastown.mesh)."""

from __future__ import annotations

import sys
from typing import Any

from ..errors import UsageError
from ._app import Ctx
from .gt_common import add_action, add_actions, add_parser, clean, get_town, town_ledger


def _me(ctx: Ctx) -> Any:
    from ..mesh.identity import load

    town = get_town(ctx)
    return load(town.config, town.gt_dir, town_ledger(ctx))


def _relays(ctx: Ctx, me: Any) -> list[str]:
    given = getattr(ctx.args, "relay", None) or []
    relays = list(given) or list(me.settings.relays)
    if not relays:
        raise UsageError("no relays: set [mesh] relays in town.toml or pass --relay ws://…")
    return relays


def _id(ctx: Ctx) -> int:
    me = _me(ctx)
    entries = [e.as_json() for e in me.entries()]
    data = {"town": me.uri, "key": me.public, "keys": entries, "relays": me.settings.relays}
    lines = [f"Town {me.uri}", f"  town key: {me.public}"]
    lines += [f"  {e['role']:<6} {e['name']:<20} {e['pubkey']}" for e in entries]
    lines.append(f"  relays:   {', '.join(me.settings.relays) or '-'}")
    ctx.out(data, "\n".join(lines))
    return 0


def _peer_add(ctx: Ctx) -> int:
    from ..mesh.store import add_peer

    a = ctx.args
    rec = add_peer(town_ledger(ctx), a.name, a.uri, a.key)
    ctx.out(rec, f"Pinned {a.name} = {rec['uri']} to key {rec['key']}")
    return 0


def _peer_list(ctx: Ctx) -> int:
    from ..mesh.store import peers

    items = peers(town_ledger(ctx))
    ctx.out(items, "\n".join(f"{p['name']:<14} {p['uri']:<40} {p['key']}" for p in items)
            or "No peers")
    return 0


def _peer_remove(ctx: Ctx) -> int:
    from ..mesh.store import remove_peer

    remove_peer(town_ledger(ctx), ctx.args.name)
    ctx.out({"removed": ctx.args.name}, f"Unpinned {ctx.args.name}")
    return 0


def _relay(ctx: Ctx) -> int:
    from ..mesh.relay import WritePolicy, free_port, serve
    from ..mesh.store import peers

    _me(ctx)  # pins this town, so its own keys are admitted
    allow = {p["key"]: p["uri"] for p in peers(town_ledger(ctx))}
    port = ctx.args.port if ctx.args.port else free_port(ctx.args.host)

    def ready(url: str) -> None:
        print(f"Relay {url} admitting {len(allow)} town(s) and their manifests' keys "
              "(Ctrl-C stops it)", flush=True)

    store = None
    if not ctx.args.memory:  # events survive a restart (gastown.mesh.relaystore)
        import os

        from ..mesh.relaystore import RelayStore

        store = RelayStore(ctx.args.store or os.path.join(get_town(ctx).gt_dir, "mesh",
                                                          "relay.jsonl"))
    serve(ctx.args.host, port, WritePolicy(allow, store=store), ready)
    return 0


def _publish(ctx: Ctx) -> int:
    from ..federation.identity import load_identity
    from ..mesh import sync, work

    me = _me(ctx)
    led = town_ledger(ctx)
    policy = load_identity(get_town(ctx).config).publish
    evs = work.manifest_if_changed(led, me) + work.bead_items(led, me, policy)
    posted = sync.post(led, evs, max_skew=me.settings.max_skew)
    res = sync.flush(led, _relays(ctx, me), me.settings.acks)
    for err in res["errors"].values():
        print(f"gt mesh publish: {clean(err)}", file=sys.stderr)
    data = {"new": posted["queued"], **res}
    ctx.out(data, f"Published {posted['queued']} new event(s); {res['sent']} acknowledged by "
                  f"{res['acks_needed']} relay(s), {res['waiting']} waiting in the outbox")
    return 0 if not res["waiting"] else 3  # as an unreachable remote (NotFoundError)


def _sync(ctx: Ctx) -> int:
    from ..mesh import sync

    me = _me(ctx)
    res = sync.sync(town_ledger(ctx), _relays(ctx, me), max_skew=me.settings.max_skew)
    lines = []
    for url, r in res["relays"].items():
        if "error" in r:
            lines.append(f"{url}: {clean(r['error'])}")
        else:
            lines.append(f"{url}: {r['accepted']} new, {r['duplicates']} duplicate(s), "
                         f"{r['refused']} refused")
            lines += [f"  refused: {clean(x)}" for x in r["reasons"]]
    ctx.out(res, "\n".join(lines))
    failed = [u for u, r in res["relays"].items() if "error" in r]
    return 3 if failed and len(failed) == len(res["relays"]) else 0


def _work(ctx: Ctx) -> int:
    from ..mesh import work
    from ..mesh.store import get_peer

    led = town_ledger(ctx)
    town = get_peer(led, ctx.args.peer)["uri"] if ctx.args.peer else None
    items = work.work_items(led, town)

    def line(w: dict[str, Any]) -> str:
        b = w.get("bead") or {}
        state = "withdrawn" if w.get("withdrawn") else b.get("status", "?")
        return f"{w['uri']:<50} {state:<12} {clean(b.get('title', ''))}"

    ctx.out(items, "\n".join(line(w) for w in items) or "No work items held")
    return 0


def _follow(ctx: Ctx) -> int:
    import json

    from ..mesh import kinds, sync
    from ..mesh.events import sign
    from ..mesh.store import get_peer

    me = _me(ctx)
    led = town_ledger(ctx)
    keys = sorted({*json.loads(led.kv_get("mesh.following") or "[]"),
                   *(get_peer(led, n)["key"] for n in ctx.args.peers)})
    ev = sign(me.key()[0], kinds.FOLLOWS, "", [["gt", me.uri], *(["p", k] for k in keys)])
    led.kv_set("mesh.following", json.dumps(keys))
    sync.post(led, [ev], max_skew=me.settings.max_skew)
    res = sync.flush(led, _relays(ctx, me), me.settings.acks)
    ctx.out({"following": keys, **res}, f"Following {len(keys)} town(s) (NIP-02 list published; "
                                        f"{res['waiting']} waiting in the outbox)")
    return 0


def auto_section(led: Any) -> tuple[dict[str, Any] | None, str]:
    """The controller's last automatic publish/sync round (``gt status``, ``gt mesh status``)."""
    import time

    from ..mesh.auto import state

    st = state(led)
    if st is None:
        return None, ""
    ago = f"{max(0, int(time.time() - float(st['at'])))}s ago"
    if st["ok"]:
        return st, (f"mesh: synced {ago} ({st.get('waiting', 0)} waiting in the outbox, "
                    f"{st.get('accepted', 0)} new)")
    errs = "; ".join(f"{u}: {clean(str(e))}" for u, e in sorted(st["errors"].items()))
    return st, f"mesh: failing {st['failures']} round(s), last {ago}: {errs}"


def _status(ctx: Ctx) -> int:
    import json

    from ..mesh import store, sync

    led = town_ledger(ctx)
    out = sync.outbox(led)
    cursors = {k[len(sync.CURSOR):]: json.loads(v) for k, v in led.kv_scan(sync.CURSOR)}
    refused = json.loads(led.kv_get(store.REFUSED) or "{}")
    auto_data, auto_text = auto_section(led)
    data = {"outbox": len(out), "cursors": cursors, "refused": refused.get("count", 0),
            "last_refused": refused.get("last", []), "auto": auto_data}
    lines = [*([auto_text] if auto_text else []), f"Outbox: {len(out)} event(s) waiting",
             *(f"Relay {u}: caught up to {c['at']}" for u, c in cursors.items()),
             f"Refused so far: {data['refused']}",
             *(f"  {clean(r)}" for r in data["last_refused"][-5:])]
    ctx.out(data, "\n".join(lines))
    return 0


def setup(name: str, sub: Any) -> None:
    """Add the ``mesh``, ``trust`` and ``credit`` parsers."""
    from .gt import COMMANDS

    p = add_parser(sub, name, COMMANDS[name][1])
    if name == "trust":
        from .gt_mesh_money import setup_trust

        setup_trust(p)
        return
    if name == "credit":
        from .gt_mesh_money import setup_credit

        setup_credit(p)
        return
    actions = add_actions(p)
    q = add_action(actions, "id", "this town's keys (derived from .gt/mesh/secret)")
    q.set_defaults(func=_id)
    q = add_action(actions, "peer", "towns this one reads, pinned to their keys")
    pa = add_actions(q)
    r = add_action(pa, "add", "pin a town: NAME gt://ENTITY/CHAIN KEY")
    r.add_argument("name")
    r.add_argument("uri", metavar="gt://ENTITY/CHAIN")
    r.add_argument("key", metavar="KEY", help="the town's key (64 hex, from its gt mesh id)")
    r.set_defaults(func=_peer_add)
    r = add_action(pa, "list", "pinned towns")
    r.set_defaults(func=_peer_list)
    r = add_action(pa, "remove", "unpin a town")
    r.add_argument("name")
    r.set_defaults(func=_peer_remove)
    q.set_defaults(func=_peer_list)
    q = add_action(actions, "relay", "run an embedded relay admitting the pinned towns' keys")
    q.add_argument("--port", type=int, default=7447, help="0: a free port (default 7447)")
    q.add_argument("--host", default="127.0.0.1")
    q.add_argument("--store", metavar="PATH",
                   help="the file of admitted events (default .gt/mesh/relay.jsonl)")
    q.add_argument("--memory", action="store_true",
                   help="keep events in memory only (a restart empties the relay)")
    q.set_defaults(func=_relay)
    for act, helptext, fn in (("publish", "publish the manifest and work items; flush the "
                                          "outbox", _publish),
                              ("sync", "catch up from relays (every event verified)", _sync)):
        q = add_action(actions, act, helptext)
        q.add_argument("--relay", action="append", metavar="ws://…",
                       help="use this relay (repeatable) instead of [mesh] relays")
        q.set_defaults(func=fn)
    q = add_action(actions, "work", "work items held (of one PEER)")
    q.add_argument("peer", nargs="?")
    q.set_defaults(func=_work)
    q = add_action(actions, "follow", "follow pinned peers (a NIP-02 list; it feeds trust)")
    q.add_argument("peers", nargs="+", metavar="PEER")
    q.add_argument("--relay", action="append", metavar="ws://…")
    q.set_defaults(func=_follow)
    from .gt_mesh_money import add_delegation_actions

    add_delegation_actions(actions)
    q = add_action(actions, "status", "outbox, relay cursors, refused events")
    q.set_defaults(func=_status)
    p.set_defaults(func=_status)
