"""The HTTP API of `cascade serve`, through real sockets against real `cascade serve` processes.

Module-scoped servers keep this fast: `hub` (Redis bus on the in-memory server, Venice proxy
pointed at the stand-in) and `secured` (a token from CASCADE_SERVE_TOKEN, local bus, Venice at a
port where nothing listens). Tests that need other flags start their own.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import EngineServer, RedisServer, cascade_command, free_port
from hub_support import Serve, clean_env, read_events, start_serve, wait_for
from venice_standin import CITIZENS, StandIn
from websockets.sync.client import ClientConnection, connect

from cascade_cli.hub import messages

TOKEN = "hub-token-7f3a"
CHANNELS = ["consciousness-stream", "ai-collaborations", "cascade-events"]
MAX_BODY = 1024 * 1024
VENICE_TIMEOUT = 0.5


# --- helpers ------------------------------------------------------------------------------------

@contextmanager
def ws_connect(serve: Serve, path: str = "", **kwargs: Any) -> Iterator[tuple[ClientConnection, dict[str, Any]]]:
    """A WebSocket client of `serve` at /ws`path`, and the `connected` message it got."""
    with connect(serve.ws(path), open_timeout=10, close_timeout=2, **kwargs) as ws:
        hello = json.loads(ws.recv(timeout=10))
        assert hello["type"] == "connected", hello
        yield ws, hello


def count_events(n: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda events: len(events) >= n


_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: (-?\d+))?")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,?)')


def _labels(text: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    position = 0
    while position < len(text):
        match = _LABEL.match(text, position)
        assert match, f"bad label set {text!r}"
        name, value, comma = match.groups()
        assert name not in labels, f"label {name} twice in {text!r}"
        labels[name] = value.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
        position = match.end()
        assert comma or position == len(text), f"labels not separated by commas: {text!r}"
    return labels


class Metrics:
    """A parsed Prometheus text exposition (format 0.0.4), checked while parsing."""

    def __init__(self, text: str) -> None:
        self.kinds: dict[str, str] = {}
        self.helps: dict[str, str] = {}
        self.samples: list[tuple[str, dict[str, str], float]] = []
        assert text.endswith("\n"), "the exposition must end with a newline"
        for line in text.splitlines():
            if line.startswith("# HELP "):
                name, _, help_text = line[7:].partition(" ")
                assert name not in self.helps, f"HELP for {name} twice"
                assert help_text, f"empty HELP for {name}"
                self.helps[name] = help_text
            elif line.startswith("# TYPE "):
                name, _, kind = line[7:].partition(" ")
                assert name not in self.kinds, f"TYPE for {name} twice"
                assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
                assert name in self.helps, f"TYPE before HELP for {name}"
                self.kinds[name] = kind
            elif line.startswith("#") or not line.strip():
                continue
            else:
                match = _SAMPLE.fullmatch(line)
                assert match, f"not a sample line: {line!r}"
                name, labels, value, _ts = match.groups()
                family = self.family(name)
                assert family in self.kinds, f"sample {name} before its TYPE line"
                self.samples.append((name, _labels(labels or ""), float(value)))
        self._check_histograms()

    def family(self, sample: str) -> str:
        for suffix in ("_bucket", "_sum", "_count"):
            base = sample.removesuffix(suffix)
            if base != sample and self.kinds.get(base) == "histogram":
                return base
        return sample

    def _check_histograms(self) -> None:
        for name, kind in self.kinds.items():
            if kind == "counter":
                assert name.endswith("_total"), f"counter {name} should end in _total"
            if kind != "histogram":
                continue
            series: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}
            for sample, labels, value in self.samples:
                if sample == name + "_bucket":
                    rest = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
                    series.setdefault(rest, []).append((float(labels["le"]), value))
            for rest, buckets in series.items():
                bounds = [b for b, _ in buckets]
                assert bounds == sorted(bounds) and bounds[-1] == math.inf, f"{name}{rest}: {bounds}"
                counts = [c for _, c in buckets]
                assert counts == sorted(counts), f"{name}{rest}: buckets not cumulative {counts}"
                assert self.value(name + "_count", **dict(rest)) == counts[-1]

    def value(self, name: str, **labels: str) -> float:
        """The sample `name` with exactly these labels (0 when absent, as Prometheus reads a
        counter that has not appeared yet)."""
        found = [v for n, ls, v in self.samples if n == name and ls == labels]
        assert len(found) <= 1, f"{name}{labels} appears {len(found)} times"
        return found[0] if found else 0.0

    def labelsets(self, name: str) -> list[dict[str, str]]:
        return [ls for n, ls, _ in self.samples if n == name]


def scrape(serve: Serve) -> Metrics:
    response = serve.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return Metrics(response.text)


def publish(serve: Serve, channel: str, body: Any, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return serve.post(f"/api/channels/{channel}/publish", json=body, headers=headers)


def post_raw(serve: Serve, channel: str, content: Any, **headers: str) -> httpx.Response:
    return serve.post(f"/api/channels/{channel}/publish", content=content,
                      headers={"Content-Type": "application/json", **headers})


def assert_json_error(response: httpx.Response, status: int, fragment: str = "") -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert fragment.lower() in body["error"].lower(), body
    return body


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cascade_command(), *args], capture_output=True, text=True, timeout=30,
                          check=False, env=clean_env(tmp_path), cwd=tmp_path)


def assert_one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    return errors[0]


# --- servers shared by the module ----------------------------------------------------------------

@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, memory_server: EngineServer,
        standin: StandIn) -> Iterator[Serve]:
    """A hub on a Redis bus (the in-memory server), its Venice proxy aimed at the stand-in's root
    (so the first path segment picks the stand-in's mode)."""
    serve = start_serve(tmp_path_factory.mktemp("hub"), "--redis-url", memory_server.url,
                        env={"CASCADE_VENICE_BASE_URL": f"http://127.0.0.1:{standin.port}",
                             "CASCADE_VENICE_TIMEOUT": str(VENICE_TIMEOUT)})
    try:
        wait_for(lambda: serve.get("/health").json()["redis"]["state"] == "ok", timeout=15,
                 what="the Redis bus to connect")
        yield serve
    finally:
        assert serve.stop() == 0, serve.stderr()


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    """A hub that wants a token (from CASCADE_SERVE_TOKEN); its Venice API is unreachable."""
    serve = start_serve(tmp_path_factory.mktemp("secured"), "--bus", "local",
                        env={"CASCADE_SERVE_TOKEN": TOKEN,
                             "CASCADE_VENICE_BASE_URL": f"http://127.0.0.1:{free_port()}/api"})
    with serve:
        yield serve


@pytest.fixture
def idle(hub: Serve) -> Serve:
    """The shared hub once no WebSocket client of an earlier test is still connected."""
    wait_for(lambda: hub.get("/health").json()["connections"] == 0, what="earlier clients to leave")
    return hub


# --- health and readiness ----------------------------------------------------------------------

def test_health_reports_redis_state_and_ready_answers(hub: Serve, memory_server: EngineServer) -> None:
    response = hub.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["redis"]["state"] == "ok"
    assert body["redis"]["error"] is None
    assert str(memory_server.port) in body["redis"]["url"]
    assert isinstance(body["connections"], int) and body["uptime_s"] >= 0
    ready = hub.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True


def test_health_of_a_local_bus(secured: Serve) -> None:
    body = secured.get("/health").json()
    assert body["status"] == "ok"
    assert body["redis"]["state"] == "local"
    assert secured.get("/ready").status_code == 200


# --- metrics --------------------------------------------------------------------------------------

def test_metrics_is_valid_prometheus_text(hub: Serve) -> None:
    metrics = scrape(hub)
    for family in ("cascade_hub_connections", "cascade_hub_events_published_total",
                   "cascade_hub_events_delivered_total", "cascade_hub_events_dropped_total",
                   "cascade_hub_broadcast_latency_seconds", "cascade_http_request_duration_seconds",
                   "cascade_redis_roundtrip_seconds", "cascade_hub_queue_depth"):
        assert family in metrics.kinds, family
    assert metrics.kinds["cascade_hub_connections"] == "gauge"
    assert metrics.kinds["cascade_hub_broadcast_latency_seconds"] == "histogram"
    channels = {ls["channel"] for ls in metrics.labelsets("cascade_hub_events_published_total")}
    assert channels == set(CHANNELS)


def test_metrics_move_with_traffic(idle: Serve) -> None:
    hub = idle
    channel = "ai-collaborations"
    route = {"method": "POST", "route": "/api/channels/{channel}/publish"}
    before = scrape(hub)
    assert before.value("cascade_hub_connections") == 0
    with ws_connect(hub, f"/{channel}") as (ws, _):
        ids = []
        for n in range(3):
            response = publish(hub, channel, {"data": {"n": n}})
            assert response.status_code == 200, response.text
            ids += response.json()["ids"]
        events = read_events(ws, count_events(3))
        assert [e["id"] for e in events] == ids
        after = wait_for(lambda: (m := scrape(hub)).value(
            "cascade_redis_bus_events_total", direction="out") >= before.value(
            "cascade_redis_bus_events_total", direction="out") + 3 and m, what="the bus to publish")

        def delta(name: str, **labels: str) -> float:
            return after.value(name, **labels) - before.value(name, **labels)

        assert after.value("cascade_hub_connections") == 1
        assert after.value("cascade_hub_channel_subscribers", channel=channel) == 1
        assert delta("cascade_hub_events_published_total", channel=channel) == 3
        assert delta("cascade_hub_events_delivered_total", channel=channel) == 3
        assert delta("cascade_hub_events_published_total", channel="cascade-events") == 0
        assert delta("cascade_redis_bus_events_total", direction="out") == 3
        assert 1 <= delta("cascade_hub_broadcast_latency_seconds_count") <= 3
        assert delta("cascade_http_request_duration_seconds_count", **route) == 3
        assert delta("cascade_http_requests_total", **route, status="200") == 3
        health = {"method": "GET", "route": "/health"}
        assert after.value("cascade_http_request_duration_seconds_count", **health) >= 1
        assert after.value("cascade_redis_roundtrip_seconds_count") >= 1
        assert after.value("cascade_redis_up", state="ok") == 1
    wait_for(lambda: scrape(hub).value("cascade_hub_connections") == 0, what="the client to leave")


# --- channels and clients ---------------------------------------------------------------------------

def test_channels_and_clients_api(idle: Serve) -> None:
    hub = idle
    with ws_connect(hub, "/cascade-events", user_agent_header="cascade-test/1.0") as (_ws, hello):
        listed = hub.get("/api/channels")
        assert listed.status_code == 200
        by_name = {c["channel"]: c for c in listed.json()["channels"]}
        assert set(by_name) == set(CHANNELS)
        assert by_name["cascade-events"]["subscribers"] == 1
        assert by_name["ai-collaborations"]["subscribers"] == 0

        one = hub.get("/api/channels/cascade-events")
        assert one.status_code == 200
        info = one.json()
        assert info["channel"] == "cascade-events"
        assert info["subscribers"] == 1
        assert info["clients"] == [hello["client_id"]]
        for key in ("events_published", "events_delivered", "events_dropped"):
            assert isinstance(info[key], int)

        clients = hub.get("/api/clients").json()["clients"]
        assert len(clients) == 1
        client = clients[0]
        assert client["client_id"] == hello["client_id"]
        assert client["channels"] == ["cascade-events"]
        assert client["remote_address"].startswith("127.0.0.1:")
        assert client["user_agent"] == "cascade-test/1.0"
        assert abs(client["connected_at"] - time.time()) < 60
        assert client["events_sent"] == 0 and client["events_dropped"] == 0
        assert client["queue_depth"] == 0
    wait_for(lambda: hub.get("/api/clients").json()["clients"] == [], what="the client to leave")


def test_unknown_channel_api_is_a_json_404(hub: Serve) -> None:
    body = assert_json_error(hub.get("/api/channels/no-such-channel"), 404, "no-such-channel")
    assert body["channels"] == sorted(CHANNELS)


# --- publishing ---------------------------------------------------------------------------------

def test_publish_one_a_list_and_events_reach_subscribers_in_order(idle: Serve) -> None:
    hub = idle
    channel = "consciousness-stream"
    with ws_connect(hub, f"/{channel}") as (ws, _):
        one = publish(hub, channel, {"data": {"text": "one"}})
        many = publish(hub, channel, [{"data": 2}, {"data": [3, "three"]}])
        wrapped = publish(hub, channel, {"events": [{"data": None}, {"data": "five"}]})
        for response in (one, many, wrapped):
            assert response.status_code == 200, response.text
            assert response.json()["channel"] == channel
        ids = one.json()["ids"] + many.json()["ids"] + wrapped.json()["ids"]
        assert [len(r.json()["ids"]) for r in (one, many, wrapped)] == [1, 2, 2]
        assert len(set(ids)) == 5 and all(isinstance(i, str) and i for i in ids)
        events = read_events(ws, count_events(5))
    assert [e["id"] for e in events] == ids
    assert [e["data"] for e in events] == [{"text": "one"}, 2, [3, "three"], None, "five"]
    assert {e["type"] for e in events} == {"event"}
    assert {e["channel"] for e in events} == {channel}
    assert all(isinstance(e["ts"], float) and abs(e["ts"] - time.time()) < 60 for e in events)


@pytest.mark.parametrize(("body", "status", "fragment"), [
    (b'{"data":', 400, "malformed"),
    (b"", 400, "empty"),
    (b"  \n ", 400, "empty"),
    (b'{"data": NaN}', 400, "NaN"),
    (b'{"data": [1, -Infinity]}', 400, "Infinity"),
    (b"\xff\xfe{}", 400, ""),
    (b'{"dat": 1}', 422, '"data"'),
    (b'"just text"', 422, '"data"'),
    (b"42", 422, '"data"'),
    (b"[1, 2]", 422, '"data"'),
    (b'[{"data": 1}, {"text": 2}]', 422, "event 1"),
    (b"[]", 422, "no events"),
    (b'{"events": []}', 422, "no events"),
    (b'{"events": {"data": 1}}', 422, '"events"'),
    (b'{"events": [{"nodata": 1}]}', 422, '"data"'),
], ids=["truncated", "empty", "blank", "nan", "infinity", "not-utf8", "no-data", "string", "number",
        "list-of-numbers", "list-item-without-data", "empty-list", "empty-events", "events-not-list",
        "events-item-without-data"])
def test_publish_validation_errors_are_json(hub: Serve, body: bytes, status: int, fragment: str) -> None:
    assert_json_error(post_raw(hub, "cascade-events", body), status, fragment)


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_publish_deeply_nested_data_is_a_json_400(hub: Serve, depth: int) -> None:
    """JSON nested deeper than the parser manages is a client error, not a 500 (well under 1 MiB)."""
    body = b'{"data":' + b"[" * depth + b"]" * depth + b"}"
    assert_json_error(post_raw(hub, "cascade-events", body), 400, "")
    assert hub.get("/health").status_code == 200


def test_ws_publish_op_with_deeply_nested_data_gets_an_error_frame(hub: Serve) -> None:
    """The same body through the WebSocket op (within the default 64 KiB frame limit): an error
    frame, and the connection stays open."""
    depth = 20_000
    with ws_connect(hub) as (ws, _):
        ws.send('{"op":"publish","channel":"cascade-events","data":' + "[" * depth + "]" * depth + "}")
        reply = json.loads(ws.recv(timeout=10))
        assert reply["type"] == "error", reply
        ws.send('{"op":"ping"}')
        assert json.loads(ws.recv(timeout=10))["type"] == "pong"


def test_publish_more_events_than_the_batch_limit_is_422(hub: Serve) -> None:
    assert_json_error(publish(hub, "cascade-events", [{"data": n} for n in range(1001)]), 422, "limit")


def test_publish_to_unknown_channel_is_404(hub: Serve) -> None:
    body = assert_json_error(publish(hub, "nowhere", {"data": 1}), 404, "nowhere")
    assert body["channels"] == sorted(CHANNELS)


def test_publish_body_limit(hub: Serve) -> None:
    """A body over 1 MiB is 413, declared or streamed (chunked); so is a body within it whose
    event would not fit in a client's default 1 MiB message; the largest event that fits is
    accepted and arrives whole."""
    head, tail = b'{"data":"', b'"}'
    exact = head + b"x" * (MAX_BODY - len(head) - len(tail)) + tail
    assert len(exact) == MAX_BODY
    assert_json_error(post_raw(hub, "ai-collaborations", exact), 413, "the event is")
    with ws_connect(hub, "/ai-collaborations", max_size=MAX_BODY) as (client, _hello):
        envelope = len(messages.event("ai-collaborations", "x" * 20, time.time(), ""))
        fits = head + b"x" * (messages.MAX_EVENT_BYTES - envelope - 30) + tail
        accepted = post_raw(hub, "ai-collaborations", fits)
        assert accepted.status_code == 200, accepted.text
        [received] = read_events(client, count_events(1))
        assert received["id"] == accepted.json()["ids"][0]
        assert len(received["data"]) == len(fits) - len(head) - len(tail)
    over = head + b"x" * (MAX_BODY + 1 - len(head) - len(tail)) + tail
    assert_json_error(post_raw(hub, "ai-collaborations", over), 413, "bytes")

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(over), 64 * 1024):
            yield over[start:start + 64 * 1024]

    assert_json_error(post_raw(hub, "ai-collaborations", chunks()), 413, "bytes")
    assert hub.get("/health").status_code == 200


# --- the token ----------------------------------------------------------------------------------

@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer",
                                           f"Bearer {TOKEN}x"])
def test_publish_without_the_right_token_is_401(secured: Serve, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = secured.post("/api/channels/cascade-events/publish", json={"data": 1}, headers=headers)
    assert_json_error(response, 401, "token")
    assert response.headers["www-authenticate"].lower().startswith("bearer")


def test_publish_with_the_token_from_the_environment(secured: Serve) -> None:
    response = publish(secured, "cascade-events", {"data": 1}, token=TOKEN)
    assert response.status_code == 200, response.text
    assert len(response.json()["ids"]) == 1


def test_unknown_channel_without_token_is_401_not_404(secured: Serve) -> None:
    assert_json_error(publish(secured, "nowhere", {"data": 1}), 401)


def test_token_from_a_file(tmp_path: Path) -> None:
    token_file = tmp_path / "hub.token"
    token_file.write_text("file-token-42\nsecond line ignored\n")
    with start_serve(tmp_path, "--bus", "local", "--token-file", str(token_file)) as serve:
        assert_json_error(publish(serve, "cascade-events", {"data": 1}), 401)
        assert_json_error(publish(serve, "cascade-events", {"data": 1}, token="second line ignored"), 401)
        response = publish(serve, "cascade-events", {"data": 1}, token="file-token-42")
        assert response.status_code == 200, response.text
        assert serve.stop() == 0


def test_empty_token_file_exits_2_with_one_error_line(tmp_path: Path) -> None:
    token_file = tmp_path / "empty.token"
    token_file.write_text("\n")
    result = run_cli(tmp_path, "serve", "--port", "0", "--bus", "local", "--token-file", str(token_file))
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert str(token_file) in assert_one_error_line(result.stderr)


# --- rate limit -----------------------------------------------------------------------------------

def test_connect_rate_limits_a_publish_burst_with_503(tmp_path: Path) -> None:
    with start_serve(tmp_path, "--bus", "local", "--connect-rate", "1") as serve:
        with serve.client() as client:
            responses = [client.post("/api/channels/cascade-events/publish", json={"data": n})
                         for n in range(20)]
        statuses = [r.status_code for r in responses]
        assert statuses[:2] == [200, 200], statuses     # a burst of twice the rate, then 1 per second
        assert set(statuses) == {200, 503}, statuses
        refused = [r for r in responses if r.status_code == 503]
        for response in refused:
            assert_json_error(response, 503, "rate")
            assert response.headers["retry-after"].isdigit()
            assert int(response.headers["retry-after"]) >= 1
        metrics = scrape(serve)
        assert metrics.value("cascade_hub_rejected_connections_total", reason="request_rate") == len(refused)
        assert serve.stop() == 0


# --- gzip, OpenAPI, docs ----------------------------------------------------------------------------

def test_large_responses_are_gzipped_small_ones_not(hub: Serve) -> None:
    with hub.client(headers={"Accept-Encoding": "gzip"}) as client:
        for path in ("/openapi.json", "/metrics"):
            response = client.get(path)
            assert response.status_code == 200
            assert response.headers.get("content-encoding") == "gzip", path
            assert len(response.content) > 1024
        with client.stream("GET", "/openapi.json") as streamed:
            compressed = b"".join(streamed.iter_raw())
        assert json.loads(gzip.decompress(compressed))["paths"]
        small = client.get("/health")
        assert small.status_code == 200
        assert "content-encoding" not in small.headers
    with hub.client(headers={"Accept-Encoding": "identity"}) as client:
        assert "content-encoding" not in client.get("/openapi.json").headers


def test_openapi_lists_the_routes_and_docs_answer_html(hub: Serve) -> None:
    spec = hub.get("/openapi.json").json()
    paths = spec["paths"]
    for path in ("/health", "/ready", "/metrics", "/api/channels", "/api/channels/{channel}",
                 "/api/clients", "/api/channels/{channel}/publish", "/api/venice/{path}"):
        assert path in paths, path
    assert "post" in paths["/api/channels/{channel}/publish"]
    docs = hub.get("/docs")
    assert docs.status_code == 200
    assert docs.headers["content-type"].startswith("text/html")
    assert "openapi.json" in docs.text


# --- the Venice proxy ----------------------------------------------------------------------------

def _max_age(response: httpx.Response) -> int:
    match = re.search(r"max-age=(\d+)", response.headers.get("cache-control", ""))
    assert match, response.headers
    return int(match.group(1))


def test_venice_proxy_misses_then_hits_the_cache(hub: Serve, standin: StandIn) -> None:
    tag = uuid.uuid4().hex
    path = f"/api/venice/ok/api/citizens?tag={tag}"
    first = hub.get(path)
    assert first.status_code == 200, first.text
    assert first.headers["x-cache"] == "MISS"
    assert 0 < _max_age(first) <= 30
    assert first.json() == {"success": True, "citizens": CITIZENS}
    second = hub.get(path)
    assert second.status_code == 200
    assert second.headers["x-cache"] == "HIT"
    assert 0 <= _max_age(second) <= 30
    assert second.json() == first.json()
    assert second.headers["content-type"].startswith("application/json")
    assert len([r for r in standin.seen("ok") if r.query.get("tag") == [tag]]) == 1


def test_venice_cache_key_is_the_path_and_the_sorted_query(hub: Serve) -> None:
    tag = uuid.uuid4().hex
    first = hub.get(f"/api/venice/ok/api/citizens?limit=1&tag={tag}")
    assert first.headers["x-cache"] == "MISS"
    assert len(first.json()["citizens"]) == 1
    other = hub.get(f"/api/venice/ok/api/citizens?limit=2&tag={tag}")
    assert other.headers["x-cache"] == "MISS"
    assert len(other.json()["citizens"]) == 2
    reordered = hub.get(f"/api/venice/ok/api/citizens?tag={tag}&limit=1")
    assert reordered.headers["x-cache"] == "HIT"
    assert reordered.json() == first.json()


@pytest.mark.parametrize("path", ["/api/venice/ok/..%2f..%2fetc/passwd", "/api/venice/http:%2f%2fexample.com/x",
                                  "/api/venice/ok/a%5cb"])
def test_venice_paths_outside_the_api_are_400(hub: Serve, path: str) -> None:
    assert_json_error(hub.get(path), 400)


@pytest.mark.parametrize(("mode", "route", "upstream"), [
    ("ok", "citizens/nobody", 404),
    ("error500", "citizens", 500),
])
def test_venice_upstream_errors_are_502_and_not_cached(hub: Serve, standin: StandIn, mode: str,
                                                       route: str, upstream: int) -> None:
    tag = uuid.uuid4().hex
    path = f"/api/venice/{mode}/api/{route}?tag={tag}"
    for _ in range(2):
        response = hub.get(path)
        body = assert_json_error(response, 502, str(upstream))
        assert body["upstream_status"] == upstream
        assert response.headers["x-cache"] == "MISS"
        assert "max-age" not in response.headers.get("cache-control", "")
    assert len([r for r in standin.seen(mode) if r.query.get("tag") == [tag]]) == 2


def test_venice_unreachable_upstream_is_502(secured: Serve) -> None:
    body = assert_json_error(secured.get("/api/venice/citizens"), 502)
    assert body["upstream_status"] is None


def test_venice_slow_upstream_is_504(hub: Serve) -> None:
    body = assert_json_error(hub.get(f"/api/venice/slow/api/citizens?tag={uuid.uuid4().hex}"), 504)
    assert body["upstream_status"] is None


# --- CLI errors ----------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [
    ["--channels", "bad name!"],
    ["--port", "70000"],
    ["--queue-size", "0"],
    ["--slow-client-policy", "sometimes"],
    ["--bus", "carrier-pigeon"],
], ids=["channels", "port", "queue-size", "policy", "bus"])
def test_bad_flag_values_exit_2_with_one_error_line(tmp_path: Path, args: list[str]) -> None:
    result = run_cli(tmp_path, "serve", *args)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert args[0] in assert_one_error_line(result.stderr)


@pytest.mark.parametrize("userinfo", ["", ":wrong-password@"], ids=["no-password", "wrong-password"])
def test_local_redis_that_wants_a_password_is_not_mistaken_for_no_redis(
        tmp_path: Path, redis_server_with_password: RedisServer, userinfo: str) -> None:
    """A local Redis answered (NOAUTH, WRONGPASS): the embedded default must not try to start the
    in-memory server on its port; the error names authentication (or the password), not the port."""
    url = f"redis://{userinfo}127.0.0.1:{redis_server_with_password.port}/0"
    proc = subprocess.Popen([*cascade_command(), "serve", "--port", "0", "--redis-url", url],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=clean_env(tmp_path), cwd=tmp_path)
    try:
        _out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        _out, err = proc.communicate(timeout=5)
        pytest.fail(f"cascade serve ran on with a Redis that refuses it: {err}")
    assert proc.returncode in (1, 2), err
    line = assert_one_error_line(err)
    assert "in-memory" not in line, err
    assert "auth" in line.lower() or "password" in line.lower(), err


def test_port_in_use_exits_1_with_a_hint(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(tmp_path, "serve", "--bus", "local", "--port", str(port))
    assert result.returncode == 1, result.stderr
    line = assert_one_error_line(result.stderr)
    assert str(port) in line
    assert any(h.startswith("hint:") and "--port" in h for h in result.stderr.splitlines()), result.stderr
