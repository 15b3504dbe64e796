"""Dashboard benchmark: first paint of the overview of a big town, and SSE delivery latency.

Run: ``.venv/bin/python benchmarks/bench_dashboard.py [--quick] [--screenshots DIR --town T]``

* A town of 10,000 beads (``gen_graph.py``'s random graph, 15,000 blocking
  edges) and 100 configured agents without sessions; ``gt dashboard`` runs as
  its own process; headless Chromium (Debian's, through Playwright) opens the
  overview.  Measured: the browser's first-contentful-paint and load times, and
  the server's time for ``/api/overview`` (median of several).
* SSE delivery: with the overview open, this process writes a bead (one
  transaction) and stamps the wall clock just before the commit; a listener in
  the page stamps ``Date.now()`` when the event arrives on the page's
  EventSource.  Also: when the new bead is on the page (the live part swapped in).

``--screenshots DIR --town T``: instead, save PNGs of the overview, a bead, a
molecule and the feed of town ``T`` (for example a kept ``gt demo`` town).
Writes ``benchmarks/results/dashboard.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from gen_graph import generate  # noqa: E402

from gastown.ledger.jsonl import import_jsonl  # noqa: E402
from gastown.town.core import Town, init_town  # noqa: E402
from gastown.town.rigs import add_rig  # noqa: E402

GT = Path(sys.executable).parent / "gt"
CHROMIUM = "/usr/bin/chromium"
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync"]


#: the page's first-contentful-paint (from the paint timeline) and its load time
PAINT_JS = """() => new Promise((done) => {
  const load = performance.getEntriesByType('navigation')[0].loadEventEnd;
  new PerformanceObserver((list) => {
    const e = list.getEntriesByName('first-contentful-paint')[0];
    if (e) { done({fcp: e.startTime, load}); }
  }).observe({type: 'paint', buffered: true});
  setTimeout(() => done({fcp: null, load}), 5000);
})"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("GT_TOWN", "GT_AGENT", "BD_DB", "BEADS_DB", "TMUX")}
    env["BD_ACTOR"] = "bench"
    return env


def build_town(tmp: Path, beads: int, agents: int) -> Town:
    """A town with ``beads`` random beads and ``agents`` configured agents (no sessions)."""
    repo = tmp / "repo"
    repo.mkdir()
    for cmd in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "init"]):
        subprocess.run(["git", *cmd], cwd=repo, check=True, env={
            **_env(), "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com",
            "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.com"})
    town = init_town(str(tmp / "town"), prefix="bench", email="b@example.com", actor="bench")
    add_rig(town, "app", str(repo), actor="bench")
    graph = tmp / "graph.jsonl"
    graph.write_text("".join(json.dumps(b) + "\n" for b in generate(beads, beads * 3 // 2)))
    led = town.ledger("bench")
    try:
        import_jsonl(led, str(graph))
    finally:
        led.close()
    with open(town.config_path, "a", encoding="utf-8") as fh:
        for i in range(agents):
            fh.write(f'\n[agents.a{i:03d}]\nrig = "app"\nrole = "worker"\npreset = "command"\n'
                     f'command = ["sleep", "600"]\n')
    town.reload()
    return town


def start_dashboard(town: Town) -> tuple[subprocess.Popen[str], str]:
    """``gt dashboard --port 0`` over ``town``; the process and its URL."""
    proc = subprocess.Popen([str(GT), "dashboard", "--town", town.root, "--port", "0", "--json"],
                            stdout=subprocess.PIPE, text=True, env=_env())
    assert proc.stdout is not None
    text = ""
    while True:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"gt dashboard exited {proc.wait()}")
        text += line
        try:
            return proc, json.loads(text)["url"]
        except ValueError:
            continue


def _browser(p: Any, tmp: Path) -> Any:
    return p.chromium.launch_persistent_context(
        str(tmp / "profile"), executable_path=CHROMIUM, headless=True, args=CHROME_ARGS,
        viewport={"width": 1280, "height": 1000})


def _summary(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {"n": len(values), "median": round(statistics.median(values), 1),
            "p95": round(values[min(len(values) - 1, int(len(values) * 0.95))], 1),
            "max": round(values[-1], 1)}


def measure(quick: bool) -> dict[str, Any]:
    """Build the big town, then time first paint and SSE delivery."""
    from urllib.request import urlopen

    from playwright.sync_api import sync_playwright

    beads, agents = (2000, 20) if quick else (10000, 100)
    rounds, writes = (4, 5) if quick else (8, 20)
    tmp = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    t0 = time.perf_counter()
    town = build_town(tmp, beads, agents)
    built = time.perf_counter() - t0
    proc, url = start_dashboard(town)
    out: dict[str, Any] = {"beads": beads, "agents": agents, "town_build_s": round(built, 1)}
    try:
        with sync_playwright() as p:
            ctx = _browser(p, tmp)
            fcp, load = [], []
            for _ in range(rounds):
                page = ctx.new_page()
                page.goto(url, wait_until="load")
                timing = page.evaluate(PAINT_JS)
                if timing["fcp"] is None:
                    raise SystemExit("the browser reported no first-contentful-paint")
                fcp.append(float(timing["fcp"]))
                load.append(float(timing["load"]))
                page.close()
            # the first load is cold: the server computes the ready/blocked summary
            out["first_contentful_paint_cold_ms"] = round(fcp[0], 1)
            out["first_contentful_paint_ms"] = _summary(fcp[1:])
            api = []
            for _ in range(rounds):
                t = time.perf_counter()
                urlopen(url + "api/overview").read()
                api.append((time.perf_counter() - t) * 1000)
            out["api_overview_ms"] = _summary(api)
            out["load_ms"] = _summary(load)
            out["agents_on_page"] = agents

            page = ctx.new_page()
            page.goto(url)
            page.locator("#live-state.is-ok").wait_for(timeout=10000)
            page.evaluate("""() => { window.arrived = {};
                const es = new EventSource('/api/stream');
                es.onmessage = (m) => { const e = JSON.parse(m.data);
                    if (e.bead_id) window.arrived[e.bead_id] = Date.now(); }; }""")
            time.sleep(0.5)  # the listener's own stream opens
            led = town.ledger("bench")
            sse, shown = [], []
            try:
                for i in range(writes):
                    stamp = time.time() * 1000
                    bead = led.create(f"fresh bead {i}", priority=0)["id"]
                    page.locator(f'#events a[href="/beads/{bead}"]').first.wait_for(timeout=10000)
                    shown.append(time.time() * 1000 - stamp)
                    got = page.evaluate(f"() => window.arrived[{json.dumps(bead)}]")
                    sse.append(float(got) - stamp)
                    time.sleep(0.2)
            finally:
                led.close()
            out["sse_delivery_ms"] = _summary(sse)
            out["bead_on_page_ms"] = _summary(shown)
            ctx.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return out


def screenshots(town_dir: str, folder: str) -> list[str]:
    """PNGs of the main pages of an existing town (overview, bead, molecule, feed)."""
    from playwright.sync_api import sync_playwright

    town = Town.find(town_dir)
    led = town.ledger()
    try:
        roots = [b for b in led.list() if b.get("issue_type") == "epic"] or led.list()
        from gastown.dashboard.views import molecule_page

        mol = None
        for b in roots:
            try:
                mol = molecule_page(led, b["id"])["id"]
                break
            except Exception:  # noqa: BLE001 - not a molecule: try the next
                continue
        deps = max(led.list(), key=lambda b: len(led.show(b["id"])["dependencies"])
                   + len(led.show(b["id"])["dependents"]))["id"]
    finally:
        led.close()
    proc, url = start_dashboard(town)
    os.makedirs(folder, exist_ok=True)
    written = []
    try:
        with sync_playwright() as p:
            ctx = _browser(p, Path(tempfile.mkdtemp()))
            page = ctx.new_page()
            pages = [("overview", url), ("bead", f"{url}beads/{deps}"), ("feed", f"{url}feed")]
            if mol:
                pages.insert(2, ("molecule", f"{url}molecules/{mol}"))
            for name, address in pages:
                page.goto(address)
                page.locator("#live-state.is-ok").wait_for(timeout=10000)
                path = os.path.join(folder, f"{name}.png")
                page.screenshot(path=path, full_page=False)
                written.append(path)
            ctx.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return written


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="2,000 beads and 20 agents")
    ap.add_argument("--screenshots", metavar="DIR", help="save page screenshots instead")
    ap.add_argument("--town", help="the town to screenshot (with --screenshots)")
    a = ap.parse_args()
    if a.screenshots:
        if not a.town:
            ap.error("--screenshots needs --town")
        print("\n".join(screenshots(a.town, a.screenshots)))
        return 0
    result = measure(a.quick)
    result["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(json.dumps(result, indent=2))
    results = ROOT / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    (results / "dashboard.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
