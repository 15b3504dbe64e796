"""Turning chains on for a town: tables, keys, and the ledger config the hook reads.

The ledger's ``config`` gets (so an agent's own ``bd close`` finds everything):

* ``chains.hook`` = ``gastown.chains.hook:record`` (:mod:`gastown.ledger.txhook`);
* ``chains.dir`` = the town's ``.gt/chains`` (keys, ``public.json``);
* ``chains.town_key`` = the town's federation signing key;
* ``chains.org`` = the town's public name; ``chains.town`` = its ``gt://`` address.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from ..federation.keys import KEY_FILE
from ..ledger import chainlog
from .entity import Keyring, entity_of

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..ledger.core import Ledger

__all__ = ["HOOK", "enable", "disable", "add_keys", "chains_dir"]

HOOK = "gastown.chains.hook:record"


def chains_dir(gt_dir: str) -> str:
    """Where a town keeps its entity keys: ``.gt/chains``."""
    return os.path.join(gt_dir, "chains")


def enable(ledger: Ledger, gt_dir: str, org: str, town_uri: str,
           actors: Iterable[str] = ()) -> Keyring:
    """Enable chains (idempotent): tables, the town key, keys for ``actors``, config rows."""
    chainlog.ensure(ledger.store)
    folder = chains_dir(gt_dir)
    os.makedirs(folder, mode=0o700, exist_ok=True)
    keys = Keyring(os.path.abspath(folder), os.path.abspath(os.path.join(gt_dir, KEY_FILE)),
                   org)
    keys.create(keys.town)
    add_keys(keys, actors)
    with ledger.transaction() as t:
        for key, value in (("chains.dir", keys.dir), ("chains.town_key", keys.town_key_path),
                           ("chains.org", org), ("chains.town", town_uri),
                           (chainlog.HOOK_KEY, HOOK)):
            t.kv_set(key, value, table="config")
    return keys


def add_keys(keys: Keyring, actors: Iterable[str]) -> list[str]:
    """Give each actor (a person or named agent) its own key; the entities."""
    out = []
    for actor in actors:
        entity = entity_of(actor, keys.org)
        keys.create(entity)
        out.append(entity)
    return out


def disable(ledger: Ledger) -> None:
    """Stop recording (the chains and keys stay, verifiable)."""
    with ledger.transaction() as t:
        t.kv_clear(chainlog.HOOK_KEY, table="config")
