"""`cascade bench ws`: the real CLI against a real `cascade serve --bus local`, and against a real
echo server (the `websockets` library's), plus the pure helpers of the load generator.

No timing assertions: the checks are counts (every event reached every subscriber on loopback,
requests = messages published), shapes (JSON, CSV), orders (p50 <= p90 <= p99 <= max) and exit
codes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import cascade_command, free_port
from hub_support import Serve, clean_env, start_serve

from cascade_cli.bench.histogram import Histogram
from cascade_cli.bench.results import Measurement, merge
from cascade_cli.bench.ws_load import (
    CONNECT,
    SERVER_KEYS,
    auth_headers,
    decode_events,
    echo_row,
    hub_row,
    hub_urls,
    parse_metrics,
    server_counters,
)
from cascade_cli.cli.bench_ws import ramp_steps, ramp_verdict
from cascade_cli.errors import ConfigError

pytestmark = pytest.mark.timeout(90)

TWO = "cascade-events,ai-collaborations"


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """One hub for the module; it accepts permessage-deflate from clients that offer it."""
    with start_serve(tmp_path_factory.mktemp("hub"), "--bus", "local", "--compression") as serve:
        yield serve


def bench(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
          timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cascade_command(), "bench", "ws", *args], capture_output=True, text=True,
                          env=clean_env(tmp_path, env), cwd=tmp_path, timeout=timeout, check=False)


def document(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert "Traceback" not in result.stderr, result.stderr
    return json.loads(result.stdout)


def assert_ordered(row: dict[str, Any], prefix: str = "") -> None:
    keys = [f"{prefix}{k}" for k in ("min_ms", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms")]
    values = [row[k] for k in keys]
    assert all(v is not None for v in values), row
    assert values == sorted(values), dict(zip(keys, values))


def assert_complete(row: dict[str, Any]) -> None:
    """Every event reached every subscriber of its channel, once, in order."""
    assert row["errors"] == 0 and row["connect_errors"] == 0 and row["disconnects"] == 0, row
    assert row["expected"] > 0
    assert row["delivered"] == row["expected"]
    assert row["reach"] == 1.0 and row["lost"] == 0
    assert row["duplicates"] == 0 and row["out_of_order"] == 0


# ---- against the hub -----------------------------------------------------------------------------


def test_closed_loop_counts_every_event_of_processes_channels_publishers(hub: Serve, tmp_path: Path) -> None:
    export = tmp_path / "out.csv"
    result = bench(tmp_path, "--url", hub.http_url, "-c", "6", "--channels", TWO, "--publishers", "3",
                   "--messages", "300", "--processes", "2", "--warmup", "0", "--payload-size", "500",
                   "--json", "--export-csv", str(export))
    assert result.returncode == 0, result.stderr
    doc = document(result)
    assert doc["command"] == "ws" and doc["passed"] is True and doc["interrupted"] is False
    assert doc["settings"]["processes"] == 2 and doc["settings"]["channels"] == TWO.split(",")
    [row] = doc["results"]
    assert row["test"] == "pubsub"
    assert row["requests"] == 300 and row["errors"] == 0     # requests counted = events published
    assert row["clients"] == 6 and row["publishers"] == 3
    # 300 events round-robin over 2 channels, 3 subscribers on each: every event reaches 3
    assert row["expected"] == 300 * 3
    assert_complete(row)
    assert_ordered(row)
    assert_ordered(row, "connect_")
    assert row["uncorrected_p99_ms"] is None and row["target_rate"] is None   # closed loop
    assert row["delivered_per_sec"] > 0 and row["ops_per_sec"] > 0
    # the hub's own view: this run was alone on it while it ran
    assert row["server_events_published"] == 300
    assert row["server_events_delivered"] >= 900
    assert row["server_events_dropped"] == 0
    assert row["server_connections"] >= 6 + 3
    rows = list(csv.DictReader(io.StringIO(export.read_text())))
    assert [r["test"] for r in rows] == ["pubsub"]
    assert int(rows[0]["requests"]) == 300 and float(rows[0]["reach"]) == 1.0
    assert float(rows[0]["p50_ms"]) == row["p50_ms"]


def test_open_loop_sends_on_schedule_and_a_breached_threshold_exits_3(hub: Serve, tmp_path: Path) -> None:
    result = bench(tmp_path, "--url", hub.ws_url, "-c", "4", "--rate", "200", "--duration", "1",
                   "--processes", "1", "--warmup", "0.2", "--json", "--fail-if", "reach<2",
                   "--fail-if", "lost>1000000")
    assert result.returncode == 3, result.stderr
    assert "threshold" in result.stderr and "Traceback" not in result.stderr
    doc = document(result)
    [row] = doc["results"]
    # 200 events/s for 1 s after the warmup: the schedule has exactly 200 measured slots
    assert row["requests"] + row["errors"] == 200
    assert row["target_rate"] == 200.0
    assert_complete(row)
    assert_ordered(row)
    assert row["uncorrected_p50_ms"] is not None and row["send_lag_p99_ms"] is not None
    assert doc["passed"] is False
    checks = {c["threshold"]: c["breached"] for c in doc["thresholds"]}
    assert checks == {"reach<2": True, "lost>1000000": False}
    assert row["breaches"] == ["reach<2"]


def test_compression_is_negotiated_with_a_hub_that_accepts_it(hub: Serve, tmp_path: Path) -> None:
    result = bench(tmp_path, "--url", hub.http_url, "-c", "3", "--messages", "50", "--compression",
                   "--processes", "1", "--warmup", "0", "--payload-size", "2000", "--json")
    assert result.returncode == 0, result.stderr
    doc = document(result)
    assert doc["settings"]["compression"] is True
    assert "declined" not in result.stderr
    [row] = doc["results"]
    assert row["requests"] == 50
    assert_complete(row)


def test_ramp_steps_up_and_stops_at_the_first_step_that_misses_the_slo(hub: Serve, tmp_path: Path) -> None:
    held = bench(tmp_path, "--url", hub.http_url, "--ramp", "--ramp-start", "1", "--ramp-max", "3",
                 "--rate", "100", "--messages", "20", "--warmup", "0", "--processes", "2", "--slo", "60000",
                 "--json")
    assert held.returncode == 0, held.stderr
    doc = document(held)
    assert [r["test"] for r in doc["results"]] == ["ramp-1", "ramp-2"]
    assert [r["clients"] for r in doc["results"]] == [1, 2]
    for row in doc["results"]:
        assert row["held"] is True and row["requests"] == 20
        assert_complete(row)
    assert doc["ramp_max_clients"] == 2 and doc["results"][-1]["ramp_max_clients"] == 2
    assert "ramp: every step held, up to 2 subscribers" in held.stderr
    # an SLO of 1 ns cannot hold: the ramp stops after its first step
    missed = bench(tmp_path, "--url", hub.http_url, "--ramp", "--ramp-start", "1", "--ramp-max", "4",
                   "--rate", "100", "--messages", "10", "--warmup", "0", "--processes", "1",
                   "--slo", "0.000001", "--json")
    assert missed.returncode == 0, missed.stderr
    doc = document(missed)
    assert [r["test"] for r in doc["results"]] == ["ramp-1"]
    assert doc["results"][0]["held"] is False
    assert doc["ramp_max_clients"] == 0 and doc["ramp_stop_reason"].startswith("p99")
    assert "ramp: no step held: 1 did not: p99" in missed.stderr


def test_unknown_channel_is_one_clear_error(hub: Serve, tmp_path: Path) -> None:
    result = bench(tmp_path, "--url", hub.http_url, "--channels", "cascade-events,nope", "-n", "10")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines()[0] == (f"error: the hub refused the channel at {hub.ws_url}/nope: "
                                             "unknown channel 'nope'")
    assert result.stderr.splitlines()[1].startswith("hint:")
    assert "Traceback" not in result.stderr


def test_an_event_larger_than_the_hub_takes_is_refused_before_the_run(hub: Serve, tmp_path: Path) -> None:
    result = bench(tmp_path, "--url", hub.http_url, "-n", "10", "--payload-size", "70000")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: the hub closed the connection on a 70,")
    assert "1009" in lines[0] and "--payload-size" in lines[1]
    assert result.stdout == ""


def test_unreachable_hub_is_one_line_and_a_hint(tmp_path: Path) -> None:
    port = free_port()
    result = bench(tmp_path, "--url", f"http://127.0.0.1:{port}", "-n", "10")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0] == f"error: cannot connect to ws://127.0.0.1:{port}/ws/cascade-events: Connection refused"
    assert lines[1].startswith("hint:")
    assert result.stdout == ""


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    both = bench(tmp_path, "--url", "http://127.0.0.1:1", "-n", "5", "-d", "1")
    assert both.returncode == 2 and "not both" in both.stderr
    bad = bench(tmp_path, "--url", "ftp://127.0.0.1:1")
    assert bad.returncode == 2 and "hub's URL" in bad.stderr
    # a bad threshold is refused before anything connects (nothing listens on port 1)
    threshold = bench(tmp_path, "--url", "http://127.0.0.1:1", "--fail-if", "reach_pct<1")
    assert threshold.returncode == 2 and "unknown metric 'reach_pct'" in threshold.stderr
    echo_and_hub = bench(tmp_path, "--url", "http://127.0.0.1:1", "--echo", "ws://127.0.0.1:1/")
    assert echo_and_hub.returncode == 2 and "not both" in echo_and_hub.stderr
    assert "Traceback" not in both.stderr + bad.stderr + threshold.stderr + echo_and_hub.stderr


def test_token_refused_then_accepted(tmp_path: Path) -> None:
    with start_serve(tmp_path, "--bus", "local", env={"CASCADE_SERVE_TOKEN": "s3cret-hub"}) as serve:
        refused = bench(tmp_path, "--url", serve.http_url, "-n", "10", "--warmup", "0")
        assert refused.returncode == 1
        assert "refused the connection: unauthorized" in refused.stderr and "(close 4401)" in refused.stderr
        assert "--token-file" in refused.stderr and "s3cret" not in refused.stderr
        accepted = bench(tmp_path, "--url", serve.http_url, "-c", "2", "-n", "10", "--warmup", "0",
                         "--processes", "1", "--json", env={"CASCADE_SERVE_TOKEN": "s3cret-hub"})
        assert accepted.returncode == 0, accepted.stderr
        [row] = document(accepted)["results"]
        assert row["requests"] == 10
        assert_complete(row)
        # the token from a file (--token-file overrides serve.token_file)
        token_file = tmp_path / "hub.token"
        token_file.write_text("s3cret-hub\n")
        from_file = bench(tmp_path, "--url", serve.http_url, "-c", "1", "-n", "5", "--warmup", "0",
                          "--processes", "1", "--json", "--token-file", str(token_file),
                          env={"CASCADE_SERVE_TOKEN_FILE": str(tmp_path / "missing")})
        assert from_file.returncode == 0, from_file.stderr
        assert document(from_file)["results"][0]["requests"] == 5
        # secrets never come from a flag
        flag = bench(tmp_path, "--url", serve.http_url, "--token", "s3cret-hub")
        assert flag.returncode == 2 and "--token" in flag.stderr
        empty = tmp_path / "empty.token"
        empty.write_text("")
        refused_empty = bench(tmp_path, "--url", serve.http_url, "--token-file", str(empty))
        assert refused_empty.returncode == 2 and "is empty" in refused_empty.stderr


# ---- against an echo server ----------------------------------------------------------------------


@pytest.fixture
def echo_server() -> Iterator[str]:
    from websockets.sync.server import ServerConnection, serve

    def echo(ws: ServerConnection) -> None:
        for message in ws:
            ws.send(message)

    server = serve(echo, "127.0.0.1", 0, compression="deflate")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"ws://127.0.0.1:{server.socket.getsockname()[1]}/"
    server.shutdown()
    thread.join(5)


def test_echo_round_trips(echo_server: str, tmp_path: Path) -> None:
    result = bench(tmp_path, "--echo", echo_server, "-c", "3", "-n", "90", "--warmup", "0",
                   "--processes", "2", "--json")
    assert result.returncode == 0, result.stderr
    doc = document(result)
    assert doc["target"] == echo_server and doc["settings"]["mode"] == "echo"
    [row] = doc["results"]
    assert row["test"] == "echo"
    assert row["requests"] == 90 and row["errors"] == 0 and row["clients"] == 3
    assert doc["settings"]["compression"] is False   # not offered without --compression
    assert_ordered(row)
    assert_ordered(row, "connect_")
    # open loop, compressed: 100 messages/s for half a second after the warmup
    paced = bench(tmp_path, "--echo", echo_server, "-c", "2", "--rate", "100", "-d", "0.5", "--warmup", "0.1",
                  "--processes", "1", "--compression", "--payload-size", "3000", "--json")
    assert paced.returncode == 0, paced.stderr
    doc = document(paced)
    assert doc["settings"]["compression"] is True
    [row] = doc["results"]
    assert row["requests"] + row["errors"] == 50 and row["errors"] == 0
    assert row["target_rate"] == 100.0 and row["uncorrected_p99_ms"] is not None
    assert_ordered(row)


def test_echo_refuses_a_server_that_does_not_echo(hub: Serve, tmp_path: Path) -> None:
    result = bench(tmp_path, "--echo", hub.ws("/cascade-events"), "-n", "5")
    assert result.returncode == 1
    assert "is not an echo server" in result.stderr and "Traceback" not in result.stderr


# ---- pure helpers --------------------------------------------------------------------------------


def test_hub_urls() -> None:
    for given in ("http://127.0.0.1:8000", "ws://127.0.0.1:8000/", "http://127.0.0.1:8000/ws"):
        urls = hub_urls(given)
        assert (urls.ws, urls.http) == ("ws://127.0.0.1:8000", "http://127.0.0.1:8000")
    urls = hub_urls("https://example.test/hub")
    assert urls.channel("a b") == "wss://example.test/hub/ws/a%20b"
    assert urls.ops == "wss://example.test/hub/ws" and urls.metrics == "https://example.test/hub/metrics"
    for bad in ("ftp://x", "http://", "http://127.0.0.1:8000/ws/cascade-events", "http://h:99999"):
        with pytest.raises(ConfigError):
            hub_urls(bad)


def test_decode_events_keeps_only_this_runs_measured_events() -> None:
    def event(data: Any) -> dict[str, Any]:
        return {"type": "event", "channel": "c", "id": "x-1", "ts": 1.0, "data": data}

    mine = {"b": "run1", "k": 0, "p": 1, "s": 7, "t": 100, "a": 90}
    batch = {"type": "batch", "events": [event(mine), event({**mine, "b": "other"}), event({**mine, "w": 1}),
                                         event({**mine, "k": 1}), event("text"), event({**mine, "s": 8})]}
    assert decode_events(json.dumps(batch).encode(), "run1", 0) == ((1, 7, 100, 90), (1, 8, 100, 90))
    assert decode_events(json.dumps(event(mine)).encode(), "run1", 0) == ((1, 7, 100, 90),)
    for other in (b'{"type":"lag","dropped":3}', b"not json", b"[1]", b'{"type":"batch","events":3}'):
        assert decode_events(other, "run1", 0) == ()


def test_parse_metrics_and_deltas() -> None:
    text = """\
# HELP cascade_hub_connections Connected WebSocket clients.
cascade_hub_connections 12
cascade_hub_events_published_total{channel="cascade-events"} 10
cascade_hub_events_published_total{channel="other"} 1000
cascade_hub_events_delivered_total{channel="cascade-events"} 40
cascade_hub_events_dropped_total{channel="cascade-events"} 2
cascade_hub_rejected_connections_total{reason="unauthorized"} 1
cascade_hub_rejected_connections_total{reason="origin"} 2
cascade_hub_broadcast_latency_seconds_sum 0.5
cascade_hub_broadcast_latency_seconds_count 4
cascade_http_requests_total{method="GET",route="/metrics",status="200"} 9
"""
    after = parse_metrics(text, ["cascade-events"])
    assert after == {"server_connections": 12, "server_events_published": 10, "server_events_delivered": 40,
                     "server_events_dropped": 2, "server_rejected_connections": 3, "broadcast_sum": 0.5,
                     "broadcast_count": 4}
    before = {**after, "server_events_published": 4, "broadcast_sum": 0.25, "broadcast_count": 2}
    deltas = server_counters(before, after)
    assert deltas["server_events_published"] == 6 and deltas["server_connections"] == 12
    assert deltas["broadcast_sum_ns"] == 250_000_000 and deltas["broadcast_count"] == 2
    assert parse_metrics("<html>not metrics</html>", ["c"]) == {}
    assert server_counters({}, after) == {}


def test_connect_times_merge_by_name_and_fill_the_connect_keys() -> None:
    parts = []
    for index, values in enumerate(((5_000, 7_000_000, 12_345), (1_000, 99_000_000), ())):
        m = Measurement(test="echo", counters={"clients": len(values)})
        for v in values:
            m.histograms.setdefault(CONNECT, Histogram()).record(v)
        m.finish(1.0, 2.0 + index, 0.1)
        parts.append(Measurement.from_dict(json.loads(json.dumps(m.to_dict()))))  # as the runner does
    merged = merge(parts)
    assert merged.histograms[CONNECT].count == 5 and merged.counters["clients"] == 5
    row = echo_row(merged, target_rate=None)
    assert (row["connect_min_ms"], row["connect_max_ms"]) == (0.001, 99.0)
    assert_ordered(row, "connect_")
    assert [k for k in row if k.startswith("connect_") and k.endswith("_ms")] == [
        "connect_mean_ms", "connect_stddev_ms", "connect_min_ms", "connect_p50_ms", "connect_p90_ms",
        "connect_p99_ms", "connect_p999_ms", "connect_max_ms"]
    assert hub_row(merged, target_rate=None)["connect_p999_ms"] == row["connect_p999_ms"]


def test_handshake_headers_carry_the_token_and_refuse_a_bad_one() -> None:
    plain = dict(auth_headers(None))
    assert list(plain) == ["User-Agent"] and plain["User-Agent"].startswith("cascade/")
    assert dict(auth_headers("t0k3n"))["Authorization"] == "Bearer t0k3n"
    with pytest.raises(ConfigError) as refused:
        auth_headers("two words")
    assert "two words" not in str(refused.value)


def test_rows_without_the_server_view_have_null_server_keys() -> None:
    m = Measurement(test="pubsub", ops=10, counters={"expected": 20, "delivered": 15, "clients": 2})
    m.finish(1.0, 2.0, 0.5)
    row = hub_row(m, target_rate=None)
    assert all(row[key] is None for key in SERVER_KEYS)
    assert (row["reach"], row["lost"], row["delivered_per_sec"]) == (0.75, 5, 15.0)
    assert row["connect_p50_ms"] is None and row["client_cpu_pct"] == 50.0
    empty = hub_row(Measurement(test="pubsub"), target_rate=None)
    assert empty["reach"] is None and empty["lost"] == 0


def test_ramp_steps_and_verdicts() -> None:
    assert ramp_steps(50, 0, 1000) == [50, 100, 200, 400, 800]
    assert ramp_steps(10, 15, 60) == [10, 25, 40, 55]
    assert ramp_steps(5, 0, 4) == []
    assert len(ramp_steps(1, 1, 100000)) == 64
    ok = {"interrupted": False, "errors": 0, "lost": 0, "p99_ms": 5.0}
    assert ramp_verdict(ok, 10)[0] is True
    assert ramp_verdict({**ok, "p99_ms": 11.0}, 10) == (False, "p99 11.000 ms > 10 ms")
    assert ramp_verdict({**ok, "lost": 3}, 10) == (False, "3 events lost")
    assert ramp_verdict({**ok, "errors": 1}, 10)[0] is False
    assert ramp_verdict({**ok, "p99_ms": None}, 10)[0] is False


def test_no_user_config_leaks_into_the_default_url(tmp_path: Path) -> None:
    # the default target comes from serve.host/serve.port: here a port where nothing listens
    port = free_port()
    result = bench(tmp_path, "-n", "5", env={"CASCADE_SERVE_PORT": str(port)})
    assert result.returncode == 1
    assert f"ws://127.0.0.1:{port}/ws/cascade-events" in result.stderr
    assert os.environ.get("CASCADE_SERVE_PORT") != str(port)
