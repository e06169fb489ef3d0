"""Prometheus text exposition (format 0.0.4): histograms, metric families and `render()`.

Pure: no I/O and no third-party imports. The hub keeps its counters and gauges as plain numbers
and its latencies in `Histogram`s (`observe()` is one bisect and three additions); on each
scrape it builds `Family` objects from them and answers `render(families)` with `CONTENT_TYPE`.
Everything here runs on one event loop; nothing is locked.
"""

from __future__ import annotations

import math
import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from math import isnan
from typing import Literal

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds. Broadcast and HTTP latency: 50 us (one local fan-out) up to 10 s (a stalled request).
LATENCY_BUCKETS: tuple[float, ...] = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
# Seconds. One Redis round trip: 50 us (loopback) up to 1 s (a struggling or remote server).
REDIS_RTT_BUCKETS: tuple[float, ...] = (
    0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)

Kind = Literal["counter", "gauge", "histogram"]
_KINDS = frozenset({"counter", "gauge", "histogram"})
_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it: `+Inf`, `-Inf`, `NaN`, integral values without a
    fraction (`3`, not `3.0`), others in Python's shortest round-trip form (`0.25`, `5e-05`)."""
    if isinstance(value, int):  # bool included: True -> 1
        return str(int(value))
    if math.isnan(value):
        return "NaN"
    if value in (math.inf, -math.inf):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


class Histogram:
    """Counts of observations per bucket (upper bounds `bounds`, ascending; +Inf is implicit).

    `observe(v)` puts v in the first bucket whose bound is >= v (Prometheus's `le`); NaN goes
    to +Inf. `cumulative()` gives what `_bucket{le=...}` exposes; `sum` and `count` are kept
    alongside. `quantile(q)` estimates a quantile from the buckets as `histogram_quantile` does.
    """

    __slots__ = ("_le", "bounds", "count", "counts", "sum")

    def __init__(self, buckets: Sequence[float]) -> None:
        bounds = [float(b) for b in buckets]
        if bounds and bounds[-1] == math.inf:
            bounds.pop()  # +Inf is always there; accept it spelled out
        if not all(math.isfinite(b) for b in bounds):
            raise ValueError("histogram bucket bounds must be finite numbers")
        if any(a >= b for a, b in pairwise(bounds)):
            raise ValueError("histogram bucket bounds must be strictly ascending")
        self.bounds: tuple[float, ...] = tuple(bounds)
        # counts[i]: observations in (bounds[i-1], bounds[i]]; counts[-1]: above the last bound.
        self.counts: list[int] = [0] * (len(bounds) + 1)
        self.sum: float = 0.0
        self.count: int = 0
        self._le: tuple[str, ...] = (*(format_value(b) for b in bounds), "+Inf")

    def observe(self, value: float) -> None:
        """Record one observation (e.g. a latency in seconds)."""
        if isnan(value):
            self.counts[-1] += 1
        else:
            self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations <= bound) per bucket, ending with (+Inf, count)."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip((*self.bounds, math.inf), self.counts):
            running += n
            out.append((bound, running))
        return out

    def quantile(self, q: float) -> float | None:
        """Estimated q-quantile (0 <= q <= 1) by linear interpolation inside the bucket that holds
        it, as Prometheus's histogram_quantile; None with no observations. When it falls in the
        +Inf bucket the answer is the highest finite bound (the estimate cannot see further)."""
        if not 0.0 <= q <= 1.0:
            raise ValueError("quantile must be between 0 and 1")
        if self.count == 0:
            return None
        rank = q * self.count
        running = 0
        for index, n in enumerate(self.counts):
            if n and running + n >= rank:
                if index == len(self.bounds):
                    return self.bounds[-1] if self.bounds else math.inf
                upper = self.bounds[index]
                lower = self.bounds[index - 1] if index else min(0.0, upper)
                return lower + (upper - lower) * max(0.0, rank - running) / n
            running += n
        return self.bounds[-1] if self.bounds else math.inf  # not reached: counts sum to count

    def __repr__(self) -> str:
        return f"Histogram(count={self.count}, sum={self.sum!r}, bounds={len(self.bounds)})"


@dataclass
class Family:
    """One metric family: a name (counters end in `_total`, given by the caller), its kind, a
    help line and its samples, one per label set (a number, or a Histogram for histograms)."""

    name: str
    kind: Kind
    help: str
    samples: list[tuple[dict[str, str], float | Histogram]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not _METRIC_NAME.fullmatch(self.name):
            raise ValueError(f"invalid metric name {self.name!r}")
        if self.kind not in _KINDS:
            raise ValueError(f"invalid metric kind {self.kind!r}: counter, gauge or histogram")


def escape_help(text: str) -> str:
    """HELP text escaped: backslash and newline."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def escape_label_value(text: str) -> str:
    """A label value escaped: backslash, double quote and newline."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _label_pairs(labels: dict[str, str], histogram: bool) -> str:
    """`name="value",...` (no braces), names checked; `le` is reserved in histograms."""
    parts = []
    for name, value in labels.items():
        if not _LABEL_NAME.fullmatch(name) or name.startswith("__") or (histogram and name == "le"):
            raise ValueError(f"invalid label name {name!r}")
        parts.append(f'{name}="{escape_label_value(str(value))}"')
    return ",".join(parts)


def render(families: Iterable[Family]) -> str:
    """The families in Prometheus text format 0.0.4, ready to serve with CONTENT_TYPE.

    Raises ValueError for a bad label name or a family name given twice, TypeError for a
    sample whose value does not fit its family's kind (both are bugs in the caller).
    """
    lines: list[str] = []
    seen: set[str] = set()
    for family in families:
        name = family.name
        if name in seen:
            raise ValueError(f"metric family {name!r} given twice")
        seen.add(name)
        lines.append(f"# HELP {name} {escape_help(family.help)}")
        lines.append(f"# TYPE {name} {family.kind}")
        if family.kind == "histogram":
            for labels, hist in family.samples:
                if not isinstance(hist, Histogram):
                    raise TypeError(f"{name}: a histogram sample must be a Histogram, not {type(hist).__name__}")
                pairs = _label_pairs(labels, True)
                prefix = f"{name}_bucket{{{pairs}," if pairs else f"{name}_bucket{{"
                running = 0
                for le, n in zip(hist._le, hist.counts):
                    running += n
                    lines.append(f'{prefix}le="{le}"}} {running}')
                braces = f"{{{pairs}}}" if pairs else ""
                lines.append(f"{name}_sum{braces} {format_value(hist.sum)}")
                lines.append(f"{name}_count{braces} {hist.count}")
        else:
            for labels, value in family.samples:
                if isinstance(value, Histogram) or not isinstance(value, (int, float)):
                    raise TypeError(f"{name}: a {family.kind} sample must be a number, not {type(value).__name__}")
                pairs = _label_pairs(labels, False)
                braces = f"{{{pairs}}}" if pairs else ""
                lines.append(f"{name}{braces} {format_value(value)}")
    lines.append("")
    return "\n".join(lines)
