"""cascade monitor: Redis, the hub and the Venice bridge at a glance, live or as one snapshot."""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from cascade_cli.cli.common import JsonOption, pick_format, state
from cascade_cli.errors import UsageError
from cascade_cli.output import Format

HELP = """Watch Redis, the hub (`cascade serve`) and the Venice bridge live, full screen.

The view refreshes every --interval seconds; each panel shows its source's state (ok, degraded,
unreachable) and keeps going when a source goes away and comes back. Keys: q quits; resizing the
terminal redraws.

--once prints one snapshot instead (the sources are read twice, --interval apart, so rates are
real) as a table, JSON, CSV or Markdown. Exit codes with --once: 0 every source healthy, 3 one is
degraded, 1 one is unreachable (2 for usage and config errors).
"""


def monitor(
    redis_url: Annotated[Optional[str], typer.Option("--redis-url", metavar="URL",
                                                     help="Redis to watch (default: redis.url).")] = None,
    hub_url: Annotated[Optional[str], typer.Option("--hub-url", metavar="URL",
                                                   help="`cascade serve` to watch (default: monitor.hub_url, "
                                                        "else http://serve.host:serve.port).")] = None,
    redis: Annotated[bool, typer.Option("--redis/--no-redis", help="Watch Redis.")] = True,
    hub: Annotated[bool, typer.Option("--hub/--no-hub", help="Watch the hub.")] = True,
    venice: Annotated[Optional[bool], typer.Option("--venice/--no-venice",
                                                   help="Watch the Venice bridge (default: monitor.venice).")] = None,
    interval: Annotated[Optional[float], typer.Option("--interval", "-i", min=0.1, max=3600, metavar="SECONDS",
                                                      help="Seconds between refreshes (default: "
                                                           "monitor.interval, 1).")] = None,
    timeout: Annotated[Optional[float], typer.Option("--timeout", min=0.1, max=60, metavar="SECONDS",
                                                     help="Seconds a source has to answer (default: "
                                                          "monitor.timeout, 2).")] = None,
    once: Annotated[bool, typer.Option("--once", help="Print one snapshot and exit (0 healthy, 3 degraded, "
                                                      "1 unreachable).")] = False,
    fmt: Annotated[Optional[Format], typer.Option("--format", case_sensitive=False,
                                                  help="With --once: table, json, csv or markdown.")] = None,
    json_flag: JsonOption = False,
) -> None:
    run = state()
    settings = run.settings({"redis.url": (redis_url, "--redis-url"), "monitor.hub_url": (hub_url, "--hub-url"),
                             "monitor.venice": (venice, "--venice"), "monitor.interval": (interval, "--interval"),
                             "monitor.timeout": (timeout, "--timeout")})
    if not once and (fmt is not None or json_flag):
        raise UsageError("--format and --json go with --once", "add --once for one snapshot, or drop --format")
    monitor_ = _build(settings, redis, hub)
    if once:
        from cascade_cli.monitor.panels import exit_code

        snapshot = _run(_once(monitor_))
        _print_snapshot(snapshot, pick_format(fmt or Format.table, json_flag), run.no_color)
        raise typer.Exit(exit_code(snapshot["status"]))
    import sys

    if not sys.stdout.isatty():
        raise UsageError("the live view needs a terminal on stdout",
                         "use --once (with --format json for scripts) to print one snapshot")
    from rich.console import Console

    from cascade_cli.monitor import tui
    from cascade_cli.output import use_color

    console = Console(no_color=not use_color(sys.stdout, run.no_color), highlight=False,
                      markup=False)   # text from the sources is shown as it is, never as markup
    raise typer.Exit(_run(tui.run(monitor_, console)))


async def _once(monitor_: Any) -> dict[str, Any]:
    try:
        return await monitor_.once()
    finally:
        await monitor_.aclose()


def _run(coro: Any) -> Any:
    import asyncio

    return asyncio.run(coro)


def hub_url_of(settings: Any) -> str:
    """monitor.hub_url, else the URL `cascade serve` listens on by the same settings."""
    if settings.monitor.hub_url:
        return str(settings.monitor.hub_url)
    host = settings.serve.host
    host = "127.0.0.1" if host in ("0.0.0.0", "") else "[::1]" if host == "::" else host
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{host}:{settings.serve.port}"


def _build(settings: Any, redis: bool, hub: bool) -> Any:
    from cascade_cli.monitor.sources import HubHttpSource, Monitor, RedisSource, VeniceSource

    m = settings.monitor
    sources: dict[str, Any] = {
        "redis": RedisSource(settings.redis, settings.redis.url, every=m.interval, timeout=m.timeout,
                             window=m.window) if redis else "--no-redis",
        "hub": HubHttpSource(hub_url_of(settings), every=m.interval, timeout=m.timeout, window=m.window)
        if hub else "--no-hub",
        "venice": VeniceSource(settings.venice, every=m.venice_interval, timeout=m.timeout, window=m.window)
        if m.venice else "--no-venice",
    }
    return Monitor(sources, interval=m.interval)


def _print_snapshot(snapshot: dict[str, Any], output: Format, no_color: bool) -> None:
    from cascade_cli.monitor.render import rows
    from cascade_cli.output import render_json, render_rows

    if output is Format.json:
        render_json(snapshot)
    else:
        render_rows(rows(snapshot), ["source", "status", "summary", "problems"], output, no_color=no_color)
