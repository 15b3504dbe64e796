"""Remotes: other towns' logs this town reads, verified, into a local mirror.

Everything lives in the ledger's key/value store (so ``bd`` reads it without a town):

* ``fed.remote.NAME``      -- ``{"name", "uri", "url", "added_at"}``
* ``fed.sync.NAME``        -- ``{"count", "head", "public_key", "synced_at"}``
* ``fed.bead.NAME.ID``     -- the newest record of bead ID: ``{"seq", "kind", "body", "at"}``
* ``fed.emp.NAME.ENTITY>ORG`` / ``fed.town.NAME`` -- employment and identity records

A sync fetches the whole log, verifies every record (:func:`.log.verify_chain`)
against the key pinned at the first sync, and only then writes the new
records and the new head in one transaction.  :func:`merge` is the apply rule:
a record replaces what is known of its key only when its ``seq`` is higher, so
applying any set of records any number of times, in any order, gives one state.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ..config import NAME_RE
from ..errors import ConflictError, NotFoundError, UsageError, ValidationError
from ..ledger.core import Ledger
from . import transport
from .log import LogError, parse_lines, record_hash, verify_chain
from .uris import BeadURI, format_uri, parse

__all__ = ["add", "remove", "list_remotes", "get_remote", "sync", "merge", "mirror_key",
           "remote_beads", "remote_bead", "remote_for", "age_text"]

_R, _S, _B = "fed.remote.", "fed.sync.", "fed.bead."


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def age_text(iso: str | None, now: datetime | None = None) -> str:
    """``"3m ago"`` for a timestamp (``"never"`` for None)."""
    if not iso:
        return "never"
    try:
        then = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return iso
    s = max(0, int(((now or _now()) - then).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit} ago"
    return f"{s}s ago"


def _load(value: str | None) -> dict[str, Any]:
    data = json.loads(value) if value else {}
    return data if isinstance(data, dict) else {}


def add(ledger: Ledger, name: str, uri: str, url: str) -> dict[str, Any]:
    """Register a remote town ``uri`` (``gt://ENTITY/CHAIN``) read from ``url``."""
    if not NAME_RE.fullmatch(name):
        raise UsageError(f"remote name {name!r}: use letters, digits, '-' and '_'")
    town = parse(uri, what="remote address")
    if town.issue is not None:
        raise UsageError(f"remote address {uri!r}: a town is gt://ENTITY/CHAIN, not a bead")
    if not url:
        raise UsageError("remote needs --url PATH|GIT-URL")
    if ledger.kv_get(_R + name) is not None:
        raise ConflictError(f"remote {name!r} exists; remove it first (gt remote remove {name})")
    rec = {"name": name, "uri": str(town), "url": url, "added_at": _iso(_now())}
    ledger.kv_set(_R + name, json.dumps(rec, sort_keys=True))
    return rec


def get_remote(ledger: Ledger, name: str) -> dict[str, Any]:
    """A remote with its sync state (``synced_at``, ``count``, ``age``)."""
    rec = _load(ledger.kv_get(_R + name))
    if not rec:
        raise NotFoundError(f"no remote {name!r} (gt remote list)")
    st = _load(ledger.kv_get(_S + name))
    bodies = [json.loads(v)["body"] for _k, v in ledger.kv_scan(f"fed.emp.{name}.")]
    members = sorted(b["organization"] for b in bodies if not b.get("ended"))
    return {**rec, "count": int(st.get("count", 0)), "synced_at": st.get("synced_at"),
            "age": age_text(st.get("synced_at")), "public_key": st.get("public_key"),
            "last_error": st.get("last_error"), "member_of": members}


def list_remotes(ledger: Ledger) -> list[dict[str, Any]]:
    """Every remote, by name."""
    return [get_remote(ledger, k[len(_R):]) for k, _ in ledger.kv_scan(_R)]


def remove(ledger: Ledger, name: str) -> int:
    """Forget a remote, its sync state and its mirror; how many mirrored records went."""
    get_remote(ledger, name)
    n = ledger.kv_clear_prefix(f"{_B}{name}.")
    ledger.kv_clear_prefix(f"fed.emp.{name}.")
    for key in (_S + name, f"fed.town.{name}", _R + name):
        ledger.kv_clear(key)
    return n


#: the fields of a bead snapshot that readers use directly, and their kinds
_SNAPSHOT_FIELDS: dict[str, type] = {"id": str, "title": str, "status": str, "priority": int,
                                     "issue_type": str}


def _snapshot_ok(bead_id: str, snap: Any) -> bool:
    """Is ``snap`` a bead snapshot a reader can list and show (its fields of their kinds)?"""
    if not isinstance(snap, dict) or snap.get("id") != bead_id:
        return False
    if not all(isinstance(snap.get(k), t) and not isinstance(snap.get(k), bool)
               for k, t in _SNAPSHOT_FIELDS.items()):
        return False
    labels = snap.get("labels") or []
    return isinstance(labels, list) and all(isinstance(x, str) for x in labels)


def mirror_key(rec: dict[str, Any]) -> str | None:
    """The mirror slot a record updates (None: a kind this version keeps unapplied, or a
    body of the wrong shape: a bead id that is not text, a snapshot without its listed
    fields of their kinds, an employment whose entity or organization is not text)."""
    kind, body = rec.get("kind"), rec.get("body") or {}
    if kind in ("bead", "bead.withdrawn"):
        bead_id = body.get("id")
        if not isinstance(bead_id, str) or not bead_id or (
                kind == "bead" and not _snapshot_ok(bead_id, body.get("bead"))):
            return None
        return f"bead.{bead_id}"
    if kind == "employment":
        entity, org = body.get("entity"), body.get("organization")
        if not (isinstance(entity, str) and isinstance(org, str)):
            return None
        return f"emp.{entity}>{org}"
    if kind == "town":
        return "town"
    return None


#: bidirectional overrides and isolates (text that reads differently than it is)
_BIDI = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))


def inert(value: Any) -> Any:
    """Another town's data with terminal controls taken out of every string in it.

    Remote titles, descriptions and comments reach ``bd show``, ``bd list --remote``,
    ``bd audit`` and the dashboard; an ESC, a C1 control or a bidi override in them
    must not act on a terminal.  Line breaks and tabs stay (multi-line text).
    """
    if isinstance(value, str):
        if value.isprintable():
            return value
        return "".join(ch for ch in value if ch in "\n\t" or not (
            unicodedata.category(ch) == "Cc" or ch in _BIDI))
    if isinstance(value, list):
        return [inert(v) for v in value]
    if isinstance(value, dict):
        return {inert(k): inert(v) for k, v in value.items()}
    return value


def merge(state: dict[str, dict[str, Any]], records: Iterable[dict[str, Any]]
          ) -> dict[str, dict[str, Any]]:
    """Apply records to ``state`` (slot -> entry); the entries that changed.

    A record wins its slot only with a higher ``seq`` than the entry there, so the
    result does not depend on order or repetition.
    """
    changed: dict[str, dict[str, Any]] = {}
    for rec in records:
        slot = mirror_key(rec)
        if slot is None:
            continue
        old = state.get(slot)
        if old is not None and int(old["seq"]) >= int(rec["seq"]):
            continue
        # verified as signed; stored defanged (what readers print comes from here)
        entry = {"seq": rec["seq"], "kind": rec["kind"], "body": inert(rec["body"]),
                 "at": rec["at"]}
        state[slot] = changed[slot] = entry
    return changed


def _slot_kv(name: str, slot: str) -> str:
    kind, _, rest = slot.partition(".")
    if kind == "bead":
        return f"{_B}{name}.{rest}"
    if kind == "emp":
        return f"fed.emp.{name}.{rest}"
    return f"fed.town.{name}"


def _mirror_state(ledger: Ledger, name: str) -> dict[str, dict[str, Any]]:
    state: dict[str, dict[str, Any]] = {}
    for k, v in ledger.kv_scan(f"{_B}{name}."):
        state[f"bead.{k[len(_B) + len(name) + 1:]}"] = json.loads(v)
    for k, v in ledger.kv_scan(f"fed.emp.{name}."):
        state[f"emp.{k[len(name) + 9:]}"] = json.loads(v)
    town = ledger.kv_get(f"fed.town.{name}")
    if town:
        state["town"] = json.loads(town)
    return state


def _delegation_items(name: str, records: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Delegation records (kept unapplied by :func:`merge`) for the mirror of ``name``."""
    from .delegation import mirror_items

    return mirror_items(name, records)


def sync(ledger: Ledger, name: str, cache_dir: str) -> dict[str, Any]:
    """Fetch, verify and apply a remote's log; a summary (``new``, ``applied``, ``count``).

    A failure (unreachable, forged, altered, dropped, reordered, replayed records,
    a changed key) raises with one line naming the remote and the record, and
    changes nothing.
    """
    remote = get_remote(ledger, name)
    if transport.is_relay(remote["url"]):
        return transport.relay_sync(ledger, name, remote)
    st = _load(ledger.kv_get(_S + name))
    known = f"{st.get('count', 0)} records known, last synced {age_text(st.get('synced_at'))}"
    try:
        town_doc, data = transport.read(remote["url"], cache_dir, name)
    except transport.TransportError as exc:
        ledger.kv_set(_S + name, json.dumps({**st, "last_error": str(exc),
                                             "failed_at": _iso(_now())}, sort_keys=True))
        raise transport.TransportError(f"remote {name}: {exc} ({known})") from None
    except ValidationError as exc:
        raise ValidationError(f"remote {name}: {exc} ({known})") from None
    want = parse(remote["uri"])
    got = (town_doc.get("owner"), town_doc.get("name"))
    if got != (want.entity, want.chain):
        raise ValidationError(f"remote {name}: {remote['url']} publishes "
                              f"{format_uri(str(got[0]), str(got[1]))}, not {remote['uri']}")
    key = str(town_doc.get("public_key") or "")
    if st.get("public_key") and key != st["public_key"]:
        raise LogError(f"remote {name}: its public key changed since the first sync "
                       "(refused; remove and re-add the remote if the change is genuine)")
    try:
        records = parse_lines(data.split(b"\n"), f"remote {name}")
        new = list(verify_chain(records, key, remote["uri"], known_count=int(st.get("count", 0)),
                                known_head=str(st.get("head", "")), source=f"remote {name}"))
    except ValidationError as exc:
        raise LogError(str(exc)) from None
    changed = merge(_mirror_state(ledger, name), new) if new else {}
    head = record_hash(records[-1]) if records else ""
    sync_state = {"count": len(records), "head": head, "public_key": key,
                  "synced_at": _iso(_now())}
    items = [(_slot_kv(name, slot), json.dumps(e, sort_keys=True)) for slot, e in changed.items()]
    items.extend(_delegation_items(name, new))
    items.append((_S + name, json.dumps(sync_state, sort_keys=True)))
    ledger.kv_set_many(items, "federation.synced",
                       {"remote": name, "new": len(new), "applied": len(changed),
                        "count": len(records)},
                       remote_closed=_remote_dep_states(remote["uri"], changed))
    return {"remote": name, "new": len(new), "applied": len(changed), "count": len(records),
            "head": head}


def _remote_dep_states(town_uri: str, changed: dict[str, dict[str, Any]]) -> dict[str, bool]:
    """Cross-town dependencies: the closed state of each changed remote bead, which the
    sync's transaction hands to the ready rule (see :mod:`.deps`)."""
    from .deps import closed_states

    return closed_states(town_uri, changed)


def remote_for(ledger: Ledger, uri: BeadURI) -> dict[str, Any]:
    """The remote whose town is ``uri``'s (entity and chain)."""
    for key, value in ledger.kv_scan(_R):
        town = parse(_load(value).get("uri", ""))
        if (town.entity, town.chain) == (uri.entity, uri.chain):
            return get_remote(ledger, key[len(_R):])
    raise NotFoundError(f"no remote for {format_uri(uri.entity, uri.chain)} "
                        "(add one: gt remote add NAME gt://ENTITY/CHAIN --url …)")


def remote_bead(ledger: Ledger, uri: BeadURI) -> tuple[dict[str, Any], dict[str, Any]]:
    """(remote, mirror entry) of a remote bead as of the last sync."""
    r = remote_for(ledger, uri)
    entry = _load(ledger.kv_get(f"{_B}{r['name']}.{uri.issue}"))
    if not entry or entry.get("kind") != "bead":
        why = "withdrawn" if entry else "not known"
        raise NotFoundError(f"{uri}: {why} as of the last sync of remote {r['name']} "
                            f"({r['age']}; gt remote sync {r['name']})")
    return r, entry


def remote_beads(ledger: Ledger, name: str) -> list[dict[str, Any]]:
    """The beads of a remote as of its last sync (each with ``uri``)."""
    get_remote(ledger, name)
    out = []
    for _k, v in ledger.kv_scan(f"{_B}{name}."):
        e = json.loads(v)
        if e.get("kind") == "bead":
            out.append({**e["body"]["bead"], "uri": e["body"].get("uri")})
    return out
