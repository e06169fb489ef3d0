"""Output formats and colour rules (terminal behaviour itself is tested in test_cli.py)."""

from __future__ import annotations

import csv
import io
import json

from cascade_cli.output import Format, Messages, render_record, render_rows, use_color

ROWS = [{"name": "a", "n": 1.5, "ok": True, "tags": ["x"], "none": None},
        {"name": "b, c", "n": 2, "ok": False, "tags": [], "none": None}]
COLUMNS = ["name", "n", "ok", "tags", "none"]


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def render(fmt: Format) -> str:
    out = io.StringIO()
    render_rows(ROWS, COLUMNS, fmt, stream=out)
    return out.getvalue()


def test_json_keeps_types() -> None:
    assert json.loads(render(Format.json)) == ROWS


def test_csv_quotes_and_lowercases_booleans() -> None:
    rows = list(csv.reader(io.StringIO(render(Format.csv))))
    assert rows == [COLUMNS, ["a", "1.5", "true", '["x"]', ""], ["b, c", "2", "false", "[]", ""]]


def test_markdown_and_plain_table() -> None:
    markdown = render(Format.markdown).splitlines()
    assert markdown[0].startswith("| name") and set(markdown[1]) <= set("|-: ")
    plain = render(Format.table).splitlines()
    assert plain[0].split() == COLUMNS and plain[2].split()[:3] == ["a", "1.5", "true"]


def test_record_shapes() -> None:
    out = io.StringIO()
    render_record({"a": 1, "b": "x"}, Format.table, stream=out)
    assert [line.split() for line in out.getvalue().splitlines()[2:]] == [["a", "1"], ["b", "x"]]
    out = io.StringIO()
    render_record({"a": 1, "b": "x"}, Format.csv, stream=out)
    assert out.getvalue() == "a,b\n1,x\n"


def test_use_color_rules() -> None:
    assert use_color(FakeTTY(), env={}) is True
    assert use_color(io.StringIO(), env={}) is False
    assert use_color(FakeTTY(), env={"NO_COLOR": "1"}) is False
    assert use_color(FakeTTY(), env={"NO_COLOR": ""}) is True  # empty NO_COLOR does not count
    assert use_color(FakeTTY(), env={"TERM": "dumb"}) is False
    assert use_color(FakeTTY(), no_color_flag=True, env={}) is False


def test_messages_quiet_and_verbose() -> None:
    out = io.StringIO()
    quiet = Messages(quiet=True, stream=out)
    quiet.info("i"), quiet.warn("w"), quiet.debug("d"), quiet.error("boom", "fix it")
    assert out.getvalue() == "error: boom\nhint: fix it\n"
    out = io.StringIO()
    Messages(verbose=True, stream=out).debug("d")
    assert out.getvalue() == "debug: d\n"


def test_cells_stay_on_one_line_and_markdown_escapes_pipes() -> None:
    out = io.StringIO()
    render_rows([{"note": "a | b\nc", "tiny": 0.0004, "big": 125000.5}], ["note", "tiny", "big"],
                Format.markdown, stream=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert lines[2].split(" | ")[0] == "| a \\| b c" and "0.0004" in lines[2] and "125000.5" in lines[2]


def test_no_columns_prints_nothing_but_json() -> None:
    for fmt in (Format.table, Format.csv, Format.markdown):
        out = io.StringIO()
        render_rows([], [], fmt, stream=out)
        assert out.getvalue() == ""
    out = io.StringIO()
    render_rows([], [], Format.json, stream=out)
    assert json.loads(out.getvalue()) == []
