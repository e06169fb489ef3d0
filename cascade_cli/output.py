"""Results to stdout in one of four formats; messages to stderr. Imported only by `cli/`.

`render_rows()` prints a list of records, `render_record()` one record. Tables use rich on a
terminal and tabulate otherwise; colour follows `use_color()`. `Messages` writes `error:`,
`hint:`, `warning:` and progress lines to stderr, honouring --quiet and --verbose.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any, TextIO


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


def use_color(stream: TextIO, no_color_flag: bool = False, env: Mapping[str, str] | None = None) -> bool:
    """Colour only on a terminal, and never with --no-color, NO_COLOR or TERM=dumb."""
    env = os.environ if env is None else env
    if no_color_flag or env.get("NO_COLOR", "") != "" or env.get("TERM") == "dumb":
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def _text(value: Any, for_table: bool) -> str:
    """A cell: floats rounded for people (not in csv), nested values as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and for_table and 0.01 <= abs(value) < 1e15:
        return f"{value:.3f}".rstrip("0").rstrip(".")
    if isinstance(value, float) and for_table:
        return f"{value:.3g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def _cell(value: Any, fmt: Format) -> str:
    """A table cell on one line; markdown also escapes the pipe that would end the cell."""
    text = " ".join(_text(value, True).splitlines())
    return text.replace("|", "\\|") if fmt is Format.markdown else text


def render_json(data: Any, *, stream: TextIO | None = None) -> None:
    """Print any JSON-able value, indented."""
    (stream or sys.stdout).write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def render_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], fmt: Format,
                *, stream: TextIO | None = None, no_color: bool = False) -> None:
    """Print `rows` restricted to `columns` (json keeps the same keys, in the same order)."""
    out = stream or sys.stdout
    if fmt is Format.json:
        render_json([{c: row.get(c) for c in columns} for row in rows], stream=out)
    elif not columns:
        return
    elif fmt is Format.csv:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_text(row.get(c), False) for c in columns] for row in rows)
    else:
        cells = [[_cell(row.get(c), fmt) for c in columns] for row in rows]
        _table(list(columns), cells, fmt, out, no_color)


def render_record(record: Mapping[str, Any], fmt: Format, *, stream: TextIO | None = None,
                  no_color: bool = False) -> None:
    """Print one record: an object in json, one row in csv, a field/value table otherwise."""
    out = stream or sys.stdout
    if fmt is Format.json:
        render_json(dict(record), stream=out)
    elif fmt is Format.csv:
        render_rows([record], list(record), fmt, stream=out)
    else:
        cells = [[_cell(key, fmt), _cell(value, fmt)] for key, value in record.items()]
        _table(["field", "value"], cells, fmt, out, no_color)


def render_table(headers: list[str], cells: list[list[str]], fmt: Format, *, stream: TextIO | None = None,
                 no_color: bool = False) -> None:
    """Print cells already formatted as text: rich on a terminal, tabulate otherwise, github
    style in markdown."""
    _table(headers, cells, fmt, stream or sys.stdout, no_color)


def _table(headers: list[str], cells: list[list[str]], fmt: Format, out: TextIO, no_color: bool) -> None:
    if fmt is Format.table and getattr(out, "isatty", lambda: False)():
        from rich.console import Console
        from rich.table import Table

        color = use_color(out, no_color)
        table = Table(*headers, header_style="bold cyan" if color else "", highlight=False)
        for row in cells:
            table.add_row(*row)
        Console(file=out, no_color=not color, highlight=False, soft_wrap=False).print(table)
        return
    from tabulate import tabulate

    style = "github" if fmt is Format.markdown else "simple"
    out.write(tabulate(cells, headers=headers, tablefmt=style, disable_numparse=True) + "\n")


_STYLES = {"error": "\x1b[1;31m", "warning": "\x1b[33m", "hint": "\x1b[36m"}


@dataclass
class Messages:
    """Messages for people, on stderr. Errors always print; the rest obey --quiet."""

    quiet: bool = False
    verbose: bool = False
    no_color: bool = False
    stream: TextIO | None = None

    @property
    def _out(self) -> TextIO:
        return self.stream or sys.stderr

    def _label(self, label: str) -> str:
        if use_color(self._out, self.no_color):
            return f"{_STYLES[label]}{label}:\x1b[0m"
        return f"{label}:"

    def _write(self, line: str) -> None:
        self._out.write(line + "\n")
        self._out.flush()

    def error(self, message: str, hint: str | None = None) -> None:
        self._write(f"{self._label('error')} {message}")
        if hint:
            self._write(f"{self._label('hint')} {hint}")

    def warn(self, message: str) -> None:
        if not self.quiet:
            self._write(f"{self._label('warning')} {message}")

    def info(self, message: str) -> None:
        if not self.quiet:
            self._write(message)

    def debug(self, message: str) -> None:
        if self.verbose:
            self._write(f"debug: {message}")
