"""Skills from work and capability matching (gastown.chains.skills, gastown.chains.match).

The main check: on a generated history where agents specialise (frontend .tsx/.css,
SQL migrations, docs, backend, ops, plus a generalist), ``rank`` puts the specialist
first for new work of its kind -- precision@1 over 60 new beads that, like a fresh
bead, mostly have only a title and perhaps a label (files are known at merge).
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from cv_history import KINDS, REFINERY, T0, History, agent, new_work, specialised
from gastown.chains.cvinput import read_records
from gastown.chains.match import candidates, rank
from gastown.chains.skills import OUTCOME_WEIGHTS, skills_of
from gastown.errors import ValidationError

NOW = T0 + timedelta(days=30)


def test_the_specialist_ranks_first_for_new_work_of_its_kind() -> None:
    history = specialised(seed=7, per_agent=40)
    pool = candidates(history.records, now=NOW)
    assert len(pool.entities) == len(KINDS) + 1  # the specialists and the generalist
    rng = random.Random(2026)
    hits = total = 0
    for kind in sorted(KINDS):
        for _ in range(12):
            work = new_work(rng, kind, files=rng.random() < 0.25)
            top = rank(work, pool, top=1)[0]
            hits += top["entity"] == agent(kind)
            total += 1
    precision = hits / total
    print(f"\nprecision@1 over {total} new beads: {precision:.3f}")
    assert total >= 50 and precision >= 0.9


def test_other_seeds_agree() -> None:
    """Not one lucky history: three more, with more off-kind work and fewer beads."""
    for seed in (11, 12, 13):
        pool = candidates(specialised(seed=seed, per_agent=25, off_kind=0.2).records, now=NOW)
        rng = random.Random(seed)
        kinds = sorted(KINDS) * 8
        hits = sum(rank(new_work(rng, k, files=False), pool, top=1)[0]["entity"] == agent(k)
                   for k in kinds)
        assert hits / len(kinds) >= 0.85, (seed, hits)


def test_a_match_is_explained_by_terms_and_past_beads() -> None:
    history = specialised(seed=7, per_agent=40)
    pool = candidates(history.records, now=NOW)
    work = {"title": "add dark mode toggle to navbar", "labels": ["frontend"],
            "files": ["web/src/components/navbar.tsx"]}
    best = rank(work, pool)[0]
    assert best["entity"] == agent("frontend")
    terms = [e["term"] for e in best["evidence"]]
    assert "ext:tsx" in terms and "label:frontend" in terms
    mine = {r["bead"] for r in history.records
            if r["kind"] == "completed" and r["entity"] == agent("frontend")}
    for item in best["evidence"]:
        assert item["beads"] and {b["bead"] for b in item["beads"]} <= mine
    assert sum(e["share"] for e in best["evidence"]) <= 1.0 + 1e-9
    assert best["score"] == pytest.approx(best["similarity"] * best["factor"], abs=1e-5)


def test_the_files_of_a_merge_join_the_work_it_validated() -> None:
    # the completions name no files; the refinery's validations do (cv_history)
    history = specialised(seed=7, per_agent=40)
    assert not any(r["work"]["files"] for r in history.records if r["kind"] == "completed")
    top = [s["term"] for s in skills_of(history.records, agent("sql")).top(8)]
    assert "ext:sql" in top and "dir:migrations" in top


def _twin_history(names: list[str], verdicts: dict[str, str]) -> History:
    h = History()
    for i in range(6):
        for name in names:
            h.bead(f"gt-{name[-1]}{i}", name, {"title": f"tune slow query {i}",
                                                 "labels": ["database"],
                                                 "files": ["db/q.sql"]},
                   verdicts.get(name, "validated"))
    return h


def test_ties_go_by_name_and_the_unskilled_come_last() -> None:
    names = ["entity://gt/acme/b", "entity://gt/acme/a"]
    h = _twin_history(names, {})
    pool = candidates(h.records, now=NOW, entities=[*names, "entity://gt/acme/c",
                                                    "entity://gt/acme/0"])
    ranked = rank({"title": "tune slow query"}, pool)
    assert [r["entity"] for r in ranked] == ["entity://gt/acme/a", "entity://gt/acme/b",
                                             "entity://gt/acme/0", "entity://gt/acme/c"]
    assert ranked[0]["score"] == ranked[1]["score"] > 0
    assert ranked[2]["score"] == 0 and ranked[2]["evidence"] == []


def test_reputation_orders_equal_skills() -> None:
    names = ["entity://gt/acme/a", "entity://gt/acme/b"]
    h = _twin_history(names, {"entity://gt/acme/a": "rejected"})
    ranked = rank({"title": "tune slow query"}, candidates(h.records, now=NOW))
    assert [r["entity"] for r in ranked] == ["entity://gt/acme/b", "entity://gt/acme/a"]
    assert ranked[0]["reputation"] > ranked[1]["reputation"]


def test_validated_work_counts_more_than_rejected_work() -> None:
    h = History()
    me = agent("frontend")
    h.bead("gt-1", me, {"title": "navbar", "files": ["a.tsx"]}, "validated")
    h.bead("gt-2", me, {"title": "migration", "files": ["b.sql"]}, "rejected")
    # never judged: no merge, so its files come with the completion itself here
    h.add(me, "completed", "gt-3", work={"title": "readme", "files": ["c.md"]})
    skills = skills_of(h.records, me)
    # the three beads have the same shape, so their vectors differ only in names
    assert skills.vector["ext:tsx"] / skills.vector["ext:sql"] == pytest.approx(
        OUTCOME_WEIGHTS["validated"] / OUTCOME_WEIGHTS["rejected"])
    assert skills.vector["ext:md"] / skills.vector["ext:sql"] == pytest.approx(
        OUTCOME_WEIGHTS[None] / OUTCOME_WEIGHTS["rejected"])
    assert skills.top(1)[0]["evidence"] == [{"bead": "gt-1", "title": "navbar"}]


def test_the_model_is_deterministic_and_bounded() -> None:
    recs = specialised(seed=5, per_agent=10).records
    work = {"title": "update install guide", "labels": ["docs"]}
    a = rank(work, candidates(recs, now=NOW))
    b = rank(work, candidates(list(reversed(recs)), now=NOW))
    assert a == b
    huge = {"title": "word " * 400, "files": [f"d{i}/f{i}.x{i}" for i in range(500)]}
    assert rank(huge, candidates(recs, now=NOW))  # capped features: returns promptly


def test_a_bad_bead_is_refused_in_one_line() -> None:
    pool = candidates(specialised(seed=5, per_agent=3).records, now=NOW)
    with pytest.raises(ValidationError, match="the bead's work.*'work.labels' must be a list"):
        rank({"title": "x", "labels": "frontend"}, pool)


def test_a_bead_among_the_records_does_not_expand_from_itself() -> None:
    h = History()
    h.bead("gt-1", agent("docs"), {"title": "readme", "files": ["README.md"]}, "validated")
    h.bead("gt-2", agent("sql"), {"title": "index", "files": ["db/x.sql"]}, "validated")
    pool = candidates(h.records, now=NOW)
    recs = read_records(h.records)
    done = next(r for r in recs if r.bead == "gt-1" and r.kind == "completed")
    assert rank(done.work, pool, bead="gt-1")[0]["entity"] == agent("docs")
    assert REFINERY not in pool.entities  # validators who did no work are no candidates
