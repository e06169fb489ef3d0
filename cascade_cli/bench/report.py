"""Benchmark results as a document, table cells, CSV text and a text latency histogram.

`document()` builds the JSON document (the stable shape `--format json` and `--export-json`
write); `table_cells()` the table (a breached value gets `!`, and a check column says FAIL);
`write_exports()` writes the export files. Printing is the CLI's job (`cli/bench.py`).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from cascade_cli.bench.histogram import Histogram

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


def write_exports(doc: dict[str, Any], export_json: Path | None, export_csv: Path | None) -> None:
    """Write the document and the CSV rows to the given files (hyperfine style)."""
    if export_json is not None:
        export_json.write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n")
    if export_csv is not None:
        export_csv.write_text(csv_text(doc["results"]))
