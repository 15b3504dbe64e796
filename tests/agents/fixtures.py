"""Fixtures of the town tests (load with ``pytest_plugins = ("agents.fixtures",)``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agents.townkit import EMAIL, LEAKY, make_repo, teardown_town
from gastown.town.core import Town, init_town
from gastown.town.rigs import add_rig


@pytest.fixture
def source_repo(tmp_path: Path) -> Path:
    """A local git repository with one commit on ``main``."""
    return make_repo(tmp_path / "src")


@pytest.fixture
def town(tmp_path: Path, source_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Town]:
    """A town with the rig ``app`` over ``source_repo``; this process acts as ``tester``."""
    for var in LEAKY:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("BD_ACTOR", "tester")
    t = init_town(str(tmp_path / "town"), email=EMAIL, actor="tester")
    add_rig(t, "app", str(source_repo), actor="tester")
    try:
        yield t
    finally:
        teardown_town(t)
