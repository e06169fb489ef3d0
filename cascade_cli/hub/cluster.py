"""Sharded pub/sub for the hub's bus: SSUBSCRIBE to a growing set of channels, on one Redis node
or across the masters of a Redis Cluster, reporting each shard's health.

`ShardedSubscriber` keeps one subscriber connection per shard: the single node, or every
cluster master that owns the slot of a followed channel (routed by redis-py's cluster slot
map). Messages go straight to `on_message(channel, data)`. Once the server has confirmed a
subscription, `on_subscribed(channels)` is called, so the caller can catch those channels up
(read what it missed) knowing that every later message will arrive. When a shard's connection
drops, that shard turns "down", the slot map is refreshed (a failover or a slot move sends the
channels to their new owner) and the shard reconnects with capped exponential backoff and
jitter, then subscribes again (and `on_subscribed` is called again). An idle connection is
pinged so that a node that stops answering is noticed within `settings.timeout` seconds.

`detect_cluster()` tells whether a URL points at a Redis Cluster node.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from cascade_cli.config import mask_url
from cascade_cli.hub.bus import backoff

if TYPE_CHECKING:
    from redis.asyncio.cluster import RedisCluster

    from cascade_cli.config import RedisSettings

OK = "ok"
PARTIAL = "partial"
DOWN = "down"
CONNECTING = "connecting"

PING_IDLE = 5.0
"""Seconds without any reply on a subscriber connection before it is pinged."""
REFRESH_MIN_INTERVAL = 0.5
"""Seconds between two refreshes of the cluster slot map."""
MAX_PER_COMMAND = 512
"""Channels per SSUBSCRIBE / SUNSUBSCRIBE command."""


async def detect_cluster(settings: RedisSettings, url: str) -> bool:
    """True when the server at `url` answers `INFO cluster` with `cluster_enabled:1`; any error
    (unreachable, a server that does not know the section) counts as not a cluster."""
    from redis.exceptions import RedisError

    from cascade_cli.connect import redis_client

    client = redis_client(settings, url, max_connections=1)
    try:
        info = await client.info("cluster")
        return str(info.get("cluster_enabled", "0")) == "1"
    except (RedisError, OSError):  # unreachable or not understood: not a cluster, as documented
        return False
    finally:
        with contextlib.suppress(Exception):
            await client.aclose()


class _Shard:
    """One subscriber connection (a node) and the channels routed to it."""

    __slots__ = (
        "assigned",
        "attempt",
        "awaiting",
        "confirmed",
        "connected",
        "error",
        "last_reply",
        "leaving",
        "name",
        "sent",
        "state",
        "subscribed",
        "task",
        "unsub",
        "url",
        "wake",
        "want",
    )

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.url = url
        self.assigned: dict[str, None] = {}   # channels routed here, in order
        self.want: dict[str, None] = {}       # to SSUBSCRIBE on the current connection
        self.sent: set[str] = set()           # SSUBSCRIBE sent on the current connection
        self.awaiting: set[str] = set()       # sent, not confirmed yet
        self.subscribed: set[str] = set()     # confirmed on the current connection
        self.leaving: set[str] = set()        # SUNSUBSCRIBE sent, confirmation not read yet
        self.unsub: list[str] = []            # to SUNSUBSCRIBE (routed elsewhere)
        self.confirmed: list[str] = []        # confirmed, not reported to on_subscribed yet
        self.state = CONNECTING
        self.error: str | None = None
        self.attempt = 0
        self.task: asyncio.Task[None] | None = None
        self.wake = asyncio.Event()
        self.last_reply = 0.0
        self.connected = False


class ShardedSubscriber:
    """SSUBSCRIBE to every followed channel (full Redis channel names), on the single node at
    `url` or, with `cluster=True`, on each cluster master owning some of the channels' slots.

    `on_message(channel, data)` gets every message (it must not raise or block);
    `on_subscribed(channels)` gets channels the server has just confirmed, after the first
    subscription and after every resubscription; `on_state()` hears about every change of a
    shard's state. Call `start()` once the event loop runs, `follow()` whenever channels are
    added, and `stop()` at shutdown.
    """

    def __init__(self, settings: RedisSettings, url: str, *, cluster: bool,
                 on_message: Callable[[str, bytes], None],
                 on_subscribed: Callable[[list[str]], None],
                 on_state: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.url = url
        self.cluster = cluster
        self._on_message = on_message
        self._on_subscribed = on_subscribed
        self._on_state = on_state
        self._channels: dict[str, None] = {}
        self._names: dict[bytes, str] = {}
        self._owner: dict[str, _Shard] = {}
        self._shards: dict[str, _Shard] = {}
        self._orphans: dict[str, None] = {}    # cluster: followed, no known owner yet
        self._running = False
        self._topology: RedisCluster | None = None
        self._topology_task: asyncio.Task[None] | None = None
        self._topology_ready = False
        self._topology_state = CONNECTING
        self._topology_error: str | None = None
        self._refresh = asyncio.Event()
        self._retiring: set[asyncio.Task[None]] = set()
        self._last_summary: Any = None

    # -- the interface ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start connecting in the background (returns at once)."""
        if self._running:
            return
        self._running = True
        if self.cluster:
            from cascade_cli.connect import redis_cluster_client

            # Slots of a master that is down are still listed; a partial map is still usable.
            self._topology = redis_cluster_client(self.settings, self.url, require_full_coverage=False)
            self._orphans.update(self._channels)
            self._refresh.set()
            self._topology_task = asyncio.create_task(self._topology_loop(), name="cascade-shard-topology")
        else:
            shard = self._shard(_node_name(self.url), self.url)
            for channel in self._channels:
                self._assign(channel, shard)

    async def stop(self) -> None:
        """Close every subscriber connection; no callback is called after this returns."""
        self._running = False
        tasks = [shard.task for shard in self._shards.values() if shard.task is not None]
        tasks += self._retiring
        if self._topology_task is not None:
            tasks.append(self._topology_task)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._shards.clear()
        self._owner.clear()
        if self._topology is not None:
            with contextlib.suppress(Exception):  # closing regardless
                await self._topology.aclose()
            self._topology = None

    def follow(self, channels: Iterable[str]) -> None:
        """Subscribe to `channels` too (already followed ones are ignored); never blocks."""
        for channel in channels:
            if channel in self._channels:
                continue
            self._channels[channel] = None
            self._names[channel.encode()] = channel
            if not self._running:
                continue
            if not self.cluster:
                self._assign(channel, next(iter(self._shards.values())))
            elif self._topology_ready:
                self._route(channel)
            else:
                self._orphans[channel] = None

    @property
    def state(self) -> str:
        """Overall: "ok" (every shard subscribed), "partial" (some down), "down" or "connecting"."""
        states = [shard.state for shard in self._shards.values()]
        if self._orphans and self._topology_ready:
            states.append(DOWN)
        if not states:
            return self._topology_state if self.cluster else CONNECTING
        if all(state == OK for state in states):
            return OK
        if DOWN in states:
            return PARTIAL if OK in states else (DOWN if CONNECTING not in states else CONNECTING)
        return CONNECTING

    def shards(self) -> list[dict[str, Any]]:
        """Each shard: its node (`host:port`), state ("ok", "down" or "connecting"), how many
        channels it carries and its last error."""
        return [{"node": shard.name, "state": shard.state, "channels": len(shard.assigned),
                 "error": shard.error} for shard in self._shards.values()]

    @property
    def last_error(self) -> str | None:
        """Why the slot map could not be fetched, else the first down shard's error, else None."""
        if self._topology_error is not None:
            return self._topology_error
        return next((shard.error for shard in self._shards.values() if shard.error), None)

    def channel_ok(self, channel: str) -> bool:
        """Whether the shard owning `channel` is connected and has confirmed the subscription."""
        shard = self._owner.get(channel)
        return shard is not None and shard.state == OK and channel in shard.subscribed

    # -- routing ------------------------------------------------------------------------------

    def _shard(self, name: str, url: str) -> _Shard:
        shard = self._shards.get(name)
        if shard is None:
            shard = self._shards[name] = _Shard(name, url)
            shard.task = asyncio.create_task(self._run(shard), name=f"cascade-shard-{name}")
            self._notify()
        return shard

    def _assign(self, channel: str, shard: _Shard) -> None:
        shard.assigned[channel] = None
        shard.want[channel] = None
        self._owner[channel] = shard
        shard.wake.set()

    def _unassign(self, channel: str, shard: _Shard) -> None:
        shard.assigned.pop(channel, None)
        shard.want.pop(channel, None)
        shard.awaiting.discard(channel)
        shard.subscribed.discard(channel)
        if channel in shard.sent:
            shard.sent.discard(channel)
            if shard.connected:
                shard.unsub.append(channel)
                shard.wake.set()
        if self._owner.get(channel) is shard:
            del self._owner[channel]

    def _route(self, channel: str) -> None:
        """Send `channel` to the shard of the master owning its slot (cluster only)."""
        from redis.exceptions import SlotNotCoveredError

        assert self._topology is not None
        try:
            node = self._topology.get_node_from_key(channel)
        except SlotNotCoveredError:
            node = None
        old = self._owner.get(channel)
        if node is None:
            if old is not None:
                self._unassign(channel, old)
            if channel not in self._orphans:
                self._orphans[channel] = None
                self._refresh.set()
            return
        self._orphans.pop(channel, None)
        shard = self._shard(node.name, _node_url(self.url, node.host, node.port))
        if old is not shard:
            if old is not None:
                self._unassign(channel, old)
            self._assign(channel, shard)
        elif channel not in shard.sent:
            shard.want[channel] = None
            shard.wake.set()

    def _reroute(self) -> None:
        """Follow the refreshed slot map: move channels whose slot has a new owner, drop shards
        left without channels."""
        for channel in self._channels:
            self._route(channel)
        for name, shard in list(self._shards.items()):
            if not shard.assigned:
                del self._shards[name]
                if shard.task is not None:
                    shard.task.cancel()
                    self._retiring.add(shard.task)
                    shard.task.add_done_callback(self._retiring.discard)
        self._notify()

    async def _topology_loop(self) -> None:
        assert self._topology is not None
        attempt = uncovered = 0
        while True:
            await self._refresh.wait()
            self._refresh.clear()
            try:
                await self._topology.nodes_manager.initialize()
            except Exception as exc:  # noqa: BLE001 - any failure: keep the old map, try again
                attempt += 1
                self._topology_error = _describe(exc, self.url)
                if not self._topology_ready:
                    self._topology_state = DOWN
                    self._notify()
                await asyncio.sleep(backoff(attempt))
                self._refresh.set()
                continue
            attempt = 0
            self._topology_error = None
            self._topology_ready = True
            self._topology_state = OK
            self._reroute()
            await asyncio.sleep(REFRESH_MIN_INTERVAL)
            if self._orphans:
                # Slots nobody serves yet (a cluster being resharded): look again later.
                uncovered += 1
                await asyncio.sleep(backoff(uncovered))
                self._refresh.set()
            else:
                uncovered = 0

    def _request_refresh(self) -> None:
        if self.cluster:
            self._refresh.set()

    # -- one shard's connection ---------------------------------------------------------------

    def _set_state(self, shard: _Shard, state: str, error: str | None = None) -> None:
        shard.error = error
        if shard.state != state:
            shard.state = state
            self._notify()

    def _notify(self) -> None:
        """Call on_state when the state or a shard's state changed."""
        summary = (self.state, tuple((shard.name, shard.state) for shard in self._shards.values()))
        if summary != self._last_summary:
            self._last_summary = summary
            if self._on_state is not None and self._running:
                self._on_state()

    async def _run(self, shard: _Shard) -> None:
        from cascade_cli.connect import redis_client

        while True:
            client = redis_client(self.settings, shard.url, max_connections=1)
            conn: Any = None
            try:
                conn = await client.connection_pool.get_connection()
                shard.connected = True
                shard.want = dict.fromkeys(shard.assigned)
                shard.last_reply = time.monotonic()
                shard.attempt = 0
                self._set_state(shard, OK)
                tasks = [asyncio.create_task(self._read(shard, conn)),
                         asyncio.create_task(self._write(shard, conn))]
                try:
                    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for task in tasks:
                        task.cancel()
                    await asyncio.gather(*tasks, return_exceptions=True)
                for task in done:
                    task.result()
                raise ConnectionError("the subscriber connection closed")
            except Exception as exc:  # noqa: BLE001 - any failure ends the connection; reconnect
                self._set_state(shard, DOWN, _describe(exc, shard.url))
                self._request_refresh()
            finally:
                shard.connected = False
                shard.want.clear()
                shard.sent.clear()
                shard.awaiting.clear()
                shard.subscribed.clear()
                shard.leaving.clear()
                shard.unsub.clear()
                shard.confirmed.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):  # the connection is already gone
                        await conn.disconnect()
                with contextlib.suppress(Exception):
                    await client.aclose()
            shard.attempt += 1
            await asyncio.sleep(backoff(shard.attempt))

    async def _write(self, shard: _Shard, conn: Any) -> None:
        """Send SSUBSCRIBE / SUNSUBSCRIBE as channels come and go; PING an idle connection."""
        ping_sent: float | None = None
        timeout = self.settings.timeout
        while True:
            shard.wake.clear()
            commands: list[tuple[str, ...]] = []
            new = [channel for channel in shard.want if channel in shard.assigned and channel not in shard.sent]
            shard.want.clear()
            if new:
                shard.sent.update(new)
                shard.awaiting.update(new)
                commands += [("SSUBSCRIBE", *group) for group in self._groups(new)]
            if shard.unsub:
                gone, shard.unsub = shard.unsub, []
                shard.leaving.update(gone)
                commands += [("SUNSUBSCRIBE", *group) for group in self._groups(gone)]
            now = time.monotonic()
            if ping_sent is not None and shard.last_reply >= ping_sent:
                ping_sent = None
            if ping_sent is None and now - shard.last_reply >= PING_IDLE:
                ping_sent = now
                commands.append(("PING",))
            if commands:
                if not conn.is_connected:
                    raise ConnectionError("the subscriber connection closed")
                await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
            if ping_sent is not None:
                wait = ping_sent + timeout - now
                if wait <= 0:
                    raise TimeoutError(f"no reply to PING within {timeout:g} s")
            else:
                wait = shard.last_reply + PING_IDLE - now
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(shard.wake.wait(), max(wait, 0.01))

    def _groups(self, channels: list[str]) -> list[list[str]]:
        """Channels in commands the server accepts: one slot per command on a cluster."""
        if self.cluster:
            from redis.crc import key_slot

            by_slot: dict[int, list[str]] = {}
            for channel in channels:
                by_slot.setdefault(key_slot(channel.encode()), []).append(channel)
            groups = list(by_slot.values())
        else:
            groups = [channels]
        return [group[i:i + MAX_PER_COMMAND] for group in groups for i in range(0, len(group), MAX_PER_COMMAND)]

    async def _read(self, shard: _Shard, conn: Any) -> None:
        """Deliver messages; record confirmations. An error reply (e.g. MOVED to an SSUBSCRIBE
        after a slot moved) ends the connection, which refreshes the slot map."""
        deliver = self._on_message
        names = self._names
        read = conn.read_response
        while True:
            response = await read(timeout=math.inf, push_request=True)
            shard.last_reply = time.monotonic()
            if not isinstance(response, list) or len(response) != 3:
                continue                                    # a PONG
            kind = response[0]
            if kind == b"smessage":
                if shard.confirmed:
                    self._report(shard)
                raw = response[1]
                name = names.get(raw)
                deliver(name if name is not None else raw.decode(errors="replace"), response[2])
            elif kind == b"ssubscribe":
                channel = names.get(response[1])
                if channel is not None and channel in shard.awaiting:
                    shard.awaiting.discard(channel)
                    shard.subscribed.add(channel)
                    shard.confirmed.append(channel)
                    if not shard.awaiting:
                        self._report(shard)
            elif kind == b"sunsubscribe":
                channel = names.get(response[1])
                if channel is None or channel in shard.leaving:
                    shard.leaving.discard(channel)          # our own SUNSUBSCRIBE
                elif channel in shard.sent:
                    # The server dropped it: its slot moved away from this node.
                    shard.sent.discard(channel)
                    shard.awaiting.discard(channel)
                    shard.subscribed.discard(channel)
                    self._request_refresh()
                    self._notify()

    def _report(self, shard: _Shard) -> None:
        channels = [channel for channel in shard.confirmed if channel in shard.subscribed]
        shard.confirmed.clear()
        if channels and self._running:
            self._on_subscribed(channels)


def _node_name(url: str) -> str:
    """`host:port` of a redis:// or rediss:// URL, or the socket path of a unix:// one."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    host = parts.hostname or "127.0.0.1"
    return f"{host}:{parts.port or 6379}"


def _node_url(url: str, host: str, port: int) -> str:
    """`url` (scheme, credentials, options) pointed at another node: `host:port`, database 0."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    netloc = f"{userinfo}@{address}" if userinfo else address
    return urlunsplit((parts.scheme, netloc, "/0", parts.query, ""))


def _describe(exc: BaseException, url: str) -> str:
    text = str(exc) or type(exc).__name__
    return f"Redis at {mask_url(url)}: {text}"
