"""The dashboard's web application: HTML pages, a JSON API under ``/api/``, and live events.

Pages: ``/`` (town overview), ``/beads/ID``, ``/molecules/ID``, ``/feed``.  API:
``/api/overview``, ``/api/beads/ID``, ``/api/molecules/ID``, ``/api/events?after=N``,
``/api/stream`` (server-sent events; resumes after ``Last-Event-ID``) and the
writes ``POST /api/beads/ID/{close,claim,comment}`` (token only, see
:mod:`.security`).  A page asked with ``X-Fragment: 1`` answers only its live
part, which the page's script swaps in when an event arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import GastownError, NotFoundError
from . import views
from .security import COOKIE, HostGuard, token_ok

if TYPE_CHECKING:
    from ..ledger.core import Ledger
    from ..town.core import Town

__all__ = ["create_app"]

HERE = os.path.dirname(os.path.abspath(__file__))
#: seconds between two looks at the event log while a stream is open
POLL_S = 0.1
#: seconds of silence after which a stream sends a keep-alive comment
KEEPALIVE_S = 15.0


def _env() -> Environment:
    return Environment(loader=FileSystemLoader(os.path.join(HERE, "templates")),
                       autoescape=select_autoescape(["html"]))


def _error_status(exc: GastownError) -> int:
    return {"not_found": 404, "conflict": 409}.get(exc.code, 400)


class Dashboard:
    """The state one app holds: the town, one ledger, the templates, the token."""

    def __init__(self, town: Town, led: Ledger, token: str | None, poll: float) -> None:
        self.town, self.led, self.token, self.poll = town, led, token, poll
        self.templates = _env()
        self.summary = views.SummaryCache()
        self._config_stamp = self._stamp()

    def _stamp(self) -> tuple[int, int]:
        try:
            st = os.stat(self.town.config_path)
        except OSError:
            return (0, 0)
        return (st.st_mtime_ns, st.st_size)

    def overview(self) -> dict[str, Any]:
        """The overview, after re-reading town.toml if it changed (a broken edit is kept
        out: the last good configuration stays, and the controller's line says why)."""
        stamp = self._stamp()
        if stamp != self._config_stamp:
            self._config_stamp = stamp
            with contextlib.suppress(GastownError):
                self.town.reload()
        return views.overview(self.town, self.led, cache=self.summary)

    # ------------------------------------------------------------ helpers
    def page(self, request: Request, name: str, **data: Any) -> HTMLResponse:
        fragment = request.headers.get("x-fragment") == "1"
        template = self.templates.get_template(f"_{name}.html" if fragment else f"{name}.html")
        html = template.render(town=self.town.name, writable=bool(self.token),
                               authed=token_ok(self.token, request.headers,
                                               request.cookies)[0], **data)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    async def call(self, fn: Any, *args: Any) -> Any:
        return await run_in_threadpool(fn, *args)

    # -------------------------------------------------------------- pages
    async def overview_page(self, request: Request) -> Response:
        data = await self.call(self.overview)
        return self.page(request, "overview", o=data, last_seq=data["last_seq"])

    async def bead_page(self, request: Request) -> Response:
        bead_id = request.path_params["bead_id"]
        try:
            bead = await self.call(views.bead_view, self.led, bead_id)
        except GastownError as exc:
            return self.error_page(request, exc)
        return self.page(request, "bead", b=bead, last_seq=await self.call(self.last_seq))

    async def molecule_html(self, request: Request) -> Response:
        try:
            mol = await self.call(views.molecule_page, self.led, request.path_params["mol_id"])
        except GastownError as exc:
            return self.error_page(request, exc)
        return self.page(request, "molecule", m=mol, last_seq=await self.call(self.last_seq))

    async def feed_page(self, request: Request) -> Response:
        last = await self.call(self.last_seq)
        events = await self.call(views.events_after, self.led, max(0, last - 100), 100)
        return self.page(request, "feed", events=list(reversed(events)), last_seq=last)

    def error_page(self, request: Request, exc: GastownError) -> HTMLResponse:
        html = self.templates.get_template("error.html").render(
            town=self.town.name, message=str(exc), last_seq=0)
        return HTMLResponse(html, status_code=_error_status(exc))

    def last_seq(self) -> int:
        return self.led.last_event_seq()

    # ---------------------------------------------------------------- API
    async def api(self, fn: Any, *args: Any) -> JSONResponse:
        try:
            data = await self.call(fn, *args)
        except GastownError as exc:
            return JSONResponse(exc.to_json(), status_code=_error_status(exc))
        return JSONResponse(json.loads(json.dumps(data, default=str)))

    async def api_overview(self, request: Request) -> Response:
        return await self.api(self.overview)

    async def api_bead(self, request: Request) -> Response:
        return await self.api(views.bead_view, self.led, request.path_params["bead_id"])

    async def api_molecule(self, request: Request) -> Response:
        return await self.api(views.molecule_page, self.led, request.path_params["mol_id"])

    async def api_events(self, request: Request) -> Response:
        try:
            after = int(request.query_params.get("after", "0"))
            limit = int(request.query_params.get("limit", "200"))
        except ValueError:
            return JSONResponse({"error": "after and limit must be whole numbers",
                                 "code": "usage"}, status_code=400)
        return await self.api(views.events_after, self.led, after, limit)

    async def stream(self, request: Request) -> Response:
        """Server-sent events: every event after Last-Event-ID (or ``?after=``), as committed."""
        raw = request.headers.get("last-event-id") or request.query_params.get("after")
        try:
            after = int(raw) if raw not in (None, "") else await self.call(self.last_seq)
        except ValueError:
            return JSONResponse({"error": f"bad event id {raw!r}", "code": "usage"},
                                status_code=400)
        return StreamingResponse(self._events(after), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store",
                                          "X-Accel-Buffering": "no"})

    async def _events(self, after: int) -> AsyncIterator[str]:
        from ..ledger.events import follow

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        stop = threading.Event()

        def run() -> None:
            try:
                for ev in follow(self.led, after, interval=self.poll, stop=stop.is_set):
                    loop.call_soon_threadsafe(queue.put_nowait, ev)
            except Exception:  # noqa: BLE001 - the stream ends; the browser reconnects
                pass
            with contextlib.suppress(RuntimeError):  # the loop may be gone at shutdown
                loop.call_soon_threadsafe(queue.put_nowait, None)

        threading.Thread(target=run, name="dashboard-stream", daemon=True).start()
        try:
            yield "retry: 1000\n\n"
            while True:
                try:
                    ev = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                if ev is None:
                    return
                yield f"id: {ev['seq']}\ndata: {json.dumps(ev, default=str)}\n\n"
        finally:
            stop.set()

    # ------------------------------------------------------------- writes
    async def write(self, request: Request) -> Response:
        ok, why = token_ok(self.token, request.headers, request.cookies)
        if not ok:
            return JSONResponse({"error": why, "code": "forbidden"}, status_code=403)
        try:
            body = await request.json() if await request.body() else {}
        except ValueError:
            return JSONResponse({"error": "the body is not JSON", "code": "usage"},
                                status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "the body must be a JSON object", "code": "usage"},
                                status_code=400)
        action, bead_id = request.path_params["action"], request.path_params["bead_id"]
        return await self.api(self._write, action, bead_id, body)

    def _write(self, action: str, bead_id: str, body: dict[str, Any]) -> Any:
        led = self.led
        bead_id = led.resolve_id(bead_id)
        if action == "close":
            return led.close_bead(bead_id, reason=body.get("reason") or None)
        if action == "claim":
            return led.claim(bead_id, body.get("assignee") or None)
        if action == "comment":
            text = str(body.get("text") or "").strip()
            if not text:
                from ..errors import UsageError

                raise UsageError("comment: the text is empty")
            return led.add_comment(bead_id, text)
        raise NotFoundError(f"no write {action!r} (close, claim, comment)")

    async def login(self, request: Request) -> Response:
        """Check a token once and keep it in an HttpOnly, same-site cookie."""
        try:
            token = str((await request.json()).get("token", ""))
        except (ValueError, AttributeError):
            token = ""
        ok, why = token_ok(self.token, {"authorization": f"Bearer {token}"}, {})
        if not ok:
            return JSONResponse({"error": why, "code": "forbidden"}, status_code=403)
        resp = JSONResponse({"ok": True})
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
        return resp


def create_app(town: Town, led: Ledger | None = None, *, token: str | None = None,
               hosts: Iterable[str] = (), poll: float = POLL_S) -> Any:
    """The ASGI application for ``town`` (a ledger of its own unless ``led`` is given).

    ``token``: allow writes that carry it.  ``hosts``: Host names answered besides
    the loopback ones.
    """
    own = led is None
    ledger = led if led is not None else town.ledger()
    d = Dashboard(town, ledger, token, poll)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if own:
                ledger.close()

    routes = [
        Route("/", d.overview_page),
        Route("/beads/{bead_id}", d.bead_page),
        Route("/molecules/{mol_id}", d.molecule_html),
        Route("/feed", d.feed_page),
        Route("/api/overview", d.api_overview),
        Route("/api/beads/{bead_id}", d.api_bead),
        Route("/api/molecules/{mol_id}", d.api_molecule),
        Route("/api/events", d.api_events),
        Route("/api/stream", d.stream),
        Route("/api/beads/{bead_id}/{action}", d.write, methods=["POST"]),
        Route("/api/login", d.login, methods=["POST"]),
        Mount("/static", StaticFiles(directory=os.path.join(HERE, "static")), name="static"),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    return HostGuard(app, hosts)
