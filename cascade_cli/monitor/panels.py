"""Pure: readings of each source -> its JSON-ready panel, the overall status and the exit code.

One tracker per source keeps what a panel needs across refreshes (the previous counters for
rates, the time series for sparklines). Call `update(now, ...)` with a fresh reading, or
`unreachable(now, error)` when the source did not answer; both return the panel dict
documented in docs/monitor.md. No I/O here: the readings come from `sources`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from cascade_cli.bench.stats import percentile
from cascade_cli.hub.metrics import Histogram
from cascade_cli.monitor.promtext import Samples, value
from cascade_cli.monitor.series import Rate, Series, rounded, total

OK, DEGRADED, UNREACHABLE, OFF = "ok", "degraded", "unreachable", "off"
STATUS_ORDER = (OK, DEGRADED, UNREACHABLE)
EXIT_CODES = {OK: 0, DEGRADED: 3, UNREACHABLE: 1}
RTT_WINDOW_S = 60.0
"""Seconds of PING samples behind the Redis p50/p99 figures."""
LATENCY_WINDOW_S = 60.0
"""Seconds of histogram deltas behind the hub's broadcast and HTTP latency figures."""


def overall(panels: Mapping[str, Mapping[str, Any]]) -> str:
    """The worst status of the panels that are not off (ok when all are off)."""
    worst = OK
    for panel in panels.values():
        status = panel.get("status", OK)
        if status in STATUS_ORDER and STATUS_ORDER.index(status) > STATUS_ORDER.index(worst):
            worst = status
    return worst


def exit_code(status: str) -> int:
    """`cascade monitor --once`: 0 healthy, 3 degraded, 1 unreachable."""
    return EXIT_CODES.get(status, 0)


def off_panel(reason: str) -> dict[str, Any]:
    return {"status": OFF, "reason": reason}


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)


class HistogramWindow:
    """Quantiles of what a cumulative histogram gained over the last `window` seconds."""

    def __init__(self, window: float) -> None:
        self.window = window
        self.snapshots: deque[tuple[float, tuple[int, ...], float]] = deque()
        self.bounds: tuple[float, ...] = ()

    def add(self, now: float, histogram: Histogram) -> None:
        if histogram.bounds != self.bounds or (self.snapshots and histogram.count < self.snapshots[-1][1][-1]):
            self.snapshots.clear()   # other buckets, or the counter went down: the peer restarted
            self.bounds = histogram.bounds
        running, cumulative = 0, []
        for n in histogram.counts:
            running += n
            cumulative.append(running)
        self.snapshots.append((now, tuple(cumulative), histogram.sum))
        while len(self.snapshots) > 2 and self.snapshots[1][0] <= now - self.window:
            self.snapshots.popleft()

    def delta(self, last_only: bool = False) -> Histogram | None:
        """What was observed over the window (or since the previous snapshot); None before two
        snapshots."""
        if len(self.snapshots) < 2:
            return None
        (_, old, old_sum), (_, new, new_sum) = self.snapshots[-2 if last_only else 0], self.snapshots[-1]
        histogram = Histogram(self.bounds)
        previous = 0
        for index, (a, b) in enumerate(zip(old, new)):
            gained = b - a
            histogram.counts[index] = gained - previous
            previous = gained
        histogram.count = new[-1] - old[-1]
        histogram.sum = new_sum - old_sum
        return histogram

    def quantile_ms(self, q: float, last_only: bool = False) -> float | None:
        delta = self.delta(last_only)
        return None if delta is None or delta.count == 0 else _ms(delta.quantile(q))

    def rate(self, last_only: bool = True) -> float | None:
        """Observations per second over the last interval (or the window)."""
        if len(self.snapshots) < 2:
            return None
        (t0, old, _), (t1, new, _) = self.snapshots[-2 if last_only else 0], self.snapshots[-1]
        return (new[-1] - old[-1]) / (t1 - t0) if t1 > t0 else None


class Tracker:
    """What every source's tracker shares: the time-series window and the unreachable panel."""

    def __init__(self, window: float) -> None:
        self.window = window
        self.series: dict[str, Series] = {}

    def _point(self, name: str, now: float, value_: float | None) -> None:
        series = self.series.get(name)
        if series is None:
            series = self.series[name] = Series(self.window)
        series.add(now, value_)

    def _series_json(self) -> dict[str, list[list[float | None]]]:
        return {name: series.to_json() for name, series in self.series.items()}

    def _gap(self, now: float) -> None:
        for series in self.series.values():
            series.add(now, None)

    def unreachable(self, now: float, error: str, **known: Any) -> dict[str, Any]:
        """The panel of a source that did not answer; its series get a gap, rates restart."""
        self._gap(now)
        self.forget()
        return {"status": UNREACHABLE, "error": error, "problems": [], **known,
                "series": self._series_json()}

    def forget(self) -> None:
        """Drop the previous counters (the next reading starts the rates afresh)."""


# ---- Redis -----------------------------------------------------------------------------------

def _persistence(info: Mapping[str, Any], save_config: str | None) -> tuple[dict[str, Any], list[str]]:
    aof = str(info.get("aof_enabled", 0)) == "1"
    if save_config is None:
        rdb = None
    else:
        rdb = bool(save_config.strip())
    mode = "+".join(name for name, on in (("rdb", rdb), ("aof", aof)) if on) or ("none" if rdb is not None else
                                                                              "aof" if aof else "unknown")
    state = {
        "mode": mode,
        "loading": str(info.get("loading", 0)) == "1",
        "last_save_status": info.get("rdb_last_bgsave_status"),
        "aof_write_status": info.get("aof_last_write_status") if aof else None,
        "changes_since_save": info.get("rdb_changes_since_last_save"),
        "last_save_time": info.get("rdb_last_save_time"),
        "in_progress": str(info.get("rdb_bgsave_in_progress", 0)) == "1"
                       or str(info.get("aof_rewrite_in_progress", 0)) == "1",
    }
    problems = []
    if state["loading"]:
        problems.append("loading its data set: most commands are refused (LOADING) until it is loaded")
    if state["last_save_status"] == "err":
        problems.append("the last background save failed: check the server's log and disk")
    if aof and info.get("aof_last_write_status") == "err":
        problems.append("the last append-only file write failed: check the disk")
    if aof and info.get("aof_last_bgrewrite_status") == "err":
        problems.append("the last append-only file rewrite failed")
    return state, problems


def keys_in(info: Mapping[str, Any]) -> int:
    """Keys in every database of INFO keyspace (`db0: {keys: 3, ...}` or `db0:keys=3,...`)."""
    count = 0
    for name, entry in info.items():
        if not (name.startswith("db") and name[2:].isdigit()):
            continue
        if isinstance(entry, Mapping):
            count += int(entry.get("keys", 0))
        else:
            fields = dict(part.split("=", 1) for part in str(entry).split(",") if "=" in part)
            count += int(fields.get("keys", 0))
    return count


class RedisTracker(Tracker):
    """Redis panels from INFO, PING round trips and the `save` setting."""

    def __init__(self, window: float) -> None:
        super().__init__(window)
        self.ops = Rate()
        self.hits = Rate()
        self.misses = Rate()
        self.rtts: deque[tuple[float, float]] = deque()

    def forget(self) -> None:
        self.ops.reset()
        self.hits.reset()
        self.misses.reset()

    def update(self, now: float, info: Mapping[str, Any], rtts: Iterable[float], *, own_commands: int,
               identity: tuple[str, str, str], save_config: str | None) -> dict[str, Any]:
        """`info`: INFO's fields (any section layout); `rtts`: this refresh's PING round trips in
        seconds; `own_commands`: commands the monitor sent since its previous INFO (PINGs and
        that INFO), left out of ops/s; `identity`: (engine, server, version)."""
        tick = list(rtts)
        for rtt in tick:
            self.rtts.append((now, rtt))
        while self.rtts and self.rtts[0][0] < now - RTT_WINDOW_S:
            self.rtts.popleft()
        recent = [rtt * 1000 for _, rtt in self.rtts]
        ops = self.ops.update(now, float(info.get("total_commands_processed", 0)), own_commands)
        hits, misses = float(info.get("keyspace_hits", 0)), float(info.get("keyspace_misses", 0))
        hit_rate, miss_rate = self.hits.update(now, hits), self.misses.update(now, misses)
        lookups_recent = None if hit_rate is None or miss_rate is None else hit_rate + miss_rate
        persistence, problems = _persistence(info, save_config)
        used, limit = int(info.get("used_memory", 0)), int(info.get("maxmemory", 0) or 0)
        if limit and used >= 0.9 * limit:
            problems.append(f"memory at {used / limit:.0%} of maxmemory: keys will be evicted or writes refused")
        if info.get("role") in ("slave", "replica") and info.get("master_link_status") not in (None, "up"):
            problems.append(f"replica whose link to its master is {info.get('master_link_status')}")
        tick_p99 = percentile([r * 1000 for r in tick], 99) if tick else None
        self._point("rtt_p99_ms", now, tick_p99)
        self._point("ops_per_sec", now, ops)
        engine, server, version = identity
        return {
            "status": DEGRADED if problems else OK,
            "error": None,
            "problems": problems,
            "engine": engine, "server": server, "version": version,
            "role": info.get("role"),
            "ops_per_sec": rounded(ops, 1),
            "rtt_p50_ms": round(percentile(recent, 50), 3) if recent else None,
            "rtt_p99_ms": round(percentile(recent, 99), 3) if recent else None,
            "memory_bytes": used,
            "memory_human": info.get("used_memory_human"),
            "maxmemory_bytes": limit,
            "clients": info.get("connected_clients"),
            "keys": keys_in(info),
            "hit_ratio": round(hits / (hits + misses), 4) if hits + misses else None,
            "hit_ratio_recent": round(hit_rate / lookups_recent, 4) if lookups_recent else None,
            "persistence": persistence,
            "uptime_s": info.get("uptime_in_seconds"),
            "series": self._series_json(),
        }


# ---- the hub ---------------------------------------------------------------------------------

def _per_channel(samples: Samples, name: str) -> dict[str, float]:
    return {labels.get("channel", ""): float(v) for labels, v in samples.get(name, [])
            if isinstance(v, (int, float))}


class HubTracker(Tracker):
    """Hub panels from `/health`, the metric samples and the clients with the deepest queues."""

    def __init__(self, window: float) -> None:
        super().__init__(window)
        self.instance: str | None = None
        self.rates: dict[tuple[str, str], Rate] = {}
        self.broadcast = HistogramWindow(LATENCY_WINDOW_S)
        self.routes: dict[tuple[str, str], HistogramWindow] = {}

    def forget(self) -> None:
        self.rates.clear()
        self.broadcast = HistogramWindow(LATENCY_WINDOW_S)
        self.routes.clear()

    def _rate(self, kind: str, channel: str, now: float, counter: float) -> float | None:
        rate = self.rates.get((kind, channel))
        if rate is None:
            rate = self.rates[(kind, channel)] = Rate()
        return rate.update(now, counter)

    def update(self, now: float, health: Mapping[str, Any], samples: Samples,
               slowest: list[Mapping[str, Any]], ready: tuple[bool, str] | None = None) -> dict[str, Any]:
        """`health`: the `/health` document; `samples`: the `/metrics` families; `slowest`: client
        records (`/api/clients` shape) with the deepest queues; `ready`: `/ready`'s answer."""
        if health.get("instance") != self.instance:
            self.forget()   # another process answers now: its counters started from zero
            self.instance = health.get("instance")
        subscribers = _per_channel(samples, "cascade_hub_channel_subscribers")
        published = _per_channel(samples, "cascade_hub_events_published_total")
        delivered = _per_channel(samples, "cascade_hub_events_delivered_total")
        dropped = _per_channel(samples, "cascade_hub_events_dropped_total")
        channels = []
        for name in sorted(set(subscribers) | set(published)):
            channels.append({
                "channel": name,
                "subscribers": int(subscribers.get(name, 0)),
                "published_per_sec": rounded(self._rate("published", name, now, published.get(name, 0.0)), 1),
                "delivered_per_sec": rounded(self._rate("delivered", name, now, delivered.get(name, 0.0)), 1),
                "dropped_per_sec": rounded(self._rate("dropped", name, now, dropped.get(name, 0.0)), 1),
                "dropped_total": int(dropped.get(name, 0)),
            })
        for labels, histogram in samples.get("cascade_hub_broadcast_latency_seconds", [])[:1]:
            self.broadcast.add(now, histogram)
        routes = []
        for labels, histogram in samples.get("cascade_http_request_duration_seconds", []):
            key = (labels.get("method", ""), labels.get("route", ""))
            window = self.routes.get(key)
            if window is None:
                window = self.routes[key] = HistogramWindow(LATENCY_WINDOW_S)
            window.add(now, histogram)
            routes.append({"method": key[0], "route": key[1], "requests": histogram.count,
                           "requests_per_sec": rounded(window.rate(), 1),
                           "p50_ms": window.quantile_ms(0.5), "p99_ms": window.quantile_ms(0.99)})
        routes.sort(key=lambda r: (-(r["requests_per_sec"] or 0), -r["requests"], r["route"]))
        delivered_rate = total(c["delivered_per_sec"] for c in channels)
        connections = health.get("connections")
        self._point("broadcast_p99_ms", now, self.broadcast.quantile_ms(0.99, last_only=True))
        self._point("delivered_per_sec", now, delivered_rate)
        self._point("connections", now, connections)
        problems = []
        redis = health.get("redis") or {}
        if health.get("status") != "ok":
            problems.append(f"redis bus {redis.get('state')}" + (f": {redis['error']}" if redis.get("error") else ""))
        if ready is not None and not ready[0]:
            problems.append(f"not ready: {ready[1]}")
        return {
            "status": DEGRADED if problems else OK,
            "error": None,
            "problems": problems,
            "instance": health.get("instance"),
            "bus": redis.get("state"),
            "uptime_s": health.get("uptime_s"),
            "connections": connections,
            "channels": channels,
            "published_per_sec": total(c["published_per_sec"] for c in channels),
            "delivered_per_sec": delivered_rate,
            "dropped_per_sec": total(c["dropped_per_sec"] for c in channels),
            "dropped_total": sum(c["dropped_total"] for c in channels),
            "slow_clients_disconnected": int(value(samples, "cascade_hub_slow_clients_disconnected_total") or 0),
            "slowest_queues": [{"client_id": c.get("client_id"), "channels": c.get("channels", []),
                                "queue_depth": c.get("queue_depth", 0)}
                               for c in slowest if c.get("queue_depth", 0) > 0],
            "broadcast_p50_ms": self.broadcast.quantile_ms(0.5),
            "broadcast_p99_ms": self.broadcast.quantile_ms(0.99),
            "http": routes,
            "series": self._series_json(),
        }


# ---- the Venice bridge -----------------------------------------------------------------------

class VeniceTracker(Tracker):
    """Venice panels from `venice.Probe` records (`to_record()`-like dicts of one probe)."""

    def update(self, now: float, probe: Mapping[str, Any], checked_at: float) -> dict[str, Any]:
        """`probe`: url, outcome (ok|error|unreachable), status, latency_ms, success, flags,
        retry_after_s, message, hint."""
        outcome = probe.get("outcome")
        flags = list(probe.get("flags") or [])
        self._point("latency_ms", now, probe.get("latency_ms"))
        problems = []
        if outcome == "error":
            problems.append(probe.get("message") or f"HTTP {probe.get('status')}")
        for flag in flags:
            if flag in ("_fallback", "_stale"):
                problems.append({"_fallback": "answered with fallback sample records, not live data",
                                 "_stale": "answered with stale cached data"}[flag])
        status = UNREACHABLE if outcome == "unreachable" else DEGRADED if problems else OK
        return {
            "status": status,
            "error": probe.get("message") if outcome == "unreachable" else None,
            "hint": probe.get("hint") if outcome != "ok" else None,
            "problems": problems,
            "url": probe.get("url"),
            "http_status": probe.get("status"),
            "latency_ms": probe.get("latency_ms"),
            "success": probe.get("success"),
            "items": probe.get("items"),
            "flags": flags,
            "retry_after_s": probe.get("retry_after_s"),
            "checked_at": round(checked_at, 3),
            "series": self._series_json(),
        }
