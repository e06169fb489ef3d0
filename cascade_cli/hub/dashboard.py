"""The live dashboard of `cascade serve`: the page at `/` and its snapshot feed.

`DashboardFeed` owns one `monitor.sources.Monitor` (this hub in-process, its Redis, the Venice
bridge) that runs only while someone looks: a WebSocket viewer of `/api/monitor/ws`, or a
`GET /api/monitor` in the last `LINGER_S` seconds. Every viewer gets the same snapshot JSON once
per interval. Call `await feed.aclose()` at shutdown.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from typing import Any

from cascade_cli.hub.limits import origin_allowed
from cascade_cli.monitor.sources import Monitor

LINGER_S = 30.0
"""Seconds the monitor keeps running after the last viewer left or the last GET."""
MAX_VIEWERS = 100
"""Dashboard WebSocket viewers at once; more are closed with 1013 (try again later)."""
FIRST_READING_WAIT_S = 3.0


@lru_cache(maxsize=1)
def page() -> bytes:
    """The dashboard page, shipped in the package (no external resources)."""
    return resources.files("cascade_cli.hub").joinpath("dashboard.html").read_bytes()


def wants_html(accept: str | None) -> bool:
    """True when the client prefers HTML (a browser) to JSON by the `Accept` header's types and
    q-values (ties: the one named first); False for API clients, `*/*` and no header."""
    weights: dict[str, float] = {}
    for part in (accept or "").split(","):
        kind, *params = (piece.strip().lower() for piece in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if kind and kind not in weights:
            weights[kind] = q
    html = weights.get("text/html", 0.0)
    if html <= 0:
        return False
    json_kind = next((k for k in ("application/json", "application/*", "*/*") if k in weights), None)
    if json_kind is None:
        return True
    order = list(weights)
    return html > weights[json_kind] or (html == weights[json_kind] and order.index("text/html") < order.index(json_kind))


class DashboardFeed:
    """One monitor for every viewer; started on demand, stopped when nobody looks."""

    def __init__(self, make_monitor: Callable[[], Monitor], allowed_origins: tuple[str, ...] = ()) -> None:
        self.make_monitor = make_monitor
        self.allowed_origins = allowed_origins
        self.monitor: Monitor | None = None
        self.viewers = 0
        self._stopper: asyncio.TimerHandle | None = None
        self._stopping: asyncio.Task[None] | None = None
        self._encoded: tuple[tuple[int, int], str] = ((0, -1), "")

    def _ensure(self) -> Monitor:
        if self._stopper is not None:
            self._stopper.cancel()
            self._stopper = None
        if self.monitor is None:
            self.monitor = self.make_monitor()
            self.monitor.start()
        return self.monitor

    def _release(self) -> None:
        """Stop the monitor LINGER_S from now unless someone looks again."""
        if self.viewers or self.monitor is None:
            return
        if self._stopper is not None:
            self._stopper.cancel()
        self._stopper = asyncio.get_running_loop().call_later(LINGER_S, self._stop_now)

    def _stop_now(self) -> None:
        monitor, self.monitor, self._stopper = self.monitor, None, None
        if monitor is not None and not self.viewers:
            self._stopping = asyncio.create_task(monitor.aclose())

    async def snapshot(self) -> dict[str, Any]:
        """`GET /api/monitor`: the latest snapshot (the first waits briefly for the first readings;
        rates need a second reading, so they are null the first time)."""
        monitor = self._ensure()
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + FIRST_READING_WAIT_S
            while any(p.get("status") == "pending" for p in monitor.panels.values()):
                monitor.changed.clear()
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    await asyncio.wait_for(monitor.changed.wait(), remaining)
                except TimeoutError:
                    break
            return monitor.snapshot()
        finally:
            self._release()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The `/api/monitor/ws` endpoint (bare ASGI): one snapshot per interval until the
        viewer leaves."""
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        headers = dict(scope.get("headers") or [])
        origin, host = (headers.get(name, b"").decode("latin-1") for name in (b"origin", b"host"))
        if not origin_allowed(origin, self.allowed_origins, host):
            await send({"type": "websocket.close", "code": 1008})
            return
        if self.viewers >= MAX_VIEWERS:   # accepted first: a close before that would be a 403
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": 1013, "reason": "too many dashboard viewers"})
            return
        await send({"type": "websocket.accept"})
        self.viewers += 1
        monitor = self._ensure()
        gone = asyncio.ensure_future(_until_disconnect(receive))
        try:
            while not gone.done():
                await send({"type": "websocket.send", "text": self._text(monitor)})
                await asyncio.wait([gone], timeout=monitor.interval)
        except OSError:
            pass   # the viewer went away mid-send
        finally:
            gone.cancel()
            self.viewers -= 1
            self._release()

    def _text(self, monitor: Monitor) -> str:
        """The latest snapshot as JSON, encoded once per reading for every viewer."""
        key = (id(monitor), monitor.version)
        if self._encoded[0] != key:
            self._encoded = (key, json.dumps(monitor.snapshot(), separators=(",", ":")))
        return self._encoded[1]

    async def aclose(self) -> None:
        if self._stopper is not None:
            self._stopper.cancel()
        monitor, self.monitor = self.monitor, None
        if monitor is not None:
            await monitor.aclose()
        if self._stopping is not None:
            await self._stopping


async def _until_disconnect(receive: Any) -> None:
    while (await receive())["type"] != "websocket.disconnect":
        pass
