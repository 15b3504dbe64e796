"""The town's Ed25519 signing key: private in ``.gt/federation/`` (0600), public in JSON."""

from __future__ import annotations

import base64
import os

from ..errors import ValidationError

__all__ = ["KEY_FILE", "load_or_create", "load_or_create_at", "public_b64", "sign", "verify"]

#: the private key, under the town's machine-local ``.gt/`` (never committed)
KEY_FILE = os.path.join("federation", "signing-key.pem")


def _crypto() -> tuple[object, object]:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError as exc:  # pragma: no cover - the extra is part of `test`
        raise ValidationError("federation needs the 'cryptography' package: "
                              "pip install 'gastown[federation]'") from exc
    return serialization, ed25519


def load_or_create(gt_dir: str) -> object:
    """The town's private key, created (mode 0600) on first use."""
    return load_or_create_at(os.path.join(gt_dir, KEY_FILE))


def load_or_create_at(path: str) -> object:
    """The private key in the PEM file ``path``, created (mode 0600, folder 0700) if absent."""
    serialization, ed25519 = _crypto()
    if os.path.exists(path):
        with open(path, "rb") as fh:
            pem = fh.read()
        try:
            return serialization.load_pem_private_key(pem, password=None)  # type: ignore[attr-defined]
        except (ValueError, TypeError):
            raise ValidationError(f"{path} is not a private key; restore it") from None
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    key = ed25519.Ed25519PrivateKey.generate()  # type: ignore[attr-defined]
    pem = key.private_bytes(serialization.Encoding.PEM,  # type: ignore[attr-defined]
                            serialization.PrivateFormat.PKCS8,  # type: ignore[attr-defined]
                            serialization.NoEncryption())  # type: ignore[attr-defined]
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    os.replace(tmp, path)
    return key


def public_b64(key: object) -> str:
    """The raw 32-byte public key of a private key, base64."""
    serialization, _ = _crypto()
    raw = key.public_key().public_bytes(serialization.Encoding.Raw,  # type: ignore[attr-defined]
                                        serialization.PublicFormat.Raw)  # type: ignore[attr-defined]
    return base64.b64encode(raw).decode("ascii")


def sign(key: object, data: bytes) -> str:
    """An Ed25519 signature of ``data``, base64."""
    return base64.b64encode(key.sign(data)).decode("ascii")  # type: ignore[attr-defined]


class Verifier:
    """Checks signatures against one public key (loaded once: sync verifies many)."""

    def __init__(self, public: str) -> None:
        _, ed25519 = _crypto()
        from cryptography.exceptions import InvalidSignature

        self._invalid = InvalidSignature
        try:
            self._key = ed25519.Ed25519PublicKey.from_public_bytes(  # type: ignore[attr-defined]
                base64.b64decode(public, validate=True))
        except ValueError as exc:
            raise ValidationError(f"not an Ed25519 public key: {public!r}") from exc

    def ok(self, data: bytes, signature: str) -> bool:
        """Is ``signature`` (base64) this key's signature of ``data``?"""
        try:
            self._key.verify(base64.b64decode(signature, validate=True), data)
        except (self._invalid, ValueError):
            return False
        return True


def verify(public: str, data: bytes, signature: str) -> bool:
    """Is ``signature`` the signature of ``data`` by ``public`` (base64 raw key)?"""
    return Verifier(public).ok(data, signature)
