"""``[merge] order = "trust"``: the refinery lands requests of trusted towns first,
and an old request of a stranger still lands ahead of newcomers (no starvation).

Real git, a real town ledger, trust computed from real signed events (a NIP-02
follow list of this town's key), the refinery's own landing loop.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("coincurve")

from agents.controlkit import make_town, session_env  # noqa: E402,F401 - a fixture
from gastown.config.policies import MergePolicy, parse_policies  # noqa: E402
from gastown.controller.mergeq import controller_actor, queue  # noqa: E402
from gastown.controller.refinery import Refinery  # noqa: E402
from gastown.errors import ValidationError  # noqa: E402
from gastown.ledger.core import Ledger  # noqa: E402
from gastown.mesh import identity, keys, kinds, store, sync  # noqa: E402
from gastown.mesh.events import sign  # noqa: E402
from gastown.mesh.priority import merge_key, trust_of  # noqa: E402
from gastown.town.core import Town  # noqa: E402
from test_refinery import _branch  # noqa: E402

pytestmark = pytest.mark.usefixtures("session_env")

GOOD, NEW = "gt://good.example/g", "gt://new.example/n"


def _mr(led: Ledger, branch: str, commit: str, town: str, priority: int = 2) -> str:
    bead = led.create(f"Merge {branch}", issue_type="merge-request", priority=priority,
                      metadata={"branch": branch, "commit": commit, "base": "main",
                                "rig": "textkit", "author": "textkit/worker/ada",
                                "agent": "ada", "town": town})
    return str(bead["id"])


def _trust_setup(town: Town, led: Ledger) -> None:
    """Pin two towns; this town follows GOOD (trust 0.35) and not NEW (a stranger: 0)."""
    good = keys.entity_secret(b"\x07" * 32, "town")[1]
    new = keys.entity_secret(b"\x08" * 32, "town")[1]
    store.add_peer(led, "good", GOOD, good)
    store.add_peer(led, "new", NEW, new)
    me = identity.load(town.config, town.gt_dir, led)
    follows = sign(me.key()[0], kinds.FOLLOWS, "", [["gt", me.uri], ["p", good]])
    sync.post(led, [me.manifest(), follows])


def test_merge_order_setting_is_checked() -> None:
    assert parse_policies({}).merge.order == "priority"
    assert parse_policies({"merge": {"order": "trust"}}).merge.order == "trust"
    with pytest.raises(ValidationError, match=r"merge\.order must be one of priority, trust"):
        parse_policies({"merge": {"order": "lifo"}}, "town.toml")


def test_trusted_towns_land_first_and_an_old_strangers_request_is_not_starved(
        tmp_path: Path) -> None:
    town = make_town(tmp_path, push=False, test=[])
    stranger = _branch(town, tmp_path, "new/one", {"NEW.md": "from a stranger\n"})
    trusted = _branch(town, tmp_path, "good/one", {"GOOD.md": "from a friend\n"})
    with town.ledger(controller_actor(town)) as led:
        _trust_setup(town, led)
        score = trust_of(led, town.config, town.gt_dir)
        assert score(GOOD) == pytest.approx(0.35) and score(NEW) == 0.0
        first = _mr(led, "new/one", stranger, NEW)   # queued first ...
        second = _mr(led, "good/one", trusted, GOOD)  # ... the trusted one after
        # the default order lands the older request first; the trust order does not
        assert [b["id"] for b in queue(led, 600)] == [first, second]
        refinery = Refinery(town, led, MergePolicy(order="trust"), controller_actor(town),
                            threading.Event())
        outcomes = refinery.run_target("textkit", "main")
        assert [(o.mr, o.result) for o in outcomes] == [(second, "merged"), (first, "merged")]

        # no starvation: the stranger's priority-3 request against a stream of fresh
        # priority-0, urgent requests from the trusted town, one per aging period
        old = dict(led.get(_mr(led, "new/two", stranger, NEW, priority=3)))
        t0 = time.time()
        heads = []
        for rnd in range(12):
            at = t0 + rnd * 600
            fresh = {"id": f"fresh-{rnd}", "priority": 0, "labels": ["urgent"],
                     "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)),
                     "metadata": {"town": GOOD}}
            key = merge_key(led, town.config, town.gt_dir, 600, now=at)
            heads.append(min([old, fresh], key=key)["id"])
            if heads[-1] == old["id"]:
                break
        assert heads[0] == "fresh-0" and heads[-1] == old["id"], heads
        assert len(heads) <= 7, heads  # (3 + 3 levels of bonus) agings at most


def test_town_toml_selects_the_trust_order(tmp_path: Path) -> None:
    town = make_town(tmp_path, push=False, test=[], extra_toml='[merge]\norder = "trust"\n')
    assert town.config.policies.merge.order == "trust"
    with town.ledger(controller_actor(town)) as led:
        _trust_setup(town, led)
        a = _mr(led, "x/a", "0" * 40, NEW)
        b = _mr(led, "x/b", "1" * 40, GOOD)
        refinery = Refinery(town, led, town.config.policies.merge, controller_actor(town),
                            threading.Event())
        assert refinery.next_request("textkit", "main")["id"] == b  # type: ignore[index]
        assert [x["id"] for x in queue(led, 600)] == [a, b]
