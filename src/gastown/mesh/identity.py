"""This town on the mesh: its ``[mesh]`` settings, its keys and its manifest.

::

    [mesh]
    relays = ["ws://127.0.0.1:7447", "ws://relay.example:7447"]
    acks = 2          # an event leaves the outbox once this many relays said OK
    max_skew = 300    # seconds an event may be dated ahead of this clock
    credit_min = 0    # the credit limit of a peer of trust 0 (units) ...
    credit_max = 1000 # ... and of trust 1: min + (max - min) * trust**2
    sync_every = "30s" # the controller publishes and syncs this often ("0": never)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..config import TownConfig
from ..errors import ValidationError
from ..federation.identity import load_identity
from ..ledger.core import Ledger
from . import keys, store
from .events import Event
from .manifest import KeyEntry, build

__all__ = ["MeshSettings", "MeshIdentity", "settings", "load", "SELF"]

MESH_KEYS = {"relays", "acks", "max_skew", "credit_min", "credit_max", "sync_every"}
_UNITS = {"s": 1, "m": 60, "h": 3600}
#: the peer name this town pins itself under (its own events pass the same checks)
SELF = "self"


@dataclass
class MeshSettings:
    """The ``[mesh]`` table."""

    relays: list[str] = field(default_factory=list)
    acks: int = 1
    max_skew: int = 300
    credit_min: int = 0
    credit_max: int = 1000
    sync_every: float = 30.0  # seconds; 0: the controller never publishes or syncs


def _interval(v: object, where: str) -> float:
    """``"30s"``, ``"5m"``, ``"1h"`` or a number of seconds; 0 (or ``"0"``): off."""
    text = str(v).strip() if isinstance(v, (str, int, float)) and not isinstance(v, bool) else ""
    num, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "s")
    try:
        secs = float(num) * _UNITS[unit]
    except ValueError:
        secs = -1.0
    if not (secs == 0 or 1 <= secs <= 86400):
        raise ValidationError(f"{where}.sync_every must be 0 (off) or 1s..24h, like \"30s\" "
                              f"or \"5m\" (not {v!r})")
    return secs


def settings(cfg: TownConfig) -> MeshSettings:
    """``[mesh]`` of ``town.toml``, checked."""
    raw = (cfg.raw or {}).get("mesh") or {}
    where = f"{cfg.path}: mesh"
    if not isinstance(raw, dict):
        raise ValidationError(f"{where} must be a table")
    unknown = sorted(set(raw) - MESH_KEYS)
    if unknown:
        raise ValidationError(f"{where}: unknown key(s) {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(MESH_KEYS))})")
    relays = raw.get("relays", [])
    if not isinstance(relays, list) or not all(
            isinstance(r, str) and r.startswith(("ws://", "wss://")) for r in relays):
        raise ValidationError(f"{where}.relays must be a list of ws:// or wss:// URLs")
    s = MeshSettings(relays=list(relays))
    s.sync_every = _interval(raw.get("sync_every", 30), where)
    for name in ("acks", "max_skew", "credit_min", "credit_max"):
        v = raw.get(name, getattr(s, name))
        if isinstance(v, bool) or not isinstance(v, int) or v < (1 if name == "acks" else 0):
            raise ValidationError(f"{where}.{name} must be a whole number"
                                  f"{' of at least 1' if name == 'acks' else ''}")
        setattr(s, name, v)
    if s.credit_max < s.credit_min:
        raise ValidationError(f"{where}: credit_max is below credit_min")
    return s


@dataclass
class MeshIdentity:
    """A town's seed, address and keys."""

    seed: bytes
    uri: str
    settings: MeshSettings
    rigs: list[str]
    agents: list[str]

    @property
    def chain(self) -> str:
        """The town's name (the chain segment of its address)."""
        return self.uri.rsplit("/", 1)[1]

    def key(self, role: str = "town", name: str = "") -> tuple[bytes, str]:
        """(secret, public) of the town, a rig or an agent."""
        return keys.entity_secret(self.seed, role, name)

    @property
    def public(self) -> str:
        """The town key (account 0), x-only hex."""
        return self.key()[1]

    def entries(self, valid_from: int = 0) -> list[KeyEntry]:
        """The manifest's sub-keys: one per rig (for its rig), one per agent (every rig)."""
        out: list[KeyEntry] = []
        seen: dict[int, str] = {}
        for role, names in (("rig", self.rigs), ("agent", self.agents)):
            for n in names:
                acct = keys.account_for(role, n)
                if acct in seen:
                    raise ValidationError(f"{role} {n!r} and {seen[acct]} share key account "
                                          f"{acct}; rename one")
                seen[acct] = f"{role} {n!r}"
                out.append(KeyEntry(self.key(role, n)[1], role, n,
                                    (n,) if role == "rig" else (), valid_from, None))
        return out

    def manifest(self, created_at: int | None = None,
                 settlement: dict[str, Any] | None = None) -> Event:
        """A freshly signed manifest of this town."""
        return build(self.key()[0], self.uri, self.entries(), self.settings.relays,
                     settlement, created_at)


def load(cfg: TownConfig, gt_dir: str, ledger: Ledger | None = None) -> MeshIdentity:
    """The town's mesh identity (its secret created on first use); with ``ledger``,
    the town is pinned as peer :data:`SELF` so its own events pass ingest's checks."""
    ident = load_identity(cfg)
    me = MeshIdentity(seed=keys.load_or_create_secret(gt_dir), uri=str(ident.uri),
                      settings=settings(cfg), rigs=sorted(cfg.rigs), agents=sorted(cfg.agents))
    if ledger is not None:
        rec = {"name": SELF, "uri": me.uri, "key": me.public}
        if ledger.kv_get(store.PEER + SELF) != json.dumps(rec, sort_keys=True):
            ledger.kv_set(store.PEER + SELF, json.dumps(rec, sort_keys=True))
    return me
