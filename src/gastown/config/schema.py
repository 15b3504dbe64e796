"""The tables of ``town.toml`` and their validation: :func:`parse_config`.

Every mistake is reported as one line naming the file and the key.  The
options inside a ``[providers.NAME]`` table belong to that provider: their
names are checked here, their values by the provider itself when the town
loads its configuration (:func:`gastown.town.config.load_config`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import NotFoundError, ValidationError
from .costs import Budget, CostSettings, parse_budgets, parse_costs
from .nodes import NodePolicy, parse_nodes
from .orders import Housekeeping, Order, parse_housekeeping, parse_orders
from .policies import TABLES, Policies, parse_policies
from .presets import load_presets
from .providers import check_provider
from .values import (
    boolean,
    check_name,
    checked_table,
    env,
    known,
    parse_command,
    string,
    strlist,
    table,
)

__all__ = ["CONFIG_FILE", "TownSettings", "RigConfig", "AgentConfig", "PoolConfig",
           "RoleConfig", "TownConfig", "load_config", "parse_config", "TOP_TABLES"]

CONFIG_FILE = "town.toml"
#: every top-level table town.toml may have
TOP_TABLES = ("town", "rigs", "agents", "pools", "roles", "groups", "presets", "providers",
              "federation", "nodes", *TABLES, "orders", "housekeeping", "costs",
              "budgets", "mesh")  # [mesh]: relays, acks, skew (gastown.mesh.config)


@dataclass
class TownSettings:
    """The ``[town]`` table."""

    name: str
    prefix: str
    provider: str = "tmux"
    email: str = "gastown@localhost"
    formula_paths: list[str] = field(default_factory=list)
    escalate_to: str | None = None
    default_role: str | None = None


@dataclass
class RigConfig:
    """One ``[rigs.NAME]`` table: a repository the town works on."""

    name: str
    source: str
    branch: str = "main"
    pool: str | None = None
    push: bool = False
    #: the merge queue runs this (an argv) in a scratch worktree before landing
    test: list[str] | None = None
    #: when set, the merge queue runs this (an argv) to land instead of fast-forwarding
    land: list[str] | None = None


@dataclass
class AgentConfig:
    """One agent: configured under ``[agents.NAME]`` or a slot of a pool."""

    name: str
    role: str
    preset: str
    rig: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    provider: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    pool: str | None = None
    #: the node that runs its sessions (``gt up --node``); None: placed by free capacity
    node: str | None = None


#: the ways a pool may pick a worker for ready work (``[pools.NAME] route``)
POOL_ROUTES = ("first", "skills")


@dataclass
class PoolConfig:
    """One ``[pools.NAME]`` table: workers started on demand, at most ``max``."""

    name: str
    rig: str
    role: str
    preset: str
    max: int = 3
    command: list[str] | None = None
    args: list[str] | None = None
    provider: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    node: str | None = None
    #: how ready work picks a free worker: "first" (the first free slot) or "skills"
    #: (the free slot whose entity chain best fits the bead: gt match)
    route: str = "first"

    def slot(self, n: int) -> AgentConfig:
        """The agent that fills slot ``n`` (1-based) of this pool."""
        return AgentConfig(name=f"{self.name}-{n}", role=self.role, preset=self.preset,
                           rig=self.rig, command=self.command, args=self.args,
                           provider=self.provider, env=dict(self.env), pool=self.name,
                           node=self.node)


@dataclass
class RoleConfig:
    """One ``[roles.NAME]`` table (optional: a role can be just a template file)."""

    name: str
    description: str = ""
    template: str | None = None


@dataclass
class TownConfig:
    """The whole of ``town.toml``, validated."""

    path: str
    town: TownSettings
    rigs: dict[str, RigConfig] = field(default_factory=dict)
    agents: dict[str, AgentConfig] = field(default_factory=dict)
    pools: dict[str, PoolConfig] = field(default_factory=dict)
    roles: dict[str, RoleConfig] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    presets: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ``[providers.NAME]``: each provider's own options (checked by the provider)
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the controller's ``[controller]``, ``[patrol]`` and ``[merge]`` tables
    policies: Policies = field(default_factory=Policies)
    #: ``[nodes]``: the leader's lease and heartbeat (config/nodes.py)
    nodes: NodePolicy = field(default_factory=NodePolicy)
    #: ``[costs]``: prices per model, where agent programs keep their logs
    costs: CostSettings = field(default_factory=CostSettings)
    #: ``[budgets]``: spending limits that pause an agent, a pool or the town
    budgets: list[Budget] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    #: ``[orders.NAME]``: formulas started on a schedule or an event (config/orders.py)
    orders: dict[str, Order] = field(default_factory=dict)
    #: ``[housekeeping]``: wisp collection, timer gates, worktree pruning
    housekeeping: Housekeeping = field(default_factory=Housekeeping)

    def agent(self, name: str) -> AgentConfig:
        """A configured agent or a pool slot (``POOL-N``) by name."""
        if name in self.agents:
            return self.agents[name]
        slot = self.pool_slot(name)
        if slot is not None:
            return slot
        raise NotFoundError(f"no agent named {name!r} in {self.path}")

    def pool_slot(self, name: str) -> AgentConfig | None:
        """The pool slot agent called ``name``, or None."""
        head, _, tail = name.rpartition("-")
        pool = self.pools.get(head)
        if pool and tail.isdigit() and 1 <= int(tail) <= pool.max and str(int(tail)) == tail:
            return pool.slot(int(tail))
        return None

    def all_agents(self) -> list[AgentConfig]:
        """Configured agents, then every slot of every pool."""
        out = list(self.agents.values())
        for pool in self.pools.values():
            out += [pool.slot(n) for n in range(1, pool.max + 1)]
        return out

    def rig(self, name: str) -> RigConfig:
        """A rig by name or :class:`NotFoundError`."""
        if name not in self.rigs:
            raise NotFoundError(f"no rig named {name!r} in {self.path}")
        return self.rigs[name]


def load_config(path: str) -> TownConfig:
    """Read and validate ``town.toml`` at ``path``."""
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise NotFoundError(f"{path} does not exist (create a town with 'gt init')") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"{path}: {exc}") from None
    return parse_config(data, path)


def _named(data: dict[str, Any], key: str, kind: str, path: str,
           allowed: set[str]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """``(name, where, table)`` of each ``[KEY.NAME]`` table, its name and keys checked."""
    for name, t in table(data, key, path).items():
        where = f"{path}: {key}.{name}"
        check_name(kind, name, path)
        yield name, where, checked_table(t, allowed, where)


def _provider(t: dict[str, Any], where: str, default: str | None) -> str | None:
    value = t.get("provider", default)
    return None if value is None else check_provider(value, f"{where}.provider")


def parse_config(data: dict[str, Any], path: str = CONFIG_FILE) -> TownConfig:
    """Validate parsed TOML ``data`` into a :class:`TownConfig` (``path`` is for messages)."""
    known(data, set(TOP_TABLES), path)
    policies = parse_policies(data, path)
    t = table(data, "town", path)
    where = f"{path}: town"
    known(t, {"name", "prefix", "provider", "email", "formula_paths", "escalate_to",
              "default_role", "owner", "public_name"}, where)
    default_name = os.path.basename(os.path.dirname(os.path.abspath(path))) or "town"
    settings = TownSettings(
        name=string(t, "name", where, default_name) or default_name,
        prefix=string(t, "prefix", where, "gt") or "gt",
        provider=_provider(t, where, "tmux") or "tmux",
        email=string(t, "email", where, "gastown@localhost") or "gastown@localhost",
        formula_paths=strlist(t, "formula_paths", where) or [],
        escalate_to=string(t, "escalate_to", where),
        default_role=string(t, "default_role", where))
    presets = load_presets(table(data, "presets", path), path)
    cfg = TownConfig(path=path, town=settings, presets=presets, policies=policies, raw=data,
                     nodes=parse_nodes(data, path))
    for name, options in table(data, "providers", path).items():
        check_provider(name, f"{path}: providers.{name}")
        if not isinstance(options, dict):
            raise ValidationError(f"{path}: providers.{name} must be a table")
        cfg.providers[name] = dict(options)
    _roles(cfg, data, path)
    _rigs(cfg, data, path)
    _workers(cfg, data, path)
    for name, where, g in _named(data, "groups", "group", path, {"members"}):
        cfg.groups[name] = strlist(g, "members", where) or []
    _check_cross(cfg)
    cfg.orders = parse_orders(data, path)
    cfg.housekeeping = parse_housekeeping(data, path)
    cfg.costs = parse_costs(data, path)
    cfg.budgets = parse_budgets(data, path, set(cfg.agents), set(cfg.pools))
    return cfg


def _roles(cfg: TownConfig, data: dict[str, Any], path: str) -> None:
    for name, where, r in _named(data, "roles", "role", path, {"description", "template"}):
        cfg.roles[name] = RoleConfig(name, string(r, "description", where, "") or "",
                                     string(r, "template", where))


def _rigs(cfg: TownConfig, data: dict[str, Any], path: str) -> None:
    for name, where, r in _named(data, "rigs", "rig", path,
                                 {"source", "branch", "pool", "push", "test", "land"}):
        source = string(r, "source", where)
        if not source:
            raise ValidationError(f"{where}.source is required (the path or URL cloned)")
        cfg.rigs[name] = RigConfig(name, source, string(r, "branch", where, "main") or "main",
                                   string(r, "pool", where), boolean(r, "push", where, False),
                                   test=parse_command(r.get("test"), f"{where}.test"),
                                   land=parse_command(r.get("land"), f"{where}.land"))


def _workers(cfg: TownConfig, data: dict[str, Any], path: str) -> None:
    worker_keys = {"rig", "role", "preset", "command", "args", "provider", "env", "node"}
    for name, where, a in _named(data, "agents", "agent", path, worker_keys):
        agent = AgentConfig(
            name=name, role=string(a, "role", where) or "",
            preset=string(a, "preset", where) or "", rig=string(a, "rig", where),
            command=parse_command(a.get("command"), f"{where}.command"),
            args=strlist(a, "args", where), provider=_provider(a, where, None),
            env=env(a, where), node=_node(a, where))
        _check_worker(cfg, where, agent.role, agent.preset, agent.rig, agent.command)
        cfg.agents[name] = agent
    for name, where, p in _named(data, "pools", "pool", path, worker_keys | {"max", "route"}):
        size = p.get("max", 3)
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 64:
            raise ValidationError(f"{where}.max must be an integer from 1 to 64")
        rig = string(p, "rig", where)
        if not rig:
            raise ValidationError(f"{where}.rig is required (pool workers work on a rig)")
        pool = PoolConfig(
            name=name, rig=rig, role=string(p, "role", where) or "",
            preset=string(p, "preset", where) or "", max=size,
            command=parse_command(p.get("command"), f"{where}.command"),
            args=strlist(p, "args", where), provider=_provider(p, where, None),
            env=env(p, where), node=_node(p, where),
            route=string(p, "route", where) or "first")
        if pool.route not in POOL_ROUTES:
            raise ValidationError(f"{where}.route must be one of {', '.join(POOL_ROUTES)}, "
                                  f"not {pool.route[:40]!r}")
        _check_worker(cfg, where, pool.role, pool.preset, rig, pool.command)
        cfg.pools[name] = pool


def _node(t: dict[str, Any], where: str) -> str | None:
    """``node = "NAME"``: a node name (``gt up --node NAME``), checked like any name."""
    value = string(t, "node", where)
    if value is not None:
        check_name("node", value, f"{where}.node")
    return value


def _check_worker(cfg: TownConfig, where: str, role: str, preset: str, rig: str | None,
                  command: list[str] | None) -> None:
    if not role:
        raise ValidationError(f"{where}.role is required")
    check_name("role", role, where)
    if not preset:
        raise ValidationError(f"{where}.preset is required "
                              f"(one of {', '.join(sorted(cfg.presets))})")
    if preset not in cfg.presets:
        raise ValidationError(f"{where}.preset: unknown preset {preset!r} "
                              f"(known: {', '.join(sorted(cfg.presets))})")
    if not cfg.presets[preset].get("command") and not command:
        raise ValidationError(f"{where}.command is required with preset {preset!r}")
    if rig is not None and rig not in cfg.rigs:
        raise ValidationError(f"{where}.rig: no rig named {rig!r} "
                              "(add it with 'gt rig add NAME PATH')")


def _check_cross(cfg: TownConfig) -> None:
    """Names must be unambiguous: a sling target is an agent, a pool or a rig."""
    seen: dict[str, str] = {}
    for kind, names in (("agent", cfg.agents), ("pool", cfg.pools), ("rig", cfg.rigs)):
        for name in names:
            if name in seen and seen[name] != kind:
                raise ValidationError(f"{cfg.path}: {name!r} is both a {seen[name]} and a "
                                      f"{kind}; names of agents, pools and rigs must differ")
            seen[name] = kind
    for pool in cfg.pools.values():
        for n in range(1, pool.max + 1):
            if f"{pool.name}-{n}" in cfg.agents:
                raise ValidationError(f"{cfg.path}: agent {pool.name}-{n!s} clashes with a "
                                      f"worker of pool {pool.name!r}")
    for rig in cfg.rigs.values():
        if rig.pool is not None and rig.pool not in cfg.pools:
            raise ValidationError(f"{cfg.path}: rigs.{rig.name}.pool: no pool named {rig.pool!r}")
