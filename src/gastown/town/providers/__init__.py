"""Agent session providers: ``tmux`` (default) and ``subprocess`` (headless)."""

from __future__ import annotations

from ...errors import ValidationError
from .base import NudgeResult, Provider, SessionSpec, SessionState
from .subproc import SubprocessProvider
from .tmux import TmuxProvider

__all__ = ["Provider", "SessionSpec", "SessionState", "NudgeResult", "TmuxProvider",
           "SubprocessProvider", "make_provider", "KINDS"]

KINDS = ("tmux", "subprocess")


def make_provider(kind: str, gt_dir: str) -> Provider:
    """The provider called ``kind`` for a town whose runtime folder is ``gt_dir``."""
    if kind == "tmux":
        return TmuxProvider(gt_dir)
    if kind == "subprocess":
        return SubprocessProvider(gt_dir)
    raise ValidationError(f"unknown provider {kind!r}: use one of {', '.join(KINDS)}")
