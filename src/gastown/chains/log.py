"""The town log: signed checkpoints, inclusion and consistency proofs (JSON, offline).

A checkpoint (C2SP-like, as JSON)::

    {"v": 1, "log": "entity://gt/<org>/@town", "size": N, "root": "<hex>",
     "at": "<ISO-8601 UTC>", "signer": "entity://gt/<org>/@town",
     "public_key": "<base64 Ed25519>", "sig": "<base64 over the rest, canonical>"}

A proof document carries everything needed to check it with nothing else:
``{"kind": "inclusion", "index", "size", "leaf", "path": [hex…], "record"?,
"checkpoint"}`` or ``{"kind": "consistency", "old": {size, root}, "new": {size,
root}, "path": [hex…], "checkpoint"?}``; :func:`check_proof` checks either.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..errors import ValidationError
from ..federation.log import canonical
from ..ledger import chainlog
from .entity import Keyring
from .merkle import Tree, leaf_hash, verify_consistency, verify_inclusion

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..ledger.core import Ledger

__all__ = ["keyring", "tree", "checkpoint", "latest_checkpoint", "prove", "consistency",
           "check_checkpoint", "check_proof"]


def keyring(ledger: Ledger) -> Keyring:
    """The town's keys, from where the ledger's config says they are."""
    with ledger.store.read() as tx:
        s = chainlog.settings(tx)
    if not s.get("chains.dir") or not s.get("chains.town_key") or not s.get("chains.org"):
        raise ValidationError("this ledger has no entity chains: enable them with "
                              "'gt chain enable'")
    return Keyring(s["chains.dir"], s["chains.town_key"], s["chains.org"])


def tree(ledger: Ledger) -> Tree:
    """The town log's Merkle tree over every stored record."""
    with ledger.store.read() as tx:
        hexes = chainlog.leaves(tx)
    return Tree([bytes.fromhex(h) for h in hexes])


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def checkpoint(ledger: Ledger, keys: Keyring | None = None) -> dict[str, Any]:
    """Sign the log's current head with the town key and store it; the checkpoint."""
    from ..federation.keys import public_b64, sign

    keys = keys or keyring(ledger)
    t = tree(ledger)
    key, signer, _ = keys.signer_for(keys.town, True)
    body: dict[str, Any] = {"v": 1, "log": keys.town, "size": t.size, "root": t.root().hex(),
                            "at": _now(), "signer": signer, "public_key": public_b64(key)}
    body["sig"] = sign(key, canonical(body))
    with ledger.store.write() as tx:
        chainlog.checkpoint_add(tx, t.size, body["root"], canonical(body).decode("utf-8"))
    return body


def latest_checkpoint(ledger: Ledger, at_least: int = 0) -> dict[str, Any] | None:
    """The newest stored checkpoint covering ``at_least`` records, if any."""
    import json

    with ledger.store.read() as tx:
        rows = chainlog.checkpoints(tx)
    for size, _root, body in reversed(rows):
        if size >= at_least:
            return dict(json.loads(body))
    return None


def check_checkpoint(cp: Any, public_key: str | None = None) -> dict[str, Any]:
    """A checkpoint whose signature holds (against ``public_key`` when pinned, else the
    key it carries); one clear line otherwise."""
    from ..federation.keys import verify

    if not isinstance(cp, dict) or not isinstance(cp.get("size"), int) or \
            not isinstance(cp.get("root"), str) or not isinstance(cp.get("sig"), str):
        raise ValidationError("checkpoint: expected {size, root, sig, …}")
    key = public_key or cp.get("public_key")
    if not isinstance(key, str) or not key:
        raise ValidationError("checkpoint: no public key to check its signature with")
    if public_key and cp.get("public_key") not in (None, public_key):
        raise ValidationError("checkpoint: signed by another key than the town's")
    body = {k: v for k, v in cp.items() if k != "sig"}
    if not verify(key, canonical(body), cp["sig"]):
        raise ValidationError(f"checkpoint (size {cp['size']}): bad signature")
    return cp


def prove(ledger: Ledger, index: int, record: dict[str, Any] | None = None) -> dict[str, Any]:
    """An inclusion proof of log record ``index`` against the newest checkpoint that
    covers it (signing a new one when none does)."""
    cp = latest_checkpoint(ledger, index + 1) or checkpoint(ledger)
    t = tree(ledger)
    if not 0 <= index < t.size:
        raise ValidationError(f"log #{index} is not in the log (size {t.size})")
    size = int(cp["size"])
    doc: dict[str, Any] = {"kind": "inclusion", "index": index, "size": size,
                           "leaf": t.levels[0][index].hex(),
                           "path": [h.hex() for h in t.inclusion_proof(index, size)],
                           "root": t.root(size).hex(), "checkpoint": cp}
    if record is not None:
        doc["record"] = record
    return doc


def consistency(ledger: Ledger, old: int, new: int | None = None) -> dict[str, Any]:
    """A consistency proof between the log at ``old`` and ``new`` records (now by default)."""
    t = tree(ledger)
    new = t.size if new is None else new
    try:
        path = t.consistency_proof(old, new)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    doc: dict[str, Any] = {"kind": "consistency",
                           "old": {"size": old, "root": t.root(old).hex()},
                           "new": {"size": new, "root": t.root(new).hex()},
                           "path": [h.hex() for h in path]}
    for size, _root, body in _checkpoints(ledger):
        if size == new:
            doc["checkpoint"] = body
    return doc


def _checkpoints(ledger: Ledger) -> list[tuple[int, str, dict[str, Any]]]:
    import json

    with ledger.store.read() as tx:
        return [(s, r, dict(json.loads(b))) for s, r, b in chainlog.checkpoints(tx)]


def _hexes(doc: dict[str, Any], key: str) -> list[bytes]:
    value = doc.get(key)
    if not isinstance(value, list) or len(value) > 128:
        raise ValidationError(f"proof: {key!r} must be a list of hex hashes")
    try:
        out = [bytes.fromhex(h) for h in value]
    except (TypeError, ValueError):
        raise ValidationError(f"proof: {key!r} holds something that is not hex") from None
    if any(len(h) != 32 for h in out):
        raise ValidationError(f"proof: {key!r} holds a hash that is not 32 bytes")
    return out


def _hex32(value: Any, what: str) -> bytes:
    try:
        out = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        out = b""
    if len(out) != 32:
        raise ValidationError(f"proof: {what} is not a 32-byte hex hash")
    return out


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(f"proof: {what} is not a non-negative integer")
    return value


def check_proof(doc: Any, public_key: str | None = None) -> str:
    """Check a proof document offline; a one-line summary, or :class:`ValidationError`."""
    if not isinstance(doc, dict) or doc.get("kind") not in ("inclusion", "consistency"):
        raise ValidationError("proof: expected a JSON object with kind inclusion or consistency")
    cp = doc.get("checkpoint")
    if cp is not None:
        check_checkpoint(cp, public_key)
    elif public_key:
        raise ValidationError("proof: no signed checkpoint to check against the pinned key")
    if doc["kind"] == "inclusion":
        index, size = _int(doc.get("index"), "index"), _int(doc.get("size"), "size")
        leaf = _hex32(doc.get("leaf"), "leaf")
        if "record" in doc and leaf_hash(canonical(doc["record"])) != leaf:
            raise ValidationError("proof: the record does not hash to the proven leaf")
        root = _hex32(doc.get("root"), "root")
        if cp is not None and (cp.get("size") != size or cp.get("root") != root.hex()):
            raise ValidationError("proof: its root is not the signed checkpoint's")
        if not verify_inclusion(leaf, index, size, _hexes(doc, "path"), root):
            raise ValidationError(f"proof: log #{index} is NOT included in the tree of "
                                  f"{size} records with root {root.hex()[:16]}…")
        return f"ok: log #{index} is included in the tree of {size} records " \
               f"(root {root.hex()[:16]}…{', signed' if cp else ''})"
    old, new = doc.get("old"), doc.get("new")
    if not isinstance(old, dict) or not isinstance(new, dict):
        raise ValidationError("proof: old and new must be {size, root}")
    m, n = _int(old.get("size"), "old.size"), _int(new.get("size"), "new.size")
    r1, r2 = _hex32(old.get("root"), "old.root"), _hex32(new.get("root"), "new.root")
    if cp is not None and (cp.get("size") != n or cp.get("root") != r2.hex()):
        raise ValidationError("proof: the new head is not the signed checkpoint's")
    if not verify_consistency(m, n, r1, r2, _hexes(doc, "path")):
        raise ValidationError(f"proof: the log of {m} records is NOT a prefix of the log "
                              f"of {n}")
    return f"ok: the log of {m} records is a prefix of the log of {n}"
