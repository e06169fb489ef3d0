"""The `cascade bench api` load generator: httpx.AsyncClient, one test per URL.

Each process holds `share.clients` connections (an AsyncClient with a pool of one each, see
`make_clients()`). Closed loop: one coroutine per connection, sending its next request when
the last answered. Open loop: `pacing.pace()` launches one task per request at
its intended time; it takes an idle connection (at most `share.clients` in flight), so a
request that waits for a free connection is late, and that wait is in
`latency` (measured from the intended time) but not in `uncorrected` (measured from the moment
it got a connection and was handed to httpx). `send_lag` is how late the scheduler launched it.

Only 2xx answers count as requests; other statuses and transport errors count as errors, with
`status_2xx` .. `status_5xx` and `transport_errors` counters (`status_other` for anything
outside 200-599, which a conforming server never sends).

Call `preflight()` in the CLI process first (a clean UnreachableError before any process
forks), then run `ApiWorkload` through `runner.run_workload`.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cascade_cli.bench.pacing import Schedule, pace
from cascade_cli.bench.results import Measurement
from cascade_cli.config import mask_url
from cascade_cli.errors import ConfigError, UnreachableError, UsageError

if TYPE_CHECKING:
    import httpx

    from cascade_cli.bench.runner import Control, Share

STATUS_KEYS = ("status_2xx", "status_3xx", "status_4xx", "status_5xx", "status_other", "transport_errors")
_CLASS_KEYS = {2: "status_2xx", 3: "status_3xx", 4: "status_4xx", 5: "status_5xx"}


# ----------------------------------------------------------------------------- pure helpers

def check_base_url(url: str) -> str:
    """The base URL without a trailing slash; UsageError unless it is http(s)://host[:port][/prefix]."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise UsageError(f"invalid --url {mask_url(url)!r}: {exc}", "give http://HOST:PORT") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"invalid --url {mask_url(url)!r}: it needs http:// or https:// and a host",
                         "give http://HOST:PORT, e.g. http://127.0.0.1:8000")
    return url.rstrip("/")


def resolve_paths(base_url: str, text: str) -> tuple[list[str], list[str]]:
    """Test names and full URLs from a comma list of paths (joined to `base_url`, prefix kept)
    or full http(s) URLs. UsageError for an empty list or a path given twice."""
    names: list[str] = []
    urls: list[str] = []
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        if item in names:
            raise UsageError(f"path {item!r} is given twice in --paths", "list each path once")
        if item.startswith(("http://", "https://")):
            check_base_url(item)
            url = item
        else:
            url = base_url + "/" + item.lstrip("/")
        names.append(item)
        urls.append(url)
    if not names:
        raise UsageError("--paths is empty", "give one or more paths, e.g. --paths /health,/api/channels")
    return names, urls


def parse_headers(items: Sequence[str]) -> list[tuple[str, str]]:
    """`Name: value` strings as pairs; UsageError for one without a colon or with a bad name."""
    pairs = []
    for item in items:
        name, sep, value = item.partition(":")
        name = name.strip()
        if not sep or not name or any(c in name for c in " \t()<>@,;\\\"/[]?={}") or not name.isascii():
            raise UsageError(f"cannot read --header {name or item!r}: expected 'Name: value'",
                             "e.g. --header 'X-Request-Source: bench'")
        if "\r" in value or "\n" in value:
            raise UsageError(f"--header {name!r} has a line break in its value", "give the value on one line")
        pairs.append((name, value.strip()))
    return pairs


def json_body(text: str, source: str) -> bytes:
    """The body as UTF-8 bytes after checking it is JSON; UsageError says where it is not."""
    try:
        json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{source} is not valid JSON: {exc}",
                         'give a JSON document, e.g. --body \'{"data": {"n": 1}}\'') from None
    return text.encode("utf-8")


def status_key(status: int) -> str:
    return _CLASS_KEYS.get(status // 100, "status_other")


def root_cause(exc: BaseException) -> BaseException:
    """The innermost exception in `exc`'s chain (httpx wraps anyio, which wraps the OSError)."""
    seen = {id(exc)}
    while True:
        inner = exc.__cause__ or exc.__context__
        if inner is None or id(inner) in seen:
            return exc
        seen.add(id(inner))
        exc = inner


def describe_transport_error(exc: BaseException) -> str:
    """`ConnectError: [Errno 111] Connect call failed ...` for an error sample: httpx's type with
    the innermost cause's text. A LocalProtocolError's text may quote a header (and headers
    carry tokens): only its type is kept."""
    name = type(exc).__name__
    if name == "LocalProtocolError":
        return name
    root = root_cause(exc)
    text = str(root) or str(exc)
    return f"{name}: {text}" if text else name


# ----------------------------------------------------------------------------- the client

def make_clients(count: int, timeout: float, token: str | None, headers: list[tuple[str, str]],
                 json_content: bool) -> list[httpx.AsyncClient]:
    """`count` load clients, each a pool of one kept-alive connection, sharing one TLS context;
    cascade's User-Agent, the Bearer token (checked by connect), the extra headers last so they
    win. No proxies from the environment and no redirects: each request measured is one
    exchange with the target.

    One client per connection rather than one shared pool: httpcore's pool scans every
    connection (a poll() each) to place every request, which cost 2.5 times the CPU per request
    at 20 connections here (1.3 ms against 0.5 ms) and grows with the pool."""
    import httpx

    from cascade_cli.connect import http_headers

    merged = httpx.Headers(http_headers(token))
    if json_content:
        merged["Content-Type"] = "application/json"
    for name, value in headers:
        merged[name] = value
    tls = httpx.create_ssl_context()  # loading the CA bundle takes ~30 ms: once, not per client
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    return [httpx.AsyncClient(headers=merged, timeout=httpx.Timeout(timeout), trust_env=False, verify=tls,
                              follow_redirects=False, limits=limits) for _ in range(count)]


def _unreachable(exc: Exception, url: str, timeout: float) -> UnreachableError:
    import httpx

    parts = urlsplit(url)
    host = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    text = describe_transport_error(exc)
    hint = "check --url; is `cascade serve` running there? (start it with `cascade serve`)"
    if isinstance(exc, httpx.TimeoutException):
        message = f"no answer from {host} within {timeout:g} s ({type(exc).__name__})"
        hint = "check that the server is up, or raise --timeout"
    elif isinstance(root_cause(exc), ConnectionRefusedError) or "refused" in text.lower():
        message = f"connection refused by {host}"
    elif isinstance(exc, httpx.ConnectError) and ("SSL" in text or "CERTIFICATE" in text.upper()):
        message = f"TLS handshake with {host} failed: {text}"
        hint = "check the scheme (http vs https) and the server's certificate"
    else:
        message = f"cannot reach {host}: {text}"
    return UnreachableError(message, hint)


@dataclass(frozen=True)
class Answer:
    """What the preflight request got back."""

    url: str
    status: int
    server: str


def preflight(urls: Sequence[str], method: str, body: bytes | None, timeout: float, token: str | None,
              headers: list[tuple[str, str]]) -> list[Answer]:
    """One request to the first URL of each distinct origin, with the client the load uses, so
    an unreachable host is one UnreachableError before any process starts. Non-2xx answers are
    returned, not raised (the benchmark counts them as errors). ConfigError for a bad token."""
    import httpx

    firsts: dict[tuple[str, str], str] = {}
    for url in urls:
        parts = urlsplit(url)
        firsts.setdefault((parts.scheme, parts.netloc), url)

    async def probe() -> list[Answer]:
        answers = []
        async with make_clients(1, timeout, token, headers, body is not None)[0] as client:
            for url in firsts.values():
                try:
                    response = await client.request(method, url, content=body)
                except httpx.InvalidURL as exc:
                    raise UsageError(f"invalid URL {mask_url(url)}: {exc}", "check --url and --paths") from None
                except httpx.UnsupportedProtocol as exc:
                    raise ConfigError(f"unusable URL {mask_url(url)}: {exc}", "give an http:// or https:// URL") \
                        from None
                except httpx.HTTPError as exc:
                    raise _unreachable(exc, url, timeout) from None
                answers.append(Answer(url, response.status_code, response.headers.get("server", "")))
        return answers

    return asyncio.run(probe())


# ----------------------------------------------------------------------------- the workload

def _http_error() -> type[Exception]:
    """httpx's base of every transport and decoding error (imported in the load process)."""
    import httpx

    return httpx.HTTPError


@dataclass
class ApiWorkload:
    """The URLs to benchmark and how; picklable, one copy per load process (the client is made
    in the process, on its first test, and kept for the others)."""

    tests: list[str]
    urls: list[str]
    method: str
    body: bytes | None
    headers: list[tuple[str, str]] = field(repr=False)  # may carry secrets, as the token does
    token: str | None = field(repr=False)
    timeout: float = 10.0
    clients: list[Any] = field(default_factory=list, repr=False)

    async def run(self, test: str, share: Share, control: Control) -> Measurement:
        if not self.clients:
            self.clients = make_clients(share.clients, self.timeout, self.token, self.headers,
                                        self.body is not None)
        return await Driver(self, share, control, test, self.urls[self.tests.index(test)]).run()

    async def close(self) -> None:
        clients, self.clients = self.clients, []
        await asyncio.gather(*(client.aclose() for client in clients), return_exceptions=True)


class Driver:
    """One test on one process: sends, measures, counts."""

    def __init__(self, workload: ApiWorkload, share: Share, control: Control, test: str, url: str) -> None:
        self.workload = workload
        self.share = share
        self.control = control
        self.url = url
        self.m = Measurement(test=test)
        self.stopped = False
        self.measure_from = 0
        self.budget = share.requests  # measured requests left to send (None: until the deadline)
        self.cpu0 = 0.0

    async def run(self) -> Measurement:
        start = await self.control.wait_start()  # the instant every process starts this test
        self.cpu0 = time.process_time()
        ticker = self.control.watch(lambda: self.m.ops + self.m.errors, self._stop)
        try:
            if self.share.rate:
                await self._open_loop(start)
            else:
                await self._closed_loop(start)
        finally:
            ticker.cancel()
        m = self.m
        end = m.ended or time.monotonic_ns()
        m.finish(self.measure_from / 1e9, end / 1e9, time.process_time() - self.cpu0)
        m.interrupted = self.control.stopping()
        return m

    def _stop(self) -> None:
        """The parent said stop: no new request after it."""
        self.stopped = True

    def _start_window(self, measure_from: int) -> None:
        """Measure from `measure_from` (monotonic ns), CPU included: the warmup's is not counted."""
        self.measure_from = measure_from
        wait = (measure_from - time.monotonic_ns()) / 1e9
        if wait > 0:
            def mark() -> None:
                self.cpu0 = time.process_time()

            asyncio.get_running_loop().call_later(wait, mark)

    def _answered(self, status: int, now: int) -> bool:
        """Count one measured answer; True when it is a success (2xx)."""
        m = self.m
        m.ended = now
        key = status_key(status)
        m.counters[key] = m.counters.get(key, 0) + 1
        if key == "status_2xx":
            m.ops += 1
            return True
        m.add_error(f"HTTP {status}")
        return False

    def _failed(self, exc: BaseException) -> None:
        m = self.m
        m.ended = time.monotonic_ns()
        m.counters["transport_errors"] = m.counters.get("transport_errors", 0) + 1
        m.add_error(describe_transport_error(exc))

    # ------------------------------------------------------------------ closed loop

    async def _closed_loop(self, start: int) -> None:
        share = self.share
        self._start_window(start + int(share.warmup * 1e9))
        deadline = self.measure_from + int(share.duration * 1e9) if share.duration else None
        method, url, body = self.workload.method, self.url, self.workload.body
        record = self.m.latency.record
        clock = time.monotonic_ns
        failure = _http_error()

        async def client_loop(client: httpx.AsyncClient) -> None:
            request = client.request
            while not self.stopped:
                sent = clock()
                if deadline is not None and sent >= deadline:
                    return
                measured = sent >= self.measure_from
                if measured and self.budget is not None:
                    if self.budget <= 0:
                        return
                    self.budget -= 1
                try:
                    response = await request(method, url, content=body)
                except failure as exc:
                    if measured:
                        self._failed(exc)
                    else:
                        await asyncio.sleep(0.01)  # a dead target during warmup: do not spin
                    continue
                if measured:
                    now = clock()
                    if self._answered(response.status_code, now):
                        record(now - sent)

        await asyncio.gather(*(client_loop(client) for client in self.workload.clients))

    # ------------------------------------------------------------------ open loop

    async def _open_loop(self, start: int) -> None:
        share = self.share
        assert share.rate
        loop = asyncio.get_running_loop()
        schedule = Schedule(share.rate, start, share.rate_offset)
        warm = int(share.warmup * share.rate)  # requests sent during the warmup
        limit = warm + share.requests if share.requests is not None else None
        self._start_window(schedule.due_at(warm))
        until = self.measure_from + int(share.duration * 1e9) if share.duration else None
        method, url, body = self.workload.method, self.url, self.workload.body
        latency, uncorrected, lag = self.m.latency.record, self.m.uncorrected.record, self.m.send_lag.record
        clock = time.monotonic_ns
        failure = _http_error()
        idle: asyncio.Queue[httpx.AsyncClient] = asyncio.Queue()
        for client in self.workload.clients:
            idle.put_nowait(client)
        tasks: set[asyncio.Task[None]] = set()

        async def one(intended: int, measured: bool) -> None:
            client = await idle.get()
            try:
                if self.stopped:
                    return
                sent = clock()
                try:
                    response = await client.request(method, url, content=body)
                except failure as exc:
                    if measured:
                        self._failed(exc)
                    return
                if measured:
                    now = clock()
                    if self._answered(response.status_code, now):
                        latency(now - intended)
                        uncorrected(now - sent)
            finally:
                idle.put_nowait(client)

        def send(intended: int) -> None:
            measured = intended >= self.measure_from
            if measured:
                lag(clock() - intended)
            task = loop.create_task(one(intended, measured))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        await pace(schedule, send, limit=limit, until_ns=until, stopping=lambda: self.stopped)
        while tasks:
            await asyncio.wait(set(tasks))
