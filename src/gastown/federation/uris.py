"""``gt://<entity>/<chain>/<rig>/<issue-id>``: the full address of a bead.

* ``entity`` -- the owner of a town (``alice@example.com``, ``acme.com``);
* ``chain``  -- the town's name (``[town] name``);
* ``rig``    -- the rig the bead belongs to (its ``metadata.rig``, else a
  ``rig:NAME`` label); a bead of no rig has the placeholder :data:`NO_RIG` (``_``);
* ``issue-id`` -- the bead's id.

``hop://`` is accepted on input as an alias of ``gt://``.  Short forms resolve
against the town they are read in: ``gt-xyz`` is local; ``rig/gt-xyz`` names a
bead of another rig of the same town.  Standard library only (``bd show`` uses it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import UsageError
from .rig import NO_RIG, rig_of

__all__ = ["NO_RIG", "SCHEMES", "BeadURI", "parse", "format_uri", "rig_of", "is_uri"]

SCHEMES = ("gt://", "hop://")
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9@._+-]*")
_RIG = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9._-]*|_)")


@dataclass(frozen=True)
class BeadURI:
    """A parsed address; ``rig``/``issue`` are None for a town address (``gt://E/C``)."""

    entity: str
    chain: str
    rig: str | None = None
    issue: str | None = None

    def __str__(self) -> str:
        return format_uri(self.entity, self.chain, self.rig, self.issue)


def is_uri(text: str) -> bool:
    """Does ``text`` start with a federation scheme (``gt://`` or ``hop://``)?"""
    return text.startswith(SCHEMES)


def format_uri(entity: str, chain: str, rig: str | None = None, issue: str | None = None) -> str:
    """``gt://entity/chain[/rig/issue]`` (a missing rig with an issue is ``_``)."""
    if issue is None:
        return f"gt://{entity}/{chain}"
    return f"gt://{entity}/{chain}/{rig or NO_RIG}/{issue}"


def parse(text: str, *, town: BeadURI | None = None, what: str = "address") -> BeadURI:
    """Parse a full address, or a short form (``ID``, ``RIG/ID``) against ``town``.

    A town address ``gt://E/C`` has no rig or issue; ``gt://E/C/ID`` (no rig
    segment) is read as a bead of no rig.  Bad input raises :class:`UsageError`.
    """
    raw = text.strip()
    scheme = next((s for s in SCHEMES if raw.startswith(s)), None)
    if scheme is None:
        if town is None:
            raise UsageError(f"{what} {text!r}: expected gt://ENTITY/CHAIN[/RIG]/ID")
        parts = raw.split("/")
        if len(parts) == 1 and _SEGMENT.fullmatch(parts[0]):
            return BeadURI(town.entity, town.chain, None, parts[0])
        if len(parts) == 2 and _RIG.fullmatch(parts[0]) and _SEGMENT.fullmatch(parts[1]):
            return BeadURI(town.entity, town.chain, parts[0], parts[1])
        raise UsageError(f"{what} {text!r}: expected ID, RIG/ID or gt://ENTITY/CHAIN/RIG/ID")
    parts = raw[len(scheme):].split("/")
    if len(parts) not in (2, 3, 4) or not all(parts):
        raise UsageError(f"{what} {text!r}: expected gt://ENTITY/CHAIN or "
                         "gt://ENTITY/CHAIN/RIG/ID")
    entity, chain = parts[0], parts[1]
    for seg, name in ((entity, "entity"), (chain, "chain")):
        if not _SEGMENT.fullmatch(seg):
            raise UsageError(f"{what} {text!r}: bad {name} {seg!r}")
    if len(parts) == 2:
        return BeadURI(entity, chain)
    rig, issue = (NO_RIG, parts[2]) if len(parts) == 3 else (parts[2], parts[3])
    if not _RIG.fullmatch(rig) or not _SEGMENT.fullmatch(issue):
        raise UsageError(f"{what} {text!r}: bad rig or issue id")
    return BeadURI(entity, chain, rig, issue)
