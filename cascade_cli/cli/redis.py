"""cascade redis start|stop|status|ping: run a Redis server on this machine and check any Redis."""

from __future__ import annotations

import os
import sys
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from cascade_cli.cli.common import FormatOption, JsonOption, pick_format, state
from cascade_cli.errors import UsageError
from cascade_cli.output import Format, render_record

if TYPE_CHECKING:
    from cascade_cli.config import Settings
    from cascade_cli.launcher import Started

app = typer.Typer(
    help="Run Redis on this machine and check any Redis server.\n\n"
         "`start` runs redis-server (or valkey-server) when installed, else cascade's in-memory "
         "server, detached, with its pidfile, log, config and data in "
         "$XDG_STATE_HOME/cascade/redis-PORT/ (~/.local/state/...). `stop` shuts it down, "
         "`status` and `ping` check any server. The port defaults to the port of redis.url.",
    no_args_is_help=True,
)


class Engine(str, Enum):
    auto = "auto"
    native = "native"
    memory = "memory"


class Fsync(str, Enum):
    always = "always"
    everysec = "everysec"
    no = "no"


PortOption = Annotated[Optional[int], typer.Option("--port", "-p", min=1, max=65535,
                                                   help="TCP port (default: the port of redis.url, 6379).")]
UrlOption = Annotated[Optional[str], typer.Option("--url", "-u", metavar="URL",
                                                  help="Server URL, redis://[:password@]host:port/db "
                                                       "(default: redis.url).")]


def _port(settings: Settings, port: int | None) -> int:
    from cascade_cli.launcher import default_port

    return port if port is not None else default_port(settings.redis.url)


def _target(settings: Settings, url: str | None, port: int | None) -> str | None:
    """The URL status and ping talk to: --url, or 127.0.0.1:--port, or redis.url (None)."""
    if url is not None and port is not None:
        raise UsageError("give --url or --port, not both",
                         "--port P is short for --url redis://127.0.0.1:P/0")
    if port is not None:
        from cascade_cli.launcher import port_url

        return port_url(port)
    return url


class Spinner:
    """A one-line progress spinner on stderr, only on a terminal and never with --quiet or
    TERM=dumb; `done()` erases it."""

    FRAMES = "|/-\\"

    def __init__(self, label: str) -> None:
        run = state()
        self.label = label
        self.enabled = (sys.stderr.isatty() and not run.quiet and os.environ.get("TERM") != "dumb")
        self.shown = 0
        self.ticks = 0

    def tick(self, elapsed: float) -> None:
        if not self.enabled:
            return
        self.ticks += 1
        if self.ticks % 3:
            return
        line = f"{self.FRAMES[(self.ticks // 3) % len(self.FRAMES)]} {self.label} ({elapsed:.1f} s)"
        sys.stderr.write("\r" + line.ljust(self.shown))
        sys.stderr.flush()
        self.shown = len(line)

    def done(self) -> None:
        if self.shown:
            sys.stderr.write("\r" + " " * self.shown + "\r")
            sys.stderr.flush()
            self.shown = 0


def _start_view(record: dict[str, Any]) -> dict[str, Any]:
    keys = ["engine", "server", "version", "pid", "url", "data_dir", "log_file"]
    view = {k: record[k] for k in keys if record.get(k) is not None}
    if record["requirepass"]:
        view["requirepass"] = True
    if record["already_running"]:
        view["already_running"] = True
    return view


def _show(record: dict[str, Any], view: dict[str, Any], fmt: Format, json_flag: bool) -> None:
    output = pick_format(fmt, json_flag)
    if output in (Format.table, Format.markdown):
        render_record(view, output, no_color=state().no_color)
    else:
        render_record(record, output)


def _describe(started: Started) -> str:
    name = "in-memory server" if started.engine == "memory" else started.server
    return f"{name} {started.version}".strip()


@app.command("start")
def start_cmd(
    port: PortOption = None,
    bind: Annotated[str, typer.Option(
        "--bind", metavar="ADDRESS",
        help="Address to listen on; several separated by spaces.")] = "127.0.0.1",
    engine: Annotated[Optional[Engine], typer.Option(
        "--engine", case_sensitive=False,
        help="auto: redis-server or valkey-server from PATH (or redis.server_binary), else the "
             "in-memory server; native; memory (default: redis.engine, auto).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(
        "--dir", metavar="DIR", file_okay=False,
        help="Data directory (default: data/ in the state dir).")] = None,
    appendonly: Annotated[bool, typer.Option("--appendonly/--no-appendonly",
                                             help="Log every write to an append-only file.")] = False,
    appendfsync: Annotated[Fsync, typer.Option(
        "--appendfsync", case_sensitive=False,
        help="When the append-only file is flushed to disk.")] = Fsync.everysec,
    requirepass_file: Annotated[Optional[Path], typer.Option(
        "--requirepass-file", metavar="FILE", dir_okay=False,
        help="File whose first line is the password clients must give. It reaches the server in a "
             "config file only its owner can read, never on a command line.")] = None,
    foreground: Annotated[bool, typer.Option("--foreground", help="Run attached; Ctrl-C or SIGTERM stops "
                                             "it cleanly (saving its data) and exits 0.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, max=3600.0, metavar="SECONDS",
                                           help="How long to wait for the first PONG.")] = 30.0,
    fmt: FormatOption = Format.table,
    json_flag: JsonOption = False,
) -> None:
    """Start a Redis server on this machine, or report the one cascade already runs there.

    Waits until the server answers PING, then prints its engine, version, pid and URL.
    Exit 0 when it answers (also when cascade already runs one on that port); 1 when the port
    is taken by another process, the engine is missing, or the server fails to start.
    """
    from cascade_cli.config import read_secret_file
    from cascade_cli.launcher import StartOptions, Started, run_foreground, start

    run = state()
    settings = run.settings({"redis.engine": (engine.value if engine else None, "--engine")})
    password = None
    if requirepass_file is not None:
        password = read_secret_file(str(requirepass_file), "--requirepass-file")
        if not password:
            raise UsageError(f"the password file {requirepass_file} is empty",
                             "put the password on its first line")
    options = StartOptions(port=_port(settings, port), bind=bind, engine=settings.redis.engine,
                           data_dir=data_dir, appendonly=appendonly, appendfsync=appendfsync.value,
                           password=password, server_binary=settings.redis.server_binary,
                           timeout=timeout)

    def report(started: Started) -> None:
        if started.removed_stale_pid is not None:
            run.messages.warn(f"removed a stale pidfile (pid {started.removed_stale_pid} was not running)")
        record = started.to_record()
        _show(record, _start_view(record), fmt, json_flag)
        sys.stdout.flush()
        if started.already_running:
            run.messages.info(f"already running on port {started.port}: {_describe(started)}, "
                              f"pid {started.pid} (started by cascade; stop it to change its options)")
        elif foreground:
            run.messages.info(f"running {_describe(started)} on {started.url} in the foreground; "
                              "Ctrl-C stops it")
        else:
            run.messages.info(f"started {_describe(started)} on {started.url}, pid {started.pid}, "
                              f"in {started.startup_ms:g} ms")

    if foreground:
        result = run_foreground(options, on_ready=report)
        if isinstance(result, Started):
            report(result)
        else:
            run.messages.info(f"stopped (on {result.signal_name})" if result.signal_name else "stopped")
        return
    spinner = Spinner(f"waiting for the server on port {options.port}")
    try:
        started = start(options, on_wait=spinner.tick)
    finally:
        spinner.done()
    report(started)


@app.command("stop")
def stop_cmd(
    port: PortOption = None,
    nosave: Annotated[bool, typer.Option("--nosave", help="Do not save the data before stopping.")] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, max=3600.0, metavar="SECONDS",
                                           help="How long to wait for the process to exit.")] = 30.0,
) -> None:
    """Stop the server cascade started on a port: SHUTDOWN SAVE (or NOSAVE), then wait for it
    to exit.

    Exit 0 when it stopped, and also when nothing was running there (a stale pidfile is
    removed): the port is free either way. Exit 1 when a server cascade did not start answers
    there (cascade leaves it alone), when the server refuses to shut down (e.g. saving failed:
    see its log, or use --nosave), or when it is still running after --timeout.
    """
    from cascade_cli.launcher import stop

    run = state()
    settings = run.settings()
    chosen = _port(settings, port)
    stopped = stop(chosen, nosave=nosave, timeout=timeout)
    if stopped.outcome == "not_running":
        run.messages.info(f"nothing to stop: no server is running on port {chosen}")
    elif stopped.outcome == "stale_pidfile":
        run.messages.info(f"nothing to stop on port {chosen}: removed a stale pidfile "
                          f"(pid {stopped.pid} was not running)")
    else:
        saved = f"data saved in {stopped.data_dir}" if stopped.saved else "data not saved (--nosave)"
        run.messages.info(f"stopped {stopped.server or 'the server'} on port {chosen} (pid {stopped.pid}) "
                          f"in {stopped.stop_ms:g} ms; {saved}")


def _status_view(record: dict[str, Any]) -> dict[str, Any]:
    from cascade_cli.launcher import human_duration

    dbs = record["databases"]
    keys = ", ".join(f"db{d['db']}={d['keys']}" + (f" ({d['expires']} expiring)" if d["expires"] else "")
                     for d in dbs) or "0"
    persistence = [f"aof {'on' if record['aof_enabled'] else 'off'}"]
    if record["rdb_last_save_time"]:
        import datetime

        when = datetime.datetime.fromtimestamp(record["rdb_last_save_time"]).isoformat(sep=" ",
                                                                                       timespec="seconds")
        persistence.append(f"last save {when}")
    if record["rdb_changes_since_last_save"] is not None:
        persistence.append(f"{record['rdb_changes_since_last_save']} changes since")
    view = {
        "url": record["url"], "engine": record["engine"], "server": record["server"],
        "version": record["version"], "pid": record["pid"],
        "uptime": human_duration(record["uptime_ms"] / 1000) if record["uptime_ms"] is not None else None,
        "memory": record["used_memory_human"], "clients": record["connected_clients"],
        "keys": keys, "ops_per_sec": record["ops_per_sec"], "persistence": "; ".join(persistence),
    }
    if record["loading"]:
        view["loading"] = True
    if record["managed"]:
        view["started_by_cascade"] = record["state_dir"]
    return view


@app.command("status")
def status_cmd(
    port: Annotated[Optional[int], typer.Option("--port", "-p", min=1, max=65535,
                                                help="Check the server on this machine's PORT "
                                                     "(redis://127.0.0.1:PORT/0).")] = None,
    url: UrlOption = None,
    fmt: FormatOption = Format.table,
    json_flag: JsonOption = False,
) -> None:
    """Engine, version, pid, uptime, memory, clients, keys per database, ops/s and persistence,
    from INFO.

    The password comes from the URL or redis.password (CASCADE_REDIS_PASSWORD); with neither,
    for a server cascade started on this machine, the one it was started with. Exit 1 when
    nothing answers or the server answers with an error (e.g. NOAUTH).
    """
    from cascade_cli.launcher import status

    settings = state().settings()
    report = status(settings.redis, _target(settings, url, port))
    record = report.to_record()
    _show(record, _status_view(record), fmt, json_flag)


def _ping_view(record: dict[str, Any]) -> dict[str, Any]:
    view = {"url": record["url"], "outcome": record["outcome"],
            "answered": f"{record['answered']}/{record['count']}"}
    view.update({k: record[k] for k in ("min_ms", "avg_ms", "p50_ms", "p99_ms", "max_ms")})
    if record["error"]:
        view["error"] = record["error"]
    return view


@app.command("ping")
def ping_cmd(
    url: UrlOption = None,
    port: Annotated[Optional[int], typer.Option("--port", "-p", min=1, max=65535,
                                                help="Ping the server on this machine's PORT "
                                                     "(redis://127.0.0.1:PORT/0).")] = None,
    count: Annotated[int, typer.Option("--count", "-c", min=1, max=1_000_000, help="Number of PINGs.")] = 10,
    interval: Annotated[float, typer.Option("--interval", "-i", min=0.0, max=3600.0,
                                            help="Seconds between PINGs.")] = 0.1,
    fmt: FormatOption = Format.table,
    json_flag: JsonOption = False,
) -> None:
    """PING round-trip latency, like `redis-cli --latency`: min, avg, p50, p99 and max in ms.

    The connection is opened (and authenticated) before the first PING; each sample is one
    round trip on it. The password comes as for `status`. Exit 0 when every PING got PONG,
    3 when the server answered with an error (e.g. NOAUTH, WRONGPASS, LOADING), 1 when it is
    unreachable. Ctrl-C stops early and reports the samples taken so far.
    """
    from cascade_cli.launcher import ping

    run = state()
    settings = run.settings()

    def sample(index: int, ms: float) -> None:
        run.messages.debug(f"PING {index}/{count}: {ms:.3f} ms")

    report = ping(settings.redis, _target(settings, url, port), count, interval, on_sample=sample)
    record = report.to_record()
    _show(record, _ping_view(record), fmt, json_flag)
    if report.interrupted:
        run.messages.warn(f"interrupted after {len(report.samples_ms)} of {count} PINGs")
    if report.exit_error is not None:
        raise report.exit_error
