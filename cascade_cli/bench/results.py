"""What one test measured, merged across processes, and its summary row with stable keys. Pure.

A load generator fills one `Measurement` per test per process; the runner merges them with
`merge()` and the CLI turns the result into a row with `summarize()`. Row keys are documented
in docs/bench.md and never renamed: scripts and CI read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cascade_cli.bench.histogram import Histogram

PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50_ms", 50), ("p90_ms", 90), ("p99_ms", 99), ("p999_ms", 99.9))

# Keys every row has, in this order (csv columns, json keys).
LATENCY_KEYS = ("mean_ms", "stddev_ms", "min_ms", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms")
BASE_KEYS = ("test", "requests", "errors", "duration_s", "ops_per_sec", *LATENCY_KEYS,
             "uncorrected_p50_ms", "uncorrected_p99_ms", "uncorrected_max_ms", "target_rate",
             "send_lag_p99_ms", "client_cpu_pct", "interrupted")

MAX_ERROR_SAMPLES = 5


@dataclass
class Measurement:
    """One test as one process saw it. Times are `time.monotonic()` seconds (one clock for every
    process on the machine); latencies are ns in the histograms.

    `latency` holds what the row reports: in the open loop it is measured from each request's
    intended send time (coordinated omission corrected), and `uncorrected` from its actual send
    time; in the closed loop `uncorrected` stays empty. `send_lag` is how late the open-loop
    scheduler sent (actual - intended). `cpu_s` is the process CPU time spent in the window.
    `counters` are summed on merge (received, lost, ...); `histograms` holds any further
    named latencies (ns), merged by name (ws: `connect`)."""

    test: str
    ops: int = 0
    errors: int = 0
    started: float = 0.0
    ended: float = 0.0
    cpu_s: float = 0.0
    processes: int = 1
    max_process_cpu_pct: float = 0.0
    latency: Histogram = field(default_factory=Histogram)
    uncorrected: Histogram = field(default_factory=Histogram)
    send_lag: Histogram = field(default_factory=Histogram)
    counters: dict[str, int] = field(default_factory=dict)
    histograms: dict[str, Histogram] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)
    interrupted: bool = False

    def add_error(self, message: str, count: int = 1) -> None:
        """Count `count` failed requests, keeping the first few distinct messages."""
        self.errors += count
        if len(self.error_samples) < MAX_ERROR_SAMPLES and message not in self.error_samples:
            self.error_samples.append(message)

    def finish(self, started: float, ended: float, cpu_s: float) -> None:
        """Close the window: wall times and the CPU this process used in it."""
        self.started, self.ended, self.cpu_s = started, ended, cpu_s
        window = ended - started
        self.max_process_cpu_pct = 100.0 * cpu_s / window if window > 0 else 0.0

    @property
    def duration(self) -> float:
        return max(self.ended - self.started, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {"test": self.test, "ops": self.ops, "errors": self.errors, "started": self.started,
                "ended": self.ended, "cpu_s": self.cpu_s, "processes": self.processes,
                "max_process_cpu_pct": self.max_process_cpu_pct,
                "latency": self.latency.to_dict(), "uncorrected": self.uncorrected.to_dict(),
                "send_lag": self.send_lag.to_dict(), "counters": dict(self.counters),
                "histograms": {name: hist.to_dict() for name, hist in self.histograms.items()},
                "error_samples": list(self.error_samples), "interrupted": self.interrupted}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Measurement:
        return cls(test=data["test"], ops=data["ops"], errors=data["errors"], started=data["started"],
                   ended=data["ended"], cpu_s=data["cpu_s"], processes=data["processes"],
                   max_process_cpu_pct=data["max_process_cpu_pct"],
                   latency=Histogram.from_dict(data["latency"]),
                   uncorrected=Histogram.from_dict(data["uncorrected"]),
                   send_lag=Histogram.from_dict(data["send_lag"]), counters=dict(data["counters"]),
                   histograms={name: Histogram.from_dict(hist)
                               for name, hist in data.get("histograms", {}).items()},
                   error_samples=list(data["error_samples"]), interrupted=data["interrupted"])


def merge(parts: list[Measurement]) -> Measurement:
    """One measurement from every process's: counts and histograms added (named ones by name),
    the window spanning the earliest start to the latest end, the busiest process's CPU kept."""
    if not parts:
        raise ValueError("nothing to merge")
    out = Measurement(test=parts[0].test, processes=0)
    active = [p for p in parts if p.ended > 0]
    out.started = min((p.started for p in active), default=0.0)
    out.ended = max((p.ended for p in active), default=0.0)
    for part in parts:
        out.ops += part.ops
        out.cpu_s += part.cpu_s
        out.processes += part.processes
        out.max_process_cpu_pct = max(out.max_process_cpu_pct, part.max_process_cpu_pct)
        out.latency.merge(part.latency)
        out.uncorrected.merge(part.uncorrected)
        out.send_lag.merge(part.send_lag)
        for key, value in part.counters.items():
            out.counters[key] = out.counters.get(key, 0) + value
        for name, hist in part.histograms.items():
            out.histograms.setdefault(name, Histogram()).merge(hist)
        for message in part.error_samples:
            out.add_error(message, 0)
        out.errors += part.errors
        out.interrupted = out.interrupted or part.interrupted
    return out


def ms(ns: float) -> float:
    """Nanoseconds as milliseconds, rounded to the nanosecond."""
    return round(ns / 1e6, 6)


def latency_row(hist: Histogram, prefix: str = "") -> dict[str, float | None]:
    """mean, stddev, min, p50, p90, p99, p99.9 and max of `hist` in ms (None when empty), keys
    prefixed with `prefix` (`connect_p50_ms`)."""
    if hist.count == 0:
        return {prefix + key: None for key in LATENCY_KEYS}
    row: dict[str, float | None] = {prefix + "mean_ms": ms(hist.mean), prefix + "stddev_ms": ms(hist.stddev),
                                    prefix + "min_ms": ms(hist.min)}
    for key, pct in PERCENTILES:
        row[prefix + key] = ms(hist.value_at(pct))
    row[prefix + "max_ms"] = ms(hist.max)
    return row


def summarize(m: Measurement, *, target_rate: float | None = None) -> dict[str, Any]:
    """The row for one test with every key in BASE_KEYS. `ops_per_sec` is completed requests
    over the measured window; errors are counted apart and not in `requests`."""
    duration = m.duration
    row: dict[str, Any] = {
        "test": m.test,
        "requests": m.ops,
        "errors": m.errors,
        "duration_s": round(duration, 6),
        "ops_per_sec": round(m.ops / duration, 1) if duration > 0 else None,
        **latency_row(m.latency),
    }
    if m.uncorrected.count:
        row["uncorrected_p50_ms"] = ms(m.uncorrected.value_at(50))
        row["uncorrected_p99_ms"] = ms(m.uncorrected.value_at(99))
        row["uncorrected_max_ms"] = ms(m.uncorrected.max)
    else:
        row["uncorrected_p50_ms"] = row["uncorrected_p99_ms"] = row["uncorrected_max_ms"] = None
    row["target_rate"] = target_rate
    row["send_lag_p99_ms"] = ms(m.send_lag.value_at(99)) if m.send_lag.count else None
    row["client_cpu_pct"] = round(m.max_process_cpu_pct, 1)
    row["interrupted"] = m.interrupted
    return row
