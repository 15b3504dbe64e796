"""``Ledger.blocked(limit=N)`` pays for ``blocked_by`` only on the N beads it returns.

The dashboard's overview lists 20 blocked beads of a town that may hold thousands
(issue 12): the whole number comes from ``blocked_count``, one COUNT.
"""

from __future__ import annotations

from typing import Any

import pytest

from gastown import Ledger
from gastown.dashboard.views import LISTED, ledger_summary
from gastown.ledger.ops import Txn


def _blocked_town(ledger: Ledger, n: int) -> str:
    """``n`` beads each blocked by one open blocker; returns the blocker's id."""
    blocker = ledger.create("the blocker", priority=0)["id"]
    with ledger.transaction() as t:
        for i in range(n):
            t.create(f"waits {i}", priority=i % 4, deps=[("blocks", blocker)])
    return str(blocker)


def _count_blockers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = Txn.open_blockers

    def counting(self: Txn, bead_id: str, *a: Any, **k: Any) -> Any:
        calls.append(bead_id)
        return real(self, bead_id, *a, **k)

    monkeypatch.setattr(Txn, "open_blockers", counting)
    return calls


def test_blocked_limit_keeps_the_first_in_order_and_count_is_whole(ledger: Ledger) -> None:
    blocker = _blocked_town(ledger, 7)
    whole = ledger.blocked()
    assert len(whole) == 7 and ledger.blocked_count() == 7
    first = ledger.blocked(limit=3)
    assert [b["id"] for b in first] == [b["id"] for b in whole[:3]]
    assert all(b["blocked_by"] == [blocker] for b in first)
    assert ledger.blocked(limit=0) == whole


def test_the_dashboard_summary_computes_blocked_by_only_for_what_it_lists(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = _blocked_town(ledger, LISTED + 15)
    calls = _count_blockers(monkeypatch)
    summary = ledger_summary(ledger)
    assert summary["blocked"]["count"] == LISTED + 15
    assert len(summary["blocked"]["beads"]) == LISTED
    assert all(b["blocked_by"] == [blocker] for b in summary["blocked"]["beads"])
    assert len(calls) == LISTED, f"blocked_by computed for {len(calls)} beads"


def test_a_deferred_bead_is_neither_ready_nor_blocked(ledger: Ledger) -> None:
    """The rule lives in the ledger, so every reader (bd blocked, bd status, the
    dashboard) agrees: a deferred bead is on ice, counted apart."""
    blocker = _blocked_town(ledger, 2)
    held = ledger.create("held and deferred", deps=[("blocks", blocker)])["id"]
    iced = ledger.create("deferred, nothing blocks it")["id"]
    before = ledger.blocked_count()
    ledger.update(held, status="deferred")
    ledger.update(iced, status="deferred")
    listed = {b["id"] for b in ledger.blocked()}
    assert held not in listed and iced not in listed
    assert ledger.blocked_count() == before - 1 == len(listed)
    assert iced not in {b["id"] for b in ledger.ready()}
