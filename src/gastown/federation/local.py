"""Short forms and this town's own addresses, resolved to a bead id here (issue 13, item 2).

Inside a town, ``gt-xyz`` is a bead here, ``RIG/gt-xyz`` a bead of rig ``RIG`` of
this same town, and ``gt://OWNER/NAME/RIG/gt-xyz`` -- this town's own full address
(owner and name from ``.town.json``) -- is that bead too.  The rig segment must
match the bead's rig (``_`` in a full address matches any: it is how a rig-less
address ``gt://E/C/ID`` reads).  Anything else is left to the ledger's own
resolution (so its messages stay the same).  Standard library only.
"""

from __future__ import annotations

from ..errors import NotFoundError, UsageError
from ..ledger.core import Ledger
from .uris import _RIG, _SEGMENT, NO_RIG, is_uri, parse, rig_of

__all__ = ["resolve_local", "is_here"]


def is_here(ledger: Ledger, text: str) -> bool:
    """Is ``text`` a ``gt://`` address of a bead of this town?"""
    from .aggregate import local_town

    try:
        uri = parse(text)
    except UsageError:
        return False
    town = local_town(ledger)
    return (uri.issue is not None and bool(town.get("owner"))
            and (uri.entity, uri.chain) == (town.get("owner"), town.get("name")))


def resolve_local(ledger: Ledger, text: str) -> str:
    """The bead id that ``RIG/ID`` or this town's ``gt://…/RIG/ID`` names, else
    ``ledger.resolve_id(text)``.  A rig that does not match is one NotFoundError line."""
    rig: str | None
    if is_uri(text):
        if not is_here(ledger, text):
            return str(ledger.resolve_id(text))
        uri = parse(text)
        rig, issue = (None if uri.rig == NO_RIG else uri.rig), str(uri.issue)
    else:
        parts = text.split("/")
        if not (len(parts) == 2 and _RIG.fullmatch(parts[0]) and _SEGMENT.fullmatch(parts[1])):
            return str(ledger.resolve_id(text))
        rig, issue = parts
    bead_id = str(ledger.resolve_id(issue))
    actual = rig_of(dict(ledger.get(bead_id)))
    if rig is not None and rig != actual:
        where = "no rig" if actual == NO_RIG else f"rig {actual}"
        raise NotFoundError(f"{text}: {bead_id} is on {where}, not rig {rig}")
    return bead_id
