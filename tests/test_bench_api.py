"""`cascade bench api`: the real CLI against a real `cascade serve` and a tiny real HTTP server.

One hub for the module (local bus, a token from CASCADE_SERVE_TOKEN, so publishing needs it) and
one threaded `http.server` that sleeps 30 ms on /slow and records what it was sent on /echo.
Counts, percentiles, outputs, thresholds and errors are checked; no timing limits are asserted,
only that the delay injected on purpose shows up in the latency.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest import cascade_command, free_port
from hub_support import Serve, clean_env, start_serve

TOKEN = "bench-api-token-5c1e"
SLOW_S = 0.030
LATENCY_KEYS = ["min_ms", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"]
LEAN = ["--warmup", "0", "--processes", "1"]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    with start_serve(tmp_path_factory.mktemp("bench-api-hub"), "--bus", "local",
                     env={"CASCADE_SERVE_TOKEN": TOKEN}) as serve:
        yield serve


class TinyServer:
    """A threaded HTTP/1.1 server on 127.0.0.1: /slow sleeps SLOW_S, /echo records the request."""

    def __init__(self) -> None:
        seen: list[dict[str, Any]] = []
        self.seen = seen

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path == "/slow":
                    time.sleep(SLOW_S)
                elif self.path == "/echo":
                    seen.append({"method": self.command, "headers": dict(self.headers), "body": body})
                elif self.path != "/ok":
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                reply = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def tiny() -> Iterator[TinyServer]:
    server = TinyServer()
    yield server
    server.close()


def bench(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cascade_command(), "bench", "api", *args], capture_output=True, text=True,
                          env=clean_env(tmp_path, env), cwd=tmp_path, timeout=60, check=False)


def bench_json(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = bench(tmp_path, *args, "--json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def published(serve: Serve, channel: str) -> int:
    channels = serve.get("/api/channels").json()["channels"]
    return next(c["events_published"] for c in channels if c["channel"] == channel)


def assert_monotonic(row: dict[str, Any]) -> None:
    values = [row[key] for key in LATENCY_KEYS]
    assert all(isinstance(v, (int, float)) for v in values), row
    assert values == sorted(values), row
    assert row["min_ms"] > 0


# --- against cascade serve ----------------------------------------------------------------------

def test_counts_percentiles_and_exports_against_the_hub(hub: Serve, tmp_path: Path) -> None:
    exported_json, exported_csv = tmp_path / "out.json", tmp_path / "out.csv"
    doc = bench_json(tmp_path, "--url", hub.http_url, "--paths", "/health,api/channels", "-n", "151", "-c", "3",
                     "--warmup", "0", "--processes", "2", "--export-json", str(exported_json),
                     "--export-csv", str(exported_csv))
    assert doc["command"] == "api" and doc["passed"] is True and doc["interrupted"] is False
    assert doc["settings"]["method"] == "GET" and doc["settings"]["processes"] == 2
    assert [row["test"] for row in doc["results"]] == ["/health", "api/channels"]
    for row in doc["results"]:
        assert row["requests"] == 151 and row["errors"] == 0
        assert row["status_2xx"] == 151
        assert row["status_3xx"] == row["status_4xx"] == row["status_5xx"] == row["transport_errors"] == 0
        assert row["ops_per_sec"] > 0 and row["duration_s"] > 0
        assert row["target_rate"] is None and row["uncorrected_p50_ms"] is None
        assert_monotonic(row)
    assert json.loads(exported_json.read_text()) == doc
    rows = list(csv.DictReader(io.StringIO(exported_csv.read_text())))
    assert [(r["test"], int(r["requests"]), int(r["status_2xx"])) for r in rows] == [
        ("/health", 151, 151), ("api/channels", 151, 151)]


def test_post_with_the_token_from_the_environment_publishes_every_request(hub: Serve, tmp_path: Path) -> None:
    before = published(hub, "cascade-events")
    doc = bench_json(tmp_path, "--url", hub.http_url, "--paths", "/api/channels/cascade-events/publish",
                     "--body", '{"data": {"from": "bench"}}', "-n", "30", "-c", "2", *LEAN,
                     env={"CASCADE_SERVE_TOKEN": TOKEN})
    (row,) = doc["results"]
    assert doc["settings"]["method"] == "POST" and doc["settings"]["bearer_token"] is True
    assert row["requests"] == 30 and row["errors"] == 0
    assert published(hub, "cascade-events") - before == 31  # 30 measured + the preflight


def test_post_without_the_token_counts_401s_as_errors_at_the_configured_hub(hub: Serve, tmp_path: Path) -> None:
    port = hub.http_url.rsplit(":", 1)[1].rstrip("/")
    result = bench(tmp_path, "--paths", "/api/channels/cascade-events/publish", "--body", '{"data": 1}',
                   "-n", "12", "-c", "2", *LEAN, "--json", env={"CASCADE_SERVE_PORT": port})
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["target"] == f"http://127.0.0.1:{port}"  # no --url: serve.host and serve.port
    (row,) = doc["results"]
    assert row["requests"] == 0 and row["errors"] == 12 and row["status_4xx"] == 12
    assert row["p50_ms"] is None
    assert "HTTP 401" in result.stderr


def test_a_404_endpoint_counts_errors_and_says_so_in_csv(hub: Serve, tmp_path: Path) -> None:
    result = bench(tmp_path, "--url", hub.http_url, "--paths", "/health,/api/no-such-thing", "-n", "25", "-c", "2",
                   *LEAN, "--format", "csv")
    assert result.returncode == 0, result.stderr
    ok, missing = csv.DictReader(io.StringIO(result.stdout))
    assert (ok["test"], ok["requests"], ok["errors"], ok["status_2xx"]) == ("/health", "25", "0", "25")
    assert float(ok["p50_ms"]) <= float(ok["p99_ms"]) <= float(ok["max_ms"])
    assert (missing["requests"], missing["errors"], missing["status_4xx"], missing["status_2xx"]) == (
        "0", "25", "25", "0")
    assert missing["p50_ms"] == ""  # nothing succeeded, nothing measured
    assert "/api/no-such-thing: 25 errors, for example: HTTP 404" in result.stderr


def test_a_breached_threshold_exits_3_and_the_table_marks_it(hub: Serve, tmp_path: Path) -> None:
    result = bench(tmp_path, "--url", hub.http_url, "-n", "20", "-c", "2", *LEAN,
                   "--fail-if", "p50_ms>=0", "--fail-if", "status_5xx>0")
    assert result.returncode == 3, result.stderr
    header, _rule, line = result.stdout.splitlines()[:3]
    assert "status_4xx" in header and "transport_errors" in header and "check" in header
    assert " !" in line and "FAIL" in line
    assert "FAIL /health: p50_ms>=0" in result.stdout
    assert "status_5xx>0" not in result.stdout  # the passing check is not marked
    assert "threshold check(s) failed" in result.stderr


def test_an_unknown_metric_exits_2(hub: Serve, tmp_path: Path) -> None:
    result = bench(tmp_path, "--url", hub.http_url, "-n", "5", *LEAN, "--fail-if", "latency_ms>1")
    assert result.returncode == 2
    assert "unknown metric 'latency_ms'" in result.stderr and "status_4xx" in result.stderr


def test_open_loop_reports_uncorrected_figures_and_the_target_rate(hub: Serve, tmp_path: Path) -> None:
    doc = bench_json(tmp_path, "--url", hub.http_url, "--rate", "250", "-n", "100", "-c", "4", *LEAN)
    (row,) = doc["results"]
    assert row["target_rate"] == 250 and doc["settings"]["rate"] == 250
    assert row["requests"] + row["errors"] == 100 and row["errors"] == 0
    for key in ("uncorrected_p50_ms", "uncorrected_p99_ms", "uncorrected_max_ms", "send_lag_p99_ms"):
        assert isinstance(row[key], (int, float)), key
    assert_monotonic(row)
    # each request's latency from its intended time includes its latency from the actual send
    assert row["p50_ms"] >= row["uncorrected_p50_ms"] and row["max_ms"] >= row["uncorrected_max_ms"]


# --- against a tiny server made slow on purpose ---------------------------------------------------

def test_a_slow_server_shows_up_in_the_latency(tiny: TinyServer, tmp_path: Path) -> None:
    full_url = f"{tiny.url}/ok"  # a full URL is a path too, and names its test
    doc = bench_json(tmp_path, "--url", tiny.url, "--paths", f"/slow,{full_url}", "-n", "20", "-c", "2", *LEAN)
    slow, fast = doc["results"]
    assert slow["test"] == "/slow" and slow["requests"] == 20 and slow["errors"] == 0
    assert slow["min_ms"] >= SLOW_S * 1000 and slow["p50_ms"] >= SLOW_S * 1000
    assert fast["test"] == full_url and fast["requests"] == 20 and fast["errors"] == 0


def test_headers_token_and_body_reach_the_server(tiny: TinyServer, tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text('{"data": [1, 2, 3]}')
    tiny.seen.clear()
    doc = bench_json(tmp_path, "--url", tiny.url + "/", "--paths", "/echo", "--body-file", str(body),
                     "-H", "X-Bench: yes", "-n", "5", "-c", "1", *LEAN, env={"CASCADE_SERVE_TOKEN": "t0k3n"})
    assert doc["results"][0]["requests"] == 5
    assert len(tiny.seen) == 6  # the preflight and 5 measured
    for request in tiny.seen:
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert request["method"] == "POST" and request["body"] == b'{"data": [1, 2, 3]}'
        assert headers["authorization"] == "Bearer t0k3n" and headers["x-bench"] == "yes"
        assert headers["content-type"] == "application/json"
        assert headers["user-agent"].startswith("cascade/")
    assert doc["settings"]["headers"] == ["X-Bench"]
    assert "t0k3n" not in json.dumps(doc)


def test_the_token_comes_from_a_file_or_the_environment_never_from_a_flag(tiny: TinyServer,
                                                                          tmp_path: Path) -> None:
    token_file = tmp_path / "api.token"
    token_file.write_text("f1l3-t0k3n\n")
    tiny.seen.clear()
    doc = bench_json(tmp_path, "--url", tiny.url, "--paths", "/echo", "--token-file", str(token_file),
                     "-n", "3", "-c", "1", *LEAN, env={"CASCADE_SERVE_TOKEN_FILE": str(tmp_path / "missing")})
    assert doc["settings"]["bearer_token"] is True and len(tiny.seen) == 4
    assert all(r["headers"]["Authorization"] == "Bearer f1l3-t0k3n" for r in tiny.seen)
    # serve.token (CASCADE_SERVE_TOKEN) comes before any file, as for `cascade serve`
    tiny.seen.clear()
    bench_json(tmp_path, "--url", tiny.url, "--paths", "/echo", "--token-file", str(token_file),
               "-n", "1", "-c", "1", *LEAN, env={"CASCADE_SERVE_TOKEN": "env-t0k3n"})
    assert {r["headers"]["Authorization"] for r in tiny.seen} == {"Bearer env-t0k3n"}
    flag = bench(tmp_path, "--url", tiny.url, "--paths", "/echo", "--token", "f1l3-t0k3n", "-n", "1", *LEAN)
    assert flag.returncode == 2 and "--token" in flag.stderr and flag.stdout == ""
    empty = tmp_path / "empty.token"
    empty.write_text("")
    refused = bench(tmp_path, "--url", tiny.url, "--paths", "/echo", "--token-file", str(empty), "-n", "1", *LEAN)
    assert refused.returncode == 2 and "is empty" in refused.stderr and refused.stdout == ""


# --- usage and reachability errors ---------------------------------------------------------------

@pytest.mark.parametrize(("args", "message"), [
    (["--body", "{not json"], "--body is not valid JSON"),
    (["--header", "no colon here"], "cannot read --header"),
    (["--method", "GET", "--body", "{}"], "a body needs --method POST"),
    (["--paths", " , "], "--paths is empty"),
    (["--url", "ftp://127.0.0.1:1"], "invalid --url"),
])
def test_usage_errors_exit_2_before_any_request(tiny: TinyServer, tmp_path: Path, args: list[str],
                                                message: str) -> None:
    url = [] if "--url" in args else ["--url", tiny.url]
    result = bench(tmp_path, *url, "--paths", "/echo", *args, "-n", "3", *LEAN)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_an_unreachable_url_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = bench(tmp_path, "--url", f"http://127.0.0.1:{free_port()}", "-n", "5", *LEAN)
    assert result.returncode == 1
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "connection refused" in errors[0], result.stderr
    assert "hint:" in result.stderr and "Traceback" not in result.stderr
