"""cascade bench ws: the hub's end-to-end latency, reach and losses, a subscriber ramp, and the
round-trip time of any WebSocket echo server (--echo).

The command checks the target first (one connection per channel, or one echo), then runs
`bench.ws_load.WsWorkload` through the shared runner and prints one row per test with
`run_and_report()`; `--ramp` runs one test per subscriber count and stops at the first step
that misses the SLO (the parent tells the load processes through `Shared.verdict`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from cascade_cli.cli.bench import (
    ExportCsvOption,
    ExportJsonOption,
    FailIfOption,
    HistogramOption,
    LoadOptions,
    OutputOptions,
    TokenFileOption,
    WarmupOption,
    app,
    hub_token,
    hub_url,
    load_settings,
    parse_thresholds,
    run_and_report,
    threshold_metrics,
)
from cascade_cli.cli.common import FormatOption, JsonOption, state
from cascade_cli.errors import UsageError
from cascade_cli.output import Format

if TYPE_CHECKING:
    from cascade_cli.bench.results import Measurement
    from cascade_cli.bench.ws_load import WsWorkload

DEFAULT_DURATION = 10.0
DEFAULT_RAMP_DURATION = 5.0
DEFAULT_RAMP_RATE = 100.0
MAX_RAMP_STEPS = 64

HUB_COLUMNS = ["test", "clients", "requests", "errors", "reach", "lost", "delivered_per_sec", "p50_ms",
               "p99_ms", "max_ms", "connect_p99_ms", "client_cpu_pct"]
ECHO_COLUMNS = ["test", "clients", "requests", "errors", "ops_per_sec", "p50_ms", "p90_ms", "p99_ms",
                "max_ms", "connect_p99_ms", "client_cpu_pct"]


def ramp_steps(start: int, step: int, maximum: int) -> list[int]:
    """start, then + step (or doubling when step is 0), while <= maximum (at most 64 steps)."""
    steps, count = [], start
    while count <= maximum and len(steps) < MAX_RAMP_STEPS:
        steps.append(count)
        count = count + step if step else count * 2
    return steps


def ramp_verdict(row: dict[str, Any], slo_ms: float) -> tuple[bool, str]:
    """Whether a ramp step held (measured, no errors, no loss, p99 within the SLO), and why not."""
    if row.get("interrupted"):
        return False, "interrupted"
    if row.get("errors"):
        return False, f"{row['errors']:,} errors"
    if row.get("connect_errors") or row.get("disconnects"):
        return False, (f"{row.get('connect_errors') or 0:,} connections failed, "
                       f"{row.get('disconnects') or 0:,} closed")
    if row.get("lost"):
        return False, f"{row['lost']:,} events lost"
    p99 = row.get("p99_ms")
    if p99 is None:
        return False, "no event arrived"
    if p99 > slo_ms:
        return False, f"p99 {p99:.3f} ms > {slo_ms:g} ms"
    return True, f"p99 {p99:.3f} ms <= {slo_ms:g} ms, no loss"


@app.command("ws")
def ws_cmd(
    url: Annotated[str | None, typer.Option(
        "--url", "-u", metavar="URL",
        help="The hub: http(s):// or ws(s)://HOST:PORT[/prefix] (default: http://{serve.host}:{serve.port} "
             "from config).")] = None,
    echo: Annotated[str | None, typer.Option(
        "--echo", metavar="WS_URL",
        help="Measure round trips against this plain WebSocket echo server instead of the hub "
             "(ws:// or wss://; --clients connections; --channels and --publishers do not apply).")] = None,
    clients: Annotated[int | None, typer.Option(
        "--clients", "-c", min=1, max=100000,
        help="Subscribers (with --echo: connections) (default: bench.clients).")] = None,
    channels: Annotated[str, typer.Option(
        "--channels", metavar="NAMES",
        help="Comma-separated channels; subscriber i listens on channel i mod N, and each publisher's "
             "events go round-robin over them.")] = "cascade-events",
    publishers: Annotated[int, typer.Option(
        "--publishers", min=1, max=10000,
        help="Publishing connections (on /ws), spread over the processes.")] = 1,
    rate: Annotated[float | None, typer.Option(
        "--rate", metavar="EVENTS",
        help="Open loop: publish EVENTS events/s in total over all publishers on a fixed schedule (echo: "
             "messages/s over all clients). Default: closed loop, each publisher publishing its next event "
             "when the hub acknowledged the last.")] = None,
    messages: Annotated[int | None, typer.Option(
        "--messages", "-n", min=1,
        help="Events to publish per test in total over all publishers (echo: messages over all clients); "
             "not with --duration.")] = None,
    duration: Annotated[float | None, typer.Option(
        "--duration", "-d", min=0.001, metavar="SECONDS",
        help="Publish for this long per test (echo: send for this long) instead of --messages "
             "(default: 10 s; 5 s per ramp step).")] = None,
    payload_size: Annotated[int, typer.Option(
        "--payload-size", min=0, max=900_000, metavar="BYTES",
        help="Bytes of padding in each event's data (about 90 bytes of ids and timestamps come on top).")]
    = 64,
    compression: Annotated[bool, typer.Option(
        "--compression",
        help="Offer permessage-deflate (the hub accepts it with 'cascade serve --compression').")]
    = False,
    connect_rate: Annotated[float | None, typer.Option(
        "--connect-rate", min=0.001, metavar="PER_SEC",
        help="Open new connections at this rate in total (default: 64 at a time per process, at once).")]
    = None,
    token_file: TokenFileOption = None,
    drain: Annotated[float, typer.Option(
        "--drain", min=0.0, max=600.0, metavar="SECONDS",
        help="After the last publish, wait for every subscriber to get every event of its channel, giving up "
             "after this long without any arrival; what has not arrived then counts as lost.")] = 5.0,
    ramp: Annotated[bool, typer.Option(
        "--ramp",
        help="Step the subscriber count up, one test (ramp-N) per step at a fixed --rate (default 100 "
             "events/s) for --duration (default 5 s) or --messages each, keeping the connections of earlier "
             "steps; stop at the first step with p99 above --slo, a lost event, an error or a failed "
             "connection. The largest count that held is printed and is ramp_max_clients in the JSON "
             "document (and in every row).")] = False,
    ramp_start: Annotated[int | None, typer.Option(
        "--ramp-start", min=1, help="Subscribers in the first step (default: --clients).")] = None,
    ramp_step: Annotated[int, typer.Option(
        "--ramp-step", min=0, help="Subscribers added per step (default 0: double each step).")] = 0,
    ramp_max: Annotated[int, typer.Option(
        "--ramp-max", min=1, max=100000, help="Largest step.")] = 10000,
    slo: Annotated[float, typer.Option(
        "--slo", min=0.0, metavar="MS", help="The ramp's p99 latency objective in ms.")] = 100.0,
    processes: Annotated[int | None, typer.Option(
        "--processes", min=0, max=256,
        help="Load generator processes; subscribers and publishers are spread over them (default: "
             "bench.processes; 0: one per core).")] = None,
    warmup: WarmupOption = None,
    fmt: FormatOption = Format.table,
    json_flag: JsonOption = False,
    histogram: HistogramOption = False,
    export_json: ExportJsonOption = None,
    export_csv: ExportCsvOption = None,
    fail_if: FailIfOption = None,
) -> None:
    """Benchmark the WebSocket hub (cascade serve, or any hub with its protocol): subscribers on
    /ws/{channel}, publishers on /ws; reports end-to-end latency (publish to arrival), connect
    times, delivered events/s, reach (delivered / expected), lost, duplicate and out-of-order
    events, the load processes' CPU and the hub's own counters from /metrics (server_* keys).
    Only events of this run count. --echo measures round trips against any echo server."""
    import secrets

    from cascade_cli.bench import ws_load
    from cascade_cli.bench.runner import Plan, check_plan, default_processes

    messages_out = state().messages
    settings = load_settings(LoadOptions(clients=clients, duration=duration, rate=rate, processes=processes,
                                         warmup=warmup), {"serve.token_file": (token_file, "--token-file")})
    if echo and url:
        raise UsageError("give --url (a hub) or --echo (an echo server), not both")
    if echo and ramp:
        raise UsageError("--ramp measures the hub; it does not combine with --echo")
    if messages is not None and duration is not None:
        raise UsageError("give --messages or --duration, not both",
                         "--messages N publishes N events per test, --duration S publishes for S seconds")
    names = list(dict.fromkeys(c.strip() for c in channels.split(",") if c.strip()))
    if not names:
        raise UsageError("--channels needs at least one channel name")
    if rate is None and ramp:
        rate = DEFAULT_RAMP_RATE
    if messages is None and duration is None:
        duration = DEFAULT_RAMP_DURATION if ramp else DEFAULT_DURATION
    bench = settings.bench
    if ramp:
        steps = ramp_steps(ramp_start or bench.clients, ramp_step, ramp_max)
        if not steps:
            raise UsageError(f"--ramp-start {ramp_start or bench.clients} is above --ramp-max {ramp_max}")
        tests = [f"ramp-{n}" for n in steps]
        counts = dict(zip(tests, steps))
    else:
        tests = ["echo" if echo else "pubsub"]
        counts = {tests[0]: bench.clients}
    peak = max(counts.values())
    check_plan(peak, messages, duration, rate)
    metrics = threshold_metrics(*(ws_load.ECHO_KEYS if echo else ws_load.HUB_KEYS),
                                *(["ramp_max_clients"] if ramp else []))
    parse_thresholds(fail_if or [], metrics, tests)   # a bad --fail-if is refused before connecting
    # the hub's token (env or config) goes to the hub; an echo server gets one only from --token-file
    secret = hub_token(settings) if not echo or token_file is not None else None

    if echo:
        info = ws_load.preflight_echo(echo, secret, compression)
        target, ws_base, metrics_url = echo, echo, None
    else:
        urls = ws_load.hub_urls(url or hub_url(settings))
        info = ws_load.preflight_hub(urls, names, secret, compression, payload_size)
        target, ws_base = urls.ws, urls.ws
        metrics_url = urls.metrics if ws_load.probe_metrics(urls.metrics, names) else None
        if metrics_url is None:
            messages_out.warn(f"no cascade hub metrics at {urls.metrics}: the server_* keys are null")
    if compression and not info.compressed:
        messages_out.warn("the server declined permessage-deflate; running without compression"
                          + ("" if echo else " (start the hub with 'cascade serve --compression')"))

    plan = Plan(clients=peak, processes=bench.processes or default_processes(), requests=messages,
                duration=duration, rate=rate, warmup=bench.warmup)
    workload = ws_load.WsWorkload(
        tests=tests, mode="echo" if echo else "hub", url=ws_base, clients=counts, channels=names,
        publishers=publishers, rate=rate, messages=messages, duration=duration, warmup=bench.warmup,
        payload_size=payload_size, compression=compression, connect_rate=connect_rate, token=secret,
        drain=drain, run_id=secrets.token_hex(6), metrics_url=metrics_url, ramp=ramp,
        shared=ws_load.Shared(len(tests), len(names), plan.used_processes))
    settings_view: dict[str, Any] = {
        "mode": workload.mode, "clients": peak, "processes": plan.used_processes, "messages": messages,
        "duration_s": duration, "rate": rate, "warmup_s": bench.warmup, "payload_size": payload_size,
        "compression": info.compressed, "connect_rate": connect_rate, "drain_s": drain,
        "run_id": workload.run_id}
    if not echo:
        settings_view.update({"channels": names, "publishers": publishers,
                              "server_metrics": metrics_url is not None})
    output = OutputOptions(fmt, json_flag, histogram, export_json, export_csv, fail_if or [])
    columns = (ECHO_COLUMNS if echo else HUB_COLUMNS) + (["uncorrected_p99_ms"] if rate else [])
    if ramp:
        assert rate is not None
        settings_view.update({"ramp_steps": list(counts.values()), "slo_ms": slo})
        run_ramp(workload, plan, target=target, rate=rate, slo=slo, settings_view=settings_view,
                 metrics=metrics, columns=["test", "held"] + columns[1:], output=output)
        return
    row_of = ws_load.echo_row if echo else ws_load.hub_row
    run_and_report(command="ws", target=target, workload=workload, plan=plan, settings_view=settings_view,
                   row=lambda m: with_notes(m, row_of(m, target_rate=rate)),
                   metrics=metrics, columns=columns, output=output)


def with_notes(m: Measurement, row: dict[str, Any]) -> dict[str, Any]:
    """Warn about failed and closed connections (they are not failed requests, so they are kept
    out of the `errors` samples that run_and_report() prints); returns `row`."""
    from cascade_cli.bench import ws_load

    for note in ws_load.take_notes(m):
        state().messages.warn(f"{m.test}: {note}")
    return row


class Ramp:
    """--ramp's verdicts, one per step, as run_and_report() hooks: the parent judges each step as
    it ends (`on_result`) and lets the load processes go on or skip the rest (`Shared.verdict`);
    every row gets `held` and `ramp_max_clients`, the document `ramp_max_clients` and
    `ramp_stop_reason`."""

    def __init__(self, workload: WsWorkload, rate: float, slo: float) -> None:
        self.workload = workload
        self.rate = rate
        self.slo = slo
        self.rows: dict[str, dict[str, Any]] = {}
        self.max = 0                  # the largest count that held
        self.last = ""                # why it held
        self.failed: int | None = None
        self.reason = "every step held up to --ramp-max"

    def on_result(self, m: Measurement) -> None:
        from cascade_cli.bench import ws_load

        index = self.workload.tests.index(m.test)
        if m.counters.get(ws_load.SKIPPED):
            self.workload.shared.verdict[index] = 2
            return
        row = with_notes(m, ws_load.hub_row(m, target_rate=self.rate))
        held, why = ramp_verdict(row, self.slo)
        row["held"] = held
        self.rows[m.test] = row
        if held:
            self.max = self.workload.clients[m.test]
            self.last = why
        else:
            self.reason = why
            self.failed = self.workload.clients[m.test]
        self.workload.shared.verdict[index] = 1 if held else 2

    def row(self, m: Measurement) -> dict[str, Any] | None:
        """The step's row from its verdict; None for a skipped step."""
        return self.rows.get(m.test)

    def finish(self, rows: list[dict[str, Any]], interrupted: bool) -> dict[str, Any]:
        for row in rows:
            row["ramp_max_clients"] = self.max
        stopped = self.failed is not None or interrupted
        return {"ramp_max_clients": self.max, "ramp_stop_reason": self.reason if stopped else None}

    def epilogue(self) -> None:
        messages = state().messages
        if self.failed is not None:
            held = f"{self.max:,} subscribers held ({self.last}); " if self.max else "no step held: "
            messages.info(f"ramp: {held}{self.failed:,} did not: {self.reason}")
        elif self.rows:
            messages.info(f"ramp: every step held, up to {self.max:,} subscribers "
                          f"(--ramp-max {max(self.workload.clients.values()):,})")


def run_ramp(workload: WsWorkload, plan: Any, *, target: str, rate: float, slo: float,
             settings_view: dict[str, Any], metrics: list[str], columns: list[str],
             output: OutputOptions) -> None:
    """`run_and_report()` for --ramp, with the `Ramp` hooks."""
    steps = list(workload.clients.values())
    length = f"{plan.requests:,} events" if plan.requests else f"{plan.duration:g} s"
    intro = (f"cascade bench ws --ramp: {target}, {steps[0]} to {steps[-1]} subscribers in up to "
             f"{len(steps)} steps of {length} at {rate:g} events/s (warmup {plan.warmup:g} s), "
             f"p99 SLO {slo:g} ms, {workload.shared.processes} processes")
    ramp = Ramp(workload, rate, slo)
    run_and_report(command="ws", target=target, workload=workload, plan=plan, settings_view=settings_view,
                   row=ramp.row, metrics=metrics, columns=columns, output=output, intro=intro,
                   on_result=ramp.on_result, finish=ramp.finish, epilogue=ramp.epilogue)
