"""cascade bench redis|ws|api: latency and throughput with honest percentiles, fit for CI.

The options every bench command shares are defined here once (`LoadOptions`, `OutputOptions`);
`run_and_report()` runs a workload, prints the table or document, writes the exports, and
turns breached `--fail-if` thresholds into exit 3 and Ctrl-C into exit 130 (after printing what
was measured). Commands build their workload and row function and call it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from cascade_cli.cli.common import FormatOption, JsonOption, pick_format, state
from cascade_cli.errors import EXIT_INTERRUPTED, CheckFailed, UsageError
from cascade_cli.output import Format, render_json, render_table

if TYPE_CHECKING:
    from cascade_cli.bench.histogram import Histogram
    from cascade_cli.bench.results import Measurement
    from cascade_cli.bench.runner import Workload
    from cascade_cli.config import Settings

app = typer.Typer(
    help="Benchmark Redis, the hub and HTTP APIs: latency percentiles (HDR histograms), throughput, "
         "CI thresholds.\n\n"
         "Closed loop by default (--clients connections, each sending its next request when the last "
         "answered); --rate R switches to an open loop that sends R requests/s on a fixed schedule and "
         "measures latency from each request's intended send time (coordinated omission corrected; "
         "the uncorrected figures are in the uncorrected_* keys). Exit codes: 0 ok, 1 target "
         "unreachable or load failed, 2 usage, 3 a --fail-if threshold breached, 130 interrupted "
         "(after printing what was measured).",
    no_args_is_help=True,
)

ClientsOption = Annotated[int | None, typer.Option("--clients", "-c", min=1, max=100000,
                                                      help="Concurrent connections (default: bench.clients).")]
RequestsOption = Annotated[int | None, typer.Option("--requests", "-n", min=1,
                                                       help="Measured requests per test (default: bench.requests; "
                                                            "not with --duration).")]
DurationOption = Annotated[float | None, typer.Option("--duration", "-d", min=0.001, metavar="SECONDS",
                                                         help="Measure for this long per test instead of a "
                                                              "request count.")]
RateOption = Annotated[float | None, typer.Option("--rate", metavar="OPS",
                                                     help="Open loop: send OPS requests/s in total on a fixed "
                                                          "schedule (default: closed loop).")]
ProcessesOption = Annotated[int | None, typer.Option("--processes", min=0, max=256,
                                                        help="Load generator processes (default: bench.processes; "
                                                             "0: one per core, one fewer when the target is "
                                                             "on this machine; with --rate one per 40,000 "
                                                             "ops/s up to that).")]
WarmupOption = Annotated[float | None, typer.Option("--warmup", min=0, metavar="SECONDS",
                                                       help="Seconds of load before measuring, excluded from "
                                                            "results (default: bench.warmup).")]
HistogramOption = Annotated[bool, typer.Option("--histogram", help="Also print a text latency histogram "
                                                                   "per test.")]
ExportJsonOption = Annotated[Path | None, typer.Option("--export-json", metavar="FILE", dir_okay=False,
                                                          help="Also write the JSON document to FILE.")]
ExportCsvOption = Annotated[Path | None, typer.Option("--export-csv", metavar="FILE", dir_okay=False,
                                                         help="Also write one CSV row per test to FILE.")]
FailIfOption = Annotated[list[str] | None, typer.Option(
    "--fail-if", metavar="[TEST:]METRIC OP N",
    help="Exit 3 when a result crosses this, e.g. 'p99_ms>5' or 'get:ops_per_sec<50000' "
         "(repeatable; metrics are the JSON keys).")]
TokenFileOption = Annotated[str | None, typer.Option(
    "--token-file", metavar="FILE",
    help="File whose first line is the hub's token, sent as a Bearer header (default: serve.token_file; "
         "CASCADE_SERVE_TOKEN or serve.token, when set, comes first).")]


@dataclass
class LoadOptions:
    """The load flags as given (None: not given); `load_settings()` lays them over config."""

    clients: int | None = None
    requests: int | None = None
    duration: float | None = None
    rate: float | None = None
    processes: int | None = None
    warmup: float | None = None


@dataclass
class OutputOptions:
    fmt: Format = Format.table
    json_flag: bool = False
    histogram: bool = False
    export_json: Path | None = None
    export_csv: Path | None = None
    fail_if: list[str] = field(default_factory=list)


def load_settings(load: LoadOptions, extra: dict[str, tuple[Any, str]] | None = None) -> Settings:
    """Settings with the load flags applied over config (validated like config values)."""
    return state().settings({
        "bench.clients": (load.clients, "--clients"),
        "bench.requests": (load.requests, "--requests"),
        "bench.processes": (load.processes, "--processes"),
        "bench.warmup": (load.warmup, "--warmup"),
        **(extra or {}),
    })


def hub_token(settings: Settings) -> str | None:
    """The token for `cascade serve`'s hub, as the hub itself reads it: serve.token
    (CASCADE_SERVE_TOKEN), else the first line of serve.token_file (--token-file sets it);
    None when neither is set. ConfigError for an unreadable or empty file. Never a flag's value:
    flags show in the process list."""
    from cascade_cli.config import read_secret_file
    from cascade_cli.errors import ConfigError

    token = settings.serve.token.strip()
    if token:
        return token
    path = settings.serve.token_file
    if not path:
        return None
    token = read_secret_file(path, "serve.token_file")
    if not token:
        raise ConfigError(f"the token file {path} is empty", "put the token on its first line")
    return token


def hub_url(settings: Settings) -> str:
    """http://{serve.host}:{serve.port}, the hub this machine runs: a bind-all address (0.0.0.0,
    *, ::, empty) becomes loopback, an IPv6 address gets brackets."""
    host = settings.serve.host.strip()
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "*": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{settings.serve.port}"


def make_plan(load: LoadOptions, settings: Settings, target: str, **processes_options: Any) -> Any:
    """The runner's plan: requests from config unless --duration; processes 0 means
    `runner.default_processes()` for `target` (`processes_options` go to it)."""
    from cascade_cli.bench.runner import Plan, check_plan, default_processes, is_local

    bench = settings.bench
    check_plan(bench.clients, load.requests, load.duration, load.rate)
    requests = None if load.duration is not None else bench.requests
    processes = bench.processes or default_processes(load.rate, local=is_local(target), **processes_options)
    return Plan(clients=bench.clients, processes=processes, requests=requests, duration=load.duration,
                rate=load.rate, warmup=bench.warmup)


def threshold_metrics(*extra: str) -> list[str]:
    """The metrics --fail-if accepts: every row key but `test` and `interrupted`, then `extra`."""
    from cascade_cli.bench.results import BASE_KEYS

    return [k for k in BASE_KEYS if k not in ("test", "interrupted")] + list(extra)


def plan_view(plan: Any) -> dict[str, Any]:
    """The load settings of the JSON document (`settings`), from the runner's plan."""
    return {"clients": plan.clients, "processes": plan.used_processes, "requests": plan.requests,
            "duration_s": plan.duration, "rate": plan.rate, "warmup_s": plan.warmup}


def parse_thresholds(texts: list[str], metrics: list[str], tests: list[str]) -> list[Any]:
    from cascade_cli.bench.thresholds import ThresholdError, parse

    try:
        return [parse(text, metrics, tests) for text in texts]
    except ThresholdError as exc:
        raise UsageError(str(exc), "see 'cascade bench --help' and docs/bench.md for the metric names") from None


def progress_enabled() -> bool:
    """The live progress line: only on a terminal, never with --quiet or TERM=dumb."""
    return sys.stderr.isatty() and not state().quiet and os.environ.get("TERM") != "dumb"


def run_and_report(*, command: str, target: str, workload: Workload, plan: Any, settings_view: dict[str, Any],
                   row: Callable[[Measurement], dict[str, Any] | None], metrics: list[str], columns: list[str],
                   output: OutputOptions, intro: str | None = None,
                   on_result: Callable[[Measurement], None] | None = None,
                   finish: Callable[[list[dict[str, Any]], bool], dict[str, Any]] | None = None,
                   epilogue: Callable[[], None] | None = None) -> None:
    """Run `workload` under `plan`, print and export the results, check the thresholds.

    `row(m)` is each test's row (None leaves the test out of the results). A command that needs
    more passes: `intro`, the line printed before the run instead of the usual one; `on_result(m)`,
    called with each test's merged measurement as it ends (`run_workload()`); `finish(rows,
    interrupted)`, which may add keys to the rows before the thresholds are checked and returns
    keys to add to the document; `epilogue()`, which prints after the results.

    Raises CheckFailed (exit 3) when a threshold is breached and typer.Exit(130) after an
    interrupted run; the results are printed first either way."""
    from cascade_cli.bench import report
    from cascade_cli.bench.runner import ProgressLine, run_workload
    from cascade_cli.bench.thresholds import evaluate

    thresholds = parse_thresholds(output.fail_if, metrics, workload.tests)
    fmt = pick_format(output.fmt, output.json_flag)
    messages = state().messages
    if intro is None:
        intro = (f"cascade bench {command}: {target}, {plan.clients} clients in "
                 f"{plan.used_processes} processes, "
                 + (f"open loop at {plan.rate:g} ops/s" if plan.rate else "closed loop")
                 + (f", {plan.requests:,} requests" if plan.requests else f", {plan.duration:g} s")
                 + f" per test, warmup {plan.warmup:g} s")
    messages.info(intro)
    outcome = run_workload(workload, plan, progress=ProgressLine(progress_enabled()), on_result=on_result)
    measured = [(m, r) for m in outcome.results if (r := row(m)) is not None]
    rows = [r for _, r in measured]
    extra = finish(rows, outcome.interrupted) if finish is not None else {}
    checks = evaluate(rows, thresholds)
    histograms = {m.test: m.latency for m, _ in measured} if output.histogram else None
    doc = report.document(command, target, settings_view, rows, checks, outcome.interrupted, histograms)
    doc.update(extra)
    show_results(doc, fmt, columns, histograms=histograms, no_color=state().no_color)
    report.write_exports(doc, output.export_json, output.export_csv)
    for m, _ in measured:
        for sample in m.error_samples:
            messages.warn(f"{m.test}: {m.errors:,} errors, for example: {sample}")
            break
    if epilogue is not None:
        epilogue()
    if outcome.interrupted:
        messages.warn("interrupted: the results above cover what was measured before Ctrl-C")
        raise typer.Exit(EXIT_INTERRUPTED)
    failed = [c for c in checks if c["breached"]]
    if failed:
        first = failed[0]
        raise CheckFailed(f"{len(failed)} threshold check(s) failed, first: {first['test']}: "
                          f"{first['threshold']} (measured {first['value']})",
                          "the table marks each breach with '!'; --format json lists every check")


def show_results(doc: dict[str, Any], fmt: Format, columns: list[str], *,
                 histograms: dict[str, Histogram] | None, stream: TextIO | None = None,
                 no_color: bool = False) -> None:
    """Print the result on stdout in `fmt`: the document in json, all row keys in csv, the
    chosen columns as a table (rich on a terminal) or markdown, then the text histograms."""
    from cascade_cli.bench import report

    out = stream or sys.stdout
    rows, checks = doc["results"], doc["thresholds"]
    if fmt is Format.json:
        render_json(doc, stream=out)
        return
    if fmt is Format.csv:
        out.write(report.csv_text(rows))
        return
    headers, cells = report.table_cells(rows, columns, checks)
    render_table(headers, cells, fmt, stream=out, no_color=no_color)
    for name, hist in (histograms or {}).items():
        out.write(f"\n{name} latency (ms), {hist.count:,} samples\n")
        out.write("\n".join(report.text_histogram(hist)) + "\n")
    failed = [c for c in checks if c["breached"]]
    if failed:
        out.write("\n" + "\n".join(f"FAIL {c['test']}: {c['threshold']} (measured {c['value']})"
                                   for c in failed) + "\n")


# ----------------------------------------------------------------------------- bench redis

REDIS_COLUMNS = ["test", "requests", "errors", "ops_per_sec", "p50_ms", "p90_ms", "p99_ms", "p999_ms",
                 "max_ms", "client_cpu_pct"]


@app.command("redis")
def redis_cmd(
    url: Annotated[str | None, typer.Option("--url", "-u", metavar="URL",
                                               help="Server URL, redis://[:password@]host:port/db "
                                                    "(default: redis.url).")] = None,
    tests: Annotated[str, typer.Option("--tests", "-t", metavar="NAMES",
                                       help="Comma-separated tests, named as in redis-benchmark: set, get, "
                                            "incr, lpush, rpush, lpop, rpop, sadd, spop, hset, zadd, zpopmin, "
                                            "lrange (lrange_100, _300, _500, _600), mset, ping, publish.")]
    = "set,get,incr,lpush,lpop,sadd,hset,zadd,lrange,mset,ping,publish",
    clients: ClientsOption = None,
    requests: RequestsOption = None,
    duration: DurationOption = None,
    rate: RateOption = None,
    pipeline: Annotated[int | None, typer.Option("--pipeline", "-P", min=1, max=10000,
                                                    help="Commands in flight per connection in the closed "
                                                         "loop (default: bench.pipeline).")] = None,
    data_size: Annotated[int | None, typer.Option("--data-size", min=1, max=512 * 1024 * 1024,
                                                     help="Value size in bytes (default: bench.data_size).")]
    = None,
    keyspace: Annotated[int, typer.Option("--keyspace", "-r", min=0,
                                          help="Draw keys at random from this many (0: one fixed key per "
                                               "test, as redis-benchmark without -r).")] = 0,
    resp: Annotated[int, typer.Option("--resp", min=2, max=3, help="Protocol version: 2, or 3 (HELLO 3).")] = 2,
    processes: ProcessesOption = None,
    warmup: WarmupOption = None,
    keep_keys: Annotated[bool, typer.Option("--keep-keys", help="Leave this run's keys in place "
                                                                "(default: deleted after the run).")] = False,
    fmt: FormatOption = Format.table,
    json_flag: JsonOption = False,
    histogram: HistogramOption = False,
    export_json: ExportJsonOption = None,
    export_csv: ExportCsvOption = None,
    fail_if: FailIfOption = None,
) -> None:
    """Benchmark a Redis server (redis-server, valkey, cascade's in-memory server) with a lean
    RESP load generator. Keys live under cascade-bench:<run id>: and are deleted afterwards."""
    import secrets

    from cascade_cli.bench.redis_commands import TESTS, resolve_tests, run_prefix
    from cascade_cli.bench.redis_load import RedisWorkload, cleanup, fill_list, preflight
    from cascade_cli.bench.results import summarize

    load = LoadOptions(clients, requests, duration, rate, processes, warmup)
    settings = load_settings(load, {"bench.pipeline": (pipeline, "--pipeline"),
                                    "bench.data_size": (data_size, "--data-size"),
                                    "redis.url": (url, "--url")})
    try:
        names = resolve_tests(tests)
    except ValueError as exc:
        raise UsageError(f"unknown test(s) in --tests: {exc}",
                         "see 'cascade bench redis --help' for the test names") from None
    plan = make_plan(load, settings, settings.redis.url)
    metrics = threshold_metrics()
    parse_thresholds(fail_if or [], metrics, names)  # usage errors before the server is asked
    if rate is not None and pipeline is not None and pipeline > 1:
        state().messages.warn("--pipeline applies to the closed loop; with --rate each request is sent "
                              "on its own schedule")
    target = settings.redis.url
    info = preflight(target, settings, resp)
    workload = RedisWorkload(tests=names, url=target, password=info.password, username=info.username, db=info.db,
                             pipeline=1 if rate else settings.bench.pipeline, data_size=settings.bench.data_size,
                             keyspace=keyspace, resp=resp, prefix=run_prefix(secrets.token_hex(4)))
    settings_view = {**plan_view(plan), "pipeline": workload.pipeline, "data_size": workload.data_size,
                     "keyspace": keyspace, "resp": resp, "server": info.server, "key_prefix": workload.prefix,
                     "keys_kept": keep_keys}
    columns = REDIS_COLUMNS + (["uncorrected_p99_ms", "send_lag_p99_ms"] if rate else [])
    try:
        if any(TESTS[name].needs_list for name in names):
            fill_list(target, settings, workload.data_size, workload.prefix)
        run_and_report(command="redis", target=info.display_url, workload=workload, plan=plan,
                       settings_view=settings_view, row=lambda m: summarize(m, target_rate=rate),
                       metrics=metrics, columns=columns,
                       output=OutputOptions(fmt, json_flag, histogram, export_json, export_csv, fail_if or []))
    finally:
        if not keep_keys:
            cleanup(target, settings, workload.prefix)


from cascade_cli.cli import bench_api, bench_ws  # noqa: F401 - they add `bench api` and `bench ws` to `app`
