"""The connection module: retry policy, HTTP client behaviour, WebSocket URLs, real Redis clients."""

from __future__ import annotations

import asyncio
import email.utils
from dataclasses import replace

import pytest

from cascade_cli.config import RedisSettings
from cascade_cli.connect import (RetryPolicy, http_client, parse_retry_after, redis_client,
                                 websocket_url)
from cascade_cli.errors import ConfigError
from conftest import RedisServer
from venice_standin import StandIn


def test_retry_policy_backoff_jitter_and_limits() -> None:
    policy = RetryPolicy(retries=4, backoff=0.5, max_backoff=1.5, max_retry_after=10)
    assert [policy.delay(n, rand=lambda: 1.0) for n in (1, 2, 3, 4)] == [0.5, 1.0, 1.5, 1.5]
    assert [policy.delay(n, rand=lambda: 0.0) for n in (1, 2)] == [0.25, 0.5]
    assert policy.delay(5) is None
    assert policy.delay(1, retry_after=7) == 7
    assert policy.delay(1, retry_after=11) is None
    assert RetryPolicy(retries=0).delay(1) is None


def test_parse_retry_after() -> None:
    assert parse_retry_after("12") == 12.0
    now = 1_800_000_000.0
    assert parse_retry_after(email.utils.formatdate(now + 30, usegmt=True), now=now) == 30.0
    assert parse_retry_after(email.utils.formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_websocket_url() -> None:
    assert websocket_url("http://127.0.0.1:8000") == "ws://127.0.0.1:8000/ws"
    assert websocket_url("https://hub.example/base/", "/ws/cascade-events") == "wss://hub.example/base/ws/cascade-events"
    with pytest.raises(ConfigError):
        websocket_url("ftp://host")


def test_http_client_headers_and_retries(standin: StandIn) -> None:
    retries: list[tuple[int, str]] = []
    with http_client(standin.url("flaky.connect"), timeout=5, connect_timeout=5, bearer_token="tok",
                     retry=RetryPolicy(retries=2, backoff=0.001),
                     on_retry=lambda n, why, delay: retries.append((n, why))) as client:
        response = client.get("economy")
    assert response.status_code == 200
    assert retries == [(1, "HTTP 503"), (2, "HTTP 503")]
    seen = standin.seen("flaky.connect")
    assert len(seen) == 3
    assert seen[-1].headers["Authorization"] == "Bearer tok"
    assert seen[-1].headers["User-Agent"].startswith("cascade/0.")


def test_http_client_without_retries_returns_the_error(standin: StandIn) -> None:
    with http_client(standin.url("flaky.noretry"), timeout=5, connect_timeout=5) as client:
        assert client.get("economy").status_code == 503
    assert len(standin.seen("flaky.noretry")) == 1


def settings_for(server: RedisServer, **changes: object) -> RedisSettings:
    return replace(RedisSettings(), url=server.url, **changes)


def test_redis_client_talks_to_real_redis_with_hiredis(redis_server: RedisServer) -> None:
    import redis.utils

    async def scenario() -> tuple[object, ...]:
        client = redis_client(settings_for(redis_server))
        other_db = redis_client(settings_for(redis_server), url=redis_server.url[:-1] + "2")
        try:
            await client.set("cascade:test", "v")
            return (await client.ping(), await client.get("cascade:test"), await other_db.get("cascade:test"))
        finally:
            await client.aclose()
            await other_db.aclose()

    assert redis.utils.HIREDIS_AVAILABLE
    assert asyncio.run(scenario()) == (True, b"v", None)


def test_redis_pool_is_bounded_and_waits(redis_server: RedisServer) -> None:
    async def scenario() -> tuple[int, list[object]]:
        client = redis_client(settings_for(redis_server, max_connections=2), client_name="cascade-pool-test")
        observer = redis_client(settings_for(redis_server))
        try:
            waits = [asyncio.create_task(client.blpop(["cascade:empty"], timeout=0.3)) for _ in range(4)]
            await asyncio.sleep(0.15)
            listing = await observer.client_list()
            in_use = sum(1 for entry in listing if entry.get("name") == "cascade-pool-test")
            return in_use, await asyncio.gather(*waits)
        finally:
            await client.aclose()
            await observer.aclose()

    in_use, results = asyncio.run(scenario())
    assert in_use == 2
    assert results == [None, None, None, None]


def test_redis_password_from_settings(redis_server_with_password: RedisServer) -> None:
    import redis.exceptions

    async def ping(password: str) -> object:
        client = redis_client(settings_for(redis_server_with_password, password=password))
        try:
            return await client.ping()
        finally:
            await client.aclose()

    assert asyncio.run(ping("hunter2-redis")) is True
    with pytest.raises(redis.exceptions.AuthenticationError):
        asyncio.run(ping("wrong"))


def test_redis_client_rejects_a_bad_url() -> None:
    with pytest.raises(ConfigError, match="invalid Redis URL"):
        redis_client(RedisSettings(), url="redis://localhost:notaport/0")


def test_connect_errors_are_retried_until_the_server_is_up(tmp_path: object) -> None:
    from conftest import free_port

    port = free_port()
    started: list[StandIn] = []

    def start_server_on_first_retry(attempt: int, reason: str, delay: float) -> None:
        assert reason.startswith("ConnectError")
        if not started:
            started.append(StandIn(port).start())

    try:
        with http_client(f"http://127.0.0.1:{port}/ok/api", timeout=5, connect_timeout=5,
                         retry=RetryPolicy(retries=3, backoff=0.001),
                         on_retry=start_server_on_first_retry) as client:
            response = client.get("economy")
        assert response.status_code == 200 and response.json()["success"] is True
        assert len(started) == 1 and len(started[0].seen("ok")) == 1
    finally:
        for server in started:
            server.stop()


def test_post_is_not_retried_on_503(standin: StandIn) -> None:
    retries: list[int] = []
    with http_client(standin.url("flaky.post"), timeout=5, connect_timeout=5,
                     retry=RetryPolicy(retries=3, backoff=0.001),
                     on_retry=lambda n, why, delay: retries.append(n)) as client:
        response = client.post("messages/send", json={"sender": "a"})
    assert response.status_code == 503 and retries == []


def test_async_http_client_headers_token_and_no_retries(standin: StandIn) -> None:
    from venice_standin import TOKEN

    from cascade_cli.connect import async_http_client

    async def scenario() -> tuple[int, int, int]:
        authed = async_http_client(standin.url("auth.async"), timeout=5, connect_timeout=5,
                                   bearer_token=TOKEN)
        flaky = async_http_client(standin.url("flaky.async"), timeout=5, connect_timeout=5)
        try:
            ok = (await authed.get("economy")).status_code
            denied = (await flaky.get("economy", headers={"Authorization": "Bearer nope"})).status_code
            return ok, denied, (await flaky.get("/economy")).status_code
        finally:
            await authed.aclose()
            await flaky.aclose()

    assert asyncio.run(scenario()) == (200, 503, 503)
    seen = standin.seen("auth.async")[-1]
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["User-Agent"].startswith("cascade/0.") and seen.headers["Accept"] == "application/json"
    assert [s.path for s in standin.seen("flaky.async")] == ["/flaky.async/api/economy"] * 2  # not retried
    with pytest.raises(ConfigError, match="cannot be sent in an HTTP header") as caught:
        async_http_client(standin.url(), timeout=5, connect_timeout=5, bearer_token="two words")
    assert "two words" not in str(caught.value)
