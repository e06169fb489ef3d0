"""The monitor's sources against real servers: `RedisSource` on real redis-server and on the
in-memory server (the same test body, and the two engines' panels compared field by field),
`HubHttpSource` on a real `cascade serve --bus local`, `VeniceSource` on the Venice stand-in, and
`Monitor.once()` putting them together. Each read is given its time (`read(100.0)`, then
`read(101.0)`), so rates are exact: N commands between two reads 1 s apart are N per second."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import EngineServer, RedisServer, free_port, redis_binary
from hub_support import Serve, read_events, start_serve
from resp_support import RawClient
from venice_standin import StandIn
from websockets.sync.client import ClientConnection, connect

from cascade_cli.config import RedisSettings, VeniceSettings
from cascade_cli.monitor.panels import exit_code
from cascade_cli.monitor.sources import HubHttpSource, Monitor, RedisSource, VeniceSource

CHANNEL, OTHER, QUIET = "cascade-events", "ai-collaborations", "consciousness-stream"
TIMEOUT = 2.0
"""Seconds a source has to answer (as `cascade monitor --timeout`)."""


def run(body: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(body())


def redis_source(url: str, settings: RedisSettings | None = None) -> RedisSource:
    return RedisSource(settings or RedisSettings(), url, every=1.0, timeout=TIMEOUT, window=60.0)


def hub_source(url: str) -> HubHttpSource:
    return HubHttpSource(url, every=1.0, timeout=TIMEOUT, window=60.0)


def venice_source(base_url: str) -> VeniceSource:
    return VeniceSource(VeniceSettings(base_url=base_url, retries=0), every=15.0, timeout=TIMEOUT,
                        window=60.0)


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
    return result


# ---- Redis, both engines ----------------------------------------------------------------------

KEYS = 4
HITS = KEYS + 2
MISSES = 2
COMMANDS = KEYS + HITS + MISSES
"""What another client sends between two reads: KEYS SETs, HITS GETs of them, MISSES GETs of
absent keys."""
PINGS = 4
"""Commands with no key lookups, sent over two seconds."""


def _info_field(client: RawClient, section: str, name: str) -> str | None:
    text = client.call("INFO", section)[1].decode()
    for line in text.splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    return None


def observe(server: EngineServer) -> dict[str, dict[str, Any]]:
    """The scenario both engines go through: the panels of a first read, an idle second, one
    with COMMANDS commands from another client, and one with PINGS over two seconds."""
    other = RawClient(server.port)
    other.call("CONFIG", "RESETSTAT")   # hit ratios since now; total_commands_processed from 0

    async def body() -> dict[str, dict[str, Any]]:
        source = redis_source(server.url)
        try:
            panels = {"first": await source.read(100.0), "idle": await source.read(101.0)}
            for i in range(KEYS):
                assert other.call("SET", f"key:{i}", "v") == ("+", "OK")
            for i in range(HITS):
                assert other.call("GET", f"key:{i % KEYS}") == ("$", b"v")
            for i in range(MISSES):
                assert other.call("GET", f"absent:{i}") == ("$", None)
            panels["busy"] = await source.read(102.0)
            for _ in range(PINGS):
                other.call("PING")
            panels["pings"] = await source.read(104.0)
            return panels
        finally:
            await source.aclose()

    try:
        return run(body)
    finally:
        other.close()


def test_redis_source_figures(engine_server: EngineServer) -> None:
    panels = observe(engine_server)
    first, idle, busy, pings = panels["first"], panels["idle"], panels["busy"], panels["pings"]
    engine, server = ("native", "redis") if engine_server.name == "redis" else ("memory", "cascade")
    for panel in panels.values():
        assert panel["status"] == "ok" and panel["error"] is None and panel["problems"] == []
        assert (panel["engine"], panel["server"]) == (engine, server)
        assert panel["url"] == engine_server.url and panel["cluster"] is False and panel["role"] == "master"
    assert first["version"]
    assert first["ops_per_sec"] is None and first["keys"] == 0
    assert first["rtt_p50_ms"] is not None and 0 < first["rtt_p50_ms"] <= first["rtt_p99_ms"]
    # the monitor's own PINGs, INFO and CONFIG GET are not ops of the server's clients
    assert idle["ops_per_sec"] == 0.0
    assert idle["hit_ratio_recent"] is None and idle["hit_ratio"] is None
    assert busy["ops_per_sec"] == float(COMMANDS)
    assert busy["keys"] == KEYS
    assert busy["hit_ratio_recent"] == HITS / (HITS + MISSES) == busy["hit_ratio"]
    assert pings["ops_per_sec"] == PINGS / 2
    assert pings["hit_ratio_recent"] is None and pings["hit_ratio"] == busy["hit_ratio"]
    assert [v for _, v in pings["series"]["ops_per_sec"]] == [None, 0.0, COMMANDS, PINGS / 2]
    assert busy["memory_bytes"] > 0 and busy["maxmemory_bytes"] == 0
    assert busy["persistence"]["mode"] == "none"   # the fixtures start with --save "" --appendonly no


def test_engines_agree(real_server: EngineServer, memory_server: EngineServer) -> None:
    """Every figure that does not depend on the engine is the same on both."""
    for server in (real_server, memory_server):
        client = RawClient(server.port)
        client.call("FLUSHALL")
        client.close()
    native, memory = observe(real_server), observe(memory_server)
    for step in ("first", "idle", "busy", "pings"):
        a, b = native[step], memory[step]
        assert a["engine"] == "native" and b["engine"] == "memory"
        assert a["status"] == b["status"], step
        assert a["ops_per_sec"] == b["ops_per_sec"], step
        assert a["keys"] == b["keys"], step
        assert a["hit_ratio"] == b["hit_ratio"], step
        assert a["hit_ratio_recent"] == b["hit_ratio_recent"], step
        assert a["persistence"]["mode"] == b["persistence"]["mode"], step
        assert a["persistence"]["loading"] == b["persistence"]["loading"], step
        assert a["persistence"]["last_save_status"] == b["persistence"]["last_save_status"], step
        assert len(a["problems"]) == len(b["problems"]), step
        assert a["role"] == b["role"] and a["cluster"] == b["cluster"], step
        assert a["maxmemory_bytes"] == b["maxmemory_bytes"], step
        assert [v for _, v in a["series"]["ops_per_sec"]] == [v for _, v in b["series"]["ops_per_sec"]], step


def test_redis_source_persistence_modes(engine_server: EngineServer) -> None:
    """`save` from CONFIG GET (asked once per connection: a fresh source for each setting) and
    aof_enabled from INFO."""
    admin = RawClient(engine_server.port)

    def configure(save: str, appendonly: str) -> None:
        assert admin.call("CONFIG", "SET", "save", save) == ("+", "OK")
        assert admin.call("CONFIG", "SET", "appendonly", appendonly) == ("+", "OK")
        # the in-memory server opens or closes its AOF on its next timer tick; Redis at once
        wanted = "1" if appendonly == "yes" else "0"
        wait_until(lambda: _info_field(admin, "persistence", "aof_enabled") == wanted,
                   f"aof_enabled:{wanted}")

    async def mode() -> str:
        source = redis_source(engine_server.url)
        try:
            panel = await source.read(100.0)
        finally:
            await source.aclose()
        assert panel["status"] == "ok", panel
        return str(panel["persistence"]["mode"])

    try:
        seen = {}
        for save, appendonly in (("", "no"), ("", "yes"), ("3600 1", "no"), ("3600 1 300 100", "yes")):
            configure(save, appendonly)
            seen[(save, appendonly)] = run(mode)
        assert seen == {("", "no"): "none", ("", "yes"): "aof", ("3600 1", "no"): "rdb",
                        ("3600 1 300 100", "yes"): "rdb+aof"}
    finally:
        configure("", "no")
        admin.close()


def test_redis_source_maxmemory(engine_server: EngineServer) -> None:
    admin = RawClient(engine_server.port)

    async def body() -> None:
        source = redis_source(engine_server.url)
        try:
            before = await source.read(100.0)
            assert before["status"] == "ok" and before["maxmemory_bytes"] == 0
            limit = before["memory_bytes"] - 1024   # just below what is used
            assert admin.call("CONFIG", "SET", "maxmemory", str(limit)) == ("+", "OK")
            try:
                full = await source.read(101.0)
            finally:
                assert admin.call("CONFIG", "SET", "maxmemory", "0") == ("+", "OK")
            assert full["status"] == "degraded" and full["maxmemory_bytes"] == limit
            assert len(full["problems"]) == 1 and "of maxmemory" in full["problems"][0], full["problems"]
            after = await source.read(102.0)
            assert after["status"] == "ok" and after["problems"] == [] and after["maxmemory_bytes"] == 0
        finally:
            await source.aclose()

    try:
        run(body)
    finally:
        admin.close()


# ---- Redis going away and coming back -----------------------------------------------------------

@dataclass
class OwnRedis:
    """A redis-server this test starts, stops and starts again on one port."""

    port: int
    directory: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self, save: str = "", *options: str) -> None:
        self.proc = subprocess.Popen(
            [redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", save,
             "--appendonly", "no", "--dir", str(self.directory), *options],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def listening() -> bool:
            assert self.proc is not None and self.proc.poll() is None, "redis-server exited"
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return True
            except OSError:
                return False

        wait_until(listening, f"redis-server on port {self.port}", timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


def test_redis_source_unreachable_then_back(tmp_path: Path) -> None:
    redis = OwnRedis(free_port(), tmp_path)
    url = f"redis://127.0.0.1:{redis.port}/0"

    async def body() -> None:
        source = redis_source(url)
        try:
            nobody = await source.read(100.0)
            assert nobody["status"] == "unreachable" and nobody["url"] == url
            assert nobody["error"].startswith(f"{url}: ") and len(nobody["error"]) > len(url) + 2
            assert "Traceback" not in nobody["error"] and "\n" not in nobody["error"]
            redis.start()
            up = await source.read(101.0)
            assert up["status"] == "ok" and up["engine"] == "native" and up["ops_per_sec"] is None
            assert up["persistence"]["mode"] == "none"
            assert (await source.read(102.0))["ops_per_sec"] == 0.0
            redis.stop()
            gone = await source.read(103.0)
            assert gone["status"] == "unreachable" and gone["error"].startswith(f"{url}: ")
            assert gone["series"]["ops_per_sec"][-1] == [103.0, None]
            redis.start(save="3600 1")   # back with snapshots on: `save` is asked again
            back = await source.read(104.0)
            assert back["status"] == "ok" and back["ops_per_sec"] is None   # rates start afresh
            assert back["persistence"]["mode"] == "rdb"
            assert (await source.read(105.0))["ops_per_sec"] == 0.0
        finally:
            await source.aclose()

    try:
        run(body)
    finally:
        redis.stop()


@pytest.mark.parametrize("how", ["settings", "url", "none"])
def test_redis_source_wrong_password(redis_server_with_password: RedisServer, how: str) -> None:
    server = redis_server_with_password
    secret = "not-the-password-x9"
    url, settings = server.url, RedisSettings(password=secret) if how == "settings" else RedisSettings()
    if how == "url":
        url = f"redis://:{secret}@127.0.0.1:{server.port}/0"

    async def body() -> dict[str, Any]:
        source = redis_source(url, settings)
        try:
            return await source.read(100.0)
        finally:
            await source.aclose()

    panel = run(body)
    assert panel["status"] == "unreachable", panel
    error = panel["error"]
    assert secret not in error and secret not in panel["url"]
    assert "Traceback" not in error and "\n" not in error
    assert error.startswith(f"redis://{':********@' if how == 'url' else ''}127.0.0.1:{server.port}/0: ")
    expected = "authenticated" if how == "none" else "invalid username-password pair"
    assert expected in error and "refused authentication" in error, error
    assert "CASCADE_REDIS_PASSWORD" in panel["hint"]
    right = RedisSettings(password=server.password)   # the same source settings with the right one: ok
    assert run(lambda: _read_once(redis_source(server.url, right)))["status"] == "ok"


async def _read_once(source: RedisSource | HubHttpSource) -> dict[str, Any]:
    try:
        return await source.read(100.0)
    finally:
        await source.aclose()


def test_redis_source_on_a_port_that_is_not_redis(hub: Hub) -> None:
    url = f"redis://127.0.0.1:{hub.port}/0"   # the hub's HTTP port
    panel = run(lambda: _read_once(redis_source(url)))
    assert panel["status"] == "unreachable" and panel["error"].startswith(f"{url}: "), panel
    assert "Traceback" not in panel["error"] and "\n" not in panel["error"]
    assert panel["error"].endswith("is this a Redis port?")


def test_redis_source_a_server_loading_its_data_is_degraded(tmp_path: Path) -> None:
    """PING is refused with LOADING while INFO answers: degraded with the reason, not unreachable."""
    redis = OwnRedis(free_port(), tmp_path)
    redis.start("", "--enable-debug-command", "local")
    client = RawClient(redis.port)
    assert client.call("DEBUG", "POPULATE", "20000")[0] == "+"
    assert client.call("SAVE")[0] == "+"
    client.close()
    redis.stop()
    redis.start("", "--key-load-delay", "200", "--loading-process-events-interval-bytes", "1024")
    try:
        panel = run(lambda: _read_once(redis_source(f"redis://127.0.0.1:{redis.port}/0")))
        assert panel["status"] == "degraded" and panel["persistence"]["loading"] is True, panel
        assert any("loading" in problem for problem in panel["problems"])
    finally:
        redis.stop()


def test_monitor_aclose_always_ends_its_readers(real_server: EngineServer) -> None:
    """Readers cancelled mid-command end every time (a cancel lost in redis-py's writes on Python
    3.11 used to leave one running forever)."""
    async def body() -> None:
        for _ in range(30):
            source = RedisSource(RedisSettings(), real_server.url, every=0.0, timeout=TIMEOUT, window=60.0)
            monitor = Monitor({"redis": source}, interval=0.01)
            monitor.start()
            await asyncio.sleep(0.003)
            await asyncio.wait_for(monitor.aclose(), 5)
            assert all(task.done() for task in asyncio.all_tasks() if task.get_name().startswith("monitor-"))
    run(body)


# ---- the hub over HTTP --------------------------------------------------------------------------

@dataclass
class Hub:
    """The module's `cascade serve --bus local`, on a fixed port so a test can replace it."""

    serve: Serve
    port: int
    tmp: Path

    @property
    def url(self) -> str:
        return self.serve.http_url

    def start(self) -> None:
        self.serve = start_serve(self.tmp, "--bus", "local", "--port", str(self.port))


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    tmp = tmp_path_factory.mktemp("monitor-hub")
    port = free_port()
    running = Hub(start_serve(tmp, "--bus", "local", "--port", str(port)), port, tmp)
    yield running
    running.serve.stop()


def open_ws(stack: ExitStack, url: str) -> ClientConnection:
    ws = stack.enter_context(connect(url, open_timeout=5, close_timeout=2, compression=None))
    assert json.loads(ws.recv(5))["type"] == "connected"
    return ws


def publish(hub: Hub, channel: str, count: int) -> None:
    response = hub.serve.post(f"/api/channels/{channel}/publish", json=[{"data": i} for i in range(count)])
    assert response.status_code == 200 and len(response.json()["ids"]) == count, response.text


def test_hub_source_rates_per_channel(hub: Hub) -> None:
    events = 5
    publish(hub, QUIET, 1)   # the publish route has figures before the first read

    async def body(clients: list[ClientConnection]) -> tuple[dict[str, Any], dict[str, Any]]:
        source = hub_source(hub.url)
        try:
            first = await source.read(100.0)
            publish(hub, CHANNEL, events)
            for ws in clients[:2]:   # delivered: written to both subscribers' sockets
                read_events(ws, lambda got: len(got) >= events, timeout=5)
            return first, await source.read(101.0)
        finally:
            await source.aclose()

    with ExitStack() as stack:
        clients = [open_ws(stack, hub.serve.ws(f"/{channel}")) for channel in (CHANNEL, CHANNEL, OTHER)]
        first, second = run(lambda: body(clients))
    health = hub.serve.get("/health").json()
    for panel in (first, second):
        assert panel["status"] == "ok" and panel["problems"] == [] and panel["error"] is None
        assert panel["url"] == hub.url and panel["instance"] == health["instance"] and panel["bus"] == "local"
        subscribers = {c["channel"]: c["subscribers"] for c in panel["channels"]}
        assert subscribers == {CHANNEL: 2, OTHER: 1, QUIET: 0}
        assert panel["connections"] == 3
    assert all(c["published_per_sec"] is None for c in first["channels"])
    assert first["published_per_sec"] is None
    channels = {c["channel"]: c for c in second["channels"]}
    assert channels[CHANNEL]["published_per_sec"] == events
    assert channels[CHANNEL]["delivered_per_sec"] == events * 2
    assert channels[OTHER]["published_per_sec"] == 0.0 and channels[OTHER]["delivered_per_sec"] == 0.0
    assert second["published_per_sec"] == events and second["delivered_per_sec"] == events * 2
    assert second["dropped_per_sec"] == 0.0 and second["slowest_queues"] == []
    assert second["broadcast_p99_ms"] is not None and second["broadcast_p99_ms"] > 0
    routes = {(r["method"], r["route"]): r for r in second["http"]}
    assert routes[("POST", "/api/channels/{channel}/publish")]["requests_per_sec"] == 1.0
    assert routes[("GET", "/health")]["requests"] >= 2


def test_hub_source_not_a_hub(standin: StandIn, real_server: EngineServer) -> None:
    nothing = f"http://127.0.0.1:{free_port()}"
    for url, expected in ((f"http://127.0.0.1:{standin.port}", "/health answered HTTP 404"),
                          (standin.url("ok"), "is this a `cascade serve` URL?"),
                          (nothing, ""),
                          (f"http://127.0.0.1:{real_server.port}", "")):   # Redis does not speak HTTP
        panel = run(lambda url=url: _read_once(hub_source(url)))
        assert panel["status"] == "unreachable", panel
        assert panel["error"].startswith(f"{url}: ") and expected in panel["error"], panel["error"]
        assert len(panel["error"]) > len(url) + 2 and "\n" not in panel["error"]


def test_hub_source_hub_stopped_and_replaced(hub: Hub) -> None:
    """The hub stops: unreachable; a new hub on the same port: ok, and its rates start afresh
    (a new instance, whose counters started from zero)."""
    async def body() -> None:
        source = hub_source(hub.url)
        try:
            before = await source.read(100.0)
            publish(hub, QUIET, 2)
            assert (await source.read(101.0))["published_per_sec"] == 2.0
            assert hub.serve.stop() == 0
            down = await source.read(102.0)
            assert down["status"] == "unreachable" and down["error"].startswith(f"{hub.url}: ")
            hub.start()
            back = await source.read(103.0)
            assert back["status"] == "ok" and back["instance"] != before["instance"]
            assert back["published_per_sec"] is None
            publish(hub, QUIET, 3)
            again = await source.read(104.0)
            assert again["published_per_sec"] == 3.0
            assert {c["channel"]: c["published_per_sec"] for c in again["channels"]}[QUIET] == 3.0
        finally:
            await source.aclose()

    try:
        run(body)
    finally:
        if hub.serve.stopped:   # the tests after this one get a running hub even when it failed
            hub.start()


# ---- the Venice bridge --------------------------------------------------------------------------

@pytest.mark.parametrize(("mode", "status", "problems"), [
    ("ok", "ok", 0), ("flagged", "degraded", 2), ("error500", "degraded", 1), ("drop", "unreachable", 0),
])
def test_venice_source(standin: StandIn, mode: str, status: str, problems: int) -> None:
    panel = run(lambda: venice_source(standin.url(mode)).read(100.0))
    assert panel["status"] == status, panel
    assert len(panel["problems"]) == problems, panel["problems"]
    assert panel["url"].startswith(standin.url(mode))
    if mode == "flagged":
        assert set(panel["flags"]) == {"_fallback", "_cached", "_stale"}
    if mode == "error500":
        assert panel["http_status"] == 500 and "500" in panel["problems"][0] and panel["hint"]
    if status == "unreachable":
        assert panel["error"] and panel["hint"] and panel["latency_ms"] is None
    else:
        assert panel["error"] is None and panel["latency_ms"] > 0


def test_venice_source_closed_port() -> None:
    port = free_port()
    panel = run(lambda: venice_source(f"http://127.0.0.1:{port}/api").read(100.0))
    assert panel["status"] == "unreachable" and f"127.0.0.1:{port}" in panel["error"] and panel["hint"]


def test_venice_source_uses_the_callers_time(standin: StandIn) -> None:
    """Like every source, `read(now)` puts its point in the series at `now`."""
    panel = run(lambda: venice_source(standin.url("ok")).read(100.0))
    assert [t for t, _ in panel["series"]["latency_ms"]] == [100.0]


# ---- Monitor.once() -----------------------------------------------------------------------------

@pytest.mark.parametrize(("redis_up", "venice_mode", "status"), [
    (True, None, "ok"), (True, "error500", "degraded"), (False, "error500", "unreachable"),
])
def test_monitor_once(real_server: EngineServer, hub: Hub, standin: StandIn, redis_up: bool,
                      venice_mode: str | None, status: str) -> None:
    redis_url = real_server.url if redis_up else f"redis://127.0.0.1:{free_port()}/0"

    async def body() -> dict[str, Any]:
        sources: dict[str, Any] = {
            "redis": redis_source(redis_url), "hub": hub_source(hub.url),
            "venice": venice_source(standin.url(venice_mode)) if venice_mode else "--no-venice"}
        monitor = Monitor(sources, interval=0.05)
        try:
            return await monitor.once()
        finally:
            await monitor.aclose()

    snapshot = run(body)
    sources = snapshot["sources"]
    assert snapshot["status"] == status and exit_code(snapshot["status"]) == {"ok": 0, "degraded": 3,
                                                                              "unreachable": 1}[status]
    assert snapshot["interval_s"] == 0.05 and set(sources) == {"redis", "hub", "venice"}
    assert sources["hub"]["status"] == "ok" and sources["hub"]["published_per_sec"] is not None   # read twice
    if venice_mode is None:
        assert sources["venice"] == {"status": "off", "reason": "--no-venice"}
    else:
        assert sources["venice"]["status"] == "degraded"
    if redis_up:
        assert sources["redis"]["status"] == "ok" and sources["redis"]["ops_per_sec"] is not None
    else:
        assert sources["redis"]["status"] == "unreachable" and redis_url in sources["redis"]["error"]
