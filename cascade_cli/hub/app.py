"""The ASGI application of `cascade serve`: FastAPI routes for HTTP, the bare WebSocket endpoint.

`create_app(options, ...)` returns an ASGI callable for uvicorn (with
`ws=cascade_cli.hub.wsproto.HubWebSocketProtocol`). The hub service is built when the app's
lifespan starts (inside the server's event loop) and stopped when it ends.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.middleware.gzip import GZipMiddleware

from cascade_cli import __version__
from cascade_cli.hub import messages
from cascade_cli.hub import metrics as prom
from cascade_cli.hub.dashboard import DashboardFeed, page, wants_html
from cascade_cli.hub.limits import RateLimiter, bearer, token_matches
from cascade_cli.hub.routing import ChannelState
from cascade_cli.hub.service import BusUnavailable, HubOptions, HubService, UnknownChannel
from cascade_cli.hub.wsendpoint import WebSocketEndpoint

if TYPE_CHECKING:
    from cascade_cli.monitor.sources import Monitor

MAX_BODY = 1024 * 1024
"""Largest publish request body, in bytes."""


MAX_HISTORY_PAGE = 1000
"""Most events one `GET /api/channels/{c}/history` returns."""

MONITOR_WS_PATH = "/api/monitor/ws"
"""The dashboard's live feed: one monitor snapshot per interval."""

PAGE_SECURITY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                 "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'")
"""The dashboard page's Content-Security-Policy: nothing loads from anywhere but this server."""


def unavailable(message: str) -> JSONResponse:
    """503 with Retry-After: Redis cannot take or give history right now."""
    response = error(503, f"{message}; retry later")
    response.headers["Retry-After"] = "1"
    return response


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    """A JSON error answer: `{"error": message, ...}`."""
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


class HttpFigures:
    """HTTP request latency per route, and counts per route and status."""

    def __init__(self) -> None:
        self.latency: dict[tuple[str, str], prom.Histogram] = {}
        self.counts: dict[tuple[str, str, int], int] = {}

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route)
        histogram = self.latency.get(key)
        if histogram is None:
            histogram = self.latency[key] = prom.Histogram(prom.LATENCY_BUCKETS)
        histogram.observe(seconds)
        counted = (method, route, status)
        self.counts[counted] = self.counts.get(counted, 0) + 1


class CascadeASGI:
    """WebSocket scopes go to the hub's endpoint; everything else to the FastAPI app, timed."""

    def __init__(self, api: FastAPI, state: AppState) -> None:
        self.api = api
        self.state = state

    def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Awaitable[None]:
        """Returns the handler's coroutine rather than awaiting it: one coroutine frame less per
        WebSocket connection (serve it as ASGI 3: uvicorn's `interface="asgi3"`)."""
        kind = scope["type"]
        if kind == "websocket":
            if scope["path"].rstrip("/") == MONITOR_WS_PATH and self.state.dashboard is not None:
                return self.state.dashboard(scope, receive, send)
            endpoint = self.state.endpoint
            return endpoint(scope, receive, send) if endpoint else _refuse_websocket(receive, send)
        if kind != "http":
            return self.api(scope, receive, send)
        return self._http(scope, receive, send)

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        started = time.perf_counter()
        status = 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.api(scope, receive, send_status)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            self.state.http.record(scope["method"], name, status, time.perf_counter() - started)


async def _refuse_websocket(receive: Any, send: Any) -> None:
    """Before the lifespan started: refuse (HTTP 403 during the handshake)."""
    await receive()
    await send({"type": "websocket.close", "code": 1013})


class AppState:
    """What the routes share: the service (once started), figures and extra components."""

    def __init__(self, options: HubOptions) -> None:
        self.options = options
        self.venice: Any = None
        self.service: HubService | None = None
        self.endpoint: WebSocketEndpoint | None = None
        self.dashboard: DashboardFeed | None = None
        self.http = HttpFigures()
        self.limiter = RateLimiter(options.connect_rate, clock=time.monotonic)


def create_app(options: HubOptions, *, bus_factory: Callable[[HubService], Any] | None = None,
               venice: Callable[[HubService], Any] | None = None,
               monitor_sources: Callable[[AppState], dict[str, Any]] | None = None,
               monitor_interval: float = 1.0, monitor_window: float = 300.0) -> CascadeASGI:
    """The ASGI app. `bus_factory(service)` builds the bus (default: local only);
    `venice(service)` builds the Venice proxy (None: /api/venice answers 404);
    `monitor_sources(state)` gives the dashboard's Redis and Venice sources (`monitor.sources`
    objects, or a string saying why a source is off; default: both off)."""
    from contextlib import asynccontextmanager

    state = AppState(options)

    def make_monitor() -> Monitor:
        from cascade_cli.monitor.sources import HubLocalSource, Monitor

        service = hub()
        hub_source = HubLocalSource(service, state.http, state.venice, "this server",
                                    every=monitor_interval, window=monitor_window)
        extra = monitor_sources(state) if monitor_sources else {
            "redis": "not watched by this server", "venice": "not watched by this server"}
        return Monitor({"redis": extra["redis"], "hub": hub_source, "venice": extra["venice"]},
                       interval=monitor_interval)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        service = HubService(options, bus_factory)
        state.service = service
        state.endpoint = WebSocketEndpoint(service, state.limiter)
        state.venice = venice(service) if venice else None
        state.dashboard = DashboardFeed(make_monitor, options.allowed_origins)
        await service.start()
        try:
            yield
        finally:
            await state.dashboard.aclose()
            await service.stop()
            if state.venice is not None:
                await state.venice.aclose()

    api = FastAPI(title="cascade hub", version=__version__, lifespan=lifespan,
                  description="HTTP API of `cascade serve`. The WebSocket hub is at /ws and "
                              "/ws/{channel}; its protocol is in docs/hub.md.")
    api.add_middleware(GZipMiddleware, minimum_size=1024)
    if options.allowed_origins:
        from starlette.middleware.cors import CORSMiddleware

        api.add_middleware(CORSMiddleware, allow_origins=list(options.allowed_origins),
                           allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"])

    def hub() -> HubService:
        assert state.service is not None, "the lifespan has not started"
        return state.service

    def limited(request: Request) -> JSONResponse | None:
        client = request.client.host if request.client else ""
        if not state.limiter.allow(client):
            hub().count_rejection("request_rate")
            response = error(503, "request rate limit for this address: try again later")
            response.headers["Retry-After"] = "1"
            return response
        return None

    def cross_site(request: Request) -> JSONResponse | None:
        """Browsers send Origin: refuse origins off the allow-list, and bodies that are not
        declared JSON (a cross-site text/plain POST needs no CORS preflight)."""
        origin = request.headers.get("origin")
        if origin is None:
            return None
        if options.allowed_origins and origin not in options.allowed_origins:
            hub().count_rejection("origin")
            return error(403, f"origin {origin!r} is not allowed: add it with --allow-origin")
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            hub().count_rejection("origin")
            return error(415, "a browser publish must be sent as Content-Type: application/json")
        return None

    @api.get("/", summary="The live dashboard to browsers (Accept: text/html); this index to others")
    async def index(request: Request, response: Response) -> Any:
        if wants_html(request.headers.get("accept")):
            return Response(page(), media_type="text/html; charset=utf-8",
                            headers={"Content-Security-Policy": PAGE_SECURITY, "Cache-Control": "no-cache",
                                     "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                                     "Vary": "Accept"})
        response.headers["Vary"] = "Accept"   # a cache must not give the page to API clients
        base = str(request.base_url).rstrip("/")
        ws = base.replace("http", "ws", 1)
        return {"name": "cascade hub", "version": __version__,
                "channels": sorted(hub().hub.channels), "websocket": f"{ws}/ws/{{channel}}",
                "health": f"{base}/health", "metrics": f"{base}/metrics", "docs": f"{base}/docs",
                "dashboard": f"{base}/", "monitor": f"{base}/api/monitor",
                "monitor_ws": f"{ws}{MONITOR_WS_PATH}"}

    @api.get("/api/monitor", summary="One snapshot of the dashboard: Redis, this hub, the Venice bridge")
    async def monitor_snapshot() -> dict[str, Any]:
        assert state.dashboard is not None, "the lifespan has not started"
        return await state.dashboard.snapshot()

    @api.get("/health", summary="Liveness, with the Redis bus state")
    async def health() -> dict[str, Any]:
        return hub().health()

    @api.get("/ready", summary="Readiness: 503 while starting, stopping or cut off from Redis")
    async def ready() -> JSONResponse:
        ok, reason = hub().readiness()
        return JSONResponse({"ready": ok, "reason": reason}, status_code=200 if ok else 503)

    @api.get("/metrics", summary="Prometheus metrics")
    async def metrics() -> Response:
        from cascade_cli.hub.exposition import families

        text = prom.render(families(hub(), state.http, state.venice))
        return Response(text, media_type=prom.CONTENT_TYPE)

    @api.get("/api/channels", summary="Every channel with its subscribers and counters")
    async def channels() -> dict[str, Any]:
        service = hub()
        return {"channels": [service.channel_info(s) for s in service.hub.channels.values()]}

    @api.get("/api/channels/{channel}", summary="One channel and its subscribers")
    async def channel(channel: str) -> Any:
        service = hub()
        state_ = service.hub.channels.get(channel)
        if state_ is None and options.allow_any_channel and messages.valid_channel_name(channel):
            state_ = ChannelState(channel)   # a valid name nobody used yet: shown, not created
        if state_ is None:
            return error(404, f"unknown channel {channel!r}", channels=sorted(service.hub.channels))
        info = service.channel_info(state_)
        info["clients"] = sorted(s.id for s in state_.subscribers)
        return info

    @api.get("/api/clients", summary="Connected WebSocket clients (sort=queue_depth&limit=N: the "
                                      "N deepest send queues)")
    async def clients(sort: str | None = None, limit: str | None = None) -> Any:
        sessions = list(hub().hub.sessions.values())
        if sort not in (None, "queue_depth"):
            return error(422, f"sort must be queue_depth, not {sort!r}")
        if limit is not None and not (limit.isascii() and limit.isdigit() and int(limit) >= 1):
            return error(422, "limit must be a whole number of at least 1")
        if sort == "queue_depth":
            sessions.sort(key=lambda s: len(s.queue), reverse=True)
        if limit is not None:
            sessions = sessions[: int(limit)]
        return {"clients": [s.info() for s in sessions]}

    @api.post("/api/channels/{channel}/publish", summary="Publish one event or a list",
              openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
                  "schema": {"oneOf": [
                      {"type": "object", "required": ["data"], "properties": {"data": {}}},
                      {"type": "array", "items": {"type": "object", "required": ["data"]}},
                      {"type": "object", "required": ["events"], "properties": {"events": {
                          "type": "array", "items": {"type": "object", "required": ["data"]}}}},
                  ]}}}}})
    async def publish(channel: str, request: Request) -> Any:
        service = hub()
        if not token_matches(options.token, bearer(request.headers.get("authorization"))):
            return error(401, "unauthorized: send the hub's token as 'Authorization: Bearer <token>'")
        refused = cross_site(request)
        if refused is not None:
            return refused
        refused = limited(request)
        if refused is not None:
            return refused
        if service.hub.channel(channel) is None:
            return error(404, f"unknown channel {channel!r}", channels=sorted(service.hub.channels))
        body = await _body(request)
        if isinstance(body, JSONResponse):
            return body
        events, problem = _events(body, options.max_publish_batch)
        if problem:
            return error(422, problem)
        try:
            ids = await service.publish_many(channel, events)
        except messages.EventTooLarge as exc:
            return error(413, f"{exc}: publish smaller events")
        except (ValueError, TypeError) as exc:
            return error(422, f"data is not valid JSON: {exc}")
        except BusUnavailable as exc:
            return unavailable(f"not published: {exc}")
        return {"channel": channel, "ids": ids}

    @api.get("/api/channels/{channel}/history", summary="A channel's kept events, oldest first")
    async def channel_history(channel: str, request: Request, since: str | None = None,
                              limit: str = "100") -> Any:
        service = hub()
        if not token_matches(options.token, bearer(request.headers.get("authorization"))):
            return error(401, "unauthorized: send the hub's token as 'Authorization: Bearer <token>'")
        if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= MAX_HISTORY_PAGE:
            return error(422, f"limit must be a whole number between 1 and {MAX_HISTORY_PAGE}")
        try:
            page = await service.history(channel, since, int(limit))
        except UnknownChannel:
            return error(404, f"unknown channel {channel!r}", channels=sorted(service.hub.channels))
        except ValueError as exc:
            return error(422, f"since: {exc}")
        except BusUnavailable as exc:
            return unavailable(f"history unavailable: {exc}")
        body = b"".join((b'{"channel":', messages.dumps(channel), b',"gap":', b"true" if page.gap else b"false",
                         b',"next":', messages.dumps(page.next), b',"events":[', b",".join(page.events), b"]}"))
        return Response(body, media_type="application/json")

    @api.get("/api/venice/{path:path}", summary="The Venice bridge, cached in Redis")
    async def venice_proxy(path: str, request: Request) -> Response:
        proxy = state.venice
        if proxy is None:
            return error(404, "the Venice proxy is off")
        result = await proxy.fetch(path, request.url.query)
        return Response(result.body, status_code=result.status, media_type=result.content_type,
                        headers=result.headers())

    return CascadeASGI(api, state)


async def _body(request: Request) -> Any:
    """The request's JSON body, or a JSON error answer (413 too large, 400 malformed)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        return error(413, f"request body over {MAX_BODY} bytes: publish fewer or smaller events per request")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            return error(413, f"request body over {MAX_BODY} bytes: publish fewer or smaller events per request")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return error(400, 'empty body: send JSON such as {"data": {...}}')
    try:
        return json.loads(raw, parse_constant=_no_constant)
    except ValueError as exc:
        return error(400, f"malformed JSON: {exc}")
    except RecursionError:
        return error(400, f"JSON nested too deeply (the limit is about {messages.NESTING_LIMIT} levels)")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _events(body: Any, limit: int) -> tuple[list[Any], str | None]:
    """The `data` values of a publish body: `{"data":..}`, `[{"data":..},..]` or `{"events":[..]}`."""
    if isinstance(body, dict) and "events" in body and "data" not in body:
        body = body["events"]
        if not isinstance(body, list):
            return [], '"events" must be a list of {"data": ...} objects'
    items = body if isinstance(body, list) else [body]
    if not items:
        return [], "no events: send at least one {\"data\": ...} object"
    if len(items) > limit:
        return [], f"{len(items)} events in one request; the limit is {limit}"
    events = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or "data" not in item:
            where = f"event {index}" if isinstance(body, list) else "the body"
            return [], f'{where} must be an object with a "data" field, e.g. {{"data": {{"text": "hi"}}}}'
        events.append(item["data"])
    return events, None
