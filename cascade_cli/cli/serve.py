"""cascade serve: the HTTP API and the WebSocket hub."""

from __future__ import annotations

import signal
import sys
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from cascade_cli.cli.common import FormatOption, JsonOption, pick_format, state
from cascade_cli.output import Format, render_record

if TYPE_CHECKING:
    from cascade_cli.config import Settings
    from cascade_cli.hub.runner import ServePlan

HELP = """\
Serve the HTTP API and the WebSocket hub.

Clients subscribe at ws://HOST:PORT/ws/CHANNEL (or /ws with subscribe ops) and receive every
event published on that channel, by WebSocket op or POST /api/channels/CHANNEL/publish, on this
instance or any other on the same Redis. Redis: when nothing answers at a local redis.url, an
in-memory Redis-compatible server starts in this process. The token (publishing and
connecting) comes from CASCADE_SERVE_TOKEN or --token-file, never a flag. Protocol, routes and
metrics: docs/hub.md.

--workers N runs N worker processes on the one port, joined through the Redis bus (this process
binds the port, hosts the in-memory Redis if it started one, and supervises them): a worker that
dies is restarted with backoff while the others keep their clients; a worker that cannot start,
or keeps dying right after starting, stops the service with exit 1. Not with --bus local.

Prints the URLs it serves on stdout. Ctrl-C or SIGTERM: stop accepting, write what clients had
queued, close them with 1001, exit 0 (a second Ctrl-C forces the exit: 130). Exit 1 when it
cannot listen, start its Redis or use the Redis it was given, 2 for bad options or config.
"""


class Bus(str, Enum):
    redis = "redis"
    local = "local"


class Embedded(str, Enum):
    auto = "auto"
    never = "never"


class Policy(str, Enum):
    drop_oldest = "drop-oldest"
    disconnect = "disconnect"


def serve(
    host: Annotated[Optional[str], typer.Option("--host", help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option("--port", "-p", min=0, max=65535,
                                                help="TCP port (default 8000; 0 picks a free one).")] = None,
    redis_url: Annotated[Optional[str], typer.Option("--redis-url", metavar="URL",
                                                     help="Redis for the bus and caches (default: redis.url).")] = None,
    redis_cluster: Annotated[Optional[bool], typer.Option(
        "--redis-cluster/--no-redis-cluster",
        help="The Redis URL is a Redis Cluster node (default: ask the server).")] = None,
    history_size: Annotated[Optional[int], typer.Option(
        "--history-size", min=1, metavar="EVENTS", help="Events kept per channel for resuming clients "
                                                         "(default 1000).")] = None,
    history_ttl: Annotated[Optional[float], typer.Option(
        "--history-ttl", min=0, metavar="SECONDS", help="Seconds events stay in history (default 3600; "
                                                         "0: no age limit).")] = None,
    channel_history: Annotated[Optional[list[str]], typer.Option(
        "--channel-history", metavar="CHANNEL=SIZE/TTL",
        help="History bounds for one channel (repeatable), e.g. cascade-events=10000/86400.")] = None,
    channels: Annotated[Optional[str], typer.Option("--channels", metavar="A,B,C",
                                                    help="Channels to accept (default: consciousness-stream,"
                                                         "ai-collaborations,cascade-events).")] = None,
    allow_any_channel: Annotated[Optional[bool], typer.Option(
        "--allow-any-channel/--known-channels-only",
        help="Accept any channel name matching [A-Za-z0-9][A-Za-z0-9._:-]{0,127}.")] = None,
    token_file: Annotated[Optional[str], typer.Option("--token-file", metavar="FILE",
                                                      help="File whose first line is the token.")] = None,
    bus: Annotated[Optional[Bus], typer.Option("--bus", help="redis: share events with every instance on "
                                               "the same Redis; local: this process only.")] = None,
    embedded_redis: Annotated[Optional[Embedded], typer.Option(
        "--embedded-redis", help="auto: start the in-memory Redis when none answers at a local URL; "
                                 "never: run degraded and retry.")] = None,
    queue_size: Annotated[Optional[int], typer.Option("--queue-size", min=1,
                                                      help="Events buffered per client (default 1000).")] = None,
    slow_client_policy: Annotated[Optional[Policy], typer.Option(
        "--slow-client-policy", help="When a client's queue is full: drop-oldest (with a lag notice) "
                                     "or disconnect (close 4008).")] = None,
    heartbeat: Annotated[Optional[float], typer.Option("--heartbeat", min=0.01, metavar="SECONDS",
                                                       help="Seconds between pings (default 20).")] = None,
    heartbeat_timeout: Annotated[Optional[float], typer.Option(
        "--heartbeat-timeout", min=0.01, metavar="SECONDS",
        help="Seconds to answer a ping before being closed (default 20).")] = None,
    max_message_size: Annotated[Optional[int], typer.Option(
        "--max-message-size", min=1, metavar="BYTES", help="Larger client frames close with 1009.")] = None,
    compression: Annotated[Optional[bool], typer.Option(
        "--compression/--no-compression", help="Offer permessage-deflate (off by default).")] = None,
    max_connections: Annotated[Optional[int], typer.Option(
        "--max-connections", min=1, help="WebSocket clients at once; more close with 1013.")] = None,
    connect_rate: Annotated[Optional[float], typer.Option(
        "--connect-rate", min=0, metavar="PER_SECOND",
        help="WebSocket connects and publish requests per second per address (0: no limit).")] = None,
    allow_origin: Annotated[Optional[list[str]], typer.Option(
        "--allow-origin", metavar="ORIGIN", help="Browser Origin allowed (repeatable; default: any).")] = None,
    venice_proxy: Annotated[Optional[bool], typer.Option(
        "--venice-proxy/--no-venice-proxy", help="Serve GET /api/venice/{path} (default on).")] = None,
    workers: Annotated[Optional[int], typer.Option(
        "--workers", "-w", min=1, max=64, metavar="N",
        help="Worker processes serving the port, joined through the Redis bus (default 1).")] = None,
    fmt: FormatOption = Format.table,
    json_flag: JsonOption = False,
) -> None:
    app_state = state()
    flags: dict[str, tuple[Any, str]] = {
        "serve.host": (host, "--host"),
        "serve.port": (port, "--port"),
        "redis.url": (redis_url, "--redis-url"),
        "redis.cluster": (None if redis_cluster is None else ("yes" if redis_cluster else "no"),
                          "--redis-cluster"),
        "serve.history_size": (history_size, "--history-size"),
        "serve.history_ttl": (history_ttl, "--history-ttl"),
        "serve.channel_history": (",".join(channel_history) if channel_history else None, "--channel-history"),
        "serve.channels": (channels, "--channels"),
        "serve.allow_any_channel": (allow_any_channel, "--allow-any-channel"),
        "serve.token_file": (token_file, "--token-file"),
        "serve.bus": (bus.value if bus else None, "--bus"),
        "serve.embedded_redis": (embedded_redis.value if embedded_redis else None, "--embedded-redis"),
        "serve.queue_size": (queue_size, "--queue-size"),
        "serve.slow_client_policy": (slow_client_policy.value if slow_client_policy else None,
                                     "--slow-client-policy"),
        "serve.heartbeat": (heartbeat, "--heartbeat"),
        "serve.heartbeat_timeout": (heartbeat_timeout, "--heartbeat-timeout"),
        "serve.max_message_size": (max_message_size, "--max-message-size"),
        "serve.compression": (compression, "--compression"),
        "serve.max_connections": (max_connections, "--max-connections"),
        "serve.connect_rate": (connect_rate, "--connect-rate"),
        "serve.allowed_origins": (",".join(allow_origin) if allow_origin else None, "--allow-origin"),
        "serve.venice_proxy": (venice_proxy, "--venice-proxy"),
        "serve.workers": (workers, "--workers"),
    }
    settings = app_state.settings(flags)
    plan = build_plan(settings, verbose=app_state.verbose)
    worker_count = settings.serve.workers
    if worker_count > 1 and plan.bus != "redis":
        from cascade_cli.errors import UsageError

        raise UsageError(f"{worker_count} workers (--workers, serve.workers) need the Redis bus: with "
                         "--bus local each would deliver only to its own clients",
                         "drop --bus local (serve.bus), or serve with --workers 1")
    out_format = pick_format(fmt, json_flag)
    messages = app_state.messages

    def notice(kind: str, text: str) -> None:
        (messages.warn if kind == "warn" else messages.info)(text)

    def started(info: Any) -> None:
        record = {"http_url": info.http_url, "ws_url": info.ws_url,
                  "channels": list(plan.options.channels), "redis": info.redis,
                  "redis_url": info.redis_url, "docs_url": f"{info.http_url}/docs",
                  "workers": info.workers}
        if out_format is Format.table:
            sys.stdout.write(f"cascade serve: HTTP API at {info.http_url} (docs {info.http_url}/docs)\n"
                             f"cascade serve: WebSocket hub at {info.ws_url}/{{channel}}, channels: "
                             f"{', '.join(plan.options.channels)}"
                             f"{' (any valid name accepted)' if plan.options.allow_any_channel else ''}\n")
        elif out_format is Format.json:
            import json

            sys.stdout.write(json.dumps(record) + "\n")   # one line, so scripts can read it as it comes
        else:
            render_record(record, out_format)
        sys.stdout.flush()
        messages.info("press Ctrl-C to stop")

    if worker_count > 1:
        from cascade_cli.hub.workers import supervise

        code = _run_loop(supervise(settings, plan, worker_count, notice, started,
                                   quiet=app_state.quiet, verbose=app_state.verbose))
    else:
        from cascade_cli.hub.runner import run

        code = _run_loop(run(settings, plan, notice, started))
    for sig in (signal.SIGTERM, signal.SIGINT):   # the work is done: a late signal must not
        signal.signal(sig, signal.SIG_IGN)        # turn exit 0 into a kill while Python exits
    messages.info("cascade serve: stopped" if code == 0 else "cascade serve: stopped without a graceful end")
    raise typer.Exit(code)


def build_plan(settings: Settings, verbose: bool = False) -> ServePlan:
    """The serve plan from effective settings; raises ConfigError for an unreadable token file."""
    from cascade_cli.config import read_secret_file
    from cascade_cli.errors import ConfigError
    from cascade_cli.hub.runner import ServePlan
    from cascade_cli.hub.service import HubOptions

    s = settings.serve
    token = s.token.strip()
    if not token and s.token_file:
        token = read_secret_file(s.token_file, "serve.token_file")
        if not token:
            raise ConfigError(f"the token file {s.token_file} is empty",
                              "put the token on its first line, or drop --token-file to run without one")
    venice = settings.venice
    if s.venice_proxy and not venice.api_key.strip() and venice.api_key_file:
        read_secret_file(venice.api_key_file, "venice.api_key_file")   # fail at start, not per request
    options = HubOptions(
        channels=tuple(dict.fromkeys(s.channels)), allow_any_channel=s.allow_any_channel,
        queue_size=s.queue_size, policy=s.slow_client_policy, max_connections=s.max_connections,
        connect_rate=s.connect_rate, allowed_origins=tuple(s.allowed_origins), token=token or None,
        heartbeat=s.heartbeat, heartbeat_timeout=s.heartbeat_timeout,
        max_message_size=s.max_message_size, compression=s.compression,
        history_size=s.history_size, history_ttl=s.history_ttl, channel_history=tuple(s.channel_history),
    )
    forwarded = s.forwarded_allow_ips.strip()
    return ServePlan(host=s.host, port=s.port, redis_url=settings.redis.url, bus=s.bus,
                     embedded=s.embedded_redis, options=options, venice=s.venice_proxy,
                     venice_cache_ttl=s.venice_cache_ttl, forwarded_allow_ips=forwarded or None,
                     log_level="info" if verbose else "warning")


def _run_loop(coro: Any) -> int:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency where it builds
        import asyncio

        return int(asyncio.run(coro))
    return int(uvloop.run(coro))
