"""Pure: Prometheus text format (0.0.4) -> samples per family, histograms rebuilt as
`hub.metrics.Histogram`, so a scrape of `/metrics` reads like the hub's own figures in-process.

`parse(text)` returns `{family: [(labels, value), ...]}` where a histogram family's value is a
Histogram. `samples_of(families)` gives the same shape from `hub.metrics.Family` objects.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from cascade_cli.hub.metrics import Histogram

Samples = dict[str, list[tuple[dict[str, str], Any]]]

_SAMPLE = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)")
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')
_UNESCAPE = re.compile(r"\\(.)")


class MetricsFormatError(ValueError):
    """The text is not Prometheus exposition format."""


def _labels(text: str | None) -> dict[str, str]:
    labels: dict[str, str] = {}
    if not text:
        return labels
    pos = 0
    while pos < len(text):
        match = _LABEL.match(text, pos)
        if match is None:
            raise MetricsFormatError(f"bad label set {{{text}}}")
        labels[match.group(1)] = _UNESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1),
                                               match.group(2))
        pos = match.end()
    return labels


def _number(text: str) -> float:
    try:
        return float(text)   # accepts +Inf, -Inf, NaN
    except ValueError:
        raise MetricsFormatError(f"bad sample value {text!r}") from None


def parse(text: str) -> Samples:
    """Every family's samples; raises MetricsFormatError on a line that is not the format."""
    kinds: dict[str, str] = {}
    plain: Samples = {}
    buckets: dict[tuple[str, tuple[tuple[str, str], ...]], dict[str, Any]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                kinds[parts[2]] = parts[3].strip()
            continue
        match = _SAMPLE.fullmatch(line) or _SAMPLE.match(line)   # an optional timestamp may follow
        if match is None:
            raise MetricsFormatError(f"not a sample line: {line[:80]!r}")
        name, labels, value = match.group(1), _labels(match.group(2)), _number(match.group(3))
        family, part = _histogram_part(name, kinds)
        if family is None:
            plain.setdefault(name, []).append((labels, value))
            continue
        le = labels.pop("le", None)
        entry = buckets.setdefault((family, tuple(sorted(labels.items()))),
                                   {"labels": labels, "le": [], "sum": 0.0, "count": 0})
        if part == "bucket" and le is not None:
            entry["le"].append((_number(le), value))
        elif part == "sum":
            entry["sum"] = value
        elif part == "count":
            entry["count"] = value
    for (family, _), entry in buckets.items():
        plain.setdefault(family, []).append((entry["labels"], _histogram(entry)))
    return plain


def _histogram_part(name: str, kinds: dict[str, str]) -> tuple[str | None, str]:
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and kinds.get(name[: -len(suffix)]) == "histogram":
            return name[: -len(suffix)], suffix[1:]
    return None, ""


def _histogram(entry: dict[str, Any]) -> Histogram:
    pairs = sorted(entry["le"])
    finite = [bound for bound, _ in pairs if math.isfinite(bound)]
    histogram = Histogram(finite)
    running = 0.0
    for index, (_, cumulative) in enumerate(pairs):
        histogram.counts[index] = int(max(0.0, cumulative - running))
        running = max(running, cumulative)
    histogram.count = int(entry["count"]) or sum(histogram.counts)
    histogram.sum = float(entry["sum"])
    return histogram


def samples_of(families: Iterable[Any]) -> Samples:
    """The same shape as parse() from `hub.metrics.Family` objects (the hub in-process)."""
    return {family.name: list(family.samples) for family in families}


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sum of a family's samples whose labels include `labels`; None when the family is absent."""
    found = samples.get(name)
    if found is None:
        return None
    return sum(v for l, v in found if isinstance(v, (int, float)) and all(l.get(k) == x for k, x in labels.items()))
