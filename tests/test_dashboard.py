"""``gt dashboard``: the town in a real browser (Debian's headless Chromium via Playwright).

Each test runs ``gt dashboard`` as a process over a real town and looks at it
the way a person does (a browser) or a script does (the JSON API, raw HTTP).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.townkit import BIN, add_agent, clean_env, gt, sleeper, wait_for
from gastown.town.core import Town

pytest_plugins = ("agents.fixtures",)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: no network here: nothing of Chromium's own may reach out
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync"]
needs_browser = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                   reason="needs Debian's chromium (apt-get install chromium)")
TALKER = [sys.executable, "-c", "print('compiling textkit, 3 of 7', flush=True)\n"
          "import time; time.sleep(300)"]


class Dashboard:
    """A running ``gt dashboard`` process and its address."""

    def __init__(self, proc: subprocess.Popen[str], url: str, port: int, err: str) -> None:
        self.proc, self.url, self.port, self.err = proc, url, port, err

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """One HTTP request; the answer's status and body (JSON when it is JSON)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        data = json.dumps(body) if body is not None else None
        conn.request(method, path, body=data, headers={"Content-Type": "application/json",
                                                        **(headers or {})})
        resp = conn.getresponse()
        raw = resp.read().decode()
        conn.close()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw


def start_dashboard(town: Town, *args: str, **env: str) -> Dashboard:
    """``gt dashboard --port 0 --json`` in the background, once it listens."""
    err = os.path.join(town.gt_dir, "dashboard.err")
    with open(err, "w") as err_file:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen([str(BIN / "gt"), "dashboard", "--town", town.root, "--port",
                                 "0", "--json", *args], stdout=subprocess.PIPE,
                                stderr=err_file, text=True, env=clean_env(**env))
    assert proc.stdout is not None
    text = ""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise AssertionError(f"gt dashboard exited {proc.wait()}")
        text += line
        try:
            info = json.loads(text)
        except ValueError:
            continue
        return Dashboard(proc, info["url"], info["port"], err)
    proc.kill()
    raise AssertionError("gt dashboard did not say where it listens")


def stop(d: Dashboard) -> None:
    """Stop a dashboard process (Ctrl-C, as a person would) and wait for it."""
    d.proc.send_signal(2)
    try:
        d.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        d.proc.kill()
        d.proc.wait()
    sys.stderr.write(Path(d.err).read_text())  # shown with a failing test


@pytest.fixture
def dash(town: Town) -> Iterator[Dashboard]:
    """A read-only dashboard of ``town``."""
    d = start_dashboard(town)
    try:
        yield d
    finally:
        stop(d)


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Chromium with a fresh profile (never a downloaded browser)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("needs Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM,
            headless=True, args=CHROME_ARGS, viewport={"width": 1280, "height": 900})
        try:
            yield ctx
        finally:
            ctx.close()


@pytest.fixture
def page(browser_context: Any) -> Iterator[Any]:
    """A fresh browser tab (cookies of earlier tests cleared)."""
    browser_context.clear_cookies()
    pg = browser_context.new_page()
    try:
        yield pg
    finally:
        pg.close()


def bd(town: Town, *args: str) -> str:
    """``bd ARGS`` in the town, as a shell would run it; its stdout."""
    proc = subprocess.run([str(BIN / "bd"), *args], cwd=town.root, env=clean_env(),
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def merge_requests(town: Town) -> tuple[str, str]:
    """One queued merge request and one sent back by failing tests."""
    led = town.ledger("tester")
    try:
        meta = {"rig": "app", "base": "main", "commit": "0" * 40, "author": "app/worker/ann"}
        queued = led.create("Merge feat/colours: colours", issue_type="merge-request",
                            metadata={**meta, "branch": "feat/colours"})["id"]
        back = led.create("Merge feat/broken: broken", issue_type="merge-request",
                          metadata={**meta, "branch": "feat/broken",
                                    "mq": {"state": "tests-failed",
                                           "detail": "test_title_case failed: 1 of 12"}})["id"]
        led.update(back, status="blocked")
        return queued, back
    finally:
        led.close()


# ------------------------------------------------------------------ pages in a browser
@needs_browser
def test_the_overview_shows_every_agent_and_the_merge_queue(town: Town, dash: Dashboard,
                                                             page: Any) -> None:
    add_agent(town, "ann", TALKER)
    add_agent(town, "bob", sleeper())  # configured, never started
    queued, back = merge_requests(town)

    page.goto(dash.url)
    for name in ("ann", "bob"):
        assert page.locator(f'tr.agent[data-agent="{name}"]').count() == 1, name
    assert "stopped" in page.locator('tr[data-agent="bob"] .state').inner_text()
    # ann starts and talks while the page is open: her state and last line of output
    # reach it without a reload
    page.evaluate("window.notReloaded = true")
    gt(town, "session", "start", "ann")
    page.locator('tr[data-agent="ann"] td.last', has_text="compiling textkit, 3 of 7").wait_for(
        timeout=10000)
    assert "running" in page.locator('tr[data-agent="ann"] .state').inner_text()
    assert page.evaluate("window.notReloaded") is True
    mq = page.locator("#merge-queue")
    assert mq.locator(f'tr[data-mr="{queued}"]').inner_text().split()[1] == "queued"
    sent_back = mq.locator(f'tr[data-mr="{back}"]')
    assert "test_title_case failed: 1 of 12" in sent_back.inner_text()
    assert "sent-back" in (sent_back.get_attribute("class") or "")
    # the sent-back request is listed before the queued one
    rows = mq.locator("tr[data-mr]")
    assert [rows.nth(i).get_attribute("data-mr") for i in range(rows.count())] == [back, queued]


@needs_browser
def test_a_bead_page_draws_its_dependency_graph(town: Town, dash: Dashboard, page: Any) -> None:
    led = town.ledger("tester")
    try:
        design = led.create("design the API")["id"]
        spec = led.create("write the spec")["id"]
        api = led.create("build the API")["id"]
        docs = led.create("document the API")["id"]
        demo = led.create("demo the API")["id"]
        led.add_dep(api, design)
        led.add_dep(api, spec)
        led.add_dep(docs, api)                 # waits only for api
        led.add_dep(demo, api)
        led.add_dep(demo, spec)                # waits for spec too
        led.add_comment(api, "start with the read side", author="ann")
    finally:
        led.close()

    page.goto(f"{dash.url}beads/{api}")
    svg = page.locator("#graph svg.depgraph")
    assert svg.count() == 1
    drawn = {n.get_attribute("data-id") for n in svg.locator("g.node").all()}
    assert drawn == {api, design, spec, docs, demo}
    assert svg.locator("line.edge").count() == 4
    assert [a.inner_text() for a in page.locator("a.unblocks").all()] == [docs]
    assert "start with the read side" in page.locator("#comments").inner_text()
    # a node links to its own bead page
    svg.locator(f'g.node[data-id="{design}"]').click()
    page.wait_for_url(f"**/beads/{design}")
    assert design in page.locator("h1").inner_text()


@needs_browser
def test_a_new_bead_appears_on_the_open_page_within_two_seconds(town: Town, dash: Dashboard,
                                                                page: Any) -> None:
    page.goto(dash.url)
    page.locator("#live-state.is-ok").wait_for(timeout=10000)  # the event stream is open
    page.evaluate("window.notReloaded = true")
    bead = bd(town, "create", "a bead made in a shell", "--silent")
    made = time.monotonic()
    page.locator(f'#ready li[data-bead="{bead}"]').wait_for(timeout=2000)
    assert time.monotonic() - made < 2.0
    assert page.evaluate("window.notReloaded") is True, "the page was reloaded"
    assert page.locator("#ready-count").inner_text() == "1"


@needs_browser
def test_the_feed_page_adds_events_as_they_happen(town: Town, dash: Dashboard,
                                                  page: Any) -> None:
    page.goto(f"{dash.url}feed")
    page.locator("#live-state.is-ok").wait_for(timeout=10000)
    bead = bd(town, "create", "fed <b>bold</b> title", "--silent")
    row = page.locator("#feed tr", has_text=bead).first
    row.wait_for(timeout=2000)
    assert "title=fed <b>bold</b> title" in row.inner_text(), "shown as text, not markup"


@needs_browser
def test_writes_from_the_browser_need_the_token(town: Town, tmp_path: Path, page: Any) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret-token\n")
    token.chmod(0o600)
    bead = bd(town, "create", "close me from the browser", "--silent")
    d = start_dashboard(town, "--token-file", str(token))
    try:
        page.goto(f"{d.url}beads/{bead}")
        page.locator("button[data-action=close]").click()
        page.locator(".actions .result", has_text="needs the dashboard's token").wait_for(
            timeout=5000)
        assert json.loads(bd(town, "show", bead, "--json"))[0]["status"] == "open"
        page.fill("#login input[name=token]", "s3cret-token")
        page.locator("#login button").click()
        page.locator(".unlocked").wait_for(timeout=5000)
        page.locator("button[data-action=close]").click()
        wait_for(lambda: json.loads(bd(town, "show", bead, "--json"))[0]["status"] == "closed",
                 5, 0.1, what="the bead to be closed")
    finally:
        stop(d)


# ------------------------------------------------------------------ the API and its guards
def test_a_write_without_the_token_is_refused_and_with_it_succeeds(town: Town,
                                                                   tmp_path: Path) -> None:
    bead = bd(town, "create", "guarded", "--silent")
    ro = start_dashboard(town)
    try:
        status, body = ro.request("POST", f"/api/beads/{bead}/close", {})
        assert status == 403 and "read-only" in body["error"]
    finally:
        stop(ro)
    d = start_dashboard(town, GT_DASHBOARD_TOKEN="env-token")
    try:
        assert d.request("POST", f"/api/beads/{bead}/comment", {"text": "hi"})[0] == 403
        assert d.request("POST", f"/api/beads/{bead}/close", {},
                         {"Authorization": "Bearer wrong"})[0] == 403
        assert json.loads(bd(town, "show", bead, "--json"))[0]["status"] == "open"
        auth = {"Authorization": "Bearer env-token"}
        status, body = d.request("POST", f"/api/beads/{bead}/comment", {"text": "from the web"},
                                 auth)
        assert status == 200 and body["text"] == "from the web"
        status, body = d.request("POST", f"/api/beads/{bead}/claim", {}, auth)
        assert status == 200 and body["status"] == "in_progress"
        assert d.request("POST", f"/api/beads/{bead}/claim", {"assignee": "zed"}, auth)[0] == 409
        status, body = d.request("POST", f"/api/beads/{bead}/close", {"reason": "done"}, auth)
        assert status == 200 and body["status"] == "closed"
        assert d.request("POST", "/api/beads/nope-zzz/close", {}, auth)[0] == 404
        assert d.request("POST", f"/api/beads/{bead}/comment", {"text": " "}, auth)[0] == 400
    finally:
        stop(d)
    shown = json.loads(bd(town, "show", bead, "--json"))[0]
    assert shown["status"] == "closed"
    assert [c["text"] for c in json.loads(bd(town, "comments", bead, "--json"))] == \
        ["from the web"]


def test_a_token_file_others_can_read_is_refused(town: Town, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("abc\n")
    token.chmod(0o644)
    proc = gt(town, "dashboard", "--port", "0", "--token-file", str(token), check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()], "one line"
    assert "readable by others" in proc.stderr and "Traceback" not in proc.stderr
    missing = gt(town, "dashboard", "--port", "0", "--token-file", str(tmp_path / "nope"),
                 check=False)
    assert missing.returncode == 2 and "nope" in missing.stderr


def test_non_loopback_host_headers_are_refused(dash: Dashboard) -> None:
    for host in ("evil.example", f"evil.example:{dash.port}", "10.0.0.5", "127.0.0.1.nip.io"):
        status, body = dash.request("GET", "/api/overview", headers={"Host": host})
        assert status == 403, host
        assert "host not allowed" in body
    for host in (f"127.0.0.1:{dash.port}", f"localhost:{dash.port}", "[::1]"):
        assert dash.request("GET", "/api/overview", headers={"Host": host})[0] == 200, host


def test_the_json_api(town: Town, dash: Dashboard) -> None:
    blocker = bd(town, "create", "blocker", "--silent")
    waiter = bd(town, "create", "waiter", "--silent")
    bd(town, "dep", "add", waiter, blocker)
    status, o = dash.request("GET", "/api/overview")
    assert status == 200
    assert o["ready"]["count"] == 1 and o["blocked"]["count"] == 1
    assert o["blocked"]["beads"][0]["blocked_by"] == [blocker]
    status, b = dash.request("GET", f"/api/beads/{blocker}")
    assert status == 200 and b["unblocks"] == [waiter]
    assert b["graph_svg"].startswith("<svg")
    status, err = dash.request("GET", "/api/beads/nope-zzz")
    assert status == 404 and err["code"] == "not_found"
    assert dash.request("GET", f"/api/molecules/{blocker}")[0] == 404
    last = o["last_seq"]
    status, evs = dash.request("GET", f"/api/events?after={last - 2}")
    assert status == 200 and [e["seq"] for e in evs] == [last - 1, last]
    assert dash.request("GET", "/api/events?after=x")[0] == 400


def test_every_page_escapes_what_it_renders(town: Town, dash: Dashboard) -> None:
    evil = {"title": "<script>alert(1)</script>", "dep": "<b onclick=x>'dep'&</b>",
            "desc": "<img src=x onerror=alert(2)>", "comment": "</pre><i>c</i>",
            "id": "<svg onload=alert(3)>"}
    bead = bd(town, "create", evil["title"], "--description", evil["desc"], "--silent")
    dep = bd(town, "create", evil["dep"], "--silent")
    bd(town, "dep", "add", bead, dep)
    bd(town, "comments", "add", bead, evil["comment"])
    pages = {"overview": ("/", ("title", "dep")),
             "bead": (f"/beads/{bead}", ("title", "dep", "desc", "comment")),
             "feed": ("/feed", ("title", "dep")),
             "error": ("/beads/%3Csvg%20onload=alert(3)%3E", ("id",))}
    for name, (path, shown) in pages.items():
        status, html = dash.request("GET", path)
        assert status in (200, 404) and isinstance(html, str), (name, status)
        for key in shown:
            raw = evil[key]
            assert raw not in html, (name, key)
            assert raw.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") \
                .split("'")[0] in html, (name, key)


class Stream:
    """An open ``/api/stream``: its headers are in, so where it starts is settled."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.conn.request("GET", "/api/stream", headers=headers)
        self.resp = self.conn.getresponse()
        assert self.resp.status == 200
        assert self.resp.getheader("content-type", "").startswith("text/event-stream")

    def read(self, count: int) -> list[tuple[int, dict[str, Any]]]:
        """The next ``count`` events (id and data)."""
        out: list[tuple[int, dict[str, Any]]] = []
        ident = None
        while len(out) < count:
            line = self.resp.fp.readline().decode().rstrip("\n")
            if line.startswith("id: "):
                ident = int(line[4:])
            elif line.startswith("data: "):
                assert ident is not None
                out.append((ident, json.loads(line[6:])))
        return out

    def close(self) -> None:
        """Hang up."""
        self.conn.close()


def test_the_event_stream_resumes_after_the_last_event_id(town: Town, dash: Dashboard) -> None:
    for n in range(3):
        bd(town, "create", f"bead {n}", "--silent")
    last = dash.request("GET", "/api/overview")[1]["last_seq"]
    resumed = Stream(dash.port, {"Last-Event-ID": str(last - 2)})
    got = resumed.read(2)
    resumed.close()
    assert [i for i, _ in got] == [last - 1, last]
    assert all(i == ev["seq"] for i, ev in got)
    # a stream opened with no id starts from now: the next event is the first it sends
    fresh_stream = Stream(dash.port, {})
    fresh = bd(town, "create", "after the stream opened", "--silent")
    first = fresh_stream.read(1)
    fresh_stream.close()
    assert first[0][1]["bead_id"] == fresh and first[0][0] == last + 1


def test_a_port_in_use_or_out_of_range_is_one_clear_line(town: Town) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = str(taken.getsockname()[1])
        busy = gt(town, "dashboard", "--port", port, check=False)
    assert busy.returncode == 2, busy.stderr
    assert busy.stderr.count("\n") == 1 and port in busy.stderr and "Traceback" not in busy.stderr
    wrong = gt(town, "dashboard", "--port", "70000", check=False)
    assert wrong.returncode == 2 and "--port 70000" in wrong.stderr
