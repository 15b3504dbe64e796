"""``gt mesh relay``: an embedded relay for a small group (nostr-sdk's ``LocalRelay``).

It listens on loopback (or the address given) and admits an event only when
:class:`WritePolicy` says so: a manifest signed by one of the pinned town keys
(``allow``: the towns of the group), or any event signed by a town key or by a
sub-key that the latest admitted manifest of its town lists and that has not
ended (:meth:`.manifest.Manifest.ended`: no backdating) -- "paid writes" is
the ``extra`` hook (called last; a text refuses).  The policy checks ids and
signatures with :mod:`.events` itself rather than relying on the library's.

nostr-sdk notes: ``port(0)`` does not bind an ephemeral port, so :func:`free_port`
picks one; the default rate limit is lifted to :data:`NOTES_PER_MINUTE`; a REQ
returns at most 500 events (clients page, see :mod:`.wire`).  The library keeps
events in memory; with a :class:`.relaystore.RelayStore` every admitted event is also
written to a file (durably, before the OK) and a restarted relay is refilled from it
before it says it is ready: the stored events are sent to it again over loopback,
admitted because they were admitted before (the paid-writes hook is not asked twice,
and a key that has ended since does not lose what it signed in time).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from typing import Any

from ..errors import ConflictError, ValidationError
from . import kinds
from .events import EventError, check, from_dict
from .manifest import Manifest
from .manifest import parse as parse_manifest
from .relaystore import RelayStore

__all__ = ["WritePolicy", "free_port", "serve", "NOTES_PER_MINUTE"]

NOTES_PER_MINUTE = 10_000_000
#: stored events sent back per connection when a relay restarts
REFILL_PAGE = 500


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (nostr-sdk cannot bind port 0 itself)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class WritePolicy:
    """Which events this relay stores (see the module)."""

    def __init__(self, allow: dict[str, str],
                 extra: Callable[[dict[str, Any]], str | None] | None = None,
                 max_skew: int = 300, now: int | None = None,
                 store: RelayStore | None = None) -> None:
        #: town key -> town address
        self.towns = dict(allow)
        self.manifests: dict[str, Manifest] = {}
        self.extra = extra
        self.max_skew = max_skew
        self.now = now  # None: this clock (tests pin it)
        self.saved = store
        self.admitted = 0
        self.refused = 0

    def decide(self, data: dict[str, Any]) -> str | None:
        """None to store the event, else why not."""
        try:
            ev = check(from_dict(data))
        except EventError as exc:
            return str(exc)
        if ev.kind == kinds.MANIFEST:
            if ev.pubkey not in self.towns:
                return "manifest by a key that is not a town of this relay"
            try:
                m = parse_manifest(ev)
            except EventError as exc:
                return str(exc)
            if m.town != self.towns[ev.pubkey]:
                return "manifest for another town than its key's"
            old = self.manifests.get(ev.pubkey)
            if old is None or (ev.created_at, old.event_id) > (old.created_at, ev.id):
                self.manifests[ev.pubkey] = m
        elif self.saved is not None and self.saved.has(ev.id):
            return None  # admitted before this relay restarted
        elif ev.pubkey not in self.towns:
            mans = [m for m in self.manifests.values() if m.authorises(ev.pubkey, ev.created_at)]
            if not mans:
                return "author is not in a manifest known to this relay"
            now = int(time.time()) if self.now is None else self.now
            if all(m.ended(ev.pubkey, now, self.max_skew) is not None for m in mans):
                return "author's key has ended (no backdating into its old window)"
        if self.saved is not None and self.saved.has(ev.id):
            return None
        return self.extra(data) if self.extra else None

    def keep(self, data: dict[str, Any]) -> None:
        """An admitted event: into the store, when there is one."""
        if self.saved is not None:
            self.saved.add(data)


async def _run(host: str, port: int, policy: WritePolicy, ready: Callable[[str], None],
               stop: asyncio.Event) -> None:
    import nostr_sdk as ns

    ns.uniffi_set_event_loop(asyncio.get_running_loop())
    # read (and lock) the store before listening: a store in use refuses to start
    stored = policy.saved.load() if policy.saved is not None else []

    class _Plugin(ns.WritePolicy):
        async def admit_event(self, event: Any, _addr: str) -> Any:
            data = json.loads(event.as_json())
            why = policy.decide(data)
            if why is None:
                policy.keep(data)
                policy.admitted += 1
                return ns.WritePolicyResult.ACCEPT()
            policy.refused += 1
            return ns.WritePolicyResult.REJECT(f"blocked: {why}"[:300])

    relay = (ns.LocalRelayBuilder().addr(host).port(port).write_policy(_Plugin())
             .rate_limit(ns.RateLimit(max_reqs=10_000, notes_per_minute=NOTES_PER_MINUTE))
             .build())
    await relay.run()
    url = f"ws://{host}:{port}"
    if stored:
        await _refill(url, stored)
    ready(url)
    try:
        await stop.wait()
    finally:
        relay.shutdown()
        if policy.saved is not None:
            policy.saved.close()


async def _refill(url: str, stored: list[dict[str, Any]]) -> None:
    """Send the stored events to the relay again (manifests first), a page at a time."""
    from . import wire

    loop = asyncio.get_running_loop()
    for i in range(0, len(stored), REFILL_PAGE):
        evs = [from_dict(d) for d in stored[i:i + REFILL_PAGE]]
        await loop.run_in_executor(None, wire.publish, url, evs, 60.0)


def serve(host: str, port: int, policy: WritePolicy, ready: Callable[[str], None],
          stop: asyncio.Event | None = None) -> None:
    """Run the relay until ``stop`` is set (or the process is interrupted)."""
    if port == 0:
        port = free_port(host)
    if not 0 < port < 65536:
        raise ValidationError(f"relay port {port}: 1..65535 (or 0 for a free one)")
    try:
        asyncio.run(_run(host, port, policy, ready, stop or asyncio.Event()))
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # nostr-sdk's errors (a port in use, a bad address)
        if type(exc).__module__.split(".")[0] != "nostr_sdk":
            raise
        raise ConflictError(f"relay {host}:{port} cannot start: "
                            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                            ) from None
