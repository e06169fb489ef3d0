"""The pure bench core: histogram (differential against hdrhistogram and exact percentiles),
results, thresholds, report, pacing arithmetic, the runner's plan and the Redis test commands."""

from __future__ import annotations

import asyncio
import csv
import io
import itertools
import json
import math
import random
import statistics
import time
from fractions import Fraction
from typing import Any

import hiredis
import pytest

from cascade_cli.bench import report, thresholds
from cascade_cli.bench.histogram import Histogram, bucket_bounds, bucket_index
from cascade_cli.bench.pacing import Schedule, pace
from cascade_cli.bench.redis_commands import (
    DEFAULT_TESTS,
    LIST_FILL,
    LIST_KEY,
    PREFIX,
    RING,
    TESTS,
    command_ring,
    encode,
    list_fill_args,
    resolve_tests,
    run_prefix,
)
from cascade_cli.bench.results import BASE_KEYS, LATENCY_KEYS, Measurement, latency_row, merge, summarize
from cascade_cli.bench.runner import Control, Plan, ProgressLine, sleep_until, split

HOUR_NS = 3600 * 10**9
PCTS = (50.0, 90.0, 99.0, 99.9)


# --------------------------------------------------------------------------- histogram

def _samples(kind: str, rng: random.Random, n: int) -> list[tuple[int, int]]:
    """(value ns, count) pairs of one distribution; counts are sometimes > 1."""
    if kind == "uniform_small":       # the exact linear range and just above it
        values = [rng.randrange(0, 5000) for _ in range(n)]
    elif kind == "lognormal":         # typical latencies around 100 us with a tail
        values = [int(rng.lognormvariate(math.log(100_000), 1.0)) for _ in range(n)]
    elif kind == "pareto":            # heavy tail up to hours
        values = [min(int(20_000 * rng.paretovariate(0.6)), 5 * HOUR_NS) for _ in range(n)]
    elif kind == "bimodal":           # fast path plus rare seconds-long stalls
        values = [rng.randrange(30_000, 60_000) if rng.random() < 0.98 else rng.randrange(10**9, 3 * 10**9)
                  for _ in range(n)]
    elif kind == "wide":              # log-uniform from 0 to hours
        values = [0 if rng.random() < 0.01 else int(10 ** rng.uniform(0, math.log10(HOUR_NS * 3)))
                  for _ in range(n)]
    elif kind == "constant_huge":     # hours with a tiny spread: stddev must not drown in rounding
        values = [2 * HOUR_NS + rng.randrange(0, 100) for _ in range(n)]
    else:
        raise AssertionError(kind)
    return [(v, rng.choice((1, 1, 1, 2, 7, 50))) for v in values]


def _fill_to_multiple(pairs: list[tuple[int, int]], multiple: int) -> list[tuple[int, int]]:
    """Adjust the last count so that the total is a multiple of `multiple` (then every
    percentile in PCTS has an integer rank, and hdrh's rounded rank equals the nearest rank)."""
    total = sum(c for _, c in pairs)
    value, count = pairs[-1]
    return [*pairs[:-1], (value, count + (-total) % multiple)]


def _expand_sorted(pairs: list[tuple[int, int]]) -> list[int]:
    return sorted(v for v, c in pairs for _ in range(c))


def _nearest_rank(ordered: list[int], pct: float) -> int:
    rank = max(1, math.ceil(Fraction(str(pct)) * len(ordered) / 100))
    return ordered[rank - 1]


def _ours(pairs: list[tuple[int, int]]) -> Histogram:
    hist = Histogram()
    for value, count in pairs:
        hist.record(value, count)
    return hist


KINDS = ["uniform_small", "lognormal", "pareto", "bimodal", "wide", "constant_huge"]


@pytest.mark.parametrize("kind", KINDS)
def test_percentiles_match_exact_nearest_rank_and_hdrhistogram(kind: str) -> None:
    from hdrh.histogram import HdrHistogram

    rng = random.Random(f"pct-{kind}")
    pairs = _fill_to_multiple(_samples(kind, rng, 3000), 1000)
    ordered = _expand_sorted(pairs)
    ours = _ours(pairs)
    ref = HdrHistogram(1, 10 * HOUR_NS, 3)
    for value, count in pairs:
        assert ref.record_value(value, count)
    assert ours.count == ref.get_total_count() == len(ordered)
    for pct in PCTS:
        exact = _nearest_rank(ordered, pct)
        got = ours.value_at(pct)
        # never below the true sample, at most one bucket (< 0.1 %) above it
        assert exact <= got <= exact + exact / 1000, (pct, exact, got)
        # hdrh reports the same bucket's highest equivalent value; we clamp it to the exact max
        theirs = ref.get_value_at_percentile(pct)
        assert got == min(theirs, ours.max), (pct, got, theirs)
    assert ours.value_at(100) == ordered[-1]
    assert ours.min == ordered[0] <= ours.value_at(0) <= ordered[0] + ordered[0] / 1000


@pytest.mark.parametrize("n", [1, 2, 3, 7, 999, 1001])
def test_percentiles_with_awkward_counts(n: int) -> None:
    rng = random.Random(n)
    values = [rng.randrange(0, 10**8) for _ in range(n)]
    hist = Histogram()
    for value in values:
        hist.record(value)
    ordered = sorted(values)
    for pct in (*PCTS, 0.1, 33.3, 66.7, 100.0):
        exact = _nearest_rank(ordered, pct)
        assert exact <= hist.value_at(pct) <= exact + exact / 1000


@pytest.mark.parametrize("kind", KINDS)
def test_min_max_mean_stddev_are_exact(kind: str) -> None:
    pairs = _samples(kind, random.Random(f"moments-{kind}"), 2000)
    ordered = _expand_sorted(pairs)
    hist = _ours(pairs)
    assert (hist.min, hist.max, hist.count) == (ordered[0], ordered[-1], len(ordered))
    assert hist.total == sum(ordered)
    assert hist.mean == pytest.approx(statistics.mean(ordered), rel=1e-12)
    expected = statistics.pstdev(ordered)
    assert hist.stddev == pytest.approx(expected, rel=1e-9, abs=1e-6), (hist.stddev, expected)


def test_stddev_of_nearly_equal_huge_values() -> None:
    # hours in ns, spread of a few ns: the variance must come from exact integers, not from the
    # difference of two floats near 1e25
    values = [2 * HOUR_NS + i for i in range(10)]
    hist = Histogram()
    for value in values:
        hist.record(value)
    assert hist.stddev == pytest.approx(statistics.pstdev(values), rel=1e-9)
    same = Histogram()
    same.record(3 * HOUR_NS + 1, 1000)
    assert same.stddev == 0.0


def test_empty_negative_and_counted_records() -> None:
    hist = Histogram()
    assert (hist.count, hist.mean, hist.stddev, hist.value_at(99), hist.bins()) == (0, 0.0, 0.0, 0, [])
    hist.record(-5)
    assert (hist.min, hist.max, hist.count) == (0, 0, 1)
    hist.record(1_000_000, 9)
    assert hist.count == 10 and hist.total == 9_000_000 and hist.value_at(90) == 1_000_000
    assert hist.value_at(10) == 0
    with pytest.raises(ValueError):
        hist.value_at(100.5)
    with pytest.raises(ValueError):
        hist.value_at(-1)


def _roundtrip(hist: Histogram) -> Histogram:
    return Histogram.from_dict(json.loads(json.dumps(hist.to_dict())))


def test_merge_equals_one_histogram_of_everything() -> None:
    rng = random.Random("merge")
    parts = [_samples(kind, rng, 500) for kind in KINDS]
    whole = _ours([p for part in parts for p in part])
    merged = Histogram()
    for part in parts:
        merged.merge(_roundtrip(_ours(part)))  # as the runner does: through JSON-friendly dicts
    merged.merge(Histogram())                  # an empty part changes nothing
    assert merged.to_dict() == whole.to_dict()
    assert _roundtrip(merged).to_dict() == whole.to_dict()
    for pct in PCTS:
        assert merged.value_at(pct) == whole.value_at(pct)
    assert (merged.mean, merged.stddev) == (whole.mean, whole.stddev)
    # merging into an empty histogram takes the other's min, even when it is large
    late = Histogram()
    late.merge(_ours([(5 * 10**9, 1)]))
    assert (late.min, late.max) == (5 * 10**9, 5 * 10**9)
    # min 0 from one part survives the merge
    zero = _ours([(0, 1)]).merge(_ours([(10, 1)]))
    assert (zero.min, zero.max) == (0, 10)


def test_bucket_index_and_bounds_are_consistent() -> None:
    previous_high = -1
    for index in range(40_000):           # linear range and ~20 powers of two above it
        low, high = bucket_bounds(index)
        assert low == previous_high + 1, index  # contiguous, no gaps, no overlaps
        assert low <= high
        assert bucket_index(low) == index == bucket_index(high)
        if low >= 2048:
            assert (high - low + 1) * 1024 <= low  # never wider than 0.1 % of its values
        previous_high = high
    rng = random.Random("bounds")
    for _ in range(20_000):
        value = rng.randrange(0, 10 ** rng.randrange(1, 19))
        low, high = bucket_bounds(bucket_index(value))
        assert low <= value <= high


def test_bins_cover_every_sample() -> None:
    for kind in KINDS:
        pairs = _samples(kind, random.Random(f"bins-{kind}"), 1500)
        hist = _ours(pairs)
        for rows in (1, 5, 12, 30):
            bins = hist.bins(rows)
            assert sum(n for _, _, n in bins) == hist.count
            assert bins[0][0] == hist.min and bins[-1][1] == hist.max
            assert all(low <= high for low, high, _ in bins)
            assert all(bins[i][1] <= bins[i + 1][0] for i in range(len(bins) - 1))
    single = _ours([(42_000, 3)])
    assert single.bins() == [(42_000, 42_000, 3)]


# --------------------------------------------------------------------------- results

def _measurement(test: str, values: list[int], started: float, ended: float, *, errors: int = 0,
                 counters: dict[str, int] | None = None) -> Measurement:
    m = Measurement(test=test)
    for value in values:
        m.latency.record(value)
    m.ops = len(values)
    for i in range(errors):
        m.add_error(f"ERR number {i % 7}")
    m.counters = dict(counters or {})
    m.finish(started, ended, cpu_s=(ended - started) / 2)
    return m


def test_merge_windows_counters_and_errors() -> None:
    a = _measurement("set", [1000, 2000, 3000], 10.0, 12.0, errors=3, counters={"received": 5, "lost": 1})
    b = _measurement("set", [4000], 11.0, 14.0, errors=9, counters={"received": 7})
    idle = Measurement(test="set")  # a process that never measured (ended == 0)
    b.interrupted = True
    out = merge([a, Measurement.from_dict(json.loads(json.dumps(b.to_dict()))), idle])
    assert out.test == "set" and out.ops == 4 and out.errors == 12
    assert (out.started, out.ended, out.duration) == (10.0, 14.0, 4.0)
    assert out.counters == {"received": 12, "lost": 1}
    assert out.processes == 3
    assert out.interrupted
    assert out.latency.count == 4 and out.latency.max == 4000
    assert len(out.error_samples) == len(set(out.error_samples)) == 5
    assert out.max_process_cpu_pct == pytest.approx(50.0)
    with pytest.raises(ValueError):
        merge([])


def test_named_histograms_merge_by_name_and_survive_the_trip_between_processes() -> None:
    a = _measurement("echo", [1000], 1.0, 2.0)
    b = _measurement("echo", [2000], 1.0, 2.0)
    for part, connect, extra in ((a, (5_000, 7_000_000), (1,)), (b, (1_000, 99_000_000, 12_345), ())):
        for value in connect:
            part.histograms.setdefault("connect", Histogram()).record(value)
        for value in extra:
            part.histograms.setdefault("other", Histogram()).record(value)
    b = Measurement.from_dict(json.loads(json.dumps(b.to_dict())))
    out = merge([a, b, Measurement(test="echo")])
    whole = Histogram()
    for value in (5_000, 7_000_000, 1_000, 99_000_000, 12_345):
        whole.record(value)
    assert sorted(out.histograms) == ["connect", "other"]
    assert out.histograms["connect"].to_dict() == whole.to_dict()
    assert (out.histograms["connect"].min, out.histograms["connect"].max) == (1_000, 99_000_000)
    assert out.histograms["other"].count == 1 and out.latency.count == 2
    assert a.histograms["connect"].count == 2  # the parts are not changed by the merge
    assert Measurement.from_dict(out.to_dict()).to_dict() == out.to_dict()


def test_summarize_has_every_key_and_consistent_numbers() -> None:
    rng = random.Random("summary")
    m = _measurement("get", [rng.randrange(10_000, 5_000_000) for _ in range(5000)], 100.0, 102.5, errors=2)
    row = summarize(m)
    assert list(row) == list(BASE_KEYS)
    assert row["requests"] == 5000 and row["errors"] == 2
    assert row["duration_s"] == 2.5
    assert row["ops_per_sec"] == pytest.approx(5000 / 2.5)
    chain = [row[k] for k in ("min_ms", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms")]
    assert chain == sorted(chain)
    assert row["min_ms"] <= row["mean_ms"] <= row["max_ms"]
    assert row["uncorrected_p50_ms"] is None and row["target_rate"] is None and row["send_lag_p99_ms"] is None
    assert row["interrupted"] is False
    # open loop: uncorrected and send-lag figures appear, target_rate passes through
    m.uncorrected.record(2_000_000)
    m.send_lag.record(30_000)
    open_row = summarize(m, target_rate=1000.0)
    assert open_row["uncorrected_p50_ms"] == open_row["uncorrected_max_ms"] == 2.0
    assert open_row["target_rate"] == 1000.0 and open_row["send_lag_p99_ms"] == 0.03
    # nothing measured: latency keys are null, not zero; no window, no rate
    empty = summarize(Measurement(test="ping"))
    assert list(empty) == list(BASE_KEYS)
    assert all(empty[k] is None for k in LATENCY_KEYS) and empty["ops_per_sec"] is None


def test_latency_row_prefix_and_units() -> None:
    hist = Histogram()
    hist.record(1_500_000)
    row = latency_row(hist, "connect_")
    assert set(row) == {"connect_" + k for k in LATENCY_KEYS}
    assert row["connect_p50_ms"] == row["connect_max_ms"] == 1.5


# --------------------------------------------------------------------------- thresholds

METRICS = [k for k in BASE_KEYS if k not in ("test", "interrupted")]
RUN_TESTS = ["set", "get", "lrange_100"]


@pytest.mark.parametrize(("text", "test", "metric", "op", "limit"), [
    ("p99_ms>5", None, "p99_ms", ">", 5.0),
    ("get:ops_per_sec<50000", "get", "ops_per_sec", "<", 50000.0),
    ("  get : ops_per_sec  <  50000  ", "get", "ops_per_sec", "<", 50000.0),
    ("p50_ms>=0.25", None, "p50_ms", ">=", 0.25),
    ("errors<=0", None, "errors", "<=", 0.0),
    ("errors==0", None, "errors", "==", 0.0),
    ("errors!=0", None, "errors", "!=", 0.0),
    ("errors=1", None, "errors", "=", 1.0),
    ("ops_per_sec<5e4", None, "ops_per_sec", "<", 50000.0),
    ("p999_ms>1.5E-1", None, "p999_ms", ">", 0.15),
    ("p99_ms>.5", None, "p99_ms", ">", 0.5),
    ("p99_ms>+2.", None, "p99_ms", ">", 2.0),
    ("p50_ms<-1", None, "p50_ms", "<", -1.0),
    ("lrange_100:max_ms>10", "lrange_100", "max_ms", ">", 10.0),
])
def test_threshold_forms(text: str, test: str | None, metric: str, op: str, limit: float) -> None:
    parsed = thresholds.parse(text, METRICS, RUN_TESTS)
    assert (parsed.test, parsed.metric, parsed.op, parsed.limit) == (test, metric, op, limit)
    assert parsed.text == text.strip()


@pytest.mark.parametrize(("text", "says"), [
    ("p99_ms", "cannot read"),
    ("p99_ms>", "cannot read"),
    ("p99_ms>>5", "cannot read"),
    ("p99_ms>5ms", "cannot read"),
    ("p99_ms => 5", "cannot read"),
    (">5", "cannot read"),
    ("", "cannot read"),
    ("p99_ms>1e", "cannot read"),
    ("latency_ms>5", "unknown metric"),
    ("interrupted==0", "unknown metric"),
    ("hset:p99_ms>5", "not run"),
])
def test_threshold_errors(text: str, says: str) -> None:
    with pytest.raises(thresholds.ThresholdError, match=says):
        thresholds.parse(text, METRICS, RUN_TESTS)


def test_evaluate_marks_rows_and_missing_values_breach() -> None:
    rows: list[dict[str, Any]] = [
        {"test": "set", "p99_ms": 1.0, "ops_per_sec": 90000.0, "errors": 0},
        {"test": "get", "p99_ms": 7.0, "ops_per_sec": 40000.0, "errors": 0},
        {"test": "lrange_100", "p99_ms": None, "ops_per_sec": True, "errors": 0},
    ]
    parsed = [thresholds.parse(t, METRICS, RUN_TESTS) for t in
              ("p99_ms>5", "get:ops_per_sec<50000", "set:ops_per_sec<50000", "ops_per_sec<1", "errors!=0")]
    checks = thresholds.evaluate(rows, parsed)
    # p99 on 3 rows, two per-test ones on 1 row each, ops_per_sec<1 and errors!=0 on 3 rows each
    assert len(checks) == 3 + 1 + 1 + 3 + 3
    assert rows[0]["breaches"] == []
    assert rows[1]["breaches"] == ["p99_ms>5", "get:ops_per_sec<50000"]
    # None and a bool are not measurements: they breach whatever the operator
    assert rows[2]["breaches"] == ["p99_ms>5", "ops_per_sec<1"]
    by_key = {(c["threshold"], c["test"]): c for c in checks}
    assert by_key[("p99_ms>5", "get")] == {"threshold": "p99_ms>5", "test": "get", "metric": "p99_ms",
                                           "value": 7.0, "breached": True}
    assert by_key[("set:ops_per_sec<50000", "set")]["breached"] is False
    assert ("get:ops_per_sec<50000", "set") not in by_key
    # evaluating again starts fresh
    thresholds.evaluate(rows, [])
    assert all(row["breaches"] == [] for row in rows)


# --------------------------------------------------------------------------- report

def _rows_and_checks() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Histogram]]:
    hists = {}
    rows = []
    for name, scale in (("set", 1), ("get", 3)):
        m = _measurement(name, [scale * v for v in range(50_000, 150_000, 100)], 1.0, 2.0, errors=scale - 1)
        hists[name] = m.latency
        rows.append(summarize(m))
    parsed = [thresholds.parse("p99_ms>0.2", METRICS, ["set", "get"])]
    checks = thresholds.evaluate(rows, parsed)
    return rows, checks, hists


def test_document_shape() -> None:
    rows, checks, hists = _rows_and_checks()
    doc = report.document("redis", "redis://127.0.0.1:1/0", {"clients": 4}, rows, checks, False, hists)
    assert list(doc) == ["schema", "command", "target", "settings", "results", "thresholds", "passed",
                         "interrupted", "histograms"]
    assert doc["schema"] == report.SCHEMA_VERSION and doc["passed"] is False
    assert [r["test"] for r in doc["results"]] == ["set", "get"]
    for name, bins in doc["histograms"].items():
        assert sum(b["count"] for b in bins) == hists[name].count
        assert all(set(b) == {"low_ms", "high_ms", "count"} for b in bins)
    json.loads(json.dumps(doc))
    plain = report.document("redis", "t", {}, rows, [], True)
    assert "histograms" not in plain and plain["passed"] is True and plain["interrupted"] is True


def test_csv_parses_back() -> None:
    rows, _, _ = _rows_and_checks()
    rows[1]["breaches"].append("second one")
    parsed = list(csv.DictReader(io.StringIO(report.csv_text(rows))))
    assert [r["test"] for r in parsed] == ["set", "get"]
    assert list(parsed[0]) == [*BASE_KEYS, "breaches"]
    for original, back in zip(rows, parsed):
        assert int(back["requests"]) == original["requests"]
        assert float(back["p99_ms"]) == original["p99_ms"]
        assert back["target_rate"] == ""                # None -> empty cell
        assert back["interrupted"] == "false"
    assert parsed[1]["breaches"] == "p99_ms>0.2;second one"


def test_table_cells_mark_breaches() -> None:
    rows, checks, _ = _rows_and_checks()
    columns = ["test", "requests", "p50_ms", "p99_ms"]
    headers, cells = report.table_cells(rows, columns, checks)
    assert headers == [*columns, "check"]
    set_cells, get_cells = cells
    assert set_cells[-1] == "ok" and not set_cells[3].endswith("!")
    assert get_cells[-1] == "FAIL" and get_cells[3].endswith(" !")
    assert not get_cells[2].endswith("!")
    assert set_cells[1] == "1,000"
    _, no_checks = report.table_cells(rows, columns, [])
    assert len(no_checks[0]) == len(columns)


def test_text_histogram_lines() -> None:
    _, _, hists = _rows_and_checks()
    hist = hists["get"]
    lines = report.text_histogram(hist)
    assert len(lines) == len(hist.bins())
    counts = [int(line.rsplit(" ", 1)[1].replace(",", "")) for line in lines]
    assert sum(counts) == hist.count
    assert all(" ms | " in line for line in lines)
    bars = [line.split("|")[1].count("#") for line in lines]
    assert max(bars) == report.BAR_WIDTH
    assert report.text_histogram(Histogram()) == ["  (no samples)"]


# --------------------------------------------------------------------------- pacing and plan

def test_schedule_arithmetic() -> None:
    schedule = Schedule(1000, start_ns=5_000_000)
    assert schedule.interval_ns == 1_000_000
    assert [schedule.due_at(i) for i in range(3)] == [5_000_000, 6_000_000, 7_000_000]
    third = Schedule(3000, start_ns=0)
    assert [third.due_at(i) for i in (0, 1, 2, 3, 3000)] == [0, 333_333, 666_666, 1_000_000, 10**9]
    # an offset moves the schedule within one interval
    assert Schedule(1000, 0, offset_s=0.00025).first_ns == 250_000
    assert Schedule(1000, 0, offset_s=1.00025).first_ns == 250_000
    for bad in (0, -5):
        with pytest.raises(ValueError):
            Schedule(bad, 0)


@pytest.mark.parametrize(("clients", "processes"), [
    (4, 4), (50, 2), (6, 3), (4, 2), (8, 2), (40, 4)])
def test_staggered_processes_send_evenly_together(clients: int, processes: int) -> None:
    # equal shares: the processes' schedules must interleave into one even schedule at the total
    # rate (started together, as their offsets assume), not fire in bursts at the same instants
    plan = Plan(clients=clients, processes=processes, requests=None, duration=1.0, rate=8000.0, warmup=0.0)
    shares = plan.shares()
    assert {s.rate for s in shares} == {8000.0 / processes}
    due = sorted(Schedule(s.rate, 0, s.rate_offset).due_at(i) for s in shares for i in range(200))
    gaps = {b - a for a, b in itertools.pairwise(due)}
    assert gaps <= {124_999, 125_000, 125_001}, sorted(gaps)[:5]


def test_pace_sends_on_schedule() -> None:
    import time

    async def main() -> tuple[list[int], int, int, int]:
        start = time.monotonic_ns()
        sent: list[int] = []
        schedule = Schedule(200_000, start)
        n = await pace(schedule, sent.append, limit=40)
        until = schedule.due_at(10)
        capped: list[int] = []
        m = await pace(Schedule(200_000, start), capped.append, until_ns=until)
        stopped = await pace(Schedule(1, time.monotonic_ns() + 10**9), sent.append, stopping=lambda: True)
        assert sent == [schedule.due_at(i) for i in range(40)]
        return sent, n, m, stopped

    sent, n, m, stopped = asyncio.run(asyncio.wait_for(main(), 10))
    assert (n, len(sent), m, stopped) == (40, 40, 10, 0)


def test_split() -> None:
    assert split(10, 3) == [4, 3, 3]
    assert split(2, 4) == [1, 1, 0, 0]
    assert split(0, 2) == [0, 0]


@pytest.mark.parametrize(("clients", "processes", "requests"), [
    (1, 1, 1), (4, 2, 2000), (5, 2, 2001), (7, 3, 1000), (3, 8, 10), (50, 2, 100_000), (10, 4, 7),
    (13, 5, 13 * 1000 + 12),
])
def test_plan_shares_split_exactly(clients: int, processes: int, requests: int) -> None:
    shares = Plan(clients=clients, processes=processes, requests=requests, duration=None, rate=None,
                  warmup=0.5).shares()
    assert len(shares) == min(clients, processes)
    assert [s.index for s in shares] == list(range(len(shares)))
    assert sum(s.clients for s in shares) == clients
    assert sum(s.requests or 0 for s in shares) == requests
    assert max(s.clients for s in shares) - min(s.clients for s in shares) <= 1
    first = 0
    base = requests // clients
    for share in shares:
        assert share.first_client == first and share.total_clients == clients
        assert share.processes == len(shares) and share.warmup == 0.5
        assert share.rate is None and share.rate_offset == 0.0 and share.duration is None
        # requests follow the clients: each client takes base or base + 1
        assert share.clients * base <= share.requests <= share.clients * (base + 1)
        first += share.clients


def test_plan_shares_rate_and_duration() -> None:
    shares = Plan(clients=5, processes=2, requests=None, duration=2.0, rate=5000.0, warmup=0.0).shares()
    assert [s.requests for s in shares] == [None, None]
    assert [s.duration for s in shares] == [2.0, 2.0]
    assert [s.clients for s in shares] == [3, 2]
    assert [s.rate for s in shares] == pytest.approx([3000.0, 2000.0])
    assert sum(s.rate for s in shares) == pytest.approx(5000.0)
    # the first process starts on the beat, the second one between beats
    assert shares[0].rate_offset == 0.0
    second = Schedule(shares[1].rate, 0, shares[1].rate_offset)
    assert 0 < second.first_ns < second.interval_ns


def test_progress_line_shows_a_percent_within_0_and_100() -> None:
    stream = io.StringIO()
    line = ProgressLine(True, stream)
    line.draw("pubsub", 0, -0.4, 0.0)        # --duration: still connecting
    line.draw("pubsub", 10, 0.5, 5.0)
    line.draw("pubsub", 20, 1.7, 5.0)        # --duration: draining after the last publish
    frames = stream.getvalue().split("\r")[1:]
    assert "[....................]   0%" in frames[0]
    assert "[##########..........]  50%" in frames[1]
    assert "[####################] 100%" in frames[2]
    assert "-" not in "".join(frames) and "170%" not in frames[2]


class _Stop:
    def __init__(self) -> None:
        self.set = False

    def is_set(self) -> bool:
        return self.set


def _loops() -> list[Any]:
    loops: list[Any] = [asyncio.new_event_loop]
    try:
        import uvloop

        loops.append(uvloop.new_event_loop)  # its timers may fire early: the case that matters
    except ImportError:
        pass
    return loops


@pytest.mark.parametrize("new_loop", _loops())
def test_wait_start_and_sleep_until_never_return_early(new_loop: Any) -> None:
    class StartAt:
        value = 0

    start_at = StartAt()
    control = Control(0, [0], _Stop(), start_at)

    async def main() -> list[int]:
        early = []
        for i in range(40):
            start_at.value = time.monotonic_ns() + (i % 8) * 700_000
            returned = await control.wait_start()
            early.append(start_at.value - time.monotonic_ns())
            assert returned == start_at.value
            target = time.monotonic_ns() + (i % 5) * 900_000
            await sleep_until(target)
            early.append(target - time.monotonic_ns())
        return early

    loop = new_loop()
    try:
        early = loop.run_until_complete(main())
    finally:
        loop.close()
    assert max(early) <= 0   # every wait ended at or after its instant


def test_watch_reports_progress_and_passes_the_stop_on() -> None:
    slots, stop, stopped = [0], _Stop(), []
    control = Control(0, slots, stop)
    done = {"n": 0}

    async def main() -> None:
        ticker = control.watch(lambda: done["n"], lambda: stopped.append(done["n"]))
        done["n"] = 5
        while slots[0] != 5:
            await asyncio.sleep(0.01)
        assert not stopped
        stop.set = True
        done["n"] = 9
        while not stopped:
            await asyncio.sleep(0.01)
        ticker.cancel()

    asyncio.run(asyncio.wait_for(main(), 10))
    assert slots == [9] and stopped[0] == 9


# --------------------------------------------------------------------------- redis commands

def _parse_resp(data: bytes) -> list[Any]:
    reader = hiredis.Reader()
    reader.feed(data)
    out = []
    while (reply := reader.gets()) is not False:
        out.append(reply)
    return out


def test_resolve_tests() -> None:
    assert resolve_tests("set,get") == ["set", "get"]
    assert resolve_tests(" SET , Get ,lrange,, ") == ["set", "get", "lrange_100"]
    assert resolve_tests("ping,ping,PING") == ["ping"]
    assert resolve_tests(",".join(DEFAULT_TESTS)) == list(DEFAULT_TESTS)
    with pytest.raises(ValueError, match="nope, bogus"):
        resolve_tests("set,nope,get,bogus")
    with pytest.raises(ValueError):
        resolve_tests(" , ")


@pytest.mark.parametrize("args", [[b"PING"], [b"SET", b"k", b""], [b"SET", b"k\r\n$3\r\n", bytes(range(256))],
                                  [b"x" * 70_000]])
def test_encode_is_valid_resp(args: list[bytes]) -> None:
    data = encode(args)
    assert _parse_resp(data) == [args]
    assert _parse_resp(data * 3) == [args] * 3


# where the keys are in each command: (first key position, step, last position or None for 1 key)
KEY_POSITIONS = {"mset": (1, 2, None), "ping": None, "publish": None}


def _keys(test: str, args: list[bytes]) -> list[bytes]:
    spec = KEY_POSITIONS.get(test, (1, 1, 1))
    if spec is None:
        return []
    first, step, last = spec
    return args[first:(last + 1 if last else None):step]


RUN = run_prefix("be9c0ffe")


def test_run_prefix() -> None:
    assert RUN == f"{PREFIX}be9c0ffe:"
    assert run_prefix("a") != run_prefix("b")


@pytest.mark.parametrize("test", sorted(TESTS))
@pytest.mark.parametrize("keyspace", [0, 1, 1000])
def test_command_ring_keys(test: str, keyspace: int) -> None:
    ring = command_ring(test, data_size=7, keyspace=keyspace, seed=3, prefix=RUN)
    randomized = keyspace > 0 and any("__rand_int__" in a for a in TESTS[test].args)
    assert len(ring) == (RING if randomized else 1)
    numbers = set()
    for command in ring:
        (args,) = _parse_resp(command)
        assert args[0].decode() == TESTS[test].args[0]
        keys = _keys(test, args)
        if test not in ("ping", "publish"):
            assert keys
        for key in keys:
            assert key.startswith(RUN.encode()), key    # this run's keys only
        if test == "publish":
            assert args[1].startswith(RUN.encode())
        for arg in args[1:]:
            if randomized:
                assert b"__rand_int__" not in arg
            for token in arg.split(b":"):
                if token.isdigit() and len(token) == 12:
                    numbers.add(int(token))
        if b"x" * 7 in args:
            assert args.count(b"x" * 7) == (10 if test == "mset" else 1)
    if randomized:
        assert numbers and all(0 <= n < keyspace for n in numbers)
        if keyspace == 1000:
            assert len(numbers) > 900     # drawn across the keyspace, not a handful
    else:
        assert not numbers


@pytest.mark.parametrize("keyspace", [0, 100])
def test_zadd_score_is_a_number(keyspace: int) -> None:
    for command in command_ring("zadd", 3, keyspace, seed=1, prefix=RUN):
        (args,) = _parse_resp(command)
        float(args[2])
        assert args[3].startswith(b"element:")


def test_command_ring_is_deterministic_per_seed() -> None:
    assert command_ring("set", 3, 1000, seed=1) == command_ring("set", 3, 1000, seed=1)
    assert command_ring("set", 3, 1000, seed=1) != command_ring("set", 3, 1000, seed=2)


def test_list_fill() -> None:
    run_key = LIST_KEY.replace(PREFIX, RUN, 1).encode()
    delete, fill = list_fill_args(5, RUN)
    assert delete == [b"DEL", run_key]
    assert fill[:2] == [b"RPUSH", run_key] and fill[2:] == [b"xxxxx"] * LIST_FILL
    assert LIST_KEY.startswith(PREFIX) and run_key.startswith(RUN.encode())
    for name, spec in TESTS.items():
        assert spec.needs_list == name.startswith("lrange")
        if spec.needs_list:    # the LRANGE tests read the list that was filled
            (args,) = _parse_resp(command_ring(name, 5, 0, seed=0, prefix=RUN)[0])
            assert args[1] == run_key
    big = command_ring("set", data_size=1 << 20, keyspace=100, seed=0)
    assert 16 <= len(big) < RING       # big values: a shorter ring, still random
