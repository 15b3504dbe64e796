"""``gt demo``: a whole town doing real work, unattended, in a temporary directory.

1. A sample git repository (:mod:`.sample`) and a town over it, whose rig runs
   the sample's tests in the merge queue and lands work straight into it.
2. Three ``command`` agents running :mod:`.agent` -- scripted stand-ins for a
   model; no model is called anywhere.
3. ``gt up``: the controller.  Then two features are slung as
   ``mol-engineer-in-box`` and a bug as ``mol-quick-fix``, tracked by a convoy.
4. The controller dispatches each next step the moment one closes, the agents
   hand their branches in, the refinery rebases, tests and fast-forwards each
   onto ``main``, the convoy lands.  The demo follows the event log and prints
   what happens, then a summary.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

__all__ = ["run_demo", "AGENTS", "latencies"]

AGENTS = ("ada", "bo", "cy")
MODEL_PRESETS = ("claude", "codex", "gemini", "opencode", "aider")
_SHOWN = {"sling", "bead.claimed", "bead.closed", "dispatch", "done", "merge.requested",
          "merge.landed", "merge.sent_back", "convoy.landed", "patrol.restarted",
          "session.started"}


def latencies(events: list[dict[str, Any]]) -> list[float]:
    """Step-closed → next-step-delivered, in ms, for every delivered ``dispatch`` event."""
    from ..controller.dispatch import epoch

    closed = {e["seq"]: e["ts"] for e in events if e["type"] == "bead.closed"}
    out = []
    for e in events:
        p = e.get("payload") or {}
        if e["type"] == "dispatch" and p.get("delivered") and p.get("after") in closed:
            out.append((epoch(e["ts"]) - epoch(closed[p["after"]])) * 1000.0)
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))]


class _Demo:
    def __init__(self, say: Callable[[str], None], provider: str | None,
                 agent_args: list[str] | None = None) -> None:
        self.say = say
        self.agent_args = list(agent_args or [])
        self.provider = provider or ("tmux" if shutil.which("tmux") else "subprocess")
        self.root = tempfile.mkdtemp(prefix="gt-demo-")
        self.sample = os.path.join(self.root, "textkit")
        self.town_dir = os.path.join(self.root, "town")
        self.t0 = time.monotonic()
        self.town: Any = None
        self.sent_back: dict[str, dict[str, Any]] = {}

    def setup(self) -> None:
        from ..town.config import append_table
        from ..town.core import init_town
        from ..town.rigs import add_rig
        from .sample import TEST_ARGS, write_sample

        write_sample(self.sample)
        town = init_town(self.town_dir, name="demo", prefix="demo", provider=self.provider,
                         email="agents@demo.gastown.test")
        add_rig(town, "textkit", self.sample)
        # the rig: run the sample's tests in the merge queue, land into the sample itself
        test = shlex.join([sys.executable, *TEST_ARGS])
        with open(town.config_path, encoding="utf-8") as fh:
            text = fh.read()
        text = text.replace("[rigs.textkit]\n",
                            f"[rigs.textkit]\npush = true\ntest = {json.dumps(test)}\n", 1)
        with open(town.config_path, "w", encoding="utf-8") as fh:
            fh.write(text)
        for name in AGENTS:
            append_table(town.config_path, f"agents.{name}", {
                "rig": "textkit", "role": "worker", "preset": "command",
                "command": [sys.executable, "-m", "gastown.demo.agent", "--once",
                            "--nudge-timeout", "20", *self.agent_args]},
                comment="a scripted stand-in for a model (gastown.demo.agent)")
        town.reload()
        # every step, claim and landing leaves a signed record on its doer's chain
        from ..chains.setup import enable_town
        from ..controller.mergeq import controller_actor

        with town.ledger() as led:
            enable_town(led, town.root, town.gt_dir, town.config,
                        [controller_actor(town)] + [town.actor_of(town.agent(n))
                                                    for n in AGENTS])
        self.town = town
        self.say(f"Sample repository  {self.sample}  (textkit: 1 commit, tests pass, one bug)")
        self.say(f"Town               {self.town_dir}  (sessions: {self.provider})")
        self.say(f"Agents             {', '.join(AGENTS)}  (preset 'command': "
                 "python -m gastown.demo.agent -- no model)")

    def start(self) -> dict[str, str]:
        from ..controller.convoy import create_convoy
        from ..controller.service import up
        from ..town.slinging import sling
        from .sample import BUG_TITLE

        info = up(self.town)
        self.say(f"Controller up      pid {info['pid']}  (gt up; log .gt/logs/controller.log)")
        with self.town.ledger() as led:
            bug = led.create(BUG_TITLE, issue_type="bug", priority=1)
        work = [("engineer-in-box", "ada", {"feature": "slugify"}),
                ("engineer-in-box", "bo", {"feature": "word frequencies"}),
                ("quick-fix", "cy", {"issue": bug["id"]})]
        roots: dict[str, str] = {}
        for formula, agent, variables in work:
            result = sling(self.town, formula, agent, variables, nudge=False)
            roots[result.id] = agent
            self.say(f"Slung              {result.id} {result.title!r} -> {agent} "
                     f"(branch {result.branch})")
        with self.town.ledger() as led:
            convoy = create_convoy(led, "Demo batch: two features and a fix", list(roots),
                                   notify=led.actor)
        self.say(f"Convoy             {convoy['id']} tracks {', '.join(roots)}")
        self.say("")
        return roots

    def follow(self, roots: dict[str, str], timeout: float) -> bool:
        """Print the story from the event log until every merge landed.

        It also stops -- within seconds, not at the timeout -- when nothing more
        can happen: a request was sent back, every agent's session has exited and
        no other request is still waiting in the queue.  ``self.sent_back`` then
        says which requests came back and why.
        """
        from ..ledger.events import follow
        from ..town.status import render_event

        need = len(roots)
        landed: set[str] = set()
        requested: set[str] = set()
        convoys: list[str] = []
        deadline = time.monotonic() + timeout
        gone_since: float | None = None  # since when no agent session has been alive
        looked_at = 0.0

        def hopeless() -> bool:
            """Sent back, no agent left to fix it (for 2 s), nothing else in flight."""
            nonlocal gone_since, looked_at
            if not self.sent_back or requested - landed - set(self.sent_back):
                return False
            now = time.monotonic()
            if now - looked_at >= 0.5:  # a look at the sessions costs a tmux call
                looked_at = now
                gone_since = None if self._any_agent_alive() else (gone_since or now)
            return gone_since is not None and now - gone_since > 2.0

        def finished() -> bool:
            return ((len(landed) >= need and bool(convoys)) or time.monotonic() > deadline
                    or hopeless())

        with self.town.ledger() as led:
            for ev in follow(led, 0, interval=0.2, stop=finished):
                kind, payload = ev["type"], ev.get("payload") or {}
                if kind == "merge.requested":
                    requested.add(ev["bead_id"])
                elif kind == "merge.landed":
                    landed.add(ev["bead_id"])
                    self.sent_back.pop(ev["bead_id"], None)
                elif kind == "merge.sent_back":
                    self.sent_back[ev["bead_id"]] = payload
                elif kind == "convoy.landed":
                    convoys.append(ev["bead_id"])
                if kind in _SHOWN:
                    self.say(f"{time.monotonic() - self.t0:6.1f}s {render_event(ev)[7:]}")
        return len(landed) >= need and bool(convoys)

    def _any_agent_alive(self) -> bool:
        from ..town.sessions import Sessions

        sessions = Sessions(self.town)
        return any(sessions.is_alive(self.town.agent(name)) for name in AGENTS)

    def summary(self, ok: bool, keep: bool) -> dict[str, Any]:
        from ..chemistry.inspect import work_steps

        with self.town.ledger() as led:
            events = led.events()
            steps = []
            for root in {e["bead_id"] for e in events if e["type"] == "sling"}:
                steps += [s for s in work_steps(led, root) if s["status"] == "closed"]
        lat = latencies(events)
        agents: dict[str, dict[str, int]] = {}
        for name in AGENTS:
            actor = f"textkit/worker/{name}"
            agents[name] = {
                "steps": sum(1 for s in steps if s.get("assignee") == actor),
                "commits": int(_git(self.sample, "rev-list", "--count", "--author", actor,
                                    "main") or 0),
                "merges": sum(1 for e in events if e["type"] == "merge.landed"
                              and (e["payload"] or {}).get("agent") == name)}
        models = [e for e in events if e["type"] == "session.started"
                  and (e["payload"] or {}).get("preset") in MODEL_PRESETS]
        chains = self._chains(agents)
        tests = subprocess.run([sys.executable, "-m", "unittest", "discover", "-s", "tests",
                                "-t", ".", "-q"], cwd=self.sample, capture_output=True,
                               text=True, check=False)
        return {
            "ok": ok and tests.returncode == 0, "town": self.town_dir, "kept": keep,
            "sample_repo": self.sample, "provider": self.provider,
            "merged": sum(1 for e in events if e["type"] == "merge.landed"),
            "steps_closed": len(steps),
            "dispatches": sum(1 for e in events if e["type"] == "dispatch"),
            "dispatch_latency_ms": {
                "n": len(lat), "median": round(statistics.median(lat), 1) if lat else None,
                "p95": round(_pct(lat, 0.95), 1) if lat else None,
                "max": round(max(lat), 1) if lat else None},
            "convoys_landed": sum(1 for e in events if e["type"] == "convoy.landed"),
            "sample_main_commits": int(_git(self.sample, "rev-list", "--count", "main") or 0),
            "sample_tests": "pass" if tests.returncode == 0 else "FAIL",
            "model_sessions": len(models),
            "sessions": sum(1 for e in events if e["type"] == "session.started"),
            "events": len(events), "agents": agents, "chains": chains,
            "sent_back": [{"request": mr, "why": p.get("why"), "detail": p.get("detail"),
                           "branch": p.get("branch"), "files": p.get("files") or []}
                          for mr, p in self.sent_back.items()],
            "seconds": round(time.monotonic() - self.t0, 2)}

    def _chains(self, agents: dict[str, dict[str, int]]) -> dict[str, Any]:
        """Verify every chain and the town log; each agent's completed and validated work
        (added to ``agents``) from its records alone."""
        from ..chains.cv import summarize
        from ..chains.entity import entity_of
        from ..chains.read import org_in, records
        from ..chains.verify import verify_ledger
        from ..errors import GastownError

        try:
            with self.town.ledger() as led:
                checked = verify_ledger(led)
                recs = records(led)
                with led.snapshot() as view:
                    org = org_in(view)
        except GastownError as exc:
            return {"ok": False, "problem": str(exc)}
        for name, row in agents.items():
            entity = entity_of(self.town.actor_of(self.town.agent(name)), org)
            try:
                cv = summarize(recs, entity)
            except GastownError:
                cv = {"counts": {}, "judged": {}}
            row["completed"] = int(cv["counts"].get("completed", 0))
            row["validated"] = int(cv["judged"].get("validated", 0))
        return {"ok": bool(checked.get("ok")), "records": int(checked.get("records", 0)),
                "entities": int(checked.get("entities", 0))}

    def diagnose(self) -> None:
        logs = os.path.join(self.town_dir, ".gt", "logs")
        for name in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
            path = os.path.join(logs, name)
            if os.path.isfile(path):
                with open(path, encoding="utf-8", errors="replace") as fh:
                    tail = fh.read().strip().splitlines()[-8:]
                self.say(f"--- {name}\n" + "\n".join(tail))

    def teardown(self, keep: bool) -> None:
        from ..controller.service import down
        from ..town.providers import SubprocessProvider, TmuxProvider

        if self.town is not None:
            try:
                down(self.town, timeout=20)
            finally:
                # every session of this town runs on its own tmux server / process groups
                TmuxProvider(self.town.gt_dir).kill_server()
                sub = SubprocessProvider(self.town.gt_dir)
                for name in sub.sessions():
                    sub.stop(name, grace=0.5)
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)


def _git(cwd: str, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    return proc.stdout.strip()


def run_demo(*, keep: bool = False, say: Callable[[str], None] = print,
             timeout: float = 180.0, provider: str | None = None,
             agent_args: list[str] | None = None) -> dict[str, Any]:
    """Run the demo; returns the summary (``ok`` tells whether everything landed).

    ``agent_args`` go to every scripted agent (see :mod:`.agent`).
    """
    demo = _Demo(say, provider, agent_args)
    ok = False
    summary: dict[str, Any] = {"ok": False, "town": demo.town_dir, "sample_repo": demo.sample}
    try:
        demo.setup()
        roots = demo.start()
        ok = demo.follow(roots, timeout)
        summary = demo.summary(ok, keep)
        if not summary["ok"]:
            demo.diagnose()
    finally:
        demo.teardown(keep)
    return summary


def render_summary(s: dict[str, Any]) -> str:
    """The closing lines of ``gt demo``."""
    lat = s.get("dispatch_latency_ms") or {}
    lines = ["", "Summary" + ("" if s.get("ok") else "  -- FAILED"),
             f"  time               {s.get('seconds')}s",
             f"  steps closed       {s.get('steps_closed')} (every one by a command agent; "
             f"model sessions: {s.get('model_sessions')})",
             f"  merged to main     {s.get('merged')} merge requests; the sample now has "
             f"{s.get('sample_main_commits')} commits and its tests {s.get('sample_tests')}",
             f"  dispatch latency   median {lat.get('median')} ms, p95 {lat.get('p95')} ms "
             f"over {lat.get('n')} steps (budget 1000 ms)",
             f"  convoys landed     {s.get('convoys_landed')}"]
    for name, a in (s.get("agents") or {}).items():
        lines.append(f"  {name:<18} {a['steps']} steps, {a['commits']} commits, "
                     f"{a['merges']} merged; chain: {a.get('completed', 0)} completed, "
                     f"{a.get('validated', 0)} validated")
    ch = s.get("chains") or {}
    lines.append(f"  entity chains      {ch.get('records')} signed records over "
                 f"{ch.get('entities')} entities, verified: "
                 f"{'yes' if ch.get('ok') else 'NO ' + str(ch.get('problem'))}")
    for back in s.get("sent_back") or []:
        files = ", ".join(back["files"]) or "none named"
        lines.append(f"  sent back          {back['request']} ({back['branch']}): "
                     f"{back['why']} -- {back['detail']}; files: {files}")
    town = s.get("town")
    if s.get("kept"):
        lines += ["", "Look around (the town is kept):",
                  f"  gt status --town {town}", f"  gt events --town {town}",
                  f"  gt mq list --town {town} --all", f"  gt convoy list --town {town} --all",
                  f"  git -C {s.get('sample_repo')} log --oneline --graph"]
    else:
        lines += ["", "Run `gt demo --keep` to keep the town, then look around with "
                      "`gt status --town DIR` and `gt events --town DIR`."]
    return "\n".join(lines)
