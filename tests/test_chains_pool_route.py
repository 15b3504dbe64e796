"""``[pools.NAME] route = "skills"``: ready pool work goes to the slot whose chain fits it.

A real town (subprocess sessions, chains on); the slots' past work is real ledger work
(claim, close) recorded on their chains by the ledger's hook; the controller's pool
feeder runs one pass and the bead lands on the right slot's hook.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agents.controlkit import make_town, session_env  # noqa: F401 - a fixture
from agents.townkit import gt, sleeper, teardown_town
from gastown.controller.daemon import Controller
from gastown.controller.skillroute import REFRESH_S, SkillRouter
from gastown.errors import ValidationError
from gastown.town.core import Town

pytestmark = pytest.mark.usefixtures("session_env")

POOL = ('[pools.crew]\nrig = "textkit"\nrole = "worker"\npreset = "command"\nmax = 3\n'
        'route = "{route}"\ncommand = {command}\n')


def _town(tmp_path: Path, route: str) -> Town:
    town = make_town(tmp_path, provider="subprocess",
                     extra_toml=POOL.format(route=route, command=json.dumps(sleeper())))
    gt(town, "chain", "enable")
    return town


def _past_work(town: Town, slot: str, titles: list[str], label: str) -> None:
    """``slot`` claims and closes one bead per title (its chain records them)."""
    actor = town.actor_of(town.config.agent(slot))
    with town.ledger(actor) as led:
        for title in titles:
            bead = led.create(title, labels=[label])["id"]
            led.claim(bead)
            led.close_bead(bead)


def _history(town: Town) -> None:
    _past_work(town, "crew-2", ["Add index migration for orders", "Schema migration for "
                                "invoices", "Tune slow query on orders"], "database")
    _past_work(town, "crew-3", ["Write install guide", "Update README for release",
                                "Document the API reference"], "docs")


def _feed_once(town: Town) -> dict[str, list[str]]:
    ctl = Controller(town)
    ctl.setup()
    try:
        return ctl.feeder.feed()
    finally:
        ctl.dispatcher.pool.shutdown(wait=True)
        ctl.led.close()


def _holder(town: Town, bead: str) -> str:
    with town.ledger("tester") as led:
        return str(led.get(bead).get("assignee") or "").rsplit("/", 1)[-1]


def test_a_skills_pool_gives_work_to_the_slot_that_did_such_work(tmp_path: Path) -> None:
    town = _town(tmp_path, "skills")
    try:
        _history(town)
        with town.ledger("tester") as led:
            sql = led.create("Migration: partition the orders table",
                             labels=["pool:crew", "database"])["id"]
        fed = _feed_once(town)
        assert fed["slung"] == [sql]
        assert _holder(town, sql) == "crew-2"
        with town.ledger("tester") as led:
            docs = led.create("Update the install guide", labels=["pool:crew", "docs"])["id"]
            more_sql = led.create("Index for the slow invoices query",
                                  labels=["pool:crew", "database"])["id"]
        fed = _feed_once(town)
        assert sorted(fed["slung"]) == sorted([docs, more_sql])
        assert _holder(town, docs) == "crew-3"
        # crew-2, the best fit, is busy: the next free slot takes it
        assert _holder(town, more_sql) in ("crew-1", "crew-3") and _holder(town, more_sql) \
            != _holder(town, docs)
        _router_reads_again_only_when_due(town, docs)
    finally:
        teardown_town(town)


def _router_reads_again_only_when_due(town: Town, bead: str) -> None:
    """The records are read once per REFRESH_S at most, and again only if the log grew."""
    with town.ledger("tester") as led:
        router = SkillRouter(town, led)
        pool = town.config.pools["crew"]
        first = router.order(bead, pool)
        assert first[0] == "crew-3" and sorted(first) == ["crew-1", "crew-2", "crew-3"]
        seen = router._cached
        _past_work(town, "crew-1", ["Write a glossary"], "docs")
        router.order(bead, pool)
        assert router._cached is seen, "not read again within REFRESH_S"
        router._read_at -= REFRESH_S
        router.order(bead, pool)
        assert router._cached is not seen and router._cached is not None
        again = router._cached
        router._read_at -= REFRESH_S
        router.order(bead, pool)
        assert router._cached is again, "the log did not grow: nothing to read again"


def test_a_plain_pool_takes_the_first_free_slot(tmp_path: Path) -> None:
    town = _town(tmp_path, "first")
    try:
        _history(town)
        with town.ledger("tester") as led:
            sql = led.create("Migration: partition the orders table",
                             labels=["pool:crew", "database"])["id"]
        assert _feed_once(town)["slung"] == [sql]
        assert _holder(town, sql) == "crew-1"
    finally:
        teardown_town(town)


def test_a_route_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"pools.crew.route must be one of first, skills"):
        _town(tmp_path, "telepathy")
