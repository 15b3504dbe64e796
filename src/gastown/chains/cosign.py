"""Cosigning another town's checkpoints: this town as a cosigner of its log.

A cosigner signs a peer's checkpoint only after checking it: the peer's signature
(against the peer's public key the cosigner pins), and -- when it has cosigned
that log before -- a consistency proof from the head it saw last to the new one.
So a cosigner never cosigns two heads that fork: a town that rewrote its history
cannot show the same cosigned checkpoint to everyone (C2SP-style witnessing, in
JSON).  The cosigner remembers the last head it cosigned per log in the ledger's
key/value store (``chains.cosigner.<log>``).

A cosignature::

    {"v": 1, "cosigner": "entity://gt/<cosigner org>/@town", "log": "...",
     "size": N, "root": "<hex>", "checkpoint": "<sha256 of the checkpoint's canonical
     bytes>", "at": "...", "public_key": "<cosigner key>", "sig": "<over the rest>"}
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..errors import ValidationError
from ..federation.log import canonical
from .log import _now, check_checkpoint, check_proof, keyring

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..ledger.core import Ledger

__all__ = ["cosign", "check_cosignature", "KV_PREFIX"]

KV_PREFIX = "chains.cosigner."


def cosign(ledger: Ledger, checkpoint: Any, peer_key: str,
           proof: Any = None) -> dict[str, Any]:
    """Check ``checkpoint`` (a peer town's, signed by ``peer_key``) and cosign it with
    this town's key; ``proof`` is the consistency proof from the last head cosigned."""
    from ..federation.keys import public_b64, sign

    cp = check_checkpoint(checkpoint, peer_key)
    log, size, root = str(cp.get("log")), int(cp["size"]), str(cp["root"])
    seen = ledger.kv_get(KV_PREFIX + log)
    if seen:
        last = json.loads(seen)
        old, old_root = int(last["size"]), str(last["root"])
        if size < old or (size == old and root != old_root):
            raise ValidationError(f"{log}: checkpoint of size {size} does not extend the head "
                                  f"this town cosigned (size {old}): refused (a fork?)")
        if size > old:
            if not isinstance(proof, dict) or proof.get("kind") != "consistency" or \
                    proof.get("old") != {"size": old, "root": old_root} or \
                    proof.get("new") != {"size": size, "root": root}:
                raise ValidationError(f"{log}: give the consistency proof from size {old} to "
                                      f"{size} (the peer's 'gt chain consistency {old} {size}')")
            check_proof({k: v for k, v in proof.items() if k != "checkpoint"})
    keys = keyring(ledger)
    key, signer, _ = keys.signer_for(keys.town, True)
    body: dict[str, Any] = {
        "v": 1, "cosigner": signer, "log": log, "size": size, "root": root,
        "checkpoint": hashlib.sha256(canonical(cp)).hexdigest(), "at": _now(),
        "public_key": public_b64(key)}
    body["sig"] = sign(key, canonical(body))
    ledger.kv_set(KV_PREFIX + log, json.dumps({"size": size, "root": root}))
    return body


def check_cosignature(checkpoint: dict[str, Any], cosig: Any,
                      cosigner_key: str | None = None) -> str:
    """Does ``cosig`` cosign ``checkpoint``?  The cosigner's entity, or one clear line."""
    from ..federation.keys import verify

    if not isinstance(cosig, dict) or not isinstance(cosig.get("sig"), str):
        raise ValidationError("cosignature: expected {cosigner, size, root, sig, …}")
    key = cosigner_key or cosig.get("public_key")
    if not isinstance(key, str) or (cosigner_key and cosig.get("public_key") != cosigner_key):
        raise ValidationError("cosignature: not by the pinned cosigner key")
    if cosig.get("checkpoint") != hashlib.sha256(canonical(checkpoint)).hexdigest() or \
            cosig.get("size") != checkpoint.get("size") or \
            cosig.get("root") != checkpoint.get("root"):
        raise ValidationError(f"cosignature by {cosig.get('cosigner')}: for another checkpoint")
    body = {k: v for k, v in cosig.items() if k != "sig"}
    if not verify(key, canonical(body), cosig["sig"]):
        raise ValidationError(f"cosignature by {cosig.get('cosigner')}: bad signature")
    return str(cosig.get("cosigner"))
