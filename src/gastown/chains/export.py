"""A portable CV: one entity's chain, the judgements about it, proofs and keys, in a file.

::

    {"format": "gastown-cv/1", "entity": "entity://gt/acme/backend/polecat/toast",
     "town": {"entity": "entity://gt/acme/@town", "uri": "gt://…", "public_key": "…"},
     "public_keys": {entity: base64, …},       # every signer below
     "checkpoint": {signed checkpoint},        # the town log's head
     "records": [{"index": N, "record": {…}, "path": [hex, …]}, …]}

``records`` holds the entity's whole chain (seq 1…head) and every record on
another chain whose ``subject`` is the entity; each comes with its inclusion
proof against the signed checkpoint.  :func:`verify_file` needs nothing but the
file (and, to pin the town, its public key from its ``.town.json``).
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..errors import ValidationError
from ..federation.log import canonical
from .log import check_checkpoint, checkpoint, keyring, latest_checkpoint, tree
from .merkle import leaf_hash, verify_inclusion
from .read import indexed
from .verify import ChainError, Signatures, check_chain, check_record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..ledger.core import Ledger

__all__ = ["FORMAT", "export_cv", "write_cv", "verify_cv", "verify_file", "read_file", "MAX_FILE"]

FORMAT = "gastown-cv/1"
#: a CV file larger than this is refused before it is read (bounded memory)
MAX_FILE = 256 * 1024 * 1024


def export_cv(ledger: Ledger, who: str) -> dict[str, Any]:
    """The CV document of ``who`` (an entity or a town actor)."""
    from ..ledger import chainlog

    keys = keyring(ledger)
    with ledger.snapshot() as view:
        town_uri = chainlog.settings(view).get("chains.town", "")
    own = indexed(ledger, entity=who)
    if not own:
        raise ValidationError(f"{who}: no chain records to export")
    entity = str(own[0][1]["entity"])
    judged = indexed(ledger, subject=entity)
    last = max(i for i, _ in own + judged)
    cp = latest_checkpoint(ledger, last + 1) or checkpoint(ledger, keys)
    size = int(cp["size"])
    t = tree(ledger)
    public = keys.public_keys()
    signers = {str(r.get("signer")) for _, r in own + judged}
    items = [{"index": i, "record": r,
              "path": [h.hex() for h in t.inclusion_proof(i, size)]}
             for i, r in sorted(own + judged, key=lambda p: p[0])]
    return {"format": FORMAT, "entity": entity,
            "town": {"entity": keys.town, "uri": town_uri, "public_key": public[keys.town]},
            "public_keys": {s: public[s] for s in sorted(signers) if s in public},
            "checkpoint": cp, "records": items}


def write_cv(doc: dict[str, Any], path: str) -> str:
    """Write a CV document atomically (it holds public data only); its path."""
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1, sort_keys=True, ensure_ascii=False)
        fh.write("\n")
    os.replace(tmp, path)
    return path


def verify_cv(doc: Any, town_key: str | None = None) -> dict[str, Any]:
    """Check a CV document offline; a summary, or :class:`ChainError` naming the first
    bad record.  ``town_key`` pins the issuing town's public key."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ChainError(f"not a CV file (format {FORMAT!r} expected)")
    town, keys, items = doc.get("town"), doc.get("public_keys"), doc.get("records")
    if not isinstance(town, dict) or not isinstance(keys, dict) or not isinstance(items, list):
        raise ChainError("CV: town, public_keys and records are required")
    town_entity, town_pub = town.get("entity"), town.get("public_key")
    if not isinstance(town_entity, str) or not isinstance(town_pub, str):
        raise ChainError("CV: town.entity and town.public_key are required")
    if town_key and town_key != town_pub:
        raise ChainError("CV: issued under another town key than the one pinned")
    cp = check_checkpoint(doc.get("checkpoint"), town_pub)
    if cp.get("log") != town_entity:
        raise ChainError("CV: the checkpoint is of another town's log")
    size, root = int(cp["size"]), bytes.fromhex(str(cp["root"]))
    public = {str(k): str(v) for k, v in keys.items()}
    public[town_entity] = town_pub
    sigs = Signatures(public, town_entity)
    entity = doc.get("entity")
    own: list[tuple[int | None, dict[str, Any]]] = []
    judged = 0
    for n, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("record"), dict) or \
                not isinstance(item.get("index"), int) or not isinstance(item.get("path"), list):
            raise ChainError(f"CV: records[{n}] is not {{index, record, path}}")
        rec, idx = item["record"], item["index"]
        try:
            path = [bytes.fromhex(h) for h in item["path"]]
        except (TypeError, ValueError):
            raise ChainError(f"CV: records[{n}]: its proof is not hex") from None
        if not verify_inclusion(leaf_hash(canonical(rec)), idx, size, path, root):
            raise ChainError(f"{rec.get('entity')} seq {rec.get('seq')} (log #{idx}): not in "
                             f"the town's signed log (altered, or not from this town)")
        if rec.get("entity") == entity:
            own.append((idx, rec))
        elif rec.get("subject") == entity:
            check_record(rec, idx, sigs)
            judged += 1
        else:
            raise ChainError(f"CV: records[{n}] is neither {entity}'s nor about it")
    checked = check_chain(own, sigs, str(entity))
    if not checked:
        raise ChainError(f"CV: no records of {entity}")
    return {"ok": True, "entity": entity, "records": checked, "judgements": judged,
            "log_size": size, "town": town_entity}


def verify_file(path: str, town_key: str | None = None) -> dict[str, Any]:
    """:func:`verify_cv` of a file (size-bounded, one clear line on bad JSON)."""
    return verify_cv(read_file(path), town_key)


def read_file(path: str) -> Any:
    """The JSON document of an exported CV file, unverified (size-bounded; one clear
    line when it cannot be read or is not JSON)."""
    try:
        if os.path.getsize(path) > MAX_FILE:
            raise ChainError(f"{path}: larger than {MAX_FILE // 2**20} MiB; not a CV")
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except OSError as exc:
        raise ValidationError(f"{path}: cannot read it ({exc.strerror})") from None
    except (ValueError, RecursionError) as exc:
        raise ChainError(f"{path}: not JSON ({str(exc)[:200]})") from None
    return doc
