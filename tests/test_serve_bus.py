"""The Redis bus of `cascade serve`: several real instances on one real Redis (redis-server and
the in-memory server), the embedded default, Redis down at start and during operation, and
shutdown. Every wait is bounded; reconnects get 15 s (the bus backs off up to 5 s)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import EngineServer, RedisServer, _stop, _wait_port, free_port, redis_binary
from hub_support import Serve, read_events, start_serve, wait_for
from venice_standin import StandIn
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from cascade_cli.hub.history import parse_id

CHANNEL = "cascade-events"
RECONNECT = 15.0
"""Seconds allowed for the bus to reconnect (backoff is capped at 5 s)."""


# --- helpers ------------------------------------------------------------------------------------

@contextmanager
def ws_connect(serve: Serve, path: str = f"/{CHANNEL}") -> Iterator[ClientConnection]:
    """A WebSocket client of `serve` (subscribed to CHANNEL by default), past its `connected`."""
    with connect(serve.ws(path), open_timeout=10, close_timeout=2) as ws:
        hello = json.loads(ws.recv(timeout=10))
        assert hello["type"] == "connected", hello
        yield ws


def read_until(ws: ClientConnection, ids: set[str], timeout: float = 10,
               others: list[dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Every event `ws` receives (batches unwrapped) until it has seen each id in `ids`."""
    return read_events(ws, lambda events: ids <= {e["id"] for e in events}, timeout, others)


def publish(serve: Serve, data: Any, channel: str = CHANNEL) -> str:
    response = serve.post(f"/api/channels/{channel}/publish", json={"data": data})
    assert response.status_code == 200, response.text
    (event_id,) = response.json()["ids"]
    return event_id


def publish_op(ws: ClientConnection, data: Any, channel: str = CHANNEL) -> tuple[str, list[dict[str, Any]]]:
    """Publish with the WebSocket op; the event id and the events that arrived before the ack."""
    ws.send(json.dumps({"op": "publish", "channel": channel, "data": data}))
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + 10
    while True:
        message = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if message["type"] == "published":
            assert message["channel"] == channel
            return message["id"], events
        assert message["type"] in ("event", "batch"), message
        events.extend(message["events"] if message["type"] == "batch" else [message])


def refused(serve: Serve, ws: ClientConnection, data: Any, channel: str = CHANNEL) -> None:
    """Publishing is refused while the channel's Redis is unreachable: 503 with Retry-After over
    HTTP, an error frame for the op; nothing is acknowledged that history does not hold."""
    response = serve.post(f"/api/channels/{channel}/publish", json={"data": data})
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert "not published" in response.json()["error"] and "retry" in response.json()["error"]
    ws.send(json.dumps({"op": "publish", "channel": channel, "data": data}))
    while True:
        message = json.loads(ws.recv(timeout=20))
        if message["type"] == "error":
            break
        assert message["type"] in ("event", "batch") and data not in json.dumps(message), message
    assert message["op"] == "publish" and "not published" in message["error"], message


def health(serve: Serve) -> dict[str, Any]:
    return serve.get("/health").json()


def bus_state(serve: Serve) -> str:
    try:
        return health(serve)["redis"]["state"]
    except httpx.TransportError:
        return "unanswered"


def wait_state(state: str, *serves: Serve, timeout: float = 10) -> None:
    for serve in serves:
        wait_for(lambda s=serve: bus_state(s) == state, timeout=timeout, what=f"bus state {state!r}")


def start_many(tmp_path: Path, *arg_lists: list[str], env: dict[str, str] | None = None) -> list[Serve]:
    """Start several `cascade serve` at once (in parallel: each takes about half a second)."""
    with ThreadPoolExecutor(len(arg_lists)) as pool:
        futures = [pool.submit(start_serve, tmp_path, *args, env=env) for args in arg_lists]
        started = []
        failure: BaseException | None = None
        for future in futures:
            try:
                started.append(future.result())
            except BaseException as exc:  # noqa: BLE001 - stop the others, then fail
                failure = exc
        if failure is not None:
            for serve in started:
                serve.stop(signal.SIGKILL)
            raise failure
        return started


@contextmanager
def serving(tmp_path: Path, *arg_lists: list[str]) -> Iterator[list[Serve]]:
    """Several instances, each stopped gracefully at the end and required to exit 0."""
    serves = start_many(tmp_path, *arg_lists)
    try:
        yield serves
    finally:
        codes = stop_all(*serves)
    assert codes == [0] * len(serves), [s.stderr() for s in serves]


def stop_all(*serves: Serve) -> list[int]:
    """SIGTERM every instance once, all first (they shut down side by side), then wait for each;
    their exit codes."""
    for serve in serves:
        if serve.proc.poll() is None and not serve.stopped:
            serve.proc.send_signal(signal.SIGTERM)
    codes = []
    for serve in serves:
        if not serve.stopped:
            serve.stopped = True
            try:
                serve.proc.wait(15)
            except subprocess.TimeoutExpired:
                serve.proc.kill()
                serve.proc.wait(5)
                raise
        codes.append(serve.proc.returncode)
    return codes


def spawn_engine(kind: str, port: int, directory: Path) -> subprocess.Popen[bytes]:
    """redis-server ("redis") or the in-memory server ("memory") on exactly `port`."""
    program = [redis_binary()] if kind == "redis" else [sys.executable, "-m", "cascade_cli.resp"]
    proc = subprocess.Popen([*program, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(directory)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_port(port, proc, kind)
    return proc


def assert_exactly_once(events: list[dict[str, Any]], *ids: str) -> None:
    seen = [e["id"] for e in events]
    for event_id in ids:
        assert seen.count(event_id) == 1, (event_id, seen)


def assert_cross_delivery(a: Serve, b: Serve, ca: ClientConnection, cb: ClientConnection) -> None:
    """A's publish reaches B's client and B's reaches A's, each exactly once."""
    from_a = publish(a, {"from": "a"})
    from_b = publish(b, {"from": "b"})
    got_a = read_until(ca, {from_a, from_b})
    got_b = read_until(cb, {from_a, from_b})
    fence = [publish(a, "fence-a"), publish(b, "fence-b")]   # duplicates would arrive before these
    got_a += read_until(ca, set(fence))
    got_b += read_until(cb, set(fence))
    assert_exactly_once(got_a, from_a, from_b)
    assert_exactly_once(got_b, from_a, from_b)
    data = {e["id"]: e["data"] for e in got_b}
    assert data[from_a] == {"from": "a"}


@pytest.fixture(params=["redis", "memory"])
def engine(request: pytest.FixtureRequest) -> EngineServer:
    """The shared real redis-server, then the shared in-memory server."""
    return request.getfixturevalue(f"{'real' if request.param == 'redis' else 'memory'}_server")


@pytest.fixture
def engines(tmp_path: Path) -> Iterator[Callable[[str, int], subprocess.Popen[bytes]]]:
    """Start dedicated Redis servers on chosen ports; every one still running is stopped after."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(kind: str, port: int) -> subprocess.Popen[bytes]:
        directory = tmp_path / f"{kind}-{len(procs)}"
        directory.mkdir()
        procs.append(spawn_engine(kind, port, directory))
        return procs[-1]

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)   # a test may have frozen it
            _stop(proc)


# --- two instances on one Redis ---------------------------------------------------------------------

def test_events_cross_instances_exactly_once(tmp_path: Path, engine: EngineServer) -> None:
    with serving(tmp_path, ["--redis-url", engine.url], ["--redis-url", engine.url]) as (a, b):
        assert a.info["redis"] == b.info["redis"] == "redis"
        wait_state("ok", a, b)
        with ws_connect(a) as ca, ws_connect(b) as cb, ws_connect(a, "") as watcher:
            watcher.send(json.dumps({"op": "subscribe", "channel": CHANNEL}))
            assert json.loads(watcher.recv(timeout=10))["type"] == "subscribed"
            by_http = publish(a, {"via": "http"})
            by_op, early = publish_op(ca, {"via": "op"})
            got_b = read_until(cb, {by_http, by_op})   # both went through Redis
            # Duplicates (an echo back to A, a second copy to B) would arrive before these.
            fence = {publish(b, "fence-b"), publish(a, "fence-a")}
            got_b += read_until(cb, fence)
            want = {by_http, by_op} | fence
            got_a = early + read_until(ca, want - {e["id"] for e in early})
            got_watcher = read_until(watcher, want)
            for got in (got_a, got_b, got_watcher):
                assert_exactly_once(got, by_http, by_op, *fence)
            on_b = {e["id"]: e for e in got_b}
            assert on_b[by_http]["data"] == {"via": "http"}
            assert on_b[by_op]["data"] == {"via": "op"}
            assert on_b[by_op]["channel"] == CHANNEL
            for got in (got_a, got_b, got_watcher):   # one order everywhere: the stream's
                assert [e["id"] for e in got] == sorted((e["id"] for e in got), key=parse_id)
        metrics_a = a.get("/metrics").text
        assert 'cascade_redis_bus_events_total{direction="out"} 3' in metrics_a
        assert 'cascade_redis_bus_events_total{direction="in"} 4' in metrics_a   # its 3 and B's 1


def test_bus_with_a_password_masks_it(tmp_path: Path, redis_server_with_password: RedisServer) -> None:
    server = redis_server_with_password
    url = f"redis://:{server.password}@127.0.0.1:{server.port}/0"
    with serving(tmp_path, ["--redis-url", url]) as (serve,):
        wait_state("ok", serve)   # the command and the pub/sub connections both authenticated
        assert server.password not in json.dumps(serve.info)
        assert server.password not in json.dumps(health(serve))
        assert server.password not in serve.get("/metrics").text
        assert server.password not in serve.stderr()


# --- the embedded default ----------------------------------------------------------------------------

def test_embedded_redis_is_started_and_shared(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with serving(tmp_path, ["--redis-url", url]) as (owner,):
        assert owner.info["redis"] == "embedded"
        assert "in-memory" in owner.stderr()
        wait_state("ok", owner)
        assert health(owner)["status"] == "ok"
        assert owner.get("/ready").status_code == 200
        with serving(tmp_path, ["--redis-url", url]) as (guest,):
            assert guest.info["redis"] == "redis"
            assert "in-memory" not in guest.stderr()
            wait_state("ok", guest)
            with ws_connect(owner) as c_owner, ws_connect(guest) as c_guest:
                assert_cross_delivery(owner, guest, c_owner, c_guest)


# --- Redis down at start ---------------------------------------------------------------------------

def test_never_embedded_runs_degraded_then_connects(tmp_path: Path,
                                                   engines: Callable[[str, int], Any]) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    args = ["--redis-url", url, "--embedded-redis", "never"]
    with serving(tmp_path, args, args) as (a, b):
        assert a.info["redis"] == "unreachable"
        assert "unreachable" in a.stderr()
        wait_state("down", a, b)
        body = health(a)
        assert body["status"] == "degraded"
        assert body["redis"]["error"]
        ready = a.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["ready"] is False
        with ws_connect(a) as ca, ws_connect(b) as cb:
            refused(a, ca, "while degraded")

            engines("redis", port)
            wait_state("ok", a, b, timeout=RECONNECT)
            assert health(a)["status"] == health(b)["status"] == "ok"
            assert a.get("/ready").status_code == b.get("/ready").status_code == 200
            assert_cross_delivery(a, b, ca, cb)


# --- Redis dies during operation ----------------------------------------------------------------

def venice_get(serve: Serve, tag: str) -> str:
    """GET a Venice path through the hub's caching proxy; its X-Cache."""
    response = serve.get(f"/api/venice/ok/api/citizens?tag={tag}")
    assert response.status_code == 200, response.text
    assert response.json()["success"] is True
    return response.headers["x-cache"]


@pytest.mark.parametrize("kind", ["redis", "memory"])
def test_redis_dies_and_comes_back(tmp_path: Path, engines: Callable[[str, int], Any], kind: str,
                                   standin: StandIn) -> None:
    port = free_port()
    redis_proc = engines(kind, port)
    url = f"redis://127.0.0.1:{port}/0"
    args = ["--redis-url", url]
    venice = {"CASCADE_VENICE_BASE_URL": f"http://127.0.0.1:{standin.port}"}
    a, b = start_many(tmp_path, args, args, env=venice)
    with a, b:
        wait_state("ok", a, b)
        tag = uuid.uuid4().hex
        assert [venice_get(a, tag), venice_get(b, tag)] == ["MISS", "HIT"]   # one cache for both
        with ws_connect(a) as ca, ws_connect(b) as cb:
            assert_cross_delivery(a, b, ca, cb)

            _stop(redis_proc)
            wait_state("down", a, b)
            assert health(a)["status"] == "degraded"
            assert a.get("/ready").status_code == 503
            refused(a, ca, "redis is gone")
            assert a.proc.poll() is None and b.proc.poll() is None
            assert 'cascade_redis_up{state="down"} 0' in a.get("/metrics").text
            tag = uuid.uuid4().hex
            assert [venice_get(a, tag), venice_get(a, tag)] == ["MISS", "MISS"]   # uncached, no error

            engines(kind, port)
            wait_state("ok", a, b, timeout=RECONNECT)
            assert a.get("/ready").status_code == b.get("/ready").status_code == 200
            assert_cross_delivery(a, b, ca, cb)
            assert "cascade_redis_reconnects_total 1" in a.get("/metrics").text
            tag = uuid.uuid4().hex
            assert [venice_get(a, tag), venice_get(b, tag)] == ["MISS", "HIT"]
        assert stop_all(a, b) == [0, 0], (a.stderr(), b.stderr())
        assert "Traceback" not in a.stderr() + b.stderr()


def test_redis_hangs_then_wakes_up(tmp_path: Path, engines: Callable[[str, int], Any]) -> None:
    """A frozen Redis (SIGSTOP) is noticed through the bus's PING (1 s reply timeout here);
    publishing is refused meanwhile; after SIGCONT the bus recovers; a graceful stop while it
    hangs exits 0."""
    port = free_port()
    redis_proc = engines("redis", port)
    serve = start_serve(tmp_path, "--redis-url", f"redis://127.0.0.1:{port}/0",
                        env={"CASCADE_REDIS_TIMEOUT": "1", "CASCADE_REDIS_CONNECT_TIMEOUT": "1"})
    with serve, ws_connect(serve) as client:
        wait_state("ok", serve)
        redis_proc.send_signal(signal.SIGSTOP)
        wait_state("down", serve, timeout=RECONNECT)
        assert health(serve)["status"] == "degraded"
        refused(serve, client, "redis is frozen")

        redis_proc.send_signal(signal.SIGCONT)
        wait_state("ok", serve, timeout=RECONNECT)
        assert serve.get("/ready").status_code == 200

        redis_proc.send_signal(signal.SIGSTOP)   # before the bus notices: the publish waits, then fails
        refused(serve, client, "sent to a frozen Redis")
        assert serve.stop() == 0, serve.stderr()
    assert "Traceback" not in serve.stderr()


# --- the local bus and shutdown --------------------------------------------------------------------

def test_local_bus_needs_no_redis(tmp_path: Path) -> None:
    with serving(tmp_path, ["--bus", "local", "--redis-url", f"redis://127.0.0.1:{free_port()}/0"]) as (s,):
        assert s.info["redis"] == "local"
        body = health(s)
        assert body["status"] == "ok"
        assert body["redis"]["state"] == "local"
        assert s.get("/ready").status_code == 200
        assert "in-memory" not in s.stderr()
        with ws_connect(s) as client:
            event_id = publish(s, "local")
            assert_exactly_once(read_until(client, {event_id}), event_id)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_shutdown_with_a_redis_bus(tmp_path: Path, real_server: EngineServer, sig: int) -> None:
    serve = start_serve(tmp_path, "--redis-url", real_server.url)
    with ExitStack() as stack:
        stack.callback(serve.stop, signal.SIGKILL)
        wait_state("ok", serve)
        client = stack.enter_context(ws_connect(serve))
        assert serve.stop(sig) == 0, serve.stderr()
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                client.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert "Traceback" not in serve.stderr()
