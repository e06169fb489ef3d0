"""The event bus of `cascade serve`: where events get their ids, their history and their way to
every instance.

`LocalBus` keeps each channel's history in this process. `RedisBus` keeps it in a Redis stream per
channel (`cascade:hub:{<channel>}:history`) and wakes the other instances with sharded pub/sub
(`SPUBLISH cascade:hub:{<channel>}`); every instance reads each channel's stream after its own
cursor and delivers in stream order, so ids are ordered and unique across instances, no instance
delivers an event twice, and a client resuming from an id misses nothing. The hash tag puts a
channel's stream and shard channel on the same Redis Cluster slot.

A publish returns ids only after the stream has the events; while Redis (or, on a cluster, the
shard owning the channel) is unreachable it raises `BusUnavailable`. Call `start()` once the
event loop runs, `follow(channel)` for every channel the hub serves, and `stop()` at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cascade_cli.config import mask_url
from cascade_cli.hub import history, messages
from cascade_cli.hub.history import PAGE, Bounds, LocalStream, StreamId, format_id, parse_id
from cascade_cli.hub.metrics import REDIS_RTT_BUCKETS, Histogram

if TYPE_CHECKING:
    from cascade_cli.config import RedisSettings

LOCAL = "local"
CONNECTING = "connecting"
OK = "ok"
PARTIAL = "partial"
DOWN = "down"

PREFIX = "cascade:hub:"
MAX_WAITING = 10_000
"""Publishes waiting for Redis per channel; past this, more are refused (BusUnavailable)."""
MAX_ROUND = 1000
"""Events written to a channel's stream per round trip."""
PING_EVERY = 2.0
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 5.0

Events = Callable[[str, list[bytes]], None]
"""`on_events(channel, messages)`: encoded event messages, in stream order, for live subscribers."""


def backoff(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds before reconnect `attempt` (1-based): doubling from 0.1 s, capped at 5 s, with
    equal jitter (between half and all of it)."""
    ceiling = min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (attempt - 1))
    return ceiling * (0.5 + rand() / 2)


class BusUnavailable(RuntimeError):
    """The channel's history cannot be written or read now; the caller may retry later."""


@dataclass(eq=False)
class Resume:
    """A client resuming a channel after `since`: the bus calls `notice(gap message)` when
    history after `since` was trimmed, `send(events)` with what it missed, then `attach()` to
    join it to live delivery, all in order; `alive()` False cancels."""

    since: StreamId
    notice: Callable[[bytes], None]
    send: Callable[[list[bytes]], None]
    attach: Callable[[], None]
    alive: Callable[[], bool]
    after: StreamId = (0, 0)

    def __post_init__(self) -> None:
        self.after = self.since


@dataclass
class HistoryPage:
    """`GET /api/channels/{c}/history`: encoded events (oldest first), whether history after
    `since` was trimmed, and the id to pass as `since` for the next page."""

    events: list[bytes]
    gap: bool
    next: str | None


def shard_channel(channel: str) -> str:
    return f"{PREFIX}{{{channel}}}"


def stream_key(channel: str) -> str:
    return f"{PREFIX}{{{channel}}}:history"


def gap_message(channel: str, since: StreamId, first: str | None) -> bytes:
    """`{"type":"gap",...}`: events after `since` were trimmed from history before this client
    came back; `first` is the oldest id still kept."""
    return messages.dumps({"type": "gap", "channel": channel, "since": format_id(since), "first": first})


def _prefix(channel: str) -> bytes:
    return history.event_prefix(messages.dumps(channel))


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class LocalBus:
    """One instance on its own: history in this process, nothing crosses process boundaries."""

    state = LOCAL
    url = ""
    last_error: str | None = None
    dropped = 0
    lost_gaps = 0
    received = 0
    reconnects = 0
    last_rtt: float | None = None

    def __init__(self, bounds: Callable[[str], Bounds], on_events: Events,
                 clock_ms: Callable[[], int] = _now_ms) -> None:
        self.bounds = bounds
        self.published = 0
        self.rtt = Histogram(REDIS_RTT_BUCKETS)
        self._on_events = on_events
        self._clock_ms = clock_ms
        self._streams: dict[str, tuple[LocalStream, bytes]] = {}

    @property
    def client(self) -> None:
        return None

    def shards(self) -> list[dict[str, Any]]:
        return []

    def usable(self, channel: str) -> bool:
        return True

    def problem(self) -> str | None:
        return None

    def _stream(self, channel: str) -> tuple[LocalStream, bytes]:
        found = self._streams.get(channel)
        if found is None:
            found = self._streams[channel] = (LocalStream(self._clock_ms), _prefix(channel))
        return found

    def follow(self, channel: str) -> None:
        self._stream(channel)

    async def publish(self, channel: str, items: list[tuple[bytes, bytes]]) -> list[str]:
        stream, prefix = self._stream(channel)
        bounds = self.bounds(channel)
        ids = [format_id(stream.add(ts, data, bounds)) for ts, data in items]
        self.published += len(ids)
        self._on_events(channel, [history.event_message(prefix, i.encode(), ts, data)
                                  for i, (ts, data) in zip(ids, items)])
        return ids

    def resume(self, channel: str, request: Resume) -> None:
        stream, prefix = self._stream(channel)
        entries = stream.after(request.since, len(stream.entries), inclusive=True)
        if history.gap_before(request.since, [e[0] for e in entries], stream.last):
            request.notice(gap_message(channel, request.since, format_id(entries[0][0]) if entries else None))
        if entries and entries[0][0] == request.since:
            entries = entries[1:]
        if entries:
            request.send([history.event_message(prefix, format_id(i).encode(), ts, data)
                          for i, ts, data in entries])
        request.attach()

    async def history(self, channel: str, since: StreamId | None, limit: int) -> HistoryPage:
        if channel not in self._streams:   # never used: an empty history, and nothing created
            return HistoryPage([], False, format_id(since) if since else None)
        stream, prefix = self._stream(channel)
        if since is None:
            entries = list(stream.entries)[-limit:]
            gap = False
        else:
            entries = stream.after(since, limit + 1, inclusive=True)
            gap = history.gap_before(since, [e[0] for e in entries], stream.last)
            entries = [e for e in entries if e[0] > since][:limit]
        events = [history.event_message(prefix, format_id(i).encode(), ts, data) for i, ts, data in entries]
        last = format_id(entries[-1][0]) if entries else (format_id(since) if since else None)
        return HistoryPage(events, gap, last)

    async def start(self, wait: float = 0.0) -> None:
        pass

    async def stop(self) -> None:
        pass


@dataclass(eq=False)
class Feed:
    """One channel on the Redis bus: its stream cursor (the last id delivered here), publishes
    waiting for XADD, clients resuming, and whether another read is due."""

    name: str
    key: str
    shard: str
    prefix: bytes
    cursor: StreamId | None = None
    outbox: list[tuple[bytes, bytes, asyncio.Future[str]]] = field(default_factory=list)
    resumes: list[Resume] = field(default_factory=list)
    wake: bool = False
    task: asyncio.Task[None] | None = None
    synced: bool = False   # caught up, and subscribed without a break since: no wake-up missed
    epoch: int = 0         # subscriptions confirmed so far

    def busy(self) -> bool:
        return self.cursor is None or bool(self.outbox or self.resumes) or self.wake


class RedisBus:
    """History in Redis streams, wake-ups by sharded pub/sub, through `cascade_cli.connect`.

    `on_events(channel, messages)` receives every event in stream order (this instance's and
    the others'). `on_gap(channel, gap message)` hears when this instance fell so far behind
    that history was trimmed past its cursor (its live subscribers missed events).
    `on_state(state, detail)` hears about every state change (for logging).
    """

    def __init__(self, settings: RedisSettings, url: str, on_events: Events, *, instance: str,
                 bounds: Callable[[str], Bounds], cluster: bool = False,
                 on_state: Callable[[str, str | None], None] | None = None,
                 on_gap: Callable[[str, bytes], None] | None = None) -> None:
        self.settings = settings
        self.url = url
        self.cluster = cluster
        self.bounds = bounds
        self.last_error: str | None = None
        self.published = 0
        self.received = 0
        self.dropped = 0
        self.reconnects = 0
        self.rtt = Histogram(REDIS_RTT_BUCKETS)
        self.last_rtt: float | None = None
        self._on_events = on_events
        self._on_state = on_state
        self._on_gap = on_gap or (lambda channel, message: None)
        self.lost_gaps = 0
        self._instance = instance.encode()
        self._feeds: dict[str, Feed] = {}
        self._by_shard: dict[str, Feed] = {}
        self._client: Any = None
        self._subscriber: Any = None
        self._commands = CONNECTING      # the command connection's state, from PING and round trips
        self._shown = CONNECTING
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._connected_once = asyncio.Event()

    # -- state -------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        """ok, partial (a cluster shard is unreachable), down or connecting."""
        if self._commands == DOWN:
            return DOWN
        listening = self._subscriber.state if self._subscriber is not None else CONNECTING
        if listening in (DOWN, PARTIAL):
            return listening
        return OK if self._commands == OK and listening == OK else CONNECTING

    @property
    def client(self) -> Any:
        """The command client while Redis answers (for caches), else None."""
        return self._client if self.state in (OK, PARTIAL) else None

    def shards(self) -> list[dict[str, Any]]:
        """Per Redis node: its state and how many channels it carries (one entry off a cluster)."""
        return self._subscriber.shards() if self._subscriber is not None else []

    def usable(self, channel: str) -> bool:
        """Whether `channel`'s history can be written and read now."""
        return (self._commands == OK and self._subscriber is not None
                and self._subscriber.channel_ok(shard_channel(channel)))

    def _state_changed(self, detail: str | None = None) -> None:
        state = self.state
        self._changed.set()   # a shard may have come back while the overall state stayed the same
        if state == self._shown:
            return
        if self._shown in (DOWN, PARTIAL) and state == OK:
            self.reconnects += 1
        if state in (DOWN, PARTIAL) and detail is None:
            detail = self.last_error or self._shard_problem()
        self._shown = state
        if state != CONNECTING:
            self._connected_once.set()
        if state in (OK, PARTIAL):
            for feed in self._feeds.values():   # catch up on what arrived while cut off
                feed.wake = True
                self._kick(feed)
        if self._on_state is not None:
            self._on_state(state, detail)

    def _shard_problem(self) -> str | None:
        down = [s for s in self.shards() if s.get("state") != OK]
        if not down:
            return None
        return "; ".join(s.get("error") or f"{s['node']}: unreachable" for s in down)

    def problem(self) -> str | None:
        """Why the bus is not fully up (None when it is): the command connection's last error
        or the shards that are down."""
        if self.state == OK:
            return None
        return self.last_error or self._shard_problem()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, wait: float = 0.0) -> None:
        """Connect in the background; wait up to `wait` seconds for the first outcome."""
        from cascade_cli.hub.cluster import ShardedSubscriber

        if self.cluster:
            from redis.asyncio.retry import Retry
            from redis.backoff import ExponentialBackoff

            from cascade_cli.connect import redis_cluster_client

            # two quick retries: a publish to a shard that just died answers 503 in milliseconds
            # rather than after redis-py's default ten (about 3.7 s); slot moves are followed anyway
            self._client = redis_cluster_client(self.settings, self.url,
                                                retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), 2))
        else:
            from cascade_cli.connect import redis_client

            self._client = redis_client(self.settings, self.url)
        self._subscriber = ShardedSubscriber(self.settings, self.url, cluster=self.cluster,
                                             on_message=self._doorbell, on_subscribed=self._subscribed,
                                             on_state=self._state_changed)
        self._subscriber.follow([feed.shard for feed in self._feeds.values()])
        await self._subscriber.start()
        self._tasks.append(asyncio.create_task(self._ping(), name="cascade-redis-ping"))
        if wait > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._connected_once.wait(), wait)

    async def stop(self) -> None:
        """Finish the publishes already waiting (best effort, 1 s), then disconnect."""
        deadline = time.monotonic() + 1.0
        while (any(f.outbox for f in self._feeds.values()) and self.state in (OK, PARTIAL)
               and time.monotonic() < deadline):
            await asyncio.sleep(0.01)
        self._stopping = True
        tasks = self._tasks + [f.task for f in self._feeds.values() if f.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for feed in self._feeds.values():
            _fail(feed.outbox, BusUnavailable("the hub is shutting down"))
        if self._subscriber is not None:
            with contextlib.suppress(Exception):   # stopping regardless
                await self._subscriber.stop()
        if self._client is not None:
            with contextlib.suppress(Exception):   # the connection may be gone already
                await self._client.aclose()

    # -- channels ----------------------------------------------------------------------------

    def follow(self, channel: str) -> None:
        """Deliver `channel`'s events from now on (idempotent)."""
        if channel in self._feeds:
            return
        feed = Feed(channel, stream_key(channel), shard_channel(channel), _prefix(channel))
        self._feeds[channel] = feed
        self._by_shard[feed.shard] = feed
        if self._subscriber is not None:
            self._subscriber.follow([feed.shard])
            self._kick(feed)

    async def publish(self, channel: str, items: list[tuple[bytes, bytes]]) -> list[str]:
        """Append events `(ts, data)` to the channel's history; their ids once Redis has them.
        Raises BusUnavailable when the channel's Redis is unreachable or too far behind."""
        feed = self._feeds.get(channel)
        if feed is None:
            self.follow(channel)
            feed = self._feeds[channel]
        if not self.usable(channel):
            await self._settle(channel)
        if not self.usable(channel):
            self.dropped += len(items)
            raise BusUnavailable(self._unavailable(channel))
        if len(feed.outbox) + len(items) > MAX_WAITING:
            self.dropped += len(items)
            raise BusUnavailable(f"{len(feed.outbox)} publishes already wait for Redis on {channel!r}")
        loop = asyncio.get_running_loop()
        futures = []
        for ts, data in items:
            future: asyncio.Future[str] = loop.create_future()
            feed.outbox.append((ts, data, future))
            futures.append(future)
        self._kick(feed)
        try:
            return list(await asyncio.wait_for(asyncio.gather(*futures), self.settings.timeout * 2))
        except TimeoutError:
            raise BusUnavailable(f"Redis did not confirm the publish within {self.settings.timeout * 2:g} s"
                                 ) from None

    def resume(self, channel: str, request: Resume) -> None:
        """Send `request` what it missed, then attach it (as soon as Redis answers)."""
        self.follow(channel)
        feed = self._feeds[channel]
        feed.resumes = [r for r in feed.resumes if r.alive()]   # not only in rounds: Redis may be down
        feed.resumes.append(request)
        self._kick(feed)

    async def history(self, channel: str, since: StreamId | None, limit: int) -> HistoryPage:
        """Up to `limit` events after `since` (oldest first), or the latest `limit` without it."""
        if self._commands != OK or self.state == DOWN:
            raise BusUnavailable(self._unavailable(channel))
        key = stream_key(channel)
        prefix = _prefix(channel)
        try:
            if since is None:
                rows = list(reversed(await self._client.xrevrange(key, count=limit)))
                gap = False
            else:
                rows = await self._client.xrange(key, min=format_id(since), count=limit + 1)
                feed = self._feeds.get(channel)
                gap = history.gap_before(since, [parse_id(r[0]) for r in rows[:1]],
                                         feed.cursor if feed is not None else None)
                rows = [r for r in rows if parse_id(r[0]) > since][:limit]
        except _redis_errors() as exc:
            raise BusUnavailable(_describe(exc, self.url)) from exc
        events = _messages(prefix, rows)
        last = _text(rows[-1][0]) if rows else (format_id(since) if since else None)
        return HistoryPage(events, gap, last)

    async def _settle(self, channel: str) -> None:
        """While Redis is not known to be down, wait (up to the connect timeout) for `channel` to
        become usable: the bus connecting, or a channel followed a moment ago being subscribed."""
        deadline = time.monotonic() + self.settings.connect_timeout
        while not self.usable(channel) and self._commands != DOWN and self.state != DOWN \
                and not self._stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    def _unavailable(self, channel: str) -> str:
        if self._commands == OK and self._subscriber is not None and self._subscriber.state == PARTIAL:
            return f"the Redis shard owning {channel!r} is unreachable ({self._shard_problem()})"
        return (self.last_error or self._shard_problem()
                or f"Redis at {mask_url(self.url)} is not connected yet")

    # -- wake-ups ----------------------------------------------------------------------------

    def _doorbell(self, shard: str, data: bytes) -> None:
        if data == self._instance:
            return   # this instance's own publish: its round read the stream already
        feed = self._by_shard.get(shard)
        if feed is not None:
            feed.wake = True
            self._kick(feed)

    def _subscribed(self, shards: list[str]) -> None:
        """The subscriber (re)joined these shard channels: read what arrived meanwhile."""
        self._changed.set()
        for shard in shards:
            feed = self._by_shard.get(shard)
            if feed is not None:
                feed.epoch += 1
                feed.synced = False   # wake-ups may have been missed before this subscription
                feed.wake = True
                self._kick(feed)

    def _kick(self, feed: Feed) -> None:
        if feed.task is None and not self._stopping and self._client is not None:
            feed.task = asyncio.create_task(self._rounds(feed), name=f"cascade-feed-{feed.name}")

    # -- reading and writing a channel's stream -------------------------------------------------

    async def _rounds(self, feed: Feed) -> None:
        errors = _redis_errors()

        attempt = 0
        try:
            while feed.busy() and not self._stopping:
                if not self.usable(feed.name):
                    self._changed.clear()
                    await self._changed.wait()
                    continue
                try:
                    await self._round(feed)
                    attempt = 0
                except errors as exc:
                    self.last_error = _describe(exc, self.url)
                    attempt += 1
                    await asyncio.sleep(backoff(attempt))
                except Exception:   # a bug must not end the channel's delivery for good
                    logging.getLogger("cascade.hub").exception("channel %r: round failed", feed.name)
                    attempt += 1
                    await asyncio.sleep(backoff(attempt))
        finally:
            feed.task = None

    async def _round(self, feed: Feed) -> None:
        """One round trip for a channel: write waiting publishes, read the stream after the
        cursor, and serve resuming clients a page each."""
        client = self._client
        if feed.cursor is None:
            top = await client.xrevrange(feed.key, count=1)
            feed.cursor = parse_id(top[0][0]) if top else history.ZERO
        epoch = feed.epoch
        sending = feed.outbox[:MAX_ROUND]
        del feed.outbox[:len(sending)]
        sending = [item for item in sending if not item[2].done()]   # publishers that gave up
        feed.wake = False
        feed.resumes = [r for r in feed.resumes if r.alive()]
        resumes = list(feed.resumes)
        pipe = client.pipeline(transaction=False)
        for ts, data, _ in sending:
            pipe.xadd(feed.key, {history.TS_FIELD: ts, history.DATA_FIELD: data})
        # read from the cursor itself: if it is gone, history was trimmed past this instance
        count = PAGE + len(sending)   # all of this round's own events, before the trim below
        pipe.xrange(feed.key, min=format_id(feed.cursor) if feed.cursor > history.ZERO else "-", count=count)
        for request in resumes:   # every page includes `after` itself: is it still kept?
            pipe.xrange(feed.key, min=format_id(request.after), count=PAGE)
        if sending:   # trim after reading, so a burst larger than history still reaches everyone here
            bounds = self.bounds(feed.name)
            pipe.xtrim(feed.key, maxlen=bounds.size, approximate=False)
            floor = bounds.min_id(_now_ms())
            if floor is not None:
                pipe.xtrim(feed.key, minid=format_id(floor), approximate=False)
            pipe.spublish(feed.shard, self._instance)
        try:
            results = await pipe.execute(raise_on_error=False)
        except BaseException as exc:
            _fail(sending, BusUnavailable(f"Redis did not confirm the publish: {exc}"))
            raise
        for (_, _, future), ident in zip(sending, results):
            if future.done():
                continue
            if isinstance(ident, Exception):
                future.set_exception(BusUnavailable(f"Redis refused the event: {ident}"))
            else:
                self.published += 1
                future.set_result(_text(ident))
        self._commands_ok()
        at = len(sending)
        live = _rows(results[at])
        at += 1
        caught_up = len(live) < count
        if not caught_up:
            feed.wake = True
        if feed.cursor > history.ZERO:
            if live and parse_id(live[0][0]) == feed.cursor:
                live = live[1:]
            elif live and await self._trimmed_past(feed):
                self.lost_gaps += 1
                self._on_gap(feed.name, gap_message(feed.name, feed.cursor, _text(live[0][0])))
        if live:
            feed.cursor = parse_id(live[-1][0])
            self.received += len(live)
            self._on_events(feed.name, _messages(feed.prefix, live))
        for request in resumes:
            rows = _rows(results[at])
            at += 1
            if not request.alive():
                continue
            if request.after > feed.cursor and not caught_up:
                continue   # this instance has not delivered up to `since` yet: wait for it
            page = []
            for ident, fields in rows:
                try:
                    payload = history.entry_message(feed.prefix, ident, fields)
                except ValueError:
                    payload = b""   # not an event: skipped, but it moves the page on
                page.append((parse_id(ident), payload))
            step = history.resume_step(request.after, page, len(rows) >= PAGE, feed.cursor)
            if history.gap_before(request.after, [i for i, _ in page[:1]], feed.cursor):
                first = format_id(step.entries[0][0]) if step.entries else None
                request.notice(gap_message(feed.name, request.after, first))
            sent = [payload for _, payload in step.entries if payload]
            if sent:
                request.send(sent)
            request.after = step.after
            if step.done:
                request.attach()
                feed.resumes.remove(request)
        if feed.resumes:
            feed.wake = True
        if caught_up and epoch == feed.epoch:
            feed.synced = True

    async def _trimmed_past(self, feed: Feed) -> bool:
        """The cursor's entry is gone and later ones are not: trimmed by size (this instance fell
        more than history_size events behind, or Redis lost data), unless age trimming explains
        it (the cursor is older than the history's age limit)."""
        assert feed.cursor is not None
        bounds = self.bounds(feed.name)
        floor = bounds.min_id(_now_ms())
        if floor is None or feed.cursor >= floor:
            return True
        if not feed.synced:   # it may have missed wake-ups: later events may have aged out unread
            return True
        # the cursor aged out; events after it went too only if more than the history arrived
        return bool(await self._client.xlen(feed.key) >= bounds.size)

    def _commands_ok(self) -> None:
        if self._commands != OK:
            self._commands = OK
            self.last_error = None
            self._state_changed()

    async def _ping(self) -> None:
        """PING every 2 s: the round-trip figures, and the command connection's state."""
        errors = _redis_errors()

        failures = 0
        while True:
            started = time.perf_counter()
            try:
                await self._ping_once()
            except errors as exc:
                self.last_error = _describe(exc, self.url)
                self.last_rtt = None
                if self._commands != DOWN:
                    self._commands = DOWN
                    self._state_changed(self.last_error)
                failures += 1
                await asyncio.sleep(backoff(failures))
                continue
            failures = 0
            self.last_rtt = time.perf_counter() - started
            self.rtt.observe(self.last_rtt)
            self._commands_ok()
            await asyncio.sleep(PING_EVERY)


    async def _ping_once(self) -> None:
        """PING Redis; on a cluster each master, and one answer is enough (a shard that is down
        is the subscriber's to report, per shard)."""
        if not self.cluster:
            await self._client.ping()
            return
        nodes = self._client.get_primaries()
        if not nodes:   # not initialised yet: this reads the slot map (or raises)
            await self._client.initialize()
            nodes = self._client.get_primaries()
        results = await asyncio.gather(*(self._client.ping(target_nodes=node) for node in nodes),
                                       return_exceptions=True)
        if nodes and all(isinstance(result, BaseException) for result in results):
            raise next(r for r in results if isinstance(r, BaseException))


def _fail(items: list[tuple[bytes, bytes, asyncio.Future[str]]], exc: BaseException) -> None:
    for _, _, future in items:
        if not future.done():
            future.set_exception(exc)
            future.exception()   # retrieved: a publisher that gave up must not log a warning


def _rows(result: Any) -> list[Any]:
    if isinstance(result, Exception):
        raise result
    return result or []


def _redis_errors() -> tuple[type[BaseException], ...]:
    """What a Redis or Redis Cluster round trip raises when the server cannot answer:
    redis-py's cluster errors (RedisClusterException, SlotNotCoveredError...) are not RedisError."""
    from redis.exceptions import RedisClusterException, RedisError

    return (RedisError, RedisClusterException, OSError)


def _messages(prefix: bytes, rows: list[Any]) -> list[bytes]:
    """The event messages of stream entries, skipping entries without the hub's fields."""
    out = []
    for ident, fields in rows:
        try:
            out.append(history.entry_message(prefix, ident, fields))
        except ValueError:
            continue   # written by someone else: not an event
    return out


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _describe(exc: BaseException, url: str) -> str:
    text = str(exc) or type(exc).__name__
    return f"Redis at {mask_url(url)}: {text}"
