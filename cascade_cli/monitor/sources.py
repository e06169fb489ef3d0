"""Read each source with a deadline and keep its latest panel; `Monitor` puts them together.

A source has `name`, `every` (seconds between reads), `async read(now) -> panel` (never raises
for the source's own failures: an unreachable source is a panel too) and `async aclose()`.
`Monitor.start()` runs one task per source, so a source that hangs never holds up the others;
`snapshot()` is then the latest panel of each. `await Monitor.once()` reads every source
(twice, one interval apart, where rates need two readings) for `cascade monitor --once`.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from cascade_cli.config import mask_url
from cascade_cli.monitor import panels
from cascade_cli.monitor.promtext import MetricsFormatError, parse, samples_of

if TYPE_CHECKING:
    from cascade_cli.config import RedisSettings, VeniceSettings

PINGS_PER_READ = 10
"""PING round trips measured per Redis read (sequential, on one connection)."""
SLOWEST_SHOWN = 5


class Source(Protocol):
    name: str
    every: float
    needs_two_reads: bool

    async def read(self, now: float) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


def _describe(exc: BaseException, timeout: float) -> str:
    """What went wrong, in one short line (the chain of causes is searched for the OS error)."""
    import socket

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError) or "Connect call failed" in str(seen) \
                or "Error 111 " in str(seen):
            return "connection refused (is it running on this port?)"
        if "Protocol error" in str(seen) and type(seen).__name__ == "InvalidResponse":
            return f"answered something that is not RESP ({seen}): is this a Redis port?"
        if isinstance(seen, socket.gaierror):
            return f"cannot resolve the host name ({seen.strerror or seen})"
        if isinstance(seen, TimeoutError) or type(seen).__name__ in ("TimeoutError", "ConnectTimeout",
                                                                        "ReadTimeout", "PoolTimeout"):
            return f"no answer within {timeout:g} s"
        seen = seen.__cause__ or seen.__context__
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


class RedisSource:
    """INFO, `CONFIG GET save` (once per connection; servers that refuse it show persistence
    `unknown`) and PING round trips over one connection."""

    name = "redis"
    needs_two_reads = True

    def __init__(self, settings: RedisSettings, url: str, *, every: float, timeout: float,
                 window: float) -> None:
        self.settings = settings
        self.url = url
        self.every = every
        self.timeout = timeout
        self.tracker = panels.RedisTracker(window)
        self.client: Any = None
        self.save_config: str | None = None
        self.save_asked = False

    def _connect(self) -> Any:
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        from cascade_cli.connect import redis_client

        return redis_client(self.settings, self.url, max_connections=1, retry=Retry(NoBackoff(), 0),
                            socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
                            client_name="cascade-monitor")

    async def read(self, now: float) -> dict[str, Any]:
        from redis.exceptions import BusyLoadingError, RedisError

        from cascade_cli.launcher import identify

        shown = mask_url(self.url)
        own = 1   # the previous INFO counts once it has run
        try:
            async with asyncio.timeout(self.timeout):
                if self.client is None:
                    self.client = self._connect()
                if not self.save_asked:
                    self.save_asked = True
                    own += 1
                    try:
                        reply = await self.client.config_get("save")
                        self.save_config = str(reply.get("save", reply.get(b"save", "")))
                    except RedisError:
                        self.save_config = None   # CONFIG renamed or refused
                rtts = []
                try:
                    for _ in range(PINGS_PER_READ):
                        started = time.perf_counter()
                        await self.client.ping()
                        rtts.append(time.perf_counter() - started)
                except BusyLoadingError:
                    pass   # refused while loading (not counted as processed); INFO still answers
                own += len(rtts)
                info = await self.client.info()
        except (RedisError, OSError, TimeoutError) as exc:
            await self._drop()
            if _refused_authentication(exc):
                return self.tracker.unreachable(
                    now, f"{shown}: refused authentication: {_describe(exc, self.timeout)}", url=shown,
                    hint="set the password with CASCADE_REDIS_PASSWORD or in the URL (redis://:PASSWORD@host:port)")
            return self.tracker.unreachable(now, f"{shown}: {_describe(exc, self.timeout)}", url=shown)
        identity = identify({k: str(v) for k, v in info.items()})
        panel = self.tracker.update(now, info, rtts, own_commands=own, identity=identity,
                                    save_config=self.save_config)
        panel["url"] = shown
        panel["cluster"] = str(info.get("cluster_enabled", 0)) == "1"
        return panel

    async def _drop(self) -> None:
        """Forget the connection: the next read connects afresh (and asks for `save` again)."""
        client, self.client = self.client, None
        self.save_asked = False
        if client is not None:
            with contextlib.suppress(Exception):   # closing a broken connection may fail in many ways
                await client.aclose()

    async def aclose(self) -> None:
        await self._drop()


def _refused_authentication(exc: BaseException) -> bool:
    from redis.exceptions import AuthenticationError

    text = str(exc)
    return isinstance(exc, AuthenticationError) or text.startswith(("NOAUTH", "WRONGPASS")) \
        or "must be called with the client already authenticated" in text


def slowest_clients(clients: Iterable[dict[str, Any]], count: int = SLOWEST_SHOWN) -> list[dict[str, Any]]:
    """The `count` clients with the deepest send queues, deepest first."""
    return heapq.nlargest(count, clients, key=lambda c: c.get("queue_depth", 0))


class HubHttpSource:
    """A `cascade serve` over HTTP: /health, /ready, /metrics and the slowest clients."""

    name = "hub"
    needs_two_reads = True

    def __init__(self, url: str, *, every: float, timeout: float, window: float) -> None:
        self.url = url.rstrip("/")
        self.every = every
        self.timeout = timeout
        self.tracker = panels.HubTracker(window)
        self.client: Any = None

    async def read(self, now: float) -> dict[str, Any]:
        import httpx

        from cascade_cli.connect import async_http_client

        shown = mask_url(self.url)
        if self.client is None:
            self.client = async_http_client(self.url, timeout=self.timeout, connect_timeout=self.timeout)
        try:
            async with asyncio.timeout(self.timeout):
                health, ready, metrics, clients = await asyncio.gather(
                    self.client.get("health"), self.client.get("ready"), self.client.get("metrics"),
                    self.client.get("api/clients", params={"sort": "queue_depth", "limit": SLOWEST_SHOWN}))
            problem = _not_a_hub(health, metrics)
            if problem:
                return self.tracker.unreachable(now, f"{shown}: {problem}", url=shown)
            samples = parse(metrics.text)
            ready_body = ready.json() if ready.headers.get("content-type", "").startswith("application/json") else {}
            listed = clients.json().get("clients", []) if clients.is_success else []
        except (httpx.HTTPError, OSError, TimeoutError, ValueError, MetricsFormatError) as exc:
            return self.tracker.unreachable(now, f"{shown}: {_describe(exc, self.timeout)}", url=shown)
        panel = self.tracker.update(now, health.json(), samples, slowest_clients(listed),
                                    ready=(ready.status_code == 200, str(ready_body.get("reason", ""))))
        panel["url"] = shown
        return panel

    async def aclose(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await client.aclose()


def _not_a_hub(health: Any, metrics: Any) -> str | None:
    """Why these answers are not a cascade hub's (None when they are)."""
    for response, path in ((health, "/health"), (metrics, "/metrics")):
        if response.status_code != 200:
            return f"{path} answered HTTP {response.status_code}: is this a `cascade serve` URL?"
    try:
        body = health.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "status" not in body or "connections" not in body:
        return "/health did not answer like `cascade serve`: is this a `cascade serve` URL?"
    return None


class HubLocalSource:
    """The hub this process serves (`cascade serve`'s dashboard): read in-process, no HTTP."""

    name = "hub"
    needs_two_reads = True

    def __init__(self, service: Any, http: Any, venice: Any, url: str, *, every: float,
                 window: float) -> None:
        self.service, self.http, self.venice, self.url = service, http, venice, url
        self.every = every
        self.tracker = panels.HubTracker(window)

    async def read(self, now: float) -> dict[str, Any]:
        from cascade_cli.hub.exposition import families

        service = self.service
        samples = samples_of(families(service, self.http, self.venice))
        deepest = heapq.nlargest(SLOWEST_SHOWN, service.hub.sessions.values(), key=lambda s: len(s.queue))
        clients = [s.info() for s in deepest]   # only those: info() of 10,000 clients is costly
        panel = self.tracker.update(now, service.health(), samples, clients, ready=service.readiness())
        panel["url"] = self.url
        return panel

    async def aclose(self) -> None:
        return None


class VeniceSource:
    """One `venice ping`-style probe every `every` seconds, in a thread (the client is sync)."""

    name = "venice"
    needs_two_reads = False

    def __init__(self, settings: VeniceSettings, *, every: float, timeout: float, window: float) -> None:
        from dataclasses import replace

        self.settings = replace(settings, timeout=min(settings.timeout, timeout),
                                connect_timeout=min(settings.connect_timeout, timeout))
        self.capped = timeout < max(settings.timeout, settings.connect_timeout)
        self.every = every
        self.tracker = panels.VeniceTracker(window)

    def _probe(self) -> dict[str, Any]:
        from dataclasses import asdict

        from cascade_cli.errors import CascadeError
        from cascade_cli.venice import VeniceBridge

        try:
            with VeniceBridge(self.settings, retry=False) as bridge:
                return asdict(bridge.probe())
        except CascadeError as exc:   # an unusable URL or key file: nothing can answer
            return {"url": mask_url(self.settings.base_url), "outcome": "unreachable",
                    "message": exc.message, "hint": exc.hint}

    async def read(self, now: float) -> dict[str, Any]:
        probe = await asyncio.to_thread(self._probe)
        if self.capped and probe.get("outcome") == "unreachable" and "within" in str(probe.get("message")):
            probe["hint"] = ("raise --timeout (monitor.timeout): the monitor waits no longer than that, "
                             "whatever venice.timeout says")
        return self.tracker.update(now, probe, checked_at=time.time())

    async def aclose(self) -> None:
        return None


class Monitor:
    """The sources and their latest panels. Sources given as a string are off (the string says
    why)."""

    def __init__(self, sources: dict[str, Source | str], *, interval: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.sources = sources
        self.interval = interval
        self.clock = clock
        self.panels: dict[str, dict[str, Any]] = {
            name: panels.off_panel(source) if isinstance(source, str) else {"status": "pending"}
            for name, source in sources.items()}
        self.tasks: list[asyncio.Task[None]] = []
        self.closing = False
        self.changed = asyncio.Event()
        self.version = 0
        """Counts readings: the snapshot changed when this did."""

    def _live(self) -> list[Source]:
        return [s for s in self.sources.values() if not isinstance(s, str)]

    def snapshot(self) -> dict[str, Any]:
        """The latest panel of every source, with the overall status."""
        return {"type": "snapshot", "time": round(self.clock(), 3), "interval_s": self.interval,
                "status": panels.overall(self.panels), "sources": dict(self.panels)}

    async def _read(self, source: Source) -> None:
        try:
            self.panels[source.name] = await source.read(self.clock())
        except Exception as exc:  # noqa: BLE001 - a bug must show in its panel, not freeze it
            self.panels[source.name] = {"status": panels.UNREACHABLE, "problems": [],
                                        "error": f"internal error reading {source.name}: "
                                                 f"{type(exc).__name__}: {exc} (please report it)"}
        self.version += 1
        self.changed.set()

    async def _run(self, source: Source) -> None:
        loop = asyncio.get_running_loop()
        while not self.closing:
            due = loop.time() + source.every
            await self._read(source)
            await asyncio.sleep(max(0.0, due - loop.time()))

    def start(self) -> None:
        """Read every source on its own schedule until aclose()."""
        self.tasks = [asyncio.create_task(self._run(source), name=f"monitor-{source.name}")
                      for source in self._live()]

    async def once(self) -> dict[str, Any]:
        """Read every source (twice, `interval` apart, where rates need two readings) and return
        the snapshot."""
        async def twice(source: Source) -> None:
            await self._read(source)
            if source.needs_two_reads and self.panels[source.name].get("status") != panels.UNREACHABLE:
                await asyncio.sleep(self.interval)
                await self._read(source)

        await asyncio.gather(*(twice(source) for source in self._live()))
        return self.snapshot()

    async def aclose(self) -> None:
        self.closing = True
        pending = set(self.tasks)
        while pending:   # on Python 3.11, asyncio.wait_for (redis-py wraps its writes in it) can
            for task in pending:   # swallow a cancel that races the write's completion: cancel again
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=1.0)
        self.tasks = []
        for source in self._live():
            await source.aclose()
