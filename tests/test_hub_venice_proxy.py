"""The Venice caching proxy: the real proxy against the stand-in API and a real Redis (both the
in-memory server and redis-server), through redis.asyncio."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import EngineServer, free_port
from venice_standin import TOKEN, StandIn

from cascade_cli.config import RedisSettings, VeniceSettings
from cascade_cli.connect import redis_client
from cascade_cli.errors import ConfigError
from cascade_cli.hub.venice_proxy import ProxyResult, VeniceProxy, normalise_target

CACHE_DB = 5  # the proxy's keys live in their own database of the shared session servers

Scenario = Callable[[VeniceProxy, Any], Awaitable[None]]


@pytest.fixture(params=["memory", "redis"])
def engine(request: pytest.FixtureRequest) -> EngineServer:
    """Each test runs against the in-memory server and against redis-server."""
    return request.getfixturevalue("memory_server" if request.param == "memory" else "real_server")


def venice(base_url: str, **changes: Any) -> VeniceSettings:
    return replace(VeniceSettings(), **{"base_url": base_url, "timeout": 5.0, "connect_timeout": 5.0, **changes})


def run(settings: VeniceSettings, ttl: float, redis_url: str | None, scenario: Scenario,
        observe: bool = True) -> VeniceProxy:
    """Run `scenario(proxy, redis)` on a fresh event loop with the cache database flushed; the
    proxy uses its own client, the scenario gets another to look at Redis directly (None when
    `observe` is false)."""

    async def main() -> VeniceProxy:
        cache = redis_client(RedisSettings(), url=redis_url) if redis_url else None
        observer = redis_client(RedisSettings(), url=redis_url) if redis_url and observe else None
        proxy = VeniceProxy(settings, ttl, lambda: cache)
        try:
            if observer is not None:
                await observer.flushdb()
            await scenario(proxy, observer)
        finally:
            await proxy.aclose()
            for client in (cache, observer):
                if client is not None:
                    await client.aclose()
        return proxy

    return asyncio.run(main())


def db_url(server: EngineServer) -> str:
    return f"redis://127.0.0.1:{server.port}/{CACHE_DB}"


def body(result: ProxyResult) -> Any:
    return json.loads(result.body)


# ---- pure: paths and queries ---------------------------------------------------------------------

def test_normalise_target_encodes_and_sorts() -> None:
    assert normalise_target("citizens", "") == "citizens?"
    assert normalise_target("/citizens/NLR", "") == "citizens/NLR?"
    assert normalise_target("activities", "limit=1&Citizen=marco_polo") == "activities?Citizen=marco_polo&limit=1"
    assert normalise_target("x", "b=2&a=1&a=0&c&d=a+b%2Fc") == "x?a=1&a=0&b=2&c=&d=a%20b%2Fc"
    assert normalise_target("citizens/a b?c#d%2e:e", "") == "citizens/a%20b%3Fc%23d%252e%3Ae?"


@pytest.mark.parametrize("path", ["", "/", "//", "../x", "citizens/../../x", "a/..", "..",
                                  "http://evil.example/x", "//evil.example/x", "https:x",
                                  "javascript:alert(1)", "a\\..\\b", "a\x00b", "a\nb"])
def test_bad_paths_are_refused(path: str) -> None:
    result = normalise_target(path, "")
    assert isinstance(result, ProxyResult)
    assert result.status == 400 and result.content_type == "application/json"
    assert body(result)["upstream_status"] is None and body(result)["error"]
    assert result.headers() == {"X-Cache": "MISS", "Cache-Control": "no-store"}


def test_a_long_target_is_refused() -> None:
    result = normalise_target("citizens", "a=" + "x" * 5000)
    assert isinstance(result, ProxyResult) and result.status == 414


# ---- the proxy, for real ---------------------------------------------------------------------

def test_miss_then_hit(engine: EngineServer, standin: StandIn) -> None:
    mode = f"ok.{engine.name}-hit"
    results: list[ProxyResult] = []

    async def scenario(proxy: VeniceProxy, redis: Any) -> None:
        results.append(await proxy.fetch("citizens", "limit=2"))
        results.append(await proxy.fetch("citizens", "limit=2"))
        assert 0 < await redis.pttl("cascade:venice:citizens?limit=2") <= 60_000
        results.append(await proxy.fetch("activities", "limit=1&Citizen=marco_polo"))
        results.append(await proxy.fetch("activities", "Citizen=marco_polo&limit=1"))

    proxy = run(venice(standin.url(mode)), 60, db_url(engine), scenario)
    miss, hit, other_miss, other_hit = results
    assert (miss.status, miss.cache, miss.max_age, miss.content_type) == (200, "MISS", 60, "application/json")
    assert [c["username"] for c in body(miss)["citizens"]] == ["NLR", "marco_polo"]
    assert (hit.status, hit.cache, hit.body, hit.content_type) == (200, "HIT", miss.body, miss.content_type)
    assert 0 < hit.max_age <= 60
    assert miss.headers() == {"X-Cache": "MISS", "Cache-Control": "public, max-age=60"}
    assert hit.headers()["X-Cache"] == "HIT"
    assert (other_miss.cache, other_hit.cache) == ("MISS", "HIT") and other_hit.body == other_miss.body
    seen = standin.seen(mode)
    assert [s.path for s in seen] == [f"/{mode}/api/citizens", f"/{mode}/api/activities"]
    assert seen[1].query == {"Citizen": ["marco_polo"], "limit": ["1"]}
    assert (proxy.hits, proxy.misses, proxy.cache_errors, proxy.upstream_errors) == (2, 2, 0, 0)


def test_cached_answers_expire(engine: EngineServer, standin: StandIn) -> None:
    mode = f"ok.{engine.name}-ttl"
    results: list[ProxyResult] = []

    async def scenario(proxy: VeniceProxy, redis: Any) -> None:
        results.append(await proxy.fetch("economy", ""))
        pttl = await redis.pttl("cascade:venice:economy?")
        assert pttl <= 300 and pttl != -1  # stored with its TTL (-2: already gone)
        await asyncio.sleep(0.6)
        assert await redis.exists("cascade:venice:economy?") == 0
        results.append(await proxy.fetch("economy", ""))

    run(venice(standin.url(mode)), 0.3, db_url(engine), scenario)
    assert [r.cache for r in results] == ["MISS", "MISS"]
    assert results[0].max_age == 0 and results[0].headers()["Cache-Control"] == "no-store"
    assert len(standin.seen(mode)) == 2


def test_upstream_error_answers_become_502_and_are_not_cached(engine: EngineServer,
                                                              standin: StandIn) -> None:
    results: dict[str, ProxyResult] = {}
    modes = {name: f"{name}.{engine.name}-errors" for name in ("ok", "error500", "auth", "nonjson")}

    async def scenario(proxy: VeniceProxy, redis: Any) -> None:
        for name, mode in modes.items():
            other = VeniceProxy(venice(standin.url(mode)), 60, lambda: redis)
            try:
                path = "citizens/nobody" if name == "ok" else "citizens"
                results[name] = await other.fetch(path, "")
                await other.fetch(path, "")
                if name == "ok":
                    assert other.upstream_errors == 2 and other.misses == 2
            finally:
                await other.aclose()
        assert await redis.keys("*") == [b"cascade:venice:citizens?"]  # only the 200 answer

    run(venice(standin.url()), 60, db_url(engine), scenario)
    missing, failed, denied = results["ok"], results["error500"], results["auth"]
    assert (missing.status, body(missing)["upstream_status"]) == (502, 404)
    assert body(missing)["upstream_body"] == {"success": False, "error": "Citizen not found: nobody"}
    assert (failed.status, body(failed)["upstream_status"]) == (502, 500)
    assert body(failed)["upstream_body"]["details"] == "Airtable down"
    assert "HTTP 500" in body(failed)["error"]
    assert (denied.status, body(denied)["upstream_status"]) == (502, 401)
    for result in (missing, failed, denied):
        assert result.content_type == "application/json" and result.cache == "MISS"
        assert result.headers()["Cache-Control"] == "no-store"
    assert len(standin.seen(modes["ok"])) == 2 and len(standin.seen(modes["error500"])) == 2
    html = results["nonjson"]  # a 200 that is not JSON is relayed as it is
    assert (html.status, html.content_type, html.body) == (200, "text/html", b"<html><body>Venice</body></html>")


def test_unreachable_slow_and_dropping_upstreams(engine: EngineServer, standin: StandIn) -> None:
    results: dict[str, ProxyResult] = {}
    targets = {
        "refused": venice(f"http://127.0.0.1:{free_port()}/api"),
        "slow": venice(standin.url(f"slow.{engine.name}"), timeout=0.3),
        "drop": venice(standin.url(f"drop.{engine.name}")),
    }

    async def scenario(proxy: VeniceProxy, redis: Any) -> None:
        for name, settings in targets.items():
            other = VeniceProxy(settings, 60, lambda: redis)
            try:
                results[name] = await other.fetch("economy", "")
                assert other.upstream_errors == 1
            finally:
                await other.aclose()
        assert await redis.keys("*") == []

    run(venice(standin.url()), 60, db_url(engine), scenario)
    assert {name: r.status for name, r in results.items()} == {"refused": 502, "slow": 504, "drop": 502}
    for result in results.values():
        assert body(result)["upstream_status"] is None and result.cache == "MISS"
        assert "upstream_body" not in body(result)
    assert "refused" in body(results["refused"])["error"]
    assert "within 0.3 s" in body(results["slow"])["error"]


def test_redis_down_serves_uncached(standin: StandIn) -> None:
    mode = "ok.redis-down"

    async def scenario(proxy: VeniceProxy, redis: Any) -> None:
        for _ in range(2):
            result = await proxy.fetch("economy", "")
            assert (result.status, result.cache) == (200, "MISS")
            assert body(result)["economy"]["citizenCount"] == 3

    proxy = run(venice(standin.url(mode)), 60, f"redis://127.0.0.1:{free_port()}/0", scenario, observe=False)
    assert proxy.cache_errors == 4  # a failed read and a failed write per request
    assert len(standin.seen(mode)) == 2


def test_no_redis_client_means_no_cache(standin: StandIn) -> None:
    mode = "ok.no-redis"

    async def scenario(proxy: VeniceProxy, redis: Any) -> None:
        results = [await proxy.fetch("economy", "") for _ in range(2)]
        assert [(r.status, r.cache) for r in results] == [(200, "MISS"), (200, "MISS")]

    proxy = run(venice(standin.url(mode)), 60, None, scenario)
    assert proxy.cache_errors == 0 and len(standin.seen(mode)) == 2


def test_bad_paths_never_reach_upstream_or_redis(engine: EngineServer, standin: StandIn) -> None:
    before = len(standin.requests)

    async def scenario(proxy: VeniceProxy, redis: Any) -> None:
        for path in ("", "../economy", "ok/../../x", "http://127.0.0.1/x", "//127.0.0.1/x"):
            result = await proxy.fetch(path, "")
            assert result.status == 400 and body(result)["upstream_status"] is None
        assert await redis.keys("*") == []

    proxy = run(venice(standin.url()), 60, db_url(engine), scenario)
    assert len(standin.requests) == before and proxy.misses == 0


def test_concurrent_requests_share_one_upstream_request(engine: EngineServer, standin: StandIn) -> None:
    mode = f"ok.{engine.name}-together"

    async def scenario(proxy: VeniceProxy, redis: Any) -> None:
        results = await asyncio.gather(*(proxy.fetch("buildings", "") for _ in range(5)))
        assert {(r.status, r.body) for r in results} == {(200, results[0].body)}
        assert len(body(results[0])["buildings"]) == 5
        assert (await proxy.fetch("buildings", "")).cache == "HIT"

    run(venice(standin.url(mode)), 60, db_url(engine), scenario)
    assert len(standin.seen(mode)) == 1


def test_api_key_and_key_file(standin: StandIn, tmp_path: Path) -> None:
    key_file = tmp_path / "venice.key"
    key_file.write_text(TOKEN + "\n")
    answers: list[int] = []

    async def scenario(proxy: VeniceProxy, redis: Any) -> None:
        for settings in (venice(standin.url("auth.key"), api_key=TOKEN),
                         venice(standin.url("auth.key"), api_key_file=str(key_file))):
            other = VeniceProxy(settings, 0, lambda: None)
            try:
                answers.append((await other.fetch("citizens", "")).status)
            finally:
                await other.aclose()
        broken = VeniceProxy(venice(standin.url(), api_key_file=str(tmp_path / "missing")), 0, lambda: None)
        with pytest.raises(ConfigError):
            broken.upstream()
        result = await broken.fetch("citizens", "")
        assert result.status == 500 and "venice.api_key_file" in body(result)["error"]

    run(venice(standin.url()), 0, None, scenario)
    assert answers == [200, 200]
    assert [s.headers["Authorization"] for s in standin.seen("auth.key")] == [f"Bearer {TOKEN}"] * 2
