"""Federation: town identity, ``gt://`` addresses, a signed append-only log, remotes.

A town publishes what its ``[federation] publish`` policy allows as a hash-linked,
Ed25519-signed log of records (:mod:`.log`), to a directory or a ref of a git
repository (:mod:`.transport`); other towns add it as a remote, sync it -- every
signature and link verified -- and read its beads from a local mirror (:mod:`.remotes`).
"""

from __future__ import annotations
