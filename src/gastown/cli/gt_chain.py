"""``gt chain``: entity chains, the town's Merkle log, proofs, verification, CV export."""

from __future__ import annotations

import json
import os
from typing import Any

from ..errors import UsageError, ValidationError
from ._app import Ctx
from .gt_common import add_action, add_actions, add_parser, clean, get_town, town_ledger


def enable_for_town(town: Any, led: Any) -> dict[str, Any]:
    """Turn chains on for ``town`` (also run by ``gt init``): keys for the town, the
    controller and every named agent; the ledger's hook config; ``.town.json``."""
    from ..chains.setup import enable
    from ..controller.mergeq import controller_actor
    from ..federation.identity import TOWN_JSON, load_identity, write_town_json

    ident = load_identity(town.config, town.gt_dir)
    actors = [controller_actor(town)] + [town.actor_of(a) for a in town.config.agents.values()]
    keys = enable(led, town.gt_dir, ident.public_name, str(ident.uri), actors)
    ident = load_identity(town.config, town.gt_dir)  # now with the entity keys
    if os.path.exists(os.path.join(town.root, TOWN_JSON)):  # a federated town: republish
        write_town_json(town.root, ident)
    return {"org": ident.public_name, "town": keys.town, "keys_dir": keys.dir,
            "entities": sorted(keys.public_keys())}


def _enable(ctx: Ctx) -> int:
    town = get_town(ctx)
    res = enable_for_town(town, town_ledger(ctx))
    ctx.out(res, f"Entity chains are on for {res['town']}: {len(res['entities'])} entities "
                 f"have keys in {res['keys_dir']} (published in .town.json)")
    return 0


def _keys(ctx: Ctx) -> int:
    from ..chains.log import keyring
    from ..chains.setup import add_keys

    keys = keyring(town_ledger(ctx))
    made = add_keys(keys, ctx.args.actor_names or [])
    pubs = keys.public_keys()
    ctx.out({"created": made, "keys": pubs},
            "\n".join(f"{e}  ed25519:{k}" for e, k in sorted(pubs.items())))
    return 0


def _list(ctx: Ctx) -> int:
    from ..chains import entities

    rows = entities(town_ledger(ctx))
    ctx.out(rows, "\n".join(f"{r['length']:6d}  {clean(r['entity'])}" for r in rows)
            or "No chain records yet.")
    return 0


def _show(ctx: Ctx) -> int:
    from ..chains import about, flags, records

    led = town_ledger(ctx)
    own = records(led, ctx.args.entity)
    judged = about(led, ctx.args.entity)
    data = {"records": own, "about": judged, "flags": flags(own + judged)}

    def text() -> str:
        lines = [f"{r['seq']:4d}  {r['at']}  {r['kind']:<9}  {clean(r.get('bead'))}  "
                 f"{clean((r.get('work') or {}).get('title', ''))[:60]}" for r in own]
        lines += [f"   by {clean(r['entity'])}: {r['kind']} {clean(r.get('bead'))} "
                  f"{clean((r.get('quality') or {}).get('verdict', ''))}" for r in judged]
        lines += [f"   FLAG {clean(json.dumps(f, sort_keys=True))}" for f in data["flags"]]
        return "\n".join(lines) or "No records."
    ctx.out(data, text)
    return 0


def _verify(ctx: Ctx) -> int:
    a = ctx.args
    if a.file:
        from ..chains.export import verify_file

        if a.entity:
            raise UsageError("gt chain verify: give ENTITY or --file, not both")
        res = verify_file(a.file, a.town_key)
        ctx.out(res, f"ok: {res['entity']}: {res['records']} records and {res['judgements']} "
                     f"judgements verified against the signed log of {res['town']} "
                     f"({res['log_size']} records)")
        return 0
    from ..chains.verify import verify_ledger

    res = verify_ledger(town_ledger(ctx), a.entity)
    ctx.out(res, f"ok: {res['records']} records on {res['entities']} chain(s) verified "
                 f"(hashes, links, signatures; {res['checkpoints']} checkpoint(s))")
    return 0


def _checkpoint(ctx: Ctx) -> int:
    from ..chains.log import checkpoint

    cp = checkpoint(town_ledger(ctx))
    ctx.out(cp, f"Signed checkpoint: size {cp['size']}, root {cp['root']}")
    return 0


def _write(ctx: Ctx, doc: dict[str, Any], summary: str) -> int:
    out = getattr(ctx.args, "output", None)
    if out:
        from ..chains.export import write_cv

        write_cv(doc, out)
        ctx.out({"path": out, **doc}, f"{summary}: written to {out}")
    else:
        ctx.out(doc, json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False))
    return 0


def _prove(ctx: Ctx) -> int:
    from ..chains.log import prove
    from ..chains.read import find

    led = town_ledger(ctx)
    idx, rec = find(led, ctx.args.record)
    return _write(ctx, prove(led, idx, rec), f"Inclusion proof of log #{idx}")


def _consistency(ctx: Ctx) -> int:
    from ..chains.log import consistency

    a = ctx.args
    return _write(ctx, consistency(town_ledger(ctx), a.old, a.new),
                  f"Consistency proof {a.old} -> {a.new or 'now'}")


def _check_proof(ctx: Ctx) -> int:
    from ..chains.export import MAX_FILE
    from ..chains.log import check_proof

    path = ctx.args.file
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read(MAX_FILE + 1)
    except OSError as exc:
        raise ValidationError(f"{path}: cannot read it ({exc.strerror})") from None
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValidationError(f"{path}: not JSON ({exc})") from None
    msg = check_proof(doc, ctx.args.town_key)
    ctx.out({"ok": True, "message": msg}, msg)
    return 0


def _export(ctx: Ctx) -> int:
    from ..chains.export import export_cv, write_cv

    town = get_town(ctx)
    led = town_ledger(ctx)
    from ..ledger import chainlog

    with led.store.read() as tx:
        uri = chainlog.settings(tx).get("chains.town", "")
    doc = export_cv(led, ctx.args.entity, uri)
    write_cv(doc, ctx.args.output)
    ctx.out({"path": ctx.args.output, "entity": doc["entity"], "records": len(doc["records"])},
            f"Exported the CV of {doc['entity']} ({len(doc['records'])} records, proofs "
            f"against a checkpoint of {doc['checkpoint']['size']}) to {ctx.args.output} "
            f"from {town.name}")
    return 0


def _review(ctx: Ctx) -> int:
    a = ctx.args
    led = town_ledger(ctx)
    bead = led.show(a.bead)
    author = a.author or bead.get("assignee") or bead.get("created_by")
    led.emit("review.verdict", bead["id"], {
        "verdict": "approved" if a.verdict == "approve" else "rejected",
        "author": author, "activity": 1 + (1 if a.note else 0), "note": a.note or ""})
    ctx.out({"bead": bead["id"], "verdict": a.verdict, "author": author},
            f"Recorded: {ctx.actor or led.actor} {a.verdict}d {bead['id']} by {author}")
    return 0


def _flags(ctx: Ctx) -> int:
    from ..chains import flags, records

    found = flags(records(town_ledger(ctx)))
    ctx.out(found, "\n".join(json.dumps(f, sort_keys=True) for f in found)
            or "No flags: no rubber stamps, no reciprocal validation loops.")
    return 0


def setup(name: str, sub: Any) -> None:
    """Add the ``chain`` parser and its actions."""
    from .gt import COMMANDS

    p = add_parser(sub, name, COMMANDS[name][1])
    actions = add_actions(p)
    q = add_action(actions, "enable", "turn chains on: keys, the ledger hook, .town.json")
    q.set_defaults(func=_enable)
    q = add_action(actions, "keys", "list public keys; give ACTOR… (people) keys of their own")
    q.add_argument("actor_names", nargs="*", metavar="ACTOR")
    q.set_defaults(func=_keys)
    q = add_action(actions, "list", "every chain and its length")
    q.set_defaults(func=_list)
    q = add_action(actions, "show", "an entity's records, the judgements of its work, flags")
    q.add_argument("entity", metavar="ENTITY|ACTOR")
    q.set_defaults(func=_show)
    q = add_action(actions, "verify", "recompute every hash, link and signature "
                                      "(or check an exported CV with --file)")
    q.add_argument("entity", nargs="?", metavar="ENTITY|ACTOR")
    q.add_argument("--file", help="an exported CV to check offline")
    q.add_argument("--town-key", help="pin the issuing town's public key (base64)")
    q.set_defaults(func=_verify)
    q = add_action(actions, "checkpoint", "sign the town log's head with the town key")
    q.set_defaults(func=_checkpoint)
    q = add_action(actions, "prove", "an inclusion proof of RECORD (#INDEX, ENTITY:SEQ, hash)")
    q.add_argument("record")
    q.add_argument("-o", "--output", help="write the proof to this file")
    q.set_defaults(func=_prove)
    q = add_action(actions, "consistency", "a consistency proof between log sizes OLD and NEW")
    q.add_argument("old", type=int)
    q.add_argument("new", type=int, nargs="?")
    q.add_argument("-o", "--output", help="write the proof to this file")
    q.set_defaults(func=_consistency)
    q = add_action(actions, "check-proof", "check a proof file offline")
    q.add_argument("file")
    q.add_argument("--town-key", help="pin the town's public key (base64)")
    q.set_defaults(func=_check_proof)
    q = add_action(actions, "export", "write ENTITY's verifiable CV to a file")
    q.add_argument("entity", metavar="ENTITY|ACTOR")
    q.add_argument("-o", "--output", required=True)
    q.set_defaults(func=_export)
    q = add_action(actions, "review", "validate (approve) or reject someone's work on BEAD")
    q.add_argument("bead")
    q.add_argument("verdict", choices=("approve", "reject"))
    q.add_argument("--author", help="whose work it is (default: its assignee)")
    q.add_argument("--note", help="what the review found")
    q.set_defaults(func=_review)
    q = add_action(actions, "flags", "rubber-stamped validations and reciprocal loops")
    q.set_defaults(func=_flags)
    p.set_defaults(func=_list)
