"""The hub's figures as Prometheus metric families (`GET /metrics`)."""

from __future__ import annotations

from typing import Any

from cascade_cli.hub.metrics import Family, Histogram
from cascade_cli.hub.service import HubService

QUEUE_DEPTH_BUCKETS = (0, 1, 10, 100, 500, 1000, 10_000)


def families(service: HubService, http: Any, venice: Any = None) -> list[Family]:
    """Every metric family, read from live counters at scrape time."""
    hub = service.hub
    bus = service.bus
    channels = list(hub.channels.values())
    depths = Histogram(QUEUE_DEPTH_BUCKETS)
    for depth in hub.queue_depths():
        depths.observe(depth)

    def per_channel(attribute: str) -> list[tuple[dict[str, str], float]]:
        return [({"channel": c.name}, getattr(c, attribute)) for c in channels]

    result = [
        Family("cascade_hub_connections", "gauge", "Connected WebSocket clients.",
               [({}, len(hub.sessions))]),
        Family("cascade_hub_channel_subscribers", "gauge", "Local subscribers per channel.",
               [({"channel": c.name}, len(c.subscribers)) for c in channels]),
        Family("cascade_hub_events_published_total", "counter",
               "Events that entered this instance per channel (local publishes and other instances').",
               per_channel("published")),
        Family("cascade_hub_events_delivered_total", "counter",
               "Events written to client sockets per channel.", per_channel("delivered")),
        Family("cascade_hub_events_dropped_total", "counter",
               "Events dropped by the slow-client policy per channel.", per_channel("dropped")),
        Family("cascade_hub_slow_clients_disconnected_total", "counter",
               "Clients closed with 4008 by the disconnect policy.", [({}, hub.disconnected_slow)]),
        Family("cascade_hub_queue_depth", "histogram",
               "Events waiting in each client's send queue, at scrape time.", [({}, depths)]),
        Family("cascade_hub_queue_depth_max", "gauge", "Deepest client send queue.",
               [({}, max(hub.queue_depths(), default=0))]),
        Family("cascade_hub_broadcast_latency_seconds", "histogram",
               "Time from an event entering the hub to its last write to a client socket.",
               [({}, service.broadcast_latency)]),
        Family("cascade_hub_rejected_connections_total", "counter",
               "Refused WebSocket connects and rate-limited requests, by reason.",
               [({"reason": reason}, count) for reason, count in sorted(service.rejected.items())]),
        Family("cascade_http_request_duration_seconds", "histogram", "HTTP request latency per route.",
               [({"method": m, "route": r}, h) for (m, r), h in sorted(http.latency.items())]),
        Family("cascade_http_requests_total", "counter", "HTTP requests per route and status.",
               [({"method": m, "route": r, "status": str(s)}, n) for (m, r, s), n in sorted(http.counts.items())]),
        Family("cascade_redis_up", "gauge", "1 while the Redis bus is connected (1 for the local bus).",
               [({"state": bus.state}, 1 if bus.state in ("ok", "local") else 0)]),
        Family("cascade_redis_roundtrip_seconds", "histogram", "Redis PING round-trip time.",
               [({}, bus.rtt)]),
        Family("cascade_redis_bus_events_total", "counter", "Events through the Redis bus by direction.",
               [({"direction": "out"}, bus.published), ({"direction": "in"}, bus.received),
                ({"direction": "dropped"}, bus.dropped)]),
        Family("cascade_redis_reconnects_total", "counter", "Times the Redis bus reconnected.",
               [({}, bus.reconnects)]),
        Family("cascade_hub_history_gaps_total", "counter",
               "Times this instance found a channel's history trimmed past the last event it had "
               "delivered (its subscribers got a gap notice).", [({}, bus.lost_gaps)]),
    ]
    if venice is not None:
        result += [
            Family("cascade_venice_requests_total", "counter",
                   "Venice proxy answers by cache outcome, and upstream failures.",
                   [({"result": "hit"}, venice.hits), ({"result": "miss"}, venice.misses),
                    ({"result": "upstream_error"}, venice.upstream_errors)]),
            Family("cascade_venice_cache_errors_total", "counter",
                   "Redis errors while using the Venice cache.", [({}, venice.cache_errors)]),
        ]
    return result
