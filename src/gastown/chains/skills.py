"""Skills derived from demonstrated work: a TF-IDF model over completed beads (stdlib only).

Each completed bead becomes a sparse vector of *terms*, each with a readable prefix:

* ``word:X``    -- words of the title (lower-cased, stop words dropped, plural ``s`` cut);
* ``label:X``   -- its labels;            * ``formula:X`` -- the formula it came from;
* ``type:X``    -- its type (task, bug…); * ``ext:X`` / ``dir:X`` -- the extensions and
  folders of the files its commits touched.

A term's raw weight is ``group weight × (1 + ln count)`` (:data:`GROUP_WEIGHTS`), then
times its inverse document frequency over every completed bead in the records,
``idf = ln((1 + N) / (1 + df)) + 1``; each bead's vector is scaled to length 1.  An
entity's skills are the quality-weighted sum of the vectors of the work it completed
(:data:`OUTCOME_WEIGHTS`: validated work counts most, unjudged work half, rejected or
reopened work a quarter), and every term keeps the beads that gave it, so a skill is
always explained by evidence.  Deterministic: same records, same numbers; no downloads.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .cvinput import Links, Record, Work, link, read_records

__all__ = ["GROUP_WEIGHTS", "OUTCOME_WEIGHTS", "SkillModel", "Skills", "build_model",
           "features", "outcome_weight", "skills_of", "all_skills", "work_vectors"]

GROUP_WEIGHTS = {"word": 1.0, "label": 1.5, "formula": 1.5, "type": 0.5, "ext": 1.0,
                 "dir": 0.5}
#: how much a completion counts, by what became of it (see ``cvinput.Links.final``)
OUTCOME_WEIGHTS = {"validated": 1.0, None: 0.5, "rejected": 0.25, "reopened": 0.25}
_WORD = re.compile(r"[a-z0-9][a-z0-9+#]*")
_STOP_WORDS = """a an and are as at be by do for from has have in into is it its of on
or out so than that the their then there these this to up use via was we were when which
with without new add make fix get set all any not no one two can should will"""
_STOP = frozenset(_STOP_WORDS.split())
#: a title gives at most this many words, a bead at most this many files (bounded work)
_MAX_WORDS = 64
_MAX_FILES = 200


def _stem(word: str) -> str:
    """A plural cut to its singular, crudely but deterministically."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _file_terms(path: str) -> Iterable[str]:
    parts = [p for p in path.replace("\\", "/").split("/") if p and p not in (".", "..")]
    if not parts:
        return
    name = parts[-1].lower()
    if "." in name.lstrip("."):
        yield "ext:" + name.rsplit(".", 1)[1][:16]
    for folder in parts[:-1][:6]:
        yield "dir:" + folder.lower()[:40]


def features(work: Work) -> dict[str, float]:
    """The raw (not yet idf-weighted) term weights of one piece of work."""
    counts: dict[str, int] = {}

    def add(term: str) -> None:
        counts[term] = counts.get(term, 0) + 1

    words = [w for w in _WORD.findall(work.title.lower()) if w not in _STOP and len(w) > 1
             and not w.isdigit()]
    for word in words[:_MAX_WORDS]:
        add("word:" + _stem(word))
    for label in work.labels:
        add("label:" + label.strip().lower()[:60])
    if work.formula:
        add("formula:" + work.formula.strip().lower()[:60])
    if work.type:
        add("type:" + work.type.strip().lower()[:30])
    for path in work.files[:_MAX_FILES]:
        for term in _file_terms(path):
            add(term)
    return {t: GROUP_WEIGHTS[t.split(":", 1)[0]] * (1.0 + math.log(n))
            for t, n in counts.items()}


@dataclass(frozen=True)
class SkillModel:
    """Inverse document frequencies over the completed work of a set of records."""

    idf: dict[str, float]
    docs: int

    def weight(self, term: str) -> float:
        """The idf of ``term`` (an unseen term gets the largest, as if df were 0)."""
        found = self.idf.get(term)
        return found if found is not None else math.log(1 + self.docs) + 1.0

    def vector(self, work: Work) -> dict[str, float]:
        """The unit-length TF-IDF vector of ``work`` (empty when it has no terms)."""
        raw = {t: w * self.weight(t) for t, w in features(work).items()}
        norm = math.sqrt(sum(v * v for v in raw.values()))
        return {t: v / norm for t, v in raw.items()} if norm else {}


def build_model(records: list[Record], links: Links | None = None) -> SkillModel:
    """The model of ``records``' completed work (each bead's latest completion once)."""
    links = link(records) if links is None else links
    works: dict[str, Work] = {}
    for rec in records:
        if rec.kind == "completed":
            works[rec.bead] = links.work(rec)
    df: dict[str, int] = {}
    for work in works.values():
        for term in features(work):
            df[term] = df.get(term, 0) + 1
    n = len(works)
    return SkillModel({t: math.log((1 + n) / (1 + d)) + 1.0 for t, d in df.items()}, n)


def work_vectors(records: list[Record], model: SkillModel,
                 links: Links | None = None) -> dict[int, dict[str, float]]:
    """Each completion's vector by record index (computed once, shared by callers)."""
    links = link(records) if links is None else links
    return {rec.index: model.vector(links.work(rec)) for rec in records
            if rec.kind == "completed"}


def outcome_weight(rec: Record, links: Links) -> float:
    """How much the completion ``rec`` counts toward skills (:data:`OUTCOME_WEIGHTS`)."""
    final = links.final.get(rec.index)
    return OUTCOME_WEIGHTS[final.kind if final is not None else None]


@dataclass
class Skills:
    """An entity's skill vector, with the beads that gave each term."""

    entity: str
    vector: dict[str, float] = field(default_factory=dict)
    #: term -> bead -> contribution
    evidence: dict[str, dict[str, float]] = field(default_factory=dict)
    #: bead -> title (for explanations)
    titles: dict[str, str] = field(default_factory=dict)
    beads: int = 0

    def add(self, bead: str, title: str, vec: dict[str, float], weight: float) -> None:
        """Add one completed bead's vector with its quality weight."""
        self.beads += 1
        self.titles[bead] = title
        for term, value in vec.items():
            part = value * weight
            self.vector[term] = self.vector.get(term, 0.0) + part
            beads = self.evidence.setdefault(term, {})
            beads[bead] = beads.get(bead, 0.0) + part

    def norm(self) -> float:
        """The vector's Euclidean length."""
        return math.sqrt(sum(v * v for v in self.vector.values()))

    def top(self, n: int = 10, per_term: int = 3) -> list[dict[str, Any]]:
        """The ``n`` strongest terms, each with the beads that gave the most of it."""
        terms = sorted(self.vector.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
        return [{"term": t, "weight": round(w, 4),
                 "evidence": [{"bead": b, "title": self.titles.get(b, "")}
                              for b, _ in sorted(self.evidence[t].items(),
                                                 key=lambda kv: (-kv[1], kv[0]))[:per_term]]}
                for t, w in terms]


def all_skills(records: list[Record], model: SkillModel, links: Links | None = None,
               vectors: dict[int, dict[str, float]] | None = None) -> dict[str, Skills]:
    """Every completing entity's skills (``records`` checked and in time order)."""
    links = link(records) if links is None else links
    vectors = work_vectors(records, model, links) if vectors is None else vectors
    out: dict[str, Skills] = {}
    for rec in records:
        if rec.kind != "completed":
            continue
        out.setdefault(rec.entity, Skills(rec.entity)).add(
            rec.bead, rec.work.title, vectors[rec.index], outcome_weight(rec, links))
    return out


def skills_of(records: list[dict[str, Any]], entity: str) -> Skills:
    """``entity``'s skills from raw chain records (idf over all of them)."""
    checked = read_records(records)
    links = link(checked)
    found = all_skills(checked, build_model(checked, links), links)
    return found.get(entity, Skills(entity))
