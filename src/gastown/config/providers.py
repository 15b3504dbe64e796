"""Provider names: what ``provider = "…"`` and ``[providers.NAME]`` may say.

Session providers register by name in the entry-point group
``gastown.providers`` (``name = "module:Class"``); the shipped ``tmux`` and
``subprocess`` providers are registered there too, in gastown's own
``pyproject.toml``.  This module reads the names from the installed metadata
only (nothing is imported), so validating ``town.toml`` stays cheap;
:mod:`gastown.town.providers` loads the classes.  A source checkout that was
never installed has no metadata: the shipped providers are then used by the
same names.
"""

from __future__ import annotations

import functools

from ..errors import ValidationError

__all__ = ["PROVIDER_GROUP", "SHIPPED_PROVIDERS", "provider_entries", "provider_names",
           "check_provider"]

PROVIDER_GROUP = "gastown.providers"
#: the shipped providers, as registered in pyproject.toml (the fallback without metadata)
SHIPPED_PROVIDERS = {
    "tmux": "gastown.town.providers.tmux:TmuxProvider",
    "subprocess": "gastown.town.providers.subproc:SubprocessProvider",
}


@functools.lru_cache(maxsize=1)
def provider_entries() -> dict[str, str]:
    """``name -> "module:attr"`` of every registered provider (shipped ones included)."""
    from importlib import metadata  # only when a provider is looked up: it is not cheap

    found: dict[str, str] = {}
    try:
        entries = metadata.entry_points(group=PROVIDER_GROUP)
        for ep in entries:
            found.setdefault(ep.name, ep.value)
    except Exception:  # broken metadata of some other distribution: keep the shipped ones
        pass
    for name, target in SHIPPED_PROVIDERS.items():
        found.setdefault(name, target)
    return found


def provider_names() -> list[str]:
    """The registered provider names, sorted."""
    return sorted(provider_entries())


def check_provider(name: object, where: str) -> str:
    """``name`` if a provider is registered by it, else one line naming it and the known ones."""
    if not isinstance(name, str):
        raise ValidationError(f"{where} must be a string (a provider name: "
                              f"{', '.join(provider_names())})")
    if name not in SHIPPED_PROVIDERS and name not in provider_entries():
        raise ValidationError(f"{where}: unknown provider {name!r} "
                              f"(known: {', '.join(provider_names())})")
    return name
