"""The pure parts of the Venice bridge: shapes, flags, filters, error lines, ping verdicts."""

from __future__ import annotations

import pytest

from cascade_cli.errors import RemoteError, UsageError
from cascade_cli.venice import (RESOURCES, PingReport, Probe, count_items, default_columns, error_text,
                                flags_of, normalise, parse_filters)


@pytest.mark.parametrize("resource,body,by_id,expected,single", [
    ("resources", [{"id": 1}, {"id": 2}], False, [{"id": 1}, {"id": 2}], False),
    ("resources", {"resources": [{"id": 1}]}, False, [{"id": 1}], False),
    ("buildings", {"buildings": [{"id": 1}]}, False, [{"id": 1}], False),
    ("citizens", {"success": True, "citizen": {"username": "NLR"}}, True, [{"username": "NLR"}], True),
    ("messages", {"success": True, "message": [{"m": 1}, {"m": 2}]}, False, [{"m": 1}, {"m": 2}], False),
    ("messages", {"success": True, "message": {"m": 1}}, False, [{"m": 1}], True),
    ("relevancies", {"success": True, "citizen": "NLR", "relevancies": [{"r": 1}], "count": 1}, True,
     [{"r": 1}], False),
    ("economy", {"success": True, "economy": {"totalDucats": 5}}, False, [{"totalDucats": 5}], True),
    ("lands", {"success": True, "items": ["a", "b"]}, False, [{"value": "a"}, {"value": "b"}], False),
])
def test_normalise_every_shape(resource: str, body: object, by_id: bool, expected: list, single: bool) -> None:
    assert normalise(RESOURCES[resource], body, by_id) == (expected, single)


@pytest.mark.parametrize("body", [{"success": True}, "text", 42])
def test_normalise_refuses_answers_without_records(body: object) -> None:
    with pytest.raises(RemoteError):
        normalise(RESOURCES["citizens"], body)


def test_flags_and_counts() -> None:
    assert flags_of({"_stale": True, "_fallback": True, "_cached": False}) == ["_fallback", "_stale"]
    assert flags_of([1, 2]) == []
    assert count_items({"success": True, "activities": [1]}) == 1
    assert count_items([1, 2, 3]) == 3
    assert count_items({"success": True, "economy": {"a": 1}}) == 1
    assert count_items({"success": False, "error": "x"}) is None


def test_parse_filters() -> None:
    assert parse_filters(["Owner=NLR", "Note=a=b", "Empty="]) == {"Owner": "NLR", "Note": "a=b", "Empty": ""}
    for bad in ("Owner", "=x"):
        with pytest.raises(UsageError):
            parse_filters([bad])


def test_error_text_reads_both_error_shapes() -> None:
    assert error_text(404, {"success": False, "error": "Citizen not found"}) == "HTTP 404: Citizen not found"
    assert error_text(401, {"error": "Authentication required", "code": "AUTH_REQUIRED"}) == \
        "authentication required (HTTP 401): Authentication required (AUTH_REQUIRED)"
    assert error_text(502, None) == "HTTP 502"


def test_default_columns_prefers_documented_then_scalars() -> None:
    records = [{"username": "a", "ducats": 1, "extra": 2}]
    assert default_columns(RESOURCES["citizens"], records) == ["username", "ducats"]
    assert default_columns(RESOURCES["lands"], [{"a": 1, "nested": {"x": 1}, "b": "x"}]) == ["a", "b"]
    assert default_columns(RESOURCES["citizens"], [])[0] == "username"


def test_ping_report_worst_outcome_and_latency_summary() -> None:
    ok = Probe("u", "ok", status=200, latency_ms=10.0, success=True, items=1)
    slow = Probe("u", "ok", status=200, latency_ms=30.0, success=True, items=1)
    error = Probe("u", "error", status=500, latency_ms=20.0, message="HTTP 500")
    down = Probe("u", "unreachable", message="refused")
    assert PingReport("b", [ok, slow]).outcome == "ok"
    assert PingReport("b", [ok, error]).outcome == "error"
    report = PingReport("b", [ok, error, down, slow])
    assert report.outcome == "unreachable" and report.deciding is down
    record = report.to_record()
    assert (record["count"], record["answered"], record["ok"]) == (4, 3, 2)
    assert (record["min_ms"], record["p50_ms"], record["max_ms"]) == (10.0, 20.0, 30.0)
    assert record["status"] is None and record["error"] == "refused"  # the deciding probe
    assert PingReport("b", [error, ok]).to_record()["status"] == 500
