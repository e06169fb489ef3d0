"""Run `cascade serve`: find or embed Redis, bind, serve with uvicorn, shut down cleanly.

`run(settings, plan, ...)` blocks until SIGINT/SIGTERM, then stops accepting, writes what each
client had queued, closes clients with 1001, flushes the bus and returns exit code 0. Start-up
problems raise `cascade_cli.errors` exceptions (the CLI prints them). With `--workers N`,
`cascade_cli.hub.workers` resolves Redis and binds once, then runs `run(..., sock=, worker=True)`
in each worker process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cascade_cli.config import Settings, mask_url
from cascade_cli.errors import OperationalError, UnreachableError
from cascade_cli.hub.service import HubOptions, HubService

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "0.0.0.0", "::"})
PROBE_TIMEOUT = 1.0


@dataclass(frozen=True)
class ServePlan:
    """Everything `cascade serve` needs, resolved from settings and flags."""

    host: str
    port: int
    redis_url: str
    bus: str                 # "redis" or "local"
    embedded: str            # "auto" or "never"
    options: HubOptions
    venice: bool = True
    venice_cache_ttl: float = 30.0
    forwarded_allow_ips: str | None = None
    log_level: str = "warning"


@dataclass
class Started:
    """What the running server tells its caller once it listens."""

    http_url: str
    ws_url: str
    redis: str               # "redis", "embedded", "local" (no Redis) or "unreachable"
    redis_url: str
    workers: int = 1         # processes serving the port


def is_local_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "unix" or (parts.hostname or "") in LOCAL_HOSTS


async def probe_redis(settings: Settings, url: str) -> str | None:
    """None when Redis answers PING at `url`, else why nothing answered (one line).

    Raises OperationalError when a server answered but refused (authentication, an error reply):
    the in-memory server must not be started on a port a real server holds.
    """
    from redis.exceptions import AuthenticationError, RedisError, ResponseError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    from cascade_cli.connect import redis_client

    client = redis_client(settings.redis, url, socket_connect_timeout=PROBE_TIMEOUT,
                          socket_timeout=PROBE_TIMEOUT)
    try:
        await client.ping()
        return None
    except AuthenticationError as exc:   # NOAUTH, WRONGPASS: a server answered
        raise _refused(url, exc) from exc
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        if isinstance(exc, RedisConnectionError) and "auth" in str(exc).lower():
            raise _refused(url, exc) from exc
        return str(exc) or type(exc).__name__
    except (ResponseError, RedisError) as exc:
        raise _refused(url, exc) from exc
    finally:
        await client.aclose()


def _refused(url: str, exc: BaseException) -> OperationalError:
    text = str(exc) or type(exc).__name__
    if any(word in text.lower() for word in ("auth", "password", "noperm")):
        return OperationalError(f"Redis at {mask_url(url)} refused authentication: {text}",
                                "give the password in --redis-url (redis://:PASSWORD@host:port/0) or "
                                "CASCADE_REDIS_PASSWORD")
    return OperationalError(f"Redis at {mask_url(url)} answered PING with an error: {text}",
                            "check that the URL points at a Redis server that accepts this client")


async def start_embedded(url: str) -> Any:
    """Start the in-memory Redis-compatible server in this process, listening where `url` points."""
    from cascade_cli.resp.params import Params
    from cascade_cli.resp.server import Server

    parts = urlsplit(url)
    params = Params()
    host = parts.hostname or "127.0.0.1"
    params.set("bind", "127.0.0.1" if host == "localhost" else host, startup=True)
    params.set("port", str(parts.port or 6379), startup=True)
    params.set("save", "", startup=True)
    params.set("logfile", "/dev/null", startup=True)
    if parts.password:
        params.set("requirepass", parts.password, startup=True)
    server = Server(params)
    try:
        await server.start()
    except OSError as exc:
        raise OperationalError(f"cannot start the in-memory Redis server on {host}:{params.port}: "
                               f"{exc.strerror or exc}",
                               "free that port, or point --redis-url at a running Redis") from exc
    return server


async def uses_cluster(settings: Settings, url: str) -> bool:
    """Whether the bus must use Redis Cluster at `url`: `redis.cluster` yes/no, or on auto what
    the server says (INFO cluster)."""
    choice = settings.redis.cluster
    if choice != "auto":
        return choice == "yes"
    from cascade_cli.hub.cluster import detect_cluster

    return await detect_cluster(settings.redis, url)


class MaskTokens(logging.Filter):
    """Masks `token=...` in uvicorn's log lines (WebSocket URLs may carry the hub's token)."""

    PATTERN = re.compile(r"([?&]token=)[^&\s\"]*")

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self.PATTERN.sub(r"\1***", arg) if isinstance(arg, str) else arg
                                for arg in record.args)
        return True


def bind_socket(host: str, port: int) -> socket.socket:
    """The listening socket (bound before uvicorn starts so errors are ours, and port 0 works)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UnreachableError(f"cannot resolve --host {host!r}: {exc.strerror}",
                               "give an IP address such as 127.0.0.1") from exc
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise OperationalError(f"cannot listen on {host}:{port}: {exc.strerror or exc}",
                               "pick another --port (0 picks a free one) or stop what uses it") from exc
    sock.setblocking(False)
    return sock


GC_THRESHOLD = (10_000, 10, 10)


def calm_garbage_collector() -> None:
    """Move everything alive after start-up (modules, the app, pydantic models: most objects of
    the process) out of the collector's sight, and collect the young generation less often, so
    full collections while clients come and go scan connections, not the whole program."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def _uvicorn_server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server that exits 0 after a signal: it neither re-raises the signal after
        the graceful shutdown nor restores the default handlers (a second SIGTERM while the
        process winds down must not kill it). A second SIGINT still forces the exit."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self.handle_exit)
            yield

        def handle_exit(self, sig: int, frame: Any) -> None:
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            else:
                self.should_exit = True

    return Server


async def resolve_redis(settings: Settings, plan: ServePlan, notice: Callable[[str, str], None],
                        embed: bool = True) -> tuple[str, Any]:
    """(redis mode for `Started.redis`, the in-memory server started here or None).

    Probes `plan.redis_url`; when nothing answers there, starts the in-memory server in this
    process's loop if `embed` and the settings allow it (the caller stops it after serving),
    else reports the degraded start. Raises OperationalError when a server answered but refused.
    """
    if plan.bus != "redis":
        return "local", None
    problem = await probe_redis(settings, plan.redis_url)
    if problem is None:
        return "redis", None
    if not embed:
        return "unreachable", None
    if plan.embedded == "auto" and is_local_url(plan.redis_url) and not plan.redis_url.startswith("unix"):
        embedded = await start_embedded(plan.redis_url)
        notice("info", f"no Redis answered at {mask_url(plan.redis_url)}; started cascade's in-memory "
               f"Redis-compatible server in this process on port {embedded.port} "
               "(events are not persisted; use --redis-url for a real Redis)")
        return "embedded", embedded
    notice("warn", f"Redis at {mask_url(plan.redis_url)} is unreachable ({problem}); running "
           "degraded (publishing answers 503) and retrying in the background"
           + ("" if settings.redis.cluster != "auto" else
              " (a Redis Cluster cannot be detected while it is down: set redis.cluster=yes or "
              "--redis-cluster for one)"))
    return "unreachable", None


def stop_embedded(embedded: Any) -> None:
    """Stop the in-memory server `resolve_redis` started (None: nothing to do)."""
    if embedded is not None:
        embedded.stop()
        for listener in embedded.servers:
            listener.close()


def listening_urls(sock: socket.socket) -> tuple[str, str]:
    """(http_url, ws_url) of the listening socket."""
    bound_host, bound_port = sock.getsockname()[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return f"http://{shown}:{bound_port}", f"ws://{shown}:{bound_port}/ws"


def dashboard_sources(settings: Settings, plan: ServePlan) -> Callable[[Any], dict[str, Any]]:
    """The dashboard's Redis and Venice sources: the bus's Redis, and the Venice bridge when the
    proxy is on (probed every monitor.venice_interval seconds while someone looks)."""
    def build(_state: Any) -> dict[str, Any]:
        from cascade_cli.monitor.sources import RedisSource, VeniceSource

        m = settings.monitor
        redis: Any = (RedisSource(settings.redis, plan.redis_url, every=m.interval, timeout=m.timeout,
                                  window=m.window)
                      if plan.bus == "redis" else "this server runs with --bus local")
        venice: Any = (VeniceSource(settings.venice, every=m.venice_interval, timeout=m.timeout, window=m.window)
                       if plan.venice and m.venice else "off on this server (serve.venice_proxy, monitor.venice)")
        return {"redis": redis, "venice": venice}
    return build


async def run(settings: Settings, plan: ServePlan, notice: Callable[[str, str], None],
              on_started: Callable[[Started], None], *, sock: socket.socket | None = None,
              worker: bool = False) -> int:
    """Serve until a signal; returns the exit code. `notice(kind, message)` reports start-up
    choices and bus state changes ("info" or "warn"); `on_started` runs once the port listens.

    `sock`: an already listening socket to serve on (closed at the end) instead of binding
    plan.host:plan.port. `worker`: this is one of `--workers N` processes: the supervisor already
    resolved Redis and reported it, so no in-memory server starts here and start-up choices are
    not reported again (Redis refusing this process still raises).
    """
    import uvicorn

    from cascade_cli.hub.app import create_app
    from cascade_cli.hub.service import redis_bus_factory
    from cascade_cli.hub.wsproto import HubWebSocketProtocol

    bus_factory = None
    redis_mode, embedded = await resolve_redis(settings, plan, notice, embed=not worker)
    if plan.bus == "redis":
        said_down = redis_mode == "unreachable"   # the start-up warning already said so

        def on_bus_state(state: str, detail: str | None) -> None:
            nonlocal said_down
            if state == "down":
                if not said_down:
                    notice("warn", f"lost the Redis bus ({detail}); publishing answers 503 until it "
                                   "is back, reconnecting")
                said_down = True
                return
            said_down = False
            if state == "partial":
                notice("warn", f"a Redis Cluster shard is unreachable ({detail}); its channels are "
                               "paused, the others go on")
            elif state == "ok":
                notice("info", f"Redis bus connected at {mask_url(plan.redis_url)}")

        cluster = (await uses_cluster(settings, plan.redis_url) if redis_mode == "redis"
                   else settings.redis.cluster == "yes")   # not answering: only the setting can say
        bus_factory = redis_bus_factory(settings.redis, plan.redis_url, on_bus_state, cluster=cluster)

    venice_factory = None
    if plan.venice:
        def venice_factory(service: HubService) -> Any:
            from cascade_cli.hub.venice_proxy import VeniceProxy

            return VeniceProxy(settings.venice, plan.venice_cache_ttl, lambda: service.bus.client)

    if sock is None:
        try:
            sock = bind_socket(plan.host, plan.port)
        except BaseException:
            stop_embedded(embedded)
            raise
    app = create_app(plan.options, bus_factory=bus_factory, venice=venice_factory,
                     monitor_sources=dashboard_sources(settings, plan), monitor_interval=settings.monitor.interval,
                     monitor_window=settings.monitor.window)
    options = plan.options
    config = uvicorn.Config(
        app, http="httptools", ws=HubWebSocketProtocol, lifespan="on", loop="none",
        log_level=plan.log_level, access_log=plan.log_level in ("info", "debug"),
        ws_max_size=options.max_message_size, ws_ping_interval=options.heartbeat,
        ws_ping_timeout=options.heartbeat_timeout, ws_per_message_deflate=options.compression,
        timeout_graceful_shutdown=5, server_header=False, interface="asgi3",
        proxy_headers=plan.forwarded_allow_ips is not None,
        forwarded_allow_ips=plan.forwarded_allow_ips,
    )
    for name in ("uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.addFilter(MaskTokens())
        for handler in logger.handlers:   # logs are messages: stderr (stdout carries the URLs)
            if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
                handler.setStream(sys.stderr)
    server = _uvicorn_server_class()(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not task.done():
        await asyncio.sleep(0.01)
    if server.started:
        calm_garbage_collector()
        http_url, ws_url = listening_urls(sock)
        on_started(Started(http_url, ws_url, redis_mode,
                           mask_url(plan.redis_url) if plan.bus == "redis" else ""))
    try:
        await task
        if server.force_exit:   # a second Ctrl-C: no graceful lifespan end, and no traceback about it
            logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
            return 130
    except SystemExit as exc:
        raise OperationalError("the server failed to start (see the messages above)",
                               "run with -v for details") from exc
    finally:
        sock.close()
        stop_embedded(embedded)
    return 0
