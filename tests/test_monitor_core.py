"""The monitor's pure core, no sockets: series, rates and sparklines; the Prometheus text parser
against the hub's own `metrics.render()`; histogram windows; the Redis, hub and Venice trackers;
the overall status and exit codes. Times are given by the test, so every rate is exact."""

from __future__ import annotations

import math
from typing import Any

import pytest

from cascade_cli.hub.metrics import Family, Histogram, render
from cascade_cli.monitor import panels
from cascade_cli.monitor.panels import (
    HistogramWindow,
    HubTracker,
    RedisTracker,
    VeniceTracker,
    exit_code,
    keys_in,
    off_panel,
    overall,
)
from cascade_cli.monitor.promtext import MetricsFormatError, parse, samples_of, value
from cascade_cli.monitor.series import SPARK_BLOCKS, Rate, Series, sparkline

LOW, HIGH = SPARK_BLOCKS[0], SPARK_BLOCKS[-1]


# ---- Series, Rate, sparkline ------------------------------------------------------------------

def test_series_keeps_the_window_and_rounds_its_json() -> None:
    series = Series(10.0)
    for t, v in ((0.0, 1.0), (5.0, None), (10.0, 3.0)):
        series.add(t, v)
    assert series.values() == [1.0, None, 3.0]   # t=0 is exactly `window` old at t=10: kept
    series.add(15.0, 2.0)
    assert series.values() == [None, 3.0, 2.0]   # t=0 is older than 15 - 10
    series.add(100.0, 4.0)
    assert series.values() == [4.0]
    series.add(101.23456, 1.0 / 3)
    assert series.to_json() == [[100.0, 4.0], [101.235, 0.333]]
    assert series.to_json(digits=1) == [[100.0, 4.0], [101.235, 0.3]]
    series.add(102.0, None)
    assert series.to_json()[-1] == [102.0, None]


def test_rate_first_reading_own_commands_resets() -> None:
    rate = Rate()
    assert rate.update(100.0, 1000.0) is None               # first reading
    assert rate.update(102.0, 1020.0) == 10.0               # 20 in 2 s
    assert rate.update(103.0, 1030.0, own=4) == 6.0         # own increments left out
    assert rate.update(104.0, 1032.0, own=5) == 0.0         # never negative
    assert rate.update(105.0, 10.0) is None                 # went down: the peer restarted
    assert rate.update(106.0, 17.0) == 7.0                  # counted from the new base
    assert rate.update(106.0, 20.0) is None                 # no time passed
    rate.reset()
    assert rate.update(107.0, 30.0) is None
    assert rate.update(107.5, 31.0) == 2.0


def test_sparkline_width_gaps_and_scale() -> None:
    assert sparkline([0, 7], 2) == LOW + HIGH
    assert sparkline([0, 3.5, 7], 3) == LOW + SPARK_BLOCKS[4] + HIGH   # half way, rounded
    assert sparkline([1, None, 1], 3) == HIGH + " " + HIGH             # a gap; scaled from 0
    assert sparkline([5, 5, 5], 3) == HIGH * 3                          # flat above the floor: top
    assert sparkline([0, 0, 0], 3) == LOW * 3                           # flat at the floor: bottom
    assert sparkline([5, 5], 2, floor=5) == LOW * 2
    assert sparkline([2], 4) == "   " + HIGH                          # padded on the left
    assert sparkline(list(range(20)), 5) == sparkline([15, 16, 17, 18, 19], 5)   # the last `width`
    assert sparkline([None, None], 3) == "   "
    assert sparkline([1, 2], 0) == ""
    # scaled from `floor`, values below it drawn as the lowest block
    assert sparkline([50, 100], 2, floor=50) == LOW + HIGH
    assert sparkline([10, 100], 2, floor=50) == LOW + HIGH
    assert sparkline([50, 100], 2) == SPARK_BLOCKS[4] + HIGH
    for values in ([1.0, 2.0, None, 8.0], [], [0.0] * 30):
        assert len(sparkline(values, 12)) == 12


# ---- Prometheus text ----------------------------------------------------------------------------

TRICKY = 'a "quoted" \\ back\\nslash\nnewline}{,='


def _histogram(bounds: tuple[float, ...], observations: list[float]) -> Histogram:
    histogram = Histogram(bounds)
    for v in observations:
        histogram.observe(v)
    return histogram


def _families() -> list[Family]:
    return [
        Family("demo_events_total", "counter", "Events.\nTwo lines \\ and a backslash.",
               [({"channel": "plain"}, 5), ({"channel": TRICKY}, 12345678), ({"channel": ""}, 0)]),
        Family("demo_ratio", "gauge", "A gauge.", [({}, 0.25)]),
        Family("demo_specials", "gauge", "Special values.",
               [({"kind": "inf"}, math.inf), ({"kind": "ninf"}, -math.inf), ({"kind": "tiny"}, 5e-05)]),
        Family("demo_latency_seconds", "histogram", "Latency.",
               [({"route": "/x", "method": "GET"},
                 _histogram((0.001, 0.01, 0.1), [0.0005, 0.002, 0.003, 0.05, 7.0])),
                ({"route": TRICKY, "method": "POST"}, _histogram((0.001, 0.01, 0.1), []))]),
        Family("demo_depth", "histogram", "No labels.", [({}, _histogram((0, 1, 10), [0, 0, 1, 5, 50, 2]))]),
    ]


def test_parse_gives_back_what_render_wrote() -> None:
    families = _families()
    parsed = parse(render(families))
    original = samples_of(families)
    assert sorted(parsed) == sorted(original)
    for name, samples in original.items():
        assert len(parsed[name]) == len(samples), name
        for (labels, v), (got_labels, got) in zip(samples, parsed[name]):
            assert got_labels == labels
            if isinstance(v, Histogram):
                assert isinstance(got, Histogram)
                assert got.bounds == tuple(float(b) for b in v.bounds)
                assert got.counts == v.counts and got.count == v.count
                assert got.sum == pytest.approx(v.sum)
                for q in (0.0, 0.25, 0.5, 0.9, 0.99, 1.0):
                    assert got.quantile(q) == v.quantile(q), (name, q)
            else:
                assert got == v
    assert parsed["demo_events_total"][1][0]["channel"] == TRICKY
    assert value(parsed, "demo_events_total") == 12345683
    assert value(parsed, "demo_events_total", channel=TRICKY) == 12345678
    assert value(parsed, "demo_events_total", channel="nope") == 0
    assert value(parsed, "demo_absent") is None
    assert value(parsed, "demo_latency_seconds") == 0   # histograms are not summed as numbers


def test_parse_timestamps_and_special_values() -> None:
    text = render(_families()) + "demo_late 3 1700000000000\n"   # a sample with a timestamp
    parsed = parse(text)
    assert parsed["demo_late"] == [({}, 3.0)]
    assert parsed["demo_specials"][0][1] == math.inf and parsed["demo_specials"][1][1] == -math.inf
    assert math.isnan(parse('x_nan{a="b"} NaN\n')["x_nan"][0][1])


@pytest.mark.parametrize("text", [
    "just words here\n",
    'demo{channel="unterminated} 1\n',
    'demo{1bad="x"} 1\n',
    'demo{channel=unquoted} 1\n',
    "demo_total one\n",
    "demo_total\n",
    '# TYPE demo histogram\ndemo_bucket{le="fast"} 1\n',
])
def test_malformed_text_raises(text: str) -> None:
    with pytest.raises(MetricsFormatError):
        parse(text)


# ---- HistogramWindow ----------------------------------------------------------------------------

BOUNDS = (0.001, 0.01, 0.1, 1.0)


def _grow(histogram: Histogram, *observations: float) -> Histogram:
    """A copy of the cumulative histogram with more observations (a later scrape)."""
    later = Histogram(histogram.bounds)
    later.counts, later.count, later.sum = list(histogram.counts), histogram.count, histogram.sum
    for v in observations:
        later.observe(v)
    return later


def test_histogram_window_quantiles_of_what_was_gained() -> None:
    window = HistogramWindow(60.0)
    first = _grow(Histogram(BOUNDS), *[0.0005] * 100)     # before the window starts: not counted
    window.add(0.0, first)
    assert window.delta() is None and window.quantile_ms(0.5) is None and window.rate() is None
    second = _grow(first, 0.05, 0.05, 0.05, 0.5)
    window.add(2.0, second)
    expected = _grow(Histogram(BOUNDS), 0.05, 0.05, 0.05, 0.5)
    delta = window.delta()
    assert delta is not None
    assert delta.counts == expected.counts and delta.count == 4 and delta.sum == pytest.approx(0.65)
    assert window.quantile_ms(0.5) == round(expected.quantile(0.5) * 1000, 3)
    assert window.quantile_ms(0.99) == round(expected.quantile(0.99) * 1000, 3)
    assert window.rate() == 2.0                            # 4 in 2 s
    third = _grow(second, 0.005)
    window.add(3.0, third)
    assert window.delta(last_only=True).counts == _grow(Histogram(BOUNDS), 0.005).counts
    only_last = _grow(Histogram(BOUNDS), 0.005)
    assert window.quantile_ms(0.5, last_only=True) == round(only_last.quantile(0.5) * 1000, 3)
    assert window.delta().count == 5                      # the whole window: 0 -> 3
    assert window.rate() == 1.0 and window.rate(last_only=False) == pytest.approx(5 / 3)
    window.add(4.0, third)
    assert window.quantile_ms(0.99, last_only=True) is None   # nothing new: no quantile


def test_histogram_window_forgets_what_is_older_than_the_window() -> None:
    window = HistogramWindow(10.0)
    h0 = Histogram(BOUNDS)
    window.add(0.0, h0)
    h1 = _grow(h0, *[0.5] * 50)                   # slow ones, then the window moves past them
    window.add(5.0, h1)
    h2 = _grow(h1, 0.0005)
    window.add(20.0, h2)                          # 5 <= 20 - 10: the t=0 snapshot goes
    assert [t for t, _, _ in window.snapshots] == [5.0, 20.0]
    assert window.delta().count == 1 and window.quantile_ms(0.99) <= 1.0
    h3 = _grow(h2, 0.0005)
    window.add(40.0, h3)
    assert [t for t, _, _ in window.snapshots] == [20.0, 40.0]


def test_histogram_window_restarts_when_the_count_goes_down_or_buckets_change() -> None:
    window = HistogramWindow(60.0)
    before = _grow(Histogram(BOUNDS), *[0.5] * 10)
    window.add(0.0, before)
    window.add(1.0, _grow(before, 0.5))
    restarted = _grow(Histogram(BOUNDS), 0.0005)   # count 1 < 11: the peer restarted
    window.add(2.0, restarted)
    assert window.delta() is None                  # one snapshot since the restart
    window.add(3.0, _grow(restarted, 0.0005, 0.0005))
    delta = window.delta()
    assert delta.count == 2 and delta.counts[0] == 2 and min(delta.counts) >= 0
    other = _grow(Histogram((0.5, 5.0)), *[0.1] * 100)   # other bucket bounds: start again
    window.add(4.0, other)
    assert window.delta() is None and window.bounds == (0.5, 5.0)
    window.add(5.0, _grow(other, 1.0))
    assert window.delta().counts == [0, 1, 0]


# ---- Redis ------------------------------------------------------------------------------------

IDENTITY = ("native", "redis", "7.0.15")


def _info(**fields: Any) -> dict[str, Any]:
    info: dict[str, Any] = {"total_commands_processed": 100, "keyspace_hits": 0, "keyspace_misses": 0,
                            "used_memory": 1000, "maxmemory": 0, "role": "master", "connected_clients": 1,
                            "aof_enabled": 0, "loading": 0, "rdb_last_bgsave_status": "ok",
                            "aof_last_write_status": "ok", "aof_last_bgrewrite_status": "ok"}
    info.update(fields)
    return info


def _redis(tracker: RedisTracker, now: float, info: dict[str, Any], *, own: int = 0, save: str | None = "",
           rtts: tuple[float, ...] = (0.001,)) -> dict[str, Any]:
    return tracker.update(now, info, rtts, own_commands=own, identity=IDENTITY, save_config=save)


@pytest.mark.parametrize(("save", "aof", "mode"), [
    ("", 0, "none"), ("3600 1", 0, "rdb"), ("", 1, "aof"), ("3600 1 300 100", "1", "rdb+aof"),
    ("   ", 0, "none"), (None, 0, "unknown"), (None, 1, "aof"),
])
def test_redis_persistence_mode(save: str | None, aof: Any, mode: str) -> None:
    panel = _redis(RedisTracker(60), 1.0, _info(aof_enabled=aof), save=save)
    assert panel["persistence"]["mode"] == mode
    assert panel["status"] == "ok" and panel["problems"] == []


@pytest.mark.parametrize(("fields", "problem"), [
    ({"rdb_last_bgsave_status": "err"}, "background save failed"),
    ({"aof_enabled": 1, "aof_last_write_status": "err"}, "append-only file write failed"),
    ({"aof_enabled": 1, "aof_last_bgrewrite_status": "err"}, "append-only file rewrite failed"),
    ({"loading": 1}, "loading"),
    ({"used_memory": 900, "maxmemory": 1000}, "memory at 90% of maxmemory"),
    ({"used_memory": 1500, "maxmemory": 1000}, "memory at 150% of maxmemory"),
    ({"role": "slave", "master_link_status": "down"}, "link to its master is down"),
    ({"role": "replica", "master_link_status": "connecting"}, "link to its master is connecting"),
    ({"aof_enabled": 0, "aof_last_write_status": "err"}, None),     # no AOF: not a problem
    ({"used_memory": 899, "maxmemory": 1000}, None),
    ({"used_memory": 10**9, "maxmemory": 0}, None),                  # no limit
    ({"role": "slave", "master_link_status": "up"}, None),
])
def test_redis_problems(fields: dict[str, Any], problem: str | None) -> None:
    panel = _redis(RedisTracker(60), 1.0, _info(**fields))
    if problem is None:
        assert panel["status"] == "ok" and panel["problems"] == []
    else:
        assert panel["status"] == "degraded"
        assert len(panel["problems"]) == 1 and problem in panel["problems"][0], panel["problems"]


@pytest.mark.parametrize(("info", "keys"), [
    ({"db0": {"keys": 3, "expires": 1, "avg_ttl": 0}, "db2": {"keys": 4, "expires": 0}}, 7),
    ({"db0": "keys=3,expires=0,avg_ttl=0", "db15": "keys=2,expires=1,avg_ttl=5"}, 5),
    ({"db0": {"keys": 1}, "db1": "keys=10,expires=0"}, 11),
    ({"dbsize": 99, "db": 5, "dbx": "keys=4", "used_memory": 3}, 0),
    ({}, 0),
])
def test_keys_in_both_info_shapes(info: dict[str, Any], keys: int) -> None:
    assert keys_in(info) == keys


def test_redis_rates_hit_ratios_and_own_commands() -> None:
    tracker = RedisTracker(60)
    first = _redis(tracker, 100.0, _info(total_commands_processed=500, keyspace_hits=30, keyspace_misses=10),
                   own=12, rtts=(0.001, 0.002, 0.003))
    assert first["ops_per_sec"] is None and first["hit_ratio_recent"] is None
    assert first["hit_ratio"] == 0.75
    assert first["rtt_p50_ms"] == 2.0 and first["rtt_p99_ms"] == 3.0
    assert (first["engine"], first["server"], first["version"]) == IDENTITY
    # 11 own commands (10 PINGs and the INFO): only 9 of 20 came from others, over 2 s
    second = _redis(tracker, 102.0, _info(total_commands_processed=520, keyspace_hits=31, keyspace_misses=13),
                    own=11)
    assert second["ops_per_sec"] == 4.5
    assert second["hit_ratio_recent"] == 0.25                   # 1 hit, 3 misses since
    assert second["hit_ratio"] == round(31 / 44, 4)
    idle = _redis(tracker, 103.0, _info(total_commands_processed=531, keyspace_hits=31, keyspace_misses=13),
                  own=11)
    assert idle["ops_per_sec"] == 0.0 and idle["hit_ratio_recent"] is None
    assert _redis(tracker, 104.0, _info(total_commands_processed=531), own=11)["ops_per_sec"] == 0.0
    assert [v for _, v in idle["series"]["ops_per_sec"]] == [None, 4.5, 0.0]
    assert _redis(RedisTracker(60), 1.0, _info())["hit_ratio"] is None   # no lookups yet


def test_redis_unreachable_gaps_the_series_and_restarts_rates() -> None:
    tracker = RedisTracker(60)
    _redis(tracker, 100.0, _info(total_commands_processed=100))
    assert _redis(tracker, 101.0, _info(total_commands_processed=110))["ops_per_sec"] == 10.0
    down = tracker.unreachable(102.0, "redis://127.0.0.1:1/0: refused", url="redis://127.0.0.1:1/0")
    assert down["status"] == "unreachable" and down["error"] == "redis://127.0.0.1:1/0: refused"
    assert down["url"] == "redis://127.0.0.1:1/0" and down["problems"] == []
    assert down["series"]["ops_per_sec"][-1] == [102.0, None]
    back = _redis(tracker, 103.0, _info(total_commands_processed=5000))   # a higher counter: no rate yet
    assert back["status"] == "ok" and back["ops_per_sec"] is None
    assert _redis(tracker, 104.0, _info(total_commands_processed=5003))["ops_per_sec"] == 3.0


# ---- the hub ----------------------------------------------------------------------------------

def _hub_samples(*, subscribers: dict[str, int], published: dict[str, int], delivered: dict[str, int],
                 dropped: dict[str, int] | None = None, broadcast: Histogram | None = None,
                 routes: dict[tuple[str, str], Histogram] | None = None, slow: int = 0) -> dict[str, Any]:
    """The families the hub exposes, through render() and parse() as a scrape would see them."""
    def per_channel(counts: dict[str, int]) -> list[tuple[dict[str, str], float]]:
        return [({"channel": c}, n) for c, n in counts.items()]

    families = [
        Family("cascade_hub_channel_subscribers", "gauge", "s", per_channel(subscribers)),
        Family("cascade_hub_events_published_total", "counter", "p", per_channel(published)),
        Family("cascade_hub_events_delivered_total", "counter", "d", per_channel(delivered)),
        Family("cascade_hub_events_dropped_total", "counter", "x", per_channel(dropped or {})),
        Family("cascade_hub_slow_clients_disconnected_total", "counter", "c", [({}, slow)]),
        Family("cascade_hub_broadcast_latency_seconds", "histogram", "b",
               [({}, broadcast or Histogram(BOUNDS))]),
        Family("cascade_http_request_duration_seconds", "histogram", "h",
               [({"method": m, "route": r}, h) for (m, r), h in (routes or {}).items()]),
    ]
    return parse(render(families))


def _health(instance: str = "aaaa", status: str = "ok", state: str = "local", error: str | None = None,
            connections: int = 3) -> dict[str, Any]:
    return {"status": status, "redis": {"state": state, "url": "", "error": error, "rtt_ms": None},
            "connections": connections, "uptime_s": 5.0, "instance": instance, "pid": 1}


def test_hub_rates_per_channel_and_totals() -> None:
    tracker = HubTracker(60)
    first = tracker.update(100.0, _health(), _hub_samples(
        subscribers={"b-chan": 1, "a-chan": 2}, published={"a-chan": 10, "b-chan": 0},
        delivered={"a-chan": 20, "b-chan": 0}, dropped={"a-chan": 1}), [])
    assert [c["channel"] for c in first["channels"]] == ["a-chan", "b-chan"]
    assert first["channels"][0]["published_per_sec"] is None and first["published_per_sec"] is None
    broadcast = _grow(Histogram(BOUNDS), 0.002, 0.002)
    second = tracker.update(101.0, _health(), _hub_samples(
        subscribers={"b-chan": 1, "a-chan": 2, "c-chan": 4}, published={"a-chan": 15, "b-chan": 3},
        delivered={"a-chan": 30, "b-chan": 3}, dropped={"a-chan": 4}, broadcast=broadcast, slow=2), [])
    channels = {c["channel"]: c for c in second["channels"]}
    assert channels["a-chan"] == {"channel": "a-chan", "subscribers": 2, "published_per_sec": 5.0,
                                  "delivered_per_sec": 10.0, "dropped_per_sec": 3.0, "dropped_total": 4}
    assert channels["b-chan"]["published_per_sec"] == 3.0 and channels["b-chan"]["dropped_per_sec"] == 0.0
    assert channels["c-chan"]["subscribers"] == 4 and channels["c-chan"]["published_per_sec"] is None
    assert second["published_per_sec"] == 8.0 and second["delivered_per_sec"] == 13.0
    assert second["dropped_per_sec"] == 3.0 and second["dropped_total"] == 4
    assert second["slow_clients_disconnected"] == 2 and second["connections"] == 3
    assert second["broadcast_p99_ms"] is not None and 1.0 <= second["broadcast_p99_ms"] <= 10.0
    assert second["status"] == "ok" and second["instance"] == "aaaa" and second["bus"] == "local"


def test_hub_restart_with_a_new_instance_restarts_rates() -> None:
    tracker = HubTracker(60)
    samples = _hub_samples(subscribers={"a": 1}, published={"a": 10}, delivered={"a": 10})
    tracker.update(100.0, _health("aaaa"), samples, [])
    higher = _hub_samples(subscribers={"a": 1}, published={"a": 50}, delivered={"a": 50})
    # a new process answers with higher counters: not a counter going down, the instance tells
    restarted = tracker.update(101.0, _health("bbbb"), higher, [])
    assert restarted["instance"] == "bbbb"
    assert restarted["channels"][0]["published_per_sec"] is None and restarted["delivered_per_sec"] is None
    later = _hub_samples(subscribers={"a": 1}, published={"a": 52}, delivered={"a": 52})
    assert tracker.update(102.0, _health("bbbb"), later, [])["published_per_sec"] == 2.0


def test_hub_slowest_queues_and_routes() -> None:
    tracker = HubTracker(60)
    route = Histogram(BOUNDS)
    routes0 = {("GET", "/health"): route, ("GET", "/metrics"): route, ("POST", "/api/x"): route}
    slowest = [{"client_id": "c1", "channels": ["a"], "queue_depth": 9, "user_agent": "x"},
               {"client_id": "c2", "channels": ["b"], "queue_depth": 0},
               {"client_id": "c3", "queue_depth": 2}]
    base: dict[str, Any] = {"subscribers": {"a": 1}, "published": {"a": 0}, "delivered": {"a": 0}}
    first = tracker.update(100.0, _health(), _hub_samples(**base, routes=routes0), slowest)
    assert first["slowest_queues"] == [{"client_id": "c1", "channels": ["a"], "queue_depth": 9},
                                       {"client_id": "c3", "channels": [], "queue_depth": 2}]
    routes1 = {("GET", "/health"): _grow(route, *[0.002] * 3), ("GET", "/metrics"): _grow(route, *[0.02] * 5),
               ("POST", "/api/x"): route, ("GET", "/api/a"): _grow(route, *[0.002] * 7)}
    second = tracker.update(102.0, _health(), _hub_samples(**base, routes=routes1), [])
    assert second["slowest_queues"] == []
    # by requests/s (new routes have no rate yet), then requests, then the route
    assert [(r["route"], r["requests_per_sec"]) for r in second["http"]] == [
        ("/metrics", 2.5), ("/health", 1.5), ("/api/a", None), ("/api/x", 0.0)]
    metrics_route = second["http"][0]
    assert metrics_route["method"] == "GET" and metrics_route["requests"] == 5
    gained = _grow(Histogram(BOUNDS), *[0.02] * 5)   # what the window saw: the 5 new requests
    assert metrics_route["p50_ms"] == round(gained.quantile(0.5) * 1000, 3)
    assert metrics_route["p99_ms"] == round(gained.quantile(0.99) * 1000, 3)
    assert 10.0 < metrics_route["p50_ms"] < metrics_route["p99_ms"] <= 100.0   # inside (0.01, 0.1] s
    assert second["http"][3]["p99_ms"] is None   # no requests in the window


@pytest.mark.parametrize(("health", "ready", "status", "problem"), [
    (_health(), (True, "ready"), "ok", None),
    (_health(), None, "ok", None),
    (_health(status="degraded", state="down", error="connection refused"), (False, "redis unreachable"),
     "degraded", "redis bus down: connection refused"),
    (_health(status="degraded", state="partial"), (True, "ready"), "degraded", "redis bus partial"),
    (_health(), (False, "shutting down"), "degraded", "not ready: shutting down"),
])
def test_hub_degraded(health: dict[str, Any], ready: tuple[bool, str] | None, status: str,
                      problem: str | None) -> None:
    panel = HubTracker(60).update(1.0, health, _hub_samples(subscribers={}, published={}, delivered={}), [],
                                  ready=ready)
    assert panel["status"] == status
    if problem is None:
        assert panel["problems"] == []
    else:
        assert panel["problems"][0] == problem


# ---- Venice -----------------------------------------------------------------------------------

def _probe(outcome: str, flags: list[str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"url": "http://127.0.0.1:1/ok/api/activities?limit=1", "outcome": outcome, "status": 200,
            "latency_ms": 12.5, "success": True, "items": 1, "flags": flags or [], "retry_after_s": None,
            "message": None, "hint": None, **extra}


@pytest.mark.parametrize(("probe", "status", "problems"), [
    (_probe("ok"), "ok", 0),
    (_probe("ok", ["_cached"]), "ok", 0),
    (_probe("ok", ["_fallback"]), "degraded", 1),
    (_probe("ok", ["_stale"]), "degraded", 1),
    (_probe("ok", ["_fallback", "_cached", "_stale"]), "degraded", 2),
    (_probe("error", status=500, message="HTTP 500: Internal error", hint="try later"), "degraded", 1),
    (_probe("unreachable", status=None, latency_ms=None, message="cannot connect", hint="check the URL"),
     "unreachable", 0),
])
def test_venice_status(probe: dict[str, Any], status: str, problems: int) -> None:
    tracker = VeniceTracker(60)
    panel = tracker.update(10.0, probe, checked_at=10.12345)
    assert panel["status"] == status
    assert len(panel["problems"]) == problems
    assert panel["checked_at"] == 10.123 and panel["flags"] == probe["flags"]
    if status == "unreachable":
        assert panel["error"] == "cannot connect" and panel["hint"] == "check the URL"
    else:
        assert panel["error"] is None
    if probe["outcome"] == "error":
        assert panel["problems"] == ["HTTP 500: Internal error"] and panel["hint"] == "try later"
    if probe["outcome"] == "ok":
        assert panel["hint"] is None and panel["latency_ms"] == 12.5
    assert panel["series"]["latency_ms"] == [[10.0, probe["latency_ms"]]]


# ---- overall status and exit codes --------------------------------------------------------------

@pytest.mark.parametrize(("statuses", "expected"), [
    ([], "ok"),
    (["ok", "ok"], "ok"),
    (["off", "off"], "ok"),
    (["ok", "pending", "off"], "ok"),
    (["ok", "degraded"], "degraded"),
    (["degraded", "off", "pending"], "degraded"),
    (["ok", "unreachable"], "unreachable"),
    (["unreachable", "degraded"], "unreachable"),
    (["degraded", "unreachable", "ok"], "unreachable"),
])
def test_overall_and_exit_code(statuses: list[str], expected: str) -> None:
    sources = {f"s{i}": off_panel("--no-x") if s == "off" else {"status": s} for i, s in enumerate(statuses)}
    assert overall(sources) == expected
    assert exit_code(overall(sources)) == {"ok": 0, "degraded": 3, "unreachable": 1}[expected]


def test_exit_codes_and_off_panel() -> None:
    assert [exit_code(s) for s in ("ok", "degraded", "unreachable", "off", "pending")] == [0, 3, 1, 0, 0]
    assert off_panel("--no-venice") == {"status": panels.OFF, "reason": "--no-venice"}
