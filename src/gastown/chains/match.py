"""Capability matching: who has demonstrably done work like this, and how well.

``score = cosine(bead vector, entity skills) × (1/2 + 1/2 · R / (R + K))`` -- the
similarity of a new bead's TF-IDF vector (:mod:`.skills`) to each candidate's
quality-weighted skill vector, times the reputation factor of :mod:`.reputation`.  Ties
go to the smaller entity name.
Each match carries its evidence: the shared terms that gave most of the similarity and
the past beads behind each.  Pure: records in, ranking out.

A new bead often says little: a title, perhaps a label, no files yet (they are known at
merge).  Its vector is therefore first *expanded* with the work most like it (Rocchio
feedback, a classic of retrieval): the :data:`NEIGHBOURS` past beads whose vectors are
closest to it are averaged, weighted by their similarity, and added with weight
:data:`EXPANSION` before the whole is scaled to length 1 again.  "Update changelog"
thereby also points at ``ext:md`` and ``dir:docs``, which is what tells the docs
specialist from a generalist who once touched a changelog.  ``expanded_from`` in the
result lists the beads used.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .cvinput import Work, as_utc, link, read_records, read_work
from .reputation import R0, Reputation, all_reputations, factor
from .skills import SkillModel, Skills, all_skills, build_model, work_vectors

__all__ = ["EXPANSION", "NEIGHBOURS", "Candidates", "candidates", "expand", "rank"]

#: how many similar past beads expand a new bead's vector, and with what weight
NEIGHBOURS = 5
EXPANSION = 1.5


@dataclass
class Candidates:
    """What ranking needs, computed once from the records: the model, skills, reputations."""

    model: SkillModel
    entities: list[str]
    skills: dict[str, Skills]
    reputations: dict[str, Reputation]
    norms: dict[str, float]
    #: every completed bead's vector, and term -> [(index into docs, weight)]
    docs: list[tuple[str, dict[str, float]]]
    index: dict[str, list[tuple[int, float]]]


def candidates(records: list[dict[str, Any]], *, entities: Iterable[str] | None = None,
               now: datetime | None = None) -> Candidates:
    """The candidates of ``records``: ``entities`` if given, else everyone who completed work."""
    checked = read_records(records)
    now = as_utc(now)
    links = link(checked)
    model = build_model(checked, links)
    vectors = work_vectors(checked, model, links)
    skills = all_skills(checked, model, links, vectors)
    reps = all_reputations(checked, now, links)
    names = sorted(set(skills) if entities is None else set(entities))
    for name in names:
        if name not in reps:
            reps[name] = Reputation(name)
            reps[name].finish(now)
    docs: dict[str, dict[str, float]] = {}
    for rec in checked:
        if rec.kind == "completed":
            docs[rec.bead] = vectors[rec.index]
    doc_list = sorted(docs.items())
    index: dict[str, list[tuple[int, float]]] = {}
    for i, (_bead, vec) in enumerate(doc_list):
        for term, weight in vec.items():
            index.setdefault(term, []).append((i, weight))
    return Candidates(model, names, skills, reps,
                      {n: skills[n].norm() for n in names if n in skills}, doc_list, index)


def _unit(vec: dict[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(v * v for v in vec.values()))
    return {t: v / norm for t, v in vec.items()} if norm else {}


def expand(vec: dict[str, float], pool: Candidates, *, skip: str | None = None,
           ) -> tuple[dict[str, float], list[str]]:
    """``vec`` expanded with its nearest past beads (not ``skip``), and those beads."""
    sims: dict[int, float] = {}
    for term, weight in vec.items():
        for i, w in pool.index.get(term, ()):
            sims[i] = sims.get(i, 0.0) + weight * w
    near = heapq.nsmallest(NEIGHBOURS, ((-s, i) for i, s in sims.items()
                                        if s > 0 and pool.docs[i][0] != skip))
    if not near:
        return vec, []
    centroid: dict[str, float] = {}
    for neg, i in near:
        for term, w in pool.docs[i][1].items():
            centroid[term] = centroid.get(term, 0.0) - neg * w
    out = dict(vec)
    for term, w in _unit(centroid).items():
        out[term] = out.get(term, 0.0) + EXPANSION * w
    return _unit(out), [pool.docs[i][0] for _neg, i in near]


def _evidence(vec: dict[str, float], skills: Skills, per_term: int,
              terms: int) -> list[dict[str, Any]]:
    shared = [(vec[t] * skills.vector[t], t) for t in vec if t in skills.vector]
    total = sum(part for part, _ in shared) or 1.0
    out = []
    for part, term in sorted(shared, key=lambda pt: (-pt[0], pt[1]))[:terms]:
        beads = sorted(skills.evidence[term].items(), key=lambda kv: (-kv[1], kv[0]))
        out.append({"term": term, "share": round(part / total, 4),
                    "beads": [{"bead": b, "title": skills.titles.get(b, "")}
                              for b, _ in beads[:per_term]]})
    return out


def _value(pool: Candidates, name: str) -> float:
    """``name``'s reputation (one with no records at all has the base value)."""
    rep = pool.reputations.get(name)
    return rep.value if rep is not None else R0


def rank(bead_work: dict[str, Any] | Work, pool: Candidates, *, top: int | None = None,
         terms: int = 5, per_term: int = 3, bead: str | None = None) -> list[dict[str, Any]]:
    """The candidates ranked for ``bead_work`` (a record's ``work`` object), best first.

    Each entry: entity, score, similarity, reputation, factor and evidence (shared
    terms, each with the past beads that gave it).  ``bead``: the new bead's id, when it
    is among the records already (it is then not used to expand itself).
    """
    work = bead_work if isinstance(bead_work, Work) else read_work(bead_work, "the bead's work")
    vec, _near = expand(pool.model.vector(work), pool, skip=bead)
    scored: list[tuple[float, str, float]] = []
    for name in pool.entities:
        skills = pool.skills.get(name)
        norm = pool.norms.get(name, 0.0)
        sim = 0.0
        if skills is not None and norm > 0:
            sim = sum(v * skills.vector.get(t, 0.0) for t, v in vec.items()) / norm
        score = sim * factor(_value(pool, name))
        # rounded so that equal scores computed in another order still tie by name
        scored.append((-round(score, 12), name, sim))
    scored.sort()
    out = []
    for neg, name, sim in scored[:top]:
        value = _value(pool, name)
        skills = pool.skills.get(name)
        out.append({"entity": name, "score": round(-neg, 6), "similarity": round(sim, 6),
                    "reputation": round(value, 4), "factor": round(factor(value), 4),
                    "evidence": [] if skills is None or sim == 0 or math.isnan(sim)
                    else _evidence(vec, skills, per_term, terms)})
    return out
