"""Entities and their keys.

An entity is addressed ``entity://<platform>/<org>/<id>``.  In a town:

* platform ``gt``; org the town's public name (``[town] public_name``, else its name);
* a town actor ``RIG/ROLE/NAME`` (an agent) or ``NAME`` (a person, e.g. ``alice``)
  is the id as it stands: ``entity://gt/acme/backend/polecat/toast``;
* the town itself -- its owner, who signs checkpoints and on behalf of
  short-lived workers -- is ``entity://gt/<org>/@town`` (``@`` starts no actor).

Characters outside ``A-Z a-z 0-9 / @ . _ + - ~`` are percent-encoded.

Keys are Ed25519 (the federation's helpers, :mod:`gastown.federation.keys`).  The
town's key is the federation signing key (``.gt/federation/signing-key.pem``);
each person's and named agent's key is ``.gt/chains/keys/<quoted id>.pem`` (files
0600 in 0700 folders).  ``.gt/chains/public.json`` lists every public key (not
secret; published in ``.town.json`` as ``entity_keys``).  An entity without a
key of its own -- a pool worker that lives for one job -- has its records signed
by the town's key, and the record says so (``signer`` the town, ``on_behalf``
true).
"""

from __future__ import annotations

import base64
import json
import os

from ..errors import ValidationError

__all__ = ["PLATFORM", "TOWN_ID", "entity_of", "town_entity", "actor_of", "org_of",
           "Keyring", "key_path", "PUBLIC_FILE"]

#: the DER prefix of an Ed25519 private key in PKCS#8 (RFC 8410): 32 seed bytes follow
_PKCS8_ED25519 = bytes.fromhex("302e020100300506032b657004220420")

PLATFORM = "gt"
TOWN_ID = "@town"
PUBLIC_FILE = "public.json"
_SAFE = "/@._+-~"
_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def quote(text: str, safe: str = "") -> str:
    """Percent-encode UTF-8 bytes outside letters, digits and ``safe`` (as
    ``urllib.parse.quote``; written here so an agent's ``bd close`` does not import
    ``urllib``)."""
    keep = _PLAIN | set(safe)
    if all(c in keep for c in text):
        return text
    return "".join(c if c in keep else "".join(f"%{b:02X}" for b in c.encode("utf-8"))
                   for c in text)


def unquote(text: str) -> str:
    """Undo :func:`quote`."""
    if "%" not in text:
        return text
    from urllib.parse import unquote as _unquote

    return _unquote(text)


def entity_of(actor: str, org: str) -> str:
    """The entity of town actor ``actor`` (``RIG/ROLE/NAME`` or a person's name)."""
    if actor.startswith("entity://"):
        return actor
    actor = actor.strip().strip("/")
    if not actor:
        raise ValidationError("an entity needs a non-empty actor name")
    return f"entity://{PLATFORM}/{quote(org, safe='')}/{quote(actor, safe=_SAFE)}"


def town_entity(org: str) -> str:
    """The town's own entity (its owner): ``entity://gt/<org>/@town``."""
    return f"entity://{PLATFORM}/{quote(org, safe='')}/{TOWN_ID}"


def _parts(entity: str) -> tuple[str, str, str]:
    if not entity.startswith("entity://"):
        raise ValidationError(f"{entity!r} is not an entity (entity://PLATFORM/ORG/ID)")
    platform, _, rest = entity[len("entity://"):].partition("/")
    org, _, ident = rest.partition("/")
    if not platform or not org or not ident:
        raise ValidationError(f"{entity!r} is not an entity (entity://PLATFORM/ORG/ID)")
    return platform, unquote(org), unquote(ident)


def actor_of(entity: str) -> str:
    """The town actor an entity stands for (its id)."""
    return _parts(entity)[2]


def org_of(entity: str) -> str:
    """The organisation part of an entity (a town's public name)."""
    return _parts(entity)[1]


def key_path(chains_dir: str, entity: str) -> str:
    """Where an entity's private key lives under the town's ``.gt/chains/``."""
    return os.path.join(chains_dir, "keys", quote(actor_of(entity), safe="") + ".pem")


class Keyring:
    """The keys a process signs with: the town's, and those of entities that have one.

    Loaded keys are kept for the life of the process (a controller signs many).
    """

    def __init__(self, chains_dir: str, town_key: str, org: str) -> None:
        self.dir = chains_dir
        self.town_key_path = town_key
        self.org = org
        self.town = town_entity(org)
        self._keys: dict[str, object] = {}
        self._own: dict[str, str] = {}

    def _load(self, path: str) -> object:
        key = self._keys.get(path)
        if key is None:
            key = self._keys[path] = _load_fast(path)
        return key

    def has_key(self, entity: str) -> bool:
        """Does ``entity`` have a key of its own?"""
        return entity == self.town or os.path.exists(key_path(self.dir, entity))

    def signer_for(self, entity: str, by_itself: bool) -> tuple[object, str, bool]:
        """``(private key, signer entity, on_behalf)`` for a record on ``entity``'s chain.

        The entity signs its own record when it has a key and is the one acting
        (``by_itself``); anything else is signed by the town, on its behalf.
        """
        if entity == self.town:
            return self._load(self.town_key_path), self.town, False
        if by_itself:
            path = self._own.get(entity)
            if path is None and os.path.exists(key_path(self.dir, entity)):
                # remembered once found (a key is never taken away while a process runs)
                path = self._own[entity] = key_path(self.dir, entity)
            if path is not None:
                return self._load(path), entity, False
        return self._load(self.town_key_path), self.town, True

    def create(self, entity: str) -> str:
        """Give ``entity`` a key (kept if it has one) and publish it; its public key."""
        from ..federation.keys import public_b64

        os.makedirs(os.path.join(self.dir, "keys"), mode=0o700, exist_ok=True)
        os.chmod(self.dir, 0o700)
        path = self.town_key_path if entity == self.town else key_path(self.dir, entity)
        public = public_b64(self._load(path))
        pubs = self.public_keys()
        if pubs.get(entity) != public:
            pubs[entity] = public
            target = os.path.join(self.dir, PUBLIC_FILE)
            tmp = f"{target}.tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(pubs, fh, indent=2, sort_keys=True)
                fh.write("\n")
            os.replace(tmp, target)
        return public

    def public_keys(self) -> dict[str, str]:
        """Every published public key, the town's included: ``{entity: base64 key}``."""
        from ..federation.keys import public_b64

        out = read_public(self.dir)
        out[self.town] = public_b64(self._load(self.town_key_path))
        return out


def _load_fast(path: str) -> object:
    """The private key at ``path``.  An Ed25519 PKCS#8 PEM -- what the federation's
    helper writes -- is read directly, which spares a ``bd close`` the import of
    ``cryptography``'s serialization package (~tens of ms); anything else, or a
    missing file, goes through :func:`gastown.federation.keys.load_or_create_at`."""
    try:
        with open(path, "rb") as fh:
            lines = fh.read().split()
        der = base64.b64decode(b"".join(ln for ln in lines if not ln.startswith(b"-----")))
    except (OSError, ValueError):
        der = b""
    if len(der) == 48 and der.startswith(_PKCS8_ED25519):
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return Ed25519PrivateKey.from_private_bytes(der[16:])
    from ..federation.keys import load_or_create_at

    return load_or_create_at(path)


def read_public(chains_dir: str) -> dict[str, str]:
    """``.gt/chains/public.json`` (``{}`` when absent); a damaged file is one clear line."""
    path = os.path.join(chains_dir, PUBLIC_FILE)
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ValidationError(f"{path}: not a JSON object of public keys ({exc})") from None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             for k, v in data.items()):
        raise ValidationError(f"{path}: expected {{entity: base64 public key}}")
    return data
