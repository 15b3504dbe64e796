"""``gt cv`` and ``gt match``: an entity's CV, and who fits a bead, from chain records.

Thin adapters: the records come from the town's ledger through
:mod:`gastown.chains` (``records``), the figures from the pure functions of
:mod:`gastown.chains.cv` and :mod:`gastown.chains.match`.
"""

from __future__ import annotations

from typing import Any

from ._app import Ctx, count
from .gt_common import add_parser, clean, town_ledger

#: reputation history lines the text form shows at most (--json has them all)
TEXT_HISTORY = 20


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _cv_text(cv: dict[str, Any]) -> str:
    q = cv["quality"]
    rep = cv["reputation"]
    counts = ", ".join(f"{k} {n}" for k, n in cv["counts"].items()) or "none"
    lines = [
        f"CV of {clean(cv['entity'])} ({cv['records']} records on its chain)",
        f"  records:     {counts}",
        f"  judged:      validated {cv['judged']['validated']}, rejected "
        f"{cv['judged']['rejected']}, reopened {cv['judged']['reopened']}",
        f"  acceptance:  {_pct(q['acceptance_rate'])} ({q['accepted']} of {q['submitted']} "
        f"submitted; at least {_pct(q['acceptance_low'])} at 95%)",
        f"  revisions:   {q['revisions']} over {q['completions']} completions "
        f"({q['revisions_per_completion'] if q['revisions_per_completion'] is not None else '-'}"
        " per completion)",
        f"  on time:     {_pct(q['on_time_rate'])} ({q['on_time']} of {q['with_due']} with a "
        "due date)",
        "  reviews:     " + (", ".join(f"{clean(k)} {n}" for k, n in q["review_outcomes"].items())
                             or "none")
        + (f" ({q['unreviewed_validations']} without review activity)"
           if q["unreviewed_validations"] else ""),
        f"  reputation:  {rep['value']:.2f} (staked {rep['staked']:.2f}, available "
        f"{rep['available']:.2f}; {rep['formula']})",
    ]
    if cv["skills"]:
        lines.append("  skills:")
        for s in cv["skills"]:
            beads = ", ".join(clean(e["bead"]) for e in s["evidence"])
            lines.append(f"    {clean(s['term']):<28} {s['weight']:7.3f}  from {beads}")
    if rep["history"]:
        shown = rep["history"][-TEXT_HISTORY:]
        earlier = len(rep["history"]) - len(shown)
        lines.append("  reputation history:" + (f" (the last {len(shown)}; {earlier} earlier "
                                                "in --json)" if earlier else ""))
        lines += [f"    {h['at']}  {h['value']:7.3f}  {clean(h['why'])}" for h in shown]
    for flag in cv.get("flags", []):
        lines.append(f"  FLAG {clean(flag.get('flag'))}: "
                     + clean(flag.get("bead") or ", ".join(flag.get("entities") or [])))
    return "\n".join(lines)


def _cv_file(ctx: Ctx, path: str) -> dict[str, Any]:
    """The CV in an exported file (``gt chain export``), verified before it is read."""
    from ..chains.cv import summarize
    from ..chains.export import read_file, verify_cv
    from ..errors import ValidationError

    doc = read_file(path)
    # the same document is checked and then read: nothing unverified reaches the CV
    checked = verify_cv(doc, ctx.args.town_key)
    entity = str(checked["entity"])
    if ctx.args.entity and ctx.args.entity != entity:
        raise ValidationError(f"{path}: the CV of {entity[:120]!r}, not of "
                              f"{ctx.args.entity[:120]!r}")
    recs = [item["record"] for item in doc["records"]]
    cv = summarize(recs, entity, skills=ctx.args.skills, history=ctx.args.history)
    cv["verified"] = checked
    return cv


def _cv(ctx: Ctx) -> int:
    if ctx.args.file:
        cv = _cv_file(ctx, ctx.args.file)
        ctx.out(cv, lambda: _cv_text(cv) + f"\n  verified: {cv['verified']['records']} records "
                f"and {cv['verified']['judgements']} judgements against the signed log of "
                f"{clean(cv['verified']['town'])}")
        return 0
    if not ctx.args.entity:
        from ..errors import UsageError

        raise UsageError("gt cv: name an ENTITY (or an exported CV with --file)")
    from ..chains.cv import summarize
    from ..chains.patterns import flags
    from ..chains.read import records, resolve

    led = town_ledger(ctx)
    with led.snapshot() as tx:
        entity = resolve(tx, ctx.args.entity)
    recs = records(led)
    cv = summarize(recs, entity, skills=ctx.args.skills, history=ctx.args.history)
    mine = [r for r in recs if entity in (r.get("entity"), r.get("subject"))]
    cv["flags"] = [f for f in flags(mine)
                   if f.get("subject") == entity or entity in (f.get("entities") or [])]
    ctx.out(cv, lambda: _cv_text(cv))
    return 0


def _match_text(bead: str, work: dict[str, Any], ranked: list[dict[str, Any]]) -> str:
    lines = [f"Who fits {clean(bead)} {clean(work.get('title'))!r}:"]
    for i, r in enumerate(ranked, 1):
        lines.append(f"{i:3d}. {clean(r['entity'])}  score {r['score']:.3f} (similarity "
                     f"{r['similarity']:.3f} x reputation factor {r['factor']:.2f})")
        for e in r["evidence"]:
            beads = ", ".join(clean(b["bead"]) for b in e["beads"])
            lines.append(f"       {clean(e['term']):<28} {100 * e['share']:3.0f}%  from {beads}")
    if not ranked:
        lines.append("  nobody: no completed work on any chain yet")
    return "\n".join(lines)


def _match(ctx: Ctx) -> int:
    from ..chains.hook import work_of
    from ..chains.match import candidates, rank
    from ..chains.read import org_in, records

    led = town_ledger(ctx)
    with led.snapshot() as tx:
        org_in(tx)  # refused, saying how to turn them on, when the town has no chains
    bead = led.show(ctx.resolve(ctx.args.bead))
    work = work_of(bead)
    pool = candidates(records(led))
    ranked = rank(work, pool, top=ctx.args.top, bead=str(bead["id"]))
    ctx.out({"bead": bead["id"], "work": work, "candidates": ranked},
            lambda: _match_text(str(bead["id"]), work, ranked))
    return 0


def setup(name: str, sub: Any) -> None:
    """Add the ``cv`` or the ``match`` parser."""
    from .gt import COMMANDS

    p = add_parser(sub, name, COMMANDS[name][1])
    if name == "cv":
        p.add_argument("entity", metavar="ENTITY|ACTOR", nargs="?",
                       help="an entity URI (entity://…) or a town actor (RIG/ROLE/NAME, a person)")
        p.add_argument("--file", help="an exported CV (gt chain export): verified offline, "
                                      "then summarized; no town needed")
        p.add_argument("--town-key", help="with --file: pin the issuing town's public key")
        p.add_argument("--skills", type=count, default=10, metavar="N",
                       help="show the N strongest skills (default 10)")
        p.add_argument("--history", type=count, default=None, metavar="N",
                       help="show only the last N entries of the reputation history")
        p.set_defaults(func=_cv)
    else:
        p.add_argument("bead", help="the bead to find the best agents for")
        p.add_argument("--top", type=count, default=5, metavar="N",
                       help="show the N best candidates (default 5)")
        p.set_defaults(func=_match)
