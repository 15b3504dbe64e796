"""Every Nostr event kind the mesh uses, in one place.

Two are NIPs' own and keep their meaning (a relay or client that knows them
treats them right): :data:`FOLLOWS` (NIP-02, kind 3) and :data:`RETRACTION`
(NIP-09, kind 5).  The others are ours.  They sit in NIP-01's ranges so that a
plain relay stores them correctly without knowing them -- regular events in
1000-9999, the manifest in the replaceable range 10000-19999 and work items in
the addressable range 30000-39999 -- and on numbers that the NIPs' table of
kinds did not list when this was written (all ``…710``-``…716``: 4550 and 7374 are
the nearest listed regular kinds, 13534/15128 the nearest replaceable, and
34xxx only holds 34235/34236/34550).  Nothing here reuses 23194/23195, NIP-47's
wallet kinds.
"""

from __future__ import annotations

__all__ = ["FOLLOWS", "RETRACTION", "MANIFEST", "WORK_ITEM", "ITEM_EVENT", "OFFER", "RESULT",
           "ACCEPTANCE", "MAIL", "RECEIPT", "REPLACEABLE", "ADDRESSABLE", "NAMES",
           "is_replaceable", "is_addressable"]

#: NIP-02 follow list (replaceable by NIP-01's rule for kind 3): the trust graph's edges
FOLLOWS = 3
#: NIP-09 deletion request: ``e``/``a`` tags name what its author retracts
RETRACTION = 5
#: a town's manifest (replaceable, one per town key): its sub-keys, relays, settlement
MANIFEST = 14710
#: a work item (addressable: one slot per author and ``d`` = chain/rig/issue-id)
WORK_ITEM = 34710
#: a status change, claim, comment or dependency of a work item (regular; hash-chained
#: per author through a ``prev`` tag)
ITEM_EVENT = 4710
#: delegation: an offer of work to another town (with a bid)
OFFER = 4711
#: delegation: the provider's result (done / refused, with why)
RESULT = 4712
#: delegation: the requester's signed acceptance of a result -- the receipt that makes
#: a debt and counts in trust
ACCEPTANCE = 4713
#: protocol mail between towns' agents
MAIL = 4714
#: a settlement receipt (a netted balance paid through a settlement backend)
RECEIPT = 4715

REPLACEABLE = frozenset({FOLLOWS, MANIFEST})
ADDRESSABLE = frozenset({WORK_ITEM})

#: a word for each kind (messages, ``gt mesh`` listings)
NAMES: dict[int, str] = {FOLLOWS: "follows", RETRACTION: "retraction", MANIFEST: "manifest",
                         WORK_ITEM: "work-item", ITEM_EVENT: "item-event", OFFER: "offer",
                         RESULT: "result", ACCEPTANCE: "acceptance", MAIL: "mail",
                         RECEIPT: "receipt"}


def is_replaceable(kind: int) -> bool:
    """NIP-01: one event per (kind, author) -- 0, 3 and 10000-19999."""
    return kind in (0, 3) or 10000 <= kind < 20000


def is_addressable(kind: int) -> bool:
    """NIP-01: one event per (kind, author, ``d`` tag) -- 30000-39999."""
    return 30000 <= kind < 40000
