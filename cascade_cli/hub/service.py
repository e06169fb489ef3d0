"""The running hub: channels and sessions (`routing.Hub`), the bus, history and figures.

`await HubService.publish()` is the one way an event enters the hub (HTTP or WebSocket op): it
returns the event ids once the channel's history holds the events, and the bus then delivers
them, in history order, to the subscribers of every instance. `subscribe(..., since=)` resumes a
client from an id. Build the service inside the running event loop, `await start()`, and
`await stop()` at shutdown.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cascade_cli.hub import history, messages
from cascade_cli.hub.bus import DOWN, LOCAL, OK, PARTIAL, BusUnavailable, LocalBus, RedisBus, Resume
from cascade_cli.hub.metrics import LATENCY_BUCKETS, Histogram
from cascade_cli.hub.routing import ChannelState, Hub, Session

__all__ = ["BusUnavailable", "HubOptions", "HubService", "UnknownChannel", "redis_bus_factory"]


@dataclass(frozen=True)
class HubOptions:
    """What `cascade serve` was asked for (from settings and flags)."""

    channels: tuple[str, ...]
    allow_any_channel: bool = False
    queue_size: int = 1000
    policy: str = "drop-oldest"
    max_connections: int = 10_000
    connect_rate: float = 0.0
    allowed_origins: tuple[str, ...] = ()
    token: str | None = None
    heartbeat: float = 20.0
    heartbeat_timeout: float = 20.0
    max_message_size: int = 65536
    compression: bool = False
    max_publish_batch: int = 1000
    history_size: int = 1000
    history_ttl: float = 3600.0
    channel_history: tuple[str, ...] = ()

    def bounds(self) -> Callable[[str], history.Bounds]:
        """The history bounds of each channel (default and per-channel overrides)."""
        return history.channel_bounds(history.Bounds(self.history_size, self.history_ttl),
                                      self.channel_history)


class UnknownChannel(LookupError):
    """The hub does not accept this channel name."""


class HubService:
    """The hub of one `cascade serve` process."""

    def __init__(self, options: HubOptions, bus_factory: Callable[[HubService], Any] | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.options = options
        self.instance = uuid.uuid4().hex[:8]
        self.started_at = time.time()
        self.broadcast_latency = Histogram(LATENCY_BUCKETS)
        self.hub = Hub(options.channels, queue_size=options.queue_size, policy=options.policy,
                       schedule=loop.call_soon, clock=time.perf_counter,
                       allow_any_channel=options.allow_any_channel,
                       on_flush=self.broadcast_latency.observe)
        self.bus: LocalBus | RedisBus = (bus_factory(self) if bus_factory
                                         else LocalBus(options.bounds(), self.receive))
        self.ready = False
        self.stopping = False
        self.rejected: dict[str, int] = {}
        self._resuming: weakref.WeakKeyDictionary[Session, dict[str, object]] = weakref.WeakKeyDictionary()
        for name in self.hub.channels:
            self.bus.follow(name)

    # -- events --------------------------------------------------------------------------------

    def channel(self, name: str) -> ChannelState:
        """The accepted channel `name` (followed on the bus from now on); raises UnknownChannel
        otherwise."""
        state = self.hub.channel(name)
        if state is None:
            raise UnknownChannel(name)
        self.bus.follow(name)
        return state

    async def publish(self, channel: str, data: Any) -> str:
        """Publish one event; its id once it is in history. Raises as publish_many()."""
        return (await self.publish_many(channel, [data]))[0]

    async def publish_many(self, channel: str, items: list[Any]) -> list[str]:
        """Append events to the channel's history (all of them, in order, or none when one is
        invalid) and return their ids; delivery to subscribers follows from the bus.

        Raises UnknownChannel, messages.EventTooLarge, ValueError/TypeError when data is not
        JSON (nothing published then), or BusUnavailable when history cannot be written now
        (the caller may retry: some of the events may have been written).
        """
        state = self.channel(channel)
        encoded = self.encode_all(channel, items)
        return await self.bus.publish(state.name, encoded)

    def encode_all(self, channel: str, items: list[Any]) -> list[tuple[bytes, bytes]]:
        """Each event as a history entry `(ts, data)`, checked against the size limit with the
        longest possible id; raises as publish_many() (and then nothing is published)."""
        overhead = len(history.event_prefix(messages.dumps(channel))) + history.MAX_ID_CHARS + 20
        ts = messages.dumps(time.time())
        out = []
        for item in items:
            data = messages.data(item)
            size = overhead + len(ts) + len(data)
            if size > messages.MAX_EVENT_BYTES:
                raise messages.EventTooLarge(f"the event is up to {size} bytes encoded; the limit is "
                                             f"{messages.MAX_EVENT_BYTES}")
            out.append((ts, data))
        return out

    def receive(self, channel: str, payloads: list[bytes]) -> None:
        """Events in history order for this instance's subscribers (called by the bus)."""
        state = self.hub.channels.get(channel)
        if state is not None:
            deliver = self.hub.deliver
            for payload in payloads:
                deliver(state, payload)

    def gap(self, channel: str, notice: bytes) -> None:
        """History was trimmed past this instance's cursor (called by the bus): every subscriber
        of the channel gets the gap notice after what it already had queued."""
        state = self.hub.channels.get(channel)
        if state is not None:
            for session in list(state.subscribers):
                self.hub.drain(session)
                self.hub.notify(session, notice)

    def subscribe(self, session: Session, state: ChannelState, since: str | None = None) -> None:
        """Subscribe a session; with `since` (an event id, validated by the caller with
        history.parse_id) it first gets every event after that id still in history, in order,
        a gap notice when some were trimmed, then live events, without a gap or a duplicate."""
        resuming = self._resuming.setdefault(session, {})
        if since is None:
            resuming.pop(state.name, None)   # a resume still running for this channel is dropped
            self.hub.subscribe(session, state)
            return
        session.channels[state.name] = state     # subscribed from the client's point of view
        hub = self.hub
        token = resuming[state.name] = object()   # replaces any earlier resume of this channel

        def attach() -> None:
            resuming.pop(state.name, None)
            hub.subscribe(session, state)

        self.bus.resume(state.name, Resume(
            history.parse_id(since),
            notice=lambda payload: hub.notify(session, payload),
            send=lambda payloads: hub.enqueue(session, state, payloads),
            attach=attach,
            alive=lambda: (not session.closed and session.channels.get(state.name) is state
                           and resuming.get(state.name) is token)))

    async def history(self, channel: str, since: str | None, limit: int) -> Any:
        """A page of the channel's history (see bus.HistoryPage); raises UnknownChannel,
        ValueError for a malformed `since`, BusUnavailable. Reading creates no channel."""
        if channel not in self.hub.channels and not (self.options.allow_any_channel
                                                     and messages.valid_channel_name(channel)):
            raise UnknownChannel(channel)
        return await self.bus.history(channel, None if since is None else history.parse_id(since), limit)

    # -- state ---------------------------------------------------------------------------------

    def count_rejection(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    def health(self) -> dict[str, Any]:
        """`GET /health`: the process is alive; `status` is "degraded" while Redis is down."""
        state = self.bus.state
        status = "ok" if state in (OK, LOCAL) else "degraded"
        rtt = None if self.bus.last_rtt is None or state == DOWN else round(self.bus.last_rtt * 1000, 3)
        redis: dict[str, Any] = {"state": state, "url": self.bus.url and _masked(self.bus.url),
                                 "error": self.bus.problem(), "rtt_ms": rtt}
        shards = self.bus.shards()
        if len(shards) > 1 or state == PARTIAL:
            redis["shards"] = shards
        return {
            "status": status,
            "redis": redis,
            "connections": len(self.hub.sessions),
            "uptime_s": round(time.time() - self.started_at, 3),
            "instance": self.instance,
            "pid": os.getpid(),
        }

    def readiness(self) -> tuple[bool, str]:
        """`GET /ready`: ready to take clients: started, not stopping, and the bus usable."""
        if not self.ready:
            return False, "starting"
        if self.stopping:
            return False, "shutting down"
        if self.bus.state == DOWN:
            return False, "redis unreachable: events can be neither published nor delivered"
        if self.bus.state == PARTIAL:   # every instance shares the outage: keep taking clients
            return True, "ready; a Redis shard is unreachable: its channels are paused"
        if self.bus.state not in (OK, LOCAL):
            return False, f"redis {self.bus.state}"
        return True, "ready"

    def channel_info(self, state: ChannelState) -> dict[str, Any]:
        depths = [len(s.queue) for s in state.subscribers]
        return {"channel": state.name, "subscribers": len(state.subscribers),
                "events_published": state.published, "events_delivered": state.delivered,
                "events_dropped": state.dropped, "queue_depth_max": max(depths, default=0)}

    async def start(self) -> None:
        """Start the bus and give it a moment to connect, so the first requests find it ready."""
        await self.bus.start(wait=2.0)
        self.ready = True

    async def stop(self) -> None:
        self.stopping = True
        self.hub.flush_all()
        await self.bus.stop()


def _masked(url: str) -> str:
    from cascade_cli.config import mask_url

    return mask_url(url)


def redis_bus_factory(settings: Any, url: str, on_state: Callable[[str, str | None], None] | None = None,
                      cluster: bool = False) -> Callable[[HubService], RedisBus]:
    """A `bus_factory` for HubService that joins instances through Redis at `url` (a Redis
    Cluster node when `cluster`)."""
    def build(service: HubService) -> RedisBus:
        return RedisBus(settings, url, service.receive, instance=service.instance,
                        bounds=service.options.bounds(), cluster=cluster, on_state=on_state,
                        on_gap=service.gap)
    return build
