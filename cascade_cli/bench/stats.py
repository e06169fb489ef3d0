"""Pure statistics on latency samples: no I/O, no clock. Inputs are milliseconds."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(samples: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile (`pct` in 0..100) of a non-empty sample.

    Nearest rank returns a value that was actually observed: p50 of [1, 2, 3, 4] is 2, and
    p100 is the maximum. Raises ValueError on an empty sample or a pct outside 0..100.
    """
    if not samples:
        raise ValueError("percentile of an empty sample")
    if not 0 <= pct <= 100:
        raise ValueError(f"percentile must be within 0..100, got {pct}")
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(samples: Sequence[float]) -> dict[str, float | None]:
    """`min_ms`, `p50_ms`, `p95_ms`, `max_ms` of the samples; all None when there are none."""
    if not samples:
        return {"min_ms": None, "p50_ms": None, "p95_ms": None, "max_ms": None}
    return {
        "min_ms": min(samples),
        "p50_ms": percentile(samples, 50),
        "p95_ms": percentile(samples, 95),
        "max_ms": max(samples),
    }
