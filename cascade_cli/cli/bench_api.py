"""cascade bench api: HTTP endpoint latency and throughput with httpx, one test per path.

Adds the `api` command to the `cascade bench` group; the load generator is
`cascade_cli.bench.api_load`, the options, output and thresholds are the group's.
"""

from __future__ import annotations

import dataclasses
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cascade_cli.cli.bench import (
    ClientsOption,
    DurationOption,
    ExportCsvOption,
    ExportJsonOption,
    FailIfOption,
    HistogramOption,
    LoadOptions,
    OutputOptions,
    RateOption,
    TokenFileOption,
    WarmupOption,
    app,
    hub_token,
    hub_url,
    load_settings,
    make_plan,
    parse_thresholds,
    plan_view,
    run_and_report,
    threshold_metrics,
)
from cascade_cli.cli.common import FormatOption, JsonOption, state
from cascade_cli.errors import UsageError
from cascade_cli.output import Format

if TYPE_CHECKING:
    from cascade_cli.bench.results import Measurement

# httpx spends ~0.5 ms of CPU per request here, so the redis defaults (100,000 requests, one
# process per 50,000 ops/s) would mean minutes per path and a saturated open-loop process.
API_REQUESTS = 10_000
API_RATE_PER_PROCESS = 1_000

RequestsOption = Annotated[int | None, typer.Option("--requests", "-n", min=1,
                                                    help=f"Measured requests per path (default: bench.requests "
                                                         f"when set, else {API_REQUESTS:,}; not with "
                                                         "--duration).")]
ProcessesOption = Annotated[int | None, typer.Option("--processes", min=0, max=256,
                                                     help="Load generator processes (default: bench.processes; "
                                                          "0: one per core, one fewer when the target is "
                                                          f"on this machine; with --rate one per "
                                                          f"{API_RATE_PER_PROCESS:,} ops/s up to that).")]

API_COLUMNS = ["test", "requests", "errors", "ops_per_sec", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms",
               "client_cpu_pct", "status_4xx", "status_5xx", "transport_errors"]


class Method(str, Enum):
    GET = "GET"
    POST = "POST"


@app.command("api")
def api_cmd(
    url: Annotated[str | None, typer.Option("--url", "-u", metavar="URL",
                                               help="Base URL the paths are joined to (default: this "
                                                    "machine's hub, http://serve.host:serve.port).")] = None,
    paths: Annotated[str, typer.Option("--paths", metavar="PATHS",
                                       help="Comma-separated paths, one test each (a full http(s):// URL "
                                            "also works).")] = "/health",
    method: Annotated[Method | None, typer.Option("--method", "-X", case_sensitive=False,
                                                    help="GET, or POST (the default when a body is "
                                                         "given).")] = None,
    body: Annotated[str | None, typer.Option("--body", metavar="JSON",
                                                help="JSON body of each POST.")] = None,
    body_file: Annotated[Path | None, typer.Option("--body-file", metavar="FILE", dir_okay=False,
                                                      help="Read the JSON body from FILE.")] = None,
    header: Annotated[list[str] | None, typer.Option("--header", "-H", metavar="'NAME: VALUE'",
                                                        help="Extra request header (repeatable).")] = None,
    token_file: TokenFileOption = None,
    timeout: Annotated[float, typer.Option("--timeout", min=0.001, metavar="SECONDS",
                                           help="Longest wait for a connection or an answer; a request "
                                                "that takes longer counts as an error.")] = 10.0,
    clients: ClientsOption = None,
    requests: RequestsOption = None,
    duration: DurationOption = None,
    rate: RateOption = None,
    processes: ProcessesOption = None,
    warmup: WarmupOption = None,
    fmt: FormatOption = Format.table,
    json_flag: JsonOption = False,
    histogram: HistogramOption = False,
    export_json: ExportJsonOption = None,
    export_csv: ExportCsvOption = None,
    fail_if: FailIfOption = None,
) -> None:
    """Benchmark HTTP endpoints (cascade serve's, or any server's) with httpx: one test per
    path, keep-alive connections, only 2xx answers count as requests; other statuses and
    transport errors are errors, counted per class (status_4xx, status_5xx, transport_errors)."""
    from cascade_cli.bench.api_load import (
        STATUS_KEYS,
        ApiWorkload,
        check_base_url,
        json_body,
        parse_headers,
        preflight,
        resolve_paths,
    )
    from cascade_cli.bench.results import summarize
    from cascade_cli.config import mask_url

    load = LoadOptions(clients, requests, duration, rate, processes, warmup)
    settings = load_settings(load, {"serve.token_file": (token_file, "--token-file")})
    base = check_base_url(url if url is not None else hub_url(settings))
    names, urls = resolve_paths(base, paths)
    if body is not None and body_file is not None:
        raise UsageError("give --body or --body-file, not both")
    payload = None
    if body is not None:
        payload = json_body(body, "--body")
    elif body_file is not None:
        try:
            text = body_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read --body-file {body_file}: {getattr(exc, 'strerror', None) or exc}",
                             "check the path") from None
        payload = json_body(text, f"--body-file {body_file}")
    verb = (method or (Method.POST if payload is not None else Method.GET)).value
    if verb == "GET" and payload is not None:
        raise UsageError("a body needs --method POST", "drop -X GET, or drop --body/--body-file")
    headers = parse_headers(header or [])
    secret = hub_token(settings)
    plan = make_plan(load, settings, urls[0], ops_per_process=API_RATE_PER_PROCESS)
    if plan.requests is not None and settings.source("bench.requests") == "default":
        plan = dataclasses.replace(plan, requests=API_REQUESTS)
    metrics = threshold_metrics(*STATUS_KEYS)
    parse_thresholds(fail_if or [], metrics, names)  # usage errors before any request
    answers = preflight(urls, verb, payload, timeout, secret, headers)
    messages = state().messages
    for answer in answers:
        if not 200 <= answer.status < 300:
            messages.warn(f"{verb} {mask_url(answer.url)} answered HTTP {answer.status} before the run; "
                          "non-2xx answers count as errors")
    workload = ApiWorkload(tests=names, urls=urls, method=verb, body=payload, headers=headers,
                           token=secret, timeout=timeout)
    settings_view = {**plan_view(plan), "method": verb, "urls": [mask_url(u) for u in urls],
                     "body_bytes": len(payload) if payload is not None else None,
                     "headers": [name for name, _ in headers], "bearer_token": bool(secret),
                     "timeout_s": timeout, "http_version": "HTTP/1.1",
                     "server": answers[0].server if answers else ""}
    columns = API_COLUMNS + (["uncorrected_p99_ms", "send_lag_p99_ms"] if rate else [])

    def row(m: Measurement) -> dict[str, Any]:
        out = summarize(m, target_rate=rate)
        out.update({key: m.counters.get(key, 0) for key in STATUS_KEYS})
        return out

    run_and_report(command="api", target=mask_url(base), workload=workload, plan=plan,
                   settings_view=settings_view, row=row,
                   metrics=metrics, columns=columns,
                   output=OutputOptions(fmt, json_flag, histogram, export_json, export_csv, fail_if or []))
