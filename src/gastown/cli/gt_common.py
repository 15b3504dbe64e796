"""What the ``gt`` command modules share: the ``--town`` option and parser helpers."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from ._app import Ctx, Parser, common_options

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from ..town.core import Town

__all__ = ["add_parser", "add_actions", "get_town", "town_ledger", "parse_vars", "clean"]


def _town_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--town", default=argparse.SUPPRESS, metavar="DIR",
                   help="the town (default: $GT_TOWN, else found upward from here)")


def add_parser(sub: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    """One command's parser with the common options and ``--town``."""
    p: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text)
    common_options(p)
    _town_option(p)
    return p


def add_actions(p: argparse.ArgumentParser) -> Any:
    """Sub-actions (``gt rig add``); each gets the common options too."""
    return p.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)


def add_action(actions: Any, name: str, help_text: str) -> argparse.ArgumentParser:
    """One sub-action's parser."""
    p: argparse.ArgumentParser = actions.add_parser(name, help=help_text,
                                                    description=help_text)
    common_options(p)
    _town_option(p)
    return p


def get_town(ctx: Ctx) -> Town:
    """The town this command acts on."""
    from ..town.core import Town

    cached = getattr(ctx, "_town", None)
    if cached is None:
        cached = Town.find(getattr(ctx.args, "town", None))
        ctx._town = cached  # type: ignore[attr-defined]
    return cached


def town_ledger(ctx: Ctx) -> Ledger:
    """The town's ledger, opened once per command and closed with the context."""
    if ctx._ledger is None:  # noqa: SLF001 - Ctx closes what it holds
        ctx._ledger = get_town(ctx).ledger(ctx.actor)
    led: Ledger = ctx._ledger
    return led


def parse_vars(items: list[str] | None) -> dict[str, str]:
    """``--var NAME=VALUE`` options as a dict: the one parser ``bd`` uses too."""
    from ..chemistry.vars import parse_var_args

    return parse_var_args(items)


def acting(ctx: Ctx) -> str:
    """Who acts: ``--actor``, else the one rule (:func:`gastown.ledger.discovery.default_actor`)."""
    from ..ledger.discovery import default_actor

    return ctx.actor or default_actor()


def session_agent() -> str | None:
    """``$GT_AGENT`` when set: the calling agent's name, inside a session."""
    return os.environ.get("GT_AGENT") or None


def read_text_arg(value: str | None) -> str | None:
    """An option's text, or standard input when it is ``-``."""
    if value == "-":
        return sys.stdin.read()
    return value


def clean(text: Any) -> str:
    """Untrusted text for a terminal line: control characters removed."""
    from ..town.text import sanitize

    return sanitize(str(text if text is not None else ""))
