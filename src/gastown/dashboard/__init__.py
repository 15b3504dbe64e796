"""``gt dashboard``: a live web view of a town (overview, beads, molecules, feed).

:mod:`.views` gathers the data (the same the ``/api/`` answers carry),
:mod:`.graph` draws a bead's dependencies as SVG, :mod:`.app` is the web
application (Starlette; optional dependencies, extra ``dashboard``).
"""

from __future__ import annotations

__all__ = ["create_app"]


def create_app(*args: object, **kwargs: object) -> object:
    """The dashboard's ASGI application (see :func:`gastown.dashboard.app.create_app`)."""
    from .app import create_app as _create

    return _create(*args, **kwargs)  # type: ignore[arg-type]
