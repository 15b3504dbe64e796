"""Verification: every hash, link and signature of every chain, recomputed.

:func:`check_chain` is pure (records as stored text plus public keys) and is
used both for a town's ledger (:func:`verify_ledger`) and for an exported CV
(:mod:`.export`).  The first problem found is named: which entity, which
``seq``, which log position, and what is wrong.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..errors import ValidationError
from ..federation.log import canonical
from ..ledger import chainlog
from .entry import JUDGED, KINDS, VERSION, digest_of, signed_bytes
from .merkle import Tree

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..ledger.core import Ledger

__all__ = ["ChainError", "parse_record", "check_record", "check_chain", "verify_ledger",
           "Signatures"]


class ChainError(ValidationError):
    """A record that fails verification (the message names it)."""


def _name(rec: Any, idx: int | None) -> str:
    where = f"log #{idx}" if idx is not None else "record"
    if isinstance(rec, dict):
        return f"{rec.get('entity')} seq {rec.get('seq')} ({where})"
    return where


def parse_record(text: str, idx: int | None) -> dict[str, Any]:
    """A stored record: JSON whose canonical form is exactly the stored text."""
    try:
        rec = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ChainError(f"{_name(None, idx)}: not JSON ({exc})") from None
    if not isinstance(rec, dict):
        raise ChainError(f"{_name(None, idx)}: not a JSON object")
    if canonical(rec).decode("utf-8") != text:
        raise ChainError(f"{_name(rec, idx)}: its stored bytes are not its canonical form "
                         "(altered)")
    return rec


class Signatures:
    """Checks record signatures against the published public keys (one verifier each)."""

    def __init__(self, public: Mapping[str, str], town: str) -> None:
        self.public = dict(public)
        self.town = town
        self._verifiers: dict[str, Any] = {}

    def ok(self, rec: dict[str, Any]) -> bool:
        """Does the record's ``sig`` hold under its signer's key?"""
        from ..federation.keys import Verifier

        signer = str(rec.get("signer"))
        v = self._verifiers.get(signer)
        if v is None:
            if signer not in self.public:
                raise ChainError(f"{_name(rec, None)}: its signer {signer} has no published "
                                 "key")
            v = self._verifiers[signer] = Verifier(self.public[signer])
        sig = rec.get("sig")
        return isinstance(sig, str) and bool(v.ok(signed_bytes(rec), sig))


def check_record(rec: dict[str, Any], idx: int | None, sigs: Signatures) -> None:
    """One record on its own: shape, signer rule and signature."""
    name = _name(rec, idx)
    if rec.get("v") != VERSION:
        raise ChainError(f"{name}: unknown version {rec.get('v')!r}")
    if rec.get("kind") not in KINDS:
        raise ChainError(f"{name}: unknown kind {rec.get('kind')!r}")
    seq = rec.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise ChainError(f"{name}: seq is not a positive integer")
    entity, signer = rec.get("entity"), rec.get("signer")
    if signer == entity:
        if rec.get("on_behalf") is not False:
            raise ChainError(f"{name}: signed by its own entity but marked on_behalf")
    elif signer == sigs.town:
        if rec.get("on_behalf") is not True:
            raise ChainError(f"{name}: signed by the town without saying on_behalf")
    else:
        raise ChainError(f"{name}: signed by {signer}, neither the entity nor the town")
    if rec.get("kind") in JUDGED and rec.get("subject") == entity:
        raise ChainError(f"{name}: validates its own work")
    if not sigs.ok(rec):
        raise ChainError(f"{name}: bad signature (altered, or signed by another key)")


def check_chain(recs: Iterable[tuple[int | None, dict[str, Any]]], sigs: Signatures,
                entity: str | None = None) -> int:
    """One entity's chain, in order: each record, ``seq`` 1, 2, … and each ``prev``
    the hash of the record before.  Returns how many records were checked."""
    expected_seq, prev = 1, ""
    n = 0
    for idx, rec in recs:
        name = _name(rec, idx)
        if entity is not None and rec.get("entity") != entity:
            raise ChainError(f"{name}: belongs to {rec.get('entity')}, not {entity}")
        if rec.get("seq") != expected_seq:
            raise ChainError(f"{name}: seq {rec.get('seq')} where {expected_seq} was expected "
                             "(a record dropped or reordered)")
        if rec.get("prev") != prev:
            raise ChainError(f"{name}: prev does not match the hash of seq {expected_seq - 1} "
                             "(a record dropped, reordered or altered)")
        check_record(rec, idx, sigs)
        prev = digest_of(rec)
        expected_seq += 1
        n += 1
    return n


def verify_ledger(ledger: Ledger, entity: str | None = None) -> dict[str, Any]:
    """Verify the town's chains (one, or all plus the log and its checkpoints).

    Returns ``{"ok": True, "records", "entities", "checkpoints"}``; the first
    problem raises :class:`ChainError` naming it.
    """
    from .log import check_checkpoint, keyring
    from .read import resolve

    keys = keyring(ledger)
    public = keys.public_keys()
    sigs = Signatures(public, keys.town)
    with ledger.store.read() as tx:
        want = resolve(tx, entity) if entity else None
        rows = chainlog.rows(tx, entity=want)
        heads = {e: (n, h) for e, n, h in chainlog.entities(tx)}
        cps = chainlog.checkpoints(tx) if want is None else []
        leaves = chainlog.leaves(tx) if want is None else []
    chains: dict[str, list[tuple[int | None, dict[str, Any]]]] = {}
    for pos, (idx, text) in enumerate(rows):
        if want is None and idx != pos:
            raise ChainError(f"log #{pos}: missing from the town log (next is #{idx})")
        rec = parse_record(text, idx)
        if want is None and leaves[pos] != _leaf_hex(text):
            raise ChainError(f"{_name(rec, idx)}: its log leaf hash does not match it")
        chains.setdefault(str(rec.get("entity")), []).append((idx, rec))
    total = 0
    for ent in sorted(set(chains) | ({want} if want else set(heads))):
        recs = chains.get(ent, [])
        total += check_chain(recs, sigs, ent)
        n, h = heads.get(ent, (0, ""))
        last = digest_of(recs[-1][1]) if recs else ""
        if (n, h) != (len(recs), last):
            raise ChainError(f"{ent}: its head says {n} records ending {h[:12] or '-'}, the "
                             f"chain holds {len(recs)} ending {last[:12] or '-'} "
                             "(records dropped)")
    if want is None and cps:
        tree = Tree([bytes.fromhex(x) for x in leaves])
        for size, root, body in cps:
            check_checkpoint(json.loads(body), public[keys.town])
            if size > tree.size or tree.root(size).hex() != root:
                raise ChainError(f"checkpoint of size {size}: the log no longer matches its "
                                 "signed root (history rewritten)")
    return {"ok": True, "records": total, "entities": len(chains) if want is None else 1,
            "checkpoints": len(cps)}


def _leaf_hex(text: str) -> str:
    return hashlib.sha256(b"\x00" + text.encode("utf-8")).hexdigest()
