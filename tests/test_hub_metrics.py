"""Prometheus exposition: histograms, value formatting, escaping, and the rendered text read back
by a strict parser of text format 0.0.4 written here."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import pytest

from cascade_cli.hub.metrics import (
    CONTENT_TYPE,
    LATENCY_BUCKETS,
    REDIS_RTT_BUCKETS,
    Family,
    Histogram,
    format_value,
    render,
)

# ---- a strict parser of the text format -------------------------------------------------------

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
_FLOAT = re.compile(r"[+-]?(?:Inf|NaN|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")
_HELP = re.compile(rf"# HELP ({_NAME}) (.*)")
_TYPE = re.compile(rf"# TYPE ({_NAME}) (counter|gauge|histogram|summary|untyped)")
_SAMPLE = re.compile(rf"({_NAME})(?:\{{(.*)\}})? (\S+)")
_PAIR = re.compile(rf'({_LABEL})="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


@dataclass
class Parsed:
    name: str
    kind: str = "untyped"
    help: str | None = None
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)


def _unescape(text: str, allowed: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\":
            nxt = text[i + 1:i + 2]
            if nxt not in allowed or not nxt:
                raise AssertionError(f"bad escape in {text!r}")
            out.append("\n" if nxt == "n" else nxt)
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _value(text: str) -> float:
    assert _FLOAT.fullmatch(text), f"not a Prometheus float: {text!r}"
    return float(text.replace("Inf", "inf").replace("NaN", "nan"))


def _labels(text: str | None) -> dict[str, str]:
    labels: dict[str, str] = {}
    if not text:
        return labels
    pos = 0
    while pos < len(text):
        match = _PAIR.match(text, pos)
        assert match, f"bad label set {text!r} at {pos}"
        assert match.group(1) not in labels, f"label {match.group(1)} twice"
        labels[match.group(1)] = _unescape(match.group(2), '\\"n')
        pos = match.end()
        assert match.group(3) == "," or pos == len(text)
    return labels


def parse(text: str) -> dict[str, Parsed]:
    """Families by name; fails on anything text format 0.0.4 does not allow, or on a histogram
    whose buckets are not cumulative, lack +Inf, or disagree with _count."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    families: dict[str, Parsed] = {}
    current: Parsed | None = None
    for line in text[:-1].split("\n"):
        if line.startswith("#"):
            help_match, type_match = _HELP.fullmatch(line), _TYPE.fullmatch(line)
            assert help_match or type_match, f"bad comment line {line!r}"
            name = (help_match or type_match).group(1)  # type: ignore[union-attr]
            if current is None or current.name != name:
                assert name not in families, f"family {name} split or repeated"
                current = families[name] = Parsed(name)
            if help_match:
                assert current.help is None and not current.samples
                current.help = _unescape(help_match.group(2), "\\n")
            else:
                assert current.kind == "untyped" and not current.samples, f"late TYPE for {name}"
                current.kind = type_match.group(2)  # type: ignore[union-attr]
            continue
        assert line, "blank line inside the exposition"
        match = _SAMPLE.fullmatch(line)
        assert match, f"bad sample line {line!r}"
        name = match.group(1)
        suffixes = ("_bucket", "_sum", "_count") if current and current.kind == "histogram" else ("",)
        assert current and any(name == current.name + s for s in suffixes), f"{name} outside its family"
        current.samples.append((name, _labels(match.group(2)), _value(match.group(3))))
    for family in families.values():
        if family.kind == "histogram":
            _check_histogram(family)
    return families


def _check_histogram(family: Parsed) -> None:
    series: dict[tuple[tuple[str, str], ...], list[tuple[str, dict[str, str], float]]] = {}
    for sample in family.samples:
        key = tuple(sorted((k, v) for k, v in sample[1].items() if k != "le"))
        series.setdefault(key, []).append(sample)
    for samples in series.values():
        buckets = [(s[1]["le"], s[2]) for s in samples if s[0].endswith("_bucket")]
        assert buckets and buckets[-1][0] == "+Inf"
        bounds = [_value(le) for le, _ in buckets]
        assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds)
        counts = [n for _, n in buckets]
        assert counts == sorted(counts), "buckets must be cumulative"
        count = [s[2] for s in samples if s[0].endswith("_count")]
        assert count == [counts[-1]]
        assert len([s for s in samples if s[0].endswith("_sum")]) == 1


# ---- tests -----------------------------------------------------------------------------------

def test_histogram_buckets_are_le_and_cumulative() -> None:
    hist = Histogram([0.1, 1.0, 10.0])
    for value in (0.05, 0.1, 0.5, 1.0, 3.0, 10.0, 11.0, -1.0):
        hist.observe(value)
    assert hist.counts == [3, 2, 2, 1]
    assert hist.cumulative() == [(0.1, 3), (1.0, 5), (10.0, 7), (math.inf, 8)]
    assert hist.count == 8
    assert hist.sum == pytest.approx(24.65)
    hist.observe(math.nan)
    assert hist.counts[-1] == 2 and hist.count == 9


def test_histogram_rejects_bad_bounds_and_accepts_explicit_inf() -> None:
    with pytest.raises(ValueError):
        Histogram([1.0, 1.0])
    with pytest.raises(ValueError):
        Histogram([2.0, 1.0])
    with pytest.raises(ValueError):
        Histogram([math.nan])
    assert Histogram([1.0, math.inf]).bounds == (1.0,)
    empty = Histogram([])
    empty.observe(5)
    assert empty.cumulative() == [(math.inf, 1)]


def test_default_buckets() -> None:
    assert LATENCY_BUCKETS[0] == 0.00005 and LATENCY_BUCKETS[-1] == 10.0
    for buckets in (LATENCY_BUCKETS, REDIS_RTT_BUCKETS):
        assert list(buckets) == sorted(set(buckets))
        Histogram(buckets)


def test_quantile_interpolates_like_histogram_quantile() -> None:
    hist = Histogram([1.0, 2.0, 4.0])
    assert hist.quantile(0.5) is None
    for value in [0.5] * 10 + [1.5] * 10 + [3.0] * 20:
        hist.observe(value)
    assert hist.quantile(0.25) == pytest.approx(1.0)      # rank 10: end of the first bucket
    assert hist.quantile(0.375) == pytest.approx(1.5)     # rank 15: halfway through (1, 2]
    assert hist.quantile(0.75) == pytest.approx(3.0)      # rank 30: halfway through (2, 4]
    assert hist.quantile(1.0) == pytest.approx(4.0)
    hist.observe(100.0)
    assert hist.quantile(1.0) == 4.0                       # in +Inf: the highest finite bound
    with pytest.raises(ValueError):
        hist.quantile(1.5)


def test_format_value() -> None:
    assert [format_value(v) for v in (3, 3.0, True, 0.25, 5e-05, -2.0, 1e20)] == \
        ["3", "3", "1", "0.25", "5e-05", "-2", "1e+20"]
    assert [format_value(v) for v in (math.inf, -math.inf, math.nan)] == ["+Inf", "-Inf", "NaN"]


def test_render_exact_text() -> None:
    hist = Histogram([0.5, 1.0])
    hist.observe(0.25)
    hist.observe(2.0)
    text = render([
        Family("hub_events_published_total", "counter", "Events published.",
               [({"channel": "a"}, 3), ({"channel": "b"}, 0.5)]),
        Family("hub_connections", "gauge", "Open connections.", [({}, 2)]),
        Family("hub_latency_seconds", "histogram", "Latency.", [({}, hist)]),
    ])
    assert text == (
        "# HELP hub_events_published_total Events published.\n"
        "# TYPE hub_events_published_total counter\n"
        'hub_events_published_total{channel="a"} 3\n'
        'hub_events_published_total{channel="b"} 0.5\n'
        "# HELP hub_connections Open connections.\n"
        "# TYPE hub_connections gauge\n"
        "hub_connections 2\n"
        "# HELP hub_latency_seconds Latency.\n"
        "# TYPE hub_latency_seconds histogram\n"
        'hub_latency_seconds_bucket{le="0.5"} 1\n'
        'hub_latency_seconds_bucket{le="1"} 1\n'
        'hub_latency_seconds_bucket{le="+Inf"} 2\n'
        "hub_latency_seconds_sum 2.25\n"
        "hub_latency_seconds_count 2\n"
    )
    assert CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"


def test_rendered_text_round_trips_through_a_strict_parser() -> None:
    tricky = 'back\\slash "quoted"\nnew line, {braces} = é'
    latency = Histogram(LATENCY_BUCKETS)
    for value in (0.00003, 0.0002, 0.004, 0.004, 0.3, 12.0):
        latency.observe(value)
    by_route = Histogram(REDIS_RTT_BUCKETS)
    by_route.observe(0.001)
    families = [
        Family("hub_delivered_total", "counter", 'Events delivered.\nPer channel, "as sent" \\ raw.',
               [({"channel": tricky}, 7), ({"channel": "plain"}, 1e-7)]),
        Family("hub_queue_depth", "gauge", "Queue depth.",
               [({"client": "1", "channel": "x"}, -3.5), ({"client": "2", "channel": "x"}, math.inf)]),
        Family("hub_broadcast_seconds", "histogram", "Broadcast latency.",
               [({}, latency), ({"route": tricky}, by_route)]),
        Family("hub_idle", "gauge", "No samples yet.", []),
    ]
    parsed = parse(render(families))
    assert list(parsed) == [f.name for f in families]
    delivered = parsed["hub_delivered_total"]
    assert delivered.kind == "counter" and delivered.help == 'Events delivered.\nPer channel, "as sent" \\ raw.'
    assert delivered.samples == [("hub_delivered_total", {"channel": tricky}, 7.0),
                                 ("hub_delivered_total", {"channel": "plain"}, 1e-7)]
    assert [s[2] for s in parsed["hub_queue_depth"].samples] == [-3.5, math.inf]
    assert parsed["hub_queue_depth"].samples[0][1] == {"client": "1", "channel": "x"}
    broadcast = parsed["hub_broadcast_seconds"]
    assert broadcast.kind == "histogram"
    plain = {s[1]["le"]: s[2] for s in broadcast.samples if s[0].endswith("_bucket") and "route" not in s[1]}
    assert [(_value(le), n) for le, n in plain.items()] == [(b, float(n)) for b, n in latency.cumulative()]
    sums = {tuple(s[1].items()): s[2] for s in broadcast.samples if s[0].endswith("_sum")}
    assert sums[()] == pytest.approx(latency.sum) and sums[(("route", tricky),)] == 0.001
    assert parsed["hub_idle"].samples == [] and parsed["hub_idle"].kind == "gauge"


def test_the_parser_is_strict() -> None:
    """The checks above can fail: the parser refuses what the format forbids."""
    good = '# HELP m_total h\n# TYPE m_total counter\nm_total{a="x"} 1\n'
    assert parse(good)["m_total"].samples == [("m_total", {"a": "x"}, 1.0)]
    for bad in (good[:-1], good.replace('"x"', '"x\\t"'), good.replace("} 1", "} one"),
                good.replace("{a=", "{1a="), good + "# TYPE m_total counter\n",
                good + "other 1\n",
                '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
                '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n'):
        with pytest.raises(AssertionError):
            parse(bad)


def test_render_rejects_caller_bugs() -> None:
    with pytest.raises(ValueError):
        Family("bad-name", "counter", "h", [])
    with pytest.raises(ValueError):
        Family("m", "summary", "h", [])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        render([Family("m", "gauge", "h", [({"bad-label": "x"}, 1)])])
    with pytest.raises(ValueError):
        render([Family("m", "histogram", "h", [({"le": "1"}, Histogram([1.0]))])])
    with pytest.raises(ValueError):
        render([Family("m", "gauge", "h", []), Family("m", "gauge", "h", [])])
    with pytest.raises(TypeError):
        render([Family("m", "gauge", "h", [({}, Histogram([1.0]))])])
    with pytest.raises(TypeError):
        render([Family("m", "histogram", "h", [({}, 1.0)])])


def test_counter_names_are_not_changed() -> None:
    text = render([Family("requests_total", "counter", "h", [({}, 1)]),
                   Family("bytes", "counter", "h", [({}, 2)])])
    assert "requests_total 1\n" in text and "\nbytes 2\n" in text and "_total_total" not in text
