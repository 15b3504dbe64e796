"""Generated chain histories for the CV, skills, reputation and matching tests.

Records follow the chain contract (entity, seq, prev, kind, uri, bead, at, subject,
work, quality, signer, on_behalf, sig); hashes and signatures are placeholders because
the functions under test read records, they do not verify them (chains' verify does).
Agents specialise: each does mostly work of its own kind, some work of others', with
titles drawn from overlapping vocabularies, labels only sometimes, and a generalist
who does a bit of everything.  Deterministic for a given seed.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2026, 1, 1, tzinfo=UTC)

#: kind -> (title nouns, file patterns, labels)
KINDS: dict[str, tuple[list[str], list[str], list[str]]] = {
    "frontend": (["button", "modal", "navbar", "layout", "theme", "dropdown", "tooltip",
                  "sidebar", "dark mode", "form validation", "responsive grid", "icon set"],
                 ["web/src/components/{n}.tsx", "web/src/styles/{n}.css",
                  "web/src/pages/{n}.tsx"], ["frontend", "ui"]),
    "sql": (["migration", "index on orders", "schema", "foreign key", "table partition",
             "query plan", "column default", "constraint", "slow query", "vacuum settings"],
            ["db/migrations/00{i}_{n}.sql", "db/schema/{n}.sql"], ["database", "sql"]),
    "docs": (["readme", "install guide", "tutorial", "api reference", "changelog",
              "faq", "architecture overview", "glossary", "contributing guide"],
             ["docs/{n}.md", "docs/guides/{n}.md", "README.md"], ["docs"]),
    "backend": (["endpoint", "handler", "retry logic", "auth middleware", "rate limiter",
                 "cache layer", "job queue", "webhook", "serializer"],
                ["src/server/{n}.py", "src/server/api/{n}.py", "tests/test_{n}.py"],
                ["backend", "api"]),
    "ops": (["ci pipeline", "docker image", "deploy script", "helm chart", "alerting",
             "terraform module", "backup job", "log rotation"],
            [".github/workflows/{n}.yml", "deploy/{n}.yaml", "Dockerfile"], ["ops", "infra"]),
}
VERBS = ["add", "update", "refactor", "fix", "improve", "rework", "clean up", "extend",
         "document", "speed up"]
GENERIC = ["for release", "after review", "v2", "follow-up", "edge cases", "cleanup"]
OWNER = "entity://gt/acme/mayor"
REFINERY = "entity://gt/acme/refinery"


def agent(kind: str) -> str:
    """The entity name of the specialist of ``kind``."""
    return f"entity://gt/acme/rig/polecat/{kind}"


def new_work(rng: random.Random, kind: str, *, files: bool = True) -> dict[str, Any]:
    """A piece of work of ``kind``: title, maybe labels, maybe files."""
    nouns, patterns, labels = KINDS[kind]
    noun = rng.choice(nouns)
    title = f"{rng.choice(VERBS)} {noun}"
    if rng.random() < 0.4:
        title += " " + rng.choice(GENERIC)
    slug = noun.replace(" ", "_")
    out: dict[str, Any] = {"title": title, "type": rng.choice(["task", "bug", "feature"]),
                           "labels": rng.sample(labels, rng.randint(1, len(labels)))
                           if rng.random() < 0.5 else [],
                           "formula": None, "files": [], "due": None,
                           "priority": rng.randint(0, 4)}
    if files:
        out["files"] = sorted({rng.choice(patterns).format(n=slug, i=rng.randint(10, 99))
                               for _ in range(rng.randint(1, 3))})
    return out


class History:
    """Builds records with per-entity sequence numbers and increasing times."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.seq: dict[str, int] = {}
        self.clock = T0

    def add(self, entity: str, kind: str, bead: str, *, at: datetime | None = None,
            subject: str | None = None, work: dict[str, Any] | None = None,
            quality: dict[str, Any] | None = None) -> dict[str, Any]:
        """Append one record (``at`` defaults to one minute after the previous)."""
        self.clock = at if at is not None else self.clock + timedelta(minutes=1)
        self.seq[entity] = self.seq.get(entity, 0) + 1
        rec = {"v": 1, "entity": entity, "seq": self.seq[entity], "prev": "0" * 64,
               "kind": kind, "uri": f"gt://acme.com/acme/rig/{bead}", "bead": bead,
               "at": self.clock.isoformat().replace("+00:00", "Z"), "subject": subject,
               "work": work, "quality": quality or {}, "signer": entity,
               "on_behalf": False, "sig": ""}
        self.records.append(rec)
        return rec

    def bead(self, bead: str, doer: str, work: dict[str, Any], verdict: str | None,
             *, review_activity: int = 2) -> None:
        """created, claimed, completed and (when ``verdict``) validated/rejected.

        As in a town, the commits' files are known at merge: only the verdict's work
        names them."""
        bare = {**work, "files": []}
        self.add(OWNER, "created", bead, work=bare)
        self.add(doer, "claimed", bead, work=bare)
        self.add(doer, "completed", bead, work=bare)
        if verdict is not None:
            self.add(REFINERY, verdict, bead, subject=doer, work=work,
                     quality={"verdict": "merged" if verdict == "validated" else "rejected",
                              "review_activity": review_activity})


def specialised(seed: int = 7, per_agent: int = 40, *, off_kind: float = 0.1,
                generalist: bool = True) -> History:
    """Each specialist does ``per_agent`` beads (``off_kind`` of them outside its kind);
    a generalist does as many spread over every kind.  85% validated, 10% rejected."""
    rng = random.Random(seed)
    hist = History()
    doers = [(agent(k), k) for k in KINDS]
    if generalist:
        doers.append((agent("generalist"), ""))
    jobs = []
    for name, kind in doers:
        for _ in range(per_agent):
            if not kind or rng.random() < off_kind:
                jobs.append((name, rng.choice(sorted(KINDS))))
            else:
                jobs.append((name, kind))
    rng.shuffle(jobs)
    for i, (name, kind) in enumerate(jobs):
        roll = rng.random()
        verdict = "validated" if roll < 0.85 else "rejected" if roll < 0.95 else None
        hist.bead(f"gt-{i:05d}", name, new_work(rng, kind), verdict)
    return hist


def big(seed: int, records: int, agents: int) -> list[dict[str, Any]]:
    """About ``records`` records over ``agents`` agents, each of one of the kinds."""
    rng = random.Random(seed)
    hist = History()
    kinds = sorted(KINDS)
    names = [(f"entity://gt/acme/rig/polecat/a{i:03d}", kinds[i % len(kinds)])
             for i in range(agents)]
    i = 0
    while len(hist.records) < records:
        name, kind = rng.choice(names)
        if rng.random() < 0.15:
            kind = rng.choice(kinds)
        roll = rng.random()
        hist.bead(f"gt-{i:06d}", name, new_work(rng, kind),
                  "validated" if roll < 0.85 else "rejected" if roll < 0.95 else None)
        i += 1
    return hist.records
