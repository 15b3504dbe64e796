"""``gt publish``: derive new log records from the ledger's events and push the log.

The town's own log is kept in ``.gt/federation/log.jsonl`` (the canonical bytes
of each record, one a line) with ``state.json`` (how far the events were read,
what each published bead looked like).  A bead is published when the policy
allows it: ``"all"``, or a list of ``rig:NAME``/``label:NAME`` (any match).  A
bead that is deleted or stops matching is published as ``bead.withdrawn``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from ..config import TownConfig
from ..errors import NotFoundError, ValidationError
from ..ledger.core import Ledger
from . import keys, transport
from .identity import Identity, load_identity, write_town_json
from .log import canonical, make_record, parse_lines, record_hash
from .uris import format_uri, rig_of

__all__ = ["publish", "policy_allows", "local_log", "fed_dir", "log_lock", "open_log", "append"]


def fed_dir(gt_dir: str) -> str:
    """``.gt/federation``: the key, the town's own log and the git caches."""
    return os.path.join(gt_dir, "federation")


def now_iso() -> str:
    """Now, UTC, seconds precision."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def policy_allows(policy: list[str] | str, bead: dict[str, Any]) -> bool:
    """Does the publish policy cover ``bead`` (templates and wisps never)?"""
    if bead.get("ephemeral") or bead.get("is_template"):
        return False
    if policy == "all":
        return True
    if policy == "none" or isinstance(policy, str):
        return False
    labels = set(bead.get("labels") or ())
    rig = rig_of(bead)
    return any((p.startswith("rig:") and p[4:] == rig)
               or (p.startswith("label:") and p[6:] in labels) for p in policy)


def local_log(gt_dir: str) -> list[bytes]:
    """The lines (canonical records) of the town's own log."""
    path = os.path.join(fed_dir(gt_dir), transport.LOG_FILE)
    if not os.path.exists(path):
        return []
    with open(path, "rb") as fh:
        return [line for line in fh.read().split(b"\n") if line]


def _state(gt_dir: str) -> dict[str, Any]:
    path = os.path.join(fed_dir(gt_dir), "state.json")
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except ValueError:
        raise ValidationError(f"{path} is not JSON; restore it (or remove the folder "
                              f"{fed_dir(gt_dir)} to start a new log)") from None
    return data if isinstance(data, dict) else {}


def _save_state(gt_dir: str, state: dict[str, Any]) -> None:
    path = os.path.join(fed_dir(gt_dir), "state.json")
    with open(f"{path}.tmp", "w", encoding="utf-8") as fh:
        json.dump(state, fh)
    os.replace(f"{path}.tmp", path)


def _digest(obj: Any) -> str:
    return hashlib.sha256(canonical(obj)).hexdigest()


def _town_records(ident: Identity, state: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    body = {k: v for k, v in ident.as_json().items() if k != "publishes"}
    if _digest(body) != state.get("town_hash"):
        out.append(("town", body))
        state["town_hash"] = _digest(body)
    known = list(state.get("members", []))
    for org in ident.member_of:
        if org not in known:
            out.append(("employment", {"entity": ident.owner, "organization": org}))
    for org in known:
        if org not in ident.member_of:
            out.append(("employment", {"entity": ident.owner, "organization": org,
                                       "ended": True}))
    state["members"] = list(ident.member_of)
    return out


def _bead_records(ledger: Ledger, ident: Identity, state: dict[str, Any]
                  ) -> list[tuple[str, dict[str, Any]]]:
    policy_key = json.dumps(ident.publish)
    if state.get("policy") != policy_key:  # a new policy re-reads every event
        state["policy"], state["event_seq"] = policy_key, 0
    published: dict[str, str] = state.setdefault("published", {})
    touched: dict[str, int] = {}
    for ev in ledger.events(since_seq=int(state.get("event_seq", 0))):
        if ev.get("bead_id"):
            touched[str(ev["bead_id"])] = int(ev["seq"])
        state["event_seq"] = int(ev["seq"])
    out: list[tuple[str, dict[str, Any]]] = []
    for bead_id, seq in touched.items():
        try:
            bead: dict[str, Any] | None = dict(ledger.show(bead_id))
        except NotFoundError:
            bead = None
        if bead is None or not policy_allows(ident.publish, bead):
            if bead_id in published:
                del published[bead_id]
                out.append(("bead.withdrawn", {"id": bead_id}))
            continue
        bead.pop("dependents", None)
        digest = _digest(bead)
        if published.get(bead_id) == digest:
            continue
        published[bead_id] = digest
        rig = rig_of(bead)
        out.append(("bead", {"id": bead_id, "rig": rig, "ledger_seq": seq, "bead": bead,
                             "uri": format_uri(ident.owner, ident.name, rig, bead_id)}))
    return out


@contextmanager
def log_lock(gt_dir: str) -> Iterator[None]:
    """Held while the town's own log is appended to (one writer at a time)."""
    import fcntl

    with open(os.path.join(fed_dir(gt_dir), "publish.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _cut_torn_tail(gt_dir: str) -> None:
    """Drop a last line left without its newline by an append cut short (a crash):
    it was never complete, so never written to any target."""
    path = os.path.join(fed_dir(gt_dir), transport.LOG_FILE)
    try:
        with open(path, "rb+") as fh:
            data = fh.read()
            if data and not data.endswith(b"\n"):
                fh.truncate(data.rfind(b"\n") + 1)
    except FileNotFoundError:
        pass


def open_log(gt_dir: str) -> tuple[dict[str, Any], list[bytes], str]:
    """(state, lines, head hash) of the town's own log; hold :func:`log_lock`.

    Records appended whose ``state.json`` was not saved after them (a crash
    between the two) are adopted: the events behind them are read again, so at
    worst a bead is published twice, which readers apply once (higher ``seq``).
    """
    _cut_torn_tail(gt_dir)
    state = _state(gt_dir)
    lines = local_log(gt_dir)
    if len(lines) > int(state.get("count", len(lines))):
        state["count"] = len(lines)
    if len(lines) != int(state.get("count", len(lines))):
        raise ValidationError(f"{fed_dir(gt_dir)}: log.jsonl has {len(lines)} records but "
                              f"state.json expects {state.get('count')}; restore the folder")
    head = record_hash(parse_lines(lines[-1:], "log.jsonl")[0]) if lines else ""
    return state, lines, head


def append(gt_dir: str, town: str, key: object, state: dict[str, Any], lines: list[bytes],
           head: str, records: list[tuple[str, dict[str, Any]]]) -> tuple[list[bytes], str]:
    """Sign ``records`` after ``lines`` (from :func:`open_log`), append them and save
    ``state`` with the new count; (the new lines, the new head)."""
    new: list[bytes] = []
    at = now_iso()
    for kind, body in records:
        rec = make_record(key, seq=len(lines) + len(new) + 1, prev=head, town=town,
                          kind=kind, at=at, body=body)
        raw = canonical(rec)
        head = hashlib.sha256(raw).hexdigest()
        new.append(raw)
    if new:
        with open(os.path.join(fed_dir(gt_dir), transport.LOG_FILE), "ab") as fh:
            fh.write(b"".join(r + b"\n" for r in new))
    state["count"] = len(lines) + len(new)
    _save_state(gt_dir, state)
    return new, head


def publish(root: str, gt_dir: str, cfg: TownConfig, ledger: Ledger,
            to: list[str] | None = None) -> dict[str, Any]:
    """Append what is pending to the town's log and write it to every target.

    Targets: ``[federation] publish_to`` plus ``to``.  Returns a summary
    (``records`` added, ``total``, ``head``, ``targets``).
    """
    ident = load_identity(cfg, gt_dir)
    key = keys.load_or_create(gt_dir)
    with log_lock(gt_dir):
        return _publish_locked(root, gt_dir, ident, key, ledger, to)


def _publish_locked(root: str, gt_dir: str, ident: Identity, key: object, ledger: Ledger,
                    to: list[str] | None) -> dict[str, Any]:
    write_town_json(root, ident)
    state, lines, head = open_log(gt_dir)
    from .delegation import pending_records

    # bead records first: an accepted delegation's bead is in the log before its answer
    pending = (_town_records(ident, state) + _bead_records(ledger, ident, state)
               + pending_records(ledger, lines))
    town = str(ident.uri)
    new, head = append(gt_dir, town, key, state, lines, head, pending)
    data = b"".join(r + b"\n" for r in lines + new)
    targets = list(dict.fromkeys([*ident.publish_to, *(to or [])]))
    for url in targets:
        transport.write(url, os.path.join(fed_dir(gt_dir), "publish.git"), data,
                        ident.as_json())
    return {"records": len(new), "total": state["count"], "head": head, "town": town,
            "targets": targets}
