"""One town secret, a secp256k1 key for every signing entity (BIP-32, NIP-06 paths).

The town secret is 32 random bytes in ``.gt/mesh/secret`` (mode 0600, folder 0700,
never on a command line).  It is used as the BIP-32 seed (NIP-06 would take it
from a BIP-39 mnemonic; we skip the words and keep the seed), and each entity's
key is the child at NIP-06's path ``m/44'/1237'/<account>'/0/0``.

Account numbering (so the secret alone restores every key; no table to back up):

* ``0`` -- the town itself (signs its manifest; acts for the whole town);
* ``1 + (first 4 bytes of sha256("gastown:<role>:<name>") mod (2**31 - 2))`` for a
  rig (role ``rig``) or a named agent (role ``agent``): a hardened index that
  depends only on the role and name.  Two names meeting on one account are
  refused when the manifest is built (a chance of ~1e-6 for 60 names).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from ..errors import ValidationError
from .events import x_only_public

__all__ = ["SECRET_FILE", "HARDENED", "derive", "account_for", "entity_secret",
           "load_or_create_secret", "path_for"]

SECRET_FILE = os.path.join("mesh", "secret")
HARDENED = 0x80000000
#: secp256k1's group order
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
ROLES = ("town", "rig", "agent")


def _compressed_public(k: int) -> bytes:
    import coincurve

    return bytes(coincurve.PrivateKey(k.to_bytes(32, "big")).public_key.format(compressed=True))


def _ckd(k: int, chain: bytes, index: int) -> tuple[int, bytes]:
    """BIP-32 CKDpriv: the child ``index`` of private key ``k`` with ``chain`` code."""
    if index >= HARDENED:
        data = b"\x00" + k.to_bytes(32, "big") + index.to_bytes(4, "big")
    else:
        data = _compressed_public(k) + index.to_bytes(4, "big")
    i = hmac.new(chain, data, hashlib.sha512).digest()
    il = int.from_bytes(i[:32], "big")
    child = (il + k) % _N
    if il >= _N or child == 0:  # probability below 2**-127; BIP-32 says use the next index
        raise ValidationError(f"BIP-32: index {index} gives no valid key; use another name")
    return child, i[32:]


def derive(seed: bytes, path: list[int]) -> bytes:
    """The 32-byte private key at ``path`` (indices, hardened ones ≥ :data:`HARDENED`)."""
    i = hmac.new(b"Bitcoin seed", seed, hashlib.sha512).digest()
    k, chain = int.from_bytes(i[:32], "big"), i[32:]
    if k == 0 or k >= _N:
        raise ValidationError("BIP-32: the seed gives no valid master key")
    for index in path:
        k, chain = _ckd(k, chain, index)
    return k.to_bytes(32, "big")


def account_for(role: str, name: str = "") -> int:
    """The NIP-06 account of an entity (see the module's numbering)."""
    if role not in ROLES:
        raise ValidationError(f"key role {role!r}: one of {', '.join(ROLES)}")
    if role == "town":
        return 0
    if not name:
        raise ValidationError(f"a {role} key needs a name")
    h = int.from_bytes(hashlib.sha256(f"gastown:{role}:{name}".encode()).digest()[:4], "big")
    return 1 + h % (HARDENED - 2)


def path_for(role: str, name: str = "") -> list[int]:
    """``m/44'/1237'/<account>'/0/0`` for an entity."""
    return [44 + HARDENED, 1237 + HARDENED, account_for(role, name) + HARDENED, 0, 0]


def entity_secret(seed: bytes, role: str, name: str = "") -> tuple[bytes, str]:
    """(private key, x-only public key hex) of an entity of the town."""
    sk = derive(seed, path_for(role, name))
    return sk, x_only_public(sk)


def load_or_create_secret(gt_dir: str) -> bytes:
    """The town secret, created owner-only on first use."""
    path = os.path.join(gt_dir, SECRET_FILE)
    if os.path.exists(path):
        if os.stat(path).st_mode & 0o077:
            raise ValidationError(f"{path} is readable by others; chmod 600 it")
        with open(path, encoding="ascii") as fh:
            text = fh.read().strip()
        try:
            seed = bytes.fromhex(text)
        except ValueError:
            seed = b""
        if len(seed) != 32:
            raise ValidationError(f"{path} is not a 64-hex-digit town secret; restore it")
        return seed
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    os.chmod(os.path.dirname(path), 0o700)
    seed = secrets.token_bytes(32)
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(seed.hex() + "\n")
    os.replace(tmp, path)
    return seed
