"""The caching proxy behind `GET /api/venice/{path}` of `cascade serve`.

The route hands `VeniceProxy.fetch(path, query)` the decoded path after `/api/venice/` and the
raw query string, and answers with the `ProxyResult`: its status, body and content type, plus
the headers from `ProxyResult.headers()` (`X-Cache: HIT|MISS`, `Cache-Control`).

- Only relative paths inside the Venice base URL are forwarded; anything else is a 400.
- 200 answers are cached in Redis for `ttl` seconds under `cascade:venice:<path>?<query>` (the
  query's parameters sorted by name), as one string `<status>\\n<content type>\\n<body>`.
- Upstream error answers become 502, timeouts 504, unreachable upstreams 502, each with a JSON
  body naming `upstream_status` (null when nothing answered).
- Redis is optional: when `cache()` gives None, or a Redis command fails, the request is served
  uncached (failures are counted in `cache_errors`), never answered with an error.
- Concurrent requests for the same key share one Redis lookup and one upstream request.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import parse_qsl, quote, urlencode

from cascade_cli.config import read_secret_file
from cascade_cli.errors import ConfigError

if TYPE_CHECKING:
    import httpx
    import redis.asyncio

    from cascade_cli.config import VeniceSettings

KEY_PREFIX = "cascade:venice:"
MAX_TARGET = 4096                   # longest path + query accepted, in characters
MAX_QUERY_FIELDS = 100
MAX_BODY = 16 * 1024 * 1024         # largest upstream answer relayed, in bytes
ERROR_BODY_CHARS = 500              # how much of a non-JSON upstream error body is quoted
JSON = "application/json"

# Characters left as they are in the forwarded path: unreserved and sub-delimiters, "@" and "/".
# ":" is encoded, so no path can read as a scheme; "%" is encoded, so what arrives decoded is
# sent as it was meant.
_PATH_SAFE = "/!$&'()*+,;=@-._~"
_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*:")
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\]")


@dataclass(frozen=True)
class ProxyResult:
    """What the route answers: status, body and content type, whether the cache served it, and
    for how many more seconds a client may reuse it (0: do not store)."""

    status: int
    body: bytes
    content_type: str
    cache: Literal["HIT", "MISS"]
    max_age: int

    def headers(self) -> dict[str, str]:
        """`X-Cache` and `Cache-Control` for the answer (the route adds Content-Type itself)."""
        control = f"public, max-age={self.max_age}" if self.status == 200 and self.max_age > 0 else "no-store"
        return {"X-Cache": self.cache, "Cache-Control": control}


def _error(status: int, message: str, upstream_status: int | None = None,
           upstream_body: Any = None, include_body: bool = False) -> ProxyResult:
    body: dict[str, Any] = {"error": message, "upstream_status": upstream_status}
    if include_body:
        body["upstream_body"] = upstream_body
    return ProxyResult(status, json.dumps(body).encode(), JSON, "MISS", 0)


def normalise_target(path: str, query: str) -> str | ProxyResult:
    """`path?query` as forwarded upstream and used in the cache key, or a 400/414 ProxyResult.

    `path` is decoded (as Starlette's `{path:path}` gives it) and is re-encoded here; `query`
    is the raw query string, whose parameters are sorted by name (repeated names keep their
    order). Refused: an empty path, `..` segments, a scheme or host (`http:...`, `//host`),
    backslashes and control characters.
    """
    if len(path) + len(query) > MAX_TARGET:
        return _error(414, f"the path and query are longer than {MAX_TARGET} characters")
    path = path.removeprefix("/")
    if not path.strip("/"):
        return _error(400, "give a Venice API path after /api/venice/, e.g. /api/venice/citizens")
    if path.startswith("/") or _SCHEME.match(path):
        return _error(400, "the path must be relative to the Venice API, not a URL")
    if _FORBIDDEN.search(path):
        return _error(400, "the path holds a backslash or a control character")
    if ".." in path.split("/"):
        return _error(400, "the path must not contain '..' segments")
    try:
        pairs = parse_qsl(query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS)
    except ValueError:
        return _error(400, f"the query has more than {MAX_QUERY_FIELDS} parameters")
    pairs.sort(key=lambda pair: pair[0])
    return f"{quote(path, safe=_PATH_SAFE)}?{urlencode(pairs, quote_via=quote)}"


@functools.cache
def _redis_errors() -> tuple[type[BaseException], ...]:
    """What a failed Redis command raises (redis-py's errors, sockets, timeouts)."""
    import redis.exceptions

    return (redis.exceptions.RedisError, OSError, asyncio.TimeoutError)


class VeniceProxy:
    """Forwards GETs to the Venice API from `settings`, caching 200 answers in Redis for `ttl`
    seconds (0 or less: no caching). `cache()` gives the hub's Redis client, or None while Redis
    is down. Call `fetch()` per request and `aclose()` at shutdown.

    Counters for /metrics: `hits`, `misses`, `upstream_errors` (error answers, timeouts and
    unreachable upstreams) and `cache_errors` (failed Redis commands).
    """

    def __init__(self, settings: VeniceSettings, ttl: float,
                 cache: Callable[[], redis.asyncio.Redis | None]) -> None:
        self.settings = settings
        self.ttl = ttl
        self._ttl_ms = max(1, int(ttl * 1000))
        self._cache = cache
        self._client: httpx.AsyncClient | None = None
        self._inflight: dict[str, asyncio.Task[ProxyResult]] = {}
        self.hits = 0
        self.misses = 0
        self.upstream_errors = 0
        self.cache_errors = 0

    def upstream(self) -> httpx.AsyncClient:
        """The HTTP client for the Venice API, made on first use. Call it at start-up to fail
        early: ConfigError for an unreadable api_key_file, a bad token or an unusable URL."""
        if self._client is None:
            from cascade_cli.connect import async_http_client

            token = self.settings.api_key.strip()
            if not token and self.settings.api_key_file:
                token = read_secret_file(self.settings.api_key_file, "venice.api_key_file")
            self._client = async_http_client(self.settings.base_url, timeout=self.settings.timeout,
                                             connect_timeout=self.settings.connect_timeout,
                                             bearer_token=token or None)
        return self._client

    async def fetch(self, path: str, query: str = "") -> ProxyResult:
        """GET `path?query` from the cache or the Venice API (see the module's docstring).

        `path` is the decoded path after /api/venice/, `query` the raw query string. Requests
        for the same key while one is under way wait for it instead of asking again.
        """
        target = normalise_target(path, query)
        if isinstance(target, ProxyResult):
            return target
        task = self._inflight.get(target)
        if task is None:
            task = asyncio.create_task(self._load(target))
            self._inflight[target] = task
            task.add_done_callback(functools.partial(self._forget, target))
        # shield: a caller that goes away does not cancel the load the others wait for.
        return await asyncio.shield(task)

    def _forget(self, target: str, task: asyncio.Task[ProxyResult]) -> None:
        if self._inflight.get(target) is task:
            del self._inflight[target]
        if not task.cancelled():
            task.exception()  # retrieved: no "never retrieved" warning when every caller left

    async def _load(self, target: str) -> ProxyResult:
        key = KEY_PREFIX + target
        cache = self._cache() if self.ttl > 0 else None
        if cache is not None:
            hit = await self._read(cache, key)
            if hit is not None:
                self.hits += 1
                return hit
        self.misses += 1
        result = await self._forward(target)
        if cache is not None and result.status == 200 and len(result.body) <= MAX_BODY:
            try:
                await cache.set(key, b"%d\n%s\n%s" % (result.status, result.content_type.encode(),
                                                      result.body), px=self._ttl_ms)
            except _redis_errors():
                self.cache_errors += 1
        return result

    async def _read(self, cache: redis.asyncio.Redis, key: str) -> ProxyResult | None:
        """The cached answer under `key` with its remaining seconds, or None (absent, unreadable
        or Redis failing)."""
        try:
            async with cache.pipeline(transaction=False) as pipe:
                pipe.get(key)
                pipe.pttl(key)
                value, pttl = await pipe.execute()
        except _redis_errors():
            self.cache_errors += 1
            return None
        if value is None:
            return None
        if isinstance(value, str):  # a client made with decode_responses=True
            value = value.encode()
        status, _, rest = value.partition(b"\n")
        content_type, sep, body = rest.partition(b"\n")
        if not sep or not status.isdigit():
            return None  # not ours: fetch again, and the SET replaces it
        max_age = self._ttl_ms // 1000 if pttl == -1 else max(0, int(pttl) // 1000)
        return ProxyResult(int(status), body, content_type.decode(errors="replace"), "HIT", max_age)

    async def _forward(self, target: str) -> ProxyResult:
        """One GET upstream, its answer or its failure as a ProxyResult."""
        import httpx

        try:
            client = self.upstream()
        except ConfigError as exc:
            return _error(500, f"the Venice proxy is misconfigured: {exc.message}")
        url = f"{self.settings.base_url.rstrip('/')}/{target}"
        try:
            async with client.stream("GET", target) as response:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_BODY:
                        self.upstream_errors += 1
                        return _error(502, f"the Venice API answered more than {MAX_BODY} bytes",
                                      response.status_code)
                    chunks.append(chunk)
        except httpx.TimeoutException as exc:
            self.upstream_errors += 1
            return _error(504, self._failure(exc, url))
        except (httpx.RequestError, httpx.InvalidURL) as exc:
            self.upstream_errors += 1
            return _error(502, self._failure(exc, url))
        body = b"".join(chunks)
        status = response.status_code
        if status >= 400:
            self.upstream_errors += 1
            return _error(502, f"the Venice API answered HTTP {status}", status,
                          _quote_body(body), include_body=True)
        return ProxyResult(status, body, response.headers.get("content-type", JSON), "MISS",
                           int(self.ttl) if status == 200 else 0)

    def _failure(self, exc: Exception, url: str) -> str:
        """One line saying why `url` gave no answer, worded as `cascade venice` words it."""
        import httpx

        from cascade_cli.venice import _unreachable

        cause: BaseException | None = exc
        while cause is not None:  # asyncio's connect hides "refused" under "All connection attempts failed"
            if isinstance(cause, ConnectionRefusedError):
                exc = httpx.ConnectError(f"connection refused ({cause})")
                break
            cause = cause.__cause__ or cause.__context__
        return _unreachable(exc, url, self.settings).message

    async def aclose(self) -> None:
        """Cancel loads under way and close the upstream client."""
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _quote_body(body: bytes) -> Any:
    """An upstream error body for our answer: its JSON when it parses, else its first 500
    characters as text."""
    if len(body) <= 65536:
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            pass
    return body[:ERROR_BODY_CHARS * 4].decode(errors="replace")[:ERROR_BODY_CHARS]
