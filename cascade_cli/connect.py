"""The one connection module: every Redis client, HTTP client and WebSocket URL is made here.

- `http_client()` returns a pooled `httpx.Client` with timeouts, cascade's user agent, an
  optional Bearer token, proxies from the environment and retries (`RetryPolicy`): connect
  errors are retried for every method; 429, 502, 503 and 504 only for idempotent methods,
  honouring `Retry-After`. Close it (or use it as a context manager) when done.
- `async_http_client()` returns the same as an `httpx.AsyncClient`, without retries (servers
  such as the hub's Venice proxy answer at once rather than wait). Await `aclose()` when done.
- `redis_client()` returns a `redis.asyncio.Redis` on a blocking, bounded pool (hiredis parses
  replies when installed). Await `aclose()` when done.
- `redis_cluster_client()` returns a `redis.asyncio.cluster.RedisCluster` with the same
  timeouts and password. Await `aclose()` when done.
- `websocket_url()` turns an HTTP base URL into the hub's ws:// or wss:// URL.

Heavy libraries are imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import email.utils
import functools
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from cascade_cli import __version__
from cascade_cli.config import mask_url
from cascade_cli.errors import ConfigError

if TYPE_CHECKING:
    import httpx
    import redis.asyncio

    from cascade_cli.config import RedisSettings

RETRY_STATUSES = frozenset({429, 502, 503, 504})
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
USER_AGENT = f"cascade/{__version__} (+https://github.com/cascade-ops/cascade)"

RetryHook = Callable[[int, str, float], None]


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before retrying. `delay()` is pure; the transport applies it."""

    retries: int = 2
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_retry_after: float = 10.0

    def delay(self, attempt: int, retry_after: float | None = None,
              rand: Callable[[], float] = random.random) -> float | None:
        """Seconds to sleep before retry `attempt` (1-based), or None to give up.

        A server's Retry-After is obeyed when it is at most `max_retry_after`, else we give up;
        otherwise the delay is exponential backoff with "equal jitter" (between half and all of
        `backoff * 2**(attempt-1)`, capped at `max_backoff`).
        """
        if attempt > self.retries:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        ceiling = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return ceiling * (0.5 + rand() / 2)


NO_RETRIES = RetryPolicy(retries=0)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


@functools.cache
def _retrying_client_class() -> type[httpx.Client]:
    """httpx.Client whose `send()` retries per a RetryPolicy (built lazily: httpx is heavy)."""
    import httpx

    class RetryingClient(httpx.Client):
        def __init__(self, *, retry: RetryPolicy, on_retry: RetryHook | None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._retry = retry
            self._on_retry = on_retry

        def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
            attempt = 0
            while True:
                attempt += 1
                try:
                    response = super().send(request, **kwargs)
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    # Nothing reached the server, so every method may be sent again.
                    delay = self._retry.delay(attempt)
                    if delay is None:
                        raise
                    reason = f"{type(exc).__name__}: {exc}"
                else:
                    if (response.status_code not in RETRY_STATUSES
                            or request.method not in IDEMPOTENT_METHODS):
                        return response
                    delay = self._retry.delay(attempt, parse_retry_after(response.headers.get("retry-after")))
                    if delay is None:
                        return response
                    response.close()
                    reason = f"HTTP {response.status_code}"
                if self._on_retry:
                    self._on_retry(attempt, reason, delay)
                time.sleep(delay)

    return RetryingClient


_TOKEN_CHARS = re.compile(r"^[\x21-\x7e]+$")


def http_client(
    base_url: str,
    *,
    timeout: float,
    connect_timeout: float,
    retry: RetryPolicy = NO_RETRIES,
    bearer_token: str | None = None,
    on_retry: RetryHook | None = None,
) -> httpx.Client:
    """A pooled HTTP client for `base_url`; relative request paths are joined to it.

    Proxies come from the usual environment variables (HTTP_PROXY, HTTPS_PROXY, NO_PROXY).
    Raises ConfigError for an unusable URL or a token that cannot go in a header (the token
    itself is never put in a message).
    """
    import httpx

    headers = http_headers(bearer_token)
    try:
        return _retrying_client_class()(
            retry=retry,
            on_retry=on_retry,
            **_client_options(httpx, base_url, headers, timeout, connect_timeout),
        )
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
        raise _unusable_url(base_url, exc) from exc


def async_http_client(
    base_url: str,
    *,
    timeout: float,
    connect_timeout: float,
    bearer_token: str | None = None,
) -> httpx.AsyncClient:
    """A pooled asyncio HTTP client for `base_url`, without retries; await `aclose()` when done.

    Same headers, token check, proxies and URL errors as `http_client()` (ConfigError for an
    unusable URL or a token that cannot go in a header).
    """
    import httpx

    headers = http_headers(bearer_token)
    try:
        return httpx.AsyncClient(
            **_client_options(httpx, base_url, headers, timeout, connect_timeout),
        )
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:
        raise _unusable_url(base_url, exc) from exc


def _client_options(httpx: Any, base_url: str, headers: dict[str, str], timeout: float,
                    connect_timeout: float) -> dict[str, Any]:
    """What the sync and async clients share: base URL, headers, timeouts, pool, redirects."""
    return {"base_url": base_url.rstrip("/") + "/", "headers": headers,
            "timeout": httpx.Timeout(timeout, connect=connect_timeout),
            "limits": httpx.Limits(max_connections=20, max_keepalive_connections=10),
            "follow_redirects": True}


def http_headers(bearer_token: str | None) -> dict[str, str]:
    """cascade's User-Agent and Accept headers, plus `Authorization: Bearer` when a token is
    given; ConfigError when the token cannot go in a header (the token is never in the message)."""
    import httpx

    headers = {"User-Agent": f"{USER_AGENT} python-httpx/{httpx.__version__}",
               "Accept": "application/json"}
    if bearer_token:
        if not _TOKEN_CHARS.match(bearer_token):
            raise ConfigError("the API token contains spaces, control or non-ASCII characters, "
                              "which cannot be sent in an HTTP header",
                              "check the token's value (it is not shown here)")
        headers["Authorization"] = f"Bearer {bearer_token}"
    return headers


def _unusable_url(base_url: str, exc: Exception) -> ConfigError:
    """The ConfigError for a base URL httpx cannot use (userinfo masked)."""
    return ConfigError(f"unusable URL {mask_url(base_url)}: {exc}",
                       "give an http:// or https:// URL with a valid host and port")


def redis_client(settings: RedisSettings, url: str | None = None, **options: Any) -> redis.asyncio.Redis:
    """An asyncio Redis client on a bounded, blocking pool built from `settings`.

    `url` overrides `settings.url`; `options` go to the connection (e.g. `protocol=2`).
    Raises ConfigError for a URL redis-py cannot parse.
    """
    import redis.asyncio as aioredis

    kwargs = _redis_options(settings, {"timeout": settings.timeout, **options})
    try:
        pool = aioredis.BlockingConnectionPool.from_url(url or settings.url, **kwargs)
    except ValueError as exc:
        raise ConfigError(f"invalid Redis URL: {exc}",
                          "use redis://HOST:PORT/DB, rediss://... or unix:///path/to.sock") from exc
    return aioredis.Redis.from_pool(pool)


def _redis_options(settings: RedisSettings, extra: dict[str, Any]) -> dict[str, Any]:
    """Pool size, timeouts and password from `settings`, then `extra` on top."""
    kwargs: dict[str, Any] = {
        "max_connections": settings.max_connections,
        "socket_timeout": settings.timeout,
        "socket_connect_timeout": settings.connect_timeout,
        **extra,
    }
    if settings.password:
        kwargs["password"] = settings.password
    return kwargs


def redis_cluster_client(settings: RedisSettings, url: str | None = None,
                         **overrides: Any) -> redis.asyncio.cluster.RedisCluster:
    """An asyncio Redis Cluster client whose startup node is `url` (default `settings.url`).

    Same timeouts and password as `redis_client()`; `settings.max_connections` bounds the
    connections per node (redis-py's cluster pools do not block: past the bound a command
    raises MaxConnectionsError). `overrides` go to `RedisCluster` (e.g.
    `require_full_coverage=False`). The topology is fetched on first use, or by awaiting
    `initialize()`. Raises ConfigError for a URL a cluster client cannot use. Await `aclose()`
    when done.
    """
    from redis.asyncio.cluster import RedisCluster
    from redis.exceptions import RedisClusterException

    kwargs = _redis_options(settings, overrides)
    try:
        return RedisCluster.from_url(url or settings.url, **kwargs)
    except (ValueError, RedisClusterException) as exc:
        raise ConfigError(f"invalid Redis Cluster URL {mask_url(url or settings.url)}: {exc}",
                          "use redis://HOST:PORT or rediss://HOST:PORT of a cluster node "
                          "(database 0, no unix socket)") from exc


def websocket_url(base_url: str, path: str = "/ws") -> str:
    """The WebSocket URL for `path` on the server at `base_url` (http -> ws, https -> wss)."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}.get(parts.scheme)
    if scheme is None or not parts.netloc:
        raise ConfigError(f"cannot make a WebSocket URL from {base_url!r}",
                          "give an http://, https://, ws:// or wss:// URL with a host")
    joined = parts.path.rstrip("/") + "/" + path.lstrip("/")
    return urlunsplit((scheme, parts.netloc, joined, "", ""))
