"""Dispatch at scale: simultaneous closes over many sessions, idle cost with many agents.

Run: ``.venv/bin/python benchmarks/bench_scale.py [--quick] [--sizes 100,500]
[--idle-agents 100,1000] [--idle-s 60]``.  Needs git and tmux.

1. Burst: a town of N ``command`` agents whose programs sleep, each with an
   engineer-in-box molecule on its hook, in tmux; the controller daemon runs
   (``gt up``).  Every agent's current step is closed in the same instant (one
   transaction per close, as the agents would) and the step-closed →
   next-step-delivered latency of each ``dispatch`` event is read from the log.
   Rounds alternate between one-shot tmux clients (``[providers.tmux] control
   = false``, the provider before issue #16) and the control-mode connection
   (``control = true``), in the same town, the daemon restarted in between.
   CPU: the daemon's own and reaped children's (``/proc/PID/stat``) plus its
   live children (the ``tmux -C`` client) plus the tmux server's.
2. Idle: a town with A registered agents (twenty of them with work hooked and a
   live session, the rest never started); the daemon's CPU share over a minute
   at the default policies, the tmux server's, the events written, and one
   reconcile pass in process.

Writes ``benchmarks/results/scale.json`` (``--out NAME`` for another name).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_controller import LEAKY, proc_cpu, self_cpu, stats  # noqa: E402

from gastown import Ledger  # noqa: E402
from gastown.controller.daemon import Controller, read_state  # noqa: E402
from gastown.controller.service import down, up  # noqa: E402
from gastown.demo.run import latencies  # noqa: E402
from gastown.demo.sample import write_sample  # noqa: E402
from gastown.town.core import Town, init_town  # noqa: E402
from gastown.town.providers import SubprocessProvider, TmuxProvider  # noqa: E402
from gastown.town.rigs import add_rig  # noqa: E402
from gastown.town.slinging import sling  # noqa: E402

HERE = Path(__file__).resolve().parent
STEPS = 5  # engineer-in-box: closing steps 1-4 each dispatches the next


def children(pid: int) -> list[int]:
    """Live child processes of ``pid``."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as fh:
                if int(fh.read().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return out


def tree_cpu(pid: int, server: int | None) -> float:
    """CPU seconds of the daemon (with reaped children), its live children, the server."""
    total = 0.0
    for p in [pid, *children(pid), *([server] if server else [])]:
        try:
            total += proc_cpu(p)
        except OSError:
            pass
    return total


def server_pid(town: Town) -> int | None:
    """The pid of the town's tmux server."""
    import subprocess

    proc = subprocess.run(TmuxProvider(town.gt_dir)._argv(["display-message", "-p", "#{pid}"]),
                          capture_output=True, text=True, check=False)
    out = proc.stdout.strip()
    return int(out) if out.isdigit() else None


def make_town(root: Path, agents: int, control: bool = True, provider: str = "tmux") -> Town:
    """A town with ``agents`` sleeping command agents (written to town.toml at once)."""
    sample = write_sample(str(root / "sample"))
    town = init_town(str(root / "town"), name="bench", prefix="b", provider=provider,
                     email="bench@example.test", actor="bench")
    add_rig(town, "textkit", sample, actor="bench")
    blocks = [f'\n[agents.s{i:04d}]\nrig = "textkit"\nrole = "worker"\npreset = "command"\n'
              'command = ["sleep", "3600"]\n' for i in range(agents)]
    with open(town.config_path, "a", encoding="utf-8") as fh:
        fh.write("".join(blocks))
    set_control(town, control)
    return town


def set_control(town: Town, control: bool) -> None:
    """``[providers.tmux] control = …`` at the end of town.toml (replacing an earlier one)."""
    text = Path(town.config_path).read_text()
    block = "\n[providers.tmux]\ncontrol = "
    if block in text:
        text = text.replace(f"{block}true\n", f"{block}{{}}\n").replace(
            f"{block}false\n", f"{block}{{}}\n")
    else:
        text = text.rstrip("\n") + f"\n{block}{{}}\n"
    text = text.replace(f"{block}{{}}\n", f"{block}{'true' if control else 'false'}\n")
    Path(town.config_path).write_text(text)
    town.reload()


def sling_all(town: Town, names: list[str]) -> dict[str, str]:
    """An engineer-in-box molecule on each agent's hook (its session started)."""
    roots = {}
    for name in names:
        roots[name] = sling(town, "engineer-in-box", name, {"feature": f"f-{name}"},
                            nudge=False, actor="bench").id
    return roots


def start_daemon(town: Town) -> int:
    """``gt up``; the daemon's pid once it has ticked."""
    pid = int(up(town)["pid"])
    deadline = time.monotonic() + 60
    while not read_state(town).get("ticks"):
        if time.monotonic() > deadline:
            raise RuntimeError("the controller did not tick within 60 s")
        time.sleep(0.1)
    return pid


# ---------------------------------------------------------------- 1. burst
def bench_burst(n: int, rounds: int, workers: int | None,
                provider: str = "tmux") -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="gt-scale-"))
    town = make_town(root, n, provider=provider)
    if workers:
        with open(town.config_path, "a", encoding="utf-8") as fh:
            fh.write(f"\n[controller]\nnudge_workers = {workers}\n")
    out: dict[str, Any] = {"sessions": n, "provider": provider,
                           "nudge_workers": workers or "default", "rounds": []}
    try:
        t0 = time.monotonic()
        names = [f"s{i:04d}" for i in range(n)]
        roots = sling_all(town, names)
        out["setup_s"] = round(time.monotonic() - t0, 1)
        prov = TmuxProvider(town.gt_dir) if provider == "tmux" else \
            SubprocessProvider(town.gt_dir)
        alive = sum(1 for s in prov.snapshot().values() if s.alive)
        assert alive == n, f"{alive} of {n} sessions alive"
        print(f"  {n} sessions up in {out['setup_s']}s", flush=True)
        actors = {name: f"textkit/worker/{name}" for name in names}
        for r in range(rounds):
            control = r % 2 == 1 and provider == "tmux"
            set_control(town, control)
            pid = start_daemon(town)
            time.sleep(1.0)
            server = server_pid(town) if provider == "tmux" else None
            with Ledger.open(town.db_url()) as led:
                mid = led.last_event_seq()
                c0 = tree_cpu(pid, server)
                w0 = time.monotonic()
                for name in names:  # every agent's next step, closed at once
                    Ledger(led.store, actor=actors[name]).close_bead(f"{roots[name]}.{r + 1}")
                closing_s = time.monotonic() - w0
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline:
                    if len(led.events(since_seq=mid, types=["dispatch"])) >= n:
                        break
                    time.sleep(0.1)
                wall = time.monotonic() - w0
                cpu = tree_cpu(pid, server) - c0
                evs = led.events(since_seq=mid)
            down(town, timeout=20)
            lat = latencies(evs)
            row = {"control": control if provider == "tmux" else None, "closed_at_once": n,
                   "closing_s": round(closing_s, 2),
                   **stats(lat), "all_delivered_s": round(wall, 2), "cpu_s": round(cpu, 2),
                   "verified": sum(1 for e in evs if e["type"] == "dispatch"
                                   and (e.get("payload") or {}).get("verified")),
                   "load": round(os.getloadavg()[0], 2)}
            out["rounds"].append(row)
            print(f"  round {r + 1}: {row}", flush=True)
    finally:
        down(town, timeout=20)
        TmuxProvider(town.gt_dir).kill_server()
        shutil.rmtree(root, ignore_errors=True)
    return out


# ----------------------------------------------------------------- 2. idle
def bench_idle(agents: int, live: int, idle_s: float, poll: float | None) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="gt-scale-idle-"))
    town = make_town(root, agents)
    if poll:
        with open(town.config_path, "a", encoding="utf-8") as fh:
            fh.write(f"\n[controller]\npoll = {poll}\n")
        town.reload()
    out: dict[str, Any] = {"registered": agents, "live_sessions": live,
                           "poll_s": poll or "default"}
    try:
        sling_all(town, [f"s{i:04d}" for i in range(live)])
        ctl = Controller(town, log_file=open(os.devnull, "w"))  # noqa: SIM115
        ctl.setup()
        ctl.tick()  # warm
        cpu0, wall0, k = self_cpu(), time.monotonic(), 10
        for _ in range(k):
            ctl.tick()
        out["tick"] = {"cpu_ms": round((self_cpu() - cpu0) / k * 1000, 1),
                       "wall_ms": round((time.monotonic() - wall0) / k * 1000, 1), "n": k}
        ctl.dispatcher.close()
        ctl.led.close()
        pid = start_daemon(town)
        time.sleep(2.0)
        server = server_pid(town)
        with Ledger.open(town.db_url()) as led:
            since = led.last_event_seq()
        d0 = proc_cpu(pid)
        s0 = proc_cpu(server) if server else 0.0
        w0, ticks0 = time.monotonic(), read_state(town)["ticks"]
        time.sleep(idle_s)
        wall = time.monotonic() - w0
        daemon = (proc_cpu(pid) - d0) / wall
        srv = ((proc_cpu(server) - s0) / wall) if server else 0.0
        with Ledger.open(town.db_url()) as led:
            written = led.events(since_seq=since)
        out["idle"] = {"seconds": idle_s, "daemon_cpu_pct": round(daemon * 100, 3),
                       "tmux_server_cpu_pct": round(srv * 100, 3),
                       "ticks": read_state(town)["ticks"] - ticks0,
                       "events_written": len(written)}
        print(f"  idle {agents} agents: {out}", flush=True)
    finally:
        down(town, timeout=20)
        TmuxProvider(town.gt_dir).kill_server()
        shutil.rmtree(root, ignore_errors=True)
    return out


# ------------------------------------------------------ 3. tmux commands
def bench_commands(sessions: int, rounds: int) -> dict[str, Any]:
    """Typing one short text into each of ``sessions`` panes, three ways: a tmux client
    process per command, one process for all (``tmux c1 \\; c2 …``), control mode."""
    import subprocess

    from gastown.town.providers.base import SessionSpec
    from gastown.town.providers.tmuxctl import quote

    root = Path(tempfile.mkdtemp(prefix="gt-scale-cmd-"))
    prov = TmuxProvider(str(root))
    names = [f"c{i:03d}" for i in range(sessions)]
    out: dict[str, Any] = {"sessions": sessions, "commands_per_session": 3}
    try:
        for name in names:
            prov.start(SessionSpec(name, ["cat"], str(root)))

        def cmds(name: str) -> list[list[str]]:
            t = prov._target(name)
            return [["display-message", "-p", "-t", t, "#{pane_dead}"],
                    ["send-keys", "-t", t, "C-u"],
                    ["send-keys", "-t", t, "-l", "--", f"hello {name}"]]

        def one_shot() -> None:
            for name in names:
                for cmd in cmds(name):
                    subprocess.run(prov._argv(cmd), capture_output=True, check=True,
                                   env=prov._env())

        def batched() -> None:
            argv: list[str] = []
            for name in names:
                for cmd in cmds(name):
                    argv += [*cmd, ";"]
            subprocess.run(prov._argv(argv[:-1]), capture_output=True, check=True,
                           env=prov._env())

        def control() -> None:
            ctl = prov._connection(names[0])
            assert ctl is not None
            ctl.run([" ".join(quote(a) for a in cmd) for name in names for cmd in cmds(name)])

        for label, fn in (("one_shot", one_shot), ("batched", batched), ("control", control)):
            walls, cpus = [], []
            server = int(prov._fmt(names[0], "#{pid}") or 0)
            for _ in range(rounds):
                c0, s0, w0 = self_cpu(), proc_cpu(server), time.monotonic()
                fn()
                walls.append((time.monotonic() - w0) * 1000)
                cpus.append((self_cpu() - c0 + proc_cpu(server) - s0) * 1000)
            n = sessions * 3
            out[label] = {"wall_ms": round(sorted(walls)[len(walls) // 2], 1),
                          "cpu_ms": round(sorted(cpus)[len(cpus) // 2], 1),
                          "cpu_per_command_ms": round(sorted(cpus)[len(cpus) // 2] / n, 3)}
            print(f"  {label}: {out[label]}", flush=True)
    finally:
        prov.kill_server()
        shutil.rmtree(root, ignore_errors=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sizes", default="100", help="burst sizes, e.g. 100,500")
    parser.add_argument("--rounds", type=int, default=4, help="burst rounds (alternating)")
    parser.add_argument("--idle-agents", default="100,1000")
    parser.add_argument("--idle-s", type=float, default=60.0)
    parser.add_argument("--skip", default="", help="burst, idle, commands (comma-separated)")
    parser.add_argument("--out", default="scale.json", help="file name under results/")
    parser.add_argument("--provider", default="tmux", help="tmux or subprocess (bursts)")
    parser.add_argument("--polls", default="", help="[controller] poll values, e.g. 0.1,1")
    parser.add_argument("--workers", type=int, default=0, help="[controller] nudge_workers")
    args = parser.parse_args()
    for var in LEAKY:
        os.environ.pop(var, None)
    os.environ["BD_ACTOR"] = "bench"
    if shutil.which("tmux") is None:
        print("bench_scale: tmux is needed", file=sys.stderr)
        return 1
    results: dict[str, Any] = {"when": time.strftime("%Y-%m-%d %H:%M"),
                               "load": os.getloadavg()[0], "burst": [], "idle": [],
                               "commands": {}}
    rounds = min(args.rounds, STEPS - 1)
    if "burst" not in args.skip:
        for n in [int(x) for x in args.sizes.split(",") if x]:
            print(f"1. burst of {n}", flush=True)
            results["burst"].append(bench_burst(20 if args.quick else n,
                                                2 if args.quick else rounds,
                                                args.workers or None, args.provider))
    if "commands" not in args.skip:
        print("3. tmux commands: 100 sessions x 3 commands", flush=True)
        results["commands"] = bench_commands(100, 3 if args.quick else 7)
    if "idle" not in args.skip:
        for a in [int(x) for x in args.idle_agents.split(",") if x]:
            print(f"2. idle, {a} agents", flush=True)
            for poll in [float(x) for x in args.polls.split(",") if x] or [None]:
                results["idle"].append(bench_idle(a, 20, 10.0 if args.quick else args.idle_s,
                                                  poll))
    out = HERE / "results" / Path(args.out).name
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
