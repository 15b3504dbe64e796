"""``gt identity``, ``gt publish``, ``gt remote``: the town among other towns."""

from __future__ import annotations

import os
from typing import Any

from ..errors import GastownError, UsageError, ValidationError
from ._app import Ctx
from .gt_common import add_action, add_actions, add_parser, clean, get_town, town_ledger


def _identity(ctx: Ctx) -> int:
    from ..federation.identity import load_identity, write_town_json

    town = get_town(ctx)
    ident = load_identity(town.config, town.gt_dir)
    path = write_town_json(town.root, ident)
    data = {**ident.as_json(), "town_json": path}
    pub = ident.publish if isinstance(ident.publish, str) else ", ".join(ident.publish)
    ctx.out(data, "\n".join([
        f"Town {ident.uri}", f"  owner:       {ident.owner}", f"  name:        {ident.name}",
        f"  public name: {ident.public_name}", f"  public key:  ed25519:{ident.public_key}",
        f"  publishes:   {pub}",
        f"  member of:   {', '.join(ident.member_of) or '-'}", f"  published as {path}",
        *_auto_lines(ident.auto_publish, town.gt_dir, data)]))
    return 0


def _auto_lines(on: bool, gt_dir: str, data: dict[str, Any]) -> list[str]:
    """``auto publish:`` lines of ``gt identity`` (and ``data["auto_publish"]`` for --json)."""
    from ..federation.autopub import status

    st = {"enabled": on, **status(gt_dir)} if on else {"enabled": False}
    data["auto_publish"] = st
    if not on:
        return ["  auto publish: off"]
    if st.get("last_error"):
        return [f"  auto publish: on; FAILING since {st.get('failed_at')} "
                f"({st.get('failures')} in a row, retried on the next change): "
                f"{clean(str(st['last_error']))}"]
    last = st.get("last_ok_at") or "not yet"
    return [f"  auto publish: on; last published {last}"
            + ("; a publish is due" if st.get("pending") else "")]


def status_section(root: str, gt_dir: str, ledger: Any) -> tuple[dict[str, Any], str]:
    """``gt status``'s federation part: each remote with the age of what is known and
    its last error, and auto-publish's state; ({}, "") for a town with neither."""
    from ..federation.autopub import enabled, status
    from ..federation.remotes import list_remotes

    remotes = list_remotes(ledger)
    auto = enabled(root)
    if not remotes and not auto:
        return {}, ""
    data: dict[str, Any] = {"remotes": [{k: r.get(k) for k in (
        "name", "uri", "count", "synced_at", "age", "last_error")} for r in remotes],
        "auto_publish": {"enabled": auto, **status(gt_dir)} if auto else {"enabled": False}}
    lines = ["Federation:"]
    for r in remotes:
        err = f"  last error: {clean(str(r['last_error']))}" if r.get("last_error") else ""
        lines.append(f"  remote {r['name']}: {r['count']} records, synced {r['age']}{err}")
    ap = data["auto_publish"]
    if auto:
        lines.append("  auto publish: " + (f"FAILING: {clean(str(ap['last_error']))}"
                                           if ap.get("last_error") else
                                           f"last published {ap.get('last_ok_at') or 'not yet'}"))
    return data, "\n".join(lines)


def _publish(ctx: Ctx) -> int:
    from ..federation.publish import publish

    if ctx.args.auto:  # the detached publisher started after a write (federation.autopub)
        from ..federation.autopub import record_failure, run_worker

        try:
            town = get_town(ctx)
        except GastownError as exc:  # kept where gt identity/status look, not lost
            gt_dir = os.path.join(os.path.abspath(ctx.args.town or os.environ.get("GT_TOWN")
                                                  or "."), ".gt")
            if not os.path.isdir(gt_dir):
                raise
            ctx.out(record_failure(gt_dir, exc))
            return 0

        def once() -> dict[str, Any]:
            led = town.ledger(ctx.actor)
            try:
                return publish(town.root, town.gt_dir, town.config, led)
            finally:
                led.close()

        ctx.out(run_worker(town.gt_dir, once))
        return 0
    town = get_town(ctx)
    res = publish(town.root, town.gt_dir, town.config, town_ledger(ctx), to=ctx.args.to)
    where = ", ".join(res["targets"]) or "nowhere yet (set [federation] publish_to or --to)"
    ctx.out(res, f"Published {res['records']} new record(s); the log of {res['town']} has "
                 f"{res['total']}; written to {where}")
    return 0


def _cache(ctx: Ctx) -> str:
    from ..federation.publish import fed_dir

    return os.path.join(fed_dir(get_town(ctx).gt_dir), "fetch.git")


def _remote_add(ctx: Ctx) -> int:
    from ..federation.remotes import add

    a = ctx.args
    url = a.url or _default_url(ctx, a.uri)
    rec = add(town_ledger(ctx), a.name, a.uri, url)
    if a.accept_delegations:
        from ..federation.delegation import set_auto_accept

        set_auto_accept(town_ledger(ctx), a.name)
        rec["accept_delegations"] = True
    ctx.out(rec, f"Added remote {a.name} = {rec['uri']} from {clean(url)} "
                 f"(next: gt remote sync {a.name})")
    return 0


def _default_url(ctx: Ctx, uri: str) -> str:
    """Where a remote added without ``--url`` is read: ``[federation] remote_url``."""
    from ..federation.identity import load_identity
    from ..federation.uris import parse

    town = parse(uri, what="remote address")
    ident = load_identity(get_town(ctx).config)
    if not ident.remote_url:
        raise UsageError("gt remote add: give --url PATH|GIT-URL, or set [federation] "
                         "remote_url (e.g. \"git@host:{entity}/{chain}.git\") in town.toml")
    return ident.remote_url_for(town.entity, town.chain)


def _remote_list(ctx: Ctx) -> int:
    from ..federation.remotes import list_remotes

    items = list_remotes(town_ledger(ctx))

    def line(r: dict[str, Any]) -> str:
        err = f"  last error: {clean(r['last_error'])}" if r.get("last_error") else ""
        return (f"{r['name']:<14} {r['uri']:<40} {r['count']:>7} records  "
                f"synced {r['age']}  {clean(r['url'])}{err}")

    ctx.out(items, "\n".join(line(r) for r in items) if items else "No remotes")
    return 0


def _remote_remove(ctx: Ctx) -> int:
    from ..federation.remotes import remove

    n = remove(town_ledger(ctx), ctx.args.name)
    ctx.out({"removed": ctx.args.name, "mirrored": n},
            f"Removed remote {ctx.args.name} ({n} mirrored record(s) forgotten)")
    return 0


def _remote_sync(ctx: Ctx) -> int:
    from ..federation.remotes import list_remotes, sync

    led = town_ledger(ctx)
    names = [ctx.args.name] if ctx.args.name else [r["name"] for r in list_remotes(led)]
    results, failed = [], []
    for n in names:  # one remote that fails does not stop the others
        try:
            results.append(sync(led, n, _cache(ctx)))
        except GastownError as exc:
            failed.append(exc)
    if results or not failed:
        ctx.out(results, "\n".join(f"Synced {r['remote']}: {r['new']} new record(s), "
                                   f"{r['applied']} applied, {r['count']} in all"
                                   for r in results) or "No remotes")
    _after_sync_delegations(ctx, results)
    if failed:
        first = failed[0]
        if len(failed) > 1:
            first.args = (f"{first} (and {len(failed) - 1} more remote(s) failed)",)
        raise first
    return 0


def _after_sync_delegations(ctx: Ctx, results: list[dict[str, Any]]) -> None:
    """Delegations after a sync: auto-accept, then complete what is done (stderr notes)."""
    import sys

    from ..federation.delegation import after_sync

    if not results:
        return
    town = get_town(ctx)
    res = after_sync(town_ledger(ctx), town.gt_dir, town.config)
    for d in res["accepted"]:
        print(f"Accepted delegation {d['id']} as {d['bead']}", file=sys.stderr)
    for d in res["completed"]:
        print(f"Delegated parts done: {d['id']} ({d['action']})", file=sys.stderr)


def _bd_cache(ctx: Ctx) -> str:
    """A fetch cache for ``bd``: the town's, else one beside the ledger's folder."""
    from ..federation.publish import fed_dir

    path = getattr(ctx.ledger.store, "path", None)
    base = os.path.dirname(os.path.abspath(path)) if isinstance(path, str) else os.getcwd()
    return os.path.join(fed_dir(os.path.join(os.path.dirname(base), ".gt")), "fetch.git")


def bd_show_remote(ctx: Ctx) -> int:
    """``bd show gt://…``: beads of other towns from the last sync (``--refresh``: sync first)."""
    from ..federation.local import is_here
    from ..federation.remotes import remote_bead, remote_for, sync
    from ..federation.uris import is_uri, parse

    led = ctx.ledger
    out: list[dict[str, Any]] = []
    for given in ctx.args.ids:
        if not is_uri(given) or is_here(led, given):  # this town's own address: here
            out.append(dict(led.show(ctx.resolve(given))))
            continue
        uri = parse(given, what="bead address")
        if uri.issue is None:
            raise ValidationError(f"{given}: a town, not a bead (gt://ENTITY/CHAIN/RIG/ID)")
        if getattr(ctx.args, "refresh", False):
            sync(led, remote_for(led, uri)["name"], _bd_cache(ctx))
        remote, entry = remote_bead(led, uri)
        body = entry["body"]
        out.append({**body["bead"], "uri": body.get("uri"), "remote": remote["name"],
                    "synced_at": remote["synced_at"], "age": remote["age"],
                    "record_seq": entry["seq"]})

    def text() -> str:
        from .bd_beads import _show_text

        parts = []
        for b in out:
            head = (f"{b['uri']}  (remote {b['remote']}, as of sync {b['age']})\n"
                    if b.get("remote") else "")
            parts.append(head + _show_text(b))
        return "\n\n".join(parts)

    ctx.out(out, text)
    return 0


def bd_list_remote(ctx: Ctx, make_filter: Any, list_text: Any) -> int:
    """``bd list --remote=NAME [filters]``: a remote's beads as of its last sync."""
    from ..federation.remotes import get_remote, remote_beads

    a = ctx.args
    if a.parent or a.mol:
        raise UsageError("--remote takes no --parent/--mol (they name local beads)")
    f = make_filter(ctx)
    remote = get_remote(ctx.ledger, a.remote)
    include_closed = bool(a.all) or bool(f.status)
    text_q = (f.text or "").lower()

    def keep(b: dict[str, Any]) -> bool:
        labels = set(b.get("labels") or ())
        return ((include_closed or b.get("status") != "closed")
                and (not f.status or b.get("status") in f.status)
                and (not f.issue_type or b.get("issue_type") in f.issue_type)
                and (not f.assignee or b.get("assignee") == f.assignee)
                and (not f.unassigned or not b.get("assignee"))
                and set(f.labels_all) <= labels
                and (not f.labels_any or bool(labels & set(f.labels_any)))
                and (f.priority_min is None or int(b.get("priority", 2)) >= f.priority_min)
                and (f.priority_max is None or int(b.get("priority", 2)) <= f.priority_max)
                and (not text_q or text_q in str(b.get("title", "")).lower()))

    beads = sorted((b for b in remote_beads(ctx.ledger, a.remote) if keep(b)),
                   key=lambda b: (int(b.get("priority", 2)), str(b.get("created_at", "")),
                                  str(b.get("id"))))
    total = len(beads)
    if a.limit:
        beads = beads[:a.limit]
    ctx.out(beads, lambda: f"Remote {a.remote} ({remote['uri']}), as of sync {remote['age']}:"
                           f"\n{list_text(beads, total)}")
    return 0


def setup(name: str, sub: Any) -> None:
    """Add the ``identity``, ``publish`` and ``remote`` parsers."""
    from .gt import COMMANDS

    p = add_parser(sub, name, COMMANDS[name][1])
    if name == "identity":
        p.set_defaults(func=_identity)
    elif name == "publish":
        p.add_argument("--to", action="append", metavar="PATH|GIT-URL",
                       help="also write the log here (a directory or a git repository)")
        p.add_argument("--auto", action="store_true",
                       help="publish while changes are pending, recording failures "
                            "(what auto_publish starts after a write)")
        p.set_defaults(func=_publish)
    else:
        actions = add_actions(p)
        q = add_action(actions, "add", "add a town to read: NAME gt://ENTITY/CHAIN --url")
        q.add_argument("name")
        q.add_argument("uri", metavar="gt://ENTITY/CHAIN")
        q.add_argument("--url", metavar="PATH|GIT-URL",
                       help="where that town publishes its log (default: [federation] "
                            "remote_url with {entity} and {chain} filled in)")
        q.add_argument("--accept-delegations", action="store_true",
                       help="accept this town's delegations on sync")
        q.set_defaults(func=_remote_add)
        q = add_action(actions, "list", "remotes, what is known of each and its age")
        q.set_defaults(func=_remote_list)
        q = add_action(actions, "remove", "forget a remote and its mirrored beads")
        q.add_argument("name")
        q.set_defaults(func=_remote_remove)
        q = add_action(actions, "sync", "fetch, verify and apply remotes' logs (all, or NAME)")
        q.add_argument("name", nargs="?")
        q.set_defaults(func=_remote_sync)
        p.set_defaults(func=_remote_list)
