"""The `cascade bench ws` load generators: hub fan-out (publish -> every subscriber) and echo.

Hub workload, in every test and every process (the processes keep in step through `Shared`):
1. process 0 reads the hub's /metrics; all meet;
2. each process connects its share of the subscribers (global ids index, index + P, ...;
   subscriber g listens on channels[g % C] at /ws/{channel}) and of the publishers (/ws), paced
   by --connect-rate; connections of earlier tests stay (a ramp step adds only the new ones).
   A connect is timed from the TCP connect to the hub's `connected` message; all meet, so
   nothing is published before every subscriber is in;
3. publishers publish events whose data carries the run id (`b`), test index (`k`), publisher
   (`p`), sequence number (`s`), send time (`t`: `time.monotonic_ns()`, the intended time in the
   open loop) and actual send time (`a`); event s of publisher q goes to channels[(q + s) % C].
   Closed loop: a publisher sends its next event when the `published` ack of the last arrived;
   open loop: `pacing.pace()` at this process's part of --rate. Warmup events carry `w`;
4. each process adds its acknowledged events per channel to the shared table; all meet; now every
   process knows what each of its subscribers must get (every event of its channel) and waits up
   to `drain` seconds for it; all meet, process 0 reads /metrics again, all meet.
Subscribers measure latency = arrival - `t` (and arrival - `a`: uncorrected, open loop), and
count unique events, duplicates and out-of-order arrivals per (subscriber, publisher); events of
other runs, other tests and the warmup are ignored. A frame's decoded events are cached by its
bytes: the hub writes the same bytes to every subscriber, so a process decodes each once.

Echo workload: clients send timestamped text messages to any echo server and measure each
echo (closed loop, or --rate on a fixed schedule); every echo must equal what was sent.

Call `preflight_hub()` / `preflight_echo()` in the CLI process first (clean errors), build a
`WsWorkload` with a `Shared`, run it through `runner.run_workload`, turn each merged
measurement into a row with `hub_row()` / `echo_row()`.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

from cascade_cli.bench.histogram import Histogram
from cascade_cli.bench.pacing import Schedule, pace
from cascade_cli.bench.results import Measurement, latency_row, summarize
from cascade_cli.bench.runner import START_DELAY_NS, mp_context, sleep_until, split
from cascade_cli.bench.ws_client import (
    ConnectionClosed,
    Endpoint,
    HandshakeError,
    WebSocketClient,
    open_client,
    split_url,
)
from cascade_cli.errors import CascadeError, ConfigError, OperationalError, RemoteError, UnreachableError

if TYPE_CHECKING:
    from cascade_cli.bench.runner import Control, Share

CONNECT_TIMEOUT = 10.0
CONNECT_CONCURRENCY = 64
CACHE_MAX = 4096             # frames, and
CACHE_BYTES = 8 * 1024 * 1024  # bytes of frames, remembered per process
PHASES = 5              # per test: start, connected, published, drained, server read
MEET_TIMEOUT = 3600.0
STOP_GRACE = 2.0
SKIPPED = "skipped"
CONNECT = "connect"          # the Measurement histogram of connect times
# Error samples that are not failed requests (their count is 0): the CLI prints them as warnings
# and takes them out of the samples (`take_notes()`), so `errors` counts failed requests only.
CONNECT_NOTE = "connect: "
DISCONNECT_NOTE = "disconnect: "
OTHER_NOTE = "note: "
NOTES = (CONNECT_NOTE, DISCONNECT_NOTE, OTHER_NOTE)

CLOSE_HINTS = {
    4000: "list the hub's channels with GET /api/channels; start it with --channels NAME or "
          "--allow-any-channel",
    4401: "give the hub's token with CASCADE_SERVE_TOKEN, serve.token_file or --token-file",
    1013: "fewer --clients or a lower --connect-rate, or raise the hub's --max-connections / --connect-rate",
}


# ---------------------------------------------------------------------------------- pure helpers


@dataclass(frozen=True)
class HubUrls:
    """A hub's WebSocket base (`ws://host:port[/prefix]`) and HTTP base."""

    ws: str
    http: str

    def channel(self, name: str) -> str:
        return f"{self.ws}/ws/{quote(name, safe='')}"

    @property
    def ops(self) -> str:
        return f"{self.ws}/ws"

    @property
    def metrics(self) -> str:
        return f"{self.http}/metrics"


def hub_urls(url: str) -> HubUrls:
    """The bases of a hub given as http(s):// or ws(s):// with an optional path prefix (a
    trailing /ws is dropped). ConfigError for anything else."""
    parts = urlsplit(url.strip())
    schemes = {"http": ("ws", "http"), "https": ("wss", "https"), "ws": ("ws", "http"),
               "wss": ("wss", "https")}
    if parts.scheme not in schemes or not parts.hostname:
        raise ConfigError(f"cannot use {url!r} as the hub's URL",
                          "give http://HOST:PORT (or ws://HOST:PORT), e.g. http://127.0.0.1:8000")
    try:
        _ = parts.port
    except ValueError as exc:
        raise ConfigError(f"cannot use {url!r} as the hub's URL: {exc}", "give http://HOST:PORT") from None
    path = parts.path.rstrip("/")
    path = path.removesuffix("/ws")
    if "/ws/" in path + "/":
        raise ConfigError(f"give the hub's base URL, not a channel's: {url!r}",
                          "e.g. --url http://127.0.0.1:8000 --channels cascade-events")
    ws_scheme, http_scheme = schemes[parts.scheme]
    return HubUrls(urlunsplit((ws_scheme, parts.netloc, path, "", "")),
                   urlunsplit((http_scheme, parts.netloc, path, "", "")))


def auth_headers(token: str | None) -> list[tuple[str, str]]:
    """The handshake's extra headers: cascade's User-Agent, and Authorization: Bearer when a
    token is given (checked by `connect.http_headers`: ConfigError if it cannot go in a header,
    without showing it)."""
    from cascade_cli.connect import USER_AGENT, http_headers

    headers = [("User-Agent", USER_AGENT)]
    bearer = http_headers(token).get("Authorization")
    if bearer:
        headers.append(("Authorization", bearer))
    return headers


def decode_events(payload: bytes, run_id: str, test_index: int) -> tuple[tuple[int, int, int, int], ...]:
    """(publisher, seq, t, a) of each measured event of this run and test in an `event` or
    `batch` message; () for anything else (other runs, warmup events, other message types)."""
    try:
        message = json.loads(payload)
    except ValueError:
        return ()
    if type(message) is not dict:
        return ()
    kind = message.get("type")
    if kind == "event":
        events: Any = (message,)
    elif kind == "batch":
        events = message.get("events")
        if type(events) is not list:
            return ()
    else:
        return ()
    out = []
    for event in events:
        data = event.get("data") if type(event) is dict else None
        if type(data) is dict and data.get("b") == run_id and data.get("k") == test_index and "w" not in data:
            try:
                out.append((int(data["p"]), int(data["s"]), int(data["t"]), int(data.get("a", 0))))
            except (KeyError, TypeError, ValueError):
                continue
    return tuple(out)


METRIC_KEYS = {
    "cascade_hub_events_published_total": "server_events_published",
    "cascade_hub_events_delivered_total": "server_events_delivered",
    "cascade_hub_events_dropped_total": "server_events_dropped",
    "cascade_hub_slow_clients_disconnected_total": "server_slow_disconnects",
    "cascade_hub_rejected_connections_total": "server_rejected_connections",
    "cascade_hub_connections": "server_connections",
    "cascade_hub_broadcast_latency_seconds_sum": "broadcast_sum",
    "cascade_hub_broadcast_latency_seconds_count": "broadcast_count",
}
PER_CHANNEL = {"cascade_hub_events_published_total", "cascade_hub_events_delivered_total",
               "cascade_hub_events_dropped_total"}
SERVER_KEYS = ("server_connections", "server_events_published", "server_events_delivered",
               "server_events_dropped", "server_slow_disconnects", "server_rejected_connections",
               "server_broadcast_mean_ms")


def parse_metrics(text: str, channels: list[str]) -> dict[str, float]:
    """The hub figures this benchmark reports, from Prometheus text (per-channel counters summed
    over `channels` only); {} when none is there (not a cascade hub)."""
    wanted = set(channels)
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_part, _, value_text = line.rpartition(" ")
        name, _, labels = name_part.partition("{")
        key = METRIC_KEYS.get(name)
        if key is None:
            continue
        if name in PER_CHANNEL:
            channel = _label(labels, "channel")
            if channel is not None and channel not in wanted:
                continue
        try:
            value = float(value_text)
        except ValueError:
            continue
        out[key] = out.get(key, 0.0) + value
    return out


def _label(labels: str, name: str) -> str | None:
    marker = f'{name}="'
    start = labels.find(marker)
    if start < 0:
        return None
    start += len(marker)
    end = labels.find('"', start)
    return labels[start:end] if end >= 0 else None


def server_counters(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    """Counter deltas (and the connections gauge after) as Measurement counters."""
    if not before or not after:
        return {}
    out = {"server_metrics": 1, "server_connections": int(after.get("server_connections", 0))}
    for key in ("server_events_published", "server_events_delivered", "server_events_dropped",
                "server_slow_disconnects", "server_rejected_connections", "broadcast_count"):
        out[key] = int(after.get(key, 0) - before.get(key, 0))
    out["broadcast_sum_ns"] = int((after.get("broadcast_sum", 0) - before.get("broadcast_sum", 0)) * 1e9)
    return out


def _ratio(a: float, b: float, digits: int = 1) -> float | None:
    return round(a / b, digits) if b > 0 else None


HUB_KEYS = ("clients", "publishers", "connect_mean_ms", "connect_stddev_ms", "connect_min_ms",
            "connect_p50_ms", "connect_p90_ms", "connect_p99_ms", "connect_p999_ms", "connect_max_ms",
            "connect_errors", "disconnects", "expected", "delivered", "delivered_per_sec", "reach", "lost",
            "duplicates", "out_of_order", *SERVER_KEYS)
ECHO_KEYS = ("clients", "connect_mean_ms", "connect_stddev_ms", "connect_min_ms", "connect_p50_ms",
             "connect_p90_ms", "connect_p99_ms", "connect_p999_ms", "connect_max_ms", "connect_errors",
             "disconnects")


def connect_row(m: Measurement) -> dict[str, float | None]:
    """connect_mean_ms .. connect_max_ms: the connect times of the connections opened in the test."""
    return latency_row(m.histograms.get(CONNECT, Histogram()), "connect_")


def hub_row(m: Measurement, *, target_rate: float | None) -> dict[str, Any]:
    """The row of one hub test: the common keys (requests = acknowledged publishes, latency =
    publish to arrival at a subscriber) plus HUB_KEYS."""
    row = summarize(m, target_rate=target_rate)
    c = m.counters
    expected, delivered = c.get("expected", 0), c.get("delivered", 0)
    duration = m.duration
    row.update({"clients": c.get("clients", 0), "publishers": c.get("publishers", 0),
                **connect_row(m),
                "connect_errors": c.get("connect_errors", 0), "disconnects": c.get("disconnects", 0),
                "expected": expected, "delivered": delivered,
                "delivered_per_sec": _ratio(delivered, duration),
                "reach": _ratio(delivered, expected, 6), "lost": max(expected - delivered, 0),
                "duplicates": c.get("duplicates", 0), "out_of_order": c.get("out_of_order", 0)})
    if c.get("server_metrics"):
        for key in SERVER_KEYS[:-1]:
            row[key] = c.get(key, 0)
        count = c.get("broadcast_count", 0)
        mean = c.get("broadcast_sum_ns", 0) / count / 1e6 if count else None
        row["server_broadcast_mean_ms"] = round(mean, 6) if mean is not None else None
    else:
        row.update({key: None for key in SERVER_KEYS})
    return row


def echo_row(m: Measurement, *, target_rate: float | None) -> dict[str, Any]:
    """The row of the echo test: the common keys (latency = round trip) plus ECHO_KEYS."""
    row = summarize(m, target_rate=target_rate)
    c = m.counters
    row.update({"clients": c.get("clients", 0), **connect_row(m),
                "connect_errors": c.get("connect_errors", 0), "disconnects": c.get("disconnects", 0)})
    return row


def take_notes(m: Measurement) -> list[str]:
    """Remove the samples that are not failed requests (connect failures, closed connections)
    from `m.error_samples` and return them without their prefix."""
    notes = [s for s in m.error_samples if s.startswith(NOTES)]
    m.error_samples = [s for s in m.error_samples if not s.startswith(NOTES)]
    return [s.split(": ", 1)[1] for s in notes]


def describe_failure(exc: BaseException, url: str) -> CascadeError:
    """A connect or handshake failure as the error to show."""
    if isinstance(exc, CascadeError):
        return exc
    if isinstance(exc, ConnectionClosed):
        if exc.code == 4000:
            return RemoteError(f"the hub refused the channel at {url}: {exc.reason or 'closed 4000'}",
                               CLOSE_HINTS[4000])
        if exc.code == 4401:
            return RemoteError(f"the hub at {url} refused the connection: {exc.reason or 'unauthorized'} "
                               "(close 4401)", CLOSE_HINTS[4401])
        if exc.code == 1006:
            return UnreachableError(f"{url} dropped the connection before it was ready"
                                    + (f": {exc.reason}" if exc.reason else ""),
                                    "check that a WebSocket server that speaks the hub's protocol listens "
                                    "there")
        reason = f" {exc.reason!r}" if exc.reason else ""
        return RemoteError(f"{url} closed the connection: {exc.code}{reason}", CLOSE_HINTS.get(exc.code))
    if isinstance(exc, HandshakeError):
        hint = ("check the URL's path (the hub serves /ws and /ws/{channel}) and the hub's --allow-origin"
                if exc.status in (403, 404) else "check that a WebSocket server listens at this URL")
        return RemoteError(f"WebSocket handshake with {url} failed: {exc}", hint)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return UnreachableError(f"no WebSocket answer from {url} within {CONNECT_TIMEOUT:g} s",
                                "check the URL, and that the server is not overloaded")
    if isinstance(exc, OSError):
        if exc.errno == 24:
            return OperationalError(f"cannot open more connections: {exc.strerror}",
                                    "raise the open-file limit (ulimit -n) or use fewer --clients")
        reason = os.strerror(exc.errno) if exc.errno else (exc.strerror or str(exc) or type(exc).__name__)
        return UnreachableError(f"cannot connect to {url}: {reason}",
                                "start the hub with 'cascade serve' or give its address with --url")
    return OperationalError(f"connecting to {url} failed: {type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------------------- processes in step


class Shared:
    """What the load processes share (created before they start): arrival counts per test phase,
    acknowledged events per test and channel, and the ramp's verdict per test (0 pending, 1 go
    on, 2 stop: the parent sets it from each step's merged result)."""

    def __init__(self, tests: int, channels: int, processes: int) -> None:
        ctx = mp_context()
        self.parent = os.getpid()
        self.processes = processes
        self.channels = channels
        self.lock = ctx.Lock()
        self.arrived = ctx.RawArray("i", max(1, tests) * PHASES)
        self.stamps = ctx.RawArray("q", max(1, tests) * PHASES)
        self.published = ctx.RawArray("q", max(1, tests * channels))
        self.verdict = ctx.RawArray("b", max(1, tests))

    async def meet(self, test: int, phase: int, control: Control) -> bool:
        """Arrive at (test, phase) and wait for every process; False when stopping cut the wait
        short (Ctrl-C or a failed process). `stamp()` then tells the common instant to go on."""
        slot = test * PHASES + phase
        with self.lock:
            self.arrived[slot] += 1
            if self.arrived[slot] == self.processes:  # the last to arrive sets the common start
                self.stamps[slot] = time.monotonic_ns() + START_DELAY_NS
        deadline = time.monotonic() + MEET_TIMEOUT
        grace = 0.0
        while self.arrived[slot] < self.processes:
            now = time.monotonic()
            if control.stopping():
                grace = grace or now + STOP_GRACE
                if now > grace:
                    return False
            if now > deadline:
                raise OperationalError("the load processes fell out of step", "rerun with --processes 1")
            self.check_parent()
            await asyncio.sleep(0.002)
        return True

    def check_parent(self) -> None:
        """Raise when the process that started the run is gone (nobody would ever answer)."""
        if os.getppid() != self.parent and os.getpid() != self.parent:
            raise OperationalError("the benchmark's main process is gone")

    def stamp(self, test: int, phase: int) -> int:
        """The instant (monotonic ns) the last process to arrive at (test, phase) set; 0 if none."""
        return int(self.stamps[test * PHASES + phase])

    def add_published(self, test: int, counts: list[int]) -> None:
        with self.lock:
            for channel, n in enumerate(counts):
                self.published[test * self.channels + channel] += n

    def published_of(self, test: int) -> list[int]:
        return [self.published[test * self.channels + c] for c in range(self.channels)]

    async def verdict_of(self, test: int, control: Control) -> int:
        """The parent's verdict on `test` (waits for it)."""
        while not self.verdict[test]:
            if control.stopping():
                return 2
            self.check_parent()
            await asyncio.sleep(0.002)
        return int(self.verdict[test])


# ---------------------------------------------------------------------------------- connections


class HubClient(WebSocketClient):
    """A connection to the hub; `welcomed` resolves with the arrival time of `connected`."""

    def __init__(self, endpoint: Endpoint, fleet: Fleet, gid: int, channel: int, *,
                 headers: list[tuple[str, str]], compression: bool) -> None:
        super().__init__(endpoint, headers=headers, compression=compression)
        self.fleet = fleet
        self.gid = gid
        self.channel = channel
        self.welcomed: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.alive = False
        # subscriber state, per test
        self.seen: list[bytearray] = []
        self.last: list[int] = []
        # publisher state, per test
        self.seq = 0
        self.quota = -1
        self.inflight: deque[tuple[int, bool]] = deque()
        self.prefixes: list[bytes] = []

    def on_message(self, opcode: int, payload: bytes, now_ns: int) -> None:
        if not self.alive:
            try:
                kind = json.loads(payload).get("type")
            except (ValueError, AttributeError):
                kind = None
            if kind == "connected" and not self.welcomed.done():
                self.alive = True
                self.welcomed.set_result(now_ns)
            return
        current = self.fleet.current
        if current is not None:
            current.on_message(self, payload, now_ns)

    def on_close(self, code: int, reason: str) -> None:
        if not self.welcomed.done():
            self.welcomed.set_exception(ConnectionClosed(code, reason))
        was_alive, self.alive = self.alive, False
        if was_alive and self.fleet.current is not None:
            self.fleet.current.on_lost(self, code, reason)


class EchoClient(WebSocketClient):
    """A connection to an echo server."""

    def __init__(self, endpoint: Endpoint, fleet: Fleet, gid: int, *, headers: list[tuple[str, str]],
                 compression: bool) -> None:
        super().__init__(endpoint, headers=headers, compression=compression)
        self.fleet = fleet
        self.gid = gid
        self.alive = False
        self.quota = -1
        self.inflight: deque[tuple[int, int, bool, bytes]] = deque()
        self.opened_ns = 0

    def on_message(self, opcode: int, payload: bytes, now_ns: int) -> None:
        current = self.fleet.current
        if current is not None:
            current.on_message(self, payload, now_ns)

    def on_close(self, code: int, reason: str) -> None:
        was_alive, self.alive = self.alive, False
        if was_alive and self.fleet.current is not None:
            self.fleet.current.on_lost(self, code, reason)


class Fleet:
    """This process's connections, kept across tests, and the test they report to."""

    def __init__(self) -> None:
        self.subscribers: list[HubClient] = []
        self.publishers: list[HubClient] = []
        self.echoes: list[EchoClient] = []
        self.subscribers_made = 0
        self.publishers_made = 0
        self.current: Any = None

    def all(self) -> list[WebSocketClient]:
        return [*self.subscribers, *self.publishers, *self.echoes]


async def _open(make: Any, endpoint: Endpoint, url: str, hub: bool) -> tuple[Any, int, CascadeError | None]:
    """(client, connect ns, None) or (None, 0, error)."""
    start = time.monotonic_ns()
    client = None
    try:
        client = await open_client(make, endpoint, timeout=CONNECT_TIMEOUT)
        if hub:
            ready = await asyncio.wait_for(asyncio.shield(client.welcomed), CONNECT_TIMEOUT)
        else:
            client.alive = True
            ready = client.opened_ns or time.monotonic_ns()
    except (TimeoutError, OSError, HandshakeError, ConnectionClosed) as exc:
        if client is not None:
            client.abort()
        return None, 0, describe_failure(exc, url)
    return client, ready - start, None


async def connect_many(specs: list[tuple[Any, Endpoint, str]], *, hub: bool, rate: float | None,
                       hist: Histogram) -> tuple[list[Any], list[CascadeError]]:
    """Open every (factory, endpoint, url): at most CONNECT_CONCURRENCY at once, started `rate`
    per second when given. Returns the clients that connected (in order) and the failures."""
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    start = time.monotonic()

    async def one(spec: tuple[Any, Endpoint, str]) -> tuple[Any, int, CascadeError | None]:
        try:
            return await _open(spec[0], spec[1], spec[2], hub)
        finally:
            gate.release()

    tasks = []
    for i, spec in enumerate(specs):
        if rate:
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        await gate.acquire()
        tasks.append(asyncio.ensure_future(one(spec)))
    results = await asyncio.gather(*tasks)
    clients, failures = [], []
    for client, ns, error in results:
        if client is None:
            assert error is not None
            failures.append(error)
        else:
            hist.record(ns)
            clients.append(client)
    return clients, failures


def _raise_open_files_limit() -> None:
    """Let this process open as many connections as the hard limit allows."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        if soft != resource.RLIM_INFINITY and target > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ImportError, ValueError, OSError):
        pass


# ---------------------------------------------------------------------------------- the workload


@dataclass
class WsWorkload:
    """What to run; picklable, one copy per load process. `clients` maps each test to its total
    number of subscribers (hub) or echo clients; `url` is the hub's ws base or the echo URL."""

    tests: list[str]
    mode: str
    url: str
    clients: dict[str, int]
    channels: list[str]
    publishers: int
    rate: float | None
    messages: int | None
    duration: float | None
    warmup: float
    payload_size: int
    compression: bool
    connect_rate: float | None
    token: str | None
    drain: float
    run_id: str
    metrics_url: str | None
    ramp: bool
    shared: Shared
    fleet: Fleet | None = field(default=None, repr=False)

    async def run(self, test: str, share: Share, control: Control) -> Measurement:
        if self.fleet is None:
            _raise_open_files_limit()
            self.fleet = Fleet()
        index = self.tests.index(test)
        if self.ramp and index > 0 and await self.shared.verdict_of(index - 1, control) != 1:
            self.shared.verdict[index] = 2   # the steps after a skipped one are skipped too
            return Measurement(test=test, counters={SKIPPED: 1})
        if self.mode == "echo":
            return await EchoRound(self, self.fleet, test, share, control).run()
        return await HubRound(self, self.fleet, test, index, share, control).run()

    async def close(self) -> None:
        if self.fleet is None:
            return
        self.fleet.current = None
        clients = self.fleet.all()
        for client in clients:
            client.close()
        if clients:
            await asyncio.wait([asyncio.ensure_future(asyncio.shield(c.closed)) for c in clients],
                               timeout=2.5)
        self.fleet = None

    def headers(self) -> list[tuple[str, str]]:
        return auth_headers(self.token)


def _local_ids(total: int, share: Share) -> list[int]:
    """The global ids this process owns out of `total`: index, index + P, ..."""
    return list(range(share.index, total, share.processes))


class Round:
    """What the hub and echo tests share: the measurement, the ticker, bounded waits, and the
    sending loops (`_drive()`: open or closed loop over the clients that send, whose `_send()`
    the subclass writes)."""

    def __init__(self, workload: WsWorkload, fleet: Fleet, test: str, share: Share, control: Control) -> None:
        self.w = workload
        self.fleet = fleet
        self.share = share
        self.control = control
        self.m = Measurement(test=test)
        self.record = self.m.latency.record
        self.record_uncorrected = self.m.uncorrected.record
        self.open_loop = bool(workload.rate)
        self.measure_from = 0
        self.deadline = 0
        self.sending = False
        self.running: set[int] = set()      # closed loop: connections still sending
        self.answers = 0                     # acks or echoes so far (the stall watchdog reads it)
        self.end_ns = 0                      # last measured answer or arrival
        self.connect_errors = 0
        self.disconnects = 0
        self.connect_hist = self.m.histograms[CONNECT] = Histogram()
        self.sent_all: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def _watch(self) -> asyncio.Future[None]:
        """The ticker: progress for the parent, and its stop signal (send nothing more)."""
        return self.control.watch(lambda: self.m.ops, self._stop)

    def _stop(self) -> None:
        if self.sending:
            self.sending = False
            self._settle()

    def _settle(self) -> None:
        """Called whenever sending may have ended or an answer arrived."""

    def _send(self, client: Any, intended: int, actual: int, measured: bool) -> None:
        """Send one message on `client`, measured from `intended` (and `actual`: uncorrected)."""
        raise NotImplementedError

    def _note_connect_failures(self, failures: list[CascadeError], none_left: bool) -> None:
        """Note the connections that failed; raise the first failure when this process has no
        connection at all."""
        if not failures:
            return
        self.m.add_error(f"{CONNECT_NOTE}{len(failures):,} connections failed, for example: "
                         f"{failures[0].message}", 0)
        self.connect_errors = len(failures)
        if none_left:
            raise failures[0]

    async def _drive(self, start: int, total: int, clients: list[Any]) -> None:
        """Send this process's part of the test over `clients` (global ids `gid` out of `total`):
        in the open loop on the schedule that starts at `start` (this process's part of the rate;
        `measure_from` set after the warmup's messages); in the closed loop each client sends its
        next message when the last was answered (`_next()`), until its quota or the deadline."""
        w, share = self.w, self.share
        quotas = split(w.messages or 0, total)
        if self.open_loop:
            assert w.rate
            assigned = _local_ids(total, share)
            rate = w.rate * len(assigned) / total
            schedule = Schedule(rate, start, share.index / w.rate)
            warm = int(w.warmup * rate)
            limit = warm + sum(quotas[gid] for gid in assigned) if w.messages is not None else None
            self.measure_from = schedule.due_at(warm)
            until = self.measure_from + int(w.duration * 1e9) if w.duration else None
            await pace(schedule, self._pace_sender(clients, self._send), limit=limit, until_ns=until,
                       stopping=lambda: not self.sending)
            return
        self.deadline = self.measure_from + int(w.duration * 1e9) if w.duration else 0
        self.running = {c.gid for c in clients}
        for client in clients:
            client.quota = quotas[client.gid] if w.messages is not None else -1
            self._next(client, time.monotonic_ns())
        await self._until(self.sent_all, w.drain)

    def _next(self, client: Any, now: int) -> None:
        """Closed loop: send the next message of `client`, or retire it."""
        if client.gid not in self.running:
            return
        measured = now >= self.measure_from
        done = measured and (client.quota == 0 or (self.deadline and now >= self.deadline))
        if not self.sending or not client.alive or done:
            self._retire(client.gid)
            return
        if measured and client.quota > 0:
            client.quota -= 1
        self._send(client, now, now, measured)

    async def _until(self, future: asyncio.Future[None], stall: float) -> bool:
        """Wait for `future` while answers keep coming: give up after `stall` seconds without
        any. True when it resolved."""
        while not future.done():
            before = self.answers
            try:
                await asyncio.wait_for(asyncio.shield(future), stall)
            except TimeoutError:
                if self.answers == before:
                    return False
        return True

    def _retire(self, gid: int) -> None:
        self.running.discard(gid)
        if not self.running and not self.sent_all.done():
            self.sent_all.set_result(None)

    def _pace_sender(self, clients: list[Any], send_one: Any) -> Any:
        """The `send(intended)` for pace(): round-robin over the live clients."""
        lag = self.m.send_lag.record
        state = {"i": 0}

        def send(intended: int) -> None:
            live = clients if all(c.alive for c in clients) else [c for c in clients if c.alive]
            if not live:
                self.sending = False
                return
            i = state["i"]
            state["i"] = i + 1
            now = time.monotonic_ns()
            measured = intended >= self.measure_from
            if measured:
                lag(now - intended)
            send_one(live[i % len(live)], intended, now, measured)

        return send

    def _finish(self, cpu: float, counters: dict[str, int]) -> Measurement:
        m = self.m
        m.finish(self.measure_from / 1e9, self.end_ns / 1e9 if self.end_ns else 0.0, cpu)
        m.interrupted = self.control.stopping()
        m.counters.update(counters)
        return m


class HubRound(Round):
    """One hub test in one process."""

    def __init__(self, workload: WsWorkload, fleet: Fleet, test: str, index: int, share: Share,
                 control: Control) -> None:
        super().__init__(workload, fleet, test, share, control)
        self.k = index
        self.tag = workload.run_id.encode()
        self.cache: dict[bytes, tuple[tuple[int, int, int, int], ...]] = {}
        self.cache_bytes = 0
        self.channels = len(workload.channels)
        self.published = [0] * self.channels
        self.received = 0
        self.expected: float = math.inf
        self.duplicates = 0
        self.out_of_order = 0
        self.members: list[HubClient] = []
        self.pad = b',"x":"' + b"x" * workload.payload_size + b'"' if workload.payload_size else b""
        self.in_step = True
        loop = asyncio.get_running_loop()
        self.all_received: asyncio.Future[None] = loop.create_future()
        self.all_acked: asyncio.Future[None] = loop.create_future()

    # ------------------------------------------------------------------ the test

    async def _meet(self, phase: int) -> None:
        if self.in_step:
            self.in_step = await self.w.shared.meet(self.k, phase, self.control)

    async def run(self) -> Measurement:
        w, control = self.w, self.control
        before: dict[str, float] = {}
        if self.share.index == 0 and w.metrics_url:
            before = await scrape(w.metrics_url, w.channels)
        await self._meet(0)
        await self._connect()
        self.fleet.current = self
        ticker = self._watch()
        cpu = {"start": time.process_time()}
        try:
            await self._meet(1)
            start = w.shared.stamp(self.k, 1) or time.monotonic_ns()
            await sleep_until(start)
            self.measure_from = start + int(w.warmup * 1e9)
            asyncio.get_running_loop().call_later(w.warmup,
                                                  lambda: cpu.__setitem__("start", time.process_time()))
            if self.in_step and not control.stopping():
                await self._publish(start)
            self.sending = False
            self._settle()
            await self._until(self.all_acked, w.drain)
            self._count_missing_acks()
            w.shared.add_published(self.k, self.published)
            await self._meet(2)
            totals = w.shared.published_of(self.k)
            self.expected = sum(totals[s.channel] for s in self.members)
            self._check_done()
            await self._until(self.all_received, w.drain if not control.stopping() else min(w.drain, 1.0))
            used = time.process_time() - cpu["start"]
            await self._meet(3)
        finally:
            ticker.cancel()
            self.sending = False
            self.fleet.current = None
        publishers = [p for p in self.fleet.publishers if p.alive]
        counters = {"clients": len(self.members), "publishers": len(publishers),
                    "expected": int(self.expected), "delivered": self.received, "duplicates": self.duplicates,
                    "out_of_order": self.out_of_order, "disconnects": self.disconnects,
                    "connect_errors": self.connect_errors}
        if self.share.index == 0 and w.metrics_url:
            counters.update(server_counters(before, await scrape(w.metrics_url, w.channels)))
        await self._meet(4)   # nobody closes a connection before process 0 has read /metrics
        return self._finish(used, counters)

    async def _connect(self) -> None:
        w, fleet, share = self.w, self.fleet, self.share
        headers = w.headers()
        urls = HubUrls(w.url, "")
        sub_ids = _local_ids(w.clients[self.m.test], share)[fleet.subscribers_made:]
        pub_ids = _local_ids(w.publishers, share)[fleet.publishers_made:]
        fleet.subscribers_made += len(sub_ids)
        fleet.publishers_made += len(pub_ids)
        specs = []
        for gid in pub_ids:  # publishers first: without them nothing is measured
            endpoint = split_url(urls.ops)
            specs.append((self._factory(endpoint, gid, -1, headers), endpoint, urls.ops))
        for gid in sub_ids:
            channel = gid % self.channels
            url = urls.channel(w.channels[channel])
            endpoint = split_url(url)
            specs.append((self._factory(endpoint, gid, channel, headers), endpoint, url))
        rate = w.connect_rate / share.processes if w.connect_rate else None
        clients, failures = await connect_many(specs, hub=True, rate=rate, hist=self.connect_hist)
        for client in clients:
            (fleet.publishers if client.channel < 0 else fleet.subscribers).append(client)
        fleet.subscribers = [s for s in fleet.subscribers if s.alive]
        fleet.publishers = [p for p in fleet.publishers if p.alive]
        self._note_connect_failures(failures, not fleet.subscribers and not fleet.publishers)
        self.members = list(fleet.subscribers)
        for sub in self.members:
            sub.seen = [bytearray() for _ in range(w.publishers)]
            sub.last = [-1] * w.publishers
        for pub in fleet.publishers:
            pub.seq = 0
            pub.inflight.clear()
            pub.prefixes = [self._prefix(channel, pub.gid) for channel in w.channels]

    def _factory(self, endpoint: Endpoint, gid: int, channel: int, headers: list[tuple[str, str]]) -> Any:
        fleet, compression = self.fleet, self.w.compression
        return lambda: HubClient(endpoint, fleet, gid, channel, headers=headers, compression=compression)

    def _prefix(self, channel: str, gid: int) -> bytes:
        return (b'{"op":"publish","channel":' + json.dumps(channel).encode() + b',"data":{"b":"' + self.tag
                + b'","k":%d,"p":%d,"s":' % (self.k, gid))

    # ------------------------------------------------------------------ publishing

    async def _publish(self, start: int) -> None:
        publishers = [p for p in self.fleet.publishers if p.alive]
        if not publishers:
            return
        self.sending = True
        await self._drive(start, self.w.publishers, publishers)

    def _send(self, pub: HubClient, intended: int, actual: int, measured: bool) -> None:
        seq = pub.seq
        pub.seq = seq + 1
        channel = (pub.gid + seq) % self.channels
        tail = self.pad if measured else b',"w":1' + self.pad
        pub.inflight.append((channel, measured))
        pub.send_text(pub.prefixes[channel] + b'%d,"t":%d,"a":%d%s}}' % (seq, intended, actual, tail))

    def _settle(self) -> None:
        """Resolve `all_acked` once sending is over and no ack is outstanding."""
        if self.sending or self.all_acked.done():
            return
        if not self.running and not any(p.inflight for p in self.fleet.publishers if p.alive):
            self.all_acked.set_result(None)

    def _count_missing_acks(self) -> None:
        missing = sum(1 for p in self.fleet.publishers for _, measured in p.inflight if measured)
        if missing:
            self.m.add_error(f"{missing} publishes got no answer within {self.w.drain:g} s", missing)
        for pub in self.fleet.publishers:
            pub.inflight.clear()

    # ------------------------------------------------------------------ arrivals

    def on_message(self, client: HubClient, payload: bytes, now: int) -> None:
        if client.channel < 0:
            self._ack(client, payload, now)
        else:
            self._deliver(client, payload, now)

    def _ack(self, pub: HubClient, payload: bytes, now: int) -> None:
        if not pub.inflight:
            return
        if payload.startswith(b'{"type":"published"'):
            channel, measured = pub.inflight.popleft()
            if measured:
                self.m.ops += 1
                self.published[channel] += 1
                self.end_ns = max(self.end_ns, now)
        else:
            try:
                message = json.loads(payload)
            except ValueError:
                message = None
            if type(message) is not dict or message.get("type") != "error":
                return  # not an answer to a publish
            _, measured = pub.inflight.popleft()
            if measured:
                self.m.add_error(f"publish refused: {message.get('error')}")
        self.answers += 1
        if not self.open_loop:
            self._next(pub, now)
        if not self.sending:
            self._settle()

    def _deliver(self, sub: HubClient, payload: bytes, now: int) -> None:
        cache = self.cache
        events = cache.get(payload)
        if events is None:
            events = decode_events(payload, self.w.run_id, self.k) if self.tag in payload else ()
            if len(cache) >= CACHE_MAX or self.cache_bytes > CACHE_BYTES:
                cache.clear()
                self.cache_bytes = 0
            cache[payload] = events
            self.cache_bytes += len(payload)
        if not events:
            return
        seen, last = sub.seen, sub.last
        record = self.record
        uncorrected = self.record_uncorrected if self.open_loop else None
        new = 0
        for p, s, t, a in events:
            if p >= len(seen) or s < 0:
                continue
            bits = seen[p]
            byte = s >> 3
            if byte >= len(bits):
                bits.extend(bytes(byte - len(bits) + 256))
            flag = 1 << (s & 7)
            if bits[byte] & flag:
                self.duplicates += 1
                continue
            bits[byte] |= flag
            if s < last[p]:
                self.out_of_order += 1
            else:
                last[p] = s
            new += 1
            record(now - t)
            if uncorrected is not None:
                uncorrected(now - a)
        if new:
            self.received += new
            self.answers += new
            self.end_ns = max(self.end_ns, now)
            if self.received >= self.expected:
                self._check_done()

    def _check_done(self) -> None:
        if self.received >= self.expected and not self.all_received.done():
            self.all_received.set_result(None)

    def on_lost(self, client: HubClient, code: int, reason: str) -> None:
        if client.channel < 0:
            lost = sum(1 for _, measured in client.inflight if measured)
            client.inflight.clear()
            if lost:
                self.m.add_error(f"{lost} publishes unanswered when the publisher's connection closed", lost)
            self.disconnects += 1
            self.m.add_error(f"{DISCONNECT_NOTE}a publisher's connection closed: {code} {reason}".rstrip(), 0)
            self._retire(client.gid)
            self._settle()
        else:
            self.disconnects += 1
            self.m.add_error(f"{DISCONNECT_NOTE}a subscriber's connection closed: {code} {reason}".rstrip(),
                             0)


class EchoRound(Round):
    """The echo test in one process."""

    def __init__(self, workload: WsWorkload, fleet: Fleet, test: str, share: Share, control: Control) -> None:
        super().__init__(workload, fleet, test, share, control)
        self.seq = 0
        self.pad = b"x" * workload.payload_size
        self.all_echoed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def run(self) -> Measurement:
        w, share, fleet = self.w, self.share, self.fleet
        ids = _local_ids(w.clients[self.m.test], share)[len(fleet.echoes):]
        endpoint = split_url(w.url)
        headers = w.headers()

        def factory(gid: int) -> Any:
            return lambda: EchoClient(endpoint, fleet, gid, headers=headers, compression=w.compression)

        rate = w.connect_rate / share.processes if w.connect_rate else None
        specs = [(factory(g), endpoint, w.url) for g in ids]
        clients, failures = await connect_many(specs, hub=False, rate=rate, hist=self.connect_hist)
        fleet.echoes.extend(clients)
        fleet.echoes = [c for c in fleet.echoes if c.alive]
        self._note_connect_failures(failures, not fleet.echoes)
        fleet.current = self
        ticker = self._watch()
        start = time.monotonic_ns()
        self.measure_from = start + int(w.warmup * 1e9)
        cpu = {"start": time.process_time()}
        asyncio.get_running_loop().call_later(w.warmup, lambda: cpu.__setitem__("start", time.process_time()))
        try:
            self.sending = True
            await self._drive(start, w.clients[self.m.test], fleet.echoes)
            self.sending = False
            self._settle()
            await self._until(self.all_echoed, w.drain)
            missing = sum(1 for c in fleet.echoes for entry in c.inflight if entry[2])
            if missing:
                self.m.add_error(f"{missing} messages were not echoed within {w.drain:g} s", missing)
            used = time.process_time() - cpu["start"]
        finally:
            ticker.cancel()
            self.sending = False
            fleet.current = None
            for client in fleet.echoes:
                client.inflight.clear()
        return self._finish(used, {"clients": len(fleet.echoes), "connect_errors": self.connect_errors,
                                   "disconnects": self.disconnects})

    def _send(self, client: EchoClient, intended: int, now: int, measured: bool) -> None:
        seq = self.seq
        self.seq = seq + 1
        payload = b'{"seq":%d,"x":"%s"}' % (seq, self.pad)
        client.inflight.append((intended, now, measured, payload))
        client.send_text(payload)

    def on_message(self, client: EchoClient, payload: bytes, now: int) -> None:
        if not client.inflight:
            self.m.add_error(f"{OTHER_NOTE}a message arrived that was not an echo", 0)
            return
        intended, sent, measured, expected = client.inflight.popleft()
        self.answers += 1
        if measured:
            if payload != expected:
                self.m.add_error("an echo differed from the message sent")
            else:
                self.record(now - intended)
                if self.open_loop:
                    self.record_uncorrected(now - sent)
                self.m.ops += 1
                self.end_ns = now
        if not self.open_loop:
            self._next(client, now)
        if not self.sending:
            self._settle()

    def _settle(self) -> None:
        if self.sending or self.all_echoed.done():
            return
        if not self.running and not any(c.inflight for c in self.fleet.echoes if c.alive):
            self.all_echoed.set_result(None)

    def on_lost(self, client: EchoClient, code: int, reason: str) -> None:
        lost = sum(1 for entry in client.inflight if entry[2])
        client.inflight.clear()
        self.disconnects += 1
        if lost:
            self.m.add_error(f"{lost} messages unanswered when their connection closed", lost)
        self.m.add_error(f"{DISCONNECT_NOTE}an echo connection closed: {code} {reason}".rstrip(), 0)
        self._retire(client.gid)
        self._settle()


# ---------------------------------------------------------------------------------- /metrics


async def scrape(url: str, channels: list[str]) -> dict[str, float]:
    """The hub's figures from its /metrics; {} when it cannot be read."""
    from cascade_cli.connect import async_http_client

    try:
        client = async_http_client(url, timeout=5, connect_timeout=5)
    except CascadeError:
        return {}
    try:
        response = await client.get(url)
        if response.status_code != 200:
            return {}
        return parse_metrics(response.text, channels)
    except Exception:  # noqa: BLE001 - the server view is optional; its absence is reported as nulls
        return {}
    finally:
        await client.aclose()


def probe_metrics(url: str, channels: list[str]) -> bool:
    """True when `url` serves the hub's Prometheus metrics."""
    return bool(asyncio.run(scrape(url, channels)))


# ---------------------------------------------------------------------------------- preflight


@dataclass(frozen=True)
class Preflight:
    """What the first connections learnt: whether permessage-deflate was negotiated."""

    compressed: bool
    extensions: str


class _ProbeReplies:
    """Stands in for a test during the preflight: takes the publisher's first answer."""

    def __init__(self) -> None:
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def on_message(self, client: HubClient, payload: bytes, now: int) -> None:
        if client.channel < 0 and not self.reply.done():
            self.reply.set_result(payload)

    def on_lost(self, client: HubClient, code: int, reason: str) -> None:
        if client.channel < 0 and not self.reply.done():
            self.reply.set_exception(ConnectionClosed(code, reason))


async def _preflight_hub(urls: HubUrls, channels: list[str], headers: list[tuple[str, str]],
                         compression: bool, payload_size: int) -> Preflight:
    fleet = Fleet()
    opened: list[HubClient] = []
    try:
        for index, url in enumerate([*(urls.channel(c) for c in channels), urls.ops]):
            endpoint = split_url(url)
            channel = index if index < len(channels) else -1

            def make(e: Endpoint = endpoint, c: int = channel) -> HubClient:
                return HubClient(e, fleet, 0, c, headers=headers, compression=compression)

            client, _, error = await _open(make, endpoint, url, True)
            if error is not None:
                raise error
            opened.append(client)
        # one event as large as the run's: the hub must take it and answer `published`
        probe = _ProbeReplies()
        fleet.current = probe
        publisher = opened[-1]
        pad = b"x" * payload_size
        body = (b'{"op":"publish","channel":' + json.dumps(channels[0]).encode()
                + b',"data":{"cascade-bench":"probe","t":%d,"x":"%s"}}' % (time.monotonic_ns(), pad))
        publisher.send_text(body)
        try:
            reply = await asyncio.wait_for(probe.reply, CONNECT_TIMEOUT)
        except ConnectionClosed as exc:
            raise RemoteError(f"the hub closed the connection on a {len(body):,}-byte publish: {exc.code}"
                              + (f" {exc.reason!r}" if exc.reason else ""),
                              "use a smaller --payload-size, or raise the hub's --max-message-size") from None
        except TimeoutError:
            raise RemoteError(f"the hub did not answer a publish within {CONNECT_TIMEOUT:g} s",
                              "check that the server speaks cascade's hub protocol (docs/hub.md)") from None
        if not reply.startswith(b'{"type":"published"'):
            try:
                said = json.loads(reply).get("error") or reply[:120].decode(errors="replace")
            except (ValueError, AttributeError):
                said = reply[:120].decode(errors="replace")
            raise RemoteError(f"the hub refused a test publish on {channels[0]!r}: {said}",
                              "use a smaller --payload-size, or check the hub's limits (docs/hub.md)")
        negotiated = publisher.deflate is not None
    finally:
        fleet.current = None
        for client in opened:
            client.close()
        if opened:
            await asyncio.wait([asyncio.ensure_future(asyncio.shield(c.closed)) for c in opened], timeout=2)
    return Preflight(negotiated, "permessage-deflate" if negotiated else "")


def preflight_hub(urls: HubUrls, channels: list[str], token: str | None, compression: bool,
                  payload_size: int = 0) -> Preflight:
    """Connect once to each channel and to /ws and publish one event as large as the run's, before
    any load process starts; raises the CascadeError that says what is wrong (unreachable, unknown
    channel, token refused, event too large, not a cascade hub, ...)."""
    return asyncio.run(_preflight_hub(urls, channels, auth_headers(token), compression, payload_size))


async def _preflight_echo(url: str, headers: list[tuple[str, str]], compression: bool) -> Preflight:
    endpoint = split_url(url)
    fleet = Fleet()
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    class Probe(EchoClient):
        def on_message(self, opcode: int, payload: bytes, now_ns: int) -> None:
            if not got.done():
                got.set_result(payload)

    def make() -> Probe:
        return Probe(endpoint, fleet, 0, headers=headers, compression=compression)

    client, _, error = await _open(make, endpoint, url, False)
    if error is not None:
        raise error
    try:
        probe = b'{"cascade-bench":"echo probe"}'
        client.send_text(probe)
        try:
            answer = await asyncio.wait_for(got, 5)
        except TimeoutError:
            raise RemoteError(f"{url} did not echo a message within 5 s",
                              "--echo needs a server that sends every message back") from None
        if answer != probe:
            shown = answer[:80].decode(errors="replace")
            raise RemoteError(f"{url} is not an echo server: it answered {shown!r}",
                              "--echo needs a server that sends every message back unchanged")
        return Preflight(client.deflate is not None, "permessage-deflate" if client.deflate else "")
    finally:
        client.close()
        await asyncio.wait([asyncio.ensure_future(asyncio.shield(client.closed))], timeout=2)


def preflight_echo(url: str, token: str | None, compression: bool) -> Preflight:
    """Connect to the echo server and check that it echoes; raises a CascadeError otherwise."""
    try:
        split_url(url)
    except ValueError as exc:
        raise ConfigError(f"--echo needs a ws:// or wss:// URL: {exc}",
                          "e.g. --echo ws://127.0.0.1:9000/") from None
    return asyncio.run(_preflight_echo(url, auth_headers(token), compression))
