"""A town's federation identity and policy: ``[town]``/``[federation]`` of ``town.toml``.

::

    [town]
    name = "main-town"              # the chain
    owner = "alice@example.com"     # the entity (or [federation] owner)
    public_name = "alice-gastown"

    [federation]
    publish = "none"                # | "all" | ["rig:NAME", "label:NAME", ...]
    publish_to = ["/srv/town-log", "git@host:me/town.git"]
    member_of = ["acme.com"]        # employment records the town publishes
    auto_publish = true             # publish after every change (see .autopub)
    remote_url = "git@host:{entity}/{chain}.git"   # where `gt remote add` without --url reads
    sync_every = "5m"               # the controller syncs every remote this often (see .autosync)

The identity is published as ``.town.json`` in the town's folder.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from ..config import TownConfig
from ..errors import ValidationError
from . import keys
from .uris import _SEGMENT, BeadURI

__all__ = ["Identity", "load_identity", "write_town_json", "TOWN_JSON", "FED_KEYS"]

TOWN_JSON = ".town.json"
FED_KEYS = {"owner", "public_name", "publish", "publish_to", "member_of",
            "on_delegated_done", "auto_publish", "remote_url", "sync_every"}


@dataclass
class Identity:
    """Who a town is and what it publishes."""

    owner: str
    name: str
    public_name: str
    publish: list[str] | str = "none"
    publish_to: list[str] = field(default_factory=list)
    member_of: list[str] = field(default_factory=list)
    public_key: str = ""
    #: the entity chains' public keys (``{entity: base64}``, :mod:`gastown.chains`)
    entity_keys: dict[str, str] = field(default_factory=dict)
    auto_publish: bool = False
    remote_url: str = ""
    #: seconds between the controller's syncs of every remote (0: only by hand)
    sync_every: float = 0.0

    def remote_url_for(self, entity: str, chain: str) -> str:
        """``remote_url`` with ``{entity}`` and ``{chain}`` filled in ("" when unset)."""
        return self.remote_url.replace("{entity}", entity).replace("{chain}", chain)

    @property
    def uri(self) -> BeadURI:
        """The town's address ``gt://owner/name``."""
        return BeadURI(self.owner, self.name)

    def as_json(self) -> dict[str, Any]:
        """The ``.town.json`` document."""
        return {"owner": self.owner, "name": self.name, "public_name": self.public_name,
                "uri": str(self.uri), "public_key": self.public_key, "key_type": "ed25519",
                "publishes": self.publish, "member_of": list(self.member_of),
                **({"entity_keys": dict(self.entity_keys)} if self.entity_keys else {})}


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValidationError(f"{where} must be a list of strings")
    return list(value)


def load_identity(cfg: TownConfig, gt_dir: str | None = None) -> Identity:
    """The identity of the town configured by ``cfg`` (its key loaded/created when
    ``gt_dir`` is given)."""
    raw: dict[str, Any] = cfg.raw or {}
    fed = raw.get("federation") or {}
    where = f"{cfg.path}: federation"
    if not isinstance(fed, dict):
        raise ValidationError(f"{where} must be a table")
    unknown = sorted(set(fed) - FED_KEYS)
    if unknown:
        raise ValidationError(f"{where}: unknown key(s) {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(FED_KEYS))})")
    town = raw.get("town") or {}
    owner = fed.get("owner") or town.get("owner") or cfg.town.email or "local"
    if not isinstance(owner, str) or not _SEGMENT.fullmatch(owner):
        raise ValidationError(f"{cfg.path}: town.owner {owner!r} is not an entity "
                              "(an email or domain, no '/')")
    if not _SEGMENT.fullmatch(cfg.town.name):
        raise ValidationError(f"{cfg.path}: town.name {cfg.town.name!r} cannot be a chain name")
    public = fed.get("public_name") or town.get("public_name") or cfg.town.name
    publish = fed.get("publish", "none")
    if isinstance(publish, str):
        if publish not in ("none", "all"):
            raise ValidationError(f"{where}.publish: {publish!r} is not \"none\", \"all\" "
                                  "or a list of \"rig:NAME\"/\"label:NAME\"")
    else:
        publish = _strings(publish, f"{where}.publish")
        for p in publish:
            if not p.startswith(("rig:", "label:")) or p.endswith(":"):
                raise ValidationError(f"{where}.publish: {p!r} is not rig:NAME or label:NAME")
    auto = fed.get("auto_publish", False)
    if not isinstance(auto, bool):
        raise ValidationError(f"{where}.auto_publish: {auto!r} is not true or false")
    remote_url = fed.get("remote_url", "")
    if not isinstance(remote_url, str):
        raise ValidationError(f"{where}.remote_url must be a string")
    sync_every = 0.0
    if "sync_every" in fed:
        from ..config.orders import parse_age

        sync_every = parse_age(fed["sync_every"], f"{where}.sync_every")
        if sync_every < 5:
            raise ValidationError(f"{where}.sync_every: at least 5 seconds")
    ident = Identity(owner=owner, name=cfg.town.name, public_name=str(public),
                     publish=publish, auto_publish=auto, remote_url=remote_url,
                     sync_every=sync_every,
                     publish_to=_strings(fed.get("publish_to", []), f"{where}.publish_to"),
                     member_of=_strings(fed.get("member_of", []), f"{where}.member_of"))
    if gt_dir is not None:
        ident.public_key = keys.public_b64(keys.load_or_create(gt_dir))
        ident.entity_keys = _entity_keys(gt_dir)
    return ident


def _entity_keys(gt_dir: str) -> dict[str, str]:
    """The public keys entity chains publish (``.gt/chains/public.json``), if any."""
    path = os.path.join(gt_dir, "chains", "public.json")
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v) for k, v in data.items() if isinstance(v, str)}


def write_town_json(root: str, ident: Identity) -> str:
    """Write ``<town>/.town.json`` atomically; its path."""
    path = os.path.join(root, TOWN_JSON)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(ident.as_json(), fh, indent=2, sort_keys=True)
        fh.write("\n")
    os.replace(tmp, path)
    return path
