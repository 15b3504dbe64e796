"""``town.toml``: loading, validating and editing a town's configuration.

The file is the person's: edits made by ``gt rig add`` / ``gt agent add`` are
textual (a table appended, a table removed) so their comments survive, and every
edit is re-parsed and validated before it is written.  Every mistake is reported
as one line naming the file and the key.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from ..errors import NotFoundError, ValidationError

__all__ = [
    "CONFIG_FILE", "NAME_RE", "TownSettings", "RigConfig", "AgentConfig", "PoolConfig",
    "RoleConfig", "TownConfig", "load_config", "parse_config", "default_config_text",
    "append_table", "remove_table", "toml_value", "check_name",
]

CONFIG_FILE = "town.toml"
#: names of rigs, agents, pools, roles and groups: they become paths, tmux session
#: names and git branch components, so they are kept to a safe alphabet
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
PROVIDERS = ("tmux", "subprocess")


def check_name(kind: str, name: str, where: str = "") -> str:
    """``name`` if it is a valid rig/agent/pool/role name, else a one-line error."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        at = f"{where}: " if where else ""
        raise ValidationError(
            f"{at}invalid {kind} name {name!r}: use letters, digits, '-' and '_' "
            "(starting with a letter or digit, at most 63 characters)")
    return name


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

    def slot(self, n: int) -> AgentConfig:
        """The agent that fills slot ``n`` (1-based) of this pool."""
        return AgentConfig(name=f"{self.name}-{n}", role=self.role, preset=self.preset,
                           rig=self.rig, command=self.command, args=self.args,
                           provider=self.provider, env=dict(self.env), pool=self.name)


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
    raw: dict[str, Any] = field(default_factory=dict)

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


# ---------------------------------------------------------------- loading
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


def _table(data: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ValidationError(f"{path}: [{key}] must be a table")
    return value


def _str(t: dict[str, Any], key: str, where: str, default: str | None = None) -> str | None:
    value = t.get(key, default)
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"{where}.{key} must be a string, not {type(value).__name__}")
    return value


def _strlist(t: dict[str, Any], key: str, where: str) -> list[str] | None:
    value = t.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(f"{where}.{key} must be a list of strings")
    return list(value)


def _command(t: dict[str, Any], where: str) -> list[str] | None:
    """``command`` as a string (split once, like a shell would, but never run by one) or list."""
    from ..controller.policies import parse_command

    return parse_command(t.get("command"), f"{where}.command")


def _env(t: dict[str, Any], where: str) -> dict[str, str]:
    value = t.get("env", {})
    if not isinstance(value, dict):
        raise ValidationError(f"{where}.env must be a table of strings")
    out: dict[str, str] = {}
    for k, v in value.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k) or not isinstance(v, str):
            raise ValidationError(f"{where}.env.{k}: names are identifiers, values strings")
        out[k] = v
    return out


def _provider(t: dict[str, Any], where: str, default: str | None) -> str | None:
    value = _str(t, "provider", where, default)
    if value is not None and value not in PROVIDERS:
        raise ValidationError(f"{where}.provider must be one of {', '.join(PROVIDERS)}, "
                              f"not {value!r}")
    return value


def _known(t: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(t) - allowed)
    if unknown:
        raise ValidationError(f"{where}: unknown key(s) {', '.join(unknown)} "
                              f"(known: {', '.join(sorted(allowed))})")


def parse_config(data: dict[str, Any], path: str = CONFIG_FILE) -> TownConfig:
    """Validate parsed TOML ``data`` into a :class:`TownConfig` (``path`` is for messages)."""
    from ..controller.policies import TABLES, parse_command, parse_policies
    from .agents import load_presets

    _known(data, {"town", "rigs", "agents", "pools", "roles", "groups", "presets", *TABLES},
           path)
    parse_policies(data, path)  # the controller's tables: refuse mistakes at load time
    t = _table(data, "town", path)
    where = f"{path}: town"
    _known(t, {"name", "prefix", "provider", "email", "formula_paths", "escalate_to",
               "default_role"}, where)
    default_name = os.path.basename(os.path.dirname(os.path.abspath(path))) or "town"
    settings = TownSettings(
        name=_str(t, "name", where, default_name) or default_name,
        prefix=_str(t, "prefix", where, "gt") or "gt",
        provider=_provider(t, where, "tmux") or "tmux",
        email=_str(t, "email", where, "gastown@localhost") or "gastown@localhost",
        formula_paths=_strlist(t, "formula_paths", where) or [],
        escalate_to=_str(t, "escalate_to", where),
        default_role=_str(t, "default_role", where))
    presets = load_presets(_table(data, "presets", path), path)
    cfg = TownConfig(path=path, town=settings, presets=presets, raw=data)

    for name, r in _table(data, "roles", path).items():
        where = f"{path}: roles.{name}"
        check_name("role", name, path)
        if not isinstance(r, dict):
            raise ValidationError(f"{where} must be a table")
        _known(r, {"description", "template"}, where)
        cfg.roles[name] = RoleConfig(name, _str(r, "description", where, "") or "",
                                     _str(r, "template", where))
    for name, r in _table(data, "rigs", path).items():
        where = f"{path}: rigs.{name}"
        check_name("rig", name, path)
        if not isinstance(r, dict):
            raise ValidationError(f"{where} must be a table")
        _known(r, {"source", "branch", "pool", "push", "test", "land"}, where)
        source = _str(r, "source", where)
        if not source:
            raise ValidationError(f"{where}.source is required (the path or URL cloned)")
        push = r.get("push", False)
        if not isinstance(push, bool):
            raise ValidationError(f"{where}.push must be true or false")
        cfg.rigs[name] = RigConfig(name, source, _str(r, "branch", where, "main") or "main",
                                   _str(r, "pool", where), push,
                                   test=parse_command(r.get("test"), f"{where}.test"),
                                   land=parse_command(r.get("land"), f"{where}.land"))
    worker_keys = {"rig", "role", "preset", "command", "args", "provider", "env"}
    for name, a in _table(data, "agents", path).items():
        where = f"{path}: agents.{name}"
        check_name("agent", name, path)
        if not isinstance(a, dict):
            raise ValidationError(f"{where} must be a table")
        _known(a, worker_keys, where)
        cfg.agents[name] = AgentConfig(
            name=name, role=_str(a, "role", where) or "", preset=_str(a, "preset", where) or "",
            rig=_str(a, "rig", where), command=_command(a, where), args=_strlist(a, "args", where),
            provider=_provider(a, where, None), env=_env(a, where))
        _check_worker(cfg, where, cfg.agents[name].role, cfg.agents[name].preset,
                      cfg.agents[name].rig, cfg.agents[name].command)
    for name, p in _table(data, "pools", path).items():
        where = f"{path}: pools.{name}"
        check_name("pool", name, path)
        if not isinstance(p, dict):
            raise ValidationError(f"{where} must be a table")
        _known(p, worker_keys | {"max"}, where)
        size = p.get("max", 3)
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 64:
            raise ValidationError(f"{where}.max must be an integer from 1 to 64")
        rig = _str(p, "rig", where)
        if not rig:
            raise ValidationError(f"{where}.rig is required (pool workers work on a rig)")
        cfg.pools[name] = PoolConfig(
            name=name, rig=rig, role=_str(p, "role", where) or "",
            preset=_str(p, "preset", where) or "", max=size, command=_command(p, where),
            args=_strlist(p, "args", where), provider=_provider(p, where, None),
            env=_env(p, where))
        _check_worker(cfg, where, cfg.pools[name].role, cfg.pools[name].preset, rig,
                      cfg.pools[name].command)
    for name, g in _table(data, "groups", path).items():
        where = f"{path}: groups.{name}"
        check_name("group", name, path)
        if not isinstance(g, dict):
            raise ValidationError(f"{where} must be a table")
        _known(g, {"members"}, where)
        cfg.groups[name] = _strlist(g, "members", where) or []
    _check_cross(cfg)
    return cfg


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


# ------------------------------------------------------------- writing
def default_config_text(name: str, prefix: str, email: str) -> str:
    """The commented default ``town.toml`` for a new town."""
    text = resources.files("gastown").joinpath("data/town.toml").read_text(encoding="utf-8")
    for key, value in (("name", name), ("prefix", prefix), ("email", email)):
        # the values land inside TOML basic strings: escape them as such
        text = text.replace("{{" + key + "}}", toml_value(value)[1:-1])
    return text


def toml_value(value: Any) -> str:
    """One TOML value (strings, booleans, integers, lists and flat tables of them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        out = []
        for ch in value:
            if ch in '"\\':
                out.append("\\" + ch)
            elif ord(ch) < 0x20 or ord(ch) == 0x7F:
                out.append(f"\\u{ord(ch):04x}")
            else:
                out.append(ch)
        return '"' + "".join(out) + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else toml_value(key)


def _header_re(dotted: str) -> re.Pattern[str]:
    parts = dotted.split(".")
    pat = r"\s*\.\s*".join(rf"(?:{re.escape(p)}|\"{re.escape(p)}\")" for p in parts)
    return re.compile(rf"^\s*\[\s*{pat}\s*\]\s*(#.*)?$")


def append_table(path: str, dotted: str, values: dict[str, Any], comment: str = "") -> None:
    """Append ``[dotted]`` with ``values`` to the file, validating the result first."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    block = ["", f"# {comment}" if comment else "", f"[{dotted}]"]
    block += [f"{_key(k)} = {toml_value(v)}" for k, v in values.items() if v is not None]
    new = text.rstrip("\n") + "\n" + "\n".join(line for line in block if line is not None) + "\n"
    new = new.replace("\n\n\n", "\n\n")
    _write_validated(path, new)


def remove_table(path: str, dotted: str) -> bool:
    """Remove ``[dotted]`` and its sub-tables from the file; False when it is not there."""
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines(keepends=True)
    head = _header_re(dotted)
    sub = re.compile(r"^\s*\[\s*" + re.escape(dotted) + r"\.")
    out: list[str] = []
    skipping = found = False
    for line in lines:
        if re.match(r"^\s*\[", line):
            if head.match(line) or sub.match(line):
                skipping = found = True
                # the note `append_table` wrote above the table goes with it
                if out and out[-1].startswith("# added by gt "):
                    out.pop()
                    if out and not out[-1].strip():
                        out.pop()
                continue
            skipping = False
        if not skipping:
            out.append(line)
    if not found:
        return False
    _write_validated(path, "".join(out))
    return True


def _write_validated(path: str, text: str) -> None:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"{path}: the edit would make it invalid TOML ({exc}); "
                              "edit the file by hand") from None
    parse_config(data, path)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)
