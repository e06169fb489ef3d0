"""The event bus between `cascade serve` instances: local only, or Redis pub/sub.

Every instance delivers its own publishes to its local clients at once and hands them to the
bus; the Redis bus publishes them on `<prefix><channel>` and delivers what other instances
published (each message starts with the sending instance's id, so an instance skips its own).
When Redis goes away, local delivery goes on, `state` turns "down", events meant for other
instances are counted as dropped, and the bus reconnects with capped exponential backoff and
jitter. Call `start()` once the event loop runs and `stop()` at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cascade_cli.config import mask_url
from cascade_cli.hub.metrics import REDIS_RTT_BUCKETS, Histogram

if TYPE_CHECKING:
    import redis.asyncio

    from cascade_cli.config import RedisSettings

LOCAL = "local"
CONNECTING = "connecting"
OK = "ok"
DOWN = "down"

PREFIX = "cascade:hub:"
MAX_BACKLOG = 10_000
"""Events waiting to be published to Redis; past this, more are counted as dropped."""
PING_EVERY = 2.0
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0


def backoff(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds before reconnect `attempt` (1-based): doubling from 0.1 s, capped at 5 s, with
    equal jitter (between half and all of it)."""
    ceiling = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (attempt - 1))
    return ceiling * (0.5 + rand() / 2)


class LocalBus:
    """One instance on its own: nothing crosses process boundaries."""

    state = LOCAL
    url = ""
    last_error: str | None = None
    dropped = 0
    published = 0
    received = 0
    reconnects = 0
    rtt = Histogram(REDIS_RTT_BUCKETS)
    last_rtt: float | None = None

    @property
    def client(self) -> None:
        return None

    def publish(self, channel: str, payload: bytes) -> None:
        """Nothing to do: local delivery already happened."""

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


class RedisBus:
    """Redis pub/sub between instances, through `cascade_cli.connect.redis_client`.

    `on_message(channel, payload)` receives events published by other instances.
    `on_state(state, detail)` hears about every state change (for logging).
    """

    def __init__(self, settings: RedisSettings, url: str,
                 on_message: Callable[[str, bytes], None], *, instance: str,
                 on_state: Callable[[str, str | None], None] | None = None,
                 prefix: str = PREFIX) -> None:
        self.settings = settings
        self.url = url
        self.prefix = prefix
        self.state = CONNECTING
        self.last_error: str | None = None
        self.published = 0
        self.received = 0
        self.dropped = 0
        self.reconnects = 0
        self.rtt = Histogram(REDIS_RTT_BUCKETS)
        self.last_rtt: float | None = None
        self._on_message = on_message
        self._on_state = on_state
        self._tag = instance.encode() + b" "
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._wake = asyncio.Event()
        self._client: redis.asyncio.Redis | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected_once = asyncio.Event()

    @property
    def client(self) -> redis.asyncio.Redis | None:
        """The command client while Redis answers (for caches), else None."""
        return self._client if self.state == OK else None

    def publish(self, channel: str, payload: bytes) -> None:
        """Queue an event for the other instances; never blocks, never raises."""
        if self.state != OK or len(self._outbox) >= MAX_BACKLOG:
            self.dropped += 1
            return
        self._outbox.append((channel, payload))
        self._wake.set()

    async def start(self, wait: float = 0.0) -> None:
        """Start connecting in the background; wait up to `wait` seconds for the first outcome."""
        self._task = asyncio.create_task(self._run(), name="cascade-redis-bus")
        if wait > 0:
            try:
                await asyncio.wait_for(self._connected_once.wait(), wait)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        """Publish what is queued (best effort, 1 s), then disconnect."""
        if self.state == OK and self._outbox:
            deadline = time.monotonic() + 1.0
            while self._outbox and self.state == OK and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):  # stopping regardless
                await self._task

    # -- the connection loop -----------------------------------------------------------------

    def _set_state(self, state: str, detail: str | None = None) -> None:
        if state != self.state:
            self.state = state
            if self._on_state is not None:
                self._on_state(state, detail)

    async def _run(self) -> None:
        from redis.exceptions import RedisError

        from cascade_cli.connect import redis_client

        attempt = 0
        while True:
            client = redis_client(self.settings, self.url)
            listener = redis_client(self.settings, self.url, socket_timeout=None, max_connections=2)
            pubsub = listener.pubsub(ignore_subscribe_messages=True)
            try:
                await client.ping()
                await pubsub.psubscribe(self.prefix + "*")
                self._outbox.clear()
                self._client = client
                if attempt:
                    self.reconnects += 1
                attempt = 0
                self.last_error = None
                self._set_state(OK)
                self._connected_once.set()
                tasks = [asyncio.create_task(self._read(pubsub)),
                         asyncio.create_task(self._write(client)),
                         asyncio.create_task(self._ping(client))]
                try:
                    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                for task in done:
                    task.result()
                raise ConnectionError("the Redis connection closed")
            except (RedisError, OSError, ConnectionError) as exc:
                self.last_error = _describe(exc, self.url)
                self._client = None
                self.last_rtt = None
                self._set_state(DOWN, self.last_error)
                self._connected_once.set()
            finally:
                self._client = None
                await _close_quietly(pubsub, listener, client)
            attempt += 1
            await asyncio.sleep(backoff(attempt))

    async def _read(self, pubsub: Any) -> None:
        tag = self._tag
        skip = len(self.prefix)
        deliver = self._on_message
        while True:
            message = await pubsub.get_message(timeout=None)
            if message is None or message.get("type") != "pmessage":
                continue
            data = message["data"]
            if data.startswith(tag):
                continue
            self.received += 1
            space = data.find(b" ")
            channel = message["channel"]
            deliver(channel[skip:].decode() if isinstance(channel, bytes) else channel[skip:],
                    data[space + 1:])

    async def _write(self, client: Any) -> None:
        outbox = self._outbox
        tag = self._tag
        while True:
            if not outbox:
                self._wake.clear()
                await self._wake.wait()
            batch = list(outbox)
            outbox.clear()
            pipe = client.pipeline(transaction=False)
            for channel, payload in batch:
                pipe.publish(self.prefix + channel, tag + payload)
            try:
                await pipe.execute()
            except BaseException:
                self.dropped += len(batch)
                raise
            self.published += len(batch)

    async def _ping(self, client: Any) -> None:
        while True:
            started = time.perf_counter()
            await client.ping()
            self.last_rtt = time.perf_counter() - started
            self.rtt.observe(self.last_rtt)
            await asyncio.sleep(PING_EVERY)


def _describe(exc: BaseException, url: str) -> str:
    text = str(exc) or type(exc).__name__
    return f"Redis at {mask_url(url)}: {text}"


async def _close_quietly(*things: Any) -> None:
    for thing in things:
        with contextlib.suppress(Exception):  # the connection is already gone
            await thing.aclose()
