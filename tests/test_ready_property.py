"""Property tests: the incrementally maintained ready state equals the rule computed
from scratch, after any sequence of operations, on both backends.

(a) ``ledger.ready()`` ids == ``ready.reference_ready`` over the raw rows;
(b) ``recompute_ready_state()`` finds nothing to fix (returns 0 and leaves the
    stored ``self_held``/``held``/``hold_until`` columns as they were).

The ``ledger`` fixture is function scoped, so each hypothesis example empties
all tables first (``helpers.ledgertools.reset``): a fresh ledger per example.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gastown import Ledger
from gastown.errors import CycleError, GastownError
from gastown.ledger.model import DEP_TYPES
from helpers.ledgertools import ready_ids, ready_state, reference_ready_ids, reset

PAST = "2001-01-01T00:00:00Z"
FUTURE = "2099-01-01T00:00:00Z"

# blocking and parent-child edges are the interesting ones: weight them up
EDGE_TYPES = st.sampled_from(["blocks", "blocks", "conditional-blocks", "waits-for",
                              "waits-for", "waits-for", "parent-child", "parent-child",
                              "related", "discovered-from", "tracks", "parent_child",
                              "custom-kind", *DEP_TYPES[4:8]])
STATUS = st.sampled_from(["open", "open", "in_progress", "blocked", "deferred", "closed",
                          "closed", "pinned", "hooked"])
IDX = st.integers(min_value=0, max_value=40)
DEFER = st.sampled_from([None, PAST, FUTURE])

CREATE = st.tuples(
    st.just("create"),
    st.sampled_from([None, 0, 1, 2, 3, 5, 8, 13, 21]),  # parent (index into the beads)
    st.lists(st.tuples(EDGE_TYPES, IDX), max_size=3),  # deps
    st.sampled_from(["open", "open", "open", "open", "in_progress", "blocked", "deferred",
                     "closed", "closed", "pinned"]),
    st.sampled_from(["task", "task", "task", "bug", "epic", "gate", "molecule"]),
    st.sampled_from([None, None, None, None, "pinned", "ephemeral", "is_template"]),
    st.sampled_from([None, None, PAST, FUTURE]),
    st.integers(min_value=0, max_value=4))

# st.one_of picks its branches evenly: the state-changing operations that move
# beads in and out of "active" and "closed" are listed more than once
OPS = st.one_of(
    CREATE,
    st.tuples(st.just("add_dep"), IDX, IDX, EDGE_TYPES),
    st.tuples(st.just("add_dep"), IDX, IDX, st.sampled_from(["waits-for", "parent-child"])),
    st.tuples(st.just("remove_dep"), IDX),
    st.tuples(st.just("status"), IDX, STATUS),
    st.tuples(st.just("status"), IDX, STATUS),
    st.tuples(st.just("close"), IDX, st.booleans()),
    st.tuples(st.just("close"), IDX, st.just(True)),
    st.tuples(st.just("reopen"), IDX),
    st.tuples(st.just("delete"), IDX, st.booleans()),
    st.tuples(st.just("defer"), IDX, DEFER),
    st.tuples(st.just("claim"), IDX),
)


def _pick(ids: list[str], i: int) -> str:
    return ids[i % len(ids)]


def _edges(ledger: Ledger, ids: list[str]) -> list[tuple[str, str, str]]:
    """Every edge, in an order that does not depend on the (random) ids themselves."""
    pos = {bead_id: n for n, bead_id in enumerate(ids)}
    with ledger.store.read() as tx:
        rows = [tuple(r) for r in tx.query(
            "SELECT issue_id, depends_on_id, type FROM dependencies")]
    return sorted(rows, key=lambda e: (pos.get(e[0], -1), pos.get(e[1], -1), e[2]))


def apply(ledger: Ledger, ids: list[str], op: tuple[Any, ...]) -> None:
    """Apply one operation; refusals (cycles, conflicts, unknown ids) are part of the game."""
    kind = op[0]
    try:
        if kind == "create":
            _, parent, deps, status, issue_type, flag, defer, prio = op
            kwargs: dict[str, Any] = dict(status=status, issue_type=issue_type, priority=prio,
                                          defer_until=defer)
            if flag:
                kwargs[flag] = True
            if ids and parent is not None:
                kwargs["parent"] = _pick(ids, parent)
            if ids:
                kwargs["deps"] = [(t, _pick(ids, j)) for t, j in deps if t != "parent-child"]
            ids.append(ledger.create(f"bead {len(ids)}", **kwargs).id)
            return
        if not ids:
            return
        if kind == "add_dep":
            ledger.add_dep(_pick(ids, op[1]), _pick(ids, op[2]), op[3])
        elif kind == "remove_dep":
            edges = _edges(ledger, ids)
            if edges:
                src, dst, typ = edges[op[1] % len(edges)]
                ledger.remove_dep(src, dst, typ)
        elif kind == "status":
            ledger.update(_pick(ids, op[1]), status=op[2])
        elif kind == "close":
            ledger.close_bead(_pick(ids, op[1]), force=op[2])
        elif kind == "reopen":
            ledger.reopen(_pick(ids, op[1]))
        elif kind == "delete":
            ledger.delete(_pick(ids, op[1]), cascade=op[2])
        elif kind == "defer":
            ledger.update(_pick(ids, op[1]), defer_until=op[2])
        elif kind == "claim":
            ledger.claim(_pick(ids, op[1]), assignee="prop")
    except GastownError:
        pass


def check(ledger: Ledger, where: str) -> None:
    expected = reference_ready_ids(ledger)
    assert ready_ids(ledger) == expected, where
    assert [b["id"] for b in json.loads(ledger.ready_json())] == expected, where
    stored = ready_state(ledger)
    assert ledger.recompute_ready_state() == 0, where
    assert ready_state(ledger) == stored, where


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(seed=st.lists(CREATE, min_size=3, max_size=10),
       ops=st.lists(OPS, min_size=5, max_size=30))
def test_incremental_ready_state_matches_reference(ledger: Ledger, seed: list[tuple],
                                                   ops: list[tuple]) -> None:
    reset(ledger)
    ids: list[str] = []
    for op in seed:
        apply(ledger, ids, op)
    check(ledger, "after the seed beads")
    for n, op in enumerate(ops):
        apply(ledger, ids, op)
        check(ledger, f"after op {n}: {op!r}")


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    shape=st.lists(st.tuples(st.one_of(st.none(), IDX),
                             st.lists(st.tuples(EDGE_TYPES, IDX), max_size=2)),
                   min_size=1, max_size=15),
    later=st.lists(OPS, max_size=10),
)
def test_batched_creates_in_one_transaction(ledger: Ledger, shape: list[tuple],
                                            later: list[tuple]) -> None:
    """A whole graph created in one transaction (a molecule pour) is consistent too."""
    reset(ledger)
    ids: list[str] = []
    with ledger.transaction() as t:
        for parent, deps in shape:
            kwargs: dict[str, Any] = {}
            if ids and parent is not None:
                p = _pick(ids, parent)
                if p.count(".") < 3:
                    kwargs["parent"] = p
            if ids:
                kwargs["deps"] = [(typ, _pick(ids, j)) for typ, j in deps]
            try:
                ids.append(t.create(f"step {len(ids)}", **kwargs).id)
            except CycleError:
                # a blocking edge to its own ancestor is refused before anything is
                # written; create the step without its edges instead
                kwargs.pop("deps")
                ids.append(t.create(f"step {len(ids)}", **kwargs).id)
    check(ledger, "after the batch")
    for n, op in enumerate(later):
        apply(ledger, ids, op)
        check(ledger, f"after op {n}: {op!r}")
