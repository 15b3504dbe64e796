"""NIP-01 events: serialise, id, BIP-340 sign and verify, and bounded parsing.

The id of an event is the SHA-256 of the UTF-8 JSON array
``[0, pubkey, created_at, kind, tags, content]`` written with no whitespace and
with only the escapes JSON needs (``json.dumps(..., ensure_ascii=False,
separators=(",", ":"))`` writes exactly that).  The signature is BIP-340 Schnorr
over the 32 id bytes by the x-only ``pubkey``.  :func:`check` recomputes the id
and checks the signature: what a relay or another town claims is never taken
on trust.

Everything parsed here may come from a stranger, so :func:`parse` bounds it
before building anything: at most :data:`MAX_EVENT_BYTES` of JSON (Python's
decoder refuses deep nesting with a RecursionError, turned into one line), at
most :data:`MAX_TAGS` tags of at most :data:`MAX_TAG_ITEMS` strings, content of at
most :data:`MAX_CONTENT` characters, fields of their exact types and forms.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError

__all__ = ["Event", "MAX_EVENT_BYTES", "MAX_TAGS", "MAX_TAG_ITEMS", "MAX_CONTENT",
           "serialize", "compute_id", "sign", "check", "parse", "from_dict", "x_only_public",
           "schnorr_verify", "EventError"]

MAX_EVENT_BYTES = 128 * 1024
MAX_TAGS = 500
MAX_TAG_ITEMS = 16
MAX_TAG_ITEM_CHARS = 1024
MAX_CONTENT = 64 * 1024
#: NIP-01 kinds are 16-bit; created_at must fit a JSON-safe integer
MAX_KIND = 65535
MAX_TIME = 2**53 - 1
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")


class EventError(ValidationError):
    """An event that is malformed, forged or not allowed (one line says which and why)."""


def _coincurve() -> Any:
    try:
        import coincurve
    except ImportError as exc:  # pragma: no cover - the extra is part of `test`
        raise ValidationError("the mesh needs the 'coincurve' package: "
                              "pip install 'gastown[mesh]'") from exc
    return coincurve


@dataclass(frozen=True)
class Event:
    """A signed Nostr event (fields as NIP-01 names them)."""

    id: str
    pubkey: str
    created_at: int
    kind: int
    tags: tuple[tuple[str, ...], ...]
    content: str
    sig: str

    def as_dict(self) -> dict[str, Any]:
        """The event as NIP-01's JSON object."""
        return {"id": self.id, "pubkey": self.pubkey, "created_at": self.created_at,
                "kind": self.kind, "tags": [list(t) for t in self.tags],
                "content": self.content, "sig": self.sig}

    def to_json(self) -> str:
        """The event as compact JSON (what relays are sent)."""
        return json.dumps(self.as_dict(), ensure_ascii=False, separators=(",", ":"))

    def tag(self, name: str) -> str | None:
        """The first value of tag ``name`` (None when absent)."""
        for t in self.tags:
            if len(t) >= 2 and t[0] == name:
                return t[1]
        return None

    def tag_values(self, name: str) -> list[str]:
        """Every first value of the tags called ``name``, in order."""
        return [t[1] for t in self.tags if len(t) >= 2 and t[0] == name]


def serialize(pubkey: str, created_at: int, kind: int, tags: Any, content: str) -> bytes:
    """NIP-01's canonical bytes of an event (what its id hashes)."""
    try:
        return json.dumps([0, pubkey, created_at, kind, tags, content], ensure_ascii=False,
                          separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (from a \\ud800 escape) has no UTF-8
        raise EventError("event text holds a lone UTF-16 surrogate (not UTF-8)") from None


def compute_id(pubkey: str, created_at: int, kind: int, tags: Any, content: str) -> str:
    """The event id: SHA-256 of :func:`serialize`, lowercase hex."""
    return hashlib.sha256(serialize(pubkey, created_at, kind, tags, content)).hexdigest()


@functools.lru_cache(maxsize=4096)
def _keypair(secret: bytes) -> tuple[Any, str]:
    """(coincurve private key, x-only public hex): building them costs two point
    multiplications, more than a signature, so a town's few keys are kept."""
    cc = _coincurve()
    return cc.PrivateKey(secret), bytes(cc.PublicKeyXOnly.from_secret(secret).format()).hex()


@functools.lru_cache(maxsize=4096)
def _xonly(pubkey: str) -> Any:
    return _coincurve().PublicKeyXOnly(bytes.fromhex(pubkey))


def x_only_public(secret: bytes) -> str:
    """The BIP-340 (x-only) public key of a 32-byte secret, hex."""
    return _keypair(secret)[1]


def sign(secret: bytes, kind: int, content: str, tags: list[list[str]] | None = None,
         created_at: int | None = None) -> Event:
    """A new event by the key ``secret``, id computed and signed (BIP-340, fresh aux)."""
    key, pubkey = _keypair(secret)
    at = int(time.time()) if created_at is None else int(created_at)
    tag_list = [list(map(str, t)) for t in (tags or [])]
    eid = compute_id(pubkey, at, kind, tag_list, content)
    sig = key.sign_schnorr(bytes.fromhex(eid), os.urandom(32)).hex()
    return Event(eid, pubkey, at, kind, tuple(tuple(t) for t in tag_list), content, sig)


def schnorr_verify(pubkey: str, msg: bytes, sig: str) -> bool:
    """Is ``sig`` (hex) a BIP-340 signature of ``msg`` by x-only ``pubkey`` (hex)?"""
    try:
        return bool(_xonly(pubkey).verify(bytes.fromhex(sig), msg))
    except (ValueError, TypeError):  # not a point on the curve, wrong lengths
        return False


def check(ev: Event, *, where: str = "event") -> Event:
    """``ev`` when its id is the hash of its fields and its signature is its key's;
    else :class:`EventError` saying which."""
    want = compute_id(ev.pubkey, ev.created_at, ev.kind, [list(t) for t in ev.tags], ev.content)
    if want != ev.id:
        raise EventError(f"{where}: id {ev.id[:16]}… is not the hash of its fields "
                         f"(recomputed {want[:16]}…; refused)")
    if not schnorr_verify(ev.pubkey, bytes.fromhex(ev.id), ev.sig):
        raise EventError(f"{where}: event {ev.id[:16]}…: the signature is not "
                         f"{ev.pubkey[:16]}…'s (refused)")
    return ev


def _str(value: Any, field: str, where: str, pattern: re.Pattern[str] | None = None) -> str:
    if not isinstance(value, str) or (pattern is not None and not pattern.fullmatch(value)):
        what = "hex of its length" if pattern else "text"
        raise EventError(f"{where}: field {field!r} is not {what}")
    return value


def _int(value: Any, field: str, where: str, top: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
        raise EventError(f"{where}: field {field!r} is not an integer in 0..{top}")
    return value


def from_dict(d: Any, where: str = "event") -> Event:
    """An :class:`Event` from a decoded JSON object, every field checked for type and
    bound (not yet for id or signature: see :func:`check`)."""
    if not isinstance(d, dict):
        raise EventError(f"{where}: not a JSON object")
    missing = sorted({"id", "pubkey", "created_at", "kind", "tags", "content", "sig"} - set(d))
    if missing:
        raise EventError(f"{where}: missing field(s) {', '.join(missing)}")
    tags = d["tags"]
    if not isinstance(tags, list) or len(tags) > MAX_TAGS:
        raise EventError(f"{where}: tags must be a list of at most {MAX_TAGS}")
    out: list[tuple[str, ...]] = []
    for t in tags:
        if (not isinstance(t, list) or not t or len(t) > MAX_TAG_ITEMS
                or not all(isinstance(x, str) and len(x) <= MAX_TAG_ITEM_CHARS for x in t)):
            raise EventError(f"{where}: a tag must be 1..{MAX_TAG_ITEMS} strings of at most "
                             f"{MAX_TAG_ITEM_CHARS} characters")
        out.append(tuple(t))
    content = d["content"]
    if not isinstance(content, str) or len(content) > MAX_CONTENT:
        raise EventError(f"{where}: content must be text of at most {MAX_CONTENT} characters")
    return Event(id=_str(d["id"], "id", where, _HEX64),
                 pubkey=_str(d["pubkey"], "pubkey", where, _HEX64),
                 created_at=_int(d["created_at"], "created_at", where, MAX_TIME),
                 kind=_int(d["kind"], "kind", where, MAX_KIND), tags=tuple(out),
                 content=content, sig=_str(d["sig"], "sig", where, _HEX128))


def loads_bounded(raw: str | bytes, where: str, limit: int = MAX_EVENT_BYTES) -> Any:
    """JSON from an untrusted peer: refused over ``limit`` bytes or nested too deep."""
    if len(raw) > limit:
        raise EventError(f"{where}: message of {len(raw)} bytes is over the {limit}-byte limit")
    try:
        return json.loads(raw)
    except RecursionError:
        raise EventError(f"{where}: JSON nested too deep (refused)") from None
    except ValueError as exc:
        raise EventError(f"{where}: not JSON ({exc.__class__.__name__})") from None


def parse(raw: str | bytes, where: str = "event") -> Event:
    """An event from untrusted JSON text: bounded, typed, id recomputed, signature checked."""
    return check(from_dict(loads_bounded(raw, where), where), where=where)
