"""Entity chains: a signed, hash-linked record of each entity's work, and the town log.

Every entity (the town, each person, each agent; ``entity://gt/<org>/<id>``, see
:mod:`.entity`) has a chain of records -- created, claimed, completed,
validated, rejected, reopened, delegated, digest (:mod:`.entry`) -- written in
the same ledger transaction as the change they record (:mod:`.hook`).  Every
record is also a leaf of the town's append-only Merkle log (RFC 6962,
:mod:`.merkle`), whose signed checkpoints and proofs (:mod:`.log`) let anyone
check a record offline; :mod:`.verify` recomputes every hash, link and
signature, and :mod:`.export` writes a CV another town can verify with nothing
but the file.

Reading (for CVs, skills and reputation built on top): :func:`records`,
:func:`about`, :func:`entities`, :func:`flags`.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .patterns import flags
    from .read import about, entities, records

__all__ = ["records", "about", "entities", "flags"]


def __getattr__(name: str) -> object:
    """The public functions, imported on first use (the ledger's hook imports this
    package in every agent's ``bd close``, which needs none of them)."""
    import importlib

    if name == "flags":
        return importlib.import_module(f"{__name__}.patterns").flags
    if name in ("records", "about", "entities"):
        return getattr(importlib.import_module(f"{__name__}.read"), name)
    raise AttributeError(name)
