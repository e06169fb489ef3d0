"""The running hub: channels and sessions (`routing.Hub`), the bus, event ids and figures.

`HubService.publish()` is the one way an event enters the hub (HTTP, WebSocket op or another
instance through the bus). Build it inside the running event loop, `await start()`, and
`await stop()` at shutdown.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cascade_cli.hub import messages
from cascade_cli.hub.bus import DOWN, LOCAL, OK, LocalBus, RedisBus
from cascade_cli.hub.metrics import LATENCY_BUCKETS, Histogram
from cascade_cli.hub.routing import ChannelState, Hub


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
        self.bus: LocalBus | RedisBus = bus_factory(self) if bus_factory else LocalBus()
        self.ready = False
        self.stopping = False
        self.rejected: dict[str, int] = {}
        self._next_id = 1

    # -- events --------------------------------------------------------------------------------

    def channel(self, name: str) -> ChannelState:
        """The accepted channel `name`; raises UnknownChannel otherwise."""
        state = self.hub.channel(name)
        if state is None:
            raise UnknownChannel(name)
        return state

    def publish(self, channel: str, data: Any) -> str:
        """Deliver an event to local subscribers and to the other instances; returns its id.

        Raises UnknownChannel, messages.EventTooLarge, or ValueError/TypeError when `data` is not
        JSON; nothing is published then.
        """
        event_id, payload = self.encode(channel, data)
        return self.publish_encoded(channel, event_id, payload)

    def encode(self, channel: str, data: Any) -> tuple[str, bytes]:
        """Assign the next id and encode the event (errors as for publish(), and then no id is
        used up)."""
        return self.encode_all(channel, [data])[0]

    def encode_all(self, channel: str, items: list[Any]) -> list[tuple[str, bytes]]:
        """encode() for several events: all of them, or none (no id used up) on an error."""
        self.channel(channel)
        first = self._next_id
        now = time.time()
        prefix = self.instance
        encoded = [(f"{prefix}-{first + n}", item) for n, item in enumerate(items)]
        result = [(event_id, messages.event(channel, event_id, now, item)) for event_id, item in encoded]
        self._next_id = first + len(items)
        return result

    def publish_encoded(self, channel: str, event_id: str, payload: bytes) -> str:
        """Publish an event made by encode() (in the order encode() made them)."""
        self.hub.deliver(self.channel(channel), payload)
        self.bus.publish(channel, payload)
        return event_id

    def receive_remote(self, channel: str, payload: bytes) -> None:
        """An event another instance published (called by the bus)."""
        state = self.hub.channel(channel)
        if state is not None:
            self.hub.deliver(state, payload)

    # -- state ---------------------------------------------------------------------------------

    def count_rejection(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1

    @property
    def redis_state(self) -> str:
        return self.bus.state

    def health(self) -> dict[str, Any]:
        """`GET /health`: the process is alive; `status` is "degraded" while Redis is down."""
        state = self.bus.state
        status = "ok" if state in (OK, LOCAL) else "degraded"
        return {
            "status": status,
            "redis": {"state": state, "url": self.bus.url and _masked(self.bus.url),
                      "error": self.bus.last_error,
                      "rtt_ms": None if self.bus.last_rtt is None else round(self.bus.last_rtt * 1000, 3)},
            "connections": len(self.hub.sessions),
            "uptime_s": round(time.time() - self.started_at, 3),
            "instance": self.instance,
        }

    def readiness(self) -> tuple[bool, str]:
        """`GET /ready`: ready to take clients: started, not stopping, and the bus usable."""
        if not self.ready:
            return False, "starting"
        if self.stopping:
            return False, "shutting down"
        if self.bus.state == DOWN:
            return False, "redis unreachable: events from other instances would be missed"
        if self.bus.state not in (OK, LOCAL):
            return False, f"redis {self.bus.state}"
        return True, "ready"

    def channel_info(self, state: ChannelState) -> dict[str, Any]:
        depths = [len(s.queue) for s in state.subscribers]
        return {"channel": state.name, "subscribers": len(state.subscribers),
                "events_published": state.published, "events_delivered": state.delivered,
                "events_dropped": state.dropped, "queue_depth_max": max(depths, default=0)}

    async def start(self) -> None:
        await self.bus.start()
        self.ready = True

    async def stop(self) -> None:
        self.stopping = True
        self.hub.flush_all()
        await self.bus.stop()


def _masked(url: str) -> str:
    from cascade_cli.config import mask_url

    return mask_url(url)


def redis_bus_factory(settings: Any, url: str, on_state: Callable[[str, str | None], None] | None = None
                      ) -> Callable[[HubService], RedisBus]:
    """A `bus_factory` for HubService that joins instances through Redis at `url`."""
    def build(service: HubService) -> RedisBus:
        return RedisBus(settings, url, service.receive_remote, instance=service.instance, on_state=on_state)
    return build
