"""cascade venice ping|get: the Venice bridge (serenissima.ai's public HTTP API)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from cascade_cli.cli.common import FormatOption, JsonOption, pick_format, state
from cascade_cli.errors import CheckFailed, UnreachableError
from cascade_cli.output import Format, render_json, render_record, render_rows

if TYPE_CHECKING:
    from cascade_cli.venice import Probe

app = typer.Typer(
    help="Query the Venice bridge, the public HTTP API of serenissima.ai.\n\n"
         "The base URL comes from venice.base_url (CASCADE_VENICE_BASE_URL); an optional API key "
         "from CASCADE_VENICE_API_KEY or venice.api_key_file, sent as a Bearer token and never printed.",
    no_args_is_help=True,
)

BaseUrlOption = Annotated[Optional[str], typer.Option("--base-url", metavar="URL",
                                                      help="API base URL (default: venice.base_url).")]
TimeoutOption = Annotated[Optional[float], typer.Option("--timeout", min=0.001, metavar="SECONDS",
                                                        help="Seconds to wait for a connection and for the answer "
                                                             "(default: venice.connect_timeout, venice.timeout).")]


def _connection_flags(base_url: str | None, timeout: float | None) -> dict[str, tuple[Any, str]]:
    """Settings overrides from the flags both venice commands take."""
    return {"venice.base_url": (base_url, "--base-url"),
            "venice.timeout": (timeout, "--timeout"),
            "venice.connect_timeout": (timeout, "--timeout")}


def _complete_resource(incomplete: str) -> list[str]:
    from cascade_cli.venice import RESOURCES

    return [name for name in RESOURCES if name.startswith(incomplete)]


def _warn_flags(flags: list[str]) -> None:
    from cascade_cli.venice import FLAG_MEANING

    for flag in flags:
        state().messages.warn(f"{flag}: {FLAG_MEANING[flag]}")


def _retry_notice(attempt: int, reason: str, delay: float) -> None:
    state().messages.debug(f"retry {attempt} after {reason}, waiting {delay:.2f} s")


def _probe_line(index: int, count: int, probe: Probe) -> str:
    if probe.status is None:
        return f"probe {index}/{count}: {probe.message}"
    return f"probe {index}/{count}: HTTP {probe.status} in {probe.latency_ms:.1f} ms"


def _ping_view(record: dict[str, Any]) -> dict[str, Any]:
    """The table view of a ping: what a person reads; json/csv keep every key."""
    view = {k: record[k] for k in ("base_url", "url", "outcome", "status", "success", "items")}
    if record["count"] == 1:
        view["latency_ms"] = record["latency_ms"]
    else:
        view["answered"] = f"{record['answered']}/{record['count']} ({record['ok']} ok)"
        view.update({k: record[k] for k in ("min_ms", "p50_ms", "p95_ms", "max_ms")})
    if record["flags"]:
        view["flags"] = ", ".join(record["flags"])
    if record["retry_after_s"] is not None:
        view["retry_after_s"] = record["retry_after_s"]
    if record["error"]:
        view["error"] = record["error"]
    return view


@app.command("ping")
def ping_cmd(
    base_url: BaseUrlOption = None,
    count: Annotated[int, typer.Option("--count", "-c", min=1, max=10000, help="Number of probes.")] = 1,
    interval: Annotated[float, typer.Option("--interval", "-i", min=0.0, max=3600.0,
                                            help="Seconds between probes.")] = 1.0,
    path: Annotated[Optional[str], typer.Option("--path", help="Path to probe (default: venice.ping_path, "
                                                "/activities?limit=1).")] = None,
    timeout: TimeoutOption = None,
    fmt: FormatOption = Format.table,
    json_flag: JsonOption = False,
) -> None:
    """Probe the API cheaply: status, latency, success flag, item count and warnings.

    Exit 0 when every probe answered with success, 3 when one answered with an error status or
    success: false, 1 when one could not reach the API. Probes are never retried.
    """
    from cascade_cli.venice import VeniceBridge, ping

    run = state()
    settings = run.settings({"venice.ping_path": (path, "--path"), **_connection_flags(base_url, timeout)})
    messages = run.messages

    def progress(index: int, probe: Probe) -> None:
        if count > 1:
            messages.info(_probe_line(index, count, probe))

    with VeniceBridge(settings.venice, retry=False) as bridge:
        report = ping(bridge, None, count, interval, on_probe=progress)
    if report.interrupted:
        messages.warn(f"interrupted after {len(report.probes)} of {count} probes")
    record = report.to_record()
    output = pick_format(fmt, json_flag)
    if output in (Format.table, Format.markdown):
        render_record(_ping_view(record), output, no_color=run.no_color)
    else:
        render_record(record, output)
    _warn_flags(record["flags"])
    if record["status"] == 429 and record["retry_after_s"] is not None:  # the deciding probe
        messages.warn(f"rate limited: the API asks to retry after {record['retry_after_s']:g} s")
    deciding = report.deciding
    if report.outcome == "unreachable":
        raise UnreachableError(deciding.message or "unreachable", deciding.hint)
    if report.outcome == "error":
        raise CheckFailed(deciding.message or "the API answered with an error", deciding.hint)


@app.command("get")
def get_cmd(
    resource: Annotated[str, typer.Argument(
        metavar="RESOURCE", autocompletion=_complete_resource,
        help="citizens, activities, buildings, contracts, problems, resources, lands, "
             "relevancies, messages, economy or get-ledger.")],
    item_id: Annotated[Optional[str], typer.Argument(metavar="ID", help="One record: a username, "
                                                     "building id, problem id or citizen (relevancies).")] = None,
    filters: Annotated[Optional[list[str]], typer.Option("--filter", "-F", metavar="Field=value",
                                                         help="Query filter, repeatable (e.g. Owner=NLR).")] = None,
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="At most N records.")] = None,
    offset: Annotated[Optional[int], typer.Option("--offset", min=0, help="Skip the first N records.")] = None,
    fields: Annotated[Optional[str], typer.Option("--fields", metavar="a,b,c",
                                                  help="Columns to show (json: keys to keep).")] = None,
    base_url: BaseUrlOption = None,
    timeout: TimeoutOption = None,
    fmt: FormatOption = Format.table,
    json_flag: JsonOption = False,
) -> None:
    """Fetch any documented resource, normalised, as a table, JSON, CSV or Markdown.

    GET requests are retried after connect errors, 429 (honouring Retry-After), 502, 503 and 504,
    as venice.retries and venice.backoff say. Exit 1 when the API is unreachable or answers with
    an error.
    """
    from cascade_cli.venice import RESOURCES, VeniceBridge, default_columns, parse_filters

    run = state()
    settings = run.settings(_connection_flags(base_url, timeout))
    query = parse_filters(filters or [])
    with VeniceBridge(settings.venice, on_retry=_retry_notice) as bridge:
        fetched = bridge.get(resource, item_id, query, limit, offset)
    _warn_flags(fetched.flags)
    output = pick_format(fmt, json_flag)
    chosen = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    present = {key for record in fetched.records for key in record}
    for missing in [c for c in chosen or [] if present and c not in present]:
        run.messages.warn(f"field {missing!r} is in no record")
    if fetched.single:
        record = fetched.records[0]
        render_record({c: record.get(c) for c in chosen} if chosen else record, output,
                      no_color=run.no_color)
        return
    if output is Format.json and not chosen:
        render_json(fetched.records)  # the records exactly as the API sent them
    else:
        if chosen:
            columns = chosen
        elif output is Format.csv and fetched.records:
            columns = list(dict.fromkeys(key for record in fetched.records for key in record))
        else:
            columns = default_columns(RESOURCES[resource], fetched.records)
        render_rows(fetched.records, columns, output, no_color=run.no_color)
    run.messages.info(f"{len(fetched.records)} {resource} from {fetched.url}")
