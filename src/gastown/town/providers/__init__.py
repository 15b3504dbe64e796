"""Agent session providers, registered by name.

A provider is registered in the entry-point group ``gastown.providers``
(``name = "module:Class"``, a :class:`Provider` subclass); the shipped ``tmux``
(default) and ``subprocess`` (headless) providers are registered the same way
in gastown's ``pyproject.toml``.  Each provider reads its own options from
``[providers.NAME]`` in ``town.toml`` (:meth:`Provider.parse_options`).
"""

from __future__ import annotations

import functools
import importlib
from typing import TYPE_CHECKING, Any

from ...config.providers import check_provider, provider_entries, provider_names
from ...errors import ValidationError
from .base import NudgeResult, Provider, SessionSpec, SessionState
from .subproc import SubprocessProvider
from .tmux import TmuxProvider

if TYPE_CHECKING:
    from ...config.schema import TownConfig

__all__ = ["Provider", "SessionSpec", "SessionState", "NudgeResult", "TmuxProvider",
           "SubprocessProvider", "make_provider", "provider_class", "provider_names",
           "check_provider_options"]


@functools.cache
def _load(kind: str, target: str) -> type[Provider]:
    module, _, attr = target.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split(".") if attr else ():
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ValidationError(f"provider {kind!r} ({target}) cannot be loaded: {exc}") from None
    if not (isinstance(obj, type) and issubclass(obj, Provider)):
        raise ValidationError(f"provider {kind!r} ({target}) is not a Provider class")
    return obj


def provider_class(kind: str, where: str = "provider") -> type[Provider]:
    """The class registered as ``kind`` (one clear line when no provider has that name)."""
    check_provider(kind, where)
    return _load(kind, provider_entries()[kind])


def make_provider(kind: str, gt_dir: str, options: dict[str, Any] | None = None,
                  where: str | None = None) -> Provider:
    """The provider called ``kind`` for a town whose runtime folder is ``gt_dir``.

    ``options`` is its ``[providers.KIND]`` table (``where`` names it in errors).
    """
    cls = provider_class(kind)
    kwargs = cls.parse_options(dict(options or {}), where or f"providers.{kind}")
    return cls(gt_dir, **kwargs)


def check_provider_options(cfg: TownConfig) -> None:
    """Let every provider with a ``[providers.NAME]`` table validate its options."""
    for kind, options in cfg.providers.items():
        where = f"{cfg.path}: providers.{kind}"
        provider_class(kind, where).parse_options(dict(options), where)
