"""Talking to a relay: NIP-01 ``EVENT``/``OK`` and ``REQ``/``EVENT``/``EOSE`` over a websocket.

A plain synchronous client (``websockets``), so every byte a relay sends passes
through :mod:`.ingest`'s checks and nothing else: the relay's own verification
is never relied on.  Each message is bounded (:data:`.events.MAX_EVENT_BYTES` plus
framing), each call has a deadline, and a fetch pages below relays' 500-event cap
(``until`` moved back to the oldest ``created_at`` of each page; events are
deduplicated by id) up to :data:`MAX_FETCH` events.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from ..errors import NotFoundError
from .events import MAX_EVENT_BYTES, Event

__all__ = ["RelayError", "publish", "fetch", "PAGE", "MAX_FETCH"]

#: events asked for per REQ (relays cap a request at 500)
PAGE = 400
#: the most events one fetch takes from one relay
MAX_FETCH = 200_000
_MAX_MSG = MAX_EVENT_BYTES + 4096


class RelayError(NotFoundError):
    """A relay that cannot be reached or that broke the protocol."""


def _connect(url: str, timeout: float) -> Any:
    from websockets.sync.client import connect

    try:
        return connect(url, open_timeout=timeout, close_timeout=1, max_size=_MAX_MSG,
                       compression=None)
    except (OSError, TimeoutError) as exc:
        raise RelayError(f"relay {url}: cannot connect ({exc.__class__.__name__}: "
                         f"{getattr(exc, 'strerror', None) or exc})") from None
    except Exception as exc:  # websockets' handshake errors (InvalidURI, InvalidStatus…)
        raise RelayError(f"relay {url}: {exc.__class__.__name__}: {exc}") from None


def _recv(ws: Any, url: str, deadline: float) -> list[Any] | None:
    """The next message (a JSON list), or None at the deadline."""
    left = deadline - time.monotonic()
    if left <= 0:
        return None
    try:
        raw = ws.recv(timeout=left)
    except TimeoutError:
        return None
    except Exception as exc:  # closed by the relay, too large a frame
        raise RelayError(f"relay {url}: connection lost ({exc.__class__.__name__})") from None
    try:
        msg = json.loads(raw)
    except (ValueError, RecursionError):
        raise RelayError(f"relay {url}: sent a message that is not JSON") from None
    if not isinstance(msg, list) or not msg or not isinstance(msg[0], str):
        raise RelayError(f"relay {url}: sent a message that is not a NIP-01 array")
    return msg


def publish(url: str, evs: list[Event], timeout: float = 10.0) -> dict[str, tuple[bool, str]]:
    """Send events; ``{id: (accepted, message)}`` for each ``OK`` received in time."""
    out: dict[str, tuple[bool, str]] = {}
    if not evs:
        return out
    want = {e.id for e in evs}
    with _connect(url, timeout) as ws:
        deadline = time.monotonic() + timeout
        for e in evs:
            ws.send(json.dumps(["EVENT", e.as_dict()], ensure_ascii=False,
                               separators=(",", ":")))
        while want - set(out):
            msg = _recv(ws, url, deadline)
            if msg is None:
                break
            if msg[0] == "OK" and len(msg) >= 3 and msg[1] in want:
                text = str(msg[3]) if len(msg) > 3 else ""
                # NIP-01: "duplicate:" is still an acknowledgement that the relay holds it
                out[str(msg[1])] = (msg[2] is True or text.startswith("duplicate"), text[:200])
    return out


def fetch(url: str, flt: dict[str, Any], timeout: float = 20.0,
          limit: int = MAX_FETCH) -> list[dict[str, Any]]:
    """Every event matching ``flt`` (raw, unchecked), paged by ``until``, newest pages first.

    Copies with one id are all kept (a forged copy must not push out the genuine one:
    ingest checks each and drops duplicates after the checks); so is anything malformed,
    for ingest to refuse and count.
    """
    got: list[Any] = []
    ids: set[str] = set()
    until: int | None = flt.get("until")
    deadline = time.monotonic() + timeout
    with _connect(url, timeout) as ws:
        while len(got) < limit:  # bounded: a relay cannot make us hold more
            sub = "gt" + secrets.token_hex(6)
            page = {**flt, "limit": PAGE}
            if until is not None:
                page["until"] = until
            ws.send(json.dumps(["REQ", sub, page]))
            n, oldest, new = 0, None, 0
            while True:
                msg = _recv(ws, url, deadline)
                if msg is None:
                    raise RelayError(f"relay {url}: no end of stored events before the "
                                     f"deadline ({timeout:g}s)")
                if msg[0] == "EVENT" and len(msg) >= 3 and msg[1] == sub:
                    ev = msg[2]
                    n += 1
                    got.append(ev)
                    if isinstance(ev, dict) and isinstance(ev.get("id"), str):
                        if ev["id"] not in ids:
                            new += 1
                            ids.add(ev["id"])
                        at = ev.get("created_at")
                        if isinstance(at, int) and (oldest is None or at < oldest):
                            oldest = at
                elif msg[0] in ("EOSE", "CLOSED") and len(msg) >= 2 and msg[1] == sub:
                    break
            ws.send(json.dumps(["CLOSE", sub]))
            # a short page is the last; a page with nothing new cannot move on (a full
            # second of more than PAGE events: the rest is taken by a later sync's overlap)
            if n < PAGE or oldest is None or new == 0:
                break
            until = oldest
    return got
