"""Who may talk to the dashboard: loopback Host headers only, and a token for every write.

* DNS rebinding: a page on ``evil.example`` that resolves to 127.0.0.1 reaches
  the dashboard with ``Host: evil.example``; such requests are refused (403)
  unless that host was named with ``--host``.
* Writes: refused (403) unless the dashboard was started with a token and the
  request carries it, as ``Authorization: Bearer TOKEN`` or in the cookie the
  page sets after ``POST /api/login``.  A cookie-borne write must also come from
  the dashboard's own origin (an ``Origin`` header, when sent, must match).
"""

from __future__ import annotations

import hmac
import os
import stat
from collections.abc import Iterable
from typing import Any

from ..errors import UsageError

__all__ = ["HostGuard", "read_token", "token_ok", "COOKIE", "TOKEN_ENV", "LOOPBACK"]

COOKIE = "gt_dashboard_token"
TOKEN_ENV = "GT_DASHBOARD_TOKEN"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def read_token(path: str | None) -> str | None:
    """The write token: from ``path`` (owner-only, mode 0600 or stricter) or $GT_DASHBOARD_TOKEN.

    Returns None when neither is given (a read-only dashboard).
    """
    if path:
        try:
            st = os.stat(path)
            with open(path, encoding="utf-8") as fh:
                token = fh.read().strip()
        except OSError as exc:
            raise UsageError(f"--token-file {path}: {exc.strerror or exc}") from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise UsageError(f"--token-file {path}: readable by others "
                             f"(mode {stat.S_IMODE(st.st_mode):04o}); chmod 600 it")
        if not token:
            raise UsageError(f"--token-file {path}: empty")
        return token
    token = os.environ.get(TOKEN_ENV, "").strip()
    return token or None


def token_ok(expected: str | None, headers: Any, cookies: dict[str, str]) -> tuple[bool, str]:
    """Does a request carry the token?  ``(ok, why not)``."""
    if not expected:
        return False, "read-only dashboard: start gt dashboard with a token to allow writes"
    auth = str(headers.get("authorization") or "")
    if auth.lower().startswith("bearer "):
        if hmac.compare_digest(auth[7:].strip().encode(), expected.encode()):
            return True, ""
        return False, "wrong token"
    cookie = cookies.get(COOKIE)
    if cookie is None:
        return False, "this write needs the dashboard's token (Authorization: Bearer TOKEN)"
    if not hmac.compare_digest(cookie.encode(), expected.encode()):
        return False, "wrong token"
    origin = headers.get("origin")
    host = headers.get("host")
    if origin and origin.split("://", 1)[-1] != host:
        return False, f"cross-origin write refused (Origin {origin})"
    return True, ""


def host_name(header: str) -> str:
    """The host part of a Host header (no port; an IPv6 literal without brackets)."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class HostGuard:
    """ASGI middleware: answer 403 to any request whose Host is not an allowed name."""

    def __init__(self, app: Any, extra_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = LOOPBACK | {host_name(h) for h in extra_hosts if h}
        # bound to every address on purpose: any name the machine answers to
        self.any = bool(self.allowed & {"0.0.0.0", "::", "*"})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Pass allowed requests on; refuse the rest before the application sees them."""
        if scope["type"] in ("http", "websocket"):
            headers = dict(scope.get("headers") or [])
            host = host_name(headers.get(b"host", b"").decode("latin-1"))
            if host not in self.allowed and not self.any:
                body = b"host not allowed: the dashboard answers loopback names only\n"
                await send({"type": "http.response.start", "status": 403,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                        (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
