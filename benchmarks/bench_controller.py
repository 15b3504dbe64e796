"""Controller benchmarks: dispatch latency, idle cost, per-tick cost, merge-queue throughput.

Run: ``.venv/bin/python benchmarks/bench_controller.py [--quick]``

1. ``gt demo`` (three scripted agents, two features and a fix): step-closed →
   next-step-delivered latency read from the event log (``dispatch.ts`` −
   ``bead.closed.ts`` of the step it answers), over several runs.
2. A synthetic town of 100 ``command`` agents whose programs sleep, each with a
   molecule on its hook, sessions in tmux:
   a. idle share: the daemon's CPU (its own + its reaped children's, from
      ``/proc/PID/stat``) over a minute at the default policies, and how many
      events it wrote (must be none);
   b. CPU per tick: one reconcile pass (patrol over 100 sessions, pools,
      convoys, merge queue), in process, own + children CPU from ``os.times``;
   c. dispatch latency with 100 sessions: steps closed at a steady rate, then
      100 at once (every agent's step in the same instant).
3. Merge-queue throughput: 20 independent branches landed one after another
   (rebase + fast-forward), without a test command and with the sample's suite.

Writes ``benchmarks/results/controller.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from gastown import Ledger  # noqa: E402
from gastown.controller.daemon import Controller, read_state  # noqa: E402
from gastown.controller.mergeq import controller_actor  # noqa: E402
from gastown.controller.policies import MergePolicy  # noqa: E402
from gastown.controller.refinery import Refinery  # noqa: E402
from gastown.controller.service import down, up  # noqa: E402
from gastown.demo.run import latencies, run_demo  # noqa: E402
from gastown.demo.sample import TEST_ARGS, write_sample  # noqa: E402
from gastown.town.config import append_table  # noqa: E402
from gastown.town.core import Town, init_town  # noqa: E402
from gastown.town.providers import TmuxProvider  # noqa: E402
from gastown.town.rigs import add_rig  # noqa: E402
from gastown.town.slinging import sling  # noqa: E402

HERE = Path(__file__).resolve().parent
LEAKY = ("GT_TOWN", "GT_AGENT", "GT_RIG", "GT_ROLE", "GT_POOL", "BD_DB", "BD_ACTOR", "TMUX",
         "TMUX_PANE")


def stats(values: list[float]) -> dict[str, Any]:
    """Median, p95, max (ms values) and the count."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return {"n": len(values), "median": round(statistics.median(values), 1),
            "p95": round(p95, 1), "max": round(max(values), 1)}


def proc_cpu(pid: int) -> float:
    """utime + stime + cutime + cstime of a process, in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in f[11:15]) / os.sysconf("SC_CLK_TCK")


def self_cpu() -> float:
    """This process's CPU, its reaped children's included."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


# ---------------------------------------------------------------- 1. demo
def bench_demo(runs: int) -> dict[str, Any]:
    lat: list[float] = []
    seconds: list[float] = []
    for n in range(runs):
        summary = run_demo(keep=True, say=lambda _l: None)
        assert summary["ok"], summary
        with Ledger.open(os.path.join(summary["town"], ".beads", "beads.db")) as led:
            lat += latencies(led.events())
        seconds.append(summary["seconds"])
        shutil.rmtree(os.path.dirname(summary["town"]), ignore_errors=True)
        print(f"  demo run {n + 1}: {summary['seconds']}s, merged {summary['merged']}",
              flush=True)
    return {"runs": runs, "seconds": stats([s * 1000 for s in seconds]),
            "dispatch_latency_ms": stats(lat)}


# ----------------------------------------------------------- 2. synthetic
def make_town(root: Path, agents: int) -> Town:
    sample = write_sample(str(root / "sample"))
    town = init_town(str(root / "town"), name="bench", prefix="b", provider="tmux",
                     email="bench@example.test", actor="bench")
    add_rig(town, "textkit", sample, actor="bench")
    for i in range(agents):
        append_table(town.config_path, f"agents.s{i:03d}",
                     {"rig": "textkit", "role": "worker", "preset": "command",
                      "command": ["sleep", "3600"]})
    town.reload()
    return town


def bench_synthetic(agents: int, idle_s: float, steady: int, quick: bool) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="gt-bench-"))
    town = make_town(root, agents)
    out: dict[str, Any] = {"sessions": agents}
    try:
        t0 = time.monotonic()
        roots: dict[str, str] = {}
        for i in range(agents):
            r = sling(town, "engineer-in-box", f"s{i:03d}", {"feature": f"f{i}"}, nudge=False,
                      actor="bench")
            roots[f"s{i:03d}"] = r.id
        out["setup_s"] = round(time.monotonic() - t0, 1)
        alive = sum(1 for s in TmuxProvider(town.gt_dir).snapshot().values() if s.alive)
        assert alive == agents, f"{alive} of {agents} sessions alive"
        print(f"  {agents} sessions up in {out['setup_s']}s", flush=True)

        # b. CPU per tick, in process (the daemon is not running yet)
        ctl = Controller(town, log_file=open(os.devnull, "w"))  # noqa: SIM115
        ctl.setup()
        ctl.tick()  # warm
        cpu0, wall0, n = self_cpu(), time.monotonic(), (5 if quick else 20)
        for _ in range(n):
            ctl.tick()
        out["tick"] = {"cpu_ms": round((self_cpu() - cpu0) / n * 1000, 1),
                       "wall_ms": round((time.monotonic() - wall0) / n * 1000, 1), "n": n}
        ctl.dispatcher.close()
        ctl.led.close()
        print(f"  tick: {out['tick']}", flush=True)

        # a. idle share, the daemon at its default policies
        info = up(town)
        pid = info["pid"]
        while not read_state(town).get("ticks"):
            time.sleep(0.1)
        time.sleep(2.0)
        with Ledger.open(town.db_url()) as led:
            since = led.last_event_seq()
        c0, w0, ticks0 = proc_cpu(pid), time.monotonic(), read_state(town)["ticks"]
        time.sleep(idle_s)
        share = (proc_cpu(pid) - c0) / (time.monotonic() - w0)
        with Ledger.open(town.db_url()) as led:
            written = led.events(since_seq=since)
        out["idle"] = {"seconds": idle_s, "cpu_share_pct": round(share * 100, 2),
                       "ticks": read_state(town)["ticks"] - ticks0,
                       "events_written": len(written),
                       "nudges": sum(1 for e in written if e["type"] in ("dispatch", "nudge",
                                                                          "patrol.nudged"))}
        print(f"  idle: {out['idle']}", flush=True)

        # c. dispatch latency under load: a steady stream, then a burst
        actors = {name: f"textkit/worker/{name}" for name in roots}
        names = list(roots)
        nxt = dict.fromkeys(names, 1)  # each agent's next open step

        def close_next(led: Ledger, name: str) -> None:
            Ledger(led.store, actor=actors[name]).close_bead(f"{roots[name]}.{nxt[name]}")
            nxt[name] += 1

        with Ledger.open(town.db_url()) as led:
            start = led.last_event_seq()
            for k in range(steady):
                close_next(led, names[k % agents])
                time.sleep(0.2)
            time.sleep(2.0)
            mid = led.last_event_seq()
            for name in names:  # every agent's next step, closed at once
                close_next(led, name)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if len(led.events(since_seq=mid, types=["dispatch"])) >= agents:
                    break
                time.sleep(0.2)
            c_load = proc_cpu(pid)
            evs = led.events(since_seq=start)
        steady_evs = [e for e in evs if e["seq"] <= mid]
        burst_evs = [e for e in evs if e["seq"] > mid]
        out["dispatch_steady"] = {"rate_per_s": 5, **stats(latencies(steady_evs))}
        out["dispatch_burst"] = {"closed_at_once": agents, **stats(latencies(burst_evs))}
        out["cpu_under_load_s"] = round(c_load - c0, 2)
        print(f"  steady: {out['dispatch_steady']}\n  burst: {out['dispatch_burst']}",
              flush=True)
    finally:
        down(town, timeout=20)
        TmuxProvider(town.gt_dir).kill_server()
        shutil.rmtree(root, ignore_errors=True)
    return out


# -------------------------------------------------------------- 3. merges
def bench_merges(n: int, with_tests: bool) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="gt-bench-mq-"))
    try:
        town = make_town(root, 0)
        if with_tests:
            text = Path(town.config_path).read_text().replace(
                "[rigs.textkit]\n", "[rigs.textkit]\ntest = " + json.dumps(
                    " ".join([sys.executable, *TEST_ARGS])) + "\n", 1)
            Path(town.config_path).write_text(text)
            town.reload()
        repo = town.repo_dir("textkit")
        work = root / "clone"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_", "GT_", "BD_"))}
        env.update(GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@x", GIT_COMMITTER_NAME="b",
                   GIT_COMMITTER_EMAIL="b@x")

        def g(*args: str) -> str:
            return subprocess.run(["git", *args], cwd=work, env=env, check=True,
                                  capture_output=True, text=True).stdout.strip()

        subprocess.run(["git", "clone", "-q", repo, str(work)], check=True, env=env)
        with town.ledger(controller_actor(town)) as led:
            for i in range(n):
                g("switch", "-q", "-C", f"w/{i}", "origin/main")
                (work / f"file{i}.txt").write_text(f"{i}\n")
                g("add", "-A")
                g("commit", "-q", "-m", f"change {i}")
                g("push", "-q", "origin", f"w/{i}")
                led.create(f"Merge w/{i}", issue_type="merge-request",
                           metadata={"branch": f"w/{i}", "commit": g("rev-parse", "HEAD"),
                                     "base": "main", "rig": "textkit", "author": "bench"})
            refinery = Refinery(town, led, MergePolicy(), controller_actor(town),
                                threading.Event())
            t0 = time.monotonic()
            outcomes = refinery.run_target("textkit", "main")
            elapsed = time.monotonic() - t0
        assert [o.result for o in outcomes] == ["merged"] * n, outcomes
        return {"merges": n, "tests": with_tests, "seconds": round(elapsed, 2),
                "per_merge_ms": round(elapsed / n * 1000, 1),
                "merges_per_min": round(n / elapsed * 60, 1)}
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for var in LEAKY:
        os.environ.pop(var, None)
    os.environ["BD_ACTOR"] = "bench"
    if shutil.which("tmux") is None:
        print("bench_controller: tmux is needed", file=sys.stderr)
        return 1
    results: dict[str, Any] = {"when": time.strftime("%Y-%m-%d %H:%M"),
                               "load": os.getloadavg()[0]}
    print("1. gt demo", flush=True)
    results["demo"] = bench_demo(1 if args.quick else 3)
    print("2. 100 sleeping sessions", flush=True)
    results["synthetic"] = bench_synthetic(20 if args.quick else 100, 10 if args.quick else 60,
                                           50 if args.quick else 150, args.quick)
    print("3. merge queue", flush=True)
    results["merges"] = [bench_merges(5 if args.quick else 20, False),
                         bench_merges(5 if args.quick else 20, True)]
    print(json.dumps(results["merges"]), flush=True)
    out = HERE / "results" / "controller.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
