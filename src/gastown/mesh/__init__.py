"""The mesh: Nostr identities, relays as a transport, trust and credit between towns.

Every event is NIP-01 (:mod:`.events`, BIP-340 signatures by keys derived from one
town secret, :mod:`.keys`); a town's manifest (:mod:`.manifest`) says which keys act
for it; :mod:`.ingest` is the one door into the ledger (ids recomputed, signatures
checked, authors authorised, replacement computed here -- never trusted to a relay).
Kind numbers live in :mod:`.kinds`.
"""

from __future__ import annotations
