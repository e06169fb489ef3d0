"""`cascade monitor`, the real CLI against real sources: a real redis-server, a real `cascade
serve`, the Venice stand-in. `--once` output and exit codes with each source healthy, degraded
or stopped; the live view on a pseudo-terminal (screen text, colours, a source going away and
coming back, resize, q)."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Sandbox, _stop, start_memory_server, start_real_server
from hub_support import start_serve
from terminal_support import Terminal
from venice_standin import StandIn
from websockets.sync.client import connect


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    proc, port = start_real_server(tmp_path)
    yield f"redis://127.0.0.1:{port}/0"
    _stop(proc)


def _once(sandbox: Sandbox, *args: str, venice: str) -> tuple[int, dict, str]:
    result = sandbox.run("monitor", "--once", "--format", "json", "--interval", "0.3", *args,
                         env={"CASCADE_VENICE_BASE_URL": venice})
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout), result.stderr


def test_once_reports_each_source_and_exits_by_the_worst(sandbox: Sandbox, tmp_path: Path, redis_url: str,
                                                         standin: StandIn) -> None:
    serve = start_serve(tmp_path, "--bus", "local")
    sources = ["--redis-url", redis_url, "--hub-url", serve.http_url]
    try:
        with connect(serve.ws("/cascade-events")) as ws:
            ws.recv(timeout=5)   # connected
            code, snap, _ = _once(sandbox, *sources, venice=standin.url("ok"))
            assert code == 0 and snap["status"] == "ok"
            redis, hub, venice = (snap["sources"][k] for k in ("redis", "hub", "venice"))
            assert (redis["status"], redis["engine"], redis["server"]) == ("ok", "native", "redis")
            assert redis["ops_per_sec"] is not None and redis["rtt_p99_ms"] >= redis["rtt_p50_ms"] > 0
            assert hub["status"] == "ok" and hub["connections"] == 1 and hub["bus"] == "local"
            assert {c["channel"]: c["subscribers"] for c in hub["channels"]}["cascade-events"] == 1
            assert hub["published_per_sec"] == 0.0 and hub["http"]
            assert (venice["status"], venice["http_status"], venice["success"]) == ("ok", 200, True)
            assert venice["url"] == standin.url("ok") + "/activities?limit=1"

            table = sandbox.run("monitor", "--once", "--interval", "0.2", *sources,
                                env={"CASCADE_VENICE_BASE_URL": standin.url("ok")})
            assert table.returncode == 0
            rows = {line.split()[0]: line.split()[1] for line in table.stdout.splitlines()[2:]}
            assert rows == {"redis": "ok", "hub": "ok", "venice": "ok"}

        code, snap, _ = _once(sandbox, *sources, venice=standin.url("flagged"))
        assert code == 3 and snap["status"] == "degraded"
        assert snap["sources"]["venice"]["status"] == "degraded"
        assert snap["sources"]["venice"]["flags"] == ["_fallback", "_cached", "_stale"]
        assert any("fallback" in p for p in snap["sources"]["venice"]["problems"])

        code, snap, _ = _once(sandbox, *sources, venice=standin.url("error500"))
        assert code == 3 and snap["sources"]["venice"]["http_status"] == 500
    finally:
        serve.stop()
    code, snap, _ = _once(sandbox, *sources, venice=standin.url("ok"))
    assert code == 1 and snap["status"] == "unreachable"
    hub = snap["sources"]["hub"]
    assert hub["status"] == "unreachable" and serve.http_url in hub["error"]
    assert snap["sources"]["redis"]["status"] == "ok"


def test_once_with_redis_stopped_and_sources_off(sandbox: Sandbox, tmp_path: Path) -> None:
    proc, port = start_memory_server(tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        code, snap, _ = _once(sandbox, "--redis-url", url, "--no-hub", "--no-venice", venice="http://127.0.0.1:9")
        assert code == 0 and snap["sources"]["redis"]["engine"] == "memory"
        assert snap["sources"]["hub"] == {"status": "off", "reason": "--no-hub"}
        assert snap["sources"]["venice"] == {"status": "off", "reason": "--no-venice"}
    finally:
        _stop(proc)
    result = sandbox.run("monitor", "--once", "--redis-url", url, "--no-hub", "--no-venice", "--format", "csv")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["source", "status", "summary", "problems"]
    assert rows[1] == ["redis", "unreachable",
                       f"redis://127.0.0.1:{port}/0: connection refused (is it running on this port?)", ""]


@pytest.mark.parametrize("args,needle", [
    (["monitor", "--format", "json"], "error: --format and --json go with --once"),
    (["monitor", "--no-venice"], "error: the live view needs a terminal on stdout"),
    (["monitor", "--once", "--interval", "0"], "Invalid value for '--interval'"),
    (["monitor", "--once", "--hub-url", "ftp://x"], "monitor.hub_url"),
])
def test_usage_errors_exit_2(sandbox: Sandbox, args: list[str], needle: str) -> None:
    result = sandbox.run(*args)
    assert result.returncode == 2 and result.stdout == ""
    assert needle in result.stderr.splitlines()[0]
    assert result.stderr.splitlines()[1].startswith("hint: ")


def _border_width(screen: str) -> int:
    return max((len(line) for line in screen.splitlines() if line.startswith("╭─ Redis")), default=0)


def test_live_view_follows_sources_and_the_terminal(sandbox: Sandbox, tmp_path: Path, redis_url: str,
                                                    standin: StandIn) -> None:
    serve = start_serve(tmp_path, "--bus", "local")
    port = serve.http_url.rsplit(":", 1)[1]
    env = {**sandbox.env, "CASCADE_VENICE_BASE_URL": standin.url("ok"), "CASCADE_MONITOR_VENICE_INTERVAL": "1"}
    term = Terminal(["monitor", "--redis-url", redis_url, "--hub-url", serve.http_url, "--interval", "0.3"],
                    env, cols=100, rows=44)
    try:
        screen = term.wait_for(lambda s: all(f"{t} · ok" in s for t in ("Redis", "Hub", "Venice bridge")))
        assert "native (redis 7." in screen and "q quits" in screen, screen
        assert term.colour_of("ok", on_line_with="Redis · ok") == "green"
        assert _border_width(screen) == 100

        with connect(serve.ws("/ai-collaborations")) as ws:
            ws.recv(timeout=5)
            term.wait_for(lambda s: re.search(r"ai-collaborations\s+1\s", s) is not None)
            term.wait_for(lambda s: re.search(r"connections\s+1\s", s) is not None)

        serve.stop()
        screen = term.wait_for("Hub · unreachable")
        assert "Redis · ok" in screen and f"http://127.0.0.1:{port}" in screen
        assert term.colour_of("unreachable", on_line_with="Hub · unreachable") == "red"

        serve = start_serve(tmp_path, "--bus", "local", "--port", port)   # back on the same port
        term.wait_for("Hub · ok")

        term.resize(130, 46)
        term.wait_for(lambda s: _border_width(s) == 130)
        term.send("q")
        assert term.wait_exit() == 0
        assert b"\x1b[?1049l" in term.raw   # the alternate screen was left: the shell is back
    finally:
        term.close()
        serve.stop()
