"""An HDR-style latency histogram of integer nanoseconds: pure, mergeable, cheap to record.

Layout (as in HdrHistogram with 3 significant digits): values below 2048 ns have a bucket each;
above, every power of two is split into 1024 equal buckets, so a bucket is never wider than
0.1% of the values it holds. Percentiles are nearest-rank and report the highest value of
their bucket (never less than the true sample), clamped to the exact minimum and maximum,
which are kept alongside with the exact sum and sum of squares (for mean and stddev).

Record with `record(ns)` or `record(ns, count)` in the hot loop; send `to_dict()` across
processes and `Histogram.from_dict()` + `merge()` on the other side.
"""

from __future__ import annotations

import math
from typing import Any

SUB_BUCKET_BITS = 11          # 2048 linear buckets, then 1024 per power of two
_HALF = 1 << (SUB_BUCKET_BITS - 1)
_LINEAR = 1 << SUB_BUCKET_BITS


def bucket_index(value: int) -> int:
    """The bucket of a non-negative integer value."""
    if value < _LINEAR:
        return value
    shift = value.bit_length() - SUB_BUCKET_BITS
    return (shift << (SUB_BUCKET_BITS - 1)) + (value >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """The lowest and highest value that fall into bucket `index`."""
    if index < _LINEAR:
        return index, index
    shift = (index >> (SUB_BUCKET_BITS - 1)) - 1
    mantissa = index - (shift << (SUB_BUCKET_BITS - 1))
    return mantissa << shift, ((mantissa + 1) << shift) - 1


class Histogram:
    """Counts of nanosecond values. `count` is the number recorded; `min`/`max` are exact."""

    __slots__ = ("counts", "count", "min", "max", "total", "total_sq")

    def __init__(self) -> None:
        self.counts: dict[int, int] = {}
        self.count = 0
        self.min = 0
        self.max = 0
        self.total = 0
        self.total_sq = 0

    def record(self, value: int, count: int = 1) -> None:
        """Add `count` samples of `value` ns (negative values count as 0)."""
        if value < 0:
            value = 0
        if value < _LINEAR:
            index = value
        else:
            shift = value.bit_length() - SUB_BUCKET_BITS
            index = (shift << (SUB_BUCKET_BITS - 1)) + (value >> shift)
        counts = self.counts
        counts[index] = counts.get(index, 0) + count
        if self.count == 0 or value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        self.count += count
        self.total += value * count
        self.total_sq += value * value * count

    def merge(self, other: Histogram) -> Histogram:
        """Add every sample of `other` into this histogram; returns self."""
        if other.count == 0:
            return self
        for index, n in other.counts.items():
            self.counts[index] = self.counts.get(index, 0) + n
        self.min = other.min if self.count == 0 else min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.count += other.count
        self.total += other.total
        self.total_sq += other.total_sq
        return self

    def value_at(self, pct: float) -> int:
        """The nearest-rank percentile `pct` (0..100) in ns; 0 when empty."""
        if not 0 <= pct <= 100:
            raise ValueError(f"percentile must be within 0..100, got {pct}")
        if self.count == 0:
            return 0
        rank = max(1, math.ceil(pct / 100 * self.count - 1e-9))
        seen = 0
        for index in sorted(self.counts):
            seen += self.counts[index]
            if seen >= rank:
                return max(self.min, min(self.max, bucket_bounds(index)[1]))
        return self.max

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0

    @property
    def stddev(self) -> float:
        """Population standard deviation in ns."""
        if self.count == 0:
            return 0.0
        variance = (self.total_sq * self.count - self.total * self.total) / (self.count * self.count)
        return math.sqrt(variance)

    def bins(self, rows: int = 12) -> list[tuple[int, int, int]]:
        """`rows` log-spaced bins (low ns, high ns, count) covering min..max, for a text chart."""
        if self.count == 0:
            return []
        low, high = max(self.min, 1), max(self.max, 1)
        if high <= low:
            return [(self.min, self.max, self.count)]
        edges = [round(low * (high / low) ** (i / rows)) for i in range(rows + 1)]
        edges[0], edges[-1] = self.min, self.max
        out = [[edges[i], edges[i + 1], 0] for i in range(rows)]
        for index, n in self.counts.items():
            value = max(self.min, min(self.max, bucket_bounds(index)[1]))
            for row in out:
                if value <= row[1]:
                    row[2] += n
                    break
            else:
                out[-1][2] += n
        return [(a, b, n) for a, b, n in out]

    def to_dict(self) -> dict[str, Any]:
        """A JSON- and pickle-friendly copy; `from_dict` restores it."""
        return {"counts": {str(k): v for k, v in self.counts.items()}, "count": self.count,
                "min": self.min, "max": self.max, "total": self.total, "total_sq": self.total_sq}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Histogram:
        hist = cls()
        hist.counts = {int(k): int(v) for k, v in data["counts"].items()}
        hist.count, hist.min, hist.max = int(data["count"]), int(data["min"]), int(data["max"])
        hist.total, hist.total_sq = int(data["total"]), int(data["total_sq"])
        return hist
