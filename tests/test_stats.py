"""Nearest-rank percentiles."""

import pytest

from cascade_cli.bench.stats import latency_summary, percentile


def test_nearest_rank_returns_observed_values() -> None:
    samples = [4.0, 1.0, 3.0, 2.0]
    assert [percentile(samples, p) for p in (0, 25, 50, 75, 95, 100)] == [1.0, 1.0, 2.0, 3.0, 4.0, 4.0]
    hundred = [float(i) for i in range(1, 101)]
    assert (percentile(hundred, 50), percentile(hundred, 95), percentile(hundred, 99.9)) == (50.0, 95.0, 100.0)


def test_bad_input() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summary() -> None:
    assert latency_summary([]) == {"min_ms": None, "p50_ms": None, "p95_ms": None, "max_ms": None}
    assert latency_summary([5.0, 1.0, 3.0]) == {"min_ms": 1.0, "p50_ms": 3.0, "p95_ms": 5.0, "max_ms": 5.0}
