"""Snapshots as text: one summary row per source (`--once --format table|csv|markdown`) and the
rich renderable of the live view (`screen(snapshot, width)`). Imports rich lazily (callers are
the monitor command and its live view)."""

from __future__ import annotations

import time
from typing import Any

from cascade_cli.monitor.series import sparkline

STATUS_STYLE = {"ok": "green", "degraded": "yellow", "unreachable": "red", "off": "bright_black",
                "pending": "cyan"}
TITLES = {"redis": "Redis", "hub": "Hub", "venice": "Venice bridge"}


def _num(value: Any, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        text = f"{value:,.{digits}f}"
    else:
        text = f"{value:,}" if isinstance(value, int) else str(value)
    return f"{text}{unit}"


def _ms(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.2f} ms" if value < 100 else f"{value:,.0f} ms"


def _ratio(value: Any) -> str:
    return "–" if value is None else f"{value:.1%}"


def engine_text(panel: dict[str, Any]) -> str:
    engine = {"memory": "in-memory", "native": "native"}.get(panel.get("engine") or "", "?")
    return f"{engine} ({panel.get('server')} {panel.get('version')})"


def persistence_text(panel: dict[str, Any]) -> str:
    p = panel.get("persistence") or {}
    parts = [p.get("mode", "?")]
    if p.get("loading"):
        parts.append("loading")
    if p.get("in_progress"):
        parts.append("saving")
    if p.get("last_save_status"):
        parts.append(f"last save {p['last_save_status']}")
    if p.get("aof_write_status"):
        parts.append(f"aof write {p['aof_write_status']}")
    if p.get("changes_since_save") is not None:
        parts.append(f"{p['changes_since_save']} changes since")
    return ", ".join(parts)


def summary(name: str, panel: dict[str, Any], now: float | None = None) -> str:
    """One line of a source's key figures (the table view of --once)."""
    status = panel.get("status")
    if status == "off":
        return f"off: {panel.get('reason')}"
    if status == "pending":
        return "waiting for the first reading"
    if status == "unreachable":
        return panel.get("error") or "unreachable"
    if name == "redis":
        return (f"{engine_text(panel)}, {_num(panel.get('ops_per_sec'))} ops/s, "
                f"rtt p50 {_ms(panel.get('rtt_p50_ms'))} p99 {_ms(panel.get('rtt_p99_ms'))}, "
                f"memory {panel.get('memory_human')}, {panel.get('clients')} clients, {panel.get('keys')} keys, "
                f"hit ratio {_ratio(panel.get('hit_ratio'))}, persistence {persistence_text(panel)}")
    if name == "hub":
        per_channel = ", ".join(f"{c['channel']} {c['subscribers']}" for c in panel.get("channels", []))
        return (f"{panel.get('connections')} connections ({per_channel}), bus {panel.get('bus')}, "
                f"{_num(panel.get('published_per_sec'))} published/s, {_num(panel.get('delivered_per_sec'))} "
                f"delivered/s, {panel.get('dropped_total')} dropped, broadcast p99 "
                f"{_ms(panel.get('broadcast_p99_ms'))}")
    return venice_text(panel, now)


def venice_text(panel: dict[str, Any], now: float | None = None) -> str:
    flags = panel.get("flags") or []
    age = ""
    if panel.get("checked_at") is not None:
        age = f", checked {max(0, (now or time.time()) - panel['checked_at']):.0f} s ago"
    return (f"HTTP {panel.get('http_status')} in {_ms(panel.get('latency_ms'))}, success "
            f"{panel.get('success')}, flags {', '.join(flags) if flags else 'none'}{age}")


def rows(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """`--once` as rows: source, status, summary, problems."""
    out = []
    for name, panel in snapshot["sources"].items():
        problems = list(panel.get("problems") or [])
        if panel.get("hint"):
            problems.append(f"hint: {panel['hint']}")
        out.append({"source": name, "status": panel.get("status"), "summary": summary(name, panel, snapshot["time"]),
                    "problems": "; ".join(problems)})
    return out


# ---- the live view ---------------------------------------------------------------------------

def _values(panel: dict[str, Any], series: str) -> list[float | None]:
    return [v for _, v in (panel.get("series") or {}).get(series, [])]


def _spark(panel: dict[str, Any], series: str, width: int, unit: str = "") -> Any:
    """A sparkline of the last `width` points with its scale (the top block is the maximum)."""
    from rich.text import Text

    values = _values(panel, series)[-width:]
    top = max((v for v in values if v is not None), default=None)
    scale = "" if top is None else f" max {_ms(top) if unit == 'ms' else _num(top)}"
    return Text.assemble((sparkline(values, width), "cyan"), (scale, "bright_black"))


def screen(snapshot: dict[str, Any], width: int, height: int) -> Any:
    """The whole live view for a terminal of `width` x `height`: a header and one panel per source."""
    from rich.console import Group
    from rich.text import Text

    status = snapshot["status"]
    header = Text.assemble(("cascade monitor", "bold"), "  ", (status.upper(), STATUS_STYLE.get(status, "")),
                           f"  {time.strftime('%H:%M:%S', time.localtime(snapshot['time']))}"
                           f"  every {snapshot['interval_s']:g} s   q quits")
    spark = max(10, min(60, width - 50))
    sources = snapshot["sources"]
    parts = [header]
    for name in ("redis", "hub", "venice"):
        if name in sources:
            parts.append(_panel(name, sources[name], spark, snapshot["time"], compact=height < 30))
    return Group(*parts)


class Rows:
    """Label/value rows drawn as one Text (rich's tables cost several ms per frame): a value is a
    string, a Text, or a list of lines (a small table) indented under its first line."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, Any]] = []

    def add_row(self, label: Any, value: Any) -> None:
        self.rows.append((label, value))

    def text(self) -> Any:
        from rich.text import Text

        width = max((len(str(label)) for label, _ in self.rows), default=0) + 2
        out = Text()
        for index, (label, value) in enumerate(self.rows):
            if index:
                out.append("\n")
            label_text = label if isinstance(label, Text) else Text(str(label), style="bold")
            out.append_text(label_text)
            out.append(" " * (width - len(label_text.plain)))
            lines = value if isinstance(value, list) else [value]
            for number, line in enumerate(lines or [""]):
                if number:
                    out.append("\n" + " " * width)
                out.append_text(line if isinstance(line, Text) else Text(str(line)))
        return out


def text_table(headers: list[str], rows: list[list[str]]) -> list[Any]:
    """A small table as lines: the first column left-aligned, the others right-aligned, the
    header in bold."""
    from rich.text import Text

    widths = [max(len(cells[i]) for cells in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(cells, widths)))
    return [Text(line(headers), style="bold"), *(Text(line(cells)) for cells in rows)]


def _panel(name: str, panel: dict[str, Any], spark: int, now: float, compact: bool) -> Any:
    from rich.panel import Panel
    from rich.text import Text

    status = panel.get("status", "pending")
    style = STATUS_STYLE.get(status, "")
    title = Text.assemble((TITLES[name], "bold"), " · ", (status, f"bold {style}"))
    grid = Rows()
    if status in ("off", "pending", "unreachable"):
        grid.add_row("state", Text(summary(name, panel, now), style=style))
        if panel.get("url"):
            grid.add_row("url", str(panel["url"]))
        if panel.get("hint"):
            grid.add_row("hint", str(panel["hint"]))
    elif name == "redis":
        _redis_rows(grid, panel, spark)
    elif name == "hub":
        _hub_rows(grid, panel, spark, compact)
    else:
        grid.add_row("url", str(panel.get("url")))
        grid.add_row("last ping", venice_text(panel, now))
        grid.add_row("latency", _spark(panel, "latency_ms", spark, "ms"))
    for problem in panel.get("problems") or []:
        grid.add_row(Text("problem", style="yellow"), Text(problem, style="yellow"))
    return Panel(grid.text(), title=title, title_align="left", border_style=style)


def _redis_rows(grid: Any, panel: dict[str, Any], spark: int) -> None:

    recent = panel.get("hit_ratio_recent")
    grid.add_row("engine", f"{engine_text(panel)}   {panel.get('url')}" + ("   cluster node" if panel.get("cluster") else ""))
    grid.add_row("load", f"{_num(panel.get('ops_per_sec'))} ops/s   {_num(panel.get('clients'))} clients   "
                         f"{_num(panel.get('keys'))} keys   hit ratio {_ratio(panel.get('hit_ratio'))}"
                         + (f" (last interval {_ratio(recent)})" if recent is not None else ""))
    limit = panel.get("maxmemory_bytes")
    grid.add_row("memory", f"{panel.get('memory_human')}" + (f" of {limit / 2**20:,.1f}M maxmemory" if limit else ""))
    grid.add_row("persistence", persistence_text(panel))
    grid.add_row("round trip", f"p50 {_ms(panel.get('rtt_p50_ms'))}  p99 {_ms(panel.get('rtt_p99_ms'))} (last minute)")
    grid.add_row("rtt p99", _spark(panel, "rtt_p99_ms", spark, "ms"))
    grid.add_row("ops/s", _spark(panel, "ops_per_sec", spark))


def _hub_rows(grid: Any, panel: dict[str, Any], spark: int, compact: bool) -> None:
    from rich.text import Text

    grid.add_row("hub", f"{panel.get('url')}   instance {panel.get('instance')}   bus {panel.get('bus')}")
    grid.add_row("events", f"{_num(panel.get('published_per_sec'))} published/s   "
                           f"{_num(panel.get('delivered_per_sec'))} delivered/s   "
                           f"{_num(panel.get('dropped_per_sec'))} dropped/s ({panel.get('dropped_total')} in all)")
    grid.add_row("broadcast", f"p50 {_ms(panel.get('broadcast_p50_ms'))}  p99 {_ms(panel.get('broadcast_p99_ms'))} "
                              "(last minute)")
    grid.add_row("broadcast p99", _spark(panel, "broadcast_p99_ms", spark, "ms"))
    channels = text_table(["channel", "clients", "pub/s", "deliv/s", "dropped"], [
        [c["channel"], _num(c["subscribers"]), _num(c["published_per_sec"]), _num(c["delivered_per_sec"]),
         _num(c["dropped_total"])] for c in panel.get("channels", [])])
    grid.add_row("connections", Text.assemble(f"{_num(panel.get('connections'))}  ",
                                              _spark(panel, "connections", spark)))
    grid.add_row("channels", channels)
    slowest = panel.get("slowest_queues") or []
    grid.add_row("slowest queues", ", ".join(f"{q['client_id']} ({','.join(q['channels'])}) {q['queue_depth']}"
                                             for q in slowest) or "every queue empty")
    routes = text_table(["route", "req/s", "p50", "p99", "requests"], [
        [f"{r['method']} {r['route']}", _num(r["requests_per_sec"]), _ms(r["p50_ms"]), _ms(r["p99_ms"]),
         _num(r["requests"])] for r in (panel.get("http") or [])[: 3 if compact else 6]])
    grid.add_row("http", routes)
