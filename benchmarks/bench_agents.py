"""Dispatch and idle cost with many headless agents, on one node and split over two.

Run: ``.venv/bin/python benchmarks/bench_agents.py [--sizes 100] [--ledgers sqlite,pg]
[--nodes 1,2] [--idle-s 20] [--rounds 2] [--relay-max 100]``; the full run of
``benchmarks/README.md`` is ``--sizes 100,500,1000 --idle-s 60``.  Needs bash and,
for ``pg``, PostgreSQL's programs (a throw-away server is started as the tests do).

A town of N ``command`` agents on the headless ``subprocess`` provider (no rig:
they work in the town's folder, so no worktrees), each a small bash program
(:data:`AGENT`) that waits for a nudge on its standard input (the session's
FIFO), notes when it came (``$EPOCHREALTIME``) and, when the town's
``bench-close`` file exists, closes the step the nudge names with ``bd close``
and waits again.  Each agent holds an engineer-in-box molecule.  Per point:

1. **setup**: the sessions started (one launcher + one bash each), their
   memory (PSS) and process count;
2. **idle**: the controller daemon(s) running at the default policies with N
   live agents, CPU share over ``--idle-s`` seconds and the events written;
3. **burst**: every agent's current step closed in the same instant (by the
   benchmark, in process, as each agent -- one transaction per close), the
   step-closed → nudge-written latency of every ``dispatch`` event, the
   controllers' CPU (own + children) and the PostgreSQL server's over the burst,
   and the agents' own receipt times read from their logs;
4. **relay** (N ≤ ``--relay-max``): after the script closes one more step of
   every molecule, the agents close every later step themselves with ``bd
   close`` as each nudge arrives; the dispatch latency of their closes (they
   come spread out, at the pace the agents' own processes allow).

Two nodes: two town folders on one PostgreSQL database, ``gt up --node A`` and
``--node B``, half the agents ``node = "A"``, half ``"B"``; each node's sessions
are started in its own folder.  Writes ``benchmarks/results/agents.json``
(``--out NAME`` for another name).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from bench_controller import LEAKY, proc_cpu, stats  # noqa: E402
from bench_scale import children, start_daemon  # noqa: E402

from gastown import Ledger  # noqa: E402
from gastown.controller.daemon import read_state  # noqa: E402
from gastown.controller.dispatch import epoch  # noqa: E402
from gastown.controller.service import down, up  # noqa: E402
from gastown.demo.run import latencies  # noqa: E402
from gastown.town.core import Town, init_town  # noqa: E402
from gastown.town.sessions import Sessions  # noqa: E402
from gastown.town.slinging import sling  # noqa: E402

STEPS = 5  # engineer-in-box: closing steps 1-4 each dispatches the next

#: the agent: wait for a nudge, note it, close the step it names (when told to), wait again.
#: ``set -f``: the nudge's words are never globbed; the step id goes to bd as one argument.
AGENT = """\
#!/bin/bash
set -f
while IFS= read -r line; do
  echo "got $EPOCHREALTIME $line"
  set -- $line
  if [ "$2 $3" = "next step" ] && [ -e "$GT_TOWN/bench-close" ]; then
    bd close "$4" >/dev/null 2>&1 || echo "close failed: $4"
  fi
done
"""


def names_of(n: int) -> list[str]:
    """The agents' names."""
    return [f"a{i:04d}" for i in range(n)]


def make_town(root: Path, n: int, agent: str, url: str | None, first: bool = True,
              nodes: int = 1) -> Town:
    """A town folder with ``n`` headless bash agents (on ``url``'s ledger when given)."""
    root.mkdir(parents=True)
    if url:
        Ledger.init(str(root), prefix="b", db=url, actor="bench", attach=not first).close()
    town = init_town(str(root), name="bench", prefix="b", provider="subprocess",
                     email="bench@example.test", actor="bench")
    blocks = []
    for i, name in enumerate(names_of(n)):
        node = f'node = "{"AB"[i % 2]}"\n' if nodes == 2 else ""
        blocks.append(f'\n[agents.{name}]\nrole = "worker"\npreset = "command"\n'
                      f'command = ["bash", {json.dumps(agent)}]\n{node}')
    extra = f"\n[nodes]\ncapacity = {n}\n" if nodes == 2 else ""
    with open(town.config_path, "a", encoding="utf-8") as fh:
        fh.write("".join(blocks) + extra)
    town.reload()
    return town


def session_pids(town: Town) -> list[int]:
    """Every live process of the town's sessions: all members of their process groups
    (each session is started as a process group of its own: launcher and program)."""
    groups = set()
    for path in Path(town.gt_dir, "sessions").glob("*.json"):
        try:
            groups.add(int(json.loads(path.read_text())["pid"]))
        except (OSError, ValueError, KeyError):
            continue
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as fh:
                    if int(fh.read().rsplit(")", 1)[1].split()[2]) in groups:
                        pids.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def pss_kb(pid: int) -> int:
    """Proportional set size of a process in kB (its share of pages it shares)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def pg_pids(server: Any) -> list[int]:
    """The PostgreSQL server's processes (the postmaster and its children)."""
    if server is None:
        return []
    try:
        first = (server.data_dir / "postmaster.pid").read_text().split()[0]
    except (OSError, IndexError):
        return []
    return [int(first), *children(int(first))]


def cpu_of(pids: list[int]) -> float:
    """CPU seconds of these processes (vanished ones count nothing)."""
    total = 0.0
    for pid in pids:
        try:
            total += proc_cpu(pid)
        except OSError:
            pass
    return total


def receipts(town: Town, names: list[str]) -> dict[str, float]:
    """Step id → when its agent read the nudge (from the agents' logs)."""
    out: dict[str, float] = {}
    for name in names:
        try:
            lines = Path(town.gt_dir, "logs", f"{name}.log").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            words = line.split()
            if len(words) > 5 and words[0] == "got" and words[3:5] == ["next", "step"]:
                out[words[5]] = float(words[1])
    return out


def wait_for(pred: Any, timeout: float, what: str) -> Any:
    """Poll ``pred`` until truthy; SystemExit naming ``what`` on time-out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred()
        if got:
            return got
        time.sleep(0.1)
    raise SystemExit(f"bench_agents: timed out waiting for {what}")


# ------------------------------------------------------------------ one point
class Point:
    """One measured configuration: N agents, a ledger, one node or two."""

    def __init__(self, work: Path, n: int, ledger: str, nodes: int, url: str | None,
                 server: Any) -> None:
        self.n, self.ledger, self.nodes, self.url, self.server = n, ledger, nodes, url, server
        agent = work / "agent.sh"
        agent.write_text(AGENT)
        self.names = names_of(n)
        self.towns = [make_town(work / f"node{k}", n, str(agent), url, first=k == 0,
                                nodes=nodes) for k in range(nodes)]
        #: agent name → the town folder (node) that runs it
        self.home = {name: self.towns[i % nodes] for i, name in enumerate(self.names)}
        self.roots: dict[str, str] = {}
        self.pids: list[int] = []

    def db(self) -> str:
        return self.url or self.towns[0].db_url()

    def setup(self) -> tuple[list[int], dict[str, Any]]:
        """Start the controller(s), sling a molecule to every agent, wait for every
        session; returns the controllers' pids and the setup times.

        One node: ``sling`` starts each session itself.  Two nodes: the nodes are
        up first, ``sling`` only records the work ("waiting for a node"), the
        leader places each agent on its ``node``, and that node's patrol starts
        its session in its own folder -- the path a real town takes.
        """
        t0 = time.monotonic()
        pids = [] if self.nodes == 1 else self._nodes_up()
        up_s = time.monotonic() - t0
        for name in self.names:
            self.roots[name] = sling(self.towns[0], "engineer-in-box", name,
                                     {"feature": f"f-{name}"}, nudge=False, actor="bench").id
        slung = time.monotonic() - t0

        def alive() -> bool:
            return all(Sessions(self.home[name]).is_alive(self.home[name].agent(name))
                       for name in self.names)
        wait_for(alive, 60 + self.n, f"{self.n} sessions to run")
        started = time.monotonic() - t0
        if self.nodes == 1:
            pids = [start_daemon(self.towns[0])]
        return pids, {"nodes_up_s": round(up_s, 1), "sling_s": round(slung - up_s, 1),
                      "all_running_s": round(started - up_s, 1)}

    def _nodes_up(self) -> list[int]:
        pids = []
        for town, node in zip(self.towns, "AB", strict=False):
            pids.append(int(up(town, node=node)["pid"]))
            wait_for(lambda t=town: read_state(t).get("ticks"), 60, f"node {node} to tick")
        return pids

    def processes(self) -> dict[str, Any]:
        """The agents' live processes (launchers and their programs) and memory."""
        self.pids = [p for t in self.towns for p in session_pids(t)]
        pss = sum(pss_kb(p) for p in self.pids)
        return {"processes": len(self.pids), "pss_mb": round(pss / 1024, 1),
                "pss_kb_per_agent": round(pss / self.n)}

    def stop(self) -> None:
        for town in self.towns:
            down(town, timeout=30)

    def idle(self, pids: list[int], seconds: float) -> dict[str, Any]:
        """The controllers' CPU share over ``seconds`` with every agent live and idle."""
        time.sleep(2.0)
        procs = self.processes()
        with Ledger.open(self.db(), actor="bench") as led:
            since = led.last_event_seq()
        c0 = [proc_cpu(p) for p in pids]
        a0, s0, w0 = cpu_of(self.pids), cpu_of(pg_pids(self.server)), time.monotonic()
        time.sleep(seconds)
        wall = time.monotonic() - w0
        per = [round((proc_cpu(p) - c) / wall * 100, 3) for p, c in zip(pids, c0, strict=True)]
        with Ledger.open(self.db(), actor="bench") as led:
            written = led.events(since_seq=since)
        return {**procs, "seconds": seconds, "controller_cpu_pct": per,
                "agents_cpu_pct": round((cpu_of(self.pids) - a0) / wall * 100, 3),
                "pg_cpu_pct": round((cpu_of(pg_pids(self.server)) - s0) / wall * 100, 3)
                if self.server else None,
                "events_written": len(written), "load": round(os.getloadavg()[0], 2)}

    def burst(self, pids: list[int], step: int, relay: bool) -> dict[str, Any]:
        """Close step ``step`` of every molecule at once; measure the dispatches.

        ``relay``: the agents then close their next steps themselves (``bd close``).
        """
        flags = [Path(t.root, "bench-close") for t in self.towns]
        for flag in flags:
            if relay:
                flag.touch()
            elif flag.exists():
                flag.unlink()
        # relay: the agents close every later step themselves, and the last close
        # brings one more nudge ("run gt done"): a nudge per agent per step from here
        want = self.n * (STEPS - step + 1 if relay else 1)
        with Ledger.open(self.db(), actor="bench") as led:
            mid = led.last_event_seq()
            c0, p0 = [proc_cpu(p) for p in pids], cpu_of(pg_pids(self.server))
            load, w0 = os.getloadavg()[0], time.monotonic()
            for name in self.names:  # every agent's step, closed at once, as the agent
                Ledger(led.store, actor=self.home[name].actor_of(
                    self.home[name].agent(name))).close_bead(f"{self.roots[name]}.{step}")
            closing = time.monotonic() - w0
            deadline = time.monotonic() + 60 + self.n * (0.5 if relay else 0.1)
            while len(led.events(since_seq=mid, types=["dispatch"])) < want and \
                    time.monotonic() < deadline:
                time.sleep(0.1)
            wall = time.monotonic() - w0
            cpu = [round(proc_cpu(p) - c, 2) for p, c in zip(pids, c0, strict=True)]
            pg = cpu_of(pg_pids(self.server)) - p0
            evs = led.events(since_seq=mid)
        ours = {f"{self.roots[n]}.{step}" for n in self.names}
        closed_at = {e["seq"]: epoch(e["ts"]) for e in evs if e["type"] == "bead.closed"}
        first = [e for e in evs if e["type"] == "dispatch"
                 and (e["payload"] or {}).get("closed") in ours]
        later = [e for e in evs if e["type"] == "dispatch" and e not in first]
        closes = [e for e in evs if e["type"] == "bead.closed"]
        got = receipts(self.towns[0], self.names) if self.nodes == 1 else {
            k: v for t in self.towns for k, v in receipts(t, self.names).items()}
        read = [(got[p["step"]] - closed_at[p["after"]]) * 1000 for e in first
                if (p := e["payload"] or {}).get("step") in got and p.get("after") in closed_at]
        row: dict[str, Any] = {
            "step": step, "closing_s": round(closing, 2), "all_dispatched_s": round(wall, 2),
            "dispatch_ms": stats(latencies(closes + first)),
            "read_by_agent_ms": stats(read), "controller_cpu_s": cpu,
            "cpu_ms_per_dispatch": round(sum(cpu) / max(1, len(first) + len(later)) * 1000, 2),
            "pg_cpu_s": round(pg, 2) if self.server else None,
            "expected": want,
            "delivered": sum(1 for e in first + later if (e["payload"] or {}).get("delivered")),
            "load": round(load, 2)}
        if self.nodes == 2:
            node_of = {n: "AB"[i % 2] for i, n in enumerate(self.names)}
            for node in "AB":
                mine = [e for e in first
                        if node_of.get(str((e["payload"] or {}).get("agent"))) == node]
                row[f"dispatch_ms_{node}"] = stats(latencies(closes + mine))
        if relay:
            row["relay_dispatch_ms"] = stats(latencies(closes + later))
            row["agent_closes"] = sum(1 for e in evs if e["type"] == "bead.closed"
                                      and e["bead_id"] not in ours and "." in e["bead_id"])
        return row


def run_point(n: int, ledger: str, nodes: int, args: argparse.Namespace,
              pg: Any) -> dict[str, Any]:
    """Set up, measure idle and bursts, tear down: one row of the table."""
    work = Path(tempfile.mkdtemp(prefix="gt-agents-"))
    url = None
    if ledger == "pg":
        db = f"bench_agents_{n}_{nodes}_{int(time.time())}"
        pg.admin(f'CREATE DATABASE "{db}"')
        url = pg.url(db)
    point = Point(work, n, ledger, nodes, url, pg if ledger == "pg" else None)
    out: dict[str, Any] = {"agents": n, "ledger": ledger, "nodes": nodes}
    try:
        pids, out["setup"] = point.setup()
        print(f"  setup: {out['setup']}", flush=True)
        out["idle"] = point.idle(pids, args.idle_s)
        print(f"  idle: {out['idle']}", flush=True)
        out["bursts"] = []
        for r in range(args.rounds):
            out["bursts"].append(point.burst(pids, r + 1, relay=False))
            print(f"  burst {r + 1}: {out['bursts'][-1]}", flush=True)
        if n <= args.relay_max and args.rounds + 2 <= STEPS:
            out["relay"] = point.burst(pids, args.rounds + 1, relay=True)
            print(f"  relay: {out['relay']}", flush=True)
    finally:
        point.stop()
        for town in point.towns:  # every session's process group, at once
            for pid in {os.getpgid(p) for p in session_pids(town) if _alive(p)}:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    pass
        shutil.rmtree(work, ignore_errors=True)
        if url:
            pg.drop_database(url.rsplit("/", 1)[1])
    return out


def table(results: dict[str, Any]) -> str:
    """The README's rows (markdown) for a results file."""
    def ms(st: dict[str, Any], key: str) -> str:
        v = st.get(key)
        return "–" if v is None else (f"{v / 1000:.2f} s" if v >= 1000 else f"{v:.0f} ms")

    rows = []
    for p in results["points"]:
        idle, bursts = p["idle"], p.get("bursts") or []
        cells = [f"{p['agents']}", "SQLite" if p["ledger"] == "sqlite" else "PostgreSQL",
                 "two (A + B)" if p["nodes"] == 2 else "one",
                 f"{p['setup']['all_running_s']:.0f} s",
                 f"{idle['processes']}, {idle['pss_mb'] / 1024:.2f} GB",
                 " + ".join(f"{c:.2f} %" for c in idle["controller_cpu_pct"])
                 + (f" (server {idle['pg_cpu_pct']:.2f} %)" if idle["pg_cpu_pct"] is not None
                    else ""),
                 " / ".join(f"{b['closing_s']:.1f} s" for b in bursts),
                 " / ".join(ms(b["dispatch_ms"], "median") for b in bursts),
                 " / ".join(ms(b["dispatch_ms"], "p95") for b in bursts),
                 " / ".join(f"{b['cpu_ms_per_dispatch']:.1f}" for b in bursts)
                 + (" (server " + " / ".join(f"{b['pg_cpu_s'] / max(1, b['delivered']) * 1000:.1f}"
                                            for b in bursts) + ")"
                    if bursts and bursts[0]["pg_cpu_s"] is not None else ""),
                 f"{idle['load']:.1f} / " + " / ".join(f"{b['load']:.1f}" for b in bursts)]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100", help="agent counts, e.g. 100,500,1000")
    ap.add_argument("--ledgers", default="sqlite,pg", help="one node on: sqlite, pg")
    ap.add_argument("--nodes", default="1,2", help="1 (each ledger), 2 (PostgreSQL)")
    ap.add_argument("--idle-s", type=float, default=20.0)
    ap.add_argument("--rounds", type=int, default=2, help="bursts per point (at most 3)")
    ap.add_argument("--relay-max", type=int, default=100,
                    help="largest N whose agents also close steps themselves")
    ap.add_argument("--out", default="agents.json",
                    help="file name under results/, or an absolute path")
    ap.add_argument("--quick", action="store_true", help="20 agents, 5 s idle, one burst")
    ap.add_argument("--table", metavar="FILE", help="print the README rows of a results file")
    args = ap.parse_args()
    if args.table:
        print(table(json.loads(Path(args.table).read_text())))
        return 0
    if args.quick:  # ./run bench --quick passes it to every script
        args.sizes, args.idle_s, args.rounds = "20", 5.0, 1
    args.rounds = max(1, min(args.rounds, STEPS - 2))
    for var in LEAKY:
        os.environ.pop(var, None)
    os.environ["BD_ACTOR"] = "bench"
    # the agents' `bd` is the town's bin/ shim, which runs this interpreter's package
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
    sizes = [int(x) for x in args.sizes.split(",") if x]
    ledgers = [x for x in args.ledgers.split(",") if x]
    nodes = [int(x) for x in args.nodes.split(",") if x]
    plan = [(n, led, 1) for n in sizes for led in ledgers if 1 in nodes]
    plan += [(n, "pg", 2) for n in sizes if 2 in nodes]
    results: dict[str, Any] = {"when": time.strftime("%Y-%m-%d %H:%M"),
                               "python": sys.version.split()[0], "cpus": os.cpu_count(),
                               "argv": sys.argv[1:], "points": []}
    pg = None
    try:
        if any(led == "pg" for _, led, _ in plan):
            from conftest import _start_pg_server  # the test suite's throw-away server

            pg = _start_pg_server()
        for n, led, k in plan:
            print(f"{n} agents, {led}, {k} node(s) (load {os.getloadavg()[0]:.2f})",
                  flush=True)
            results["points"].append(run_point(n, led, k, args, pg))
    finally:
        if pg is not None:
            pg.stop()
            shutil.rmtree(pg.base_dir, ignore_errors=True)
    out = Path(args.out) if os.path.isabs(args.out) else HERE / "results" / Path(args.out).name
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
