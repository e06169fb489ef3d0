"""Benchmark results as a document, a table, CSV or markdown, plus a text latency histogram.

`document()` builds the JSON document (the stable shape `--format json` and `--export-json`
write); `show()` prints it in the chosen format; `write_exports()` writes the export files.
Breached thresholds are marked in the table (`!` after the value and a FAIL check column).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from cascade_cli.bench.histogram import Histogram
from cascade_cli.output import Format, _table, render_json

SCHEMA_VERSION = 1
TABLE_COLUMNS = ("test", "requests", "errors", "ops_per_sec", "mean_ms", "p50_ms", "p90_ms", "p99_ms",
                 "p999_ms", "max_ms")
OPEN_LOOP_COLUMNS = ("uncorrected_p99_ms",)
BAR_WIDTH = 40


def document(command: str, target: str, settings: dict[str, Any], rows: list[dict[str, Any]],
             checks: list[dict[str, Any]], interrupted: bool,
             histograms: dict[str, Histogram] | None = None) -> dict[str, Any]:
    """The whole result: what ran against what, one row per test, every threshold check."""
    doc: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "command": command,
        "target": target,
        "settings": settings,
        "results": rows,
        "thresholds": checks,
        "passed": not any(c["breached"] for c in checks),
        "interrupted": interrupted,
    }
    if histograms is not None:
        doc["histograms"] = {name: [{"low_ms": a / 1e6, "high_ms": b / 1e6, "count": n}
                                    for a, b, n in hist.bins()] for name, hist in histograms.items()}
    return doc


def csv_text(rows: list[dict[str, Any]]) -> str:
    """Every key of every row, one line per test; lists joined with `;`."""
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_csv_cell(row.get(c)) for c in columns])
    return out.getvalue()


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return str(value)


def _format_cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        if value >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3f}" if value < 100 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def table_cells(rows: list[dict[str, Any]], columns: list[str],
                checks: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Headers and cells; a breached value gets a trailing `!`, and a `check` column says ok or
    FAIL when thresholds were given."""
    breached = {(c["test"], c["metric"]) for c in checks if c["breached"]}
    headers = list(columns) + (["check"] if checks else [])
    cells = []
    for row in rows:
        line = []
        for column in columns:
            text = _format_cell(row.get(column))
            line.append(text + " !" if (row.get("test"), column) in breached else text)
        if checks:
            line.append("FAIL" if row.get("breaches") else "ok")
        cells.append(line)
    return headers, cells


def text_histogram(hist: Histogram, width: int = BAR_WIDTH) -> list[str]:
    """Log-spaced latency bins as `  0.052 -   0.071 ms | ####  1,234` lines."""
    bins = hist.bins()
    if not bins:
        return ["  (no samples)"]
    peak = max(n for _, _, n in bins) or 1
    lines = []
    for low, high, n in bins:
        bar = "#" * (round(n / peak * width) if n else 0)
        lines.append(f"  {low / 1e6:9.3f} - {high / 1e6:9.3f} ms | {bar:<{width}} {n:,}")
    return lines


def show(doc: dict[str, Any], fmt: Format, columns: list[str], *, histograms: dict[str, Histogram] | None,
         stream: TextIO | None = None, no_color: bool = False) -> None:
    """Print the result on stdout in `fmt`: the document in json, all row keys in csv, the
    chosen columns as a table (rich on a terminal) or markdown, then the text histograms."""
    out = stream or sys.stdout
    rows, checks = doc["results"], doc["thresholds"]
    if fmt is Format.json:
        render_json(doc, stream=out)
        return
    if fmt is Format.csv:
        out.write(csv_text(rows))
        return
    headers, cells = table_cells(rows, columns, checks)
    _table(headers, cells, fmt, out, no_color)
    for name, hist in (histograms or {}).items():
        out.write(f"\n{name} latency (ms), {hist.count:,} samples\n")
        out.write("\n".join(text_histogram(hist)) + "\n")
    failed = [c for c in checks if c["breached"]]
    if failed:
        out.write("\n" + "\n".join(f"FAIL {c['test']}: {c['threshold']} (measured {c['value']})"
                                   for c in failed) + "\n")


def write_exports(doc: dict[str, Any], export_json: Path | None, export_csv: Path | None) -> None:
    """Write the document and the CSV rows to the given files (hyperfine style)."""
    if export_json is not None:
        export_json.write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n")
    if export_csv is not None:
        export_csv.write_text(csv_text(doc["results"]))
