"""Timestamps: RFC 3339 strings in UTC, as beads writes them.

Stored as text so that an imported ``…:40.486081Z`` or a nanosecond
``…:40.411793076Z`` is written back exactly as it came (small git diffs); offsets
such as ``+02:00`` are converted to UTC on the way in so that text order is time
order.
"""

from __future__ import annotations

import re
import time
from datetime import UTC

__all__ = ["now", "normalize", "parse_when"]

_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d{1,9})?(Z|z|[+-]\d{2}:?\d{2})?$"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_RELATIVE = re.compile(r"^\+?(\d+)\s*([smhdw])$")


def now() -> str:
    """The current time as ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (fixed width, sortable)."""
    t = time.time()
    secs = int(t)
    micros = int((t - secs) * 1_000_000)
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(secs))}.{micros:06d}Z"


def normalize(value: str) -> str:
    """Validate an RFC 3339 timestamp and return it in UTC with a ``Z``.

    Fractional digits are kept as written (up to nanoseconds); a time with an
    offset is shifted to UTC.  Raises ``ValueError`` naming the bad value.
    """
    m = _RFC3339.match(value.strip())
    if not m:
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
    date, clock, frac, zone = m.groups()
    frac = frac or ""
    if zone in (None, "Z", "z"):
        return f"{date}T{clock}{frac}Z"
    from datetime import datetime, timedelta

    sign = 1 if zone[0] == "+" else -1
    hh, mm = int(zone[1:3]), int(zone[-2:])
    base = datetime.fromisoformat(f"{date}T{clock}").replace(tzinfo=UTC)
    base -= sign * timedelta(hours=hh, minutes=mm)
    return base.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"


def parse_when(value: str) -> str:
    """Read a user-given time: RFC 3339, a date, or relative (``+2d``, ``3h``, ``30m``)."""
    from datetime import datetime, timedelta

    v = value.strip()
    m = _RELATIVE.match(v)
    if m:
        n, unit = int(m.group(1)), m.group(2)
        seconds = n * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[unit]
        t = datetime.now(UTC) + timedelta(seconds=seconds)
        return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if _DATE.match(v):
        return v + "T00:00:00Z"
    return normalize(v)
